//! Changed stretches: where the sound is unlike anything heard elsewhere in the piece.
//!
//! A layer that changes for a while (its pitch, filter, density, timbre or loudness, a dropout,
//! a variant) plays, for that while, something it plays nowhere else, while everything that
//! repeats has a match somewhere. So the test needs no period, and it finds the changes of
//! layers whose period was never found:
//!
//! 1. Each bin's quiet is made silent: a bin's level is raised to at least [`FLOOR_BELOW_DB`]
//!    under its own loud level (its [`LOUD_QUANTILE`]). Log distances grow as a level falls
//!    towards the floor of the front end, so without this the quiet phase of a swelling pad or
//!    noise, which never repeats exactly down there, looks like a change to a layer.
//!    The frames are then pooled into moments ([`MOMENT_RATE_HZ`]) and the bins into [`BANDS`]
//!    bands, because a change lives in the bands of the layer that changed, not in the whole mix.
//! 2. For every moment and band, the distance (RMS, in dB) between the [`CONTEXT_S`] window
//!    around it and the closest window at least [`EXCLUSION_S`] and at most [`REACH_S`] away.
//!    The exclusion outlasts most changes: inside a changed stretch the changed pattern
//!    repeats itself, one period apart, and those matches must not count.
//! 3. Each band's distances are scored against the band's own typical distance (a robust z,
//!    with a spread of at least [`MIN_SPREAD_DB`]), and a moment's score is the mean of its
//!    [`TOP_BANDS`] highest bands. Where the bass view is given ([`BassFrames`]: a spectrum
//!    with a value every 7.8 Hz from 30 to 250 Hz, see [`crate::dsp::bass`]), its values go
//!    through steps 1 and 2 too, in [`BASS_BANDS`] bands of their own scored beside the log-mel
//!    bands: the log-mel bins are 31 Hz apart there, so a drone or bass line moving by a few
//!    semitones changes nothing they hear. On the validation seeds 60-79 (240 pieces) the bass
//!    view raised change F1 by 0.016 at 0.5 s, 0.051 at 3 s and 0.023 for the right layer; on
//!    360 pieces never used for a choice (seeds 30-39 and 80-99) by 0.045, 0.062 and 0.045 (see
//!    the README's Quality for the lmms demos).
//! 4. Stretches that pass [`Z_ENTER`], extended while above [`Z_STAY`] and lasting at least
//!    [`MIN_STRETCH_S`], are the changes: the start and the end of each is a change boundary.
//! 5. A second look: a change of a long layer (chords every 16 s, changed for 40 s) repeats
//!    itself inside the changed stretch, further apart than the exclusion, so only part of it is
//!    heard as novel. Steps 2 to 4 run again with matches inside the same found stretch, widened
//!    by [`SECOND_LOOK_MARGIN_S`] either side, not counted: the changed pattern no longer matches
//!    its own repeats, while what repeats elsewhere in the piece still finds its matches there.
//! 6. Short bursts: where a layer changes for longer than the exclusion and the changed pattern
//!    matches itself inside the change, only the change's two edges, where a window holds both
//!    the old and the new, stay novel, each for about a window: too short for a stretch. A burst
//!    over [`Z_BURST`] away from every stretch is a change of its own, an instant at its peak.
//! 7. Splits: where two layers in different bands change at overlapping or neighbouring times,
//!    their changes make one stretch, and the end of the first or the start of the second lies
//!    inside it. A stretch is split where the bands it is novel in before a moment and after it
//!    stop being alike ([`split_where_bands_shift`]), and each part is a change of its own.
//!
//! 8. With the change head (learned, see [`super::edges`]), every edge then moves to the moment
//!    the head is surest of near it, a stretch's edge the head finds nothing near is dropped, and
//!    the moments the head is confident of far from every edge are changes of their own.
//!
//! A part coming in or going out is also a change, and one the stretches miss where the part
//! plays something heard elsewhere (a second chorus): [`level_steps`] finds the moments where a
//! band's level jumps by [`STEP_DB`] or more, and [`changes`] adds those not already at the edge
//! of a stretch, as instants (start equal to end), unless they recur at one spacing or their band
//! did the same one or two of a found layer's periods away (a layer that swells or comes in once
//! a period).
//!
//! The cost is one pass over the moments per lag in reach (two where the first look finds a
//! stretch), linear in the length of the input.
//! Everything is a function of the frames (and the periods found in them) alone, so a stream and
//! a whole file agree.

use super::edges::{self, MomentInputs};
use super::heads::ChangeHead;
use super::patterns::{robust_z_with_floor, ChangeSpan};

/// Moments per second the frames are pooled into.
pub const MOMENT_RATE_HZ: f64 = 10.0;
/// Bands the log-mel bins are grouped into (adjacent bins, equal counts).
pub const BANDS: usize = 16;
/// Half the length of the window compared around each moment, in seconds.
pub const CONTEXT_S: f64 = 0.5;
/// Windows closer than this (seconds) are not compared: inside a change longer than this, the
/// changed pattern can match itself. 10 s (it was 20) lets music whose layers only all repeat
/// together after 10 to 20 s find its matches, at the cost of the middle of changes over about
/// 20 s. Alone, 10 s raised change F1 on the development seeds, on seeds 7-14 and on the lmms
/// demos, and lowered it on the held-out seeds (see the README's Quality); 5 and 7.5 s did
/// better on the demos and worse on the synthetic seeds.
pub const EXCLUSION_S: f64 = 10.0;
/// Windows further apart than this (seconds) are not compared, which keeps the cost linear in
/// the length of the input.
pub const REACH_S: f64 = 90.0;
/// The bands a moment's score is the mean of: its most novel ones.
pub const TOP_BANDS: usize = 2;
/// The score (robust z) at which a stretch starts to count.
pub const Z_ENTER: f64 = 3.0;
/// The score down to which a stretch extends either side.
pub const Z_STAY: f64 = 1.5;
/// The shortest stretch that is a change, in seconds.
pub const MIN_STRETCH_S: f64 = 3.0;
/// The score (robust z) at which a burst of novelty too short to be a stretch is a change of its
/// own, an instant at its peak ([`short_bursts`]). Where a layer changes for longer than the
/// exclusion, the changed pattern matches its own repeats inside the change and only the two
/// edges stay novel, each for about the window (twice [`CONTEXT_S`]): under [`MIN_STRETCH_S`].
/// Chosen on the validation seeds 60-69 in a replica of the detector (`models/tools/
/// novelty_features.py`'s): change F1 at 0.5 s / 3 s 0.359 / 0.536 without bursts, 0.379 / 0.559
/// with them (4: 0.380 / 0.558; 6: 0.380 / 0.559), and on the lmms demos 0.075 / 0.157 against
/// 0.106 / 0.190 (the replica has no level steps); see the README's Quality for the engine.
pub const Z_BURST: f64 = 6.0;
/// The fewest moments in a row a burst passes [`Z_BURST`] for (one alone: 0.380 / 0.557).
pub const BURST_MIN_MOMENTS: usize = 2;
/// How far (seconds) a burst must lie from a stretch, a kept level step or the burst before it
/// to count: nearer, it is their edge.
pub const BURST_SEPARATION_S: f64 = 3.0;
/// The seconds of band novelty averaged on each side of a moment inside a stretch, to tell the
/// bands that were novel before it from those novel after it ([`split_where_bands_shift`]).
pub const SHIFT_WINDOW_S: f64 = 2.0;
/// The seconds left out between the moment and each side's window: the window each moment's
/// novelty was measured over blurs a shift over about this much.
pub const SHIFT_GAP_S: f64 = 0.5;
/// A stretch is split where the cosine of the two sides' mean band novelty falls below this:
/// one layer's change ends, or another's begins, in other bands. Chosen with [`SHIFT_WINDOW_S`],
/// [`SHIFT_GAP_S`] and [`SHIFT_SEPARATION_S`] in the replica (`models/tools/novelty_features.py`)
/// on the validation seeds 60-69, checked on 70-79 and the lmms demos: change F1 at 0.5 s / 3 s
/// 0.403 / 0.564 -> 0.421 / 0.572, 0.416 / 0.576 -> 0.424 / 0.582, and 0.107 / 0.183 -> 0.119 /
/// 0.214 (0.6: 0.422 / 0.571, 0.422 / 0.581, 0.116 / 0.212).
pub const SHIFT_BELOW_COSINE: f64 = 0.5;
/// The shortest part (seconds) a split leaves of a stretch, and the least time between two splits.
pub const SHIFT_SEPARATION_S: f64 = 2.0;
/// How far (seconds) the second look widens each found stretch before matches inside it stop
/// counting. On the validation seeds 60-79 (240 pieces; the stretches alone, replicated by
/// `models/tools/novelty_features.py --second-look`), 5 s raised change F1 by 0.010 ± 0.007 at
/// 0.5 s and 0.017 ± 0.007 at 3 s (8 seeds up, 2 down); 10 s by 0.010 and 0.015 but cost the
/// lmms demos 0.028 at 3 s (5 s: -0.001), and 20 s lost on both. The whole detector gained
/// 0.010 and 0.014 there, and nothing beyond noise on the 120 pieces of seeds 30-39 (README).
pub const SECOND_LOOK_MARGIN_S: f64 = 5.0;
/// Stretches closer than this (seconds) are one change: the score dipped for a moment inside it
/// (a changed drone between two swells). On development seeds 1, 2, 5 and 6, 2 s raised change
/// F1 at 3 s by 0.00 to 0.03 per seed (1 s and 3-4 s less); the lmms demos moved by under 0.003.
pub const JOIN_GAP_S: f64 = 2.0;
/// How far (seconds) a stretch's start is pulled in: a window around a moment already reaches
/// into the change this much before the change arrives.
pub const START_PULL_S: f64 = 0.2;
/// How far (seconds) a stretch's end is pulled in: the window still holds the change after it has
/// gone, and the score stays above [`Z_STAY`] longer than it took to rise there.
pub const END_PULL_S: f64 = 0.45;
/// The smallest spread (dB) a band's distances are scored against. Loops rendered sample-exact
/// match themselves to a hundredth of a dB; without a floor a fraction of a dB would stand out.
pub const MIN_SPREAD_DB: f64 = 0.25;
/// The mean score at which a change's strength reaches 1.
pub const FULL_Z: f64 = 12.0;
/// A bin's loud level: this quantile of its values over the frames.
pub const LOUD_QUANTILE: f64 = 0.99;
/// How far below its loud level (dB) a bin still counts as sounding; anything quieter is
/// silence, compared as equal. Chosen on development seeds 1, 2, 5 and 6 (17, 20 and 23 dB all
/// raised change F1 at 0.5 s on each of them); the lmms demos moved by under 0.01.
pub const FLOOR_BELOW_DB: f32 = 20.0;

