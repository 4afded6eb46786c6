//! The live lanes: one per timescale, longest on top, scrolling with time.
//!
//! [`LaneHistory`] keeps the last hour of layer frames and turns a time window into what a lane
//! shows ([`LaneLayout`]: token blocks with their letters, change markers, the surprise curve).
//! That part is plain data, so tests can check what is drawn; [`paint_lane`] only paints it.
//!
//! Each activation's worker counts time from 0 again; the history lays the activations end to
//! end ([`LaneHistory::start_stream`]), so the lanes read as one timeline and the hour kept is
//! the last hour of the whole session.

use std::collections::VecDeque;

use egui::{Color32, Pos2, Rect, Stroke};

use crate::layers::{label, LayerFrame, Pattern, MIN_SEGMENT_STEPS};

/// History kept per layer, in seconds.
pub const HISTORY_S: f64 = 3600.0;
/// A run of input silence shorter than this (seconds) is a pause inside the music, not silence
/// worth saying (the worker counts the run from the first silent sample).
pub const MIN_SILENCE_S: f64 = 1.0;
/// Silences reported this close together (seconds) are one.
const SILENCE_JOIN_S: f64 = 0.5;

/// Where time `t` (seconds) lies across `rect` when it shows `t0..t1`, clamped to its edges.
fn time_to_x(rect: Rect, t0: f64, t1: f64) -> impl Fn(f64) -> f32 {
    let span = (t1 - t0).max(1e-9);
    move |t| rect.left() + ((t - t0) / span).clamp(0.0, 1.0) as f32 * rect.width()
}

/// A lane's background.
const LANE_BACKGROUND: Color32 = Color32::from_rgb(32, 34, 40);

/// One lane's frames, changes and token letters.
#[derive(Debug, Default, Clone)]
struct LevelHistory {
    frames: VecDeque<LayerFrame>,
    changes: VecDeque<(f64, f32)>,
    /// Tokens in order of first appearance: a token's letter is its index here.
    order: Vec<u8>,
    /// On the song timeline: the stream time of the newest frame placed (its step's hop is the
    /// time since).
    last_stream_s: Option<f64>,
}

/// The editor's memory of every layer.
#[derive(Debug, Default, Clone)]
pub struct LaneHistory {
    levels: Vec<LevelHistory>,
    /// Where the current stream's 0 s lies on the history's timeline.
    stream_start_s: f64,
    /// Stretches (start, end; history times) where the input was silent: the lanes say so
    /// there instead of drawing the patterns a window of silence gets.
    silences: VecDeque<(f64, f64)>,
    /// On the song timeline: the song position of the newest moment heard, and its stream time.
    playhead_s: f64,
    newest_placed_s: f64,
}

/// A stretch of one token in a lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub start_s: f64,
    pub end_s: f64,
    pub token: u8,
    pub label: String,
}

/// What one lane shows for a time window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaneLayout {
    pub blocks: Vec<Block>,
    /// (time, strength) of each change in the window.
    pub markers: Vec<(f64, f32)>,
    /// (time, surprise) of each step in the window.
    pub surprise: Vec<(f64, f32)>,
}

impl LaneHistory {
    /// Frames pushed from now on come from a new stream whose times start at 0 again (a new
    /// activation's worker): they go on after what is held. Without this, a new activation's
    /// frames were older than every frame held, nothing was ever dropped, and the lanes mixed the
    /// activations on one stretch of time.
    pub fn start_stream(&mut self) {
        self.stream_start_s = if self.levels() == 0 { 0.0 } else { self.latest_time() };
    }

    /// Where the current stream's 0 s lies on the history's timeline: stream times (the pattern
    /// layers', the worker's counters) plus this are history times.
    pub fn stream_start_s(&self) -> f64 {
        self.stream_start_s
    }

    /// A frame of the current stream with its times on this history's timeline (stream times
    /// plus [`LaneHistory::stream_start_s`]).
    pub fn on_timeline(&self, mut frame: LayerFrame) -> LayerFrame {
        frame.time_s += self.stream_start_s;
        if let Some(change) = frame.change.as_mut() {
            change.0 += self.stream_start_s;
        }
        frame
    }

