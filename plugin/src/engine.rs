//! The analysis engine: audio in, pattern layers out. The plugin's worker streams into it as
//! audio arrives; `strata analyze` pushes a whole file through the very same code, so the two
//! never disagree.
//!
//! samples (host rate) → resample to the model rate → log-mel frames → frame embeddings →
//! per scale, at its hop: encoder (vector + token) → tower level (prediction, surprise) →
//! segments. The log-mel frames are also kept (see [`crate::layers::patterns`]), and beside them
//! a finer spectrum of the lowest notes ([`crate::dsp::bass`]): the pattern layers, with their
//! periods and changed stretches, are found in them when asked for, and the tower's surprise
//! confirms those changes.

use std::collections::VecDeque;

use crate::dsp::bass::BassSpectrum;
use crate::dsp::logmel::{self, LogMel};
use crate::dsp::resample::{ResampleError, StreamResampler};
use crate::inference::models::{ModelError, ModelSet, TowerState};
use crate::layers::patterns::{BassHistory, MelHistory, PatternConfig, Trace, PROFILE_BANDS};
use crate::layers::{self, Analysis, Change, ChangeDetector, Frames, Layer, LayerFrame, Pattern, FORMAT_VERSION};

/// Everything that can stop the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// The lag range (seconds) in which layer `i` looks for its period: from half its scale to twice
/// it, and reaching down to where the layer below stops, so no period between two layers' ranges
/// is missed (with scales 0.2 and 1 s, a beat of 0.4–0.5 s would otherwise fall between them).
pub fn period_range(scales_s: &[f64], i: usize) -> (f64, f64) {
    let lo = 0.5 * scales_s[i];
    let lo = if i > 0 { lo.min(2.0 * scales_s[i - 1]) } else { lo };
    (lo, 2.0 * scales_s[i])
}

/// Per-level state.
struct Level {
    window: usize,
    hop: usize,
    /// Index of the next step; its window ends at frame (next + first + 1) * hop.
    next: usize,
    /// Steps before this one cannot fill their window.
    first: usize,
    state: TowerState,
    prediction: Vec<f32>,
    has_prediction: bool,
    /// Recent (window end frame, tower output h), for the level above.
    outputs: VecDeque<(usize, Vec<f32>)>,
    detector: ChangeDetector,
    /// The steps kept (all of them, or the last `step_limit` with a history limit).
    frames: Frames,
    /// Steps dropped from the front of `frames` (a live session's history limit).
    frames_dropped: usize,
    changes: Vec<Change>,
}

impl Level {
    /// The frame (exclusive) at which step `k`'s window ends.
    fn step_end(&self, k: usize) -> usize {
        (k + self.first + 1) * self.hop
    }
}

/// The streaming analysis engine.
pub struct Engine {
    models: ModelSet,
    input_rate: u32,
    resampler: StreamResampler,
    logmel: LogMel,
    /// A fine spectrum under 250 Hz, in lockstep with the log-mel, for hearing changes there.
    bass: BassSpectrum,
    levels: Vec<Level>,
    /// The log-mel frames the pattern layers are found in (and the bass view's beside them).
    history: MelHistory,
    /// With a history limit, the seconds of steps and changes each lane keeps.
    step_history_s: Option<f64>,
    pattern_config: PatternConfig,
    /// Frame embeddings from absolute frame `emb_first` on.
    embeddings: VecDeque<f32>,
    emb_first: usize,
    frames_total: usize,
    input_samples: u64,
    // Scratch, kept to avoid reallocating on every push.
    clean: Vec<f32>,
    resampled: Vec<f32>,
    mel: Vec<f32>,
    bass_frames: Vec<f32>,
    new_emb: Vec<f32>,
    windows: Vec<f32>,
    vectors: Vec<f32>,
    tokens: Vec<u8>,
}

