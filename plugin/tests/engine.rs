//! The engine gives the same layers whether audio arrives whole (offline, `strata analyze`) or in
//! blocks of any size (the plugin's worker), and copes with odd input.

use std::path::Path;

use strata::audio_file::AudioFile;
use strata::engine::Engine;
use strata::inference::{runtime, ModelSet, Workload};
use strata::layers::Analysis;

mod common;
use common::assert_same;

fn models_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("models")
}

fn engine(rate: u32) -> Engine {
    let rt = runtime().expect("ONNX Runtime (cargo xtask fetch-ort)");
    let models = ModelSet::load(&models_dir(), rt, Workload::Streaming).expect("models load");
    Engine::new(models, rate).expect("engine")
}

fn asset_mono(seconds: f64) -> (Vec<f32>, u32) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/machine_wars_excerpt.ogg");
    let mut file = AudioFile::open(&path).unwrap();
    let rate = file.sample_rate();
    let mut all = Vec::new();
    let mut block = Vec::new();
    while file.read_mono(&mut block).unwrap() {
        all.extend_from_slice(&block);
    }
    all.truncate((seconds * f64::from(rate)) as usize);
    (all, rate)
}

fn analyse(audio: &[f32], rate: u32, blocks: &[usize]) -> Analysis {
    let mut e = engine(rate);
    let mut updates = Vec::new();
    let mut pos = 0;
    let mut sizes = blocks.iter().cycle();
    while pos < audio.len() {
        let n = (*sizes.next().unwrap()).min(audio.len() - pos);
        e.push(&audio[pos..pos + n], &mut updates).unwrap();
        pos += n;
    }
    e.finish(&mut updates).unwrap();
    let frames: usize = e.analysis("x", None, 4.0).layers.iter().map(|l| l.frames.time_s.len()).sum();
    assert_eq!(updates.len(), frames, "every layer step was also sent live");
    e.analysis("x", None, 4.0)
}

#[test]
fn streaming_in_any_block_size_matches_offline() {
    let (audio, rate) = asset_mono(25.0);
    let offline = analyse(&audio, rate, &[audio.len()]);
    assert!(offline.layers.iter().all(|l| !l.frames.time_s.is_empty()), "25 s fill every scale's window");
    let mut random = Vec::new();
    let mut x: u32 = 99;
    for _ in 0..50 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        random.push(1 + (x >> 16) as usize % 5000);
    }
    for (name, blocks) in [("64", vec![64]), ("4096", vec![4096]), ("random", random)] {
        assert_same(&offline, &analyse(&audio, rate, &blocks), name);
    }
    // Block size 1 on a shorter piece (one push per sample is slow in a debug build).
    let short = &audio[..(12.0 * f64::from(rate)) as usize];
    assert_same(&analyse(short, rate, &[short.len()]), &analyse(short, rate, &[1]), "1");
}

#[test]
fn odd_rates_nan_and_silence_give_well_formed_layers() {
    for rate in [22_050_u32, 37_800, 96_000] {
        let n = (21.0 * f64::from(rate)) as usize;
        let mut audio: Vec<f32> = (0..n).map(|i| ((i as f32) * std::f32::consts::TAU * 220.0 / rate as f32).sin() * 0.5).collect();
        for s in audio.iter_mut().step_by(97) {
            *s = f32::NAN;
        }
        audio[1000..40_000].iter_mut().for_each(|s| *s = 0.0);
        let a = analyse(&audio, rate, &[777]);
        assert!((a.duration_s - 21.0).abs() < 1e-3);
        for layer in &a.layers {
            assert!(layer.frames.surprise.iter().all(|z| z.is_finite()), "{rate} Hz: finite surprise");
            assert!(layer.frames.time_s.last().copied().unwrap_or(0.0) <= 21.0 + 1e-9);
        }
    }
}

#[test]
fn a_history_limit_keeps_memory_flat_and_the_recent_layers_the_same() {
    // 90 s of the example (looped) with a 40 s history: the lanes hold only their last 40 s (and
    // a quarter more while a batch of old steps waits to go), and what they hold is what an
    // unlimited engine has for those steps.
    let (audio, rate) = asset_mono(30.0);
    let looped: Vec<f32> = audio.iter().cycle().take(audio.len() * 3).copied().collect();
    let mut limited = engine(rate);
    limited.set_history(Some(40.0));
    let mut full = engine(rate);
    let mut updates = Vec::new();
    for block in looped.chunks(4096) {
        limited.push(block, &mut updates).unwrap();
        full.push(block, &mut updates).unwrap();
    }
    let (a, b) = (limited.analysis("x", None, 4.0), full.analysis("x", None, 4.0));
    for (l, f) in a.layers.iter().zip(&b.layers) {
        let first = l.frames.time_s[0];
        assert!(first >= 90.0 - 40.0 * 1.25 - l.hop_s && first <= 90.0 - 40.0 + l.hop_s, "lane {}: oldest step {first} s", l.scale_s);
        let skip = f.frames.time_s.iter().position(|&t| t == first).expect("the same steps");
        assert_eq!(l.frames.token, f.frames.token[skip..], "lane {}", l.scale_s);
        assert_eq!(l.frames.surprise, f.frames.surprise[skip..], "lane {}", l.scale_s);
        // The lane's changes are its pattern layers', found in the last 40 s of log-mel frames.
        assert!(l.changes.iter().all(|c| c.time_s >= 90.0 - 40.0 - 1e-6), "lane {}: a change from before the history", l.scale_s);
    }
}

#[test]
fn a_pattern_snapshot_finds_what_the_engine_finds_while_the_engine_goes_on() {
    // The live worker searches a snapshot on another thread: the snapshot must give exactly the
    // engine's layers at the moment it was taken, whatever the engine hears afterwards.
    let (audio, rate) = asset_mono(30.0);
    let mut e = engine(rate);
    let mut updates = Vec::new();
    let half = audio.len() / 2;
    e.push(&audio[..half], &mut updates).unwrap();
    let snapshot = e.pattern_snapshot();
    let now = e.patterns();
    assert!(!now.is_empty(), "15 s of the example hold pattern layers");
    let searcher = std::thread::spawn(move || snapshot.patterns());
    e.push(&audio[half..], &mut updates).unwrap();
    assert_eq!(searcher.join().unwrap(), now);
    assert_ne!(e.patterns(), now, "the engine has moved on");
}

#[test]
fn a_ten_minute_loop_keeps_the_layers_its_first_three_passes_have() {
    // Over a long exact loop, the loop's own period matches itself perfectly in every part of the
    // sound and outweighs the shorter layers more with every pass; the beat and the riff inside it
    // must still be heard at the end of a long session, as they are after three passes.
    let (audio, rate) = asset_mono(30.0);
    let periods = |passes: usize| {
        let looped: Vec<f32> = audio.iter().cycle().take(audio.len() * passes).copied().collect();
        let mut e = engine(rate);
        let mut updates = Vec::new();
        for block in looped.chunks(1 << 16) {
            e.push(block, &mut updates).unwrap();
        }
        e.finish(&mut updates).unwrap();
        e.patterns().iter().map(|p| p.period_s).collect::<Vec<_>>()
    };
    let (short, long) = (periods(3), periods(22));
    assert!(short.len() >= 2, "three passes of the example hold layers: {short:?}");
    assert_eq!(short.len(), long.len(), "after 90 s {short:?}, after 660 s {long:?}");
    for (s, l) in short.iter().zip(&long) {
        assert!((s - l).abs() <= 0.03 * s, "after 90 s {short:?}, after 660 s {long:?}");
    }
}
