//! Layer stems: a cascade of repetition masks, shortest period first.
//!
//! For each distinct layer period P (shortest first), the magnitude spectrogram of what is left is
//! modelled as repeating with period P: every time-frequency bin is compared with the median of
//! the same bin up to three periods before and after (adaptive REPET's repeating model). The soft mask
//! `min(model, actual) / actual` keeps what repeats at P; that is the layer's stem, and the rest
//! is passed on to the next (longer) period. What no period claims is the residual.
//!
//! The residual is computed in the time domain as `input - sum(stems)`, so stems plus residual
//! give back the input exactly (up to the rounding of the format they are written in).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// STFT size and hop, in samples.
pub const N_FFT: usize = 2048;
pub const HOP: usize = 512;
/// Repeats on each side that the repeating model looks at.
pub const NEIGHBOURS: usize = 3;
/// Periods closer than this (relative) are one layer.
pub const SAME_PERIOD: f64 = 0.03;

/// The stems of one signal.
#[derive(Debug, Clone)]
pub struct Stems {
    /// (period in seconds, audio per channel) for each layer, shortest period first.
    pub layers: Vec<(f64, Vec<Vec<f32>>)>,
    /// What no layer claimed, per channel.
    pub residual: Vec<Vec<f32>>,
}

/// Distinct periods, shortest first, dropping ones within [`SAME_PERIOD`] of a kept one and any
/// shorter than two STFT hops (too short to model at this resolution).
pub fn distinct_periods(periods: impl IntoIterator<Item = f64>, sample_rate: u32) -> Vec<f64> {
    let min_s = 2.0 * HOP as f64 / f64::from(sample_rate);
    let mut sorted: Vec<f64> = periods.into_iter().filter(|p| p.is_finite() && *p >= min_s).collect();
    sorted.sort_by(f64::total_cmp);
    let mut out: Vec<f64> = Vec::new();
    for p in sorted {
        if out.last().is_none_or(|q| (p - q) / q > SAME_PERIOD) {
            out.push(p);
        }
    }
    out
}

struct Stft {
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    window: Vec<f64>,
}

impl Stft {
    fn new() -> Self {
        let mut planner = RealFftPlanner::<f64>::new();
        let window = (0..N_FFT)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos())
            .collect();
        Self {
            forward: planner.plan_fft_forward(N_FFT),
            inverse: planner.plan_fft_inverse(N_FFT),
            window,
        }
    }

    /// Frames covering the signal, padded by N_FFT on both sides so every sample is covered by
    /// full overlap.
    fn frames(len: usize) -> usize {
        (len + 2 * N_FFT).div_ceil(HOP)
    }

    fn analyse(&self, x: &[f64]) -> Vec<Vec<Complex<f64>>> {
        let mut buf = self.forward.make_input_vec();
        let mut out = Vec::new();
        for t in 0..Self::frames(x.len()) {
            for (i, b) in buf.iter_mut().enumerate() {
                let n = (t * HOP + i) as isize - N_FFT as isize;
                *b = if n >= 0 && (n as usize) < x.len() { x[n as usize] * self.window[i] } else { 0.0 };
            }
            let mut spec = self.forward.make_output_vec();
            let _ = self.forward.process(&mut buf, &mut spec);
            out.push(spec);
        }
        out
    }

    /// Weighted overlap-add inverse (least-squares for the Hann analysis window).
    fn synthesise(&self, spec: &[Vec<Complex<f64>>], len: usize) -> Vec<f64> {
        let total = spec.len() * HOP + N_FFT;
        let mut y = vec![0.0; total];
        let mut norm = vec![0.0; total];
        let mut buf = self.inverse.make_output_vec();
        for (t, frame) in spec.iter().enumerate() {
            let mut s = frame.clone();
            // The inverse needs real DC and Nyquist bins.
            s[0].im = 0.0;
            if let Some(last) = s.last_mut() {
                last.im = 0.0;
            }
            let _ = self.inverse.process(&mut s, &mut buf);
            for i in 0..N_FFT {
                let w = self.window[i];
                y[t * HOP + i] += buf[i] / N_FFT as f64 * w;
                norm[t * HOP + i] += w * w;
            }
        }
        (0..len).map(|n| y[n + N_FFT] / norm[n + N_FFT].max(1e-12)).collect()
    }
}

