//! The `strata` command line: real files written and read back, and bad input refused with a
//! one-line error, a non-zero exit, and nothing half-written.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn strata() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.env_remove("STRATA_MODELS");
    c
}

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn asset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/machine_wars_excerpt.ogg")
}

fn write_wav(path: &Path, channels: u16, rate: u32, samples: &[f32]) {
    let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn analyze_writes_json_and_picture() {
    let out = temp("ok");
    let o = strata().args(["analyze", "--quiet", "--tempo", "120", "--out"]).arg(&out).arg(asset()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("strata.json")).unwrap()).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(json["source"], "machine_wars_excerpt.ogg");
    assert_eq!(json["sample_rate"], 44_100);
    assert!((json["duration_s"].as_f64().unwrap() - 30.0).abs() < 0.1);
    assert_eq!(json["tempo_bpm"], 120.0);
    let layers = json["layers"].as_array().unwrap();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["models"], manifest["id"]);
    assert_eq!(layers.len(), manifest["scales"].as_array().unwrap().len());
    for l in layers {
        let n = l["frames"]["time_s"].as_array().unwrap().len();
        assert_eq!(l["frames"]["token"].as_array().unwrap().len(), n);
        assert_eq!(l["frames"]["surprise"].as_array().unwrap().len(), n);
        assert!((0.0..=1.0).contains(&l["strength"].as_f64().unwrap()));
        assert!((0.0..=1.0).contains(&l["period_confidence"].as_f64().unwrap()));
        if let Some(p) = l["period_s"].as_f64() {
            assert!((l["period_beats"].as_f64().unwrap() - p * 2.0).abs() < 1e-9, "periods in beats at 120 BPM");
        }
        for seg in l["segments"].as_array().unwrap() {
            assert!(seg["start_s"].as_f64().unwrap() <= seg["end_s"].as_f64().unwrap());
            assert!(seg["label"].as_str().unwrap().chars().all(|c| c.is_ascii_uppercase()));
        }
    }
    // The 1 s layer finds the beat of this 120 BPM piece (0.5 s) or a bar-level multiple.
    let beat_layer = layers.iter().find(|l| l["scale_s"] == 1.0).unwrap();
    let p = beat_layer["period_s"].as_f64().unwrap();
    assert!(((p / 0.5).round() * 0.5 - p).abs() < 0.015, "period {p} s is a multiple of the beat");
    // Pattern layers: inside the file, on the lanes, with a readable profile; the beat among them.
    let duration = json["duration_s"].as_f64().unwrap();
    let bands = json["profile_bands_hz"].as_array().unwrap().len();
    let scales: Vec<f64> = layers.iter().map(|l| l["scale_s"].as_f64().unwrap()).collect();
    let patterns = json["patterns"].as_array().unwrap();
    for p in patterns {
        let period = p["period_s"].as_f64().unwrap();
        assert!(period > 0.0 && period <= duration, "{p}");
        assert!((p["period_beats"].as_f64().unwrap() - period * 2.0).abs() < 1e-9);
        assert!(scales.contains(&p["scale_s"].as_f64().unwrap()), "{p}");
        assert_eq!(p["profile"].as_array().unwrap().len(), bands);
        assert!(["low", "mid", "high", "wide"].contains(&p["register"].as_str().unwrap()));
        for c in p["changes"].as_array().unwrap().iter().chain(p["active"].as_array().unwrap()) {
            let (a, b) = (c["start_s"].as_f64().unwrap(), c["end_s"].as_f64().unwrap());
            assert!(0.0 <= a && a <= b && b <= duration + 0.1, "{c}");
        }
    }
    assert!(
        patterns.iter().any(|p| (p["period_s"].as_f64().unwrap() - 0.5).abs() <= 0.015),
        "the beat (0.5 s at 120 BPM) is a pattern layer: {patterns:?}"
    );
    let png = std::fs::read(out.join("strata.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(std::fs::read_dir(&out).unwrap().count() == 2, "only strata.json and strata.png remain");
    assert_eq!(highlighted_pixels(&out.join("strata.png")), 0, "nothing is highlighted unless asked");

    // The layer a user picks (as a click in the editor picks it) is highlighted in the picture.
    let picked = patterns.iter().max_by_key(|p| p["changes"].as_array().unwrap().len()).unwrap()["period_s"].as_f64().unwrap();
    let lit = temp("highlight");
    let o = strata().args(["analyze", "--quiet", "--highlight", &format!("{picked}"), "--out"]).arg(&lit).arg(asset()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(highlighted_pixels(&lit.join("strata.png")) > 500, "the picked layer's stripe and stretches are drawn");
    let o = strata().args(["analyze", "--quiet", "--highlight", "-2", "--out"]).arg(&lit).arg(asset()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--highlight -2 is not a positive period"), "{err}");
    std::fs::remove_dir_all(out).unwrap();
    std::fs::remove_dir_all(lit).unwrap();
}

/// Pixels of `png` in the highlight colour of the picture (and the editor), exactly.
fn highlighted_pixels(png: &Path) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "plotters writes RGB");
    buf[..info.buffer_size()].chunks_exact(3).filter(|px| px == &[0x7C, 0xC8, 0xFF]).count()
}

/// `--candidates` writes the period head's training data: every candidate each round of the
/// layer search weighed, one chosen per round, the chosen ones being the layers reported; and
/// the attribution head's: every layer each change could go to, the one it went to chosen.
#[test]
fn analyze_writes_the_candidates_the_layer_search_weighed() {
    let out = temp("candidates");
    let o = strata().args(["analyze", "--quiet", "--candidates", "--out"]).arg(&out).arg(asset()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("strata.json")).unwrap()).unwrap();
    let periods: Vec<f64> = json["patterns"].as_array().unwrap().iter().map(|p| p["period_s"].as_f64().unwrap()).collect();
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(out.join("candidates.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() > periods.len(), "{} candidates for {} layers", rows.len(), periods.len());
    let chosen: Vec<f64> = rows.iter().filter(|r| r["chosen"] == true).map(|r| r["period_s"].as_f64().unwrap()).collect();
    assert_eq!(chosen.len(), periods.len());
    for c in &chosen {
        assert!(periods.iter().any(|p| (p - c).abs() <= 0.03 * c), "chosen {c} s is not among the layers {periods:?}");
    }
    for r in &rows {
        assert_eq!(r["features"].as_array().unwrap().len(), strata::layers::patterns::CANDIDATE_FEATURES);
    }

    // Every change was weighed for every layer, and given to the one chosen.
    let weighed: Vec<serde_json::Value> = std::fs::read_to_string(out.join("attributions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let given: Vec<(f64, f64, f64)> = json["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["changes"].as_array().unwrap().iter().map(move |c| (c["start_s"].as_f64().unwrap(), c["end_s"].as_f64().unwrap(), p["period_s"].as_f64().unwrap())))
        .collect();
    assert!(!given.is_empty(), "the example has changes");
    assert_eq!(weighed.len(), given.len() * periods.len());
    let chosen: Vec<(f64, f64, f64)> = weighed
        .iter()
        .filter(|r| r["chosen"] == true)
        .map(|r| (r["start_s"].as_f64().unwrap(), r["end_s"].as_f64().unwrap(), r["period_s"].as_f64().unwrap()))
        .collect();
    assert_eq!(chosen.len(), given.len());
    for c in &chosen {
        assert!(given.contains(c), "change {c:?} is not on the layer chosen for it: {given:?}");
    }
    for r in &weighed {
        assert_eq!(r["features"].as_array().unwrap().len(), strata::layers::attribution::ATTRIBUTION_FEATURES);
    }

    // Without the flag, no such files.
    let plain = temp("no-candidates");
    let o = strata().args(["analyze", "--quiet", "--out"]).arg(&plain).arg(asset()).output().unwrap();
    assert!(o.status.success());
    assert!(!plain.join("candidates.jsonl").exists() && !plain.join("attributions.jsonl").exists());
}

/// Runs `strata analyze FILE --out DIR`; expects failure with a one-line message containing
/// `needle`, and no output files.
fn assert_refused(file: &Path, out: &Path, needle: &str) {
    let o = strata().args(["analyze", "--quiet", "--out"]).arg(out).arg(file).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{} was accepted", file.display());
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("strata: ") && last.contains(needle), "{err}");
    assert!(!out.join("strata.json").exists() && !out.join("strata.png").exists());
    if out.is_dir() {
        let left: Vec<_> = std::fs::read_dir(out).unwrap().collect();
        assert!(left.is_empty(), "nothing half-written is left: {left:?}");
    }
}

#[test]
fn bad_input_is_refused_clearly() {
    let dir = temp("bad");
    let empty = dir.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert_refused(&empty, &dir.join("o1"), "is empty");

    let text = dir.join("notes.wav");
    std::fs::write(&text, b"this is not audio at all, just words").unwrap();
    assert_refused(&text, &dir.join("o2"), "not an audio format");

    let truncated = dir.join("truncated.ogg");
    let bytes = std::fs::read(asset()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let o = strata().args(["analyze", "--quiet", "--out"]).arg(dir.join("o3")).arg(&truncated).output().unwrap();
    // Ogg does not record its length up front: a cut file is analysed up to the cut, or refused.
    if o.status.success() {
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("o3/strata.json")).unwrap()).unwrap();
        assert!(json["duration_s"].as_f64().unwrap() < 15.0);
    } else {
        assert!(String::from_utf8_lossy(&o.stderr).contains("truncated.ogg"));
    }

    let missing = dir.join("nope.flac");
    assert_refused(&missing, &dir.join("o4"), "cannot open");

    // An output folder that cannot be made (its parent is a file).
    let blocker = dir.join("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    let o = strata().args(["analyze", "--quiet", "--out"]).arg(blocker.join("out")).arg(asset()).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot create output folder"), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn nan_samples_multichannel_and_odd_rates_are_analysed() {
    let dir = temp("odd");
    let rate = 37_800;
    let n = rate as usize * 21;
    let mut quad = Vec::with_capacity(n * 4);
    for i in 0..n {
        let s = ((i as f32) * 2.0 * std::f32::consts::PI * 330.0 / rate as f32).sin() * 0.4;
        let s = if i % 1000 == 0 { f32::NAN } else { s };
        quad.extend_from_slice(&[s, -s, s * 0.5, 0.0]);
    }
    let wav = dir.join("quad.wav");
    write_wav(&wav, 4, rate, &quad);
    let out = dir.join("out");
    let o = strata().args(["analyze", "--quiet", "--out"]).arg(&out).arg(&wav).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("strata.json")).unwrap()).unwrap();
    assert_eq!(json["sample_rate"], rate);
    assert!((json["duration_s"].as_f64().unwrap() - 21.0).abs() < 1e-3);
    // A folder argument analyses every audio file in it, one subfolder each.
    let silent = dir.join("silent.wav");
    write_wav(&silent, 1, 44_100, &vec![0.0; 44_100 * 3]);
    let o = strata().args(["analyze", "--quiet", "--out"]).arg(dir.join("all")).arg(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join("all/quad/strata.json").is_file() && dir.join("all/silent/strata.png").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_batch_goes_on_past_bad_files_names_each_and_fails_only_for_them() {
    let dir = temp("batch");
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    let tone = |seconds: usize, rate: u32| -> Vec<f32> {
        (0..seconds * rate as usize).map(|i| (i as f32 * 0.05).sin() * 0.3).collect()
    };
    // A length that is a whole number of the resampler's chunks (1024 samples) once failed.
    write_wav(&music.join("a.wav"), 2, 44_100, &tone(2, 44_100)[..2 * 1024 * 40]);
    std::fs::write(music.join("b_corrupt.wav"), b"RIFF\x24\x00\x00\x00WAVEfmt nonsense").unwrap();
    write_wav(&music.join("c.wav"), 1, 8_000, &tone(3, 8_000));
    std::fs::write(music.join("d_empty.flac"), b"").unwrap();
    // Two inputs with one stem: each gets a folder of its own.
    write_wav(&music.join("e.wav"), 1, 22_050, &tone(2, 22_050));
    std::fs::copy(music.join("e.wav"), dir.join("e.wav")).unwrap();
    let out = dir.join("out");
    let o = strata()
        .args(["analyze", "--quiet", "--jobs", "3", "--out"])
        .arg(&out)
        .arg(&music)
        .arg(dir.join("e.wav"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a batch with bad files exits non-zero: {err}");
    for bad in ["b_corrupt.wav", "d_empty.flac"] {
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(bad)).collect();
        assert_eq!(lines.len(), 1, "{bad} is named on one line: {err}");
        assert!(lines[0].starts_with("strata: analysing "), "{err}");
        let stem = bad.split('.').next().unwrap();
        assert!(!out.join(stem).exists(), "nothing is left for {bad}");
    }
    assert!(err.contains("4 of 6 files analysed, 2 failed"), "{err}");
    assert!(err.lines().last().unwrap().contains("2 of 6 files failed"), "{err}");
    for good in ["a", "c", "e.wav", "e.wav-2"] {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(good).join("strata.json")).unwrap()).unwrap();
        common::check_analysis_json(&json);
        assert!(out.join(good).join("strata.png").is_file());
    }

    // Only good files: exit 0, and the same results as one file at a time.
    std::fs::remove_file(music.join("b_corrupt.wav")).unwrap();
    std::fs::remove_file(music.join("d_empty.flac")).unwrap();
    let o = strata().args(["analyze", "--quiet", "--out"]).arg(dir.join("again")).arg(&music).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let single = dir.join("single");
    let o = strata().args(["analyze", "--quiet", "--out"]).arg(&single).arg(music.join("c.wav")).output().unwrap();
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.join("again/c/strata.json")).unwrap(),
        std::fs::read_to_string(single.join("strata.json")).unwrap()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A library-sized folder: a thousand generated files of random length (empty to 3 s), rate
/// (8 to 192 kHz), channel count (1 to 8) and sample format, with a few corrupt ones among them.
#[test]
fn a_thousand_file_folder_gives_one_result_per_good_file_and_names_each_bad_one() {
    let dir = temp("library");
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    let rates = [8_000_u32, 11_025, 16_000, 22_050, 32_000, 37_800, 44_100, 48_000, 88_200, 96_000, 192_000];
    let formats = [(8, hound::SampleFormat::Int), (16, hound::SampleFormat::Int), (24, hound::SampleFormat::Int), (32, hound::SampleFormat::Float)];
    let mut x: u64 = 0x5eed;
    let mut random = |n: u64| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % n
    };
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for i in 0..1000 {
        let name = format!("track_{i:04}.wav");
        let path = music.join(&name);
        let rate = rates[random(rates.len() as u64) as usize];
        let channels = 1 + random(8) as u16;
        let (bits_per_sample, sample_format) = formats[random(formats.len() as u64) as usize];
        let frames = random(3 * u64::from(rate)) as usize;
        let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample, sample_format };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for n in 0..frames * usize::from(channels) {
            let v = ((n as f32) * 0.013).sin() * 0.5;
            match (bits_per_sample, sample_format) {
                (32, hound::SampleFormat::Float) => w.write_sample(v).unwrap(),
                (bits, _) => w.write_sample((v * ((1 << (bits - 1)) - 1) as f32) as i32).unwrap(),
            }
        }
        w.finalize().unwrap();
        if i % 97 == 13 {
            // Corrupt: the header cut short, or the body overwritten with noise.
            let bytes = std::fs::read(&path).unwrap();
            let cut = if i % 2 == 0 { 20.min(bytes.len()) } else { 0 };
            let corrupt: Vec<u8> = if cut > 0 { bytes[..cut].to_vec() } else { (0..4000).map(|k| (k * 37 % 251) as u8).collect() };
            std::fs::write(&path, corrupt).unwrap();
            bad.push(name);
        } else if frames == 0 {
            bad.push(name); // a WAV with no audio in it is refused too
        } else {
            good.push(name);
        }
    }
    let out = dir.join("out");
    let o = strata().args(["analyze", "--quiet", "--out"]).arg(&out).arg(&music).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.success(), bad.is_empty(), "{err}");
    for name in &bad {
        let lines = err.lines().filter(|l| l.contains(name.as_str())).count();
        assert_eq!(lines, 1, "{name} is named on one line");
        assert!(!out.join(name.trim_end_matches(".wav")).exists(), "nothing is left for {name}");
    }
    for name in &good {
        let folder = out.join(name.trim_end_matches(".wav"));
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(folder.join("strata.json")).unwrap()).unwrap();
        common::check_analysis_json(&json);
        assert_eq!(json["source"], name.as_str());
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), good.len(), "one result per good file, nothing else");
    assert!(err.contains(&format!("{} of 1000 files analysed, {} failed", good.len(), bad.len())), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn export_writes_stems_that_sum_back_to_the_input_and_annotations_that_parse() {
    let out = temp("export");
    let o = strata().args(["export", "--quiet", "--out"]).arg(&out).arg(asset()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    common::check_export(&out, &asset());

    // An export is never overwritten without asking...
    let before = std::fs::read(out.join("strata.json")).unwrap();
    let o = strata().args(["export", "--quiet", "--out"]).arg(&out).arg(asset()).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already holds an export") && err.lines().count() <= 2, "{err}");
    assert_eq!(std::fs::read(out.join("strata.json")).unwrap(), before);
    // ...and replaced whole when asked.
    std::fs::write(out.join("stale.txt"), b"from an earlier export").unwrap();
    let o = strata().args(["export", "--quiet", "--replace", "--out"]).arg(&out).arg(asset()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.join("stale.txt").exists(), "the old export was replaced, not merged into");
    common::check_export(&out, &asset());
    // A folder holding anything else is never replaced.
    let other = temp("export-other");
    std::fs::write(other.join("my song.wav"), b"precious").unwrap();
    let o = strata().args(["export", "--quiet", "--replace", "--out"]).arg(&other).arg(asset()).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a Strata export"));
    assert_eq!(std::fs::read(other.join("my song.wav")).unwrap(), b"precious");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    let parent_entries = |dir: &Path| {
        std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".strata-"))
            .count()
    };
    assert_eq!(parent_entries(&out), 0, "no staging folder is left behind");
    std::fs::remove_dir_all(out).unwrap();
    std::fs::remove_dir_all(other).unwrap();
}

#[test]
fn an_export_that_cannot_finish_writing_leaves_nothing_and_says_why() {
    // A file-size limit makes every write past 1 MiB fail part-way through the stems, as a disk
    // filling up does (EFBIG here rather than ENOSPC; the same error path). SIGXFSZ is ignored so
    // the write returns the error instead of killing the process.
    let dir = temp("export-limit");
    let out = dir.join("out");
    let o = Command::new("bash")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1024; exec \"$0\" export --quiet --out \"$1\" \"$2\"")
        .arg(env!("CARGO_BIN_EXE_strata"))
        .arg(&out)
        .arg(asset())
        .env_remove("STRATA_MODELS")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot write") && err.contains(".wav"), "{err}");
    assert!(!out.exists(), "no export folder appears");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "no staging folder is left: {left:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
