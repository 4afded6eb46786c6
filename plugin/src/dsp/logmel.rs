//! The log-mel front end, streaming: the exact mirror of `models/strata_models/features.py`.
//!
//! Frame `t` covers samples `[t * hop, t * hop + n_fft)` of mono audio at the model rate (no
//! centring), so a frame is emitted as soon as its last sample arrives. Each frame is the
//! periodic-Hann-windowed power spectrum `|X|² / n_fft`, through triangular HTK-mel filters, then
//! `ln(mel + floor)`. Computed in `f64` so it matches NumPy to well under the parity tolerance.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// The front end's constants (read from the model manifest).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct LogMelConfig {
    pub n_fft: usize,
    pub hop: usize,
    pub n_mels: usize,
    pub f_min: f64,
    pub f_max: f64,
    pub log_floor: f64,
}

/// Turns a stream of samples into log-mel frames.
pub struct LogMel {
    config: LogMelConfig,
    sample_rate: f64,
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    /// Sparse filterbank: for each band, the first bin and the weights from there.
    filters: Vec<(usize, Vec<f64>)>,
    /// Samples not yet consumed by a complete frame (at most n_fft - 1 + one push).
    pending: Vec<f64>,
    // Scratch, allocated once.
    fft_in: Vec<f64>,
    fft_out: Vec<realfft::num_complex::Complex<f64>>,
    fft_scratch: Vec<realfft::num_complex::Complex<f64>>,
    power: Vec<f64>,
}

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

impl LogMel {
    pub fn new(config: LogMelConfig, sample_rate: f64) -> Self {
        let n = config.n_fft;
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        let window = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let bins: Vec<f64> = (0..n / 2 + 1).map(|k| k as f64 * sample_rate / n as f64).collect();
        let edges = filter_edges_hz(&config);
        let filters = (0..config.n_mels)
            .map(|m| {
                let (l, c, r) = (edges[m], edges[m + 1], edges[m + 2]);
                let weights: Vec<f64> = bins
                    .iter()
                    .map(|&f| ((f - l) / (c - l)).min((r - f) / (r - c)).max(0.0))
                    .collect();
                let first = weights.iter().position(|&w| w > 0.0).unwrap_or(0);
                let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
                (first, weights[first..=last.max(first)].to_vec())
            })
            .collect();
        let fft_in = fft.make_input_vec();
        let fft_out = fft.make_output_vec();
        let fft_scratch = fft.make_scratch_vec();
        Self {
            power: vec![0.0; n / 2 + 1],
            pending: Vec::with_capacity(2 * n),
            config,
            sample_rate,
            fft,
            window,
            filters,
            fft_in,
            fft_out,
            fft_scratch,
        }
    }

    pub fn config(&self) -> &LogMelConfig {
        &self.config
    }

    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// Adds samples and appends every frame they complete to `frames` (n_mels values each).
    /// Non-finite samples count as silence.
    pub fn push(&mut self, samples: &[f32], frames: &mut Vec<f32>) -> usize {
        let mut made = 0;
        for &s in samples {
            self.pending.push(if s.is_finite() { f64::from(s) } else { 0.0 });
            if self.pending.len() == self.config.n_fft {
                self.frame_into(frames);
                self.pending.drain(..self.config.hop);
                made += 1;
            }
        }
        made
    }

    fn frame_into(&mut self, frames: &mut Vec<f32>) {
        let n = self.config.n_fft;
        for ((dst, &x), &w) in self.fft_in.iter_mut().zip(&self.pending).zip(&self.window) {
            *dst = x * w;
        }
        // The lengths are the planner's own, so this cannot fail.
        let _ = self
            .fft
            .process_with_scratch(&mut self.fft_in, &mut self.fft_out, &mut self.fft_scratch);
        for (p, c) in self.power.iter_mut().zip(&self.fft_out) {
            *p = c.norm_sqr() / n as f64;
        }
        for (first, weights) in &self.filters {
            let mel: f64 = weights
                .iter()
                .zip(&self.power[*first..])
                .map(|(w, p)| w * p)
                .sum();
            frames.push((mel + self.config.log_floor).ln() as f32);
        }
    }
}

/// The corners (Hz) of `config`'s triangular filters, equally spaced in mel: filter `m` rises
/// from `edges[m]` to its peak at `edges[m + 1]` and falls to `edges[m + 2]`.
fn filter_edges_hz(config: &LogMelConfig) -> Vec<f64> {
    let (lo, hi) = (hz_to_mel(config.f_min), hz_to_mel(config.f_max));
    (0..config.n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (config.n_mels + 1) as f64)).collect()
}

/// The centre frequency (Hz) of each log-mel bin of `config`: its filter's peak.
pub fn centre_hz(config: &LogMelConfig) -> Vec<f64> {
    let edges = filter_edges_hz(config);
    edges[1..=config.n_mels].to_vec()
}

/// Log-mel frames of a whole signal (offline).
pub fn logmel(config: &LogMelConfig, sample_rate: f64, audio: &[f32]) -> Vec<f32> {
    let mut lm = LogMel::new(config.clone(), sample_rate);
    let mut frames = Vec::new();
    lm.push(audio, &mut frames);
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LogMelConfig {
        LogMelConfig {
            n_fft: 512,
            hop: 320,
            n_mels: 64,
            f_min: 30.0,
            f_max: 8000.0,
            log_floor: 1e-6,
        }
    }

    #[test]
    fn frame_count_follows_the_no_centring_rule() {
        let c = config();
        assert_eq!(logmel(&c, 16_000.0, &[0.0; 511]).len(), 0);
        assert_eq!(logmel(&c, 16_000.0, &[0.0; 512]).len(), 64);
        assert_eq!(logmel(&c, 16_000.0, &[0.0; 512 + 319]).len(), 64);
        assert_eq!(logmel(&c, 16_000.0, &[0.0; 512 + 320]).len(), 128);
    }

    #[test]
    fn streaming_in_any_block_size_gives_the_same_frames() {
        let c = config();
        let audio: Vec<f32> = (0..16_000).map(|i| ((i as f32) * 0.05).sin() * 0.3).collect();
        let whole = logmel(&c, 16_000.0, &audio);
        for block in [1, 7, 320, 4096] {
            let mut lm = LogMel::new(c.clone(), 16_000.0);
            let mut frames = Vec::new();
            for chunk in audio.chunks(block) {
                lm.push(chunk, &mut frames);
            }
            assert_eq!(frames, whole, "block size {block}");
        }
    }

    #[test]
    fn a_tone_lights_the_band_holding_its_frequency() {
        let c = config();
        let audio: Vec<f32> = (0..2048)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let frames = logmel(&c, 16_000.0, &audio);
        let first = &frames[..64];
        let loudest = first
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap();
        let centre = |m: usize| {
            let (lo, hi) = (hz_to_mel(30.0), hz_to_mel(8000.0));
            mel_to_hz(lo + (hi - lo) * (m + 1) as f64 / 65.0)
        };
        assert!((centre(loudest) - 1000.0).abs() < 120.0, "band {loudest} at {} Hz", centre(loudest));
    }
}
