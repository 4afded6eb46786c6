//! Where a change's edges lie: the change head's reading of the detector's novelty, moment by
//! moment, and the edges it moves, drops and adds.
//!
//! The change detector ([`super::novelty`]) says where the music stops repeating by rules: a
//! stretch enters over one z and stays over another, a burst passes a third, a band's level
//! jumps. Its edges land late where a change fades in or the changed layer's first note comes
//! after the bar line, and a change under its thresholds is never reported. The change head
//! ([`ChangeHead`], gradient-boosted trees trained on the synthetic truth by
//! `models/tools/change_head.py`) reads [`CHANGE_FEATURES`] numbers per moment, all from what
//! the detector already computed ([`moment_features`]: at the moment and, for the novelty, half a
//! second either side), and gives the probability that a change's
//! edge lies within half a second of it. Then ([`placed`]):
//!
//! 1. every edge moves to the moment the head is surest of within [`SNAP_S`], if the head gives
//!    it at least [`SNAP_AT_LEAST`];
//! 2. a stretch's edge with no moment of [`KEEP_AT_LEAST`] within [`KEEP_WITHIN_S`] is dropped
//!    (the stretch keeps its other edge, as an instant); an instant (a level step, a burst)
//!    always stays, because on the real-music demos the level steps hold up where the head,
//!    trained on one generator, is unsure;
//! 3. the head's peaks of at least [`ADD_AT_LEAST`], [`ADD_SEPARATION_S`] from every edge and
//!    from each other and not within [`super::novelty::ENDS_S`] of the music's ends, are changes
//!    of their own (instants, as strong as the head is sure).
//!
//! On the validation seeds 60-79, which chose it, this moved change F1 from 0.421 to 0.460 at
//! 0.5 s and from 0.575 to 0.597 at 3 s, and on the lmms demos from 0.157 to 0.206 and from 0.291
//! to 0.297; on 360 pieces never used for a choice from 0.417 to 0.462 and from 0.576 to 0.585
//! (the README's Quality).
//!
//! ```
//! use strata::layers::edges::{placed, CHANGE_FEATURES};
//! use strata::layers::ChangeSpan;
//!
//! // Ten moments a second for 20 s; the head is sure at 5.5 s and at 15.05 s, unsure elsewhere.
//! let mut p = vec![0.01; 200];
//! p[55] = 0.9;
//! p[150] = 0.8;
//! let stretch = ChangeSpan { start_s: 4.6, end_s: 9.0, strength: 0.5 };
//! let changes = placed(vec![stretch], &p, 10.0, 20.0);
//! // The start moves to where the head is sure; nothing is near the end, so it goes, and the
//! // stretch is an instant at its start; the head's confident moment far from it is added.
//! assert_eq!(changes.len(), 2);
//! assert!((changes[0].start_s - 5.55).abs() < 1e-9 && changes[0].end_s == changes[0].start_s);
//! assert!((changes[1].start_s - 15.05).abs() < 1e-9 && (changes[1].strength - 0.8).abs() < 1e-9);
//! assert_eq!(CHANGE_FEATURES, 94);
//! ```

use super::heads::ChangeHead;
use super::novelty::{cosine, running_sums, ENDS_S};
use super::patterns::ChangeSpan;

/// The two-band score's windows (moments) before and after each moment, per look.
const SCORE_WINDOWS: [usize; 3] = [3, 10, 30];
/// The windows (moments) over which the bands a moment is novel in before it and after it are
/// compared.
const SHIFT_WINDOWS: [usize; 2] = [10, 20];
/// The windows (moments) over which the bands' loudness before and after each moment is compared.
const LEVEL_WINDOWS: [usize; 3] = [5, 10, 20];
/// The seconds from the start and to the end a moment's position is read up to.
const POSITION_CAP_S: f64 = 10.0;
/// The moments before and after whose looks' numbers a moment's row repeats (0.5 s either side:
/// the head sees the novelty's shape around the moment, not only at it).
const CONTEXT_OFFSETS: [isize; 2] = [-5, 5];
/// The looks' numbers per moment: per look, 4 of the bands at the moment and 3 per score window.
const LOOK_FEATURES: usize = 2 * (4 + 3 * SCORE_WINDOWS.len());
/// The features per moment: the looks' numbers; one per shift window; 4 per level window; 2 of
/// position; and the looks' numbers of the moments [`CONTEXT_OFFSETS`] away.
pub const CHANGE_FEATURES: usize = (1 + CONTEXT_OFFSETS.len()) * LOOK_FEATURES + SHIFT_WINDOWS.len() + 4 * LEVEL_WINDOWS.len() + 2;

