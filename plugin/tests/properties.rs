//! Property tests over the space of inputs users feed Strata, not chosen examples: any rate from
//! 8 to 192 kHz, 1 to 8 channels, every PCM sample format a WAV file carries, lengths from empty
//! to several blocks and clustered around every internal chunk size, silence, DC, clipping, NaN
//! and infinity runs, and any sequence of host block sizes.
//!
//! Each case checks what a user relies on: the file decodes to what was written; the analysis
//! (the CLI's path) neither panics nor fails, passes the documented schema, and keeps every time
//! inside the file; streaming the same audio in the generated blocks (the plugin's worker) gives
//! the same layers; and the export's stems sum back to the input within 1e-6.
//!
//! Every failure proptest finds is shrunk to a small case and printed; add it to the
//! `regressions` test at the end so it stays found.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use strata::audio_file::AudioFile;
use strata::engine::Engine;
use strata::export::job::{analyse_file, export, ExportError, ExportProgress, ExportRequest};
use strata::inference::{runtime, ModelSet, Workload};

mod common;
use common::{assert_same, check_analysis_json, read_wav};

/// The model rate's internal chunks, in seconds: one log-mel hop, then each encoder's window.
const WINDOWS_S: [f64; 7] = [0.02, 0.2, 1.0, 2.0, 5.0, 10.0, 20.0];
/// Input samples per resampler chunk (`dsp::resample`).
const RESAMPLER_CHUNK: usize = 1024;

fn models() -> ModelSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("models");
    let rt = runtime().expect("ONNX Runtime (cargo xtask fetch-ort)");
    ModelSet::load(&dir, rt, Workload::Streaming).expect("models load")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    U8,
    I16,
    I24,
    I32,
    F32,
}

impl Format {
    fn spec(self, channels: u16, sample_rate: u32) -> hound::WavSpec {
        let (bits_per_sample, sample_format) = match self {
            Format::U8 => (8, hound::SampleFormat::Int),
            Format::I16 => (16, hound::SampleFormat::Int),
            Format::I24 => (24, hound::SampleFormat::Int),
            Format::I32 => (32, hound::SampleFormat::Int),
            Format::F32 => (32, hound::SampleFormat::Float),
        };
        hound::WavSpec { channels, sample_rate, bits_per_sample, sample_format }
    }