/// How near (seconds) the start or the end of the frames no change is placed: the music starting
/// or stopping is not a layer changing (the shared metrics leave the truth's edges there out
/// too). A stretch from the very start is a change at its end, one to the very end a change at
/// its start. Of the edges reported before this rule, 11 of 280 on the lmms demos and 9 of 1134
/// on the validation seeds 60-79 were that near an end.
pub const ENDS_S: f64 = 1.0;

/// The seconds either side of a moment whose mean levels are compared for a step.
pub const STEP_WINDOW_S: f64 = 2.0;
/// The jump (dB) of one band's mean level that is a step: a part coming in or going out. At 10 dB
/// (it was 15) the demos' parts coming in are found, and the steps of a layer that swells once
/// a period, which a lower bar lets in, are dropped as recurring ([`recurring`]);
/// chosen on the lmms demos and development seeds 1, 2, 5 and 6.
pub const STEP_DB: f64 = 10.0;
/// Two steps closer than this (seconds) are one: the larger.
pub const STEP_SEPARATION_S: f64 = 2.0;
/// A step this close (seconds) to a stretch's start or end is that edge, not a change of its own.
pub const STEP_AT_EDGE_S: f64 = 1.5;
/// The jump (dB) at which a step's strength reaches 1.
pub const FULL_STEP_DB: f64 = 30.0;
/// The shortest and longest spacing (seconds) of steps that recur: a layer that swells or comes
/// in once a period (see [`recurring`]).
pub const RECURRING_MIN_S: f64 = 2.0;
pub const RECURRING_MAX_S: f64 = 40.0;
/// How near (seconds) the third of three recurring steps must fall to an exact repeat: three
/// moments, or [`RECURRING_TOLERANCE_SHARE`] of the spacing, the tolerance a period is judged by.
pub const RECURRING_TOLERANCE_S: f64 = 0.3;
pub const RECURRING_TOLERANCE_SHARE: f64 = 0.03;
/// A step is a layer's own, not a change ([`LevelJumps::echoed`]), where its band's level around
/// it is repeated one or two of a layer's periods away to within this share of the jump (RMS,
/// dB). A part coming in where the band was steady a period before differs from it by 0.71 of
/// the jump (half the window by all of it); 0.35 sits halfway to an exact repeat. On development
/// seeds 1, 2, 5 and 6 it raised change F1 by 0.016 at 0.5 s and 0.014 at 3 s (0.2: 0.004 and
/// 0.005; 0.5: 0.020 and 0.022) and moved the lmms demos by -0.001 and -0.003 (0.5: -0.008 and
/// -0.026).
pub const ECHO_SHARE: f64 = 0.35;
/// Bands the bass view's values are grouped into (adjacent values, counts as equal as they divide):
/// 30-250 Hz in four, about 55 Hz each.
pub const BASS_BANDS: usize = 4;

/// The bass view's frames ([`crate::dsp::bass`]) as the novelty reads them: a fine spectrum
/// under 250 Hz, where the log-mel bins are too wide to hear a drone or a bass line change key.
#[derive(Debug, Clone, Copy)]
pub struct BassFrames<'a> {
    /// `bins` values (dB) per frame, one frame per log-mel frame, oldest first.
    pub frames: &'a [f32],
    pub bins: usize,
    /// Bass frame `t + lag_frames` is heard around log-mel frame `t`.
    pub lag_frames: usize,
    /// For each bass bin, the log-mel bin whose frequencies it lies among.
    pub mel_bin: &'a [usize],
}

impl BassFrames<'_> {
    fn layout(&self) -> Bands {
        Bands::new(self.bins, BASS_BANDS.min(self.bins).max(1))
    }

    /// For each of `mel_bins` log-mel bins, the bass bands over its frequencies, numbered after
    /// the `mel_bands` log-mel bands.
    fn bands_of_mel_bins(&self, mel_bins: usize, mel_bands: usize) -> Vec<Vec<usize>> {
        let layout = self.layout();
        let mut of = vec![Vec::new(); mel_bins];
        for (bass_bin, &mel_bin) in self.mel_bin.iter().enumerate().take(self.bins) {
            let band = mel_bands + layout.band_of(bass_bin);
            if let Some(bands) = of.get_mut(mel_bin) {
                if !bands.contains(&band) {
                    bands.push(band);
                }
            }
        }
        of
    }
}

/// Every change in `frames` (`bins` dB values per frame at `frame_rate`, oldest first), with no
/// layer's period known: the stretches heard nowhere else ([`novel_stretches`]) and the level
/// steps ([`level_steps`]) not at one of their edges and not recurring, in order of their start,
/// times in seconds from the first frame.
pub fn changes(frames: &[f32], bins: usize, frame_rate: f64) -> Vec<ChangeSpan> {
    novelty(frames, bins, None, frame_rate, &[], None).changes
}

/// The changes of [`changes`], less the steps that the layers of period `periods_s` (seconds)
/// repeat ([`LevelJumps::echoed`]), with each band's novelty kept so that
/// [`Novelty::where_heard`] can say in which bands a change was heard. With `bass`, the stretches
/// are also heard in the bass view's [`BASS_BANDS`] bands. With a change `head`, the edges are
/// then placed by it ([`super::edges`]).
pub fn novelty(frames: &[f32], bins: usize, bass: Option<BassFrames>, frame_rate: f64, periods_s: &[f64], head: Option<&ChangeHead>) -> Novelty {
    let Heard { stretches: mut changes, bursts, band_z, first_band_z, moments, moment_rate } = novel_stretches_scored(frames, bins, bass, frame_rate);
    let jumps = LevelJumps::of(frames, bins, frame_rate);
    let at_edge = |s: &ChangeSpan| {
        changes.iter().any(|c| (s.start_s - c.start_s).abs() <= STEP_AT_EDGE_S || (s.start_s - c.end_s).abs() <= STEP_AT_EDGE_S)
    };
    // Each step with its instant, those at a stretch's edge set aside before the recurrence is
    // looked for (the order the demos were measured in).
    let steps: Vec<(Step, ChangeSpan)> = jumps.steps().into_iter().map(|s| (s, jumps.span(&s))).filter(|(_, span)| !at_edge(span)).collect();
    let at: Vec<f64> = steps.iter().map(|(_, span)| span.start_s).collect();
    let kept: Vec<ChangeSpan> = steps
        .iter()
        .zip(recurring(&at))
        .filter(|((step, _), recurs)| !recurs && !jumps.echoed(step, periods_s))
        .map(|((_, span), _)| *span)
        .collect();
    // A step places a part coming in or going out more closely than the burst it makes.
    let bursts: Vec<ChangeSpan> = bursts.into_iter().filter(|b| kept.iter().all(|s| (s.start_s - b.start_s).abs() > BURST_SEPARATION_S)).collect();
    changes.extend(kept);
    changes.extend(bursts);
    let held_s = (frames.len() / bins.max(1)) as f64 / frame_rate;
    let mut changes: Vec<ChangeSpan> = changes.into_iter().filter_map(|c| away_from_ends(c, held_s)).collect();
    changes.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let layout = Bands::of(bins);
    let bass_bands_of_bin = bass.map(|b| b.bands_of_mel_bins(bins, layout.bands)).unwrap_or_else(|| vec![Vec::new(); bins]);
    let bands = layout.bands + bass.map_or(0, |b| b.layout().bands);
    if let Some(head) = head {
        let level_bands: Vec<std::ops::Range<usize>> = (0..layout.bands).map(|k| layout.range(k)).collect();
        let inputs = MomentInputs { first: &first_band_z, last: &band_z, bands, moments: &moments, bins, level_bands: &level_bands, moment_rate };
        changes = edges::placed(changes, &edges::probabilities(head, &inputs), moment_rate, held_s);
    }
    Novelty { changes, band_z, bands, layout, bass_bands_of_bin, moment_rate }
}

/// `change` less its edges within [`ENDS_S`] of the start or the end (`held_s`) of the frames: a
/// stretch that starts there is an instant at its end, one that ends there an instant at its
/// start, and an instant there, or a stretch from end to end, is no change.
fn away_from_ends(change: ChangeSpan, held_s: f64) -> Option<ChangeSpan> {
    let early = change.start_s < ENDS_S;
    let late = change.end_s > held_s - ENDS_S;
    match (early, late) {
        (false, false) => Some(change),
        _ if change.end_s <= change.start_s => None,
        (true, true) => None,
        (true, false) => Some(ChangeSpan { start_s: change.end_s, ..change }),
        (false, true) => Some(ChangeSpan { end_s: change.start_s, ..change }),
    }
}

/// The seconds a change is heard over: a stretch's own, or [`STEP_WINDOW_S`] either side of an
/// instant (a part coming in or going out is heard on one side), from 0 at the earliest.
pub fn heard_over(change: &ChangeSpan) -> (f64, f64) {
    if change.end_s > change.start_s {
        (change.start_s, change.end_s)
    } else {
        ((change.start_s - STEP_WINDOW_S).max(0.0), change.start_s + STEP_WINDOW_S)
    }
}

/// The changes of a piece and how novel each band was at each moment.
#[derive(Debug, Clone)]
pub struct Novelty {
    /// The changes, in order of their start.
    pub changes: Vec<ChangeSpan>,
    /// Per moment, each band's novelty (robust z), moment-major.
    band_z: Vec<f64>,
    /// Bands per moment in `band_z`.
    bands: usize,
    /// The log-mel bands; the bass view's bands, if any, follow them.
    layout: Bands,
    /// For each log-mel bin, the bass view's bands (numbered after the log-mel ones) that hear
    /// its frequencies.
    bass_bands_of_bin: Vec<Vec<usize>>,
    moment_rate: f64,
}

impl Novelty {
    /// The bands the novelty is scored in: the log-mel bins' (adjacent bins, equal counts), then
    /// the bass view's.
    pub fn bands(&self) -> usize {
        self.bands
    }

    /// The bands that hear log-mel bin `bin`: the log-mel band it belongs to, and the bass view's
    /// bands over its frequencies.
    pub fn bands_of(&self, bin: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.layout.band_of(bin)).chain(self.bass_bands_of_bin.get(bin).into_iter().flatten().copied())
    }

    /// Where `change` was heard: each band's mean novelty over the seconds it is heard over
    /// ([`heard_over`]), what is no more alike than usual counted as 0.
    pub fn where_heard(&self, change: &ChangeSpan) -> Vec<f64> {
        let (from_s, to_s) = heard_over(change);
        let bands = self.bands();
        let n = self.band_z.len() / bands;
        let a = ((from_s * self.moment_rate) as usize).min(n);
        let b = ((to_s * self.moment_rate).ceil().max(0.0) as usize).clamp(a, n);
        let mut heard = vec![0.0; bands];
        for row in self.band_z[a * bands..b * bands].chunks_exact(bands) {
            for (h, z) in heard.iter_mut().zip(row) {
                *h += z.max(0.0);
            }
        }
        heard.iter_mut().for_each(|h| *h /= (b - a).max(1) as f64);
        heard
    }
}

