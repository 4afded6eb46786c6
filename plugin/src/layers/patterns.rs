//! Pattern layers: the parts of the sound that repeat at their own periods, found in the log-mel
//! history, each with where it sounds, when it plays and when it changes.
//!
//! A mix repeats at every multiple of its shortest layer's period, so one similarity curve of the
//! whole mix cannot say which lag starts a new layer. Layers live in parts of the spectrum, and
//! they are nested: the hats repeat every beat, the drums every bar *and so every beat too*. The
//! discovery is therefore a sieve, shortest period first, over the log-mel bins taken in
//! [`BINS_PER_CHANNEL`]-bin channels:
//!
//! 1. Every channel votes, within each timescale's lag range (the lanes of
//!    [`crate::engine::period_range`]), for its own period in what is left of the sound. Its
//!    trajectory is band-passed in time for that range (a 20 s swell does not hide a half-second
//!    hat pattern); its similarity across lags is `1 - mean‖x(t) - x(t-l)‖² / 2·var`, from an FFT
//!    autocorrelation. Its period is the first peak reaching [`PEAK_FRACTION`] of the range's
//!    best that repeats better than at any divisor of that lag by [`DIVISOR_JUMP`] (a channel
//!    that repeats every beat also repeats every bar) and not much worse than at its multiples
//!    ([`SUB_PERIOD_LOSS`]: half a drum bar repeats partly, the bar wholly). Channels that the
//!    layers found so far have (nearly) emptied no longer vote ([`MIN_LEFT`]).
//! 2. Votes within [`SAME_LAYER`] of each other are one candidate; its weight is how strongly its
//!    channels repeat. The shortest candidate with at least [`MIN_LAYER_WEIGHT`] (and
//!    [`MIN_RELATIVE_WEIGHT`] of the round's strongest weight, or [`MIN_RELATIVE_BREADTH`] of its
//!    channels) is a layer, unless a shorter one is a period by the learned head
//!    ([`super::heads`], trained on the synthetic truth): a candidate these rules pass over,
//!    a quiet layer nested in a louder one's band say, is a layer when the head gives it at least
//!    [`HEAD_THRESHOLD`], and, after the first round, one they accept is not when the head gives
//!    it under [`HEAD_VETO`] (a multiple or divisor of a true period, mostly). The head reads the
//!    candidates' numbers and the shape of their channels' similarity at divisors and multiples
//!    of the period. The rules stay: the head alone lost real music's beats and bars.
//! 3. The layer's repeating model is the median of its channels' power a few periods before and
//!    after each frame (adaptive REPET's model). What it explains, `min(power, model)`, is taken
//!    out of those channels, and the search goes on in what is left: with the drums taken out,
//!    the bass that repeats every two bars stands on its own. A layer shorter than
//!    [`SUSTAIN_KEPT_BELOW_S`] (the tatum's clicks) takes out only what rises above the level its
//!    channels hold through half a period either side: the pad held under the clicks repeats
//!    at every short lag too, and is left for the long layers.
//!
//! The changes are the stretches heard nowhere else in the piece ([`super::novelty`]); each goes
//! to the layer that stops matching its own repeats most there: its channels' level against its
//! model, in dB, smoothed in time so noise averages out while a changed pitch, filter, density
//! or loudness does not, and scored against the layer's own typical difference.
//!
//! Everything is a function of the frames alone, so the analysis of a stream is the analysis of
//! the whole file, whatever the blocks it came in.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use super::attribution::{self, AttributionRecord, Suspect};
use super::heads::{AttributionHead, ChangeHead, PeriodHead};
use super::novelty::{self, BassFrames, Novelty};
use crate::dsp::median;

/// Adjacent log-mel bins analysed together as one channel.
pub const BINS_PER_CHANNEL: usize = 2;
/// Spectral bands a layer's profile is reported in.
pub const PROFILE_BANDS: usize = 8;
/// A channel's period in a lag range is the first peak reaching this fraction of the range's best
/// similarity (above the range's mean). On the development seeds 1, 2, 5 and 6 (2026-12-04),
/// period recall / precision were 0.747 / 0.686 at 0.85, 0.726 / 0.679 at 0.78 (more half
/// periods) and 0.737 / 0.676 at 0.92 (more bars for beats).
pub const PEAK_FRACTION: f64 = 0.85;
/// A channel votes only if its best similarity in the range stands this far above the range's
/// mean (a channel that repeats no better at one lag than at any other has no period there).
pub const MIN_PROMINENCE: f64 = 0.2;
/// A lag that is a multiple of a shorter one is a period of its own only if the channel's
/// similarity there beats the one at the shorter lag by this much.
pub const DIVISOR_JUMP: f64 = 0.04;
/// A channel's period must repeat no worse than at its multiples (up to [`LONGER_LAGS`] times its
/// range) by more than this fraction of its prominence: otherwise it is a part of a longer
/// pattern. Lenient on purpose: a band that carries the hats (every beat) and the snare's noise
/// (every bar) repeats far better at the bar than at the beat, and the beat is still a layer.
/// On the development pieces (seeds 1 and 2), 0.3 -> 0.6 took period recall from 0.70/0.59 to
/// 0.74/0.65 (more arpeggios, chords and hats kept), precision 0.64/0.79 -> 0.59/0.82; 1.0
/// recalled about as much and placed changes worse.
pub const SUB_PERIOD_LOSS: f64 = 0.6;
/// The multiples a vote is tested against reach this many times its range's longest lag.
pub const LONGER_LAGS: usize = 2;
/// A channel votes only while at least this fraction of its power is left unexplained.
pub const MIN_LEFT: f64 = 0.1;
/// Votes within this relative distance of a candidate's shortest vote are that candidate.
pub const SAME_LAYER: f64 = 0.04;
/// A candidate needs at least this fraction of the strongest candidate's weight in the same round
/// of the sieve: the shortest of the strong candidates is the next layer, not a chance match of a
/// few channels. Against 0.3, paired per seed (2026-12-06): 0.25 found one more beat among the
/// lmms demos (period recall 0.666 -> 0.686) and cost the synthetic pieces precision (-0.002,
/// -0.013 and -0.006 on seeds 60-79, 80-99 and 30-39); 0.2 cost 0.013 on 60-79, and 0.4 lost the
/// demos 0.007 of recall.
pub const MIN_RELATIVE_WEIGHT: f64 = 0.3;
/// ...or at least this fraction of its channels: a layer heard in as many parts of the sound as
/// the strongest is a layer even where each part repeats less sharply. Over a long exact loop the
/// loop's own period matches perfectly in every channel (prominence near 0.9) while the beat's
/// matches at about 0.3; ten minutes of a 30 s loop put the beat at 0.29 of the loop's weight
/// with 27 channels against the loop's 32, and by weight alone the beat and bar were lost. On
/// the development pieces (seeds 1, 2, 5, 6 and the lmms demos) 0.75 changed no figure.
pub const MIN_RELATIVE_BREADTH: f64 = 0.75;
/// Periods within this relative distance are the same layer's.
pub const SAME_PERIOD: f64 = 0.03;

/// Whether `period_s` is the period `of_s` (seconds) within [`SAME_PERIOD`] of it: one layer's.
pub fn same_period(period_s: f64, of_s: f64) -> bool {
    (period_s - of_s).abs() <= SAME_PERIOD * of_s
}

/// The pattern layer of period `period_s` (within [`SAME_PERIOD`]): the most confident, if
/// several are.
pub fn layer_with_period(patterns: &[Pattern], period_s: f64) -> Option<&Pattern> {
    patterns.iter().filter(|p| same_period(p.period_s, period_s)).max_by(|a, b| a.confidence.total_cmp(&b.confidence))
}
/// The sieve stops after this many layers.
pub const MAX_LAYERS: usize = 8;
/// Power below this (linear, -60 dB) counts as silence.
const POWER_FLOOR: f32 = 1e-6;
/// Channels whose bins are turned into dB in one pass over the frames: 8 bins of f32, half a
/// 64-byte cache line of each frame. An hour's pass holds 12 MB of dB values (8 channels, a
/// whole line, were no faster and held twice that).
const CHANNELS_PER_PASS: usize = 4;
/// A layer needs at least this much vote weight (summed prominence of its channels).
pub const MIN_LAYER_WEIGHT: f64 = 1.5;
/// Shortest period reported, in seconds.
pub const MIN_PERIOD_S: f64 = 0.18;
/// A candidate the rules pass over is still a layer if the period head gives it at least this
/// probability. With the perceptron head (before the fourteenth sitting) 0.6 was best; with the
/// trees, 0.6 against 0.5 (veto 0.3, seeds 60 to 79) lost 0.023 of recall for 0.017 of
/// precision (models/README.md, "The period head").
pub const HEAD_THRESHOLD: f64 = 0.5;
/// A candidate the rules accept is not a layer if the period head gives it under this: the
/// multiples and divisors of true periods that the rules take, mostly. On seeds 60 to 79 and the
/// lmms demos, 0.1 raised recall and precision on both; 0.2 and 0.3 bought more synthetic
/// precision (up to 0.817) with the demos' beats and bars (recall 0.743 -> 0.636 and 0.594). Not
/// in a piece's first round (see [`choose`]).
pub const HEAD_VETO: f64 = 0.1;