    /// The largest difference between a sample written and the one decoded (one quantisation
    /// step, and then some for the decoder's scaling).
    fn tolerance(self) -> f32 {
        match self {
            Format::U8 => 2.0 / 128.0,
            Format::I16 => 2.0 / 32_768.0,
            Format::I24 | Format::I32 => 1e-6,
            Format::F32 => 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Content {
    Silence,
    Dc,
    Tone,
    Noise,
    /// A tone far past full scale: integer formats clip it, float keeps it.
    Clipped,
    /// Noise with runs of NaN and of +/- infinity (float only; integer formats cannot hold them).
    NonFinite,
    /// Clicks every 0.25 s: something that repeats, so the layers have a period to find.
    Clicks,
}

#[derive(Debug, Clone)]
struct Input {
    rate: u32,
    channels: u16,
    format: Format,
    content: Content,
    frames: usize,
    blocks: Vec<usize>,
    seed: u64,
}

/// A small deterministic generator (the content must not depend on the test's own RNG state).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

impl Input {
    /// Interleaved samples, as the file should hold them after quantisation.
    fn samples(&self) -> Vec<f32> {
        let ch = usize::from(self.channels);
        let mut rng = Lcg(self.seed);
        let rate = self.rate as f32;
        let mut out = Vec::with_capacity(self.frames * ch);
        for n in 0..self.frames {
            for c in 0..ch {
                let t = n as f32 / rate;
                let phase = 2.0 * std::f32::consts::PI * (220.0 + 110.0 * c as f32) * t;
                let v = match self.content {
                    Content::Silence => 0.0,
                    Content::Dc => 0.5 - 0.2 * c as f32,
                    Content::Tone => 0.5 * phase.sin(),
                    Content::Noise => 0.3 * rng.next(),
                    Content::Clipped => 4.0 * phase.sin(),
                    Content::NonFinite => match (n / 97) % 7 {
                        1 => f32::NAN,
                        3 => f32::INFINITY,
                        5 => f32::NEG_INFINITY,
                        _ => 0.3 * rng.next(),
                    },
                    Content::Clicks => {
                        if n % (self.rate as usize / 4) < 32 { 0.8 * rng.next() } else { 0.0 }
                    }
                };
                out.push(v);
            }
        }
        out
    }

    fn write(&self, path: &Path) -> Vec<f32> {
        let spec = self.format.spec(self.channels, self.rate);
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        let mut stored = Vec::new();
        for v in self.samples() {
            let clipped = if v.is_nan() { 0.0 } else { v.clamp(-1.0, 1.0) };
            let (bits, value) = match self.format {
                Format::F32 => {
                    w.write_sample(v).unwrap();
                    stored.push(v);
                    continue;
                }
                Format::U8 => (8, clipped),
                Format::I16 => (16, clipped),
                Format::I24 => (24, clipped),
                Format::I32 => (32, clipped),
            };
            let full = (1_i64 << (bits - 1)) as f64;
            let q = (f64::from(value) * full).round().clamp(-full, full - 1.0) as i64;
            match bits {
                8 => w.write_sample(q as i8).unwrap(),
                16 => w.write_sample(q as i16).unwrap(),
                _ => w.write_sample(q as i32).unwrap(),
            }
            stored.push((q as f64 / full) as f32);
        }
        w.finalize().unwrap();
        stored
    }
}

fn rate() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => prop::sample::select(vec![8_000_u32, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 88_200, 96_000, 176_400, 192_000]),
        1 => 8_000_u32..=192_000,
    ]
}

fn format() -> impl Strategy<Value = Format> {
    prop::sample::select(vec![Format::U8, Format::I16, Format::I24, Format::I32, Format::F32])
}

fn content() -> impl Strategy<Value = Content> {
    prop::sample::select(vec![
        Content::Silence,
        Content::Dc,
        Content::Tone,
        Content::Noise,
        Content::Clipped,
        Content::NonFinite,
        Content::Clicks,
    ])
}

/// Lengths in frames at `rate`: anything up to a few resampler chunks; a few frames either side
/// of a multiple of the resampler's chunk; or a few either side of one of the model's windows.
fn frames(rate: u32) -> impl Strategy<Value = usize> {
    let window = prop::sample::select(WINDOWS_S.to_vec());
    prop_oneof![
        0..4 * RESAMPLER_CHUNK,
        (1..8_usize, -2..=2_isize).prop_map(|(k, d)| (k * RESAMPLER_CHUNK).saturating_add_signed(d)),
        (window, -2..=2_isize).prop_map(move |(s, d)| ((s * f64::from(rate)).round() as usize).saturating_add_signed(d)),
    ]
}

fn input(max_channels: u16, max_seconds: f64) -> impl Strategy<Value = Input> {
    (rate(), 1..=max_channels, format(), content(), any::<u64>())
        .prop_flat_map(move |(rate, channels, format, content, seed)| {
            let most = (max_seconds * f64::from(rate)) as usize;
            let content = if format == Format::F32 || content != Content::NonFinite { content } else { Content::Noise };
            (
                frames(rate).prop_map(move |n| n.min(most)),
                prop::collection::vec(prop_oneof![1_usize..64, 64_usize..8_192], 1..6),
            )
                .prop_map(move |(frames, blocks)| Input { rate, channels, format, content, frames, blocks, seed })
        })
}

/// 19 to 24 s (past every lane's 20 s window, where the layers and their changes appear), at most
/// two channels at up to 48 kHz (what a debug build analyses in a second or two).
fn long_input() -> impl Strategy<Value = Input> {
    (input(2, 24.0), 19.0..24.0_f64, prop::sample::select(vec![8_000_u32, 22_050, 44_100, 48_000, 37_811]))
        .prop_map(|(input, seconds, rate)| Input { rate, frames: (seconds * f64::from(rate)) as usize, ..input })
}

fn temp_wav(tag: &str, seed: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-prop-{tag}-{}-{seed:016x}", std::process::id()));
    // A case shrinking from a failure runs again under the same seed: start from nothing.
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("input.wav")
}

/// A decoded sample matches the one stored, NaN for NaN.
fn same_sample(stored: f32, decoded: f32, tolerance: f32) -> bool {
    if stored.is_nan() || decoded.is_nan() {
        return stored.is_nan() && decoded.is_nan();
    }
    if stored.is_infinite() || decoded.is_infinite() {
        return stored == decoded;
    }
    (stored - decoded).abs() <= tolerance
}

/// The file decodes to what was written, and the analysis holds its invariants.
fn check_analysis(input: &Input) -> Result<(), TestCaseError> {
    let path = temp_wav("analysis", input.seed);
    let stored = input.write(&path);
    let ch = usize::from(input.channels);

    let mut file = AudioFile::open(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!((file.sample_rate(), file.channels()), (input.rate, ch));
    let mut decoded = vec![Vec::new(); ch];
    while file.read_planar(&mut decoded).map_err(|e| TestCaseError::fail(e.to_string()))? {}
    prop_assert!(decoded.iter().all(|c| c.len() == input.frames), "decoded {} frames of {}", decoded[0].len(), input.frames);
    let tolerance = input.format.tolerance();
    for (i, &s) in stored.iter().enumerate() {
        let d = decoded[i % ch][i / ch];
        prop_assert!(same_sample(s, d, tolerance), "sample {} channel {}: wrote {}, read {}", i / ch, i % ch, s, d);
    }

    let offline = match analyse_file(&path, models(), "input.wav", Some(120.0), 4.0, &ExportProgress::new()) {
        Err(ExportError::NoAudio { .. }) if input.frames == 0 => {
            std::fs::remove_dir_all(path.parent().unwrap()).ok();
            return Ok(());
        }
        other => other.map_err(|e| TestCaseError::fail(format!("analysis failed: {e}")))?,
    };
    prop_assert_eq!(offline.frames as usize, input.frames);
    let json = serde_json::to_value(&offline.analysis).unwrap();
    check_analysis_json(&json);
    prop_assert!((offline.analysis.duration_s - input.frames as f64 / f64::from(input.rate)).abs() < 1e-6);

    // The plugin's worker: the same mono mix arriving in the generated host blocks.
    let mut mono = Vec::new();
    let mut file = AudioFile::open(&path).unwrap();
    let mut block = Vec::new();
    while file.read_mono(&mut block).unwrap() {
        mono.extend_from_slice(&block);
    }
    let mut engine = Engine::new(models(), input.rate).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let (mut pos, mut sizes, mut updates) = (0, input.blocks.iter().cycle(), Vec::new());
    while pos < mono.len() {
        let n = (*sizes.next().unwrap()).min(mono.len() - pos);
        engine.push(&mono[pos..pos + n], &mut updates).map_err(|e| TestCaseError::fail(e.to_string()))?;
        pos += n;
    }
    engine.finish(&mut updates).map_err(|e| TestCaseError::fail(e.to_string()))?;
    assert_same(&offline.analysis, &engine.analysis("input.wav", Some(120.0), 4.0), &format!("{input:?}"));
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
    Ok(())
}

/// The export's stems sum back to the input within 1e-6, sample for sample (a non-finite input
/// sample is silence in every stem, as the README says).
fn check_export_sums(input: &Input) -> Result<(), TestCaseError> {
    let path = temp_wav("export", input.seed);
    let stored = input.write(&path);
    let ch = usize::from(input.channels);
    let dest = path.parent().unwrap().join("export");
    let request = ExportRequest {
        input: path.clone(),
        dest: dest.clone(),
        replace: false,
        source_name: None,
        tempo_bpm: None,
        beats_per_bar: 4.0,
        highlight_period_s: None,
    };
    match export(&request, models(), &ExportProgress::new()) {
        Err(ExportError::NoAudio { .. }) if input.frames == 0 => {
            prop_assert!(!dest.exists(), "a refused export leaves nothing");
            std::fs::remove_dir_all(path.parent().unwrap()).ok();
            return Ok(());
        }
        other => other.map_err(|e| TestCaseError::fail(format!("export failed: {e}")))?,
    };
    check_analysis_json(&serde_json::from_str(&std::fs::read_to_string(dest.join("strata.json")).unwrap()).unwrap());
    let mut sum = vec![0.0_f64; stored.len()];
    let mut stems = 0;
    for entry in std::fs::read_dir(&dest).unwrap() {
        let stem = entry.unwrap().path();
        if !stem.file_name().unwrap().to_string_lossy().starts_with("stem_") {
            continue;
        }
        stems += 1;
        let (rate, audio) = read_wav(&stem);
        prop_assert_eq!(rate, input.rate);
        prop_assert_eq!(audio.len(), ch);
        for (c, channel) in audio.iter().enumerate() {
            prop_assert_eq!(channel.len(), input.frames, "{:?}", stem);
            for (n, &v) in channel.iter().enumerate() {
                sum[n * ch + c] += f64::from(v);
            }
        }
    }
    prop_assert!(stems >= 1, "at least the residual stem");
    for (i, (&s, &x)) in sum.iter().zip(&stored).enumerate() {
        // A NaN or infinite sample is silence to the analysis and the stems: they sum to 0 there,
        // within the same 1e-6 (the spectral masks spread their neighbours' sound over it, and
        // the residual cancels that in f32).
        let expected = if x.is_finite() { f64::from(x) } else { 0.0 };
        let ok = (s - expected).abs() <= 1e-6;
        prop_assert!(ok, "sample {} channel {}: stems sum to {}, input {}", i / ch, i % ch, s, x);
    }
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
    Ok(())
}

/// `PROPTEST_CASES` (default 256) short cases; the long and export tests run a fraction of it.
fn config(fraction: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig { cases: (base.cases / fraction).max(1), failure_persistence: None, ..base }
}

proptest! {
    #![proptest_config(config(1))]

    #[test]
    fn any_short_file_decodes_analyses_and_streams_like_offline(input in input(8, 6.0)) {
        check_analysis(&input)?;
    }
}

proptest! {
    #![proptest_config(config(8))]

    /// Long enough for every lane's window (20 s), where the layers and their changes appear.
    #[test]
    fn any_long_file_analyses_and_streams_like_offline(input in long_input()) {
        check_analysis(&input)?;
    }
}

proptest! {
    #![proptest_config(config(4))]

    #[test]
    fn any_file_exports_stems_that_sum_back_to_it(input in input(3, 6.0)) {
        check_export_sums(&input)?;
    }
}

/// Inputs the failing class was found with, kept as fixed cases.
#[test]
fn regressions() {
    let cases = [
        // Lengths that are a multiple of the resampler's chunk: the flush handed rubato an empty
        // slice ("Insufficient buffer size 0 for input channel 0, expected 1024").
        Input { rate: 44_100, channels: 2, format: Format::I16, content: Content::Tone, frames: 3 * RESAMPLER_CHUNK, blocks: vec![4096], seed: 1 },
        Input { rate: 48_000, channels: 1, format: Format::F32, content: Content::Noise, frames: RESAMPLER_CHUNK, blocks: vec![1, 700], seed: 2 },
        // A rate that shares no factor with the model's: the resampler's block needs several
        // chunks, and the flush stopped at the first that gave nothing.
        Input { rate: 8_001, channels: 1, format: Format::I24, content: Content::Dc, frames: 1, blocks: vec![1], seed: 3 },
        Input { rate: 191_999, channels: 3, format: Format::U8, content: Content::Clicks, frames: 5_000, blocks: vec![333], seed: 4 },
        // NaN runs in six seconds of sound: the stems sum to 1.6e-10 at a NaN sample, not to an
        // exact 0 (the property asked for exactly 0 there, stricter than for any other sample).
        Input { rate: 96_000, channels: 1, format: Format::F32, content: Content::NonFinite, frames: 576_000, blocks: vec![1], seed: 7_327_553_706_872_814_361 },
    ];
    for input in &cases {
        check_analysis(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        check_export_sums(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    }
}
