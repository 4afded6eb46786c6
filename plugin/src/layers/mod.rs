//! Pattern layers: per timescale, which pattern plays (token), how often it repeats (period),
//! how strongly, and when it changes; the layers the music is built from ([`patterns`]); and
//! `strata.json`, the stable output format.

pub mod attribution;
pub mod edges;
pub mod heads;
pub mod novelty;
pub mod patterns;

pub use patterns::{ChangeSpan, Pattern, Span};

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::inference::models::ChangeDetectionSpec;

/// The `strata.json` format version (2: pattern layers, changes as stretches).
pub const FORMAT_VERSION: u32 = 2;

/// One step of one layer, as the editor receives it live.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerFrame {
    pub level: usize,
    /// End of the step's window, seconds from the start of the input.
    pub time_s: f64,
    pub token: u8,
    /// Surprise as a robust z-score against the layer's recent past (0 until enough past).
    pub surprise: f32,
    /// A change confirmed at this step (it is decided one step late, once the peak is known):
    /// its time in seconds and its strength.
    pub change: Option<(f64, f32)>,
    /// Where the host's song was at `time_s` (seconds), when it was playing and said so.
    pub song_s: Option<f64>,
}

/// Robust, causal change detection on a layer's surprise: the same rule as
/// `models/strata_models/evaluate.py`'s `detect_changes`, so its figures are this code's.
///
/// It keeps only the surprises its window needs and the last two z-scores, so a live session
/// of any length holds the same few hundred bytes; steps are still counted from the first.
#[derive(Debug, Clone)]
pub struct ChangeDetector {
    spec: ChangeDetectionSpec,
    /// The last `spec.surprise_history` surprises.
    surprises: VecDeque<f64>,
    /// Steps pushed so far.
    steps: usize,
    /// The z-scores of the two newest steps (`None` before they exist).
    last_z: [Option<f64>; 2],
    /// Scratch for the medians.
    scratch: Vec<f64>,
}

impl ChangeDetector {
    pub fn new(spec: ChangeDetectionSpec) -> Self {
        Self {
            surprises: VecDeque::with_capacity(spec.surprise_history + 1),
            scratch: Vec::with_capacity(spec.surprise_history),
            spec,
            steps: 0,
            last_z: [None, None],
        }
    }

    /// Adds step k's surprise; returns its z-score, and the index of a step now confirmed as a
    /// change (a peak above the threshold: higher than the step before, not lower than after).
    pub fn push(&mut self, surprise: f64) -> (f64, Option<usize>) {
        let k = self.steps;
        let z = if self.surprises.len() >= self.spec.min_history {
            self.scratch.clear();
            self.scratch.extend(self.surprises.iter());
            let med = median(&mut self.scratch);
            self.scratch.clear();
            self.scratch.extend(self.surprises.iter().map(|s| (s - med).abs()));
            let mad = median(&mut self.scratch) * 1.4826 + 1e-3;
            (surprise - med) / mad
        } else {
            0.0
        };
        self.surprises.push_back(surprise);
        if self.surprises.len() > self.spec.surprise_history {
            self.surprises.pop_front();
        }
        self.steps += 1;
        // Step k-1 is decided now that its successor is known.
        let [before, previous] = self.last_z;
        let confirmed = previous.filter(|&p| self.is_peak(p, before, Some(z))).map(|_| k - 1);
        self.last_z = [previous, Some(z)];
        (z, confirmed)
    }

    /// At the end of the stream: the last step, if it is a change (it has no successor).
    pub fn finish(&self) -> Option<usize> {
        let [before, last] = self.last_z;
        last.filter(|&z| self.is_peak(z, before, None)).map(|_| self.steps - 1)
    }

    fn is_peak(&self, z: f64, before: Option<f64>, next: Option<f64>) -> bool {
        z > self.spec.surprise_z && before.is_none_or(|b| z > b) && next.is_none_or(|n| z >= n)
    }