impl Engine {
    /// An engine for audio at `input_rate` Hz.
    pub fn new(models: ModelSet, input_rate: u32) -> Result<Self, EngineError> {
        let m = &models.manifest;
        let resampler = StreamResampler::new(input_rate, m.sample_rate)?;
        let logmel = LogMel::new(m.logmel().clone(), f64::from(m.sample_rate));
        let bass = BassSpectrum::new(f64::from(m.sample_rate), m.logmel().n_fft, m.logmel().hop, m.logmel().log_floor);
        let bass_history = bass_history(&bass, m.logmel(), f64::from(m.sample_rate));
        let levels = m
            .scales
            .iter()
            .map(|s| Level {
                window: s.window_frames,
                hop: s.hop_frames,
                next: 0,
                first: s.window_frames.div_ceil(s.hop_frames) - 1,
                state: TowerState::zeros(m.tower.hidden),
                prediction: vec![0.0; m.vector_dim],
                has_prediction: false,
                outputs: VecDeque::new(),
                detector: ChangeDetector::new(m.change_detection.clone()),
                frames: Frames::default(),
                frames_dropped: 0,
                changes: Vec::new(),
            })
            .collect();
        let scales: Vec<f64> = m.scales.iter().map(|s| s.scale_s).collect();
        let lm = m.logmel();
        let pattern_config = PatternConfig {
            frame_rate: m.frame_rate,
            bins: lm.n_mels,
            lanes: (0..scales.len())
                .map(|i| {
                    let (lo, hi) = period_range(&scales, i);
                    (scales[i], lo, hi)
                })
                .collect(),
            band_edges_hz: profile_band_edges_hz(lm.f_min, lm.f_max),
            period_head: models.period_head.clone(),
            change_head: models.change_head.clone(),
            attribution_head: models.attribution_head.clone(),
        };
        Ok(Self {
            input_rate,
            resampler,
            logmel,
            levels,
            bass,
            history: MelHistory::new(lm.n_mels, None).with_bass(bass_history),
            step_history_s: None,
            pattern_config,
            embeddings: VecDeque::new(),
            emb_first: 0,
            frames_total: 0,
            input_samples: 0,
            clean: Vec::new(),
            resampled: Vec::new(),
            mel: Vec::new(),
            bass_frames: Vec::new(),
            new_emb: Vec::new(),
            windows: Vec::new(),
            vectors: Vec::new(),
            tokens: Vec::new(),
            models,
        })
    }

    pub fn models(&self) -> &ModelSet {
        &self.models
    }

    /// Seconds of input consumed so far.
    pub fn duration_s(&self) -> f64 {
        self.input_samples as f64 / f64::from(self.input_rate)
    }

    /// Feeds samples (mono, host rate); appends every layer step they complete to `updates`.
    /// Non-finite samples are treated as silence.
    pub fn push(&mut self, samples: &[f32], updates: &mut Vec<LayerFrame>) -> Result<(), EngineError> {
        self.input_samples += samples.len() as u64;
        // NaN or infinite samples would poison the resampler's FFT: they count as silence.
        self.clean.clear();
        self.clean.extend(samples.iter().map(|&s| if s.is_finite() { s } else { 0.0 }));
        self.resampled.clear();
        self.resampler.push(&self.clean, &mut self.resampled)?;
        self.process_resampled(updates)
    }

    /// Flushes the end of the stream (call once, after the last `push`).
    pub fn finish(&mut self, updates: &mut Vec<LayerFrame>) -> Result<(), EngineError> {
        self.resampled.clear();
        self.resampler.finish(&mut self.resampled)?;
        self.process_resampled(updates)?;
        for level in &mut self.levels {
            if let Some(k) = level.detector.finish() {
                push_change(level, k, self.models.manifest.frame_rate);
            }
        }
        Ok(())
    }

    fn process_resampled(&mut self, updates: &mut Vec<LayerFrame>) -> Result<(), EngineError> {
        if self.resampled.is_empty() {
            return Ok(());
        }
        self.mel.clear();
        self.bass_frames.clear();
        let made = self.logmel.push(&self.resampled, &mut self.mel);
        // Made at the same samples as the log-mel frames, so as many.
        self.bass.push(&self.resampled, &mut self.bass_frames);
        if made == 0 {
            return Ok(());
        }
        self.new_emb.clear();
        self.models.frame_embeddings(&self.mel, &mut self.new_emb)?;
        self.history.push(&self.mel, &self.bass_frames);
        let d = self.models.manifest.frame_dim;
        self.embeddings.extend(self.new_emb.iter().copied());
        self.frames_total += made;
        for i in 0..self.levels.len() {
            self.step_level(i, updates)?;
        }
        // Every complete window has been used: keep only what the next steps can still need.
        let keep = self.levels.iter().map(|l| l.window + l.hop).max().unwrap_or(0);
        if self.frames_total - self.emb_first > keep {
            let drop = self.frames_total - self.emb_first - keep;
            self.embeddings.drain(..drop * d);
            self.emb_first += drop;
        }
        Ok(())
    }

