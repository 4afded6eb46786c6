//! Repetition periods from the history of frame embeddings.
//!
//! For every lag in range the tracker keeps the running mean cosine similarity between each frame
//! embedding (centred by a slow running mean, then unit length) and the one `lag` earlier. A layer
//! repeating with period P shows as a peak at lag P. Two resolutions keep this cheap: every 20 ms
//! frame for lags up to FINE_MAX_LAG frames, and frames pooled by COARSE_POOL for longer lags.
//! Each timescale reads the peak inside its own lag range.

/// Lags (in frames) tracked at full frame rate: 1 .. FINE_MAX_LAG.
pub const FINE_MAX_LAG: usize = 220;
/// Frames pooled into one coarse step.
pub const COARSE_POOL: usize = 5;
/// Coarse lags (in pooled steps) tracked: 1 .. COARSE_MAX_LAG (40 s at 50 frames/s).
pub const COARSE_MAX_LAG: usize = 400;
/// Time constant of the running mean used for centring, in frames.
const CENTRE_FRAMES: f32 = 500.0;

/// One resolution of the tracker.
struct LagBank {
    max_lag: usize,
    dim: usize,
    /// The last max_lag unit vectors, a ring.
    history: Vec<f32>,
    filled: usize,
    next: usize,
    /// Sum of similarities and number of terms, per lag (index lag - 1).
    sums: Vec<f64>,
    counts: Vec<u64>,
}

impl LagBank {
    fn new(max_lag: usize, dim: usize) -> Self {
        Self {
            max_lag,
            dim,
            history: vec![0.0; max_lag * dim],
            filled: 0,
            next: 0,
            sums: vec![0.0; max_lag],
            counts: vec![0; max_lag],
        }
    }

    fn push(&mut self, v: &[f32]) {
        for lag in 1..=self.filled.min(self.max_lag) {
            let slot = (self.next + self.max_lag - lag) % self.max_lag;
            let past = &self.history[slot * self.dim..(slot + 1) * self.dim];
            let dot: f32 = past.iter().zip(v).map(|(a, b)| a * b).sum();
            self.sums[lag - 1] += f64::from(dot);
            self.counts[lag - 1] += 1;
        }
        self.history[self.next * self.dim..(self.next + 1) * self.dim].copy_from_slice(v);
        self.next = (self.next + 1) % self.max_lag;
        self.filled += 1;
    }

    fn similarity(&self, lag: usize) -> Option<f64> {
        (lag >= 1 && lag <= self.max_lag && self.counts[lag - 1] > 0).then(|| self.sums[lag - 1] / self.counts[lag - 1] as f64)
    }
}

/// A period estimate for one lag range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodEstimate {
    pub period_s: f64,
    /// How much the peak stands out from the range's mean similarity, 0..1.
    pub confidence: f64,
    /// Mean similarity at the period, 0..1: how strongly the material repeats.
    pub strength: f64,
}

/// Tracks self-similarity across lags.
pub struct PeriodTracker {
    frame_rate: f64,
    mean: Vec<f32>,
    seen: u64,
    fine: LagBank,
    coarse: LagBank,
    pool: Vec<f32>,
    pooled: usize,
    scratch: Vec<f32>,
}

impl PeriodTracker {
    pub fn new(frame_rate: f64, dim: usize) -> Self {
        Self {
            frame_rate,
            mean: vec![0.0; dim],
            seen: 0,
            fine: LagBank::new(FINE_MAX_LAG, dim),
            coarse: LagBank::new(COARSE_MAX_LAG, dim),
            pool: vec![0.0; dim],
            pooled: 0,
            scratch: vec![0.0; dim],
        }
    }

    /// Adds one frame embedding.
    pub fn push(&mut self, embedding: &[f32]) {
        self.seen += 1;
        let alpha = (1.0 / self.seen as f32).max(1.0 / CENTRE_FRAMES);
        for (m, &x) in self.mean.iter_mut().zip(embedding) {
            *m += alpha * (x - *m);
        }
        unit_centred(embedding, &self.mean, &mut self.scratch);
        self.fine.push(&self.scratch);
        for (p, &x) in self.pool.iter_mut().zip(embedding) {
            *p += x / COARSE_POOL as f32;
        }
        self.pooled += 1;
        if self.pooled == COARSE_POOL {
            unit_centred(&self.pool, &self.mean, &mut self.scratch);
            self.coarse.push(&self.scratch);
            self.pool.iter_mut().for_each(|p| *p = 0.0);
            self.pooled = 0;
        }
    }

