//! Which layer each change belongs to.
//!
//! The change detector ([`super::novelty`]) says where the music stops repeating and in which
//! bands; the layer search ([`super::patterns`]) says which layers there are, where each sounds
//! and how far each strays from its own repeats frame by frame. A change goes to one layer:
//!
//! - by the rules, to the layer with the best [`attribution_score`]: the cosine between the bands
//!   the change was heard in and the layer's, its stray score over the change and the log of its
//!   period;
//! - with the attribution head ([`AttributionHead`], `models/tools/attribution_head.py`),
//!   to the layer it gives the highest probability of being the one that changed, from
//!   [`ATTRIBUTION_FEATURES`] numbers per layer and change (those the rules weigh, how each layer
//!   ranks on them against the others, whether it starts or stops playing there). The rules give
//!   a hats change to a bar-long layer in the same bands and a bass change to the drums' as often
//!   as not; the head learned from the synthetic truth which of the layers that share the bands
//!   is the one that changed.
//!
//! ```
//! use strata::layers::attribution::ATTRIBUTION_FEATURES;
//! // What the head reads for one layer and one change (see `features`).
//! assert_eq!(ATTRIBUTION_FEATURES, 23);
//! ```

use serde::{Deserialize, Serialize};

use super::heads::AttributionHead;
use super::novelty::{self, Novelty};
use super::patterns::{ChangeSpan, Span, SAME_PERIOD};

/// How much a layer's stray score (robust z, over a change) adds to the overlap of the change's
/// bands with the layer's, the best overlap being 1. On development seeds 1, 2, 5 and 6 the F1 of
/// changes given to the right layer was 0.165 with the stray score alone, 0.267 with the overlap
/// alone and 0.271 with both (a Python replica: 0.273, 0.291 at 0.1, 0.281 at 0.3).
const STRAY_WEIGHT: f64 = 0.1;
/// A layer's changes last at least about one of its periods: a stretch shorter than this many of
/// a layer's periods is less likely that layer's, and its score for the layer is weighed by
/// [`SHORT_CHANGE_WEIGHT`]. In a Python replica on development seeds 1, 2, 5 and 6 this raised
/// the F1 of changes given to the right layer from 0.249 to 0.273 (weights 0.2 and 0.5: 0.271
/// and 0.263).
const SHORTEST_CHANGE_PERIODS: f64 = 1.0 / 1.1;
/// See [`SHORTEST_CHANGE_PERIODS`].
const SHORT_CHANGE_WEIGHT: f64 = 0.7;
/// How much a layer's score for a change grows with the log of its period (seconds): where
/// layers share the bands a change was heard in, the longer is more often the one that changed
/// (a divisor layer found first in the same channels sounds the change too, and most wrong
/// attributions went to a shorter layer: 13 of 16 on the development seeds). On development
/// seeds 1, 2, 5 and 6 the F1 of changes given to the right layer went from 0.287 to 0.310 (0.05:
/// 0.285, 0.08: 0.319, 0.15: 0.310, 0.2: 0.282); on seeds 7 to 10 from 0.221 to 0.233, and on
/// the lmms demos from 0.096 to 0.107. A logistic model over ten features of each change and
/// layer, trained leaving one seed out, did no better (0.294 and 0.219).
const LONGER_LAYER_WEIGHT: f64 = 0.1;
/// A layer whose overlap with a change's bands is at least this share of the best layer's shares
/// them (the head counts the longer and shorter layers that do).
const SHARES_BANDS: f64 = 0.7;
/// How long before and after a change's start (seconds) the head reads whether the layer plays
/// and strays: a layer that drops out or comes back changes there.
const AROUND_START_S: f64 = 2.0;
/// How long after and before a change's start (seconds) the head reads the layer's stray score.
const STRAY_AROUND_S: f64 = 1.0;

/// Numbers the attribution head reads for one layer and one change (see [`features`]).
pub const ATTRIBUTION_FEATURES: usize = 23;