/// How far (seconds) an edge moves to the moment the head is surest of.
pub const SNAP_S: f64 = 2.0;
/// How sure the head must be of that moment for the edge to move.
pub const SNAP_AT_LEAST: f64 = 0.2;
/// A stretch's edge is dropped where the head gives no moment within [`KEEP_WITHIN_S`] at least
/// this. On the validation seeds, 0.03 / 0.06 / 0.1 gave 0.582 / 0.590 / 0.584 at 3 s; the
/// demos lost nothing to 0.06 and lost 0.02 where instants were dropped too.
pub const KEEP_AT_LEAST: f64 = 0.06;
/// See [`KEEP_AT_LEAST`] (seconds either side).
pub const KEEP_WITHIN_S: f64 = 1.0;
/// The head's own edges: moments it gives at least this, ...
pub const ADD_AT_LEAST: f64 = 0.6;
/// ... at least this far (seconds) from every other edge.
pub const ADD_SEPARATION_S: f64 = 3.0;

/// What the change head reads, per moment: how novel each band was at the detector's first and
/// final look (`first`, `last`: moment-major, `bands` each, as [`super::novelty`] scores them)
/// and the moments' levels (`moments`: dB, `bins` each), whose bins `level_bands` gathers into
/// loudness bands.
pub struct MomentInputs<'a> {
    pub first: &'a [f64],
    pub last: &'a [f64],
    pub bands: usize,
    pub moments: &'a [f32],
    pub bins: usize,
    pub level_bands: &'a [std::ops::Range<usize>],
    pub moment_rate: f64,
}

/// The head's probability of a change's edge at each moment.
pub fn probabilities(head: &ChangeHead, inputs: &MomentInputs) -> Vec<f64> {
    let features = MomentFeatures::new(inputs);
    (0..features.n).map(|i| head.score(&features.row(i))).collect()
}

/// The [`CHANGE_FEATURES`] numbers of every moment, as `models/tools/novelty_features.py`'s
/// `moment_features` computes them (the head's training): for each look, the most novel band,
/// the mean of the two and of the four most novel and of all bands, and the two-band score over
/// 0.3, 1 and 3 s before and after and their difference; the cosine of each band's mean positive
/// novelty (first look) over 1 and 2 s before and after; the loudness of the bands over 0.5, 1
/// and 2 s before and after (the largest change, the sum of the rises and of the falls, and the
/// change of the mean power); the seconds from the start and to the end, capped; and the looks'
/// numbers again for the moments half a second before and after (the first or last moment past
/// the ends).
pub fn moment_features(inputs: &MomentInputs) -> Vec<[f64; CHANGE_FEATURES]> {
    let features = MomentFeatures::new(inputs);
    (0..features.n).map(|i| features.row(i)).collect()
}

/// Running sums (one more than the moments) of the series the features average over windows,
/// and each moment's own band statistics: built once, read a row at a time.
struct MomentFeatures {
    n: usize,
    moment_rate: f64,
    /// Per look: the most novel band, the mean of the two and of the four most novel, the mean
    /// of all, per moment.
    at: [[Vec<f64>; 4]; 2],
    /// Per look, the running sum of the two-band score.
    score_sums: [Vec<f64>; 2],
    /// The running sums of each band's positive novelty (first look), moment-major.
    positive_sums: Vec<f64>,
    bands: usize,
    /// The running sums of each loudness band's mean dB, moment-major.
    level_sums: Vec<f64>,
    level_bands: usize,
}

impl MomentFeatures {
    fn new(inputs: &MomentInputs) -> Self {
        let bands = inputs.bands.max(1);
        let n = inputs.first.len() / bands;
        let mut at: [[Vec<f64>; 4]; 2] = Default::default();
        let mut score_sums: [Vec<f64>; 2] = Default::default();
        let mut ranked = vec![0.0; bands];
        for (look, z) in [inputs.first, inputs.last].into_iter().enumerate() {
            let [top, two, four, all] = &mut at[look];
            for row in z.chunks_exact(bands).take(n) {
                ranked.copy_from_slice(row);
                ranked.sort_unstable_by(|a, b| b.total_cmp(a));
                let mean_of = |k: usize| ranked[..k.min(bands)].iter().sum::<f64>() / k.min(bands) as f64;
                top.push(ranked[0]);
                two.push(mean_of(2));
                four.push(mean_of(4));
                all.push(mean_of(bands));
            }
            score_sums[look] = running_sums(at[look][1].iter().copied(), 1);
        }
        let level_bands = inputs.level_bands.len();
        let levels: Vec<f64> = inputs
            .moments
            .chunks_exact(inputs.bins.max(1))
            .take(n)
            .flat_map(|m| inputs.level_bands.iter().map(|r| m[r.clone()].iter().map(|&v| f64::from(v)).sum::<f64>() / r.len().max(1) as f64))
            .collect();
        // Moments past the levels' end (none when both come from the same frames) read as 0 dB.
        let mut level_rows = levels;
        level_rows.resize(n * level_bands, 0.0);
        Self {
            n,
            moment_rate: inputs.moment_rate,
            at,
            score_sums,
            positive_sums: running_sums(inputs.first[..n * bands].iter().map(|z| z.max(0.0)), bands),
            bands,
            level_sums: running_sums(level_rows, level_bands),
            level_bands,
        }
    }