    pub fn threshold(&self) -> f64 {
        self.spec.surprise_z
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// `strata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub version: u32,
    pub source: String,
    pub sample_rate: u32,
    pub duration_s: f64,
    pub tempo_bpm: Option<f64>,
    pub backend: String,
    pub models: String,
    /// Per timescale (lane), shortest first.
    pub layers: Vec<Layer>,
    /// Upper edges (Hz) of the spectral bands of every pattern's `profile`, lowest first.
    #[serde(default)]
    pub profile_bands_hz: Vec<f64>,
    /// The layers the music is built from, shortest period first.
    #[serde(default)]
    pub patterns: Vec<Pattern>,
}

impl Analysis {
    /// The indices of `layers`, longest timescale first: the order the picture draws the lanes
    /// in, top to bottom, and the JAMS `multi_segment` annotation numbers its levels in.
    pub fn lanes_longest_first(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.layers.len()).collect();
        order.sort_by(|&a, &b| self.layers[b].scale_s.total_cmp(&self.layers[a].scale_s));
        order
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub scale_s: f64,
    pub hop_s: f64,
    pub period_s: Option<f64>,
    pub period_confidence: f64,
    pub strength: f64,
    /// The period in beats and bars, when the tempo is known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub period_beats: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub period_bars: Option<f64>,
    pub frames: Frames,
    pub segments: Vec<Segment>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Frames {
    pub time_s: Vec<f64>,
    pub token: Vec<u8>,
    pub surprise: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start_s: f64,
    pub end_s: f64,
    pub token: u8,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// When the change starts (version 1: the only time given).
    pub time_s: f64,
    pub strength: f64,
    /// The changed stretch (version 2).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub end_s: Option<f64>,
}

impl Change {
    /// A change at one instant.
    pub fn at(time_s: f64, strength: f64) -> Self {
        Self { time_s, strength, start_s: None, end_s: None }
    }

    /// A changed stretch.
    pub fn stretch(c: &ChangeSpan) -> Self {
        Self { time_s: c.start_s, strength: c.strength, start_s: Some(c.start_s), end_s: Some(c.end_s) }
    }
}

/// Added to a pattern layer's change when its lane's surprise peaks at its start.
pub const SURPRISE_AGREEMENT_BONUS: f64 = 0.25;

/// Letter labels in order of first appearance: A, B, ..., Z, AA, AB, ...
pub fn label(index: usize) -> String {
    let mut n = index;
    let mut s = String::new();
    loop {
        s.insert(0, (b'A' + (n % 26) as u8) as char);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s
}

/// Steps a token must hold to count as a segment of its own (shorter runs are absorbed into the
/// segment before them): tokens flicker at boundaries, segments should not.
pub const MIN_SEGMENT_STEPS: usize = 3;

/// Segments (runs of one token) of a layer. Step k's window ends at `times[k]`; a segment spans
/// from the end of its first step's hop to the end of its last step.
pub fn segments(times: &[f64], tokens: &[u8], hop_s: f64) -> Vec<Segment> {
    let mut runs: Vec<(usize, usize, u8)> = Vec::new(); // [start, end) step indices
    for (k, &t) in tokens.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if run.2 == t => run.1 = k + 1,
            _ => runs.push((k, k + 1, t)),
        }
    }
    // Absorb short runs into their predecessor, then merge equal neighbours.
    let mut merged: Vec<(usize, usize, u8)> = Vec::new();
    for run in runs {
        match merged.last_mut() {
            Some(prev) if run.1 - run.0 < MIN_SEGMENT_STEPS || prev.2 == run.2 => prev.1 = run.1,
            _ => merged.push(run),
        }
    }
    let mut order: Vec<u8> = Vec::new();
    merged
        .into_iter()
        .map(|(a, b, token)| {
            let index = order.iter().position(|&t| t == token).unwrap_or_else(|| {
                order.push(token);
                order.len() - 1
            });
            Segment {
                start_s: (times[a] - hop_s).max(0.0),
                end_s: times[b - 1],
                token,
                label: label(index),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_count_like_spreadsheet_columns() {
        assert_eq!(label(0), "A");
        assert_eq!(label(25), "Z");
        assert_eq!(label(26), "AA");
        assert_eq!(label(27), "AB");
    }

    #[test]
    fn segments_absorb_flicker_and_label_repeats_alike() {
        let tokens = [5, 5, 5, 5, 9, 5, 5, 7, 7, 7, 7, 5, 5, 5];
        let times: Vec<f64> = (1..=tokens.len()).map(|k| k as f64).collect();
        let segs = segments(&times, &tokens, 1.0);
        let labels: Vec<&str> = segs.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["A", "B", "A"]);
        assert_eq!(segs[0].start_s, 0.0);
        assert_eq!(segs[0].end_s, 7.0);
        assert_eq!(segs[1].start_s, 7.0);
        assert_eq!(segs[2].end_s, 14.0);
    }

    #[test]
    fn a_jump_in_surprise_is_a_change_and_noise_is_not() {
        let spec = ChangeDetectionSpec {
            surprise_history: 16,
            surprise_z: 6.0,
            min_history: 6,
            merge_window_s: 1.0,
        };
        let mut d = ChangeDetector::new(spec);
        let mut changes = Vec::new();
        for k in 0..60 {
            let s = if k == 40 { 5.0 } else { 0.5 + 0.01 * ((k * 7) % 5) as f64 };
            if let (_, Some(c)) = d.push(s) {
                changes.push(c);
            }
        }
        changes.extend(d.finish());
        assert_eq!(changes, vec![40]);
    }
}