    /// Adds a frame of the current stream, dropping what is older than an hour.
    pub fn push(&mut self, frame: LayerFrame) {
        let frame = self.on_timeline(frame);
        if self.levels.len() <= frame.level {
            self.levels.resize_with(frame.level + 1, LevelHistory::default);
        }
        let level = &mut self.levels[frame.level];
        if !level.order.contains(&frame.token) {
            level.order.push(frame.token);
        }
        if let Some(change) = frame.change {
            level.changes.push_back(change);
        }
        level.frames.push_back(frame);
        let oldest = frame.time_s - HISTORY_S;
        while level.frames.front().is_some_and(|f| f.time_s < oldest) {
            level.frames.pop_front();
        }
        while level.changes.front().is_some_and(|c| c.0 < oldest) {
            level.changes.pop_front();
        }
    }

    /// Puts a frame heard at `frame.time_s` (history time: one timeline across activations) at
    /// `song_s` on the song's timeline, replacing what an earlier pass over the same stretch of
    /// the song left there (its step covers the hop before it, as on the wall clock). Looping
    /// bars 1-8 twice leaves one pass of bars 1-8: the newest. What lies further than an hour
    /// from the playhead is dropped.
    pub fn place(&mut self, mut frame: LayerFrame, song_s: f64) {
        if self.levels.len() <= frame.level {
            self.levels.resize_with(frame.level + 1, LevelHistory::default);
        }
        // The playhead is where the newest moment heard lies (the lanes' steps arrive interleaved,
        // a long lane's after a short one's later step).
        if frame.time_s >= self.newest_placed_s {
            self.newest_placed_s = frame.time_s;
            self.playhead_s = song_s;
        }
        let level = &mut self.levels[frame.level];
        let hop = level.last_stream_s.map_or(0.0, |t| frame.time_s - t);
        // The first frame placed has no step before it: a tenth of a second, the finest hop.
        let hop = if hop > 0.0 && hop < 60.0 { hop } else { 0.1 };
        level.last_stream_s = Some(frame.time_s);
        if let Some(change) = frame.change.as_mut() {
            change.0 = song_s - (frame.time_s - change.0);
        }
        frame.time_s = song_s;
        // What an earlier pass left within this step's reach (steps on a grid a hop apart keep
        // their neighbours; 1 % of slack for rounding): frames and changes are kept in song
        // order, so it is one run of each.
        let reach = 0.99 * hop;
        let lo = level.frames.partition_point(|f| f.time_s <= song_s - reach);
        let hi = level.frames.partition_point(|f| f.time_s < song_s + reach);
        level.frames.drain(lo..hi);
        level.frames.insert(lo, frame);
        let lo = level.changes.partition_point(|c| c.0 <= song_s - hop);
        let hi = level.changes.partition_point(|c| c.0 <= song_s);
        level.changes.drain(lo..hi);
        if let Some(change) = frame.change {
            let at = level.changes.partition_point(|c| c.0 < change.0);
            level.changes.insert(at, change);
        }
        if !level.order.contains(&frame.token) {
            level.order.push(frame.token);
        }
        // At most an hour either side of the newest step.
        while level.frames.front().is_some_and(|f| f.time_s < song_s - HISTORY_S) {
            level.frames.pop_front();
        }
        while level.frames.back().is_some_and(|f| f.time_s > song_s + HISTORY_S) {
            level.frames.pop_back();
        }
        while level.changes.front().is_some_and(|c| c.0 < song_s - HISTORY_S) {
            level.changes.pop_front();
        }
        while level.changes.back().is_some_and(|c| c.0 > song_s + HISTORY_S) {
            level.changes.pop_back();
        }
    }

    /// On the song timeline: the song position of the newest frame placed.
    pub fn playhead_s(&self) -> f64 {
        self.playhead_s
    }

    /// The song position (seconds) at history time `t`, from the frames' own song positions;
    /// `None` where the host's song was not playing.
    pub fn song_time_of(&self, t: f64) -> Option<f64> {
        let f = self.frame_at(0, t)?;
        f.song_s.map(|s| s + (t - f.time_s))
    }

