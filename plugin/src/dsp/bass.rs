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
//!
//! Nothing above 250 Hz is kept, so the stream is first low-passed and decimated
//! ([`MAX_DECIMATION`], to 2 kHz at 16 kHz) and the spectrum taken of the same 256 ms at that
//! rate: a 512-point FFT where a 4096-point one took a twentieth of an hour's analysis, with the
//! same bins at the same frequencies and the same scale (its values lie within 0.15 dB of the
//! full-rate spectrum's in the kept band wherever they are within 30 dB of a loud tone; further
//! down a tone's skirt, the low-pass's 2 ms delay moves the leakage by up to half a dB).

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

/// The most the stream is decimated by before the spectrum: 8, from 16 kHz to 2 kHz, whose
/// Nyquist frequency is four times [`BASS_MAX_HZ`]. Smaller where the hop, the log-mel frame or
/// the rate do not allow it (see [`decimation_for`]).
pub const MAX_DECIMATION: usize = 8;

/// Taps of the decimating low-pass per unit of decimation (8 × 8 + 1 = 65 at 16 kHz): a
/// Hann-windowed sinc whose stop band (from about 1.4 kHz at 16 kHz, 44 dB down) covers every
/// frequency that folds onto the kept band.
const TAPS_PER_DECIMATION: usize = 8;

/// Turns a stream of samples (mono, at the model rate) into bass-view frames.
pub struct BassSpectrum {
    hop: usize,
    /// The first and one past the last FFT bin kept, a whole number of [`BINS_PER_VALUE`].
    bins: std::ops::Range<usize>,
    lag_frames: usize,
    log_floor: f64,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// Input samples per decimated sample.
    decimation: usize,
    /// The decimating low-pass, newest input last.
    taps: Vec<f32>,
    /// The last input samples, at least `taps.len() - 1` of them (the low-pass's memory).
    recent: Vec<f32>,
    /// Input samples pushed so far.
    pushed: u64,
    /// Input samples in the log-mel's first frame: frames are due after it and every hop.
    frame_len: usize,
    /// The last decimated samples, at least the FFT's length of them once a frame is due.
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
        let hop = hop.max(1);
        let decimation = decimation_for(sample_rate, frame_len, hop);
        let n_fft = BASS_N_FFT / decimation;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let window = (0..n_fft)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos()) as f32)
            .collect();
        let taps = low_pass(decimation);
        // The low-pass delays what it passes by half its length (before the padding).
        let delay = (taps.len() - 1) as f64 / 2.0;
        let taps = padded_to_lanes(taps);
        let hz_per_bin = sample_rate / BASS_N_FFT as f64;
        let first = (BASS_MIN_HZ / hz_per_bin).ceil() as usize;
        let last = ((BASS_MAX_HZ / hz_per_bin).floor() as usize).min(n_fft / 2);
        let values = (last + 1).saturating_sub(first) / BINS_PER_VALUE;
        let lead = BASS_N_FFT.saturating_sub(frame_len);
        // It reaches `RECENT_CAPACITY` less one, plus up to a decimation's samples, before a drop.
        let mut recent = Vec::with_capacity(RECENT_CAPACITY.max(taps.len()) + decimation);
        recent.resize(taps.len() - 1, 0.0);
        // Dropped to `n_fft` at a frame once it holds twice that: at most a hop more than that.
        let mut pending = Vec::with_capacity(2 * n_fft + hop / decimation);
        pending.resize(lead / decimation, 0.0);
        Self {
            hop,
            bins: first..first + values * BINS_PER_VALUE,
            lag_frames: ((lead as f64 / 2.0 + delay) / hop as f64).round() as usize,
            log_floor,
            fft_in: fft.make_input_vec(),
            fft_out: fft.make_output_vec(),
            fft_scratch: fft.make_scratch_vec(),
            fft,
            window,
            decimation,
            taps,
            recent,
            pushed: 0,
            frame_len,
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
        let mut rest = samples;
        while !rest.is_empty() {
            // Up to the next decimated sample at once: a test per sample was most of the cost.
            let to_next = self.decimation - (self.pushed % self.decimation as u64) as usize;
            let (now, later) = rest.split_at(to_next.min(rest.len()));
            self.recent.extend(now.iter().map(|&s| if s.is_finite() { s } else { 0.0 }));
            self.pushed += now.len() as u64;
            rest = later;
            if now.len() < to_next {
                break;
            }
            let memory = &self.recent[self.recent.len() - self.taps.len()..];
            self.pending.push(dot(memory, &self.taps));
            if self.recent.len() >= RECENT_CAPACITY {
                self.recent.drain(..self.recent.len() + 1 - self.taps.len());
            }
            let due = self.pushed >= self.frame_len as u64 && (self.pushed - self.frame_len as u64).is_multiple_of(self.hop as u64);
            if due {
                self.frame_into(frames);
                made += 1;
            }
        }
        made
    }

    fn frame_into(&mut self, frames: &mut Vec<f32>) {
        let n_fft = self.fft_in.len();
        // Only the last `n_fft` are kept, dropped a frame's worth at a time rather than every hop.
        if self.pending.len() >= 2 * n_fft {
            self.pending.drain(..self.pending.len() - n_fft);
        }
        let newest = &self.pending[self.pending.len() - n_fft..];
        for ((dst, &x), &w) in self.fft_in.iter_mut().zip(newest).zip(&self.window) {
            *dst = x * w;
        }
        // The lengths are the planner's own, so this cannot fail.
        let _ = self.fft.process_with_scratch(&mut self.fft_in, &mut self.fft_out, &mut self.fft_scratch);
        // A sine's peak is the decimation times lower in the shorter spectrum, its power the
        // square: scaled back, the values are the full-rate spectrum's.
        let d = self.decimation as f64;
        let scale = d * d / (BASS_N_FFT * BINS_PER_VALUE) as f64;
        frames.extend(self.fft_out[self.bins.clone()].chunks_exact(BINS_PER_VALUE).map(|bins| {
            let power: f64 = bins.iter().map(|c| f64::from(c.norm_sqr())).sum();
            (power * scale + self.log_floor).ln() as f32
        }));
    }
}

