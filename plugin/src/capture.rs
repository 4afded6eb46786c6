//! The real-time capture path: the only Strata code that runs on the host's audio thread.
//!
//! [`capture_ring()`] hands back a pair, like `rtrb::RingBuffer::new()` does: the
//! [`CaptureInput`] half belongs to the audio thread, the [`CaptureOutput`] half to the worker.
//! Each thread owns exactly its half, so neither needs a lock.
//!
//! # Guarantees of [`CaptureInput::push_mixdown`]
//!
//! * **It never allocates.** All memory (the ring and the shared counters) is allocated by
//!   [`capture_ring()`], which the plugin calls in `activate()`, never in `process()`.
//! * **It is wait-free.** It does one bounded pass over the block and a few relaxed atomic
//!   loads and stores (no locked read-modify-write); it never locks, blocks, logs, or does I/O.
//! * **When the ring is full it drops, and counts.** A block that does not fit whole is dropped
//!   whole (so the worker never sees half a block spliced onto a later one) and added to the
//!   overrun counters; the audio thread never waits for the worker.
//! * **It never alters the audio.** It only reads the host's buffers.
//!
//! ```
//! use strata::capture::capture_ring;
//!
//! let (mut input, mut output) = capture_ring(4);
//! let left = [1.0_f32, 0.0, -1.0];
//! let right = [0.0_f32, 0.0, 1.0];
//! assert!(input.push_mixdown(&[&left[..], &right[..]]));
//! // The second block does not fit in the four free slots: dropped whole and counted.
//! assert!(!input.push_mixdown(&[&left[..], &right[..]]));
//!
//! let mut received = [0.0_f32; 8];
//! assert_eq!(output.pop_into(&mut received), 3);
//! assert_eq!(&received[..3], &[0.5, 0.0, 0.0]);
//! assert_eq!(output.counters().dropped_samples(), 3);
//! assert_eq!(output.counters().dropped_blocks(), 1);
//! ```
//!
//! # Why a mono mixdown
//!
//! Strata's models listen to one channel, and the ring should hold as many seconds as possible.
//! The mixdown is the plain average of all channels: it keeps a full-scale input within ±1, and
//! what cancels out in it (fully out-of-phase content) is what a mono listener would not hear
//! either. Mono input is passed on bit for bit; stereo is `(l + r) * 0.5`.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters shared by both halves. Written only by the audio thread, read by anyone.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Samples (mono frames) that went into the ring.
    pushed_samples: AtomicU64,
    /// Samples dropped because the ring was full: the worker fell behind.
    dropped_samples: AtomicU64,
    /// Blocks dropped because the ring was full (each counted once, whatever its length).
    dropped_blocks: AtomicU64,
}

impl CaptureCounters {
    /// Samples that went into the ring since it was made.
    pub fn pushed_samples(&self) -> u64 {
        self.pushed_samples.load(Ordering::Relaxed)
    }

    /// Samples dropped because the ring was full.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples.load(Ordering::Relaxed)
    }

    /// Blocks dropped because the ring was full.
    pub fn dropped_blocks(&self) -> u64 {
        self.dropped_blocks.load(Ordering::Relaxed)
    }
}

/// The audio thread's half: pushes a mono mixdown of each block into the ring.
pub struct CaptureInput {
    producer: rtrb::Producer<f32>,
    counters: Arc<CaptureCounters>,
}

/// The worker's half: reads the captured mono samples in order.
pub struct CaptureOutput {
    consumer: rtrb::Consumer<f32>,
    counters: Arc<CaptureCounters>,
}

/// Makes a capture ring holding `capacity_samples` mono samples, and returns its two halves.
///
/// This is the only place capture allocates. Call it outside the audio thread.
pub fn capture_ring(capacity_samples: usize) -> (CaptureInput, CaptureOutput) {
    let (mut producer, mut consumer) = rtrb::RingBuffer::new(capacity_samples.max(1));
    prefault(&mut producer, &mut consumer);
    let counters = Arc::new(CaptureCounters::default());
    (
        CaptureInput {
            producer,
            counters: Arc::clone(&counters),
        },
        CaptureOutput { consumer, counters },
    )
}

/// Writes and reads the whole ring once, so that the operating system maps every page of it now
/// and not on the audio thread's first pass (a page fault there can take microseconds).
fn prefault(producer: &mut rtrb::Producer<f32>, consumer: &mut rtrb::Consumer<f32>) {
    let capacity = producer.buffer().capacity();
    if let Ok(chunk) = producer.write_chunk_uninit(capacity) {
        chunk.fill_from_iter(std::iter::repeat(0.0));
    }
    if let Ok(chunk) = consumer.read_chunk(capacity) {
        chunk.commit_all();
    }
}

impl CaptureInput {
    /// Pushes the average of `channels` (all of one length) into the ring.
    ///
    /// Returns `false` when the block did not fit and was dropped (and counted). An empty block
    /// or a block with no channels pushes nothing and returns `true`.
    ///
    /// ```
    /// let (mut input, output) = strata::capture::capture_ring(16);
    /// let mono = [0.25_f32; 5];
    /// assert!(input.push_mixdown(&[&mono[..]]));
    /// assert!(input.push_mixdown::<&[f32]>(&[]));
    /// assert_eq!(output.counters().pushed_samples(), 5);
    /// ```
    pub fn push_mixdown<C: AsRef<[f32]>>(&mut self, channels: &[C]) -> bool {
        let Some(first) = channels.first() else {
            return true;
        };
        // Hosts give equal-length channels; taking the shortest keeps a broken host from making
        // us read out of bounds.
        let len = channels
            .iter()
            .map(|c| c.as_ref().len())
            .min()
            .unwrap_or(first.as_ref().len());
        if len == 0 {
            return true;
        }

        match self.producer.write_chunk_uninit(len) {
            Ok(mut chunk) => {
                let (first, second) = chunk.as_mut_slices();
                let split = first.len();
                mix_into(channels, 0, first);
                mix_into(channels, split, second);
                // SAFETY: `mix_into` wrote every slot of both slices.
                unsafe { chunk.commit_all() };
                add(&self.counters.pushed_samples, len as u64);
                true
            }
            Err(_) => {
                add(&self.counters.dropped_samples, len as u64);
                add(&self.counters.dropped_blocks, 1);
                false
            }
        }
    }