#[cfg(test)]
impl Novelty {
    /// Novelty as a test describes it: the changes, and each of [`BANDS`] bands' novelty at
    /// each moment ([`MOMENT_RATE_HZ`] a second, moment-major) over `bins` log-mel bins, with no
    /// bass view.
    pub(super) fn made_up(changes: Vec<ChangeSpan>, band_z: Vec<f64>, bins: usize) -> Self {
        let layout = Bands::of(bins);
        Self { changes, band_z, bands: layout.bands, layout, bass_bands_of_bin: vec![Vec::new(); bins], moment_rate: MOMENT_RATE_HZ }
    }
}

/// The moments where one band's mean level over the next [`STEP_WINDOW_S`] differs from that
/// over the last by [`STEP_DB`] or more, the largest within [`STEP_SEPARATION_S`]: instants
/// (start equal to end), strength the jump over [`FULL_STEP_DB`].
pub fn level_steps(frames: &[f32], bins: usize, frame_rate: f64) -> Vec<ChangeSpan> {
    let jumps = LevelJumps::of(frames, bins, frame_rate);
    jumps.steps().into_iter().map(|s| jumps.span(&s)).collect()
}

/// Each band's signed level jump at each moment: its mean level (dB) over the next
/// [`STEP_WINDOW_S`] less that over the last, 0 where either window would leave the input.
struct LevelJumps {
    /// Moment-major, `bands` per moment.
    signed: Vec<f64>,
    /// Each band's mean level (dB) at each moment, moment-major.
    levels: Vec<f32>,
    bands: usize,
    moment_rate: f64,
}

/// A level step: the moment, and the band whose level jumped most there.
#[derive(Debug, Clone, Copy)]
struct Step {
    moment: usize,
    band: usize,
}

impl LevelJumps {
    fn of(frames: &[f32], bins: usize, frame_rate: f64) -> Self {
        let pool = ((frame_rate / MOMENT_RATE_HZ).round() as usize).max(1);
        let moment_rate = frame_rate / pool as f64;
        let moments = pooled(frames, bins, pool, &vec![f32::NEG_INFINITY; bins]);
        let levels = band_means(&moments, bins);
        let bands = Bands::of(bins).bands;
        let n = levels.len() / bands;
        let w = (STEP_WINDOW_S * moment_rate).round().max(1.0) as usize;
        let mut signed = vec![0.0_f64; n * bands];
        if n > 2 * w {
            // prefix[t * bands + k]: band k's summed level over moments before t.
            let mut prefix = vec![0.0_f64; (n + 1) * bands];
            for t in 0..n {
                for k in 0..bands {
                    prefix[(t + 1) * bands + k] = prefix[t * bands + k] + f64::from(levels[t * bands + k]);
                }
            }
            let mean = |from: usize, to: usize, k: usize| (prefix[to * bands + k] - prefix[from * bands + k]) / (to - from) as f64;
            for t in w..=n - w {
                for k in 0..bands {
                    signed[t * bands + k] = mean(t, t + w, k) - mean(t - w, t, k);
                }
            }
        }
        LevelJumps { signed, levels, bands, moment_rate }
    }

    fn moments(&self) -> usize {
        self.signed.len() / self.bands
    }

    /// The moments whose largest jump is at least [`STEP_DB`] and the largest within
    /// [`STEP_SEPARATION_S`] (the first of equal maxima, so a plateau gives one step).
    fn steps(&self) -> Vec<Step> {
        let n = self.moments();
        let largest: Vec<(usize, f64)> = self
            .signed
            .chunks_exact(self.bands)
            .map(|row| row.iter().map(|j| j.abs()).enumerate().fold((0, 0.0), |best, (k, j)| if j > best.1 { (k, j) } else { best }))
            .collect();
        let separation = (STEP_SEPARATION_S * self.moment_rate).round() as usize;
        (0..n)
            .filter(|&t| {
                let (lo, hi) = (t.saturating_sub(separation), (t + separation + 1).min(n));
                let j = largest[t].1;
                j >= STEP_DB && largest[lo..hi].iter().enumerate().all(|(i, &(_, o))| o < j || (o == j && lo + i >= t))
            })
            .map(|t| Step { moment: t, band: largest[t].0 })
            .collect()
    }

    fn jump(&self, step: &Step) -> f64 {
        self.signed[step.moment * self.bands + step.band]
    }

    fn span(&self, step: &Step) -> ChangeSpan {
        let at = step.moment as f64 / self.moment_rate;
        ChangeSpan { start_s: at, end_s: at, strength: (self.jump(step).abs() / FULL_STEP_DB).clamp(0.0, 1.0) }
    }

    /// Whether the band of `step` did the same one or two of a layer's periods (`periods_s`)
    /// before or after it: its level over [`STEP_WINDOW_S`] either side of the step is within
    /// [`ECHO_SHARE`] of the jump (RMS, dB) of its level around that moment. The layer then swells
    /// or comes in once a period, which is what it repeats, not a change. Offsets shorter than
    /// the two windows (they would hold the step itself) or longer than [`RECURRING_MAX_S`] are
    /// not looked at; each is looked for within the tolerance a period is judged by.
    fn echoed(&self, step: &Step, periods_s: &[f64]) -> bool {
        let n = self.moments() as i64;
        let w = (STEP_WINDOW_S * self.moment_rate).round() as i64;
        let at = step.moment as i64;
        let whole = |t: i64| t >= w && t + w <= n;
        if !whole(at) {
            return false;
        }
        let level = |t: i64| f64::from(self.levels[t as usize * self.bands + step.band]);
        let bar = ECHO_SHARE * self.jump(step).abs();
        let alike = |t: i64| {
            let squared: f64 = (-w..w).map(|u| (level(at + u) - level(t + u)).powi(2)).sum();
            (squared / (2 * w) as f64).sqrt() <= bar
        };
        periods_s
            .iter()
            .flat_map(|&p| [-2.0 * p, -p, p, 2.0 * p])
            .filter(|d| (2.0 * STEP_WINDOW_S..=RECURRING_MAX_S).contains(&d.abs()))
            .any(|d| {
                let tolerance = (RECURRING_TOLERANCE_S.max(RECURRING_TOLERANCE_SHARE * d.abs()) * self.moment_rate).round() as i64;
                let there = at + (d * self.moment_rate).round() as i64;
                (there - tolerance..=there + tolerance).filter(|&t| whole(t)).any(alike)
            })
    }
}

/// Which of the steps at times `at` (in order) recur: steps at `t`, `t + d` and about `t + 2d`
/// (`d` from [`RECURRING_MIN_S`] to [`RECURRING_MAX_S`], the third within
/// [`RECURRING_TOLERANCE_S`] or [`RECURRING_TOLERANCE_SHARE`] of `d`) are a layer that swells or
/// comes in once a period, which is what it repeats, not a change.
fn recurring(at: &[f64]) -> Vec<bool> {
    let mut recurring = vec![false; at.len()];
    for i in 0..at.len() {
        for j in i + 1..at.len() {
            let spacing = at[j] - at[i];
            if !(RECURRING_MIN_S..=RECURRING_MAX_S).contains(&spacing) {
                continue;
            }
            let tolerance = RECURRING_TOLERANCE_S.max(RECURRING_TOLERANCE_SHARE * spacing);
            if let Some(k) = at.iter().position(|&x| (x - at[j] - spacing).abs() <= tolerance) {
                for m in [i, j, k] {
                    recurring[m] = true;
                }
            }
        }
    }
    recurring
}

/// Each moment's mean level per band (moment-major, `BANDS` per moment).
fn band_means(moments: &[f32], bins: usize) -> Vec<f32> {
    let layout = Bands::of(bins);
    moments
        .chunks_exact(bins.max(1))
        .flat_map(|m| {
            let layout = &layout;
            (0..layout.bands).map(move |k| {
                let band = &m[layout.range(k)];
                band.iter().sum::<f32>() / band.len().max(1) as f32
            })
        })
        .collect()
}

/// The stretches of `frames` (`bins` dB values per frame at `frame_rate`, oldest first) heard
/// nowhere else in reach, with times in seconds from the first frame.
pub fn novel_stretches(frames: &[f32], bins: usize, frame_rate: f64) -> Vec<ChangeSpan> {
    novel_stretches_scored(frames, bins, None, frame_rate).stretches
}

/// What the novelty heard: the stretches, the short bursts away from them, and how novel each
/// band was at each moment.
struct Heard {
    /// [`novel_stretches`].
    stretches: Vec<ChangeSpan>,
    /// [`short_bursts`] of the same score, as instants.
    bursts: Vec<ChangeSpan>,
    /// Per moment, each band's robust z (moment-major, the log-mel bands then the bass view's).
    band_z: Vec<f64>,
    /// The same at the first look (equal to `band_z` where the first look found no stretch).
    first_band_z: Vec<f64>,
    /// The moments' levels (dB, each bin's quiet raised to its floor), moment-major.
    moments: Vec<f32>,
    moment_rate: f64,
}