/// What a layer takes out of the spectrum: the median of this many repeats either side.
const MODEL_MAX_NEIGHBOURS: usize = 3;
/// A layer shorter than this (seconds: the 0.2 s lane's longest period) takes out only what
/// rises above its channels' quietest level within half a period either side. A drone, a pad
/// or a texture holds its level over a few such periods, so the median of the short layer's
/// repeats is that level too, and without this the tatum's clicks took out every sustained
/// sound in their bands, leaving nothing for the long layers to be found in. Measured against
/// taking everything out (period recall / precision, paired per seed): +0.022 / +0.011 on the
/// validation seeds 60-79 that chose it, +0.018 / +0.019 on seeds 80-99 and 0.000 / -0.004 on
/// seeds 30-39 (neither seen before), -0.002 / -0.007 on the lmms demos. At 0.45 s one demo's
/// 0.42 s layer kept its held sound, and its 1.9 s and 7.5 s layers were no longer found (the
/// demos' recall 0.668 -> 0.625); below 2.1 s, recall rose as much and precision did not.
/// Changes given to the right layer move by -0.013, -0.004, +0.008 and -0.015 on the same
/// pieces: the drones, pads and chords now found take some of the bass's and drums' changes.
const SUSTAIN_KEPT_BELOW_S: f64 = 0.4;
/// Stray scores: the reference a layer is compared with reaches at least this far (seconds)
/// either side...
const MODEL_REACH_S: f64 = 16.0;
/// ...in at most this many repeats on each side.
const CHANGE_NEIGHBOURS: usize = 6;
// Every repeat a model looks at is one row of its median.
const _: () = assert!(2 * CHANGE_NEIGHBOURS <= median::MAX_ROWS && 2 * MODEL_MAX_NEIGHBOURS <= median::MAX_ROWS);
/// Frames each channel's trajectory is smoothed over before it is compared with its model.
const CHANGE_FRAME_SMOOTHING: usize = 5;
/// Seconds the signed difference from the model is averaged over.
const CHANGE_SMOOTHING_S: f64 = 0.5;
/// A layer is active where its channels are within this many dB of their loudest (95th
/// percentile) level, smoothed over a second.
const ACTIVE_RANGE_DB: f32 = 25.0;

/// One discovered pattern layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    /// Repetition period in seconds.
    pub period_s: f64,
    /// The period in beats and bars, when the tempo is known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub period_beats: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub period_bars: Option<f64>,
    /// How strongly and widely it repeats, 0..1 (its vote weight against the strongest layer's).
    pub confidence: f64,
    /// How closely its parts of the sound match themselves one period apart, 0..1 (the mean
    /// prominence of its channels' similarity peaks).
    pub strength: f64,
    /// The timescale (lane) it belongs to: the scale whose period range fits it best.
    pub scale_s: f64,
    /// Where it sounds: weight per spectral band, 0..1, lowest band first (see `bands_hz`).
    pub profile: Vec<f32>,
    /// "low", "mid", "high" or "wide": the profile in a word.
    pub register: String,
    /// Stretches where it plays.
    pub active: Vec<Span>,
    /// Stretches where it plays differently from its own repeats.
    pub changes: Vec<ChangeSpan>,
}

impl Pattern {
    /// Moves every time it holds by `offset_s` seconds (for frames that did not start at 0 s).
    pub fn shift_times(&mut self, offset_s: f64) {
        for s in &mut self.active {
            s.start_s += offset_s;
            s.end_s += offset_s;
        }
        for c in &mut self.changes {
            c.start_s += offset_s;
            c.end_s += offset_s;
        }
    }
}

/// A stretch of time, seconds from the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub start_s: f64,
    pub end_s: f64,
}

/// A stretch where a layer changed, and how clearly (0..1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChangeSpan {
    pub start_s: f64,
    pub end_s: f64,
    pub strength: f64,
}

/// What the discovery needs to know about the frames.
#[derive(Debug, Clone)]
pub struct PatternConfig {
    /// Frames per second.
    pub frame_rate: f64,
    /// Log-mel bins per frame.
    pub bins: usize,
    /// The lanes: (scale in seconds, shortest lag, longest lag), shortest first.
    pub lanes: Vec<(f64, f64, f64)>,
    /// Upper edges of the [`PROFILE_BANDS`] profile bands, in Hz.
    pub band_edges_hz: Vec<f64>,
    /// The learned scorer of candidate periods, when the models have one (the rules alone
    /// decide without it).
    pub period_head: Option<Arc<PeriodHead>>,
    /// The learned scorer of moments as change edges, when the models have one (the detector's
    /// rules alone place the changes without it).
    pub change_head: Option<Arc<ChangeHead>>,
    /// The learned judge of which layer a change belongs to, when the models have one (the
    /// rules alone decide without it).
    pub attribution_head: Option<Arc<AttributionHead>>,
}

/// Values held oldest first, whose oldest can be dropped: those held are `values[dropped..]`,
/// one contiguous slice, so the layer search reads them in place (a copy of an hour's log-mel is
/// 46 MB, a sixth of the analysis' peak). The dropped values are moved out once they outnumber
/// those held, so dropping costs O(1) amortised.
#[derive(Debug, Default)]
struct FrontDropped {
    values: Vec<f32>,
    dropped: usize,
}

impl FrontDropped {
    fn held(&self) -> &[f32] {
        &self.values[self.dropped..]
    }

    fn extend(&mut self, values: impl IntoIterator<Item = f32>) {
        self.values.extend(values);
    }

    /// Drops the oldest `count` values (all of them, if fewer are held).
    fn drop_front(&mut self, count: usize) {
        self.dropped = (self.dropped + count).min(self.values.len());
        if self.dropped > self.values.len() - self.dropped {
            self.values.drain(..self.dropped);
            self.dropped = 0;
        }
    }

    /// Values in memory: those held and the dropped ones awaiting compaction.
    #[cfg(test)]
    fn stored(&self) -> usize {
        self.values.len()
    }
}

impl Clone for FrontDropped {
    /// A copy of the values held, without the dropped ones awaiting compaction.
    fn clone(&self) -> Self {
        Self { values: self.held().to_vec(), dropped: 0 }
    }
}

/// The log-mel history the layers are found in: frames of `bins` values in dB, oldest first,
/// keeping at most `limit` frames (all of them when `None`).
#[derive(Debug, Clone)]
pub struct MelHistory {
    bins: usize,
    frames: FrontDropped,
    /// Absolute index of the oldest frame kept.
    first: usize,
    limit: Option<usize>,
    /// The bass view's frames, one per log-mel frame, and how to read them (none: the changes
    /// are heard in the log-mel bins alone).
    bass: Option<BassHistory>,
}

/// The bass view's frames ([`crate::dsp::bass`]) held beside the log-mel frames, dropped with them.
#[derive(Debug, Clone)]
pub struct BassHistory {
    /// Values (dB) of the frames held.
    values: FrontDropped,
    bins: usize,
    lag_frames: usize,
    mel_bin: Vec<usize>,
}

impl BassHistory {
    /// A bass view of `bins` values per frame trailing the log-mel by `lag_frames` frames, whose
    /// bin `i` lies among the frequencies of log-mel bin `mel_bin[i]`.
    pub fn new(bins: usize, lag_frames: usize, mel_bin: Vec<usize>) -> Self {
        Self { values: FrontDropped::default(), bins, lag_frames, mel_bin }
    }

    fn frames(&self) -> Option<BassFrames<'_>> {
        (self.bins > 0).then(|| BassFrames {
            frames: self.values.held(),
            bins: self.bins,
            lag_frames: self.lag_frames,
            mel_bin: &self.mel_bin,
        })
    }
}

/// dB per natural-log unit.
const DB_PER_NEPER: f32 = 4.342_945;

impl MelHistory {
    pub fn new(bins: usize, limit: Option<usize>) -> Self {
        Self {
            bins,
            frames: FrontDropped::default(),
            first: 0,
            limit,
            bass: None,
        }
    }

    /// This history with the bass view's frames held beside the log-mel frames: [`Self::push`]
    /// then takes one bass frame with every log-mel frame.
    pub fn with_bass(mut self, bass: BassHistory) -> Self {
        self.bass = Some(bass);
        self
    }

    /// Keeps at most `limit` frames from now on (`None`: all).
    pub fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = limit;
        self.trim();
    }

    /// Appends log-mel frames (natural log, as the front end makes them) and, with a bass view,
    /// as many of its frames (natural log too).
    pub fn push(&mut self, log_mel: &[f32], bass: &[f32]) {
        let to_db = |&v: &f32| if v.is_finite() { v * DB_PER_NEPER } else { -60.0 };
        self.frames.extend(log_mel.iter().map(to_db));
        if let Some(b) = &mut self.bass {
            b.values.extend(bass.iter().map(to_db));
        }
        self.trim();
    }

    fn trim(&mut self) {
        if let Some(limit) = self.limit {
            let frames = self.len();
            if frames > limit {
                let drop = frames - limit;
                self.frames.drop_front(drop * self.bins);
                self.first += drop;
                if let Some(b) = &mut self.bass {
                    b.values.drop_front(drop * b.bins);
                }
            }
        }
    }

    /// The frames held, oldest first.
    fn held(&self) -> &[f32] {
        self.frames.held()
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.held().len() / self.bins.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.held().is_empty()
    }

    /// Absolute index of the oldest frame held.
    pub fn first_frame(&self) -> usize {
        self.first
    }

    /// The layers in the frames held. Times are from the start of the stream.
    pub fn patterns(&self, config: &PatternConfig) -> Vec<Pattern> {
        self.patterns_traced(config, &mut Trace::default())
    }

    /// [`MelHistory::patterns`], also noting what the search weighed in `trace`.
    pub fn patterns_traced(&self, config: &PatternConfig, trace: &mut Trace) -> Vec<Pattern> {
        let offset_s = self.first as f64 / config.frame_rate;
        let bass = self.bass.as_ref().and_then(BassHistory::frames);
        let noted = trace.attributions.len();
        let mut patterns = discover_traced(self.held(), self.bins, bass, config, trace);
        for p in &mut patterns {
            p.shift_times(offset_s);
        }
        for a in &mut trace.attributions[noted..] {
            a.start_s += offset_s;
            a.end_s += offset_s;
        }
        patterns
    }
}

