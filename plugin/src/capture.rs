//! The real-time capture path: the only Strata code that runs on the host's audio thread.
//!
//! [`capture_ring()`] hands back a pair, like `rtrb::RingBuffer::new()` does: the
//! [`CaptureInput`] half belongs to the audio thread, the [`CaptureOutput`] half to the worker.
//! Each thread owns exactly its half, so neither needs a lock.
//!
//! # Guarantees of [`CaptureInput::push_block`]
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
//! [`CaptureInput::note_song_position`] keeps the same guarantees for the host's song position:
//! beside the frames goes a small ring of [`SongMark`]s, one where the song jumps (a start, a
//! stop, a loop), so the worker can say where in the song each layer step was heard.
//!
//! ```
//! use strata::capture::capture_ring;
//!
//! let (mut input, mut output) = capture_ring(64, 1);
//! let block = [0.0_f32; 16];
//! for (i, song_s) in [10.0, 10.0 + 16.0 / 48_000.0, 3.0].into_iter().enumerate() {
//!     input.note_song_position(Some(song_s), 48_000.0); // the second block goes on; the third jumps
//!     assert!(input.push_block(&[&block[..]]));
//!     assert_eq!(output.pop_frames(&mut [0.0; 64]), 16, "block {i}");
//! }
//! let mut marks = Vec::new();
//! output.pop_song_marks(|m| marks.push((m.stream_frame, m.song_s)));
//! assert_eq!(marks, [(0, 10.0), (32, 3.0)]);
//! ```
//!
//! ```
//! use strata::capture::capture_ring;
//!
//! let (mut input, mut output) = capture_ring(4, 2); // four stereo frames
//! let left = [1.0_f32, 0.0, -1.0];
//! let right = [0.0_f32, 0.0, 1.0];
//! assert!(input.push_block(&[&left[..], &right[..]]));
//! // The second block does not fit in the one free frame: dropped whole and counted.
//! assert!(!input.push_block(&[&left[..], &right[..]]));
//!
//! let mut frames = [0.0_f32; 8];
//! assert_eq!(output.pop_frames(&mut frames), 3);
//! assert_eq!(&frames[..6], &[1.0, 0.0, 0.0, 0.0, -1.0, 1.0]); // interleaved, bit for bit
//! assert_eq!(output.counters().dropped_frames(), 3);
//! assert_eq!(output.counters().dropped_blocks(), 1);
//! ```
//!
//! # Why interleaved frames of every channel
//!
//! The audio thread does the least work that keeps everything: it copies the block as it is.
//! The worker mixes it down for the models (which listen to one channel; see [`mix_to_mono`])
//! and records the channels as they are when the user records a take, whose stems must sum back
//! to the track's real channels.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters shared by both halves. Written only by the audio thread, read by anyone.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Frames (one sample of every channel) that went into the ring.
    pushed_frames: AtomicU64,
    /// Frames dropped because the ring was full: the worker fell behind.
    dropped_frames: AtomicU64,
    /// Blocks dropped because the ring was full (each counted once, whatever its length).
    dropped_blocks: AtomicU64,
}

impl CaptureCounters {
    /// Frames that went into the ring since it was made.
    pub fn pushed_frames(&self) -> u64 {
        self.pushed_frames.load(Ordering::Relaxed)
    }

    /// Frames dropped because the ring was full.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames.load(Ordering::Relaxed)
    }

    /// Blocks dropped because the ring was full.
    pub fn dropped_blocks(&self) -> u64 {
        self.dropped_blocks.load(Ordering::Relaxed)
    }
}

/// Where the host's song was at one frame of the stream: what lets the lanes be drawn on the
/// song's timeline, so a looped stretch is drawn once, where it lies in the song.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SongMark {
    /// The frame, counted from the first frame that went into the ring.
    pub stream_frame: u64,
    /// The song position there, in seconds; NaN while the transport is stopped or the host sends
    /// no position.
    pub song_s: f64,
}

/// Song marks the ring holds. The audio thread writes one only where the song does not go on
/// as the frames do (a start, a stop, a loop, a jump), so a few are plenty.
pub const SONG_MARK_CAPACITY: usize = 1024;
/// A song position this far (seconds) from where the frames since the last mark put it is a
/// jump: well under a block, well over a host's rounding.
pub const SONG_JUMP_S: f64 = 0.002;