/// Lanes of the low-pass's sums: eight running sums where one waited on each addition before it.
const LANES: usize = 8;

/// `taps` with zeros in front (the oldest end) to a whole number of [`LANES`]: the same filter.
fn padded_to_lanes(taps: Vec<f32>) -> Vec<f32> {
    let pad = taps.len().next_multiple_of(LANES) - taps.len();
    std::iter::repeat_n(0.0, pad).chain(taps).collect()
}

/// The dot product of two slices of a whole number of [`LANES`], summed lane by lane.
fn dot(x: &[f32], h: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; LANES];
    for (xs, hs) in x.chunks_exact(LANES).zip(h.chunks_exact(LANES)) {
        for ((lane, x), h) in lanes.iter_mut().zip(xs).zip(hs) {
            *lane += x * h;
        }
    }
    lanes.iter().sum()
}

/// Input samples kept for the low-pass before the oldest are dropped (they are dropped in one go,
/// not one at a time).
const RECENT_CAPACITY: usize = 1024;

/// The decimation for a stream at `sample_rate` whose frames are `frame_len` samples long and
/// `hop` apart: the largest power of two up to [`MAX_DECIMATION`] that divides both (so frames
/// end on a decimated sample) and keeps the decimated Nyquist frequency at least four times
/// [`BASS_MAX_HZ`] and the spectrum at least 64 points.
fn decimation_for(sample_rate: f64, frame_len: usize, hop: usize) -> usize {
    let mut d = MAX_DECIMATION;
    while d > 1
        && (!frame_len.is_multiple_of(d) || !hop.is_multiple_of(d) || sample_rate / d as f64 / 2.0 < 4.0 * BASS_MAX_HZ || BASS_N_FFT / d < 64)
    {
        d /= 2;
    }
    d
}