/// One channel's vote for a period in one lane.
#[derive(Debug, Clone, Copy)]
struct Vote {
    /// The period, in frames.
    period: f64,
    /// The channel's prominence there: how far its best similarity in the lane stands above the
    /// lane's mean.
    weight: f64,
    channel: usize,
    /// The shape of the channel's similarity around the period (see [`curve_shape`]).
    shape: CurveShape,
}

/// The lags, as shares of a vote's period, at which its channel's similarity is read for the
/// period head: divisors and multiples, where a layer's period and its neighbours' differ.
const SHAPE_RATIOS: [f64; 7] = [1.0 / 3.0, 0.5, 2.0 / 3.0, 1.5, 2.0, 3.0, 4.0];
/// A vote's similarity at its period, then at each of [`SHAPE_RATIOS`] less that at its period,
/// in units of its prominence (0 where the lag was not computed).
type CurveShape = [f64; SHAPE_RATIOS.len() + 1];

/// The layers in `frames` (`bins` dB values per frame, oldest first), shortest period first.
pub fn discover(frames: &[f32], bins: usize, config: &PatternConfig) -> Vec<Pattern> {
    discover_traced(frames, bins, None, config, &mut Trace::default())
}

/// [`discover`], with the changes also heard in the bass view's frames where given (`bass`,
/// in lockstep with `frames`), noting in `trace` every candidate each round of the sieve weighed
/// and every layer each change could go to.
pub fn discover_traced(
    frames: &[f32],
    bins: usize,
    bass: Option<BassFrames>,
    config: &PatternConfig,
    trace: &mut Trace,
) -> Vec<Pattern> {
    let t = frames.len() / bins.max(1);
    if t < 4 || bins / BINS_PER_CHANNEL == 0 {
        return Vec::new();
    }
    // The residual, linear power in f32 (an hour of frames is 46 MB at this precision).
    let mut power: Vec<f32> = frames.iter().map(|&db| 10f32.powf(db / 10.0)).collect();
    let original = channel_power(&power, bins);
    let mut cache = VoteCache { votes: vec![vec![None; original.len()]; config.lanes.len()], stale: vec![true; original.len()] };
    let lags = lane_lags(config, t);
    let mut acf = Autocorrelation::new(t, lags.iter().map(|l| l.max_lag).max().unwrap_or(0));
    let mut found: Vec<FoundLayer> = Vec::new();
    let mut strongest = 0.0_f64;
    let fr = config.frame_rate;
    while found.len() < MAX_LAYERS {
        let new = |period: f64| found.iter().all(|f| (period / fr - f.pattern.period_s).abs() > SAME_PERIOD * f.pattern.period_s);
        // A channel whose layers have taken out nearly all of it has nothing left to repeat: what
        // remains is noise, and noise matches itself somewhere by chance.
        let alive: Vec<bool> = channel_power(&power, bins).iter().zip(&original).map(|(left, all)| *left >= MIN_LEFT * all).collect();
        let groups: Vec<Vec<Vote>> = candidates(&power, bins, &alive, &lags, config, &mut acf, &mut cache)
            .into_iter()
            .filter(|g| new(mean_period(g)))
            .collect();
        // Each candidate's weight and breadth, once: the features and the rules both weigh them.
        let sizes: Vec<(f64, usize)> = groups.iter().map(|g| (weight(g), channels(g))).collect();
        let features = candidate_features(&groups, &sizes, &alive, &found, fr);
        let chosen = choose(&sizes, &features, config.period_head.as_deref(), found.is_empty());
        trace.candidates.extend(groups.iter().zip(&features).enumerate().map(|(i, (g, x))| CandidateRecord {
            round: found.len(),
            period_s: mean_period(g) / fr,
            chosen: chosen == Some(i),
            features: *x,
        }));
        let Some(votes) = chosen.map(|i| &groups[i]) else { break };
        strongest = strongest.max(weight(votes));
        for v in votes {
            cache.stale[v.channel] = true;
        }
        found.push(take_out_layer(votes, frames, &mut power, bins, config));
    }
    for FoundLayer { pattern: p, .. } in &mut found {
        p.confidence = (p.confidence / strongest.max(1e-9)).clamp(0.0, 1.0);
    }
    let periods: Vec<f64> = found.iter().map(|f| f.pattern.period_s).collect();
    let heard = novelty::novelty(frames, bins, bass, fr, &periods, config.change_head.as_deref());
    give_out_changes(&mut found, &heard, config, &mut trace.attributions);
    let mut patterns: Vec<Pattern> = found.into_iter().map(|f| f.pattern).collect();
    patterns.sort_by(|a, b| a.period_s.total_cmp(&b.period_s));
    patterns
}

/// Gives each of `heard`'s changes to the layer [`attribution::attribute`] chooses, noting every
/// layer weighed in `trace`.
fn give_out_changes(found: &mut [FoundLayer], heard: &Novelty, config: &PatternConfig, trace: &mut Vec<AttributionRecord>) {
    let suspects: Vec<Suspect> = found
        .iter()
        .map(|f| Suspect { period_s: f.pattern.period_s, confidence: f.pattern.confidence, footprint: &f.footprint, strays: &f.strays, active: &f.pattern.active })
        .collect();
    let owners = attribution::attribute(&suspects, heard, config.frame_rate, config.attribution_head.as_deref(), trace);
    for (change, owner) in heard.changes.iter().zip(owners) {
        found[owner].pattern.changes.push(*change);
    }
}

/// Which of a round's candidates (shortest period first) is the next layer: the shortest that
/// the rules accept (weight, then relative weight or breadth) and the period head does not score
/// under [`HEAD_VETO`], or that the head scores at least [`HEAD_THRESHOLD`]. The head refuses
/// nothing in the first round: there the rules take real music's beat or tatum, which the head,
/// trained on one generator, scored as a synthetic piece's false divisor (the bundled example's
/// beat), and a piece is never left without layers.
/// `sizes` holds each candidate's (weight, channels).
fn choose(sizes: &[(f64, usize)], features: &[[f64; CANDIDATE_FEATURES]], head: Option<&PeriodHead>, first_round: bool) -> Option<usize> {
    let strong = || sizes.iter().filter(|s| s.0 >= MIN_LAYER_WEIGHT);
    let top = strong().map(|s| s.0).fold(0.0, f64::max);
    // The round's strongest candidate's breadth: how many channels it sounds in.
    let top_channels = strong().max_by(|a, b| a.0.total_cmp(&b.0)).map_or(0, |s| s.1);
    let by_rule = |&(w, c): &(f64, usize)| {
        w >= MIN_LAYER_WEIGHT && (w >= MIN_RELATIVE_WEIGHT * top || c as f64 >= MIN_RELATIVE_BREADTH * top_channels as f64)
    };
    // The candidates are sorted by period, so the first accepted is the shortest. The head is
    // asked only where its answer counts: never for the first round's accepted candidates.
    (0..sizes.len()).find(|&i| {
        let score = || head.map(|h| h.score(&features[i]));
        if by_rule(&sizes[i]) {
            first_round || score().is_none_or(|s| s >= HEAD_VETO)
        } else {
            score().is_some_and(|s| s >= HEAD_THRESHOLD)
        }
    })
}

// A candidate the rules accept and the head refuses is not one the head would take alone.
const _: () = assert!(HEAD_VETO < HEAD_THRESHOLD);

/// What the layer search weighed, for the heads to be trained on (`strata analyze --candidates`
/// writes it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Every candidate period of every round of the sieve (the period head's).
    pub candidates: Vec<CandidateRecord>,
    /// Every layer every change could go to (the attribution head's).
    pub attributions: Vec<AttributionRecord>,
}

/// One candidate period one round of the sieve weighed: what the period head is trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRecord {
    /// The round: how many layers were found before it.
    pub round: usize,
    pub period_s: f64,
    /// Whether it became the round's layer.
    pub chosen: bool,
    /// What the head weighs, in the order [`candidate_features`] gives them.
    pub features: [f64; CANDIDATE_FEATURES],
}

/// Numbers describing one candidate in one round of the sieve: its summary, then its
/// [`CurveShape`].
pub const CANDIDATE_FEATURES: usize = SUMMARY_FEATURES + SHAPE_RATIOS.len() + 1;
/// The numbers summarising a candidate (weight, breadth, ...; see [`candidate_features`]).
const SUMMARY_FEATURES: usize = 11;

