//! The bass view, streaming: a fine spectrum of the lowest notes, for the change detector.
//!
//! The log-mel front end the encoders are trained on has a bin every 31 Hz (512 points at
//! 16 kHz), so under 160 Hz, where drones and bass lines sit, three semitones are a third of a
//! bin: a bass line moving to another key changes nothing it sees. This view takes a
//! [`BASS_N_FFT`]-point spectrum (a bin every 3.9 Hz at 16 kHz) of the same stream and keeps
//! the bins from [`BASS_MIN_HZ`] to [`BASS_MAX_HZ`], [`BINS_PER_VALUE`] adjacent bins' mean
//! power to a value, as `ln(power + floor)` like the log-mel.
//!
//! Frame `t` is made when log-mel frame `t` is, from the [`BASS_N_FFT`] samples that end where
//! that log-mel frame ends (silence before the stream starts), so the two stay in lockstep
//! whatever the block sizes. Its window is longer, so its middle lies [`BassSpectrum::lag_frames`]
//! frames before the log-mel frame's: bass frame `t + lag` is heard around log-mel frame `t`.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Points of the bass view's spectrum: 256 ms at 16 kHz, a bin every 3.9 Hz.
pub const BASS_N_FFT: usize = 4096;
/// The lowest frequency kept (Hz): the log-mel front end's own lowest.
pub const BASS_MIN_HZ: f64 = 30.0;
/// The highest frequency kept (Hz): above it the log-mel bins are narrow enough to tell a few
/// semitones apart (at 250 Hz three semitones are 47 Hz, a bin and a half).
pub const BASS_MAX_HZ: f64 = 250.0;

/// Adjacent FFT bins pooled into one value (7.8 Hz at 16 kHz): on the validation seeds 60-79,
/// change F1 -0.006 at 0.5 s, +0.004 at 3 s and -0.002 for the right layer against single bins
/// (noise), for half the bass view's cost in time and memory (an hour of it is 20 MB so).
pub const BINS_PER_VALUE: usize = 2;

/// Turns a stream of samples (mono, at the model rate) into bass-view frames.
pub struct BassSpectrum {
    hop: usize,
    /// The first and one past the last FFT bin kept, a whole number of [`BINS_PER_VALUE`].
    bins: std::ops::Range<usize>,
    lag_frames: usize,
    log_floor: f64,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// The last samples, [`BASS_N_FFT`] once a frame is due.
    pending: Vec<f32>,
    // Scratch, allocated once.
    fft_in: Vec<f32>,
    fft_out: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
}

