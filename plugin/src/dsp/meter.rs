//! What the worker can truthfully say about the input before any model runs: its level, its
//! health (non-finite samples, DC offset, silence), and how fast samples arrive.

/// Below this absolute value a sample counts as silence: -100 dBFS.
pub const SILENCE_THRESHOLD: f32 = 1.0e-5;
/// The level reported for digital silence, in dBFS (instead of minus infinity).
pub const FLOOR_DBFS: f32 = -120.0;

/// Accumulates statistics over the samples seen since the last [`InputMeter::take_reading`].
#[derive(Debug, Clone)]
pub struct InputMeter {
    sample_rate_hz: f32,
    // Over the current reading interval:
    sum_squares: f64,
    sum: f64,
    peak: f32,
    finite_count: u64,
    // Over the whole session:
    total_samples: u64,
    total_non_finite: u64,
    /// Largest finite absolute value seen this session.
    session_peak: f32,
    /// Samples since the last one above [`SILENCE_THRESHOLD`].
    silent_run: u64,
}

/// One reading of the meter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterReading {
    /// RMS level of the interval's finite samples, in dBFS (full-scale sine = -3 dBFS).
    pub rms_dbfs: f32,
    /// Peak absolute value of the interval's finite samples, in dBFS.
    pub peak_dbfs: f32,
    /// Mean of the interval's finite samples (a DC offset shows here).
    pub dc_offset: f32,
    /// Samples the interval covered.
    pub interval_samples: u64,
    /// Samples seen this session.
    pub total_samples: u64,
    /// NaN or infinite samples seen this session. They are measured as silence.
    pub non_finite_samples: u64,
    /// Length of the current run of silence, in seconds.
    pub silent_seconds: f32,
    /// Peak absolute value of all finite samples this session, in dBFS.
    pub session_peak_dbfs: f32,
}

impl InputMeter {
    pub fn new(sample_rate_hz: f32) -> Self {
        Self {
            sample_rate_hz: sample_rate_hz.max(1.0),
            sum_squares: 0.0,
            sum: 0.0,
            peak: 0.0,
            finite_count: 0,
            total_samples: 0,
            total_non_finite: 0,
            session_peak: 0.0,
            silent_run: 0,
        }
    }

    /// Adds samples in arrival order.
    pub fn add(&mut self, samples: &[f32]) {
        for &x in samples {
            self.total_samples += 1;
            if !x.is_finite() {
                self.total_non_finite += 1;
                self.silent_run += 1;
                continue;
            }
            let a = x.abs();
            self.finite_count += 1;
            self.sum += f64::from(x);
            self.sum_squares += f64::from(x) * f64::from(x);
            if a > self.peak {
                self.peak = a;
                if a > self.session_peak {
                    self.session_peak = a;
                }
            }
            if a < SILENCE_THRESHOLD {
                self.silent_run += 1;
            } else {
                self.silent_run = 0;
            }
        }
    }

    /// Returns the reading for the interval since the last call, and starts a new interval.
    pub fn take_reading(&mut self) -> MeterReading {
        let n = self.finite_count.max(1) as f64;
        let reading = MeterReading {
            rms_dbfs: to_dbfs((self.sum_squares / n).sqrt() as f32),
            peak_dbfs: to_dbfs(self.peak),
            dc_offset: (self.sum / n) as f32,
            interval_samples: self.finite_count,
            total_samples: self.total_samples,
            non_finite_samples: self.total_non_finite,
            silent_seconds: self.silent_run as f32 / self.sample_rate_hz,
            session_peak_dbfs: to_dbfs(self.session_peak),
        };
        self.sum_squares = 0.0;
        self.sum = 0.0;
        self.peak = 0.0;
        self.finite_count = 0;
        reading
    }
}

/// Converts a linear amplitude to dBFS, floored at [`FLOOR_DBFS`].
pub fn to_dbfs(amplitude: f32) -> f32 {
    if amplitude > 0.0 {
        (20.0 * amplitude.log10()).max(FLOOR_DBFS)
    } else {
        FLOOR_DBFS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_sine_reads_minus_three_dbfs() {
        let mut m = InputMeter::new(48_000.0);
        let sine: Vec<f32> = (0..48_000)
            .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 48_000.0).sin())
            .collect();
        m.add(&sine);
        let r = m.take_reading();
        assert!((r.rms_dbfs + 3.01).abs() < 0.05, "{r:?}");
        assert!(r.peak_dbfs.abs() < 0.01, "{r:?}");
        assert!(r.dc_offset.abs() < 1e-3);
        assert_eq!(r.silent_seconds, 0.0);
    }

    #[test]
    fn nan_and_inf_are_counted_and_do_not_poison_the_level() {
        let mut m = InputMeter::new(10.0);
        m.add(&[0.5, f32::NAN, f32::INFINITY, -0.5, f32::NEG_INFINITY]);
        let r = m.take_reading();
        assert_eq!(r.non_finite_samples, 3);
        assert!((r.rms_dbfs - to_dbfs(0.5)).abs() < 1e-4);
        assert!(r.rms_dbfs.is_finite() && r.peak_dbfs.is_finite());
    }

    #[test]
    fn silence_is_timed_and_reads_the_floor() {
        let mut m = InputMeter::new(100.0);
        m.add(&[0.3]);
        m.add(&vec![0.0; 250]);
        let r = m.take_reading();
        assert!((r.silent_seconds - 2.5).abs() < 1e-6);
        let r = {
            m.add(&[0.0; 10]);
            m.take_reading()
        };
        assert_eq!(r.rms_dbfs, FLOOR_DBFS);
        assert_eq!(r.peak_dbfs, FLOOR_DBFS);
    }

    #[test]
    fn dc_and_denormals_are_measured_plainly() {
        let mut m = InputMeter::new(10.0);
        m.add(&[0.25; 100]);
        let r = m.take_reading();
        assert!((r.dc_offset - 0.25).abs() < 1e-6);
        assert!((r.session_peak_dbfs - to_dbfs(0.25)).abs() < 1e-4);
        m.add(&[f32::MIN_POSITIVE / 4.0; 100]);
        let r = m.take_reading();
        assert_eq!(r.non_finite_samples, 0);
        assert_eq!(r.rms_dbfs, FLOOR_DBFS);
    }
}