/// What the period head weighs, for each of a round's candidates (`groups`, shortest period
/// first), given the layers `found` before this round. In order: its weight; that weight against
/// the round's strongest; its channels; those against the strongest candidate's; against the
/// channels still alive; its mean prominence; the spread of its votes' periods; how far its ratio
/// to a found layer's period is from a whole number; the log distance to the nearest found
/// period; the centre of its channels (0 low .. 1 high); its rank by weight; then its votes'
/// [`CurveShape`]s, weighted by prominence.
///
/// No feature is a time or a length of the piece, so a head trained on short pieces reads long
/// ones alike. Nor is any the period itself, the round or the candidate's place among the
/// round's periods: those tell the head where the generator it is trained on puts its layers
/// (the lmms demos' beats and bars were scored as the synthetic pieces' short false periods),
/// not whether the sound repeats there.
fn candidate_features(groups: &[Vec<Vote>], sizes: &[(f64, usize)], alive: &[bool], found: &[FoundLayer], fr: f64) -> Vec<[f64; CANDIDATE_FEATURES]> {
    let top = sizes.iter().map(|s| s.0).fold(0.0, f64::max).max(1e-9);
    let top_channels = sizes.iter().max_by(|a, b| a.0.total_cmp(&b.0)).map_or(1, |s| s.1).max(1) as f64;
    let alive_count = alive.iter().filter(|&&a| a).count().max(1) as f64;
    let n = alive.len().max(1) as f64;
    let mut weights: Vec<f64> = sizes.iter().map(|s| s.0).collect();
    weights.sort_by(|a, b| b.total_cmp(a));
    groups
        .iter()
        .zip(sizes)
        .map(|(g, &(w, c))| {
            let period_s = mean_period(g) / fr;
            let c = c as f64;
            let (lo, hi) = g.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v.period), hi.max(v.period)));
            let centroid = g.iter().map(|v| v.channel as f64 * v.weight).sum::<f64>() / g.iter().map(|v| v.weight).sum::<f64>().max(1e-12) / n;
            // How near a whole-number ratio it stands to a layer already found (0: exactly).
            let harmonic = found
                .iter()
                .map(|f| {
                    let p = &f.pattern;
                    let ratio = if period_s > p.period_s { period_s / p.period_s } else { p.period_s / period_s };
                    (ratio - ratio.round()).abs()
                })
                .fold(0.5, f64::min);
            let nearest = found.iter().map(|f| (period_s / f.pattern.period_s).ln().abs()).fold(5.0, f64::min);
            let rank = weights.iter().position(|&x| x <= w).unwrap_or(0) as f64;
            // Its votes' curve shapes, weighted by prominence.
            let mut shape = CurveShape::default();
            let total = g.iter().map(|v| v.weight).sum::<f64>().max(1e-12);
            for v in g {
                for (s, x) in shape.iter_mut().zip(&v.shape) {
                    *s += x * v.weight / total;
                }
            }
            let summary: [f64; SUMMARY_FEATURES] = [
                w,
                w / top,
                c,
                c / top_channels,
                c / alive_count,
                w / c.max(1.0),
                (hi - lo) / (mean_period(g)).max(1e-9),
                harmonic,
                nearest,
                centroid,
                rank,
            ];
            let mut x = [0.0; CANDIDATE_FEATURES];
            x[..SUMMARY_FEATURES].copy_from_slice(&summary);
            x[SUMMARY_FEATURES..].copy_from_slice(&shape);
            x
        })
        .collect()
}

/// Total power of each channel over all frames.
fn channel_power(power: &[f32], bins: usize) -> Vec<f64> {
    let mut sums = vec![0.0; bins / BINS_PER_CHANNEL];
    for row in power.chunks_exact(bins) {
        for (c, sum) in sums.iter_mut().enumerate() {
            *sum += row[c * BINS_PER_CHANNEL..(c + 1) * BINS_PER_CHANNEL].iter().map(|&p| f64::from(p)).sum::<f64>();
        }
    }
    sums
}

/// `power`'s bins `dims` in dB, one row of frames per bin. The frames are read in order, a row
/// at a time, for all of `dims` at once: walking one bin down an hour of frames touches a cache
/// line per frame for four bytes of it, and that was a tenth of an hour's analysis.
fn columns_in_db(power: &[f32], bins: usize, dims: &[usize]) -> Vec<Vec<f64>> {
    let t = power.len() / bins.max(1);
    let mut columns: Vec<Vec<f64>> = dims.iter().map(|_| Vec::with_capacity(t)).collect();
    for row in power.chunks_exact(bins) {
        for (column, &d) in columns.iter_mut().zip(dims) {
            column.push(f64::from(10.0 * row[d].max(POWER_FLOOR).log10()));
        }
    }
    columns
}

/// Summed prominence of a candidate's channels (each channel counted once, at its best).
fn weight(votes: &[Vote]) -> f64 {
    let mut best: Vec<(usize, f64)> = Vec::new();
    for v in votes {
        match best.iter_mut().find(|b| b.0 == v.channel) {
            Some(b) => b.1 = b.1.max(v.weight),
            None => best.push((v.channel, v.weight)),
        }
    }
    best.iter().map(|b| b.1).sum()
}