/// The audio thread's half: pushes each block into the ring as interleaved frames.
pub struct CaptureInput {
    producer: rtrb::Producer<f32>,
    channels: usize,
    counters: Arc<CaptureCounters>,
    marks: rtrb::Producer<SongMark>,
    /// The newest mark written.
    last_mark: Option<SongMark>,
}

/// The worker's half: reads the captured frames in order.
pub struct CaptureOutput {
    consumer: rtrb::Consumer<f32>,
    channels: usize,
    counters: Arc<CaptureCounters>,
    marks: rtrb::Consumer<SongMark>,
}

/// Makes a capture ring holding `capacity_frames` frames of `channels` channels (at least one),
/// and returns its two halves.
///
/// This is the only place capture allocates (the frames' ring and the song marks'). Call it
/// outside the audio thread.
pub fn capture_ring(capacity_frames: usize, channels: usize) -> (CaptureInput, CaptureOutput) {
    let channels = channels.max(1);
    let (mut producer, mut consumer) = rtrb::RingBuffer::new(capacity_frames.max(1) * channels);
    prefault(&mut producer, &mut consumer, 0.0);
    let counters = Arc::new(CaptureCounters::default());
    let (mut marks_in, mut marks_out) = rtrb::RingBuffer::new(SONG_MARK_CAPACITY);
    prefault(&mut marks_in, &mut marks_out, SongMark { stream_frame: 0, song_s: f64::NAN });
    (
        CaptureInput {
            producer,
            channels,
            counters: Arc::clone(&counters),
            marks: marks_in,
            last_mark: None,
        },
        CaptureOutput { consumer, channels, counters, marks: marks_out },
    )
}

/// Writes and reads the whole ring once, so that the operating system maps every page of it now
/// and not on the audio thread's first pass (a page fault there can take microseconds).
fn prefault<T: Copy>(producer: &mut rtrb::Producer<T>, consumer: &mut rtrb::Consumer<T>, fill: T) {
    let capacity = producer.buffer().capacity();
    if let Ok(chunk) = producer.write_chunk_uninit(capacity) {
        chunk.fill_from_iter(std::iter::repeat(fill));
    }
    if let Ok(chunk) = consumer.read_chunk(capacity) {
        chunk.commit_all();
    }
}

impl CaptureInput {
    /// Pushes the block (one slice per channel, all of one length) into the ring as interleaved
    /// frames. A channel the ring has and the block lacks is written as silence; a channel the
    /// block has and the ring lacks is left out (the layout is fixed at activation, so neither
    /// happens with a well-behaved host).
    ///
    /// Returns `false` when the block did not fit and was dropped (and counted). An empty block
    /// or a block with no channels pushes nothing and returns `true`.
    ///
    /// ```
    /// let (mut input, output) = strata::capture::capture_ring(16, 1);
    /// let mono = [0.25_f32; 5];
    /// assert!(input.push_block(&[&mono[..]]));
    /// assert!(input.push_block::<&[f32]>(&[]));
    /// assert_eq!(output.counters().pushed_frames(), 5);
    /// ```
    pub fn push_block<C: AsRef<[f32]>>(&mut self, channels: &[C]) -> bool {
        // Hosts give equal-length channels; taking the shortest keeps a broken host from making
        // us read out of bounds.
        let Some(frames) = channels.iter().map(|c| c.as_ref().len()).min() else {
            return true;
        };
        if frames == 0 {
            return true;
        }
        let n = self.channels;
        match self.producer.write_chunk_uninit(frames * n) {
            Ok(mut chunk) => {
                let (first, second) = chunk.as_mut_slices();
                // Both halves only ever move by whole frames and the capacity is a whole number
                // of frames, so the wrap point falls between two frames.
                let split = first.len() / n;
                interleave_into(channels, n, 0, first);
                interleave_into(channels, n, split, second);
                // SAFETY: `interleave_into` wrote every slot of both slices.
                unsafe { chunk.commit_all() };
                add(&self.counters.pushed_frames, frames as u64);
                true
            }
            Err(_) => {
                add(&self.counters.dropped_frames, frames as u64);
                add(&self.counters.dropped_blocks, 1);
                false
            }
        }
    }

    /// The counters this half writes.
    pub fn counters(&self) -> &Arc<CaptureCounters> {
        &self.counters
    }