    /// Notes that the input has been silent for the `silent_s` seconds up to `received_s` (both
    /// in seconds of the current stream), as the worker's status reports it.
    pub fn note_silence(&mut self, received_s: f64, silent_s: f64) {
        if silent_s.is_nan() || silent_s < MIN_SILENCE_S {
            return;
        }
        let (start, end) = (self.stream_start_s + received_s - silent_s, self.stream_start_s + received_s);
        match self.silences.back_mut() {
            Some(last) if start <= last.1 + SILENCE_JOIN_S => *last = (last.0.min(start), last.1.max(end)),
            _ => self.silences.push_back((start, end)),
        }
        let oldest = end - HISTORY_S;
        while self.silences.front().is_some_and(|s| s.1 < oldest) {
            self.silences.pop_front();
        }
    }

    /// The silent stretches reaching into `t0..t1` of `timeline` (this history being the wall
    /// clock's).
    pub fn silences(&self, timeline: &Timeline, t0: f64, t1: f64) -> Vec<(f64, f64)> {
        self.silences.iter().filter_map(|&(a, b)| timeline.place_span(a, b)).filter(|&(a, b)| b >= t0 && a <= t1).collect()
    }

    /// Layers seen so far.
    pub fn levels(&self) -> usize {
        self.levels.len()
    }

    /// The newest time of any layer.
    pub fn latest_time(&self) -> f64 {
        self.levels
            .iter()
            .filter_map(|l| l.frames.back().map(|f| f.time_s))
            .fold(0.0, f64::max)
    }

    /// The oldest time still held.
    pub fn earliest_time(&self) -> f64 {
        self.levels
            .iter()
            .filter_map(|l| l.frames.front().map(|f| f.time_s))
            .fold(f64::INFINITY, f64::min)
    }

    /// The newest frame of a layer.
    pub fn current(&self, level: usize) -> Option<&LayerFrame> {
        self.levels.get(level)?.frames.back()
    }

    /// A token's letter within its layer.
    pub fn label(&self, level: usize, token: u8) -> String {
        self.levels
            .get(level)
            .and_then(|l| l.order.iter().position(|&t| t == token))
            .map_or_else(|| "?".to_owned(), label)
    }

    /// The frame of `level` whose step covers time `t`.
    pub fn frame_at(&self, level: usize, t: f64) -> Option<&LayerFrame> {
        let frames = &self.levels.get(level)?.frames;
        let i = frames.partition_point(|f| f.time_s < t);
        frames.get(i).or_else(|| frames.back())
    }

    /// What the lane of `level` shows between `t0` and `t1`. A step covers the hop before its
    /// time; neighbouring steps of one token make one block. `resolution_s` is the time one pixel
    /// covers: blocks narrower than it join their neighbour and the surprise curve keeps one peak
    /// per pixel, so an hour on screen costs no more to draw than a minute (0: keep everything).
    pub fn layout(&self, level: usize, t0: f64, t1: f64, resolution_s: f64) -> LaneLayout {
        let Some(history) = self.levels.get(level) else {
            return LaneLayout::default();
        };
        let frames = &history.frames;
        let mut out = LaneLayout::default();
        let mut raw: Vec<(Block, usize)> = Vec::new();
        // Skip straight to the window (frames are in time order).
        let first = frames.partition_point(|f| f.time_s < t0).saturating_sub(1);
        for (k, f) in frames.iter().enumerate().skip(first) {
            // Past the window by more than any hop: nothing further can show.
            if f.time_s > t1 + 60.0 {
                break;
            }
            let hop = if k > 0 {
                f.time_s - frames[k - 1].time_s
            } else {
                frames.get(1).map_or(0.1, |n| n.time_s - f.time_s)
            };
            let (start, end) = (f.time_s - hop, f.time_s);
            if end < t0 || start > t1 {
                continue;
            }
            match out.surprise.last_mut() {
                // One point per pixel: the highest surprise in it.
                Some(last) if resolution_s > 0.0 && f.time_s - last.0 < resolution_s => last.1 = last.1.max(f.surprise),
                _ => out.surprise.push((f.time_s, f.surprise)),
            }
            match raw.last_mut() {
                Some((b, steps)) if b.token == f.token && (b.end_s - start).abs() < 1e-6 => {
                    b.end_s = end;
                    *steps += 1;
                }
                _ => raw.push((
                    Block {
                        start_s: start,
                        end_s: end,
                        token: f.token,
                        label: self.label(level, f.token),
                    },
                    1,
                )),
            }
        }
        // As in strata.json's segments: a run shorter than MIN_SEGMENT_STEPS is flicker and joins
        // the block before it (the newest run is kept: it may just have begun).
        let last = raw.len().saturating_sub(1);
        for (i, (block, steps)) in raw.into_iter().enumerate() {
            match out.blocks.last_mut() {
                Some(prev)
                    if (steps < MIN_SEGMENT_STEPS && i != last)
                        || prev.token == block.token
                        || (block.end_s - block.start_s < resolution_s && i != last) =>
                {
                    prev.end_s = block.end_s;
                }
                _ => out.blocks.push(block),
            }
        }
        out.markers = history.changes.iter().copied().filter(|c| c.0 >= t0 && c.0 <= t1).collect();
        out
    }
}

