//! Streaming resampling from the host's rate to the model's (rubato's FFT resampler).
//!
//! Input is cut into fixed chunks whatever block sizes arrive, so the output does not depend on
//! how the stream was split: streaming a file in blocks of 1, 64 or 4096 gives exactly the
//! samples that resampling it whole gives. The resampler's delay is removed, so output sample
//! `n` is at time `n / output_rate` like input sample `n` is at `n / input_rate`.

use rubato::{FftFixedIn, Resampler};

/// Input samples per resampler chunk.
const CHUNK_IN: usize = 1024;

/// Errors a resampler can raise.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample from {input_hz} Hz to {output_hz} Hz: {reason}")]
    Construction { input_hz: u32, output_hz: u32, reason: String },
    #[error("resampling failed: {0}")]
    Process(String),
}

/// A mono streaming resampler (or a pass-through when the rates are equal).
pub struct StreamResampler {
    inner: Option<FftFixedIn<f32>>,
    input_hz: u32,
    output_hz: u32,
    pending: Vec<f32>,
    out_buf: Vec<Vec<f32>>,
    /// Output samples still to drop (the resampler's delay).
    to_skip: usize,
    consumed: u64,
    produced: u64,
}

impl StreamResampler {
    pub fn new(input_hz: u32, output_hz: u32) -> Result<Self, ResampleError> {
        if input_hz == 0 || output_hz == 0 {
            return Err(ResampleError::Construction {
                input_hz,
                output_hz,
                reason: "a rate of zero".to_owned(),
            });
        }
        let inner = if input_hz == output_hz {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(input_hz as usize, output_hz as usize, CHUNK_IN, 2, 1).map_err(|e| {
                    ResampleError::Construction {
                        input_hz,
                        output_hz,
                        reason: e.to_string(),
                    }
                })?,
            )
        };
        let to_skip = inner.as_ref().map_or(0, |r| r.output_delay());
        let out_max = inner.as_ref().map_or(0, |r| r.output_frames_max());
        Ok(Self {
            inner,
            input_hz,
            output_hz,
            pending: Vec::with_capacity(CHUNK_IN),
            out_buf: vec![vec![0.0; out_max]],
            to_skip,
            consumed: 0,
            produced: 0,
        })
    }

    pub fn input_hz(&self) -> u32 {
        self.input_hz
    }

    /// Resamples `input` and appends what is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        self.consumed += input.len() as u64;
        let Some(resampler) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            self.produced += input.len() as u64;
            return Ok(());
        };
        let mut rest = input;
        while !rest.is_empty() {
            let need = resampler.input_frames_next() - self.pending.len();
            let take = need.min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == resampler.input_frames_next() {
                let (_, n) = resampler
                    .process_into_buffer(&[&self.pending[..]], &mut self.out_buf, None)
                    .map_err(|e| ResampleError::Process(e.to_string()))?;
                self.pending.clear();
                Self::emit(&self.out_buf[0][..n], &mut self.to_skip, &mut self.produced, out);
            }
        }
        Ok(())
    }

    /// Flushes what is left at the end of the stream, so the output is as long as the input
    /// (in time).
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let Some(resampler) = self.inner.as_mut() else {
            return Ok(());
        };
        let expected = (self.consumed as f64 * f64::from(self.output_hz) / f64::from(self.input_hz)).round() as u64;
        // The resampler hands out whole FFT blocks, and with rates that share no large factor
        // (8001 Hz to 16 kHz, say) a block takes several chunks of input: a call can give nothing
        // while it fills. So the end is padded with zeros until the owed output has come out,
        // with a bound of one block more than those samples need (it cannot be reached unless
        // the resampler stops giving out what it takes in, which is then an error).
        let owed = (expected - self.produced.min(expected)) as usize + self.to_skip + resampler.output_frames_max();
        let max_calls = (owed as f64 * f64::from(self.input_hz) / f64::from(self.output_hz) / CHUNK_IN as f64).ceil() as usize + 2;
        let mut calls = 0;
        while self.produced < expected {
            if calls == max_calls {
                return Err(ResampleError::Process(format!(
                    "the flush gave {} of {expected} samples after {calls} chunks",
                    self.produced
                )));
            }
            // `None` asks rubato for a chunk of zeros. An empty slice must not be passed instead:
            // rubato shrinks its padded chunk to the slice when the slice is empty and then
            // refuses it ("Insufficient buffer size 0"), which every stream whose length is a
            // multiple of the chunk once met here.
            let input: Option<&[&[f32]]> = if calls == 0 && !self.pending.is_empty() {
                Some(&[&self.pending[..]])
            } else {
                None
            };
            let (_, n) = resampler
                .process_partial_into_buffer(input, &mut self.out_buf, None)
                .map_err(|e| ResampleError::Process(e.to_string()))?;
            calls += 1;
            let keep = n.min((expected - self.produced) as usize + self.to_skip);
            Self::emit(&self.out_buf[0][..keep], &mut self.to_skip, &mut self.produced, out);
        }
        self.pending.clear();
        Ok(())
    }

    fn emit(samples: &[f32], to_skip: &mut usize, produced: &mut u64, out: &mut Vec<f32>) {
        let skip = (*to_skip).min(samples.len());
        *to_skip -= skip;
        out.extend_from_slice(&samples[skip..]);
        *produced += (samples.len() - skip) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resample_in_blocks(input: &[f32], from: u32, to: u32, block: usize) -> Vec<f32> {
        let mut r = StreamResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for chunk in input.chunks(block) {
            r.push(chunk, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn block_size_does_not_change_the_output() {
        let input: Vec<f32> = (0..44_100).map(|i| (i as f32 * 0.01).sin()).collect();
        let whole = resample_in_blocks(&input, 44_100, 16_000, input.len());
        for block in [1, 64, 333, 4096] {
            assert_eq!(resample_in_blocks(&input, 44_100, 16_000, block), whole, "block {block}");
        }
        assert_eq!(whole.len(), 16_000);
    }

    #[test]
    fn timing_is_kept_and_a_tone_survives() {
        // 1 kHz at 48 kHz -> 16 kHz: same tone, same length, no delay beyond one input sample
        // (the resampler's delay is a whole number of output samples; a one-input-sample shift of
        // a 1 kHz tone is at most 0.131 of full scale).
        let input: Vec<f32> = (0..48_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 48_000.0).sin())
            .collect();
        let out = resample_in_blocks(&input, 48_000, 16_000, 512);
        assert_eq!(out.len(), 16_000);
        for (n, &y) in out.iter().enumerate().skip(200).take(15_000) {
            let expected = (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / 16_000.0).sin();
            assert!((y - expected).abs() < 0.14, "sample {n}: {y} vs {expected}");
        }
    }

    #[test]
    fn odd_rates_work_and_zero_is_refused() {
        for rate in [22_050, 37_800, 96_000, 192_000] {
            let input = vec![0.1_f32; rate as usize / 2];
            let out = resample_in_blocks(&input, rate, 16_000, 1000);
            assert_eq!(out.len(), 8_000, "{rate} Hz");
        }
        assert!(StreamResampler::new(0, 16_000).is_err());
    }

    #[test]
    fn a_stream_ending_on_a_chunk_boundary_flushes() {
        // The flush once handed rubato an empty slice when nothing was pending, which it refuses
        // ("Insufficient buffer size 0"): every input whose length is a multiple of the chunk.
        for len in [CHUNK_IN, 2 * CHUNK_IN, 205 * CHUNK_IN] {
            let input = vec![0.25_f32; len];
            let out = resample_in_blocks(&input, 44_100, 16_000, 512);
            assert_eq!(out.len(), (len as f64 * 16_000.0 / 44_100.0).round() as usize, "{len} samples");
        }
    }

    /// Lengths from empty to several chunks, clustered around every multiple of the chunk (where
    /// the flush once failed), and the same length cut into blocks of any sizes.
    fn length_near_chunks() -> impl Strategy<Value = usize> {
        prop_oneof![0..6 * CHUNK_IN, (0..6_usize, -3..=3_isize).prop_map(|(k, d)| (k * CHUNK_IN).saturating_add_signed(d))]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn any_rate_length_and_blocks_resample_to_the_right_length(
            rate in prop_oneof![
                Just(8_000_u32), Just(11_025), Just(16_000), Just(22_050), Just(32_000), Just(44_100),
                Just(48_000), Just(88_200), Just(96_000), Just(176_400), Just(192_000), 8_000_u32..=192_000,
            ],
            len in length_near_chunks(),
            blocks in prop::collection::vec(1_usize..3 * CHUNK_IN, 1..8),
        ) {
            let input: Vec<f32> = (0..len).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect();
            let mut whole = StreamResampler::new(rate, 16_000).unwrap();
            let mut expected = Vec::new();
            whole.push(&input, &mut expected).unwrap();
            whole.finish(&mut expected).unwrap();
            prop_assert_eq!(expected.len() as u64, (len as f64 * 16_000.0 / f64::from(rate)).round() as u64);

            let mut streamed = StreamResampler::new(rate, 16_000).unwrap();
            let mut got = Vec::new();
            let (mut pos, mut sizes) = (0, blocks.iter().cycle());
            while pos < len {
                let n = (*sizes.next().unwrap()).min(len - pos);
                streamed.push(&input[pos..pos + n], &mut got).unwrap();
                pos += n;
            }
            streamed.finish(&mut got).unwrap();
            prop_assert_eq!(got, expected);
        }
    }
}
