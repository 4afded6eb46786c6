//! The fuzz harnesses' inputs, replayed on the stable toolchain in every test run: the seed
//! corpus in `fuzz/corpus/<target>/` and every input a fuzz run found a crash with (kept there
//! as `crash-*`). Each must be read without a panic, as `fuzz/fuzz_targets/` requires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nice_plug::prelude::Params;
use strata::audio_file::AudioFile;
use strata::inference::Manifest;
use strata::params::{StrataParams, MIN_EDITOR_SIZE, SPAN_RANGE_S};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "{} has seeds", dir.display());
    files
}

#[test]
fn audio_file_seeds_decode_or_fail_cleanly() {
    const EXTENSIONS: [&str; 5] = ["wav", "flac", "mp3", "ogg", "bin"];
    let dir = std::env::temp_dir().join(format!("strata-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut decoded = 0;
    for seed in corpus("audio_file") {
        let data = std::fs::read(&seed).unwrap();
        let Some((&selector, bytes)) = data.split_first() else { continue };
        let path = dir.join(format!("input.{}", EXTENSIONS[usize::from(selector) % EXTENSIONS.len()]));
        std::fs::write(&path, bytes).unwrap();
        let Ok(mut file) = AudioFile::open(&path) else { continue };
        let mut channels = Vec::new();
        while let Ok(true) = file.read_planar(&mut channels) {}
        assert!(channels.iter().all(|c| c.len() == channels[0].len()), "{}", seed.display());
        decoded += usize::from(!channels.is_empty());
    }
    assert!(decoded >= 5, "the seeds are real audio of every format: {decoded} decoded");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn manifest_seeds_load_or_fail_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("strata-fuzz-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for seed in corpus("models") {
        std::fs::copy(&seed, dir.join("manifest.json")).unwrap();
        if let Err(e) = Manifest::load(&dir) {
            assert!(!e.to_string().is_empty());
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn view_state_seeds_give_settings_a_window_can_open_with() {
    for seed in corpus("view_state") {
        let text = String::from_utf8_lossy(&std::fs::read(&seed).unwrap()).into_owned();
        let params = StrataParams::default();
        params.deserialize_fields(&BTreeMap::from([("view".to_owned(), text)]));
        let view = params.view();
        let (w, h) = view.clamped_editor_size();
        assert!(w >= MIN_EDITOR_SIZE.0 && h >= MIN_EDITOR_SIZE.1, "{}", seed.display());
        assert!((SPAN_RANGE_S.0..=SPAN_RANGE_S.1).contains(&view.clamped_span_s()), "{}", seed.display());
    }
}