/// [`novel_stretches`] (heard in the bass view's bands too, with `bass`) and the rest of what
/// was [`Heard`].
fn novel_stretches_scored(frames: &[f32], bins: usize, bass: Option<BassFrames>, frame_rate: f64) -> Heard {
    let pool = ((frame_rate / MOMENT_RATE_HZ).round() as usize).max(1);
    let moment_rate = frame_rate / pool as f64;
    let floors = bin_floors(frames, bins);
    let moments = pooled(frames, bins, pool, &floors);
    let n = moments.len() / bins.max(1);
    // The bass view's moments, each pooled from the frames heard around the log-mel moment's.
    let bass_moments = bass.map(|b| {
        let aligned = &b.frames[(b.lag_frames * b.bins).min(b.frames.len())..];
        (pooled(aligned, b.bins, pool, &bin_floors(aligned, b.bins)), b)
    });
    let layout = Bands::of(bins);
    // The log-mel's distances, and the bass view's if there is one: the first look's (no
    // regions), or the second's (given the first's).
    let distances = |regions: &[u32], first: Option<&(Vec<f64>, Option<Vec<f64>>)>| {
        let measured = |moments: &[f32], layout: &Bands, earlier: Option<&Vec<f64>>| match earlier {
            Some(earlier) => nearest_far_distance_again(moments, layout, moment_rate, regions, earlier),
            None => nearest_far_distance(moments, layout, moment_rate, regions),
        };
        let mel = measured(&moments, &layout, first.map(|f| &f.0));
        let bass = bass_moments.as_ref().map(|(m, b)| measured(m, &b.layout(), first.and_then(|f| f.1.as_ref())));
        (mel, bass)
    };
    let look = |(mel, bass): &(Vec<f64>, Option<Vec<f64>>)| {
        let joined;
        let distance = match (bass, &bass_moments) {
            (Some(below), Some((_, b))) => {
                joined = side_by_side(mel, layout.bands, below, b.layout().bands);
                &joined
            }
            _ => mel,
        };
        let band_z = band_scores(distance, n);
        let score = top_band_score(&band_z, n);
        let found = stretches(&score, moment_rate);
        (found, band_z, score)
    };
    let measured = distances(&vec![0; n], None);
    let (first, first_band_z, score) = look(&measured);
    let (stretches, band_z, score) = if first.is_empty() {
        (first, first_band_z.clone(), score)
    } else {
        look(&distances(&stretch_regions(&first, n, moment_rate), Some(&measured)))
    };
    let stretches = split_where_bands_shift(stretches, &band_z, &score, moment_rate);
    let bursts = short_bursts(&score, &stretches, moment_rate);
    Heard { stretches, bursts, band_z, first_band_z, moments, moment_rate }
}

/// Per moment, which of `found` (widened by [`SECOND_LOOK_MARGIN_S`] either side) it lies in:
/// 0 for none, k + 1 for the k-th (a later stretch's region wins where two overlap).
fn stretch_regions(found: &[ChangeSpan], n: usize, moment_rate: f64) -> Vec<u32> {
    let mut region = vec![0_u32; n];
    for (k, c) in found.iter().enumerate() {
        let from = ((c.start_s - SECOND_LOOK_MARGIN_S) * moment_rate).floor().max(0.0) as usize;
        let to = (((c.end_s + SECOND_LOOK_MARGIN_S) * moment_rate).ceil().max(0.0) as usize).min(n);
        for r in region.iter_mut().take(to).skip(from) {
            *r = k as u32 + 1;
        }
    }
    region
}

/// Per bin, the level (dB) under which it counts as silent: [`FLOOR_BELOW_DB`] below its
/// [`LOUD_QUANTILE`] over `frames`.
fn bin_floors(frames: &[f32], bins: usize) -> Vec<f32> {
    let n = frames.len() / bins.max(1);
    if n == 0 {
        return vec![f32::NEG_INFINITY; bins];
    }
    let rank = ((LOUD_QUANTILE * (n - 1) as f64).round() as usize).min(n - 1);
    let mut values = Vec::with_capacity(n);
    (0..bins)
        .map(|b| {
            values.clear();
            values.extend(frames.chunks_exact(bins).map(|f| f[b]));
            let (_, loud, _) = values.select_nth_unstable_by(rank, f32::total_cmp);
            *loud - FLOOR_BELOW_DB
        })
        .collect()
}

/// The mean of every `pool` frames, per bin, each value raised to its bin's floor first:
/// `frames.len() / bins / pool` moments.
fn pooled(frames: &[f32], bins: usize, pool: usize, floors: &[f32]) -> Vec<f32> {
    if bins == 0 {
        return Vec::new();
    }
    frames
        .chunks_exact(bins * pool)
        .flat_map(|chunk| {
            (0..bins).map(move |b| (0..pool).map(|k| chunk[k * bins + b].max(floors[b])).sum::<f32>() / pool as f32)
        })
        .collect()
}

/// Moments of pairs scored together per band, lag after lag: a band's bins over a block and
/// its partners a whole reach on (4 bins × (1024 + 900) moments, 31 KB) stay in the core's cache.
const BLOCK_MOMENTS: usize = 1024;

/// Per moment and band (moment-major, `n × BANDS`), the RMS distance of the moment's window to
/// the closest window in reach, `NaN` where there is none. Two moments in the same nonzero
/// `region` (one per moment, see [`stretch_regions`]) are not compared.
fn nearest_far_distance(moments: &[f32], layout: &Bands, moment_rate: f64, region: &[u32]) -> Vec<f64> {
    nearest_far_distance_of(moments, layout, moment_rate, region, Wanted::Every)
}

/// [`nearest_far_distance`] with `region`, given `first`, the distances without regions. A
/// pair is left out only when both its moments lie in one region, so a moment outside every
/// region keeps `first`'s distance: only the moments inside one are measured again (the second
/// look cost as much as the first when every moment was), to the same bits.
fn nearest_far_distance_again(moments: &[f32], layout: &Bands, moment_rate: f64, region: &[u32], first: &[f64]) -> Vec<f64> {
    let mut again = nearest_far_distance_of(moments, layout, moment_rate, region, Wanted::InRegions);
    for ((distances, earlier), &r) in again.chunks_exact_mut(layout.bands).zip(first.chunks_exact(layout.bands)).zip(region) {
        if r == 0 {
            distances.copy_from_slice(earlier);
        }
    }
    again
}

/// Which moments' distances [`nearest_far_distance_of`] measures.
#[derive(Clone, Copy, PartialEq)]
enum Wanted {
    Every,
    /// Only the moments in a nonzero region; the others' are left without a match (`NaN`).
    InRegions,
}

fn nearest_far_distance_of(moments: &[f32], layout: &Bands, moment_rate: f64, region: &[u32], wanted: Wanted) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: this CPU has AVX2, just checked. The same IEEE operations in the same order
        // as the portable build (Rust never fuses a multiply and an add by itself), so the same
        // distances to the bit, only twice the lanes.
        return unsafe { nearest_far_distance_avx2(moments, layout, moment_rate, region, wanted) };
    }
    nearest_far_distance_on_any_cpu(moments, layout, moment_rate, region, wanted)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn nearest_far_distance_avx2(moments: &[f32], layout: &Bands, moment_rate: f64, region: &[u32], wanted: Wanted) -> Vec<f64> {
    nearest_far_distance_on_any_cpu(moments, layout, moment_rate, region, wanted)
}

/// [`nearest_far_distance`]: band by band, block by block of moments, lag by lag, every loop
/// runs along time over one bin's moments (element-wise, so it vectorises), and what one band
/// reads stays in cache while the lags go by. A window's sum depends only on the pairs around
/// it, not on the block it was summed in, so the blocks may be any runs of moments.
#[inline(always)]
fn nearest_far_distance_on_any_cpu(moments: &[f32], layout: &Bands, moment_rate: f64, region: &[u32], wanted: Wanted) -> Vec<f64> {
    let bins = layout.bins;
    let n = moments.len() / bins.max(1);
    let bands = layout.bands;
    let exclusion = (EXCLUSION_S * moment_rate).round() as usize;
    let reach = ((REACH_S * moment_rate).round() as usize).min(n.saturating_sub(1));
    let context = (CONTEXT_S * moment_rate).round() as usize;
    // Bin-major: `series[b * n + t]` is bin b at moment t.
    let mut series = vec![0.0_f32; bins * n];
    for (t, moment) in moments.chunks_exact(bins.max(1)).enumerate() {
        for (b, &v) in moment.iter().enumerate() {
            series[b * n + t] = v;
        }
    }
    let regions = region.iter().any(|&r| r != 0);
    // The smallest window sum (of squared differences over the band's bins and the window's
    // pairs) per band and moment; a window an end cuts short counts as if it had them all.
    let mut nearest = vec![f32::INFINITY; n * bands];
    let mut windows = BandWindows::new(context);
    let lags = exclusion + 1..=reach;
    let region = &region[..n.min(region.len())];
    let runs = match wanted {
        Wanted::Every => Vec::new(),
        Wanted::InRegions => region_runs(region),
    };
    let excluding = regions.then_some(region);
    for k in 0..bands {
        let band: Vec<&[f32]> = layout.range(k).map(|b| &series[b * n..(b + 1) * n]).collect();
        let near = &mut nearest[k * n..(k + 1) * n];
        match wanted {
            Wanted::Every => {
                for from in (0..n).step_by(BLOCK_MOMENTS) {
                    for lag in lags.clone().take_while(|lag| from + lag < n) {
                        let to = (from + BLOCK_MOMENTS).min(n - lag);
                        pairs_into(&mut windows, near, &band, lag, (from, to), (true, true), excluding);
                    }
                }
            }
            Wanted::InRegions => {
                for &(a, b) in &runs {
                    for lag in lags.clone() {
                        // The run's moments as the earlier of a pair, then as the later.
                        let to = b.min(n.saturating_sub(lag));
                        if a < to {
                            pairs_into(&mut windows, near, &band, lag, (a, to), (true, false), excluding);
                        }
                        let from = a.max(lag) - lag;
                        if from + lag < b {
                            pairs_into(&mut windows, near, &band, lag, (from, b - lag), (false, true), excluding);
                        }
                    }
                }
            }
        }
    }
    // Moment-major, as the scores read them: the RMS over the band's bins and the window.
    let mut out = vec![f64::NAN; n * bands];
    for (k, near) in nearest.chunks_exact(n.max(1)).enumerate() {
        let per_value = 1.0 / (layout.range(k).len() * (2 * context + 1)) as f64;
        for (t, &d) in near.iter().enumerate() {
            if d.is_finite() {
                out[t * bands + k] = (f64::from(d) * per_value).sqrt();
            }
        }
    }
    out
}

/// The pairs (t, t + `lag`) for t in `from..to`, given to the nearest of the earlier moment,
/// the later one or both; a pair inside one of `excluding`'s nonzero regions counts as no match.
/// (A function, not a closure, so that the AVX2 build's `target_feature` reaches it.)
#[inline(always)]
fn pairs_into(
    windows: &mut BandWindows,
    near: &mut [f32],
    band: &[&[f32]],
    lag: usize,
    (from, to): (usize, usize),
    (earlier, later): (bool, bool),
    excluding: Option<&[u32]>,
) {
    let w = windows.of(band, lag, from..to);
    if let Some(region) = excluding {
        let (here, there) = (&region[from..to], &region[from + lag..to + lag]);
        for ((w, &a), &b) in w.iter_mut().zip(here).zip(there) {
            if a != 0 && a == b {
                *w = f32::INFINITY;
            }
        }
    }
    if earlier {
        for (here, &w) in near[from..to].iter_mut().zip(w.iter()) {
            *here = here.min(w);
        }
    }
    if later {
        for (there, &w) in near[from + lag..to + lag].iter_mut().zip(w.iter()) {
            *there = there.min(w);
        }
    }
}