/// How many distinct channels voted for a candidate.
fn channels(votes: &[Vote]) -> usize {
    let mut seen: Vec<usize> = votes.iter().map(|v| v.channel).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// A candidate's period in frames: its votes' mean, weighted by prominence.
fn mean_period(votes: &[Vote]) -> f64 {
    votes.iter().map(|v| v.period * v.weight).sum::<f64>() / votes.iter().map(|v| v.weight).sum::<f64>().max(1e-12)
}

/// Each channel's vote in each lane, kept between rounds of the sieve: a channel's votes change
/// only when a layer takes something out of it.
struct VoteCache {
    /// `votes[lane][channel]`: the channel's vote there, if it has one.
    votes: Vec<Vec<Option<Vote>>>,
    /// Channels whose votes must be found again.
    stale: Vec<bool>,
}

/// A lane's lags in frames: its range `lo..=hi`, and `max_lag`, how far its similarity is taken
/// (up to [`LONGER_LAGS`] times the range, for the test against multiples).
struct LaneLags {
    lane: usize,
    lo: usize,
    hi: usize,
    max_lag: usize,
}

/// The lags of each lane that has room for a range in `t` frames, in lane order.
fn lane_lags(config: &PatternConfig, t: usize) -> Vec<LaneLags> {
    let fr = config.frame_rate;
    config
        .lanes
        .iter()
        .enumerate()
        .filter_map(|(lane, &(_, lo_s, hi_s))| {
            let lo = ((lo_s.max(MIN_PERIOD_S)) * fr).round() as usize;
            let hi = ((hi_s * fr).round() as usize).min(t / 2);
            let max_lag = (LONGER_LAGS * hi).min(t.saturating_sub(3)).max(hi + 2);
            (hi > lo + 2).then_some(LaneLags { lane, lo, hi, max_lag })
        })
        .collect()
}

/// Every `alive` channel's votes in every lane of `lags`, grouped into candidates (votes within
/// [`SAME_LAYER`]).
fn candidates(power: &[f32], bins: usize, alive: &[bool], lags: &[LaneLags], config: &PatternConfig, acf: &mut Autocorrelation, cache: &mut VoteCache) -> Vec<Vec<Vote>> {
    let min_lag = (MIN_PERIOD_S * config.frame_rate).round().max(2.0) as usize;
    // Votes lane by lane, each lane's in channel order (the order the groups are summed in).
    let mut lane_votes: Vec<Vec<Vote>> = vec![Vec::new(); lags.len()];
    // The channels whose votes must be found again (none without a lane to vote in).
    let stale: Vec<usize> = (0..alive.len()).filter(|&c| alive[c] && cache.stale[c] && !lags.is_empty()).collect();
    for chunk in stale.chunks(CHANNELS_PER_PASS) {
        // The channels' bins in dB, once for every lane (the logarithms were a quarter of an
        // hour-long analysis when each lane took its own).
        let dims: Vec<usize> = chunk.iter().flat_map(|&c| c * BINS_PER_CHANNEL..(c + 1) * BINS_PER_CHANNEL).collect();
        let db = columns_in_db(power, bins, &dims);
        for (&c, db) in chunk.iter().zip(db.chunks_exact(BINS_PER_CHANNEL)) {
            for l in lags {
                let r = acf.similarity(db, l.lo, l.hi, l.max_lag);
                cache.votes[l.lane][c] = channel_vote(&r, l.lo, l.hi, min_lag).map(|(period, weight, shape)| Vote { period, weight, channel: c, shape });
            }
        }
    }
    for c in (0..alive.len()).filter(|&c| alive[c]) {
        for (l, votes) in lags.iter().zip(&mut lane_votes) {
            if let Some(vote) = cache.votes[l.lane][c] {
                votes.push(vote);
            }
        }
    }
    let mut votes: Vec<Vote> = lane_votes.concat();
    cache.stale.iter_mut().for_each(|s| *s = false);
    votes.sort_by(|a, b| a.period.total_cmp(&b.period));
    let mut groups: Vec<Vec<Vote>> = Vec::new();
    for v in votes {
        match groups.last_mut() {
            Some(g) if v.period <= g[0].period * (1.0 + SAME_LAYER) => g.push(v),
            _ => groups.push(vec![v]),
        }
    }
    groups
}

/// A channel's period (frames), weight and curve shape within lags `lo..=hi`, or `None`.
fn channel_vote(r: &[f64], lo: usize, hi: usize, min_lag: usize) -> Option<(f64, f64, CurveShape)> {
    let range = &r[lo..=hi];
    let top = range.iter().copied().fold(f64::MIN, f64::max);
    let mean = range.iter().sum::<f64>() / range.len() as f64;
    let prominence = top - mean;
    if prominence < MIN_PROMINENCE {
        return None;
    }
    let threshold = mean + PEAK_FRACTION * prominence;
    let last = hi.min(r.len() - 2);
    for lag in lo.max(2)..=last {
        if r[lag] < threshold || r[lag] < r[lag - 1] || r[lag] < r[lag + 1] {
            continue;
        }
        let period = refine(r, lag, r.len() - 1);
        let best_of = |lags: &mut dyn Iterator<Item = f64>| lags.filter_map(|l| similarity_near(r, l)).fold(f64::MIN, f64::max);
        // The best similarity at a divisor of the period that the range's filtering still sees...
        let floor = min_lag.max(lo / 2) as f64;
        let at_divisor = best_of(&mut (2..).map(|k| period / f64::from(k)).take_while(|&l| l >= floor));
        // ...and at its multiples that were computed: a channel that repeats far better there is
        // part of a longer pattern (half a drum bar repeats partly, the bar wholly). Only
        // multiples: in a mix, most channels repeat best at some long lag where every layer
        // repeats at once, and the beat is still a layer.
        let at_multiple = best_of(&mut (2..=LONGER_LAGS * 2).map(|k| period * k as f64).take_while(|&l| computed(r, l)));
        if at_multiple - r[lag] > SUB_PERIOD_LOSS * prominence {
            continue;
        }
        if r[lag] - at_divisor >= DIVISOR_JUMP {
            return Some((period, prominence, curve_shape(r, period, r[lag], prominence)));
        }
    }
    None
}

/// How a channel's similarity `r` looks around a vote at `period` (similarity `at_period`).
fn curve_shape(r: &[f64], period: f64, at_period: f64, prominence: f64) -> CurveShape {
    let mut shape = CurveShape::default();
    shape[0] = at_period;
    for (v, k) in shape[1..].iter_mut().zip(SHAPE_RATIOS) {
        let lag = period * k;
        if lag >= 2.0 && computed(r, lag) {
            if let Some(at) = similarity_near(r, lag) {
                *v = (at - at_period) / prominence.max(1e-9);
            }
        }
    }
    shape
}

/// Whether the similarity `r` reaches past `lag` far enough to read a peak there.
fn computed(r: &[f64], lag: f64) -> bool {
    lag + 3.0 <= r.len() as f64
}

/// The best similarity within 3 % of `lag` (at least a frame either side), if `r` holds it.
fn similarity_near(r: &[f64], lag: f64) -> Option<f64> {
    peak_near(r, lag, (0.03 * lag).max(1.0)).map(|p| p.1)
}

/// The highest point of `r` within `tol` of `lag`, refined by parabolic interpolation.
fn peak_near(r: &[f64], lag: f64, tol: f64) -> Option<(f64, f64)> {
    let lo = ((lag - tol).floor() as usize).max(1);
    let hi = ((lag + tol).ceil() as usize).min(r.len().checked_sub(2)?);
    if hi < lo {
        return None;
    }
    let i = (lo..=hi).max_by(|&a, &b| r[a].total_cmp(&r[b]))?;
    let (a, b, c) = (r[i - 1], r[i], r[i + 1]);
    let denom = a - 2.0 * b + c;
    let offset = if denom.abs() > 1e-12 { (0.5 * (a - c) / denom).clamp(-0.5, 0.5) } else { 0.0 };
    Some((i as f64 + offset, b))
}

/// Refines a period found at integer lag `lag` on its multiples up to `max_lag` (a peak at 8P
/// pins P eight times more finely than the one at P).
fn refine(r: &[f64], lag: usize, max_lag: usize) -> f64 {
    let mut period = peak_near(r, lag as f64, 0.5).map_or(lag as f64, |p| p.0);
    let level = r[lag];
    let mut k = 2.0;
    while k * period <= max_lag as f64 - 2.0 {
        match peak_near(r, k * period, (0.015 * k * period).max(1.0)) {
            Some((at, v)) if v >= level - 0.15 => period = at / k,
            _ => break,
        }
        k *= 2.0;
    }
    period
}

/// A layer the sieve found, with what its changes are given to it by.
struct FoundLayer {
    pattern: Pattern,
    /// Its weight in each log-mel bin: its channels' votes.
    footprint: Vec<f64>,
    /// How far it strays from its own repeats, frame by frame (robust z).
    strays: Vec<f64>,
}

/// Describes the layer of `votes`, where it sounds and how far it strays from its own repeats
/// frame by frame, and takes what it explains out of `power` (the residual, linear). `frames` are
/// the original dB frames, for where the layer is active.
fn take_out_layer(votes: &[Vote], frames: &[f32], power: &mut [f32], bins: usize, config: &PatternConfig) -> FoundLayer {
    let fr = config.frame_rate;
    let period = mean_period(votes);
    let mut channels: Vec<usize> = votes.iter().map(|v| v.channel).collect();
    channels.sort_unstable();
    channels.dedup();
    let dims: Vec<usize> = channels.iter().flat_map(|&c| c * BINS_PER_CHANNEL..(c + 1) * BINS_PER_CHANNEL).collect();
    let model = repeating_model(power, bins, &dims, &nearest_repeats(period));
    let reference = repeating_model(power, bins, &dims, &spread_repeats(period, fr));
    let strays = stray_scores(power, bins, &dims, &reference, fr);
    let mut footprint = vec![0.0; bins];
    for v in votes {
        footprint[v.channel * BINS_PER_CHANNEL..(v.channel + 1) * BINS_PER_CHANNEL].iter_mut().for_each(|f| *f += v.weight);
    }
    let t = power.len() / bins;
    let period_s = period / fr;
    // What each bin sustains under the layer (nothing, unless the layer is short), one bin at a
    // time so an hour's analysis holds two columns, not a second spectrum.
    let keeps_sustain = period_s < SUSTAIN_KEPT_BELOW_S;
    let half_period = ((0.5 * period).round() as usize).max(1);
    let mut column = Vec::with_capacity(if keeps_sustain { t } else { 0 });
    let mut sustained = vec![0.0_f32; if keeps_sustain { t } else { 0 }];
    for (j, &d) in dims.iter().enumerate() {
        if keeps_sustain {
            column.clear();
            column.extend((0..t).map(|i| power[i * bins + d]));
            running_min(&column, half_period, &mut sustained);
        }
        for i in 0..t {
            let p = &mut power[i * bins + d];
            let floor = if keeps_sustain { sustained[i] } else { 0.0 };
            *p -= (p.min(model[i * dims.len() + j]) - floor).max(0.0);
        }
    }
    let w = weight(votes);
    let (profile, register) = profile(votes, bins, config);
    let pattern = Pattern {
        period_s,
        period_beats: None,
        period_bars: None,
        strength: (w / channels.len() as f64).clamp(0.0, 1.0),
        // Made relative to the strongest layer once all are found.
        confidence: w,
        scale_s: lane_of(period_s, &config.lanes),
        profile,
        register,
        active: activity(frames, bins, &channels, fr),
        changes: Vec::new(),
    };
    FoundLayer { pattern, footprint, strays }
}

/// Offsets (frames) of the nearest [`MODEL_MAX_NEIGHBOURS`] repeats either side: the model of what
/// a layer takes out of the spectrum, close enough to follow the music as it evolves.
fn nearest_repeats(period: f64) -> Vec<f64> {
    (1..=MODEL_MAX_NEIGHBOURS).flat_map(|j| [-(j as f64) * period, j as f64 * period]).collect()
}

/// Offsets (frames) of up to [`CHANGE_NEIGHBOURS`] repeats either side spread over at least
/// [`MODEL_REACH_S`]: the reference a change is measured against. A change lasting several
/// periods would match its nearest repeats (they are changed too); repeats further away are not.
fn spread_repeats(period: f64, fr: f64) -> Vec<f64> {
    let reach = (MODEL_REACH_S * fr).max(3.0 * period);
    let count = ((reach / period) as usize).clamp(1, CHANGE_NEIGHBOURS);
    let step = ((reach / period / count as f64).round() as usize).max(1);
    (1..=count).flat_map(|j| [-((j * step) as f64) * period, (j * step) as f64 * period]).collect()
}

/// The median of `power` on `dims` at `offsets` (frames) from each frame: `t × dims.len()`
/// values, 0 where no offset lies inside the frames.
fn repeating_model(power: &[f32], bins: usize, dims: &[usize], offsets: &[f64]) -> Vec<f32> {
    let t = power.len() / bins;
    let mut model = vec![0.0; t * dims.len()];
    // The frames each frame's model looks at, and their values on `dims`, one row per repeat.
    let mut rows: Vec<Vec<f32>> = vec![vec![0.0; dims.len()]; offsets.len().min(median::MAX_ROWS)];
    for (i, out) in model.chunks_exact_mut(dims.len().max(1)).enumerate() {
        let repeats = offsets.iter().filter_map(|o| {
            let u = (i as f64 + o).round();
            (u >= 0.0 && (u as usize) < t).then_some(u as usize)
        });
        let mut k = 0;
        for (row, u) in rows.iter_mut().zip(repeats) {
            let frame = &power[u * bins..(u + 1) * bins];
            for (v, &d) in row.iter_mut().zip(dims) {
                *v = frame[d];
            }
            k += 1;
        }
        // No repeat inside the frames leaves the model at 0; the upper middle value otherwise,
        // as `median` takes it.
        if k > 0 {
            median::median_rows(&rows[..k], out);
        }
    }
    model
}

/// The lane whose range fits `period_s` best: the one whose scale is nearest on a log scale
/// among those whose range holds it.
fn lane_of(period_s: f64, lanes: &[(f64, f64, f64)]) -> f64 {
    lanes
        .iter()
        .min_by(|a, b| {
            let cost = |l: &(f64, f64, f64)| {
                let outside = if period_s < l.1 || period_s > l.2 { 10.0 } else { 0.0 };
                outside + (period_s / l.0).ln().abs()
            };
            cost(a).total_cmp(&cost(b))
        })
        .map_or(period_s, |l| l.0)
}

/// The layer's weight per profile band (0..1, the loudest band 1) and its register in a word.
fn profile(votes: &[Vote], bins: usize, config: &PatternConfig) -> (Vec<f32>, String) {
    let mut w = [0.0_f64; PROFILE_BANDS];
    for v in votes {
        let bin = v.channel * BINS_PER_CHANNEL;
        w[(bin * PROFILE_BANDS / bins.max(1)).min(PROFILE_BANDS - 1)] += v.weight;
    }
    let max = w.iter().copied().fold(0.0, f64::max).max(1e-12);
    let profile: Vec<f32> = w.iter().map(|x| (x / max) as f32).collect();
    // Weighted mean band on a log-frequency scale, against the band edges.
    let total: f64 = w.iter().sum::<f64>().max(1e-12);
    let centre = |b: usize| {
        let lo = if b == 0 { 30.0 } else { config.band_edges_hz[b - 1] };
        (lo * config.band_edges_hz[b]).sqrt().ln()
    };
    let mean = (0..PROFILE_BANDS).map(|b| w[b] * centre(b)).sum::<f64>() / total;
    let spread = ((0..PROFILE_BANDS).map(|b| w[b] * (centre(b) - mean).powi(2)).sum::<f64>() / total).sqrt();
    let hz = mean.exp();
    let register = if spread > 1.2 {
        "wide"
    } else if hz < 300.0 {
        "low"
    } else if hz < 2500.0 {
        "mid"
    } else {
        "high"
    };
    (profile, register.to_owned())
}

/// Stretches where the layer's channels are within [`ACTIVE_RANGE_DB`] of their loudest level.
fn activity(frames: &[f32], bins: usize, channels: &[usize], fr: f64) -> Vec<Span> {
    let t = frames.len() / bins;
    let level: Vec<f64> = (0..t)
        .map(|i| {
            let row = &frames[i * bins..(i + 1) * bins];
            let (sum, n) = channels
                .iter()
                .flat_map(|&c| &row[c * BINS_PER_CHANNEL..(c + 1) * BINS_PER_CHANNEL])
                .fold((0.0, 0), |(s, n), &v| (s + f64::from(v), n + 1));
            sum / n.max(1) as f64
        })
        .collect();
    let level = moving_average(&level, (fr as usize).max(1));
    let mut sorted = level.clone();
    sorted.sort_by(f64::total_cmp);
    let Some(&loud) = sorted.get(sorted.len() * 95 / 100) else { return Vec::new() };
    let on = |v: f64| v >= loud - f64::from(ACTIVE_RANGE_DB);
    runs(&level, on, fr, fr.recip(), 1.0)
}

/// Runs of frames where `on` holds, as spans: runs closer than `gap_s` are joined, shorter than
/// `min_s` dropped.
fn runs(values: &[f64], on: impl Fn(f64) -> bool, fr: f64, gap_s: f64, min_s: f64) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut start = None;
    for (i, &v) in values.iter().chain(std::iter::once(&f64::NAN)).enumerate() {
        match (start, on(v) && i < values.len()) {
            (None, true) => start = Some(i),
            (Some(a), false) => {
                let span = Span { start_s: a as f64 / fr, end_s: i as f64 / fr };
                match out.last_mut() {
                    Some(last) if span.start_s - last.end_s < gap_s => last.end_s = span.end_s,
                    _ => out.push(span),
                }
                start = None;
            }
            _ => {}
        }
    }
    out.retain(|s| s.end_s - s.start_s >= min_s);
    out
}