    /// Runs every step of level `i` whose window is complete.
    fn step_level(&mut self, i: usize, updates: &mut Vec<LayerFrame>) -> Result<(), EngineError> {
        let ends = self.due_step_ends(i);
        if ends.is_empty() {
            return Ok(());
        }
        let d = self.models.manifest.frame_dim;
        let window = self.levels[i].window;
        self.windows.clear();
        for &e in &ends {
            let start = e - window - self.emb_first;
            self.windows.extend(self.embeddings.range(start * d..(start + window) * d));
        }
        self.vectors.clear();
        self.tokens.clear();
        self.models.encode(i, &self.windows, &mut self.vectors, &mut self.tokens)?;
        for (j, &e) in ends.iter().enumerate() {
            updates.push(self.tower_step_at(i, j, e)?);
        }
        self.release_outputs(i);
        Ok(())
    }

    /// The frames (exclusive ends) at which level `i`'s steps not yet taken end, as far as the
    /// frames received reach.
    fn due_step_ends(&self, i: usize) -> Vec<usize> {
        let l = &self.levels[i];
        (l.next..).map(|k| l.step_end(k)).take_while(|&e| e <= self.frames_total).collect()
    }

    /// Level `i`'s step ending at frame `e`, the `j`-th of the vectors just encoded: its surprise
    /// against the last prediction, the tower's next prediction (from this vector and the newest
    /// output of the level below at or before `e`), and the change it may confirm.
    fn tower_step_at(&mut self, i: usize, j: usize, e: usize) -> Result<LayerFrame, EngineError> {
        let frame_rate = self.models.manifest.frame_rate;
        let vd = self.models.manifest.vector_dim;
        let below_dim = self.models.manifest.tower.below_dim;
        let feature = &self.vectors[j * vd..(j + 1) * vd];
        let below = if i == 0 {
            vec![0.0; below_dim]
        } else {
            self.levels[i - 1]
                .outputs
                .iter()
                .rev()
                .find(|(end, _)| *end <= e)
                .map(|(_, h)| h.clone())
                .unwrap_or_else(|| vec![0.0; below_dim])
        };
        let level = &mut self.levels[i];
        let surprise = if level.has_prediction {
            level.prediction.iter().zip(feature).map(|(p, f)| f64::from((p - f) * (p - f))).sum()
        } else {
            0.0
        };
        let mut prediction = vec![0.0; vd];
        self.models.tower_step(i, feature, &below, &mut level.state, &mut prediction)?;
        level.prediction = prediction;
        level.has_prediction = true;
        level.outputs.push_back((e, level.state.h.clone()));
        let (z, confirmed) = level.detector.push(surprise);
        let time_s = e as f64 / frame_rate;
        let token = self.tokens[j];
        level.frames.time_s.push(time_s);
        level.frames.token.push(token);
        level.frames.surprise.push(z as f32);
        let mut change = None;
        if let Some(k) = confirmed {
            push_change(level, k, frame_rate);
            change = level.changes.last().map(|c| (c.time_s, c.strength as f32));
        }
        level.next += 1;
        self.trim_steps(i);
        Ok(LayerFrame {
            level: i,
            time_s,
            token,
            surprise: z as f32,
            change,
            // The worker places it in the song; offline there is no song.
            song_s: None,
        })
    }

    /// Drops the tower outputs no step will read again once level `i` has stepped.
    fn release_outputs(&mut self, i: usize) {
        // Outputs of the level below are needed until this level's next step has read them:
        // keep the newest one at or before that step's end, and everything after it.
        if i > 0 {
            let next_end = self.levels[i].step_end(self.levels[i].next);
            let below = &mut self.levels[i - 1].outputs;
            while below.len() > 1 && below[1].0 <= next_end {
                below.pop_front();
            }
        }
        if i + 1 == self.levels.len() {
            let own = &mut self.levels[i].outputs;
            while own.len() > 1 {
                own.pop_front();
            }
        }
    }

    /// Keeps only the last `seconds` of what the analysis holds (`None`: the whole stream): the
    /// log-mel frames the pattern layers are found in, and each lane's steps and changes. A live
    /// session bounds it, so its memory stays flat however long it runs; a file analysis keeps
    /// everything.
    pub fn set_history(&mut self, seconds: Option<f64>) {
        let frames = seconds.map(|s| (s * self.models.manifest.frame_rate).ceil().max(1.0) as usize);
        self.history.set_limit(frames);
        self.step_history_s = seconds;
    }