    /// The period in `[min_s, max_s]`: the first local peak reaching 85% of the range's highest
    /// (so a multiple of the period is not taken for it), refined by parabolic interpolation.
    pub fn estimate(&self, min_s: f64, max_s: f64) -> Option<PeriodEstimate> {
        let fine_max_s = FINE_MAX_LAG as f64 / self.frame_rate;
        let (bank, step_s) = if max_s <= fine_max_s {
            (&self.fine, 1.0 / self.frame_rate)
        } else {
            (&self.coarse, COARSE_POOL as f64 / self.frame_rate)
        };
        let lo = ((min_s / step_s).floor() as usize).max(1);
        let hi = ((max_s / step_s).ceil() as usize).min(bank.max_lag - 1);
        if hi <= lo + 1 {
            return None;
        }
        let sims: Vec<f64> = (lo - 1..=hi + 1).map(|l| bank.similarity(l.max(1)).unwrap_or(f64::NAN)).collect();
        if sims.iter().any(|s| !s.is_finite()) {
            return None; // not enough history yet
        }
        let at = |lag: usize| sims[lag + 1 - lo];
        let range_max = (lo..=hi).map(at).fold(f64::MIN, f64::max);
        let range_mean = (lo..=hi).map(at).sum::<f64>() / (hi - lo + 1) as f64;
        let peak = (lo..=hi)
            .find(|&l| at(l) >= at(l - 1) && at(l) >= at(l + 1) && at(l) >= 0.85 * range_max.max(1e-9) && at(l) > range_mean)?;
        let (a, b, c) = (at(peak - 1), at(peak), at(peak + 1));
        let denom = a - 2.0 * b + c;
        let offset = if denom.abs() > 1e-12 { (0.5 * (a - c) / denom).clamp(-0.5, 0.5) } else { 0.0 };
        let confidence = ((b - range_mean) / (1.0 - range_mean).max(1e-9)).clamp(0.0, 1.0);
        Some(PeriodEstimate {
            period_s: (peak as f64 + offset) * step_s,
            confidence,
            strength: b.clamp(0.0, 1.0),
        })
    }
}

fn unit_centred(x: &[f32], mean: &[f32], out: &mut [f32]) {
    let mut norm = 0.0;
    for ((o, &v), &m) in out.iter_mut().zip(x).zip(mean) {
        *o = v - m;
        norm += *o * *o;
    }
    let inv = if norm > 1e-12 { 1.0 / norm.sqrt() } else { 0.0 };
    out.iter_mut().for_each(|o| *o *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sequence of random embeddings repeating every `period` frames.
    fn periodic(period: usize, frames: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        let mut rand = move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let pattern: Vec<Vec<f32>> = (0..period).map(|_| (0..8).map(|_| rand()).collect()).collect();
        (0..frames).map(|t| pattern[t % period].iter().map(|x| x + 0.05 * rand()).collect()).collect()
    }

    #[test]
    fn finds_a_short_period_at_frame_resolution() {
        let mut t = PeriodTracker::new(50.0, 8);
        for e in periodic(25, 2000, 1) {
            t.push(&e);
        }
        let p = t.estimate(0.2, 1.0).unwrap();
        assert!((p.period_s - 0.5).abs() < 0.01, "{p:?}");
        assert!(p.strength > 0.8 && p.confidence > 0.5, "{p:?}");
    }

    #[test]
    fn finds_a_long_period_with_the_coarse_bank_and_not_its_multiple() {
        let mut t = PeriodTracker::new(50.0, 8);
        for e in periodic(400, 8000, 2) {
            t.push(&e);
        }
        let p = t.estimate(5.0, 20.0).unwrap();
        assert!((p.period_s - 8.0).abs() < 0.24, "{p:?}");
    }

    #[test]
    fn no_history_no_estimate() {
        let t = PeriodTracker::new(50.0, 8);
        assert!(t.estimate(0.2, 1.0).is_none());
    }
}