/// How far the layer strays from its repeats, frame by frame: its channels' level (`power` on
/// `dims`) against its repeating model, as a robust z over the frames.
fn stray_scores(power: &[f32], bins: usize, dims: &[usize], model: &[f32], fr: f64) -> Vec<f64> {
    let t = power.len() / bins;
    if t == 0 || dims.is_empty() {
        return vec![0.0; t];
    }
    // One logarithm per value, of the ratio, where a difference of two dB values took two: the
    // same numbers to rounding, at half the logarithms.
    let db_over = |p: f32, m: f32| 10.0 * (f64::from(p.max(POWER_FLOOR)) / f64::from(m.max(POWER_FLOOR))).log10();
    let smooth = ((CHANGE_SMOOTHING_S * fr).round() as usize).max(3);
    let mut energy = vec![0.0_f64; t];
    // A few bins at a time, read frame by frame (see `columns_in_db`).
    for first in (0..dims.len()).step_by(BINS_PER_CHANNEL * CHANNELS_PER_PASS) {
        let last = (first + BINS_PER_CHANNEL * CHANNELS_PER_PASS).min(dims.len());
        let mut diffs: Vec<Vec<f64>> = (first..last).map(|_| Vec::with_capacity(t)).collect();
        for (i, row) in power.chunks_exact(bins).enumerate() {
            let modelled = &model[i * dims.len()..(i + 1) * dims.len()];
            for (diff, j) in diffs.iter_mut().zip(first..last) {
                diff.push(db_over(row[dims[j]], modelled[j]));
            }
        }
        // Smoothed a group of series at a time, not the whole pass: three copies of every
        // series at once were 20 MB more of an hour's peak.
        for group in diffs.chunks(MOVING_AVERAGE_LANES) {
            let once = moving_averages(group, CHANGE_FRAME_SMOOTHING);
            for diff in moving_averages(&once, smooth) {
                for (e, v) in energy.iter_mut().zip(diff) {
                    *e += v * v;
                }
            }
        }
    }
    let level: Vec<f64> = energy.iter().map(|e| (e / dims.len() as f64).sqrt()).collect();
    robust_z(&level)
}

/// The smallest of `x` within `half` either side of each index, into `out` (as long as `x`), by
/// a monotonic queue: linear in the length whatever the window.
fn running_min(x: &[f32], half: usize, out: &mut [f32]) {
    let mut queue: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let n = x.len();
    // Index `next` enters the queue once the window of `i` reaches it.
    let mut next = 0;
    for (i, o) in out.iter_mut().enumerate().take(n) {
        while next < n && next <= i + half {
            while queue.back().is_some_and(|&b| x[b] >= x[next]) {
                queue.pop_back();
            }
            queue.push_back(next);
            next += 1;
        }
        while queue.front().is_some_and(|&f| f + half < i) {
            queue.pop_front();
        }
        *o = queue.front().map_or(0.0, |&f| x[f]);
    }
}

/// `(x - median) / (1.4826 · MAD)`, with a floor on the spread.
fn robust_z(x: &[f64]) -> Vec<f64> {
    robust_z_with_floor(x, 1e-6)
}

/// `(x - median) / max(1.4826 · MAD, min_spread)`: `min_spread` says how small a difference may
/// still stand out, where nearly all of `x` is the same.
pub(super) fn robust_z_with_floor(x: &[f64], min_spread: f64) -> Vec<f64> {
    let mut v = x.to_vec();
    let med = median(&mut v);
    let mut dev: Vec<f64> = x.iter().map(|a| (a - med).abs()).collect();
    let spread = (median(&mut dev) * 1.4826).max(min_spread);
    x.iter().map(|a| (a - med) / spread).collect()
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

/// Centred moving average of `size` samples, the edges averaging what exists (the edge value
/// repeated, as if the signal held still beyond its ends).
fn moving_average(x: &[f64], size: usize) -> Vec<f64> {
    let [out] = moving_average_lanes([x], size);
    out
}

/// Series [`moving_averages`] runs side by side.
const MOVING_AVERAGE_LANES: usize = 4;

/// [`moving_average`] of each of `xs`, [`MOVING_AVERAGE_LANES`] at a time (the rest two at a
/// time; series of different lengths one at a time). One running sum waits on its last addition
/// at every value; four in one loop each wait on their own, so they add up in about the time of
/// one. Each is the same sums in the same order as alone, so the same values to the bit.
fn moving_averages<S: AsRef<[f64]>>(xs: &[S], size: usize) -> Vec<Vec<f64>> {
    if xs.windows(2).any(|w| w[0].as_ref().len() != w[1].as_ref().len()) {
        return xs.iter().map(|x| moving_average(x.as_ref(), size)).collect();
    }
    let mut out = Vec::with_capacity(xs.len());
    let mut fours = xs.chunks_exact(MOVING_AVERAGE_LANES);
    for group in &mut fours {
        let lanes: [&[f64]; MOVING_AVERAGE_LANES] = std::array::from_fn(|k| group[k].as_ref());
        out.extend(moving_average_lanes(lanes, size));
    }
    // The rest in pairs (a channel's two bins come alone), then one by one.
    let mut pairs = fours.remainder().chunks_exact(2);
    for pair in &mut pairs {
        out.extend(moving_average_lanes([pair[0].as_ref(), pair[1].as_ref()], size));
    }
    out.extend(pairs.remainder().iter().map(|x| moving_average(x.as_ref(), size)));
    out
}

/// [`moving_average`] of `N` series of one length at once (see [`moving_averages`]).
// One index walks the `N` inputs and outputs together, which no single iterator can.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn moving_average_lanes<const N: usize>(xs: [&[f64]; N], size: usize) -> [Vec<f64>; N] {
    let n = xs.first().map_or(0, |x| x.len());
    debug_assert!(xs.iter().all(|x| x.len() == n), "series of one length");
    if size <= 1 || n == 0 {
        return xs.map(|x| x.to_vec());
    }
    let half = size / 2;
    let at = |x: &[f64], i: isize| x[i.clamp(0, n as isize - 1) as usize];
    // Written in place, not pushed: a push may grow the vector, and around that call the running
    // sum went through memory on every value, which made this a tenth of an hour's analysis.
    let mut out: [Vec<f64>; N] = std::array::from_fn(|_| vec![0.0; n]);
    let mut sum: [f64; N] = xs.map(|x| (-(half as isize)..(size - half) as isize).map(|i| at(x, i)).sum());
    let ahead = size - half;
    let clamped = |x: &[f64], i: usize| at(x, (i + ahead) as isize) - at(x, i as isize - half as isize);
    // From `start` to `end` the window lies wholly inside `x` and is read without clamping (the
    // same sums, in the same order: a long input spends nearly all its time there).
    let start = half.min(n);
    let end = n.saturating_sub(ahead).max(start);
    let scale = size as f64;
    for i in 0..start {
        for k in 0..N {
            out[k][i] = sum[k] / scale;
            sum[k] += clamped(xs[k], i);
        }
    }
    for i in start..end {
        for k in 0..N {
            out[k][i] = sum[k] / scale;
            sum[k] += xs[k][i + ahead] - xs[k][i - half];
        }
    }
    for i in end..n {
        for k in 0..N {
            out[k][i] = sum[k] / scale;
            sum[k] += clamped(xs[k], i);
        }
    }
    out
}