    /// The counters this half writes.
    pub fn counters(&self) -> &Arc<CaptureCounters> {
        &self.counters
    }
}

impl CaptureOutput {
    /// Moves as many captured samples as are ready (up to `dst.len()`) into `dst`, oldest first,
    /// and returns how many it moved.
    pub fn pop_into(&mut self, dst: &mut [f32]) -> usize {
        let n = self.consumer.slots().min(dst.len());
        if n == 0 {
            return 0;
        }
        match self.consumer.read_chunk(n) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                dst[..a.len()].copy_from_slice(a);
                dst[a.len()..a.len() + b.len()].copy_from_slice(b);
                chunk.commit_all();
                n
            }
            // `slots()` said they were there and only this half removes them.
            Err(_) => 0,
        }
    }

    /// Samples waiting in the ring.
    pub fn available(&self) -> usize {
        self.consumer.slots()
    }

    /// The ring's capacity in samples.
    pub fn capacity(&self) -> usize {
        self.consumer.buffer().capacity()
    }

    /// The counters the audio thread writes.
    pub fn counters(&self) -> &Arc<CaptureCounters> {
        &self.counters
    }
}

/// Adds to a counter only this thread writes: a plain load and store, no locked instruction.
#[inline]
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Writes the mixdown of `channels[..][offset..offset + dst.len()]` into `dst`. Mono is copied
/// as is (bit for bit), stereo is `(l + r) * 0.5`, more channels are summed in order and scaled by
/// `1 / n`. The one- and two-channel cases are written out so the compiler vectorises them.
#[inline]
fn mix_into<C: AsRef<[f32]>>(channels: &[C], offset: usize, dst: &mut [MaybeUninit<f32>]) {
    let n = dst.len();
    match channels {
        [mono] => {
            for (d, &x) in dst.iter_mut().zip(&mono.as_ref()[offset..offset + n]) {
                d.write(x);
            }
        }
        [left, right] => {
            let (l, r) = (&left.as_ref()[offset..offset + n], &right.as_ref()[offset..offset + n]);
            for ((d, &l), &r) in dst.iter_mut().zip(l).zip(r) {
                d.write((l + r) * 0.5);
            }
        }
        _ => {
            let gain = 1.0 / channels.len() as f32;
            for (i, d) in dst.iter_mut().enumerate() {
                let mut sum = channels[0].as_ref()[offset + i];
                for c in &channels[1..] {
                    sum += c.as_ref()[offset + i];
                }
                d.write(sum * gain);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_the_wrap_point() {
        let (mut input, mut output) = capture_ring(7);
        let mut expected = Vec::new();
        let mut got = Vec::new();
        let mut buf = [0.0_f32; 3];
        for block in 0..20 {
            let samples: Vec<f32> = (0..3).map(|i| (block * 3 + i) as f32).collect();
            assert!(input.push_mixdown(&[&samples[..]]));
            expected.extend_from_slice(&samples);
            let n = output.pop_into(&mut buf);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, expected);
        assert_eq!(output.counters().dropped_samples(), 0);
    }

    #[test]
    fn full_ring_drops_whole_blocks_and_counts_them() {
        let (mut input, mut output) = capture_ring(10);
        let block = [1.0_f32; 4];
        assert!(input.push_mixdown(&[&block[..]]));
        assert!(input.push_mixdown(&[&block[..]]));
        assert!(!input.push_mixdown(&[&block[..]]));
        assert!(!input.push_mixdown(&[&block[..]]));
        let c = output.counters();
        assert_eq!(c.pushed_samples(), 8);
        assert_eq!(c.dropped_samples(), 8);
        assert_eq!(c.dropped_blocks(), 2);
        let mut buf = [0.0_f32; 16];
        assert_eq!(output.pop_into(&mut buf), 8);
        // Room again after the worker caught up.
        assert!(input.push_mixdown(&[&block[..]]));
    }

    #[test]
    fn mixdown_is_the_channel_average_and_passes_non_finite_values_on() {
        let (mut input, mut output) = capture_ring(8);
        let l = [1.0_f32, f32::NAN, 0.5];
        let r = [-1.0_f32, 0.0, f32::INFINITY];
        assert!(input.push_mixdown(&[&l[..], &r[..]]));
        let mut buf = [0.0_f32; 3];
        assert_eq!(output.pop_into(&mut buf), 3);
        assert_eq!(buf[0], 0.0);
        assert!(buf[1].is_nan());
        assert_eq!(buf[2], f32::INFINITY);
    }

    #[test]
    fn blocks_larger_than_the_ring_are_dropped_not_split() {
        let (mut input, output) = capture_ring(4);
        let big = [0.1_f32; 5];
        assert!(!input.push_mixdown(&[&big[..]]));
        assert_eq!(output.available(), 0);
        assert_eq!(output.counters().dropped_samples(), 5);
    }
}