/// The runs of moments in a nonzero region, `(start, end)`, none longer than [`BLOCK_MOMENTS`].
fn region_runs(region: &[u32]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut t = 0;
    while t < region.len() {
        if region[t] == 0 {
            t += 1;
            continue;
        }
        let start = t;
        while t < region.len() && region[t] != 0 && t - start < BLOCK_MOMENTS {
            t += 1;
        }
        runs.push((start, t));
    }
    runs
}

/// One band's window sums for a block of pairs at one lag, with its scratch allocated once.
struct BandWindows {
    context: usize,
    /// The block's squared differences with `context` pairs either side, zero beyond the pairs
    /// (so a window an end cuts short sums what it has).
    squared: Vec<f32>,
    /// The sums of 2, 4 and 8 neighbours the windows are added up from.
    sums: [Vec<f32>; 3],
    window: Vec<f32>,
}

impl BandWindows {
    fn new(context: usize) -> Self {
        let len = BLOCK_MOMENTS + 2 * context;
        Self { context, squared: vec![0.0; len], sums: std::array::from_fn(|_| vec![0.0; len]), window: vec![0.0; BLOCK_MOMENTS] }
    }

    /// For each pair (t, t + `lag`) with t in `block` (at most [`BLOCK_MOMENTS`] of them), the
    /// sum over `band`'s bins (each one bin's moments) and the window of `2 · context + 1`
    /// pairs around it of the squared differences; a window an end cuts short is scaled up to
    /// the full count.
    #[inline(always)]
    fn of(&mut self, band: &[&[f32]], lag: usize, block: std::ops::Range<usize>) -> &mut [f32] {
        let context = self.context;
        let span = 2 * context + 1;
        let (from, to) = (block.start, block.end);
        let pairs = band.first().map_or(0, |s| s.len()).saturating_sub(lag);
        let len = to - from;
        // `squared[i]` is pair `from - context + i`.
        let (lo, hi) = (from.saturating_sub(context), (to + context).min(pairs));
        let (offset, end) = (lo + context - from, hi + context - from);
        self.squared[..offset].fill(0.0);
        self.squared[end..len + 2 * context].fill(0.0);
        let squared = &mut self.squared[offset..end];
        for (i, s) in band.iter().enumerate() {
            let pairs = s[lo..hi].iter().zip(&s[lo + lag..hi + lag]);
            if i == 0 {
                for (d, (x, y)) in squared.iter_mut().zip(pairs) {
                    *d = (x - y) * (x - y);
                }
            } else {
                for (d, (x, y)) in squared.iter_mut().zip(pairs) {
                    *d += (x - y) * (x - y);
                }
            }
        }
        let w = &mut self.window[..len];
        window_sums(&self.squared[..len + 2 * context], span, &mut self.sums, w);
        // Windows an end cuts short (within `context` of the first pair or the last): their
        // mean, in `span` pairs' worth. Only those are visited, not the whole block at each lag.
        let (head_end, tail_start) = (to.min(context), pairs.saturating_sub(context));
        for t in (from..head_end).chain(from.max(head_end).max(tail_start)..to) {
            let count = (t + context + 1).min(pairs) - t.saturating_sub(context);
            w[t - from] *= span as f32 / count as f32;
        }
        w
    }
}

/// `window[i]`, the sum of `values[i..i + span]`, for every `i` below `window.len()`, added up
/// from the sums of 2, 4 and 8 neighbours (`scratch`, each as long as `values`): a window of 11
/// (8 + 2 + 1) is five element-wise passes, not ten.
#[inline(always)]
fn window_sums(values: &[f32], span: usize, scratch: &mut [Vec<f32>; 3], window: &mut [f32]) {
    let [two, four, eight] = scratch;
    neighbour_sums(values, 1, two);
    neighbour_sums(two, 2, four);
    neighbour_sums(four, 4, eight);
    let runs: [(usize, &[f32]); 4] = [(8, eight), (4, four), (2, two), (1, values)];
    let len = window.len();
    window.fill(0.0);
    let mut covered = 0;
    for (size, run) in runs {
        while span - covered >= size {
            for (w, s) in window.iter_mut().zip(&run[covered..covered + len]) {
                *w += s;
            }
            covered += size;
        }
    }
}

/// `out[i] = values[i] + values[i + apart]` wherever both exist.
#[inline(always)]
fn neighbour_sums(values: &[f32], apart: usize, out: &mut [f32]) {
    for (o, (a, b)) in out.iter_mut().zip(values.iter().zip(&values[apart.min(values.len())..])) {
        *o = a + b;
    }
}

/// Per moment, the `left_bands` bands of `left` then the `right_bands` of `right`, moment-major,
/// as many moments as `left` has; the moments `right` lacks (it may end sooner) are `NaN`: no
/// distance there.
fn side_by_side(left: &[f64], left_bands: usize, right: &[f64], right_bands: usize) -> Vec<f64> {
    let n = left.len() / left_bands.max(1);
    let mut rows = right.chunks_exact(right_bands.max(1));
    let missing = vec![f64::NAN; right_bands];
    let mut out = Vec::with_capacity(n * (left_bands + right_bands));
    for row in left.chunks_exact(left_bands.max(1)) {
        out.extend_from_slice(row);
        out.extend_from_slice(rows.next().unwrap_or(&missing));
    }
    out
}

/// How a moment's bins make up the bands, for the distances, the levels and where a change was
/// heard alike: band k holds bins `edges[k]..edges[k + 1]` (adjacent, as equal in count as they
/// divide).
#[derive(Debug, Clone)]
struct Bands {
    bins: usize,
    bands: usize,
    edges: Vec<usize>,
}

impl Bands {
    /// The layout of `bins` log-mel bins in [`BANDS`] bands (fewer where there are fewer bins),
    /// the one every band-wise step of the novelty uses.
    fn of(bins: usize) -> Self {
        Self::new(bins, BANDS.min(bins).max(1))
    }

    fn new(bins: usize, bands: usize) -> Self {
        let edges: Vec<usize> = (0..=bands).map(|k| k * bins / bands.max(1)).collect();
        Self { bins, bands, edges }
    }

    /// The bins of band k.
    fn range(&self, k: usize) -> std::ops::Range<usize> {
        self.edges[k]..self.edges[k + 1]
    }

    /// The band that bin `bin` belongs to.
    fn band_of(&self, bin: usize) -> usize {
        (0..self.bands).rev().find(|&k| self.edges[k] <= bin).unwrap_or(0)
    }
}

/// Each band's distances scored against the band's own typical distance (a robust z, 0 where a
/// band has no distance): moment-major like `distance`, `n` moments.
fn band_scores(distance: &[f64], n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let bands = distance.len() / n;
    let mut z = vec![0.0_f64; n * bands];
    for k in 0..bands {
        let known: Vec<usize> = (0..n).filter(|&t| distance[t * bands + k].is_finite()).collect();
        if known.len() < 2 {
            continue;
        }
        let values: Vec<f64> = known.iter().map(|&t| distance[t * bands + k]).collect();
        for (&t, v) in known.iter().zip(robust_z_with_floor(&values, MIN_SPREAD_DB)) {
            z[t * bands + k] = v;
        }
    }
    z
}

/// Each moment's score: the mean of its [`TOP_BANDS`] most novel bands' scores (`band_z`,
/// moment-major, `n` moments).
fn top_band_score(band_z: &[f64], n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let bands = (band_z.len() / n).max(1);
    let top = TOP_BANDS.clamp(1, bands);
    let mut row = vec![0.0; bands];
    band_z
        .chunks_exact(bands)
        .map(|z| {
            row.copy_from_slice(z);
            row.sort_unstable_by(|a, b| b.total_cmp(a));
            row[..top].iter().sum::<f64>() / top as f64
        })
        .collect()
}

/// Stretches of `score` that pass [`Z_ENTER`], extended while above [`Z_STAY`], at least
/// [`MIN_STRETCH_S`] long, edges pulled in by [`START_PULL_S`] and [`END_PULL_S`], and joined
/// where less than [`JOIN_GAP_S`] lies between them.
fn stretches(score: &[f64], moment_rate: f64) -> Vec<ChangeSpan> {
    let (start_pull, end_pull) = (START_PULL_S * moment_rate, END_PULL_S * moment_rate);
    let mut out: Vec<ChangeSpan> = Vec::new();
    // A run above Z_STAY is a stretch once any of it passes Z_ENTER (which lies above Z_STAY).
    let entered = runs_above(score, Z_STAY).filter(|&(a, b)| score[a..=b].iter().any(|&z| z > Z_ENTER));
    for (a, b) in entered {
        let len = b - a + 1;
        if (len as f64) < MIN_STRETCH_S * moment_rate {
            continue;
        }
        let next = ChangeSpan {
            start_s: (a as f64 + start_pull) / moment_rate,
            end_s: ((b + 1) as f64 - end_pull) / moment_rate,
            strength: mean_strength(&score[a..=b]),
        };
        match out.last_mut() {
            Some(last) if next.start_s - last.end_s < JOIN_GAP_S => *last = joined(last, &next),
            _ => out.push(next),
        }
    }
    out
}

/// `found` with each stretch split where the bands it is novel in shift. Two changes of layers
/// in different bands that overlap or follow each other make one run of the score, and the end
/// of the first or the start of the second lies inside it. At each moment inside a stretch,
/// each band's mean novelty (`band_z`, moment-major, what is no more alike than usual counted as
/// 0) over [`SHIFT_WINDOW_S`] before it is compared with that after it, [`SHIFT_GAP_S`] away
/// either side; where the cosine falls below [`SHIFT_BELOW_COSINE`] the stretch is split, the
/// lowest first, parts at least [`SHIFT_SEPARATION_S`] long. Each part's strength is its mean
/// `score` over [`FULL_Z`].
fn split_where_bands_shift(found: Vec<ChangeSpan>, band_z: &[f64], score: &[f64], moment_rate: f64) -> Vec<ChangeSpan> {
    let n = score.len();
    if n == 0 || found.is_empty() {
        return found;
    }
    let bands = band_z.len() / n;
    // Running sums of each band's novelty, so a window's profile is one subtraction.
    let sums = running_sums(band_z.iter().map(|z| z.max(0.0)), bands);
    let profile = |from: usize, to: usize| -> Vec<f64> { (0..bands).map(|k| sums[to * bands + k] - sums[from * bands + k]).collect() };
    let window = (SHIFT_WINDOW_S * moment_rate).round() as usize;
    let gap = (SHIFT_GAP_S * moment_rate).round() as usize;
    let moment = |s: f64| ((s * moment_rate).round().max(0.0) as usize).min(n);
    let mut out = Vec::with_capacity(found.len());
    for stretch in found {
        let (a, b) = (moment(stretch.start_s), moment(stretch.end_s));
        let mut shifts: Vec<(f64, usize)> = (a + gap + window..b.saturating_sub(gap + window))
            .map(|m| (cosine(&profile(m - gap - window, m - gap), &profile(m + gap, m + gap + window)), m))
            .filter(|&(c, _)| c < SHIFT_BELOW_COSINE)
            .collect();
        shifts.sort_by(|x, y| x.0.total_cmp(&y.0));
        let mut cuts: Vec<f64> = Vec::new();
        for (_, m) in shifts {
            let at_s = m as f64 / moment_rate;
            let inside = at_s - stretch.start_s >= SHIFT_SEPARATION_S && stretch.end_s - at_s >= SHIFT_SEPARATION_S;
            if inside && cuts.iter().all(|c| (c - at_s).abs() >= SHIFT_SEPARATION_S) {
                cuts.push(at_s);
            }
        }
        if cuts.is_empty() {
            out.push(stretch);
            continue;
        }
        cuts.sort_by(f64::total_cmp);
        let mut start_s = stretch.start_s;
        for end_s in cuts.into_iter().chain(std::iter::once(stretch.end_s)) {
            let part = &score[moment(start_s)..moment(end_s).max(moment(start_s) + 1).min(n)];
            out.push(ChangeSpan { start_s, end_s, strength: mean_strength(part) });
            start_s = end_s;
        }
    }
    out
}