    /// Notes where the song is at the start of the next block (`song_s`, seconds; `None` while
    /// the transport is stopped or the host sends no position), `sample_rate_hz` being the
    /// stream's. Call it before [`CaptureInput::push_block`]. Wait-free and allocation-free like
    /// it: a mark is written only where the song jumps from where the frames since the last mark
    /// put it, and a mark that does not fit is written at the next block instead.
    pub fn note_song_position(&mut self, song_s: Option<f64>, sample_rate_hz: f32) {
        let stream_frame = self.counters.pushed_frames();
        let song_s = song_s.filter(|s| s.is_finite()).unwrap_or(f64::NAN);
        let expected = self.last_mark.map(|m| m.song_s + (stream_frame - m.stream_frame) as f64 / f64::from(sample_rate_hz.max(1.0)));
        let goes_on = match expected {
            Some(e) if e.is_nan() => song_s.is_nan(),
            Some(e) => (song_s - e).abs() <= SONG_JUMP_S,
            None => false,
        };
        if goes_on {
            return;
        }
        let mark = SongMark { stream_frame, song_s };
        if self.marks.push(mark).is_ok() {
            self.last_mark = Some(mark);
        }
    }
}

impl CaptureOutput {
    /// Moves as many whole frames as are ready (and fit in `dst`) into `dst`, interleaved, oldest
    /// first, and returns how many frames it moved.
    pub fn pop_frames(&mut self, dst: &mut [f32]) -> usize {
        let n = self.channels;
        let frames = (self.consumer.slots() / n).min(dst.len() / n);
        if frames == 0 {
            return 0;
        }
        match self.consumer.read_chunk(frames * n) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                dst[..a.len()].copy_from_slice(a);
                dst[a.len()..a.len() + b.len()].copy_from_slice(b);
                chunk.commit_all();
                frames
            }
            // `slots()` said they were there and only this half removes them.
            Err(_) => 0,
        }
    }

    /// The channels in each frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames waiting in the ring.
    pub fn available_frames(&self) -> usize {
        self.consumer.slots() / self.channels
    }

    /// The ring's capacity in frames.
    pub fn capacity_frames(&self) -> usize {
        self.consumer.buffer().capacity() / self.channels
    }

    /// The counters the audio thread writes.
    pub fn counters(&self) -> &Arc<CaptureCounters> {
        &self.counters
    }

    /// Hands every song mark waiting to `each`, oldest first. Pop the frames first: a block's
    /// mark is written before its frames, so every frame popped has its mark here.
    pub fn pop_song_marks(&mut self, mut each: impl FnMut(SongMark)) {
        while let Ok(mark) = self.marks.pop() {
            each(mark);
        }
    }
}

/// Adds to a counter only this thread writes: a plain load and store, no locked instruction.
#[inline]
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Writes frames `first_frame..` of `channels` into `dst`, interleaved `n` to a frame; a missing
/// channel is silence. Every slot of `dst` is written. Stereo, the common case, is written out
/// so the compiler can vectorise it.
#[inline]
fn interleave_into<C: AsRef<[f32]>>(channels: &[C], n: usize, first_frame: usize, dst: &mut [MaybeUninit<f32>]) {
    if let ([left, right, ..], 2) = (channels, n) {
        let frames = dst.len() / 2;
        let (l, r) = (&left.as_ref()[first_frame..first_frame + frames], &right.as_ref()[first_frame..first_frame + frames]);
        for ((slot, &l), &r) in dst.chunks_exact_mut(2).zip(l).zip(r) {
            slot[0].write(l);
            slot[1].write(r);
        }
    } else {
        for (f, frame) in dst.chunks_exact_mut(n).enumerate() {
            for (c, slot) in frame.iter_mut().enumerate() {
                slot.write(channels.get(c).map_or(0.0, |ch| ch.as_ref()[first_frame + f]));
            }
        }
    }
    // Only reachable if the wrap point fell inside a frame, which the ring never lets happen;
    // the slots must still be written before they are committed.
    for slot in dst.chunks_exact_mut(n).into_remainder() {
        slot.write(0.0);
    }
}