impl BassSpectrum {
    /// A bass view in lockstep with a log-mel front end of `frame_len` points and `hop` samples
    /// at `sample_rate` Hz, with the front end's `log_floor`.
    pub fn new(sample_rate: f64, frame_len: usize, hop: usize, log_floor: f64) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(BASS_N_FFT);
        let window = (0..BASS_N_FFT)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / BASS_N_FFT as f64).cos()) as f32)
            .collect();
        let hz_per_bin = sample_rate / BASS_N_FFT as f64;
        let first = (BASS_MIN_HZ / hz_per_bin).ceil() as usize;
        let last = ((BASS_MAX_HZ / hz_per_bin).floor() as usize).min(BASS_N_FFT / 2);
        let values = (last + 1).saturating_sub(first) / BINS_PER_VALUE;
        let lead = BASS_N_FFT.saturating_sub(frame_len);
        let mut pending = Vec::with_capacity(BASS_N_FFT + hop);
        pending.resize(lead, 0.0);
        Self {
            hop: hop.max(1),
            bins: first..first + values * BINS_PER_VALUE,
            lag_frames: ((lead as f64 / 2.0) / hop.max(1) as f64).round() as usize,
            log_floor,
            fft_in: fft.make_input_vec(),
            fft_out: fft.make_output_vec(),
            fft_scratch: fft.make_scratch_vec(),
            fft,
            window,
            pending,
        }
    }

    /// Values per frame.
    pub fn bins(&self) -> usize {
        self.bins.len() / BINS_PER_VALUE
    }

    /// The frames by which this view's window middle trails the log-mel frame made with it.
    pub fn lag_frames(&self) -> usize {
        self.lag_frames
    }

    /// The centre frequency (Hz) of each value of a frame, at `sample_rate`.
    pub fn bin_hz(&self, sample_rate: f64) -> Vec<f64> {
        let middle = (BINS_PER_VALUE - 1) as f64 / 2.0;
        self.bins.clone().step_by(BINS_PER_VALUE).map(|k| (k as f64 + middle) * sample_rate / BASS_N_FFT as f64).collect()
    }

    /// Adds samples and appends every frame they complete to `frames` ([`Self::bins`] values
    /// each); returns how many. Non-finite samples count as silence.
    pub fn push(&mut self, samples: &[f32], frames: &mut Vec<f32>) -> usize {
        let mut made = 0;
        for &s in samples {
            self.pending.push(if s.is_finite() { s } else { 0.0 });
            if self.pending.len() == BASS_N_FFT {
                self.frame_into(frames);
                self.pending.drain(..self.hop);
                made += 1;
            }
        }
        made
    }

    fn frame_into(&mut self, frames: &mut Vec<f32>) {
        for ((dst, &x), &w) in self.fft_in.iter_mut().zip(&self.pending).zip(&self.window) {
            *dst = x * w;
        }
        // The lengths are the planner's own, so this cannot fail.
        let _ = self.fft.process_with_scratch(&mut self.fft_in, &mut self.fft_out, &mut self.fft_scratch);
        let scale = 1.0 / (BASS_N_FFT * BINS_PER_VALUE) as f64;
        frames.extend(self.fft_out[self.bins.clone()].chunks_exact(BINS_PER_VALUE).map(|bins| {
            let power: f64 = bins.iter().map(|c| f64::from(c.norm_sqr())).sum();
            (power * scale + self.log_floor).ln() as f32
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::logmel::{LogMel, LogMelConfig};

    const RATE: f64 = 16_000.0;

    fn logmel_config() -> LogMelConfig {
        LogMelConfig { n_fft: 512, hop: 320, n_mels: 64, f_min: 30.0, f_max: 8000.0, log_floor: 1e-6 }
    }

    fn bass() -> BassSpectrum {
        BassSpectrum::new(RATE, 512, 320, 1e-6)
    }

    fn tone(hz: f64, samples: usize) -> Vec<f32> {
        (0..samples).map(|i| (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / RATE).sin()) as f32).collect()
    }

    #[test]
    fn frames_come_in_lockstep_with_the_log_mel() {
        let audio = tone(55.0, 16_000);
        for block in [1, 100, 320, 5000] {
            let (mut lm, mut b) = (LogMel::new(logmel_config(), RATE), bass());
            let (mut mel, mut low) = (Vec::new(), Vec::new());
            for chunk in audio.chunks(block) {
                let made = lm.push(chunk, &mut mel);
                assert_eq!(b.push(chunk, &mut low), made, "block size {block}");
            }
            assert_eq!(mel.len() / 64, low.len() / b.bins());
        }
    }

    #[test]
    fn it_keeps_30_to_250_hz_and_trails_by_the_half_window() {
        let b = bass();
        let hz = b.bin_hz(RATE);
        assert_eq!(hz.len(), b.bins());
        // Values 7.8 Hz apart, the first and last within a value of the range's edges.
        assert!(hz[0] >= BASS_MIN_HZ && hz[0] < BASS_MIN_HZ + 8.0, "{}", hz[0]);
        let top = *hz.last().unwrap();
        assert!(top <= BASS_MAX_HZ && top > BASS_MAX_HZ - 8.0, "{top}");
        assert!(hz.windows(2).all(|w| (w[1] - w[0] - 7.8125).abs() < 1e-9));
        // (4096 - 512) / 2 samples is 5.6 hops.
        assert_eq!(b.lag_frames(), 6);
    }

    #[test]
    fn three_semitones_on_a_low_note_move_its_peak() {
        // 55 Hz and 65.4 Hz fall in the same log-mel bin, but not in the same bass bin.
        let peak = |hz: f64| {
            let mut b = bass();
            let mut frames = Vec::new();
            b.push(&tone(hz, 8192), &mut frames);
            let last = &frames[frames.len() - b.bins()..];
            let loudest = last.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).map(|(i, _)| i).unwrap();
            b.bin_hz(RATE)[loudest]
        };
        let (a, c) = (peak(55.0), peak(55.0 * 2f64.powf(3.0 / 12.0)));
        assert!((a - 55.0).abs() < 4.0 && (c - 65.4).abs() < 4.0, "peaks at {a} and {c} Hz");
    }
}