/// Running sums of `values` (`width` per moment, moment-major), one row of zeros first: the sum
/// of series `c` over moments `a..b` is `sums[b * width + c] - sums[a * width + c]`.
pub(super) fn running_sums(values: impl IntoIterator<Item = f64>, width: usize) -> Vec<f64> {
    let mut sums = vec![0.0; width];
    for (j, v) in values.into_iter().enumerate() {
        let previous = sums[j];
        sums.push(previous + v);
    }
    sums
}

/// The cosine of two profiles; 1 (nothing to tell apart) where either is all zero.
pub(super) fn cosine(x: &[f64], y: &[f64]) -> f64 {
    let dot: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
    let norms = x.iter().map(|a| a * a).sum::<f64>().sqrt() * y.iter().map(|b| b * b).sum::<f64>().sqrt();
    if norms > 0.0 {
        dot / norms
    } else {
        1.0
    }
}

/// The moments where `score` passes [`Z_BURST`] for at least [`BURST_MIN_MOMENTS`] in a row
/// (each run's peak), as instants, at least [`BURST_SEPARATION_S`] from every stretch in `found`
/// and from the burst before, strength the peak over [`FULL_Z`].
fn short_bursts(score: &[f64], found: &[ChangeSpan], moment_rate: f64) -> Vec<ChangeSpan> {
    let mut out: Vec<ChangeSpan> = Vec::new();
    for (a, b) in runs_above(score, Z_BURST) {
        let peak = (a..=b).fold(a, |best, m| if score[m] > score[best] { m } else { best });
        let at_s = (peak as f64 + 0.5) / moment_rate;
        let apart = found.iter().all(|c| at_s <= c.start_s - BURST_SEPARATION_S || at_s >= c.end_s + BURST_SEPARATION_S)
            && out.last().is_none_or(|last| at_s - last.start_s > BURST_SEPARATION_S);
        if b + 1 - a >= BURST_MIN_MOMENTS && apart {
            out.push(ChangeSpan { start_s: at_s, end_s: at_s, strength: strength(score[peak]) });
        }
    }
    out
}

/// Each longest run of `score` above `bar`, as its first and last index, in order.
fn runs_above(score: &[f64], bar: f64) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < score.len() && score[i] <= bar {
            i += 1;
        }
        if i == score.len() {
            return None;
        }
        let first = i;
        while i + 1 < score.len() && score[i + 1] > bar {
            i += 1;
        }
        i += 1;
        Some((first, i - 1))
    })
}

/// A change's strength from its score (robust z): reaching 1 at [`FULL_Z`].
fn strength(z: f64) -> f64 {
    (z / FULL_Z).clamp(0.0, 1.0)
}

/// A stretch's strength: its scores' mean (0 for none), as [`strength`].
fn mean_strength(scores: &[f64]) -> f64 {
    strength(scores.iter().sum::<f64>() / scores.len().max(1) as f64)
}