/// Mixes interleaved frames of `channels` channels down to one (cleared first): mono is copied
/// as is (bit for bit), stereo is `(l + r) * 0.5`, more channels are summed in order and scaled
/// by `1 / n`. The plain average keeps a full-scale input within ±1, and what cancels out in it
/// (fully out-of-phase content) is what a mono listener would not hear either. Runs on the
/// worker, not the audio thread.
///
/// ```
/// let mut mono = Vec::new();
/// strata::capture::mix_to_mono(&[1.0, 0.0, 0.5, 0.5], 2, &mut mono);
/// assert_eq!(mono, [0.5, 0.5]);
/// ```
pub fn mix_to_mono(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    match channels {
        0 | 1 => mono.extend_from_slice(interleaved),
        2 => mono.extend(interleaved.chunks_exact(2).map(|f| (f[0] + f[1]) * 0.5)),
        n => {
            let gain = 1.0 / n as f32;
            mono.extend(interleaved.chunks_exact(n).map(|f| {
                let mut sum = f[0];
                for x in &f[1..] {
                    sum += x;
                }
                sum * gain
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_the_wrap_point() {
        // Seven stereo frames: blocks of three wrap at every possible place.
        let (mut input, mut output) = capture_ring(7, 2);
        let mut expected = Vec::new();
        let mut got = Vec::new();
        let mut buf = [0.0_f32; 6];
        for block in 0..20 {
            let l: Vec<f32> = (0..3).map(|i| (block * 3 + i) as f32).collect();
            let r: Vec<f32> = l.iter().map(|x| -x).collect();
            assert!(input.push_block(&[&l[..], &r[..]]));
            for i in 0..3 {
                expected.extend_from_slice(&[l[i], r[i]]);
            }
            let n = output.pop_frames(&mut buf);
            got.extend_from_slice(&buf[..2 * n]);
        }
        assert_eq!(got, expected);
        assert_eq!(output.counters().dropped_frames(), 0);
    }

    #[test]
    fn full_ring_drops_whole_blocks_and_counts_them() {
        let (mut input, mut output) = capture_ring(10, 1);
        let block = [1.0_f32; 4];
        assert!(input.push_block(&[&block[..]]));
        assert!(input.push_block(&[&block[..]]));
        assert!(!input.push_block(&[&block[..]]));
        assert!(!input.push_block(&[&block[..]]));
        let c = output.counters();
        assert_eq!(c.pushed_frames(), 8);
        assert_eq!(c.dropped_frames(), 8);
        assert_eq!(c.dropped_blocks(), 2);
        let mut buf = [0.0_f32; 16];
        assert_eq!(output.pop_frames(&mut buf), 8);
        // Room again after the worker caught up.
        assert!(input.push_block(&[&block[..]]));
    }

    #[test]
    fn mixdown_is_the_channel_average_and_passes_non_finite_values_on() {
        let (mut input, mut output) = capture_ring(8, 2);
        let l = [1.0_f32, f32::NAN, 0.5];
        let r = [-1.0_f32, 0.0, f32::INFINITY];
        assert!(input.push_block(&[&l[..], &r[..]]));
        let mut buf = [0.0_f32; 6];
        assert_eq!(output.pop_frames(&mut buf), 3);
        let mut mono = Vec::new();
        mix_to_mono(&buf, 2, &mut mono);
        assert_eq!(mono[0], 0.0);
        assert!(mono[1].is_nan());
        assert_eq!(mono[2], f32::INFINITY);
        mix_to_mono(&[3.0, 0.0, 0.0, 6.0, 3.0, 3.0], 3, &mut mono);
        assert_eq!(mono, [1.0, 4.0]);
    }

    #[test]
    fn blocks_larger_than_the_ring_are_dropped_not_split() {
        let (mut input, output) = capture_ring(4, 1);
        let big = [0.1_f32; 5];
        assert!(!input.push_block(&[&big[..]]));
        assert_eq!(output.available_frames(), 0);
        assert_eq!(output.counters().dropped_frames(), 5);
    }

    #[test]
    fn missing_channels_are_silence_and_extra_ones_are_left_out() {
        let (mut input, mut output) = capture_ring(8, 2);
        let mono = [0.5_f32, 0.25];
        assert!(input.push_block(&[&mono[..]]));
        let third = [9.0_f32, 9.0];
        assert!(input.push_block(&[&mono[..], &mono[..], &third[..]]));
        let mut buf = [0.0_f32; 8];
        assert_eq!(output.pop_frames(&mut buf), 4);
        assert_eq!(buf, [0.5, 0.0, 0.25, 0.0, 0.5, 0.5, 0.25, 0.25]);
    }
}