/// Each of `xs` band-passed in time for periods of `lo..=hi` frames, without its mean: less its
/// trend (a moving average over more than two of the longest periods), smoothed over a quarter
/// of the shortest. The series' moving averages run side by side ([`moving_averages`]).
fn band_passed_all(xs: &[Vec<f64>], lo: usize, hi: usize) -> Vec<Vec<f64>> {
    let trends = moving_averages(xs, 2 * hi + 1);
    let detrended: Vec<Vec<f64>> = xs.iter().zip(&trends).map(|(x, trend)| x.iter().zip(trend).map(|(a, b)| a - b).collect()).collect();
    let mut bands = moving_averages(&detrended, (lo / 4).max(1));
    for band in &mut bands {
        let mean = band.iter().sum::<f64>() / band.len().max(1) as f64;
        band.iter_mut().for_each(|v| *v -= mean);
    }
    bands
}

/// Similarity across lags of every channel, by FFT autocorrelation, with its plans and buffers
/// made once per analysis. The FFTs are in f32, at about half the time of f64 ones (they were an
/// eighth of an analysis): their rounding moves a similarity by under 1e-6 (a test holds it to
/// the direct sum in f64), far below what tells a period from its neighbours ([`DIVISOR_JUMP`],
/// [`PEAK_FRACTION`]); the squares and sums around them stay in f64.
struct Autocorrelation {
    frames: usize,
    /// The longest lag it is asked for: the FFT is zero-padded to `frames + max_lag`, enough to
    /// keep those lags free of wrap-around (a long file needs far less than twice its length).
    max_lag: usize,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    power: Vec<Complex<f32>>,
    output: Vec<f32>,
}

impl Autocorrelation {
    fn new(frames: usize, max_lag: usize) -> Self {
        let max_lag = max_lag.min(frames.saturating_sub(1));
        let n = (frames + max_lag + 1).next_power_of_two();
        let mut planner = RealFftPlanner::new();
        let forward = planner.plan_fft_forward(n);
        let inverse = planner.plan_fft_inverse(n);
        Self {
            frames,
            max_lag,
            input: forward.make_input_vec(),
            spectrum: forward.make_output_vec(),
            power: forward.make_output_vec(),
            output: inverse.make_output_vec(),
            forward,
            inverse,
        }
    }