    /// Drops the steps and changes of lane `i` older than the history limit, in batches (when a
    /// quarter more than the limit has piled up) so the cost per step stays constant.
    fn trim_steps(&mut self, i: usize) {
        let Some(keep_s) = self.step_history_s else { return };
        let level = &mut self.levels[i];
        let step_s = level.hop as f64 / self.models.manifest.frame_rate;
        let keep = ((keep_s / step_s).ceil() as usize).max(2);
        let n = level.frames.time_s.len();
        if n > keep + keep / 4 {
            let drop = n - keep;
            level.frames.time_s.drain(..drop);
            level.frames.token.drain(..drop);
            level.frames.surprise.drain(..drop);
            level.frames_dropped += drop;
            let oldest_s = level.frames.time_s[0];
            level.changes.retain(|c| c.time_s >= oldest_s);
        }
    }

    /// The pattern layers in the frames heard so far (within the history kept), shortest period
    /// first. Costs a fraction of a second for minutes of audio: call it when needed, not per
    /// block.
    pub fn patterns(&self) -> Vec<Pattern> {
        self.patterns_traced(&mut Trace::default())
    }

    /// [`Engine::patterns`], also noting what the search weighed in `trace` (what the period
    /// and attribution heads are trained on).
    pub fn patterns_traced(&self, trace: &mut Trace) -> Vec<Pattern> {
        let mut patterns = self.history.patterns_traced(&self.pattern_config, trace);
        confirm_by_surprise(&mut patterns, &self.surprise_peaks());
        patterns
    }

    /// What [`Engine::patterns`] needs, copied, so the search can run on another thread while
    /// this engine goes on analysing: `snapshot.patterns()` equals `self.patterns()` now. A live
    /// worker uses it, because a search over ten minutes takes longer than its ring holds at an
    /// offline bounce's pace.
    pub fn pattern_snapshot(&self) -> PatternSnapshot {
        PatternSnapshot {
            history: self.history.clone(),
            config: self.pattern_config.clone(),
            surprise: self.surprise_peaks(),
        }
    }

    /// Each lane's surprise peaks, with how near a change's start a peak must be to count.
    fn surprise_peaks(&self) -> Vec<LaneSurprise> {
        let frame_rate = self.models.manifest.frame_rate;
        self.models
            .manifest
            .scales
            .iter()
            .zip(&self.levels)
            .map(|(scale, level)| LaneSurprise {
                scale_s: scale.scale_s,
                near_s: level.hop as f64 / frame_rate,
                peaks_s: level.changes.iter().map(|c| c.time_s).collect(),
            })
            .collect()
    }

    /// The analysis so far, as `strata.json` holds it.
    pub fn analysis(&self, source: &str, tempo_bpm: Option<f64>, beats_per_bar: f64) -> Analysis {
        self.analysis_traced(source, tempo_bpm, beats_per_bar, &mut Trace::default())
    }

    /// [`Engine::analysis`], also noting what the search weighed in `trace`.
    pub fn analysis_traced(&self, source: &str, tempo_bpm: Option<f64>, beats_per_bar: f64, trace: &mut Trace) -> Analysis {
        let mut patterns = self.patterns_traced(trace);
        let m = &self.models.manifest;
        let in_beats = |p: f64| tempo_bpm.map(|bpm| p * bpm / 60.0);
        for p in &mut patterns {
            p.period_beats = in_beats(p.period_s);
            p.period_bars = p.period_beats.map(|b| b / beats_per_bar);
        }
        let layers = self
            .levels
            .iter()
            .enumerate()
            .map(|(i, level)| {
                let hop_s = level.hop as f64 / m.frame_rate;
                // The lane's period is that of the strongest pattern living at its timescale.
                let main = lane_main_pattern(&patterns, m.scales[i].scale_s);
                let period_s = main.map(|p| p.period_s);
                let beats = period_s.and_then(in_beats);
                let segments = layers::segments(&level.frames.time_s, &level.frames.token, hop_s);
                Layer {
                    scale_s: m.scales[i].scale_s,
                    hop_s,
                    period_s,
                    period_confidence: main.map_or(0.0, |p| p.confidence),
                    strength: main.map_or(0.0, |p| p.strength),
                    period_beats: beats,
                    period_bars: beats.map(|b| b / beats_per_bar),
                    segments,
                    frames: level.frames.clone(),
                    changes: main.map_or_else(Vec::new, |p| p.changes.iter().map(Change::stretch).collect()),
                }
            })
            .collect();
        Analysis {
            version: FORMAT_VERSION,
            source: source.to_owned(),
            sample_rate: self.input_rate,
            duration_s: self.duration_s(),
            tempo_bpm,
            backend: self.models.encoder_backend.to_string(),
            models: m.id.clone(),
            layers,
            profile_bands_hz: self.pattern_config.band_edges_hz.clone(),
            patterns,
        }
    }
}