/// A colour per token: hues spread by the golden angle so neighbouring tokens differ (the same
/// colours as the PNG picture).
pub fn token_colour(token: u8) -> Color32 {
    let c = crate::picture::token_colour(token);
    Color32::from_rgb(c.0, c.1, c.2)
}

/// Paints one lane's layout into `rect`, mapping `t0..t1` across its width.
/// A changed stretch of one pattern layer, as a lane draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    pub start_s: f64,
    pub end_s: f64,
    pub strength: f64,
    pub period_s: f64,
    pub register: String,
}

/// Which timeline the lanes are drawn on.
#[derive(Debug, Clone, Copy)]
pub enum Timeline<'a> {
    /// Time as it passed (hosts that send no song position): the history's own times.
    WallClock,
    /// The host's song: `wall` (the history on the wall clock, whose frames carry their song
    /// positions) says where each moment of it was heard.
    Song { wall: &'a LaneHistory },
}

impl Timeline<'_> {
    /// Where history time `t` lies on this timeline (`None`: not in the song).
    pub fn place(&self, t: f64) -> Option<f64> {
        match self {
            Timeline::WallClock => Some(t),
            Timeline::Song { wall } => wall.song_time_of(t),
        }
    }

    /// A stretch `a..b` of history time on this timeline (one that crosses a loop keeps its
    /// length from where it starts).
    pub fn place_span(&self, a: f64, b: f64) -> Option<(f64, f64)> {
        let start = self.place(a)?;
        let end = self.place(b).filter(|&e| e >= start).unwrap_or(start + (b - a));
        Some((start, end))
    }
}

/// The changed stretches of `patterns` that reach into `t0..=t1` of `timeline`, the patterns'
/// 0 s lying at `stream_start_s` of the history ([`LaneHistory::stream_start_s`]).
pub fn stretches(patterns: &[&Pattern], stream_start_s: f64, timeline: &Timeline, t0: f64, t1: f64) -> Vec<Stretch> {
    patterns
        .iter()
        .flat_map(|p| {
            p.changes.iter().filter_map(move |c| {
                let (start_s, end_s) = timeline.place_span(c.start_s + stream_start_s, c.end_s + stream_start_s)?;
                (end_s >= t0 && start_s <= t1).then(|| Stretch { start_s, end_s, strength: c.strength, period_s: p.period_s, register: p.register.clone() })
            })
        })
        .collect()
}

/// Colour of a changed stretch (amber; the stronger, the more opaque).
pub fn stretch_colour(strength: f64) -> Color32 {
    Color32::from_rgba_unmultiplied(255, 180, 40, (50.0 + 110.0 * strength.clamp(0.0, 1.0)) as u8)
}

