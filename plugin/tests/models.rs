//! Parity between PyTorch and Rust: the committed fixtures (`models/fixtures/`, written by
//! `models/strata_models/export.py`) hold audio and what PyTorch computed from it; here the Rust
//! front end and the ONNX models through ONNX Runtime must agree within 1e-4. Also: a missing or
//! corrupt model file is an error that names the file.

use std::path::{Path, PathBuf};

use strata::dsp::logmel::logmel;
use strata::inference::{runtime, Manifest, ModelError, ModelSet, TowerState, Workload};

const TOLERANCE: f32 = 1e-4;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("models")
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn fixture() -> serde_json::Value {
    let path = models_dir().join("fixtures").join("expected.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn load_models(dir: &Path) -> Result<ModelSet, ModelError> {
    let rt = runtime().map_err(|e| ModelError::Runtime(e.clone()))?;
    ModelSet::load(dir, rt, Workload::Streaming)
}

#[test]
fn rust_logmel_matches_numpy() {
    let dir = models_dir();
    let manifest = Manifest::load(&dir).unwrap();
    let mut reader = hound::WavReader::open(dir.join("fixtures").join("audio.wav")).unwrap();
    assert_eq!(reader.spec().sample_rate, manifest.sample_rate);
    let audio: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    let rust = logmel(manifest.logmel(), f64::from(manifest.sample_rate), &audio);
    let numpy = read_f32(&dir.join("fixtures").join("logmel.f32"));
    let diff = max_abs_diff(&rust, &numpy);
    assert!(diff <= TOLERANCE, "log-mel differs by {diff}");
}

#[test]
fn onnx_models_match_pytorch() {
    let dir = models_dir();
    let mut models = load_models(&dir).expect("models load");
    let fx = fixture();
    let m = models.manifest.clone();

    // Front end.
    let mel = read_f32(&dir.join("fixtures").join("logmel.f32"));
    let expected_emb = read_f32(&dir.join("fixtures").join("frame_embedding.f32"));
    let mut emb = Vec::new();
    models.frame_embeddings(&mel, &mut emb).unwrap();
    let diff = max_abs_diff(&emb, &expected_emb);
    assert!(diff <= TOLERANCE, "frame embeddings differ by {diff}");

    // Encoders, on PyTorch's frame embeddings so each stage is checked on its own.
    let d = m.frame_dim;
    for (i, scale) in fx["scales"].as_array().unwrap().iter().enumerate() {
        let w = m.scales[i].window_frames;
        let ends: Vec<usize> = scale["window_ends"].as_array().unwrap().iter().map(|e| e.as_u64().unwrap() as usize).collect();
        let mut windows = Vec::new();
        for &e in &ends {
            windows.extend_from_slice(&expected_emb[(e - w) * d..e * d]);
        }
        let (mut vectors, mut tokens) = (Vec::new(), Vec::new());
        models.encode(i, &windows, &mut vectors, &mut tokens).unwrap();
        let expected: Vec<f32> = scale["vectors"].as_array().unwrap().iter().flat_map(floats).collect();
        let diff = max_abs_diff(&vectors, &expected);
        assert!(diff <= TOLERANCE, "scale {i}: vectors differ by {diff}");
        let expected_tokens: Vec<u8> = scale["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u8).collect();
        assert_eq!(tokens, expected_tokens, "scale {i}: tokens");
    }

    // Tower: several steps of every level from zero state.
    for (level, steps) in fx["tower"].as_array().unwrap().iter().enumerate() {
        let mut state = TowerState::zeros(m.tower.hidden);
        let mut prediction = vec![0.0; m.vector_dim];
        let steps = steps["steps"].as_array().unwrap();
        assert!(!steps.is_empty(), "level {level} has fixture steps");
        for (k, step) in steps.iter().enumerate() {
            models
                .tower_step(level, &floats(&step["feature"]), &floats(&step["below"]), &mut state, &mut prediction)
                .unwrap();
            for (name, got, want) in [
                ("prediction", &prediction, floats(&step["prediction"])),
                ("h", &state.h, floats(&step["h"])),
                ("c", &state.c, floats(&step["c"])),
            ] {
                let diff = max_abs_diff(got, &want);
                assert!(diff <= TOLERANCE, "level {level} step {k}: {name} differs by {diff}");
            }
        }
    }
}

/// A copy of the committed model folder: the manifest and every file it lists.
fn copy_models(tag: &str) -> PathBuf {
    let to = std::env::temp_dir().join(format!("strata-models-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    let from = models_dir();
    std::fs::create_dir_all(&to).unwrap();
    std::fs::copy(from.join("manifest.json"), to.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(from.join("manifest.json")).unwrap()).unwrap();
    for relative in manifest["files"].as_object().unwrap().keys() {
        std::fs::create_dir_all(to.join(relative).parent().unwrap()).unwrap();
        std::fs::copy(from.join(relative), to.join(relative)).unwrap();
    }
    to
}

#[test]
fn a_missing_model_file_is_named() {
    let dir = copy_models("missing");
    std::fs::remove_file(dir.join("onnx").join("encoder_3.onnx")).unwrap();
    let err = load_models(&dir).unwrap_err();
    assert!(matches!(err, ModelError::FileMissing { .. }), "{err}");
    assert!(err.to_string().contains("encoder_3.onnx"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_corrupt_model_file_is_named() {
    let dir = copy_models("corrupt");
    let victim = dir.join("onnx").join("tower_2.onnx");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&victim, &bytes).unwrap();
    let err = load_models(&dir).unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("tower_2.onnx"), "{err}");

    // Even when the manifest's checksum is made to agree, ONNX Runtime's refusal names the file.
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    use sha2::Digest;
    manifest["files"]["onnx/tower_2.onnx"] = format!("{:x}", sha2::Sha256::digest(&bytes)).into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let err = load_models(&dir).unwrap_err();
    assert!(matches!(err, ModelError::Session { .. }), "{err}");
    assert!(err.to_string().contains("tower_2.onnx"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_broken_manifest_is_named() {
    let dir = copy_models("manifest");
    std::fs::write(dir.join("manifest.json"), "{ \"format\": 1, ").unwrap();
    let err = Manifest::load(&dir).unwrap_err();
    assert!(err.to_string().contains("manifest.json"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_heads_load_and_a_broken_one_is_named() {
    const HEADS: [&str; 3] = ["period_head", "change_head", "attribution_head"];
    let loaded_heads = |m: &ModelSet| [m.period_head.is_some(), m.change_head.is_some(), m.attribution_head.is_some()];
    for key in HEADS {
        let dir = copy_models(key);
        let manifest_path = dir.join("manifest.json");
        let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
        let relative = manifest[key].as_str().expect("the committed models name every head").to_owned();
        assert_eq!(loaded_heads(&load_models(&dir).unwrap()), [true; 3]);

        // Valid JSON of the wrong shape, with a checksum that agrees: refused, naming the file.
        let bytes = br#"{"baseline": 0.0, "trees": [{"feature": [0], "threshold": [0.0], "left": [], "right": [0], "leaf": [true], "value": [0.0]}]}"#;
        std::fs::write(dir.join(&relative), bytes).unwrap();
        use sha2::Digest;
        manifest["files"][&relative] = format!("{:x}", sha2::Sha256::digest(bytes)).into();
        std::fs::write(&manifest_path, manifest.to_string()).unwrap();
        let err = load_models(&dir).unwrap_err();
        assert!(matches!(err, ModelError::Head { .. }), "{err}");
        assert!(err.to_string().contains(&format!("{key}.json")) && err.to_string().contains("tree 0"), "{err}");

        // A manifest that names no such head loads, and the rules alone decide.
        manifest.as_object_mut().unwrap().remove(key);
        std::fs::write(&manifest_path, manifest.to_string()).unwrap();
        assert_eq!(loaded_heads(&load_models(&dir).unwrap()), HEADS.map(|h| h != key));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