    /// Moment `i`'s looks' numbers, into `put`.
    fn looks(&self, i: usize, put: &mut impl FnMut(f64)) {
        for look in 0..2 {
            for series in &self.at[look] {
                put(series[i]);
            }
            for w in SCORE_WINDOWS {
                let (before, after) = before_after(&self.score_sums[look], 1, self.n, i, w);
                put(before[0]);
                put(after[0]);
                put(after[0] - before[0]);
            }
        }
    }

    /// Moment `i`'s features.
    fn row(&self, i: usize) -> [f64; CHANGE_FEATURES] {
        let mut x = [0.0; CHANGE_FEATURES];
        let mut k = 0;
        let mut put = |v: f64| {
            x[k] = v;
            k += 1;
        };
        self.looks(i, &mut put);
        for w in SHIFT_WINDOWS {
            let (before, after) = before_after(&self.positive_sums, self.bands, self.n, i, w);
            put(cosine(&before, &after));
        }
        for w in LEVEL_WINDOWS {
            let (before, after) = before_after(&self.level_sums, self.level_bands, self.n, i, w);
            let diff: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
            put(diff.iter().fold(0.0, |m, d| m.max(d.abs())));
            put(diff.iter().map(|d| d.max(0.0)).sum());
            put(diff.iter().map(|d| (-d).max(0.0)).sum());
            put(mean_power_db(&after) - mean_power_db(&before));
        }
        let t = (i as f64 + 0.5) / self.moment_rate;
        let last = (self.n as f64 - 0.5) / self.moment_rate;
        put(t.min(POSITION_CAP_S));
        put((last - t).min(POSITION_CAP_S));
        for offset in CONTEXT_OFFSETS {
            let j = i.saturating_add_signed(offset).min(self.n.saturating_sub(1));
            self.looks(j, &mut put);
        }
        x
    }
}

/// The mean of each of the `width` series over the `w` moments before moment `i` and over it and
/// the `w - 1` after it (of `n`), each over the moments there are (0 before the first).
fn before_after(sums: &[f64], width: usize, n: usize, i: usize, w: usize) -> (Vec<f64>, Vec<f64>) {
    let (lo, hi) = (i.saturating_sub(w), (i + w).min(n));
    let mean = |from: usize, to: usize| -> Vec<f64> {
        let count = (to - from).max(1) as f64;
        (0..width).map(|c| (sums[to * width + c] - sums[from * width + c]) / count).collect()
    };
    (mean(lo, i), mean(i, hi))
}

/// The mean power of dB levels, in dB.
fn mean_power_db(levels: &[f64]) -> f64 {
    let mean = levels.iter().map(|l| (l * std::f64::consts::LN_10 / 10.0).exp()).sum::<f64>() / levels.len().max(1) as f64;
    10.0 * (mean + 1e-12).log10()
}