/// Paints changed stretches over a lane: a translucent band across the lane's lower third and a
/// bar along its bottom, so the token blocks stay readable underneath.
pub fn paint_change_stretches(painter: &egui::Painter, rect: Rect, stretches: &[Stretch], t0: f64, t1: f64) {
    let x = time_to_x(rect, t0, t1);
    for s in stretches {
        let (a, b) = (x(s.start_s), x(s.end_s).max(x(s.start_s) + 1.0));
        let band = Rect::from_min_max(Pos2::new(a, rect.bottom() - rect.height() / 3.0), Pos2::new(b, rect.bottom()));
        painter.rect_filled(band, 0.0, stretch_colour(s.strength));
        painter.line_segment([Pos2::new(a, rect.bottom() - 1.0), Pos2::new(b, rect.bottom() - 1.0)], Stroke::new(2.0, stretch_colour(1.0)));
    }
}

/// The colour of the layer the user selected.
pub const HIGHLIGHT: Color32 = Color32::from_rgb(0x7C, 0xC8, 0xFF);

/// Marks the selected layer's changed stretches across a whole lane, faintly, so what the other
/// layers did meanwhile can be read against them.
pub fn paint_highlight(painter: &egui::Painter, rect: Rect, stretches: &[Stretch], t0: f64, t1: f64) {
    let x = time_to_x(rect, t0, t1);
    for s in stretches {
        let band = Rect::from_min_max(Pos2::new(x(s.start_s), rect.top()), Pos2::new(x(s.end_s).max(x(s.start_s) + 1.0), rect.bottom()));
        painter.rect_filled(band, 0.0, HIGHLIGHT.gamma_multiply(0.18));
        painter.rect_stroke(band, 0.0, Stroke::new(1.0, HIGHLIGHT), egui::StrokeKind::Inside);
    }
}

/// The bars of a layer's profile badge inside `rect`: one per profile band, lowest band on the
/// left, each as tall as the band's weight (0..1, the loudest band 1; at least a hairline, so an
/// empty band still shows where it would be).
pub fn profile_bars(rect: Rect, profile: &[f32]) -> Vec<Rect> {
    let n = profile.len().max(1) as f32;
    let width = rect.width() / n;
    profile
        .iter()
        .enumerate()
        .map(|(k, &w)| {
            let h = (w.clamp(0.0, 1.0) * rect.height()).max(1.0);
            let x = rect.left() + k as f32 * width;
            Rect::from_min_max(Pos2::new(x + 0.5, rect.bottom() - h), Pos2::new(x + width - 0.5, rect.bottom()))
        })
        .collect()
}

/// A layer's profile as a small bar chart: where it sounds, low to high, readable at a glance.
pub fn paint_profile(painter: &egui::Painter, rect: Rect, profile: &[f32], colour: Color32) {
    painter.rect_stroke(rect, 0.0, Stroke::new(1.0, colour.gamma_multiply(0.35)), egui::StrokeKind::Outside);
    for bar in profile_bars(rect, profile) {
        painter.rect_filled(bar, 0.0, colour);
    }
}

/// Covers the silent stretches of a lane (`silences`, history times) with the lane's background
/// and the word "silence" where it fits: what the models make of silence is not a pattern.
pub fn paint_silences(painter: &egui::Painter, rect: Rect, silences: &[(f64, f64)], t0: f64, t1: f64) {
    let x = time_to_x(rect, t0, t1);
    for &(a, b) in silences {
        let r = Rect::from_min_max(Pos2::new(x(a), rect.top()), Pos2::new(x(b), rect.bottom()));
        if r.width() < 1.0 {
            continue;
        }
        painter.rect_filled(r, 0.0, LANE_BACKGROUND);
        if r.width() > 48.0 {
            painter.text(r.center(), egui::Align2::CENTER_CENTER, "silence", egui::FontId::proportional(11.0), Color32::from_gray(120));
        }
    }
}