/// Splits `channels` (audio at `sample_rate`) into one stem per period plus a residual.
pub fn separate(channels: &[Vec<f32>], sample_rate: u32, periods_s: &[f64]) -> Stems {
    let len = channels.first().map_or(0, Vec::len);
    let stft = Stft::new();
    let mut remaining: Vec<Vec<f64>> = channels.iter().map(|c| c.iter().map(|&x| f64::from(if x.is_finite() { x } else { 0.0 })).collect()).collect();
    let mut layers = Vec::new();
    for &period in periods_s {
        let p = ((period * f64::from(sample_rate)) / HOP as f64).round().max(1.0) as usize;
        let specs: Vec<Vec<Vec<Complex<f64>>>> = remaining.iter().map(|c| stft.analyse(c)).collect();
        let frames = specs.first().map_or(0, Vec::len);
        if frames < 2 * p {
            continue; // fewer than two repeats: nothing to model
        }
        let bins = N_FFT / 2 + 1;
        // Magnitude of the channel mix.
        let mag: Vec<Vec<f64>> = (0..frames)
            .map(|t| (0..bins).map(|f| specs.iter().map(|s| s[t][f].norm()).sum::<f64>() / specs.len() as f64).collect())
            .collect();
        // The repeating model of bin (t, f): the median of the same bin one, two and three
        // periods before and after (a local median, as adaptive REPET does: it follows a layer
        // that changes over the piece, and a period that is not a whole number of frames).
        let mut mask = vec![vec![0.0; bins]; frames];
        let mut column = Vec::with_capacity(2 * NEIGHBOURS + 1);
        for t in 0..frames {
            for f in 0..bins {
                column.clear();
                for k in -(NEIGHBOURS as isize)..=NEIGHBOURS as isize {
                    let u = t as isize + k * p as isize;
                    if u >= 0 && (u as usize) < frames {
                        column.push(mag[u as usize][f]);
                    }
                }
                column.sort_by(f64::total_cmp);
                let median = column[column.len() / 2];
                let v = mag[t][f];
                mask[t][f] = if v > 1e-12 { median.min(v) / v } else { 0.0 };
            }
        }
        let mut stem = Vec::with_capacity(channels.len());
        for (c, spec) in specs.iter().enumerate() {
            let masked: Vec<Vec<Complex<f64>>> = spec.iter().zip(&mask).map(|(fr, m)| fr.iter().zip(m).map(|(x, g)| x * g).collect()).collect();
            let y = stft.synthesise(&masked, len);
            for (r, v) in remaining[c].iter_mut().zip(&y) {
                *r -= v;
            }
            stem.push(y);
        }
        layers.push((period, stem));
    }
    // The residual is whatever the stems do not add up to, so the sum is exact.
    let residual: Vec<Vec<f32>> = channels
        .iter()
        .enumerate()
        .map(|(c, x)| {
            (0..len)
                .map(|n| {
                    let claimed: f64 = layers.iter().map(|(_, s)| s[c][n]).sum();
                    let x = if x[n].is_finite() { f64::from(x[n]) } else { 0.0 };
                    (x - claimed) as f32
                })
                .collect()
        })
        .collect();
    Stems {
        layers: layers.into_iter().map(|(p, s)| (p, s.into_iter().map(|c| c.into_iter().map(|v| v as f32).collect()).collect())).collect(),
        residual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_residual_sum_back_to_the_input() {
        let sr = 8_000;
        let n = sr as usize * 8;
        // A click every 0.25 s over a tone that changes every second.
        let x: Vec<f32> = (0..n)
            .map(|i| {
                let click = if i % 2_000 < 40 { 0.5 } else { 0.0 };
                let f = 200.0 + 100.0 * ((i / sr as usize) % 3) as f32;
                click + 0.2 * (2.0 * std::f32::consts::PI * f * i as f32 / sr as f32).sin()
            })
            .collect();
        let stems = separate(&[x.clone()], sr, &distinct_periods([0.25, 0.255, 3.0], sr));
        assert_eq!(stems.layers.len(), 2, "0.25 and 0.255 s are one layer");
        for i in 0..n {
            let sum: f32 = stems.layers.iter().map(|(_, s)| s[0][i]).sum::<f32>() + stems.residual[0][i];
            assert!((sum - x[i]).abs() < 1e-6, "sample {i}: {sum} vs {}", x[i]);
        }
        // The clicks repeat every 0.25 s: most of their energy is in the first stem.
        let energy = |s: &[f32]| s.iter().map(|v| v * v).sum::<f32>();
        assert!(energy(&stems.layers[0].1[0]) > 0.1 * energy(&x));
    }

    #[test]
    fn periods_are_deduplicated_and_sorted() {
        assert_eq!(distinct_periods([4.0, 0.5, 4.05, 16.0, f64::NAN, 0.001], 44_100), vec![0.5, 4.0, 16.0]);
    }
}