/// A found layer, as the attribution sees it.
#[derive(Debug, Clone, Copy)]
pub struct Suspect<'a> {
    pub period_s: f64,
    /// Its confidence against the strongest layer's, 0..1.
    pub confidence: f64,
    /// Its weight in each log-mel bin.
    pub footprint: &'a [f64],
    /// How far it strays from its own repeats, frame by frame (robust z).
    pub strays: &'a [f64],
    /// Where it plays.
    pub active: &'a [Span],
}

/// One layer weighed for one change: what the attribution head is trained on (`strata analyze
/// --candidates` writes them to `attributions.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionRecord {
    /// The change's place among the piece's changes (in order of their start).
    pub change: usize,
    pub start_s: f64,
    pub end_s: f64,
    /// The layer's period.
    pub period_s: f64,
    /// Whether the change went to this layer.
    pub chosen: bool,
    /// What the head weighs, in the order [`features`] gives them.
    pub features: [f64; ATTRIBUTION_FEATURES],
}

/// For each of `novelty`'s changes, the index in `layers` of the layer it goes to (by the head
/// where there is one, else by the rules), noting every layer weighed in `trace`. Empty without
/// layers: there is no one to give a change to.
pub fn attribute(layers: &[Suspect], novelty: &Novelty, fr: f64, head: Option<&AttributionHead>, trace: &mut Vec<AttributionRecord>) -> Vec<usize> {
    if layers.is_empty() {
        return Vec::new();
    }
    let bands: Vec<Vec<f64>> = layers.iter().map(|l| band_weights(l.footprint, novelty)).collect();
    novelty
        .changes
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let heard = novelty.where_heard(c);
            let overlaps: Vec<f64> = bands.iter().map(|w| heard.iter().zip(w).map(|(h, w)| h * w).sum()).collect();
            let x = features(layers, &overlaps, c, fr);
            // Each layer scored once (the comparisons would walk the head's trees again).
            let scores: Vec<f64> = x.iter().map(|x| head.map_or(x[RULE_SCORE], |h| h.score(x))).collect();
            let chosen = (0..layers.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap_or(0);
            trace.extend(layers.iter().zip(&x).enumerate().map(|(i, (l, x))| AttributionRecord {
                change: k,
                start_s: c.start_s,
                end_s: c.end_s,
                period_s: l.period_s,
                chosen: i == chosen,
                features: *x,
            }));
            chosen
        })
        .collect()
}

/// A layer's weight in each of `novelty`'s bands, from its weight in each log-mel bin (unit
/// length).
fn band_weights(footprint: &[f64], novelty: &Novelty) -> Vec<f64> {
    let mut w = vec![0.0; novelty.bands()];
    for (bin, weight) in footprint.iter().enumerate() {
        for band in novelty.bands_of(bin) {
            w[band] += weight;
        }
    }
    let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    w.iter().map(|x| x / norm).collect()
}

/// Where the rules' score is among [`features`].
const RULE_SCORE: usize = 17;