pub fn paint_lane(painter: &egui::Painter, rect: Rect, layout: &LaneLayout, t0: f64, t1: f64) {
    let x = time_to_x(rect, t0, t1);
    painter.rect_filled(rect, 2.0, LANE_BACKGROUND);
    for b in &layout.blocks {
        let r = Rect::from_min_max(Pos2::new(x(b.start_s), rect.top() + 2.0), Pos2::new(x(b.end_s).max(x(b.start_s) + 1.0), rect.bottom() - 2.0));
        painter.rect_filled(r, 1.0, token_colour(b.token));
        if r.width() > 14.0 {
            painter.text(
                r.left_top() + egui::vec2(3.0, 2.0),
                egui::Align2::LEFT_TOP,
                &b.label,
                egui::FontId::proportional(12.0),
                Color32::from_rgb(20, 20, 20),
            );
        }
    }
    // Surprise: 0..12 (the change threshold is 6) over the lane's height.
    let y = |z: f32| rect.bottom() - 2.0 - (z.max(0.0) / 12.0).min(1.0) * (rect.height() - 4.0);
    let points: Vec<Pos2> = layout.surprise.iter().map(|&(t, z)| Pos2::new(x(t), y(z))).collect();
    if points.len() > 1 {
        painter.add(egui::Shape::line(points, Stroke::new(1.0, Color32::from_gray(235))));
    }
    for &(t, strength) in &layout.markers {
        let px = x(t);
        painter.line_segment(
            [Pos2::new(px, rect.top()), Pos2::new(px, rect.bottom())],
            Stroke::new(1.0 + 3.0 * strength, Color32::from_rgb(255, 70, 70)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(level: usize, time_s: f64, token: u8, change: Option<(f64, f32)>) -> LayerFrame {
        LayerFrame { level, time_s, token, surprise: 1.0, change, song_s: None }
    }

    #[test]
    fn a_profile_badge_has_one_bar_per_band_low_to_high_as_tall_as_its_weight() {
        let rect = Rect::from_min_size(Pos2::new(10.0, 20.0), egui::vec2(16.0, 10.0));
        let bars = profile_bars(rect, &[1.0, 0.5, 0.0, 2.0]);
        assert_eq!(bars.len(), 4);
        assert!(bars.windows(2).all(|w| w[0].right() <= w[1].left()), "left to right, apart: {bars:?}");
        assert!(bars.iter().all(|b| rect.contains_rect(*b) && b.bottom() == rect.bottom()), "{bars:?}");
        assert_eq!(bars[0].height(), 10.0);
        assert_eq!(bars[1].height(), 5.0);
        assert_eq!(bars[2].height(), 1.0, "an empty band is a hairline");
        assert_eq!(bars[3].height(), 10.0, "weights past 1 are clamped");
    }

    #[test]
    fn a_lane_shows_the_changed_stretches_that_reach_into_its_window() {
        use crate::layers::ChangeSpan;
        let stretch = |a: f64, b: f64| ChangeSpan { start_s: a, end_s: b, strength: 0.5 };
        let pattern = Pattern {
            period_s: 2.0,
            period_beats: None,
            period_bars: None,
            confidence: 1.0,
            strength: 0.5,
            scale_s: 2.0,
            profile: vec![1.0; 8],
            register: "low".into(),
            active: Vec::new(),
            changes: vec![stretch(5.0, 9.0), stretch(20.0, 30.0), stretch(50.0, 55.0)],
        };
        let shown = stretches(&[&pattern], 0.0, &Timeline::WallClock, 8.0, 25.0);
        let spans: Vec<(f64, f64)> = shown.iter().map(|s| (s.start_s, s.end_s)).collect();
        assert_eq!(spans, vec![(5.0, 9.0), (20.0, 30.0)], "partly visible stretches are kept whole");
        assert!(shown.iter().all(|s| s.period_s == 2.0 && s.register == "low"));
        assert!(stretches(&[&pattern], 0.0, &Timeline::WallClock, 31.0, 49.0).is_empty());
        // A later stream's stretches are drawn after the earlier streams.
        let later: Vec<(f64, f64)> = stretches(&[&pattern], 100.0, &Timeline::WallClock, 108.0, 125.0).iter().map(|s| (s.start_s, s.end_s)).collect();
        assert_eq!(later, vec![(105.0, 109.0), (120.0, 130.0)]);
        assert!(stretch_colour(1.0).a() > stretch_colour(0.0).a(), "stronger changes are more opaque");
    }

    #[test]
    fn blocks_join_steps_of_one_token_and_repeats_share_a_letter() {
        let mut h = LaneHistory::default();
        for (k, token) in [7, 7, 7, 3, 3, 3, 9, 7, 7].iter().enumerate() {
            h.push(frame(1, 0.5 * (k + 1) as f64, *token, (k == 4).then_some((2.2, 0.8))));
        }
        let layout = h.layout(1, 0.0, 10.0, 0.0);
        let labels: Vec<&str> = layout.blocks.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["A", "B", "A"]);
        assert_eq!((layout.blocks[0].start_s, layout.blocks[0].end_s), (0.0, 1.5));
        // The one-step 9 is flicker: it joins the block before it.
        assert_eq!((layout.blocks[1].start_s, layout.blocks[1].end_s), (1.5, 3.5));
        assert_eq!(layout.markers, vec![(2.2, 0.8)]);
        assert_eq!(layout.surprise.len(), 9);
        // A window shows only what lies in it.
        let late = h.layout(1, 3.6, 10.0, 0.0);
        assert_eq!(late.blocks.len(), 1);
        assert!(late.markers.is_empty());
    }

    #[test]
    fn activations_follow_one_another_and_the_hour_still_holds() {
        // Twenty-minute activations, each worker counting from 0 again, the second with a change.
        let mut h = LaneHistory::default();
        for activation in 0..5 {
            h.start_stream();
            for k in 1..=12_000 {
                let change = (activation == 1 && k == 600).then_some((60.0, 0.9));
                h.push(frame(0, k as f64 * 0.1, (k / 50 % 4) as u8, change));
            }
        }
        assert!((h.latest_time() - 5.0 * 1200.0).abs() < 1e-6, "{}", h.latest_time());
        assert!((h.stream_start_s() - 4.0 * 1200.0).abs() < 1e-6);
        assert!(h.latest_time() - h.earliest_time() <= HISTORY_S, "held {} s", h.latest_time() - h.earliest_time());
        let times: Vec<f64> = h.layout(0, 0.0, 6000.0, 0.0).surprise.iter().map(|p| p.0).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "one timeline, in order");
        // The second activation's change was at its 60 s: 1260 s, older than the hour kept.
        assert!(h.layout(0, 0.0, 6000.0, 0.0).markers.is_empty());
        let mut recent = LaneHistory::default();
        recent.start_stream();
        recent.push(frame(0, 1200.0, 0, None));
        recent.start_stream();
        recent.push(frame(0, 60.0, 0, Some((60.0, 0.9))));
        assert_eq!(recent.layout(0, 0.0, 2000.0, 0.0).markers, vec![(1260.0, 0.9)]);
    }

    #[test]
    fn silence_is_kept_as_stretches_on_the_sessions_timeline() {
        let mut history = LaneHistory::default();
        // Half a second of quiet is a pause, not silence.
        history.note_silence(10.0, 0.5);
        assert!(history.silences(&Timeline::WallClock, 0.0, 100.0).is_empty());
        // The worker's reports of one growing run are one stretch.
        history.note_silence(12.0, 1.5);
        history.note_silence(14.0, 3.5);
        history.note_silence(16.0, 5.5);
        assert_eq!(history.silences(&Timeline::WallClock, 0.0, 100.0), vec![(10.5, 16.0)]);
        // A new run later is a stretch of its own.
        history.note_silence(30.0, 2.0);
        assert_eq!(history.silences(&Timeline::WallClock, 0.0, 100.0), vec![(10.5, 16.0), (28.0, 30.0)]);
        assert_eq!(history.silences(&Timeline::WallClock, 20.0, 29.0), vec![(28.0, 30.0)]);
        // A new activation's stream counts from 0 again; its silence goes after what is held.
        history.push(frame(0, 40.0, 1, None));
        history.start_stream();
        history.note_silence(3.0, 2.0);
        assert_eq!(history.silences(&Timeline::WallClock, 35.0, 100.0), vec![(41.0, 43.0)]);
        // NaN (no report) is no silence.
        history.note_silence(5.0, f64::NAN);
        assert_eq!(history.silences(&Timeline::WallClock, 0.0, 100.0).len(), 3);
    }

    #[test]
    fn history_keeps_an_hour_and_no_more() {
        let mut h = LaneHistory::default();
        for k in 0..80_000 {
            h.push(frame(0, k as f64 * 0.1, (k / 50 % 4) as u8, None));
        }
        assert!((h.latest_time() - 7999.9).abs() < 1e-6);
        assert!(h.latest_time() - h.earliest_time() <= HISTORY_S);
        assert!(h.latest_time() - h.earliest_time() > HISTORY_S - 1.0);
        assert_eq!(h.current(0).map(|f| f.time_s), Some(h.latest_time()));
        assert_eq!(h.label(0, 9), "?");
        // Drawn an hour wide at 1000 pixels, the lane holds at most about one block and one
        // surprise point per pixel.
        let (t1, t0) = (h.latest_time(), h.latest_time() - HISTORY_S);
        let coarse = h.layout(0, t0, t1, HISTORY_S / 1000.0);
        assert!(coarse.surprise.len() <= 1001, "{}", coarse.surprise.len());
        assert!(coarse.blocks.len() <= 1001, "{}", coarse.blocks.len());
    }

    #[test]
    fn looping_the_song_keeps_one_pass_the_newest() {
        let mut song = LaneHistory::default();
        // Two passes of an 8 s loop, a step every 0.5 s; the second pass plays token 2 and has
        // a change at 3 s of the song.
        for k in 1..=32 {
            let t = k as f64 * 0.5;
            let song_s = (t - 0.5) % 8.0 + 0.5;
            let (token, change) = if k > 16 { (2, (k == 22).then_some((t - 0.5, 1.0))) } else { (1, None) };
            song.place(frame(0, t, token, change), song_s);
        }
        let layout = song.layout(0, 0.0, 20.0, 0.0);
        assert_eq!(layout.surprise.len(), 16, "one step per half second of the loop");
        assert!(layout.surprise.iter().all(|&(t, _)| t > 0.0 && t <= 8.0));
        assert_eq!(layout.blocks.iter().map(|b| b.token).collect::<Vec<_>>(), vec![2], "the newest pass");
        assert_eq!(layout.markers, vec![(2.5, 1.0)], "its change, at its place in the song");
        assert_eq!(song.playhead_s(), 8.0);
        // Jumping back to 2 s replaces the step there and only it.
        song.place(frame(0, 16.5, 3, None), 2.0);
        let tokens: Vec<u8> = song.levels[0].frames.iter().map(|f| f.token).collect();
        assert_eq!(tokens.len(), 16);
        assert_eq!(tokens.iter().filter(|&&t| t == 3).count(), 1);
    }

    #[test]
    fn on_the_song_timeline_stretches_and_silences_lie_where_they_were_heard_in_the_song() {
        use crate::layers::ChangeSpan;
        let mut wall = LaneHistory::default();
        // Heard from 0 s; the song looped from 10 s back to 0 s at 10 s of wall time.
        for k in 1..=40 {
            let t = k as f64 * 0.5;
            let mut f = frame(0, t, 1, None);
            f.song_s = Some(t % 10.0);
            wall.push(f);
        }
        let timeline = Timeline::Song { wall: &wall };
        assert_eq!(timeline.place(13.0), Some(3.0));
        let pattern = Pattern {
            period_s: 2.0,
            period_beats: None,
            period_bars: None,
            confidence: 1.0,
            strength: 1.0,
            scale_s: 2.0,
            profile: vec![],
            register: "low".into(),
            active: vec![],
            changes: vec![ChangeSpan { start_s: 12.0, end_s: 14.0, strength: 1.0 }],
        };
        let shown: Vec<(f64, f64)> = stretches(&[&pattern], 0.0, &timeline, 0.0, 10.0).iter().map(|s| (s.start_s, s.end_s)).collect();
        assert_eq!(shown, vec![(2.0, 4.0)]);
        let mut with_silence = wall.clone();
        with_silence.note_silence(19.0, 2.0);
        assert_eq!(with_silence.silences(&Timeline::Song { wall: &wall }, 0.0, 10.0), vec![(7.0, 9.0)]);
    }
}
