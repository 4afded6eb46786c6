//! Where in the host's song each moment of the stream was heard.
//!
//! The audio thread writes a [`SongMark`] where the song jumps (a start, a stop, a loop); between
//! two marks the song goes on as the frames do. [`SongClock`] keeps the marks of the live
//! history and answers, for a time on the stream, the song position then.
//!
//! ```
//! use strata::capture::SongMark;
//! use strata::worker::song_clock::SongClock;
//!
//! let mut clock = SongClock::new(48_000.0);
//! clock.note(SongMark { stream_frame: 0, song_s: 0.0 });
//! clock.note(SongMark { stream_frame: 16 * 48_000, song_s: 0.0 }); // looped back after 16 s
//! assert_eq!(clock.song_at(4.0), Some(4.0));
//! assert_eq!(clock.song_at(20.0), Some(4.0)); // the second pass over the same bar
//! clock.note(SongMark { stream_frame: 30 * 48_000, song_s: f64::NAN }); // stopped
//! assert_eq!(clock.song_at(31.0), None);
//! ```

use std::collections::VecDeque;

use crate::capture::SongMark;

/// Stream seconds of marks kept behind the newest: as long as the live engine's history, so
/// every step it can still send has its mark, and an eight-hour loop session stays small.
pub const SONG_CLOCK_HISTORY_S: f64 = super::LIVE_HISTORY_S;

/// The song position at every moment of the stream, from the audio thread's marks.
#[derive(Debug, Clone)]
pub struct SongClock {
    sample_rate_hz: f64,
    /// (stream seconds, song seconds or `None` while stopped), oldest first.
    anchors: VecDeque<(f64, Option<f64>)>,
}

impl SongClock {
    pub fn new(sample_rate_hz: f32) -> Self {
        Self { sample_rate_hz: f64::from(sample_rate_hz.max(1.0)), anchors: VecDeque::new() }
    }

    /// Adds a mark. A mark at the same frame as the newest replaces it (its block was dropped
    /// and the next one marked again).
    pub fn note(&mut self, mark: SongMark) {
        let stream_s = mark.stream_frame as f64 / self.sample_rate_hz;
        let song_s = Some(mark.song_s).filter(|s| s.is_finite());
        if self.anchors.back().is_some_and(|a| a.0 >= stream_s) {
            self.anchors.pop_back();
        }
        self.anchors.push_back((stream_s, song_s));
        while self.anchors.len() > 1 && self.anchors[1].0 < stream_s - SONG_CLOCK_HISTORY_S {
            self.anchors.pop_front();
        }
    }

    /// The song position (seconds) at `stream_s` seconds of the stream; `None` where the
    /// transport was stopped or before the first mark.
    pub fn song_at(&self, stream_s: f64) -> Option<f64> {
        let i = self.anchors.partition_point(|a| a.0 <= stream_s);
        let (at, song) = *self.anchors.get(i.checked_sub(1)?)?;
        song.map(|s| s + (stream_s - at))
    }
}