/// What the head weighs for each layer and `change`, given each layer's overlap with the bands
/// the change was heard in (`overlaps`). In order, for a layer:
///
/// 0. its overlap against the best layer's; 1. its overlap; 2. the share of layers that overlap
///    more;
/// 3. its mean stray score over the change; 4. that less the most any layer strays there; 5. the
///    share of layers that stray more;
/// 6. its mean stray score over [`STRAY_AROUND_S`] after the change's start; 7. before it;
/// 8. the log of its period over the change's length; 9. 1 if the change is an instant;
/// 10. the share of layers shorter than it; 11. the log of its period over the shortest's;
/// 12. how many layers there are; 13. its confidence; 14. the centre of its bins (0 low .. 1 high);
/// 15. how many longer layers share the change's bands ([`SHARES_BANDS`]); 16. how many shorter;
/// 17. the rules' [`attribution_score`]; 18. that less the best layer's;
/// 19. the change's strength;
/// 20. the share of [`AROUND_START_S`] before the change's start it plays; 21. after;
/// 22. the log of its period over that of the layer overlapping most.
///
/// Periods enter only against each other and against the change's length: a head trained on one
/// generator's periods would otherwise learn where that generator puts its layers.
fn features(layers: &[Suspect], overlaps: &[f64], change: &ChangeSpan, fr: f64) -> Vec<[f64; ATTRIBUTION_FEATURES]> {
    let n = layers.len() as f64;
    let best_overlap = overlaps.iter().copied().fold(0.0, f64::max).max(1e-12);
    let (from_s, to_s) = novelty::heard_over(change);
    let strays: Vec<f64> = layers.iter().map(|l| mean_stray(l.strays, from_s, to_s, fr)).collect();
    let most_stray = strays.iter().copied().fold(f64::MIN, f64::max);
    let rules: Vec<f64> = layers
        .iter()
        .zip(overlaps)
        .zip(&strays)
        .map(|((l, o), s)| attribution_score(o / best_overlap, *s, l.period_s, change))
        .collect();
    let best_rule = rules.iter().copied().fold(f64::MIN, f64::max);
    let shortest = layers.iter().map(|l| l.period_s).fold(f64::MAX, f64::min).max(1e-9);
    let most_overlapping = (0..layers.len()).max_by(|&a, &b| overlaps[a].total_cmp(&overlaps[b])).unwrap_or(0);
    let share_above = |values: &[f64], v: f64| values.iter().filter(|&&x| x > v).count() as f64 / n;
    let start = change.start_s;
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = l.period_s;
            let sharing = |longer: bool| {
                layers
                    .iter()
                    .zip(overlaps)
                    .filter(|(m, o)| **o >= SHARES_BANDS * best_overlap && if longer { m.period_s > p * (1.0 + SAME_PERIOD) } else { m.period_s < p * (1.0 - SAME_PERIOD) })
                    .count() as f64
            };
            [
                overlaps[i] / best_overlap,
                overlaps[i],
                share_above(overlaps, overlaps[i]),
                strays[i],
                strays[i] - most_stray,
                share_above(&strays, strays[i]),
                mean_stray(l.strays, start, start + STRAY_AROUND_S, fr),
                mean_stray(l.strays, start - STRAY_AROUND_S, start, fr),
                (p / (to_s - from_s).max(1.0 / fr)).ln(),
                f64::from(u8::from(change.end_s <= change.start_s)),
                layers.iter().filter(|m| m.period_s < p).count() as f64 / (n - 1.0).max(1.0),
                (p / shortest).ln(),
                n,
                l.confidence,
                centre(l.footprint),
                sharing(true),
                sharing(false),
                rules[i],
                rules[i] - best_rule,
                change.strength,
                active_share(l.active, start - AROUND_START_S, start),
                active_share(l.active, start, start + AROUND_START_S),
                (p / layers[most_overlapping].period_s.max(1e-9)).ln(),
            ]
        })
        .collect()
}

/// The mean of `strays` (one per frame at `fr` frames a second) from `from_s` to `to_s`, 0
/// where the stretch holds no frame.
fn mean_stray(strays: &[f64], from_s: f64, to_s: f64, fr: f64) -> f64 {
    let a = ((from_s.max(0.0) * fr) as usize).min(strays.len());
    let b = ((to_s.max(0.0) * fr).ceil() as usize).clamp(a, strays.len());
    strays[a..b].iter().sum::<f64>() / (b - a).max(1) as f64
}

/// The centre of `footprint`'s weight, 0 (lowest bin) to 1 (highest).
fn centre(footprint: &[f64]) -> f64 {
    let total = footprint.iter().sum::<f64>().max(1e-12);
    footprint.iter().enumerate().map(|(i, w)| i as f64 * w).sum::<f64>() / total / footprint.len().max(1) as f64
}