/// The low-pass before decimating by `decimation`: a Hann-windowed sinc cut at the decimated
/// Nyquist frequency, [`TAPS_PER_DECIMATION`] × `decimation` + 1 taps, unit gain at 0 Hz. At
/// a decimation of 1 it is the identity.
fn low_pass(decimation: usize) -> Vec<f32> {
    if decimation == 1 {
        return vec![1.0];
    }
    let n = TAPS_PER_DECIMATION * decimation + 1;
    let middle = (n - 1) as f64 / 2.0;
    let cutoff = 0.5 / decimation as f64; // cycles per input sample
    let taps: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - middle;
            let sinc = if x == 0.0 { 1.0 } else { (2.0 * std::f64::consts::PI * cutoff * x).sin() / (std::f64::consts::PI * x) / (2.0 * cutoff) };
            let hann = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos();
            sinc * hann
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter().map(|t| (t / sum) as f32).collect()
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

    /// The full-rate spectrum the decimated one stands for: the last [`BASS_N_FFT`] samples
    /// before `end` (silence before the start), Hann-windowed, pooled and scaled like a frame.
    fn full_rate_frame(b: &BassSpectrum, audio: &[f32], end: usize) -> Vec<f32> {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(BASS_N_FFT);
        let mut input: Vec<f64> = (0..BASS_N_FFT)
            .map(|i| {
                let at = (end + i).checked_sub(BASS_N_FFT);
                let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / BASS_N_FFT as f64).cos();
                at.map_or(0.0, |at| f64::from(audio[at]) * w)
            })
            .collect();
        let mut spectrum = fft.make_output_vec();
        fft.process(&mut input, &mut spectrum).unwrap();
        let scale = 1.0 / (BASS_N_FFT * BINS_PER_VALUE) as f64;
        spectrum[b.bins.clone()]
            .chunks_exact(BINS_PER_VALUE)
            .map(|c| (c.iter().map(|z| z.norm_sqr()).sum::<f64>() * scale + 1e-6).ln() as f32)
            .collect()
    }

    #[test]
    fn the_decimated_spectrum_is_the_full_rate_one_in_the_kept_band() {
        let b = bass();
        assert_eq!(b.decimation, MAX_DECIMATION);
        // Bass notes across the band, a tone above it that must not fold down, and quiet noise.
        let mut noise = 12345_u32;
        let audio: Vec<f32> = (0..16_000)
            .map(|i| {
                let t = i as f64 / RATE;
                let tones: f64 = [41.2, 98.0, 146.8, 233.1].iter().map(|hz| 0.2 * (2.0 * std::f64::consts::PI * hz * t).sin()).sum();
                let above = 0.5 * (2.0 * std::f64::consts::PI * 1_850.0 * t).sin();
                noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (tones + above + 1e-3 * (f64::from(noise >> 8) / f64::from(1_u32 << 24) - 0.5)) as f32
            })
            .collect();
        let mut b = bass();
        let mut frames = Vec::new();
        b.push(&audio, &mut frames);
        let bins = b.bins();
        let mut loud = 0;
        for (t, frame) in frames.chunks_exact(bins).enumerate().skip(20) {
            let reference = full_rate_frame(&b, &audio, 512 + t * 320);
            for (k, (&got, &want)) in frame.iter().zip(&reference).enumerate() {
                // In dB. Down in the tones' skirts (under -30 dB here) the low-pass's 2 ms delay
                // moves the window enough to change the leakage by up to half a dB.
                let (got_db, want_db) = (f64::from(got) * 10.0 / std::f64::consts::LN_10, f64::from(want) * 10.0 / std::f64::consts::LN_10);
                if want_db > -30.0 {
                    loud += 1;
                    assert!((got_db - want_db).abs() < 0.15, "frame {t}, value {k}: {got_db:.2} dB, full rate {want_db:.2} dB");
                }
            }
        }
        assert!(loud > 100, "only {loud} loud values compared");
    }

    #[test]
    fn block_sizes_do_not_change_the_values() {
        let audio = tone(73.4, 12_000);
        let whole = {
            let mut b = bass();
            let mut f = Vec::new();
            b.push(&audio, &mut f);
            f
        };
        for block in [1, 7, 320, 999] {
            let mut b = bass();
            let mut f = Vec::new();
            for chunk in audio.chunks(block) {
                b.push(chunk, &mut f);
            }
            assert_eq!(f, whole, "block size {block}");
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