    /// A channel's `1 - mean‖x(t) - x(t-l)‖² / (2·var)` for lags `0..=max_lag`, where x is its
    /// bins in dB (`db`, one row of frames per bin), band-passed for the lag range `lo..=hi`.
    fn similarity(&mut self, db: &[Vec<f64>], lo: usize, hi: usize, max_lag: usize) -> Vec<f64> {
        let t = self.frames;
        let max_lag = max_lag.min(self.max_lag);
        {
            self.power.iter_mut().for_each(|p| *p = Complex::new(0.0, 0.0));
            let mut squares = vec![0.0_f64; t];
            for band in band_passed_all(db, lo, hi) {
                for (s, v) in squares.iter_mut().zip(&band) {
                    *s += v * v;
                }
                self.input.iter_mut().for_each(|v| *v = 0.0);
                self.input[..t].iter_mut().zip(&band).for_each(|(i, b)| *i = *b as f32);
                // Lengths are the planner's own: this cannot fail.
                let _ = self.forward.process(&mut self.input, &mut self.spectrum);
                for (p, s) in self.power.iter_mut().zip(&self.spectrum) {
                    p.re += s.norm_sqr();
                }
            }
            let _ = self.inverse.process(&mut self.power, &mut self.output);
            let n = self.output.len() as f64;
            // Prefix sums of the squares, for the overlap of each lag, the running sum kept in a
            // register (read back from `prefix`, it went through memory at every step).
            let mut prefix = vec![0.0_f64; t + 1];
            let mut running = 0.0;
            for (p, s) in prefix[1..].iter_mut().zip(&squares) {
                running += s;
                *p = running;
            }
            let var = prefix[t] / t as f64 + 1e-9;
            let r: Vec<f64> = (0..=max_lag)
                .map(|l| {
                    let cross = f64::from(self.output[l]) / n;
                    let late = prefix[t] - prefix[l];
                    let early = prefix[t - l];
                    let mean_sq_diff = (late + early - 2.0 * cross) / (t - l) as f64;
                    1.0 - mean_sq_diff / (2.0 * var)
                })
                .collect();
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FR: f64 = 50.0;
    const BINS: usize = 16;

    fn config() -> PatternConfig {
        PatternConfig {
            frame_rate: FR,
            bins: BINS,
            lanes: vec![(0.2, 0.18, 0.4), (1.0, 0.4, 2.0), (2.0, 1.0, 4.0), (5.0, 2.5, 10.0)],
            band_edges_hz: vec![290.0, 620.0, 1060.0, 1650.0, 2440.0, 3500.0, 4900.0, 8000.0],
            period_head: None,
            change_head: None,
            attribution_head: None,
        }
    }

    /// A pseudo-random value in -0.5..0.5 from a seed.
    fn noise(seed: u64) -> f32 {
        let s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    }

    /// Frames where the low half of the bins repeats every `low` frames and the high half every
    /// `high` frames (random patterns, in dB), with a little noise.
    fn two_layers(low: usize, high: usize, frames: usize, change: Option<(usize, usize)>) -> Vec<f32> {
        let mut out = Vec::with_capacity(frames * BINS);
        for t in 0..frames {
            for b in 0..BINS {
                let (p, salt) = if b < BINS / 2 { (low, 1) } else { (high, 2) };
                let changed = b < BINS / 2 && change.is_some_and(|(a, z)| t >= a && t < z);
                let phase = (t % p) as u64;
                let v = -40.0 + 30.0 * noise(phase * 97 + b as u64 * 7 + salt) + 12.0 * f32::from(changed);
                out.push(v + noise(t as u64 * 131 + b as u64));
            }
        }
        out
    }

    #[test]
    fn each_part_of_the_spectrum_gets_its_own_period() {
        let frames = two_layers(100, 24, 3000, None);
        let found = discover(&frames, BINS, &config());
        let periods: Vec<f64> = found.iter().map(|p| p.period_s).collect();
        assert!(found.iter().any(|p| (p.period_s - 2.0).abs() < 0.06 && p.register != "high"), "{periods:?}");
        assert!(found.iter().any(|p| (p.period_s - 0.48).abs() < 0.0144), "{periods:?}");
        assert!(found.len() <= 3, "{periods:?}");
    }

    #[test]
    fn running_min_takes_the_smallest_within_the_window() {
        let x = [5.0, 3.0, 4.0, 8.0, 1.0, 9.0, 7.0, 6.0];
        let mut out = [0.0; 8];
        running_min(&x, 1, &mut out);
        assert_eq!(out, [3.0, 3.0, 3.0, 1.0, 1.0, 1.0, 6.0, 6.0]);
        running_min(&x, 0, &mut out);
        assert_eq!(out, x);
        running_min(&x, 10, &mut out);
        assert_eq!(out, [1.0; 8]);
    }

    /// Clicks every 0.3 s over a pad in the same bins that swells and fades every 8 s (±15 dB).
    fn clicks_over_a_pad(frames: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(frames * BINS);
        for t in 0..frames {
            let pad_db = -40.0 + 15.0 * (std::f32::consts::TAU * t as f32 / 400.0).sin();
            for b in 0..BINS {
                let click = if t % 15 == 0 { 0.01 } else { 0.0 };
                let pad = 10f32.powf((pad_db + noise(t as u64 * 131 + b as u64)) / 10.0);
                out.push(10.0 * (click + pad).log10());
            }
        }
        out
    }

    #[test]
    fn a_short_layer_leaves_the_sustained_sound_under_it_to_the_long_layers() {
        let found = discover(&clicks_over_a_pad(3000), BINS, &config());
        let periods: Vec<f64> = found.iter().map(|p| p.period_s).collect();
        assert!(found.iter().any(|p| same_period(p.period_s, 0.3)), "{periods:?}");
        assert!(found.iter().any(|p| same_period(p.period_s, 8.0)), "{periods:?}");
    }

    /// A head that calls a candidate a period when it sounds in a single channel (probability
    /// 0.9999), and is unsure (0.5) of any other: one tree, split on the channels (feature 2).
    fn single_channel_head() -> PeriodHead {
        let json = r#"{"baseline": 0.0, "trees": [{"feature": [2, 0, 0], "threshold": [1.5, 0.0, 0.0],
            "left": [1, 0, 0], "right": [2, 0, 0], "leaf": [false, true, true], "value": [0.0, 10.0, 0.0]}]}"#;
        PeriodHead::from_json(json).expect("a valid head")
    }

    #[test]
    fn a_candidate_the_rules_pass_over_is_a_layer_when_the_head_says_so() {
        // Seven channels repeat every 2 s; one channel (two bins) repeats every 0.72 s on its
        // own, too narrow for the rules' weight floor.
        let (loud, quiet, frames) = (100, 36, 3000);
        let mut out = Vec::with_capacity(frames * BINS);
        for t in 0..frames {
            for b in 0..BINS {
                let (p, salt) = if b < BINS - 2 { (loud, 1) } else { (quiet, 2) };
                out.push(-40.0 + 30.0 * noise((t % p) as u64 * 97 + b as u64 * 7 + salt) + noise(t as u64 * 131 + b as u64));
            }
        }
        let is_quiet = |p: &Pattern| (p.period_s - 0.72).abs() < 0.03 * 0.72;
        let by_rules = discover(&out, BINS, &config());
        assert!(!by_rules.iter().any(is_quiet), "{by_rules:?}");
        let with_head = PatternConfig { period_head: Some(Arc::new(single_channel_head())), ..config() };
        let mut trace = Trace::default();
        let found = discover_traced(&out, BINS, None, &with_head, &mut trace);
        let trace = trace.candidates;
        assert!(found.iter().any(is_quiet), "{:?}", found.iter().map(|p| p.period_s).collect::<Vec<_>>());
        // The trace notes each round's candidates, one chosen per round that found a layer.
        for (round, _) in found.iter().enumerate() {
            assert_eq!(trace.iter().filter(|c| c.round == round && c.chosen).count(), 1);
        }
        assert!(trace.iter().filter(|c| c.chosen).all(|c| found.iter().any(|p| (p.period_s - c.period_s).abs() < 0.03 * c.period_s)));
    }

    #[test]
    fn the_head_refuses_what_the_rules_accept_but_never_empties_a_piece() {
        // Two layers the rules find (0.48 s and 2 s); a head that scores every candidate near 0
        // refuses nothing in the first round (the rules' shortest stays) and all after it.
        let frames = two_layers(100, 24, 3000, None);
        let by_rules = discover(&frames, BINS, &config());
        assert!(by_rules.len() >= 2, "{:?}", by_rules.iter().map(|p| p.period_s).collect::<Vec<_>>());
        let refusing = PeriodHead::from_json(r#"{"baseline": -20.0, "trees": []}"#).expect("a valid head");
        let with_head = PatternConfig { period_head: Some(Arc::new(refusing)), ..config() };
        let found = discover(&frames, BINS, &with_head);
        assert_eq!(found.len(), 1, "{:?}", found.iter().map(|p| p.period_s).collect::<Vec<_>>());
        assert!(by_rules.iter().any(|p| (found[0].period_s - p.period_s).abs() < 1e-9));
    }

    #[test]
    fn a_changed_stretch_is_found_on_its_layer_at_frame_resolution() {
        let frames = two_layers(100, 24, 3000, Some((1500, 1900)));
        let found = discover(&frames, BINS, &config());
        let low = found.iter().find(|p| (p.period_s - 2.0).abs() < 0.06).expect("the 2 s layer");
        let c = low.changes.first().unwrap_or_else(|| panic!("no change in {found:#?}"));
        assert!((c.start_s - 30.0).abs() <= 0.5 && (c.end_s - 38.0).abs() <= 0.5, "{c:?}");
        let others: usize = found.iter().filter(|p| !std::ptr::eq(*p, low)).map(|p| p.changes.len()).sum();
        assert_eq!(others, 0, "{found:#?}");
    }

    #[test]
    fn silence_and_tiny_inputs_have_no_layers() {
        assert!(discover(&vec![-60.0; 3000 * BINS], BINS, &config()).is_empty());
        assert!(discover(&[], BINS, &config()).is_empty());
        assert!(discover(&[-60.0; 3 * BINS], BINS, &config()).is_empty());
    }

    #[test]
    fn history_keeps_its_limit_and_times_stay_absolute() {
        let mut h = MelHistory::new(4, Some(10));
        h.push(&[0.0; 4 * 25], &[]);
        assert_eq!(h.len(), 10);
        assert_eq!(h.first_frame(), 15);
        // Frame by frame past several compactions, the last ten frames stay, in order.
        for k in 0..37 {
            h.push(&[k as f32 / DB_PER_NEPER; 4], &[]);
            let held = h.clone();
            assert_eq!(held.len(), 10);
            assert_eq!(held.first_frame(), 16 + k);
            let expect: Vec<f32> = (k.saturating_sub(9)..=k).flat_map(|j| [j as f32; 4]).collect();
            let got = h.held();
            let tail = &got[got.len() - expect.len()..];
            assert!(tail.iter().zip(&expect).all(|(a, b)| (a - b).abs() < 1e-4), "{tail:?}");
            assert!(h.frames.stored() <= 2 * 4 * 10 + 4, "dropped frames are compacted");
        }
    }

    #[test]
    fn the_bass_view_is_kept_and_dropped_with_the_log_mel() {
        let mut h = MelHistory::new(4, Some(10)).with_bass(BassHistory::new(3, 6, vec![0, 0, 1]));
        h.push(&[0.0; 4 * 25], &[0.0; 3 * 25]);
        for k in 0_usize..37 {
            h.push(&[k as f32 / DB_PER_NEPER; 4], &[-(k as f32) / DB_PER_NEPER; 3]);
            for held in [&h, &h.clone()] {
                let bass = held.bass.as_ref().and_then(BassHistory::frames).expect("a bass view");
                assert_eq!((bass.bins, bass.lag_frames, bass.mel_bin), (3, 6, &[0, 0, 1][..]));
                assert_eq!(bass.frames.len(), 3 * held.len(), "one bass frame per log-mel frame");
                let expect: Vec<f32> = (k.saturating_sub(9)..=k).flat_map(|j| [-(j as f32); 3]).collect();
                let tail = &bass.frames[bass.frames.len() - expect.len()..];
                assert!(tail.iter().zip(&expect).all(|(a, b)| (a - b).abs() < 1e-4), "{tail:?}");
            }
            let b = h.bass.as_ref().expect("a bass view");
            assert!(b.values.stored() <= 2 * 3 * 10 + 3, "dropped frames are compacted");
        }
    }

    /// The FFT's similarity (in f32) is the direct sum over each lag's overlap (in f64) to well
    /// under what separates a period from its neighbours.
    #[test]
    fn the_similarity_is_the_direct_sum_over_each_lag() {
        let t = 6000;
        let (lo, hi, max_lag) = (20, 200, 400);
        // Two bins of a 37-frame pattern in dB, over a slow swell and noise.
        let db: Vec<Vec<f64>> = (0..2)
            .map(|b| {
                (0..t)
                    .map(|i| {
                        let pattern = if (i + 7 * b) % 37 < 5 { 20.0 } else { -10.0 * ((i % 37) as f64 / 37.0) };
                        pattern + 6.0 * (i as f64 / 900.0).sin() + 3.0 * f64::from(noise((b * t + i) as u64))
                    })
                    .collect()
            })
            .collect();
        let r = Autocorrelation::new(t, max_lag).similarity(&db, lo, hi, max_lag);
        let bands = band_passed_all(&db, lo, hi);
        let var = bands.iter().flatten().map(|v| v * v).sum::<f64>() / t as f64 + 1e-9;
        for l in 0..=max_lag {
            let sq_diff: f64 = bands.iter().map(|x| (l..t).map(|i| (x[i] - x[i - l]).powi(2)).sum::<f64>()).sum();
            let direct = 1.0 - sq_diff / (t - l) as f64 / (2.0 * var);
            assert!((r[l] - direct).abs() < 1e-5, "lag {l}: {} against {direct}", r[l]);
        }
        assert!(r[37] > 0.9 && r[18] < r[37] - 0.3, "the pattern's period stands out: {} at 37, {} at 18", r[37], r[18]);
    }

    #[test]
    fn moving_average_keeps_constants_and_length() {
        let x = vec![2.0; 17];
        assert_eq!(moving_average(&x, 5), x);
        assert_eq!(moving_average(&[1.0, 2.0, 3.0], 1), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn moving_averages_side_by_side_are_each_alone_to_the_bit() {
        for (count, len, size) in [(4, 1000, 51), (7, 300, 4), (2, 500, 101), (9, 20, 33), (1, 50, 3), (5, 1, 7)] {
            let xs: Vec<Vec<f64>> = (0..count).map(|k| (0..len).map(|i| ((i * 37 + k * 11) % 23) as f64 * 0.37 - 3.1).collect()).collect();
            let together = moving_averages(&xs, size);
            assert_eq!(together.len(), count);
            for (x, got) in xs.iter().zip(&together) {
                let alone = moving_average(x, size);
                assert!(alone.iter().zip(got).all(|(a, b)| a.to_bits() == b.to_bits()), "{count} series of {len}, size {size}");
            }
        }
        // Series of different lengths are each averaged alone.
        let (short, long): (Vec<f64>, Vec<f64>) = ((0..10).map(f64::from).collect(), (0..12).map(|i| f64::from(i * i)).collect());
        assert_eq!(moving_averages(&[&short, &long, &short, &long], 3), vec![moving_average(&short, 3), moving_average(&long, 3), moving_average(&short, 3), moving_average(&long, 3)]);
    }

    #[test]
    fn moving_average_repeats_the_ends_beyond_them() {
        // Each output is the mean of `size` inputs centred on it (one more behind than ahead
        // for an even size), the first and last input standing in beyond the ends; windows
        // longer than the input included.
        let x: Vec<f64> = (0..9).map(|i| f64::from(i * i % 7)).collect();
        for size in [2, 3, 4, 5, 8, 9, 12, 20] {
            let half = size / 2;
            let at = |i: isize| x[i.clamp(0, x.len() as isize - 1) as usize];
            let expected: Vec<f64> = (0..x.len() as isize).map(|i| (i - half as isize..i - half as isize + size as isize).map(at).sum::<f64>() / size as f64).collect();
            let got = moving_average(&x, size);
            assert_eq!(got.len(), x.len());
            assert!(got.iter().zip(&expected).all(|(g, e)| (g - e).abs() < 1e-12), "size {size}: {got:?} against {expected:?}");
        }
    }
}