/// The share of `from_s..to_s` that `active` covers.
fn active_share(active: &[Span], from_s: f64, to_s: f64) -> f64 {
    let covered: f64 = active.iter().map(|s| (s.end_s.min(to_s) - s.start_s.max(from_s)).max(0.0)).sum();
    covered / (to_s - from_s).max(1e-9)
}

/// A layer's score for `change` by the rules: `overlap` (the cosine of the bands the change was
/// heard in with the layer's, relative to the best layer's, 0..1), plus [`STRAY_WEIGHT`] times its
/// mean `stray` score there, plus [`LONGER_LAYER_WEIGHT`] times the log of its period (seconds),
/// weighed by [`SHORT_CHANGE_WEIGHT`] where the period outlasts the change.
fn attribution_score(overlap: f64, stray: f64, period_s: f64, change: &ChangeSpan) -> f64 {
    let score = overlap + STRAY_WEIGHT * stray + LONGER_LAYER_WEIGHT * period_s.ln();
    let outlasts = change.end_s > change.start_s && period_s * SHORTEST_CHANGE_PERIODS > change.end_s - change.start_s;
    if outlasts {
        score * SHORT_CHANGE_WEIGHT
    } else {
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::novelty::{BANDS, MOMENT_RATE_HZ};

    const BINS: usize = 64;
    const FRAME_RATE: f64 = 50.0;
    const SECONDS: f64 = 60.0;

    /// A layer's weight, 1 in `bins` and 0 elsewhere.
    fn footprint(bins: std::ops::Range<usize>) -> Vec<f64> {
        (0..BINS).map(|b| f64::from(u8::from(bins.contains(&b)))).collect()
    }

    /// Novelty with one change, from 20 s to 30 s, heard in the top quarter of the bands.
    fn a_change_up_high() -> Novelty {
        let moments = (SECONDS * MOMENT_RATE_HZ) as usize;
        let mut band_z = vec![0.0; moments * BANDS];
        for m in (20.0 * MOMENT_RATE_HZ) as usize..(30.0 * MOMENT_RATE_HZ) as usize {
            band_z[m * BANDS + 3 * BANDS / 4..(m + 1) * BANDS].fill(4.0);
        }
        Novelty::made_up(vec![ChangeSpan { start_s: 20.0, end_s: 30.0, strength: 0.8 }], band_z, BINS)
    }

    fn quiet_strays() -> Vec<f64> {
        vec![0.0; (SECONDS * FRAME_RATE) as usize]
    }

    /// The head's file for one stump: `feature` over `threshold` adds `logit`, else subtracts it.
    fn stump_head(feature: usize, threshold: f64, logit: f64) -> AttributionHead {
        let json = format!(
            r#"{{"baseline": 0.0, "trees": [{{"feature": [{feature}, 0, 0], "threshold": [{threshold:?}, 0.0, 0.0],
                "left": [1, 0, 0], "right": [2, 0, 0], "leaf": [false, true, true], "value": [0.0, {:?}, {logit:?}]}}]}}"#,
            -logit
        );
        AttributionHead::from_json(&json).expect("a stump")
    }

    #[test]
    fn the_rules_give_a_change_to_the_layer_in_its_bands_and_the_trace_says_so() {
        let strays = quiet_strays();
        let always = [Span { start_s: 0.0, end_s: SECONDS }];
        let low = footprint(0..16);
        let high = footprint(48..64);
        let layers = [
            Suspect { period_s: 2.0, confidence: 1.0, footprint: &low, strays: &strays, active: &always },
            Suspect { period_s: 2.0, confidence: 0.5, footprint: &high, strays: &strays, active: &always },
        ];
        let mut trace = Vec::new();
        assert_eq!(attribute(&layers, &a_change_up_high(), FRAME_RATE, None, &mut trace), vec![1]);
        assert_eq!(trace.len(), 2);
        assert_eq!(trace.iter().map(|r| r.chosen).collect::<Vec<_>>(), vec![false, true]);
        let [low_x, high_x] = [trace[0].features, trace[1].features];
        assert_eq!((high_x[0], low_x[0]), (1.0, 0.0), "overlap against the best layer's");
        assert_eq!((high_x[2], low_x[2]), (0.0, 0.5), "share of layers overlapping more");
        assert_eq!(high_x[9], 0.0, "a stretch, not an instant");
        assert_eq!(high_x[12], 2.0, "layers weighed");
        assert!(high_x[14] > 0.7 && low_x[14] < 0.3, "centres {} and {}", high_x[14], low_x[14]);
        assert!(high_x[RULE_SCORE] > low_x[RULE_SCORE] && high_x[18] == 0.0);
    }

    #[test]
    fn the_head_decides_where_there_is_one() {
        // Two layers in the changed bands; the longer would win by the rules, but only the
        // shorter starts playing where the change starts, and the head (a stump on whether a
        // layer plays after the change's start) picks that one.
        let strays = quiet_strays();
        let high = footprint(48..64);
        let always = [Span { start_s: 0.0, end_s: SECONDS }];
        let from_the_change = [Span { start_s: 20.0, end_s: SECONDS }];
        let layers = [
            Suspect { period_s: 1.0, confidence: 1.0, footprint: &high, strays: &strays, active: &from_the_change },
            Suspect { period_s: 8.0, confidence: 1.0, footprint: &high, strays: &strays, active: &always },
        ];
        let novelty = a_change_up_high();
        assert_eq!(attribute(&layers, &novelty, FRAME_RATE, None, &mut Vec::new()), vec![1]);
        let mut trace = Vec::new();
        // Feature 20: the share of the 2 s before the start it plays.
        let head = stump_head(20, 0.5, -3.0);
        assert_eq!(attribute(&layers, &novelty, FRAME_RATE, Some(&head), &mut trace), vec![0]);
        assert_eq!((trace[0].features[20], trace[0].features[21]), (0.0, 1.0));
        assert_eq!((trace[1].features[20], trace[1].features[21]), (1.0, 1.0));
        assert_eq!(trace[1].features[15] + trace[0].features[16], 0.0, "no layer is longer than the longest");
        assert_eq!(trace[0].features[15], 1.0, "one longer layer shares the bands");
    }

    #[test]
    fn a_change_heard_alike_in_nested_layers_goes_to_the_longer_unless_it_outlasts_the_change() {
        let eight_s = ChangeSpan { start_s: 40.0, end_s: 48.0, strength: 1.0 };
        // Heard alike in a bar layer and in its four-bar layer (same bands, same stray).
        assert!(attribution_score(1.0, 0.5, 8.0, &eight_s) > attribution_score(1.0, 0.5, 2.0, &eight_s));
        // A layer whose period outlasts the change counts for less than one that fits it.
        assert!(attribution_score(1.0, 0.5, 16.0, &eight_s) < attribution_score(1.0, 0.5, 4.0, &eight_s));
        // The period breaks near ties; it does not outweigh a clear difference in where the change
        // was heard.
        assert!(attribution_score(1.0, 0.0, 0.5, &eight_s) > attribution_score(0.6, 0.0, 8.0, &eight_s));
        // An instant (a part coming in) is outlasted by no period.
        let instant = ChangeSpan { start_s: 40.0, end_s: 40.0, strength: 1.0 };
        assert!(attribution_score(1.0, 0.0, 30.0, &instant) > attribution_score(1.0, 0.0, 4.0, &instant));
    }

    #[test]
    fn without_layers_no_change_is_given() {
        assert!(attribute(&[], &a_change_up_high(), FRAME_RATE, None, &mut Vec::new()).is_empty());
    }
}