/// The pattern search's inputs, detached from the engine (see [`Engine::pattern_snapshot`]).
#[derive(Debug, Clone)]
pub struct PatternSnapshot {
    history: MelHistory,
    config: PatternConfig,
    surprise: Vec<LaneSurprise>,
}

impl PatternSnapshot {
    /// The pattern layers, as [`Engine::patterns`] found them when the snapshot was taken.
    pub fn patterns(&self) -> Vec<Pattern> {
        let mut patterns = self.history.patterns(&self.config);
        confirm_by_surprise(&mut patterns, &self.surprise);
        patterns
    }
}

/// One lane's surprise peaks (seconds) and how near a change's start one must be to confirm it.
#[derive(Debug, Clone)]
struct LaneSurprise {
    scale_s: f64,
    near_s: f64,
    peaks_s: Vec<f64>,
}

/// The tower's surprise confirms a change: a surprise peak of the layer's lane near the start of
/// the stretch strengthens it.
fn confirm_by_surprise(patterns: &mut [Pattern], lanes: &[LaneSurprise]) {
    for p in patterns {
        let Some(lane) = lanes.iter().find(|l| l.scale_s == p.scale_s) else { continue };
        for c in &mut p.changes {
            if lane.peaks_s.iter().any(|&t| (t - c.start_s).abs() <= lane.near_s) {
                c.strength = (c.strength + layers::SURPRISE_AGREEMENT_BONUS).min(1.0);
            }
        }
    }
}

/// The strongest pattern of the lane with scale `scale_s`.
pub fn lane_main_pattern(patterns: &[Pattern], scale_s: f64) -> Option<&Pattern> {
    patterns
        .iter()
        .filter(|p| p.scale_s == scale_s)
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
}

/// The history of `bass`'s frames, each bin read as part of the log-mel bin (of `logmel` at
/// `sample_rate`) nearest it in pitch.
fn bass_history(bass: &BassSpectrum, logmel: &logmel::LogMelConfig, sample_rate: f64) -> BassHistory {
    let centres = logmel::centre_hz(logmel);
    let nearest = |hz: f64| {
        let distance = |c: &f64| (c / hz).ln().abs();
        (0..centres.len()).min_by(|&a, &b| distance(&centres[a]).total_cmp(&distance(&centres[b]))).unwrap_or(0)
    };
    BassHistory::new(bass.bins(), bass.lag_frames(), bass.bin_hz(sample_rate).into_iter().map(nearest).collect())
}

/// Upper edges of the profile bands: [`PROFILE_BANDS`] equal steps on the mel scale between the
/// front end's lowest and highest frequencies (the bands the log-mel bins fall into).
pub fn profile_band_edges_hz(f_min: f64, f_max: f64) -> Vec<f64> {
    let mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
    let hz = |m: f64| 700.0 * (10f64.powf(m / 2595.0) - 1.0);
    let (lo, hi) = (mel(f_min), mel(f_max));
    (1..=PROFILE_BANDS).map(|b| hz(lo + (hi - lo) * b as f64 / PROFILE_BANDS as f64)).collect()
}

/// Records step `k` of `level` as a change, placed at the middle of the newest hop of its window
/// (where the new material entered), with a strength from how far its z-score passed the
/// threshold.
fn push_change(level: &mut Level, k: usize, frame_rate: f64) {
    // (The live frame of the confirming step carries this change to the editor.)
    let end = level.step_end(k);
    let time_s = (end as f64 - level.hop as f64 / 2.0) / frame_rate;
    let z = f64::from(level.frames.surprise[k - level.frames_dropped]);
    let strength = (z / (3.0 * level.detector.threshold())).clamp(0.0, 1.0);
    level.changes.push(Change::at(time_s, strength));
}

#[cfg(test)]
mod tests {
    use super::period_range;

    #[test]
    fn period_ranges_leave_no_gap_between_layers() {
        let scales = [0.2, 1.0, 2.0, 5.0, 10.0, 20.0];
        for i in 1..scales.len() {
            assert!(period_range(&scales, i).0 <= period_range(&scales, i - 1).1, "gap below layer {i}");
        }
        assert_eq!(period_range(&scales, 1), (0.4, 2.0));
        assert_eq!(period_range(&scales, 0), (0.1, 0.4));
    }
}