/// One stretch from `first` to `second`, its strength their mean weighted by length.
fn joined(first: &ChangeSpan, second: &ChangeSpan) -> ChangeSpan {
    let (a, b) = (first.end_s - first.start_s, second.end_s - second.start_s);
    ChangeSpan {
        start_s: first.start_s,
        end_s: second.end_s,
        strength: (first.strength * a + second.strength * b) / (a + b).max(1e-9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FR: f64 = 50.0;
    const BINS: usize = 32;

    /// A pseudo-random value in -0.5..0.5 from a seed (SplitMix64's finaliser: neighbouring
    /// seeds give unrelated values).
    fn noise(seed: u64) -> f32 {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    /// `seconds` of frames: the low bins repeat a random pattern every 1.9 s, the high bins one
    /// every 7.3 s (periods that share no multiple in the piece), with a little noise; within
    /// `changed` (seconds) the high bins play their pattern 9 dB louder.
    fn piece(seconds: f64, changed: Option<(f64, f64)>) -> Vec<f32> {
        piece_with_high_period(seconds, 365, changed)
    }

    /// [`piece`] with the high bins' period `high_period` frames.
    fn piece_with_high_period(seconds: f64, high_period: usize, changed: Option<(f64, f64)>) -> Vec<f32> {
        let frames = (seconds * FR) as usize;
        let mut out = Vec::with_capacity(frames * BINS);
        for t in 0..frames {
            let now = t as f64 / FR;
            for b in 0..BINS {
                let period = if b < BINS / 2 { 95 } else { high_period };
                let boost = changed.is_some_and(|(a, z)| b >= BINS / 2 && now >= a && now < z);
                let v = -40.0 + 30.0 * noise((t % period) as u64 * 97 + b as u64 * 7) + if boost { 9.0 } else { 0.0 };
                out.push(v + noise(t as u64 * 131 + b as u64));
            }
        }
        out
    }

    #[test]
    fn music_that_only_repeats_has_no_changes() {
        assert_eq!(novel_stretches(&piece(90.0, None), BINS, FR), vec![]);
    }

    #[test]
    fn a_changed_stretch_is_found_with_both_edges() {
        let found = novel_stretches(&piece(90.0, Some((41.3, 52.1))), BINS, FR);
        assert_eq!(found.len(), 1, "{found:?}");
        let c = found[0];
        assert!((c.start_s - 41.3).abs() <= 0.5 && (c.end_s - 52.1).abs() <= 0.5, "{c:?}");
        assert!(c.strength > 0.0 && c.strength <= 1.0, "{c:?}");
    }

    #[test]
    fn a_long_layers_change_that_repeats_itself_is_found_whole() {
        // The high bins repeat every 12 s, past the exclusion, and change for 14.4 s: the
        // change's first and last 2.4 s match each other, 12 s apart, so the first look hears
        // only 32.4-42 s as novel. The second look does not let them match.
        let found = novel_stretches(&piece_with_high_period(90.0, 600, Some((30.0, 44.4))), BINS, FR);
        assert_eq!(found.len(), 1, "{found:?}");
        let c = found[0];
        assert!((c.start_s - 30.0).abs() <= 0.5 && (c.end_s - 44.4).abs() <= 0.5, "{c:?}");
    }

    /// `seconds` of bass-view frames (`BASS_BINS` bins): a line of four notes, one bin each,
    /// repeating every 1.9 s, with a little noise; within `changed` (seconds, as heard `lag`
    /// frames later) every note sits ten bins (39 Hz at 16 kHz) higher, two bass bands up.
    fn bass_line(seconds: f64, lag: usize, changed: Option<(f64, f64)>) -> Vec<f32> {
        let frames = (seconds * FR) as usize;
        let mut out = Vec::with_capacity(frames * BASS_BINS);
        for t in 0..frames {
            let heard_s = t.saturating_sub(lag) as f64 / FR;
            let shift = if changed.is_some_and(|(a, z)| heard_s >= a && heard_s < z) { 10 } else { 0 };
            let note = [1, 3, 2, 4][(t % 95) * 4 / 95] + shift;
            out.extend((0..BASS_BINS).map(|b| if b == note { -20.0 } else { -50.0 } + noise(t as u64 * 977 + b as u64)));
        }
        out
    }

    const BASS_BINS: usize = 20;

    #[test]
    fn the_bass_view_hears_a_change_of_key_the_log_mel_cannot() {
        let (mel, lag) = (piece(90.0, None), 6);
        let line = bass_line(90.0, lag, Some((41.3, 52.1)));
        // The bass bins lie among the frequencies of log-mel bins 0 to 4.
        let mel_bin: Vec<usize> = (0..BASS_BINS).map(|b| b / 4).collect();
        let bass = BassFrames { frames: &line, bins: BASS_BINS, lag_frames: lag, mel_bin: &mel_bin };
        assert_eq!(novelty(&mel, BINS, None, FR, &[], None).changes, vec![]);
        let found = novelty(&mel, BINS, Some(bass), FR, &[], None);
        let [c] = found.changes[..] else { panic!("{:?}", found.changes) };
        assert!((c.start_s - 41.3).abs() <= 0.5 && (c.end_s - 52.1).abs() <= 0.5, "{c:?}");
        // Heard in the bass bands, which follow the log-mel ones and hear the lowest log-mel bins.
        let heard = found.where_heard(&c);
        let mel_bands = BANDS.min(BINS);
        assert_eq!(found.bands(), mel_bands + BASS_BANDS);
        let loudest = (0..heard.len()).max_by(|&a, &b| heard[a].total_cmp(&heard[b])).unwrap();
        assert!(loudest >= mel_bands, "{heard:?}");
        assert_eq!(found.bands_of(0).collect::<Vec<_>>(), [0, mel_bands]);
        assert_eq!(found.bands_of(BINS - 1).count(), 1);
        // Without a change, the same bass line adds none.
        let line = bass_line(90.0, lag, None);
        let bass = BassFrames { frames: &line, ..bass };
        assert_eq!(novelty(&mel, BINS, Some(bass), FR, &[], None).changes, vec![]);
    }

    #[test]
    fn the_committed_change_head_leaves_a_clear_change_where_it_is_and_adds_nothing() {
        let text = include_str!("../../../models/heads/change_head.json");
        let head = ChangeHead::from_json(text).expect("the committed change head");
        let frames = piece(90.0, Some((41.3, 52.1)));
        let without = novelty(&frames, BINS, None, FR, &[], None).changes;
        let with = novelty(&frames, BINS, None, FR, &[], Some(&head)).changes;
        let edges = |c: &[ChangeSpan]| c.iter().flat_map(|c| [c.start_s, c.end_s]).collect::<Vec<f64>>();
        assert_eq!(with.len(), without.len(), "{with:?} against {without:?}");
        for (a, b) in edges(&with).iter().zip(edges(&without)) {
            assert!((a - b).abs() <= 0.5, "{with:?} against {without:?}");
        }
        let [c] = with[..] else { panic!("{with:?}") };
        assert!((c.start_s - 41.3).abs() <= 0.5 && (c.end_s - 52.1).abs() <= 0.5, "{c:?}");
    }

    #[test]
    fn a_change_is_heard_in_the_bands_that_changed() {
        let novelty = novelty(&piece(90.0, Some((41.3, 52.1))), BINS, None, FR, &[], None);
        let [c] = novelty.changes[..] else { panic!("{:?}", novelty.changes) };
        let heard = novelty.where_heard(&c);
        let half = novelty.bands() / 2;
        assert_eq!(novelty.bands_of(BINS - 1).collect::<Vec<_>>(), [novelty.bands() - 1]);
        assert_eq!(novelty.bands_of(0).collect::<Vec<_>>(), [0]);
        // The boost is in the upper half of the bins: every upper band hears more than any lower.
        let low = heard[..half].iter().copied().fold(0.0, f64::max);
        let high = heard[half..].iter().copied().fold(f64::INFINITY, f64::min);
        assert!(high > low, "{heard:?}");
        assert!(heard.iter().all(|h| *h >= 0.0), "{heard:?}");
    }

    #[test]
    fn a_sample_exact_loop_that_wobbles_by_half_a_db_has_no_changes() {
        let mut frames: Vec<f32> = (0..90 * 50 * BINS).map(|i| -40.0 + 30.0 * noise(((i / BINS) % 95 * BINS + i % BINS) as u64)).collect();
        for v in &mut frames[40 * 50 * BINS..44 * 50 * BINS] {
            *v += 0.5;
        }
        assert_eq!(novel_stretches(&frames, BINS, FR), vec![]);
    }

    #[test]
    fn inputs_shorter_than_the_exclusion_have_no_changes() {
        assert_eq!(novel_stretches(&piece(EXCLUSION_S - 1.0, None), BINS, FR), vec![]);
        assert_eq!(novel_stretches(&[], BINS, FR), vec![]);
        assert_eq!(novel_stretches(&[0.0; 7], 0, FR), vec![]);
    }

    #[test]
    fn each_band_holds_its_own_adjacent_bins_however_the_bins_divide() {
        for (bins, bands) in [(64, 16), (16, 16), (10, 4), (7, 3), (28, 4)] {
            let of = Bands::new(bins, bands);
            assert_eq!((of.range(0).start, of.range(bands - 1).end), (0, bins));
            for k in 0..bands {
                let band = of.range(k);
                assert!(band.len() == bins / bands || band.len() == bins / bands + 1, "{bins} bins in {bands} bands, band {k}: {band:?}");
                for bin in band {
                    assert_eq!(of.band_of(bin), k, "{bins} bins in {bands} bands, bin {bin}");
                }
            }
        }
    }

    #[test]
    fn the_nearest_window_is_the_closest_match_in_reach_and_none_inside_a_region() {
        // One bin, one band, a moment a tenth of a second: a tone that alternates between 0 and
        // 10 dB every 30 s, with a 3 dB bump in moments 500..520 heard nowhere else.
        let n = 1500;
        let mut moments: Vec<f32> = (0..n).map(|t| if (t / 300) % 2 == 0 { 0.0 } else { 10.0 }).collect();
        for v in &mut moments[500..520] {
            *v += 3.0;
        }
        let layout = Bands::new(1, 1);
        let distance = nearest_far_distance(&moments, &layout, MOMENT_RATE_HZ, &vec![0; n]);
        // Far from the bump and the steps every moment has an exact match 60 s away.
        assert_eq!(distance[100], 0.0);
        assert_eq!(distance[1000], 0.0);
        // The bump's middle matches nothing better than the 10 dB level 3 dB away.
        assert!((distance[510] - 3.0).abs() < 1e-6, "{}", distance[510]);
        // Every moment in one region with all its matches: nothing left to compare it with.
        let alone = nearest_far_distance(&moments, &layout, MOMENT_RATE_HZ, &vec![1; n]);
        assert!(alone.iter().all(|d| d.is_nan()));
    }

    #[test]
    fn window_sums_add_up_every_span_they_are_asked_for() {
        let values: Vec<f32> = (0..40).map(|i| noise(i as u64 + 3).abs()).collect();
        let mut scratch = std::array::from_fn(|_| vec![0.0; values.len()]);
        for span in 1..=17 {
            let mut window = vec![0.0; values.len() + 1 - span];
            window_sums(&values, span, &mut scratch, &mut window);
            for (i, w) in window.iter().enumerate() {
                let direct: f32 = values[i..i + span].iter().sum();
                assert!((w - direct).abs() <= 1e-5 * direct.max(1.0), "span {span} at {i}: {w} against {direct}");
            }
        }
    }

    #[test]
    fn the_distances_are_the_same_to_the_bit_on_every_cpu() {
        // 200 s of moments with two regions: whatever vector units the CPU has (on one with
        // AVX2 the two calls take different paths).
        let n = 2000;
        let moments: Vec<f32> = (0..n * BINS).map(|i| -30.0 + 20.0 * noise(i as u64)).collect();
        let region: Vec<u32> = (0..n).map(|t| if (400..700).contains(&t) { 1 } else if (1500..1600).contains(&t) { 2 } else { 0 }).collect();
        let layout = Bands::of(BINS);
        let chosen = nearest_far_distance(&moments, &layout, MOMENT_RATE_HZ, &region);
        let portable = nearest_far_distance_on_any_cpu(&moments, &layout, MOMENT_RATE_HZ, &region, Wanted::Every);
        assert_eq!(chosen.len(), n * BANDS);
        assert!(chosen.iter().zip(&portable).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn the_second_look_measures_only_the_regions_and_agrees_to_the_bit() {
        // Regions of every kind: at the start, at the end, two touching, one longer than a
        // block of moments, one a single moment.
        let n = 3000;
        let moments: Vec<f32> = (0..n * BINS).map(|i| -30.0 + 20.0 * noise(i as u64 + 7)).collect();
        let region: Vec<u32> = (0..n)
            .map(|t| match t {
                0..=40 => 1,
                400..=699 => 2,
                700..=759 => 3,
                1000..=2199 => 4,
                2500 => 5,
                2950.. => 6,
                _ => 0,
            })
            .collect();
        let layout = Bands::of(BINS);
        let first = nearest_far_distance(&moments, &layout, MOMENT_RATE_HZ, &vec![0; n]);
        let whole = nearest_far_distance(&moments, &layout, MOMENT_RATE_HZ, &region);
        let again = nearest_far_distance_again(&moments, &layout, MOMENT_RATE_HZ, &region, &first);
        assert_eq!(again.len(), whole.len());
        let differ = whole.iter().zip(&again).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "{differ} of {} distances differ", whole.len());
        // And the regions did change something, or this would not test the second look.
        assert!(whole.iter().zip(&first).any(|(a, b)| a.to_bits() != b.to_bits()));
        let portable = nearest_far_distance_on_any_cpu(&moments, &layout, MOMENT_RATE_HZ, &region, Wanted::InRegions);
        let chosen = nearest_far_distance_of(&moments, &layout, MOMENT_RATE_HZ, &region, Wanted::InRegions);
        assert!(chosen.iter().zip(&portable).all(|(a, b)| a.to_bits() == b.to_bits()));
        // The bass view's moments may end before the log-mel's, whose regions they are given.
        let shorter = &moments[..(n - 30) * BINS];
        let first = nearest_far_distance(shorter, &layout, MOMENT_RATE_HZ, &vec![0; n]);
        let whole = nearest_far_distance(shorter, &layout, MOMENT_RATE_HZ, &region);
        let again = nearest_far_distance_again(shorter, &layout, MOMENT_RATE_HZ, &region, &first);
        assert!(whole.len() == again.len() && whole.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn pooling_averages_each_bin_over_its_frames_above_its_floor() {
        let frames = [1.0, 10.0, 3.0, 20.0, 5.0, 30.0, 7.0, 40.0, 9.0, 50.0];
        assert_eq!(pooled(&frames, 2, 2, &[f32::NEG_INFINITY; 2]), vec![2.0, 15.0, 6.0, 35.0]);
        assert_eq!(pooled(&frames, 2, 2, &[4.0, 0.0]), vec![4.0, 15.0, 6.0, 35.0]);
    }

    #[test]
    fn steps_that_recur_at_one_spacing_are_a_layers_swell_not_changes() {
        // 10.8 s apart, the third 0.25 s off: a layer swelling once a period. The lone step at
        // 60 s and two steps at another spacing stay.
        assert_eq!(recurring(&[8.0, 18.8, 29.85, 60.0, 75.0, 83.0]), [true, true, true, false, false, false]);
        // The third 0.5 s from the repeat (more than 0.3 s and 3 % of 10 s): no recurrence.
        assert_eq!(recurring(&[5.0, 15.0, 25.5]), [false; 3]);
        // Spacings under two seconds are not looked at.
        assert_eq!(recurring(&[5.0, 6.5, 8.0]), [false; 3]);
    }

    #[test]
    fn a_part_that_comes_in_is_a_step_and_its_wobble_is_not() {
        // The high bins are silent (-80 dB) until 30 s, then play at -30 dB wobbling by ±5 dB.
        let frames: Vec<f32> = (0..(60.0 * FR) as usize)
            .flat_map(|t| {
                (0..BINS).map(move |b| {
                    let base = -40.0 + 30.0 * noise((t % 95) as u64 * 97 + b as u64 * 7);
                    if b < BINS / 2 {
                        base
                    } else if (t as f64) < 30.0 * FR {
                        -80.0
                    } else {
                        -30.0 + 10.0 * noise(t as u64 * 31 + b as u64)
                    }
                })
            })
            .collect();
        let steps = level_steps(&frames, BINS, FR);
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!((steps[0].start_s - 30.0).abs() <= 0.2 && steps[0].end_s == steps[0].start_s, "{steps:?}");
        assert!(steps[0].strength > 0.9, "a 50 dB jump: {steps:?}");
        assert!(changes(&frames, BINS, FR).contains(&steps[0]), "no stretch has an edge there");
        assert_eq!(level_steps(&frames[..(3.0 * FR) as usize * BINS], BINS, FR), vec![], "too short to compare");
    }

    #[test]
    fn a_step_that_a_layers_period_repeats_is_that_layer_not_a_change() {
        // The high bins are silent but for a pad that plays 10-14 s and 21-25 s (a layer of
        // period 11 s heard twice: too few times to recur), and a part that comes in at 34 s
        // and stays.
        let on = |now: f64| (10.0..14.0).contains(&now) || (21.0..25.0).contains(&now) || now >= 34.0;
        let frames: Vec<f32> = (0..(50.0 * FR) as usize)
            .flat_map(|t| {
                (0..BINS).map(move |b| {
                    let base = -40.0 + 30.0 * noise((t % 95) as u64 * 97 + b as u64 * 7);
                    match (b < BINS / 2, on(t as f64 / FR)) {
                        (true, _) => base,
                        (false, true) => -30.0 + noise(t as u64 * 31 + b as u64),
                        (false, false) => -80.0,
                    }
                })
            })
            .collect();
        let instants = |periods: &[f64]| -> Vec<f64> {
            novelty(&frames, BINS, None, FR, periods, None).changes.iter().filter(|c| c.start_s == c.end_s).map(|c| c.start_s).collect()
        };
        let near = |found: &[f64], expected: &[f64]| found.len() == expected.len() && found.iter().zip(expected).all(|(f, e)| (f - e).abs() <= 0.2);
        let unknown = instants(&[]);
        assert!(near(&unknown, &[10.0, 14.0, 21.0, 25.0, 34.0]), "with no period known every step is a change: {unknown:?}");
        // Known, the period explains the pad's four steps; the part coming in where the band
        // did something else a period and two before stays a change.
        let known = instants(&[11.0]);
        assert!(near(&known, &[34.0]), "{known:?}");
        // A period that does not fit the pad explains nothing.
        assert!(near(&instants(&[7.3]), &[10.0, 14.0, 21.0, 25.0, 34.0]));
    }

    #[test]
    fn a_step_at_a_stretchs_edge_is_that_edge() {
        // The changed stretch of `piece` is 9 dB: no step. Make it 20 dB, and its two edges are
        // steps as well as the stretch's edges: reported once, as the stretch.
        let mut frames = piece(90.0, None);
        for t in (41.3 * FR) as usize..(52.1 * FR) as usize {
            for b in BINS / 2..BINS {
                frames[t * BINS + b] += 20.0;
            }
        }
        assert_eq!(level_steps(&frames, BINS, FR).len(), 2);
        let all = changes(&frames, BINS, FR);
        assert_eq!(all, novel_stretches(&frames, BINS, FR));
        assert_eq!(all.len(), 1, "{all:?}");
    }

    #[test]
    fn stretches_with_a_short_dip_between_them_are_one_change() {
        let rate = MOMENT_RATE_HZ;
        // Moments 0..10 quiet, 10..50 novel, a dip of `gap` moments, 40 novel, then quiet.
        let score = |gap: usize| -> Vec<f64> {
            let mut s = vec![0.0; 10];
            s.extend(vec![5.0; 40]);
            s.extend(vec![0.0; gap]);
            s.extend(vec![3.5; 40]);
            s.extend(vec![0.0; 10]);
            s
        };
        // 1.3 s between the moments, 1.95 s between the stretches once their edges are pulled in.
        let short = stretches(&score(13), rate);
        assert_eq!(short.len(), 1, "{short:?}");
        assert!((short[0].start_s - (1.0 + START_PULL_S)).abs() < 1e-9 && (short[0].end_s - (10.3 - END_PULL_S)).abs() < 1e-9, "{short:?}");
        // The strength is the two stretches' mean weighted by their lengths (equal here).
        let expected = ((5.0 + 3.5) / 2.0) / FULL_Z;
        assert!((short[0].strength - expected).abs() < 1e-9, "{short:?}");
        let long = stretches(&score(25), rate);
        assert_eq!(long.len(), 2, "{long:?}");
        assert!((long[1].start_s - (7.5 + START_PULL_S)).abs() < 1e-9, "{long:?}");
    }

    #[test]
    fn the_start_and_the_end_of_the_music_are_no_change() {
        let span = |start_s, end_s| ChangeSpan { start_s, end_s, strength: 0.5 };
        assert_eq!(away_from_ends(span(3.0, 9.0), 60.0), Some(span(3.0, 9.0)));
        assert_eq!(away_from_ends(span(0.2, 9.0), 60.0), Some(span(9.0, 9.0)), "from the start: a change at its end");
        assert_eq!(away_from_ends(span(40.0, 59.5), 60.0), Some(span(40.0, 40.0)), "to the end: a change at its start");
        assert_eq!(away_from_ends(span(0.5, 0.5), 60.0), None);
        assert_eq!(away_from_ends(span(59.2, 59.2), 60.0), None);
        assert_eq!(away_from_ends(span(0.0, 60.0), 60.0), None);
    }

    #[test]
    fn a_stretch_splits_where_its_novel_bands_shift_and_not_elsewhere() {
        let rate = 10.0;
        let n = 300;
        let bands = 4;
        // Novel from 5 s to 25 s: in band 0 until 15 s, then in band 2.
        let mut band_z = vec![0.0; n * bands];
        for t in 50..250 {
            band_z[t * bands + if t < 150 { 0 } else { 2 }] = 8.0;
        }
        let score: Vec<f64> = band_z.chunks_exact(bands).map(|z| z.iter().sum::<f64>() / 2.0).collect();
        let whole = ChangeSpan { start_s: 5.0, end_s: 25.0, strength: 0.3 };
        let parts = split_where_bands_shift(vec![whole], &band_z, &score, rate);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!((parts[0].start_s, parts[1].end_s), (5.0, 25.0));
        assert!((parts[0].end_s - 15.0).abs() <= 0.5 && parts[0].end_s == parts[1].start_s, "{parts:?}");
        assert!(parts.iter().all(|p| (p.strength - 4.0 / FULL_Z).abs() < 0.05), "{parts:?}");
        // The same bands throughout: one stretch, as it was.
        let steady: Vec<f64> = (0..n * bands).map(|i| if i % bands == 1 && (50..250).contains(&(i / bands)) { 8.0 } else { 0.0 }).collect();
        assert_eq!(split_where_bands_shift(vec![whole], &steady, &score, rate), vec![whole]);
        // A shift too near an edge leaves a part shorter than the separation: no split.
        let near = ChangeSpan { start_s: 5.0, end_s: 16.0, strength: 0.3 };
        assert_eq!(split_where_bands_shift(vec![near], &band_z, &score, rate), vec![near]);
    }

    #[test]
    fn runs_above_a_bar_are_the_longest_ones_in_order() {
        let score = [2.0, 2.0, 0.0, 1.0, 3.0, 1.0, 1.0, 5.0];
        assert_eq!(runs_above(&score, 1.0).collect::<Vec<_>>(), vec![(0, 1), (4, 4), (7, 7)]);
        assert_eq!(runs_above(&score, 5.0).count(), 0, "at the bar is not above it");
        assert_eq!(runs_above(&[], 0.0).count(), 0);
        assert_eq!(runs_above(&[1.0; 4], 0.0).collect::<Vec<_>>(), vec![(0, 3)]);
    }

    #[test]
    fn a_short_burst_away_from_the_stretches_is_an_instant_at_its_peak() {
        let rate = MOMENT_RATE_HZ;
        // 100 quiet moments with a burst of `width` moments peaking at `peak` from moment 50.
        let burst = |width: usize, peak: f64| -> Vec<f64> {
            let mut s = vec![0.0; 100];
            s[50..50 + width].fill(Z_BURST + 0.5);
            s[50 + width / 2] = peak;
            s
        };
        let found = short_bursts(&burst(4, 9.0), &[], rate);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((found[0].start_s - 5.25).abs() < 1e-9 && found[0].end_s == found[0].start_s, "{found:?}");
        assert!((found[0].strength - 9.0 / FULL_Z).abs() < 1e-9, "{found:?}");
        assert_eq!(short_bursts(&burst(BURST_MIN_MOMENTS - 1, 9.0), &[], rate), vec![], "too short");
        assert_eq!(short_bursts(&vec![Z_BURST; 100], &[], rate), vec![], "never above the bar");
        // Within BURST_SEPARATION_S of a stretch's edge it is that edge.
        let stretch = ChangeSpan { start_s: 5.3 + BURST_SEPARATION_S - 0.1, end_s: 20.0, strength: 0.5 };
        assert_eq!(short_bursts(&burst(4, 9.0), &[stretch], rate), vec![]);
        // Of two bursts closer than BURST_SEPARATION_S, the first.
        let mut two = burst(4, 9.0);
        two[60..64].fill(Z_BURST + 1.0);
        assert_eq!(short_bursts(&two, &[], rate).len(), 1);
        two[60..64].fill(0.0);
        two[90..94].fill(Z_BURST + 1.0);
        assert_eq!(short_bursts(&two, &[], rate).len(), 2);
    }

    #[test]
    fn a_bins_floor_sits_below_its_loud_level() {
        // Bin 0 holds 0..=99 dB, bin 1 is constant.
        let frames: Vec<f32> = (0..100).flat_map(|i| [i as f32, -30.0]).collect();
        assert_eq!(bin_floors(&frames, 2), vec![98.0 - FLOOR_BELOW_DB, -30.0 - FLOOR_BELOW_DB]);
        assert_eq!(bin_floors(&[], 2), vec![f32::NEG_INFINITY; 2]);
    }

    #[test]
    fn noise_in_the_quiet_phase_of_a_repeating_swell_is_no_change() {
        // The high bins swell every 23.3 s and fall 45 dB for the last 5 s of each cycle, where
        // noise that never repeats wobbles by ±12 dB (a pad's tail near the front end's floor).
        // The low bins repeat as in `piece`. Without the floor those quiet stretches are changes.
        let frames = (90.0 * FR) as usize;
        let mut out = Vec::with_capacity(frames * BINS);
        for t in 0..frames {
            let phase_s = (t as f64 / FR) % 23.3;
            for b in 0..BINS {
                let v = if b < BINS / 2 {
                    -40.0 + 30.0 * noise((t % 95) as u64 * 97 + b as u64 * 7)
                } else if phase_s < 18.3 {
                    -30.0 + 2.0 * noise(b as u64)
                } else {
                    -75.0 + 24.0 * noise(t as u64 * 7919 + b as u64)
                };
                out.push(v + noise(t as u64 * 131 + b as u64));
            }
        }
        assert_eq!(novel_stretches(&out, BINS, FR), vec![]);
    }
}