/// `changes` with their edges moved, dropped and added by the head's `probability` per moment
/// (`moment_rate` a second, the music `held_s` long), in order of their start; see the module
/// documentation.
pub fn placed(changes: Vec<ChangeSpan>, probability: &[f64], moment_rate: f64, held_s: f64) -> Vec<ChangeSpan> {
    let time = |i: usize| (i as f64 + 0.5) / moment_rate;
    // The moments within `reach` seconds of `at`.
    let near = |at: f64, reach: f64| {
        let first = ((at - reach) * moment_rate - 0.5).ceil().max(0.0) as usize;
        (first..probability.len()).skip_while(move |&i| time(i) < at - reach).take_while(move |&i| time(i) <= at + reach)
    };
    let surest = |at: f64, reach: f64| near(at, reach).fold(None, |best: Option<usize>, i| match best {
        Some(b) if probability[b] >= probability[i] => Some(b),
        _ => Some(i),
    });
    let moved = |at: f64| match surest(at, SNAP_S) {
        Some(i) if probability[i] >= SNAP_AT_LEAST => time(i),
        _ => at,
    };
    let kept = |at: f64| near(at, KEEP_WITHIN_S).any(|i| probability[i] >= KEEP_AT_LEAST) || near(at, KEEP_WITHIN_S).next().is_none();
    // An instant at `at`, moved, with the strength of `c`.
    let instant = |c: ChangeSpan, at: f64| {
        let at = moved(at);
        ChangeSpan { start_s: at, end_s: at, ..c }
    };
    let mut out: Vec<ChangeSpan> = changes
        .into_iter()
        .filter_map(|c| {
            if c.end_s <= c.start_s {
                return Some(instant(c, c.start_s));
            }
            match (kept(c.start_s), kept(c.end_s)) {
                (true, true) => {
                    let (start_s, end_s) = (moved(c.start_s), moved(c.end_s));
                    Some(if end_s > start_s { ChangeSpan { start_s, end_s, ..c } } else { ChangeSpan { start_s, end_s: start_s, ..c } })
                }
                (true, false) => Some(instant(c, c.start_s)),
                (false, true) => Some(instant(c, c.end_s)),
                (false, false) => None,
            }
        })
        .collect();
    let mut edges: Vec<f64> = out.iter().flat_map(|c| [c.start_s, c.end_s]).collect();
    let mut order: Vec<usize> = (0..probability.len()).filter(|&i| probability[i] >= ADD_AT_LEAST).collect();
    order.sort_by(|&a, &b| probability[b].total_cmp(&probability[a]).then(a.cmp(&b)));
    let mut peaks: Vec<f64> = Vec::new();
    for i in order {
        let at = time(i);
        if peaks.iter().any(|p| (p - at).abs() < ADD_SEPARATION_S) || at < ENDS_S || at > held_s - ENDS_S {
            continue;
        }
        peaks.push(at);
        if edges.iter().all(|e| (e - at).abs() >= ADD_SEPARATION_S) {
            edges.push(at);
            out.push(ChangeSpan { start_s: at, end_s: at, strength: probability[i] });
        }
    }
    out.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made-up looks and levels with their features as `models/tools/change_head.py` (the head's
    /// training) computes them.
    #[derive(serde::Deserialize)]
    struct Fixture {
        first: Vec<f64>,
        last: Vec<f64>,
        bands: usize,
        moments: Vec<f32>,
        bins: usize,
        features: Vec<Vec<f64>>,
    }

    #[test]
    fn the_features_are_those_the_head_was_trained_on() {
        let fixture: Fixture = serde_json::from_str(include_str!("../../../models/fixtures/change_features.json")).expect("the fixture");
        let per_band = fixture.bins / 16;
        let level_bands: Vec<std::ops::Range<usize>> = (0..16).map(|k| k * per_band..(k + 1) * per_band).collect();
        let inputs = MomentInputs {
            first: &fixture.first,
            last: &fixture.last,
            bands: fixture.bands,
            moments: &fixture.moments,
            bins: fixture.bins,
            level_bands: &level_bands,
            moment_rate: 10.0,
        };
        let ours = moment_features(&inputs);
        assert_eq!(ours.len(), fixture.features.len());
        for (i, (row, expected)) in ours.iter().zip(&fixture.features).enumerate() {
            assert_eq!(expected.len(), CHANGE_FEATURES);
            for (k, (a, b)) in row.iter().zip(expected).enumerate() {
                assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "moment {i}, feature {k}: {a} against {b}");
            }
        }
    }

    #[test]
    fn before_and_after_are_means_over_the_moments_there_are() {
        let sums = running_sums([1.0, 2.0, 3.0, 4.0], 1);
        assert_eq!(before_after(&sums, 1, 4, 0, 2), (vec![0.0], vec![1.5]));
        assert_eq!(before_after(&sums, 1, 4, 2, 2), (vec![1.5], vec![3.5]));
        assert_eq!(before_after(&sums, 1, 4, 3, 3), (vec![2.0], vec![4.0]));
    }

    #[test]
    fn an_edge_the_head_is_unsure_of_everywhere_stays_where_it_was() {
        let p = vec![0.1; 300];
        let c = ChangeSpan { start_s: 5.0, end_s: 12.0, strength: 0.4 };
        assert_eq!(placed(vec![c], &p, 10.0, 30.0), vec![c]);
    }

    #[test]
    fn an_instant_is_never_dropped_and_a_stretch_without_support_goes() {
        let p = vec![0.0; 300];
        let instant = ChangeSpan { start_s: 5.0, end_s: 5.0, strength: 0.4 };
        let stretch = ChangeSpan { start_s: 10.0, end_s: 20.0, strength: 0.4 };
        assert_eq!(placed(vec![instant, stretch], &p, 10.0, 30.0), vec![instant]);
    }

    #[test]
    fn the_heads_own_edges_keep_apart_and_away_from_the_ends() {
        let mut p = vec![0.0; 300];
        for i in [3, 100, 110, 200, 295] {
            p[i] = 0.7;
        }
        p[110] = 0.9;
        let got: Vec<f64> = placed(Vec::new(), &p, 10.0, 30.0).iter().map(|c| c.start_s).collect();
        assert_eq!(got, vec![11.05, 20.05]);
    }
}
