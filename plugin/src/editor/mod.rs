//! The egui editor. It only reads: the worker's queues and ONNX Runtime's status. Nothing here
//! touches the audio thread.
//!
//! Layout: the take row (Record, Export), one thin header strip with what the user must trust
//! (input level, backend, a health dot naming any problem; the full diagnostics one click away,
//! see [`header`]), the controls (visible scales, time span, freeze), then the lanes, one per
//! timescale, longest on top, filling the rest of the window (see [`lanes`]).

pub mod header;
pub mod lanes;

use std::sync::{Arc, Mutex};

use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::*;
use nice_plug_egui::baseview::WindowSize;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, Frame, NiceEguiApp,
    RepaintNotifier,
};

use crate::layers::LayerFrame;
use crate::params::{StrataParams, ViewSettings, MIN_EDITOR_SIZE, SPAN_RANGE_S};
use crate::take::{ExportState, RecorderState, TakeControl};
use crate::layers::Pattern;
use crate::worker::{AnalysisState, StatusFeed, WorkerStatus};
use lanes::{LaneHistory, Timeline};

/// What the plugin shares with its editor. Its locks are taken by the main thread (when the
/// plugin is activated) and the GUI thread, never by the audio thread.
pub struct EditorShared {
    /// The editor's end of the current worker's status queue.
    pub feed: Mutex<Option<StatusFeed>>,
    /// Wakes the editor when the worker has published.
    pub repaint: RepaintNotifier,
    /// The last hour of layers. It lives here, not in the editor, so closing the editor loses
    /// nothing (while it is closed the frames wait in the worker's queue, which holds an hour).
    pub history: Mutex<LaneHistory>,
    /// The same layers on the host's song timeline, where the host sends its position: a
    /// looped or replayed stretch of the song is there once, as last heard.
    pub song_history: Mutex<LaneHistory>,
    /// The Record switch, the take and its export. Here so they outlive the editor window and
    /// the worker of each activation.
    pub takes: Arc<TakeControl>,
}

impl EditorShared {
    pub fn new() -> Self {
        Self {
            feed: Mutex::new(None),
            repaint: RepaintNotifier::new(),
            history: Mutex::new(LaneHistory::default()),
            song_history: Mutex::new(LaneHistory::default()),
            takes: Arc::new(TakeControl::new()),
        }
    }

    /// Like [`EditorShared::new`], with takes recorded into `dir`.
    pub fn with_takes_dir(dir: std::path::PathBuf) -> Self {
        Self { takes: Arc::new(TakeControl::with_dir(dir)), ..Self::new() }
    }

    /// Points the editor at a new worker's queue; its layers go on after the last one's.
    pub fn replace_feed(&self, feed: StatusFeed) {
        // Lock order: the feed, then the history (as in `poll`), so no frame of the old worker
        // reaches the history after the new stream has started.
        let mut current = self.feed.lock().unwrap_or_else(|e| e.into_inner());
        self.history.lock().unwrap_or_else(|e| e.into_inner()).start_stream();
        *current = Some(feed);
    }

    /// Moves every layer frame waiting into the history (`scratch` is reused for them), and
    /// returns the newest status waiting (if any), the analysis state and the newest pattern
    /// layers.
    fn poll(&self, scratch: &mut Vec<LayerFrame>) -> Polled {
        let mut feed = self.feed.lock().unwrap_or_else(|e| e.into_inner());
        let Some(feed) = feed.as_mut() else {
            return Polled::default();
        };
        scratch.clear();
        feed.drain_layers(scratch);
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let mut song = self.song_history.lock().unwrap_or_else(|e| e.into_inner());
        for f in scratch.drain(..) {
            history.push(f);
            if let Some(song_s) = f.song_s {
                // On the history's timeline, which runs on across activations (each worker's
                // stream starts at 0 s again).
                song.place(history.on_timeline(f), song_s);
            }
        }
        let status = feed.latest();
        if let Some(s) = &status {
            history.note_silence(s.received_samples as f64 / f64::from(s.sample_rate_hz.max(1.0)), f64::from(s.silent_seconds));
        }
        Polled { status, analysis: Some(feed.analysis()), patterns: Some(feed.patterns()) }
    }
}

/// What one look at the worker's queues brings.
#[derive(Default)]
struct Polled {
    status: Option<WorkerStatus>,
    analysis: Option<AnalysisState>,
    patterns: Option<Arc<Vec<Pattern>>>,
}

impl Default for EditorShared {
    fn default() -> Self {
        Self::new()
    }
}

/// Creates the editor, opening at the size the user last left it.
pub fn create(params: Arc<StrataParams>, shared: Arc<EditorShared>) -> Option<EguiEditor<StrataEditor>> {
    let (w, h) = params.view().clamped_editor_size();
    let state = EguiEditorState::from_size(LogicalSize::new(w as f32, h as f32), 1.0);
    let settings = EguiNiceSettings::new().with_resize_hint(
        ResizeHint::resizable()
            .with_min_logical_size(LogicalSize::new(MIN_EDITOR_SIZE.0 as f32, MIN_EDITOR_SIZE.1 as f32)),
    );
    let repaint = shared.repaint.clone();
    create_egui_editor(state, repaint, settings, StrataEditor::new(params, shared))
}

/// The editor's own state.
pub struct StrataEditor {
    params: Arc<StrataParams>,
    shared: Arc<EditorShared>,
    /// The newest worker status seen; kept when the worker stops so the user sees the last state.
    status: Option<WorkerStatus>,
    /// Where the analysis stands.
    analysis: Option<AnalysisState>,
    /// The newest pattern layers the worker found (kept when the worker stops).
    patterns: Arc<Vec<Pattern>>,
    /// Scratch for frames taken from the queue.
    incoming: Vec<LayerFrame>,
    /// The time at the lanes' right edge while frozen (they follow the newest step otherwise).
    view_end_s: f64,
    /// Whether the diagnostics panel under the header is open.
    diagnostics_open: bool,
    /// The pattern layer the user clicked (its period, seconds): highlighted across the lanes.
    selected_layer: Option<f64>,
}

impl StrataEditor {
    pub fn new(params: Arc<StrataParams>, shared: Arc<EditorShared>) -> Self {
        Self {
            params,
            shared,
            status: None,
            analysis: None,
            patterns: Arc::default(),
            incoming: Vec::new(),
            view_end_s: 0.0,
            diagnostics_open: false,
            selected_layer: None,
        }
    }

    /// Draws the whole editor into `ui` (also used by tests, without a window).
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        let Polled { status, analysis, patterns } = self.shared.poll(&mut self.incoming);
        if let Some(s) = status {
            self.status = Some(s);
        }
        if analysis.is_some() {
            self.analysis = analysis;
        }
        if let Some(p) = patterns {
            self.patterns = p;
        }
        let shared = self.shared.clone();
        let history = shared.history.lock().unwrap_or_else(|e| e.into_inner());
        let song = shared.song_history.lock().unwrap_or_else(|e| e.into_inner());
        // The song's timeline once the host has said where its song is; the wall clock until then
        // (and for hosts that never do).
        let (timeline, drawn) = if song.levels() > 0 { (Timeline::Song { wall: &history }, &*song) } else { (Timeline::WallClock, &*history) };
        let saved = self.params.view();
        let mut view = saved.clone();
        // The take row comes first: its controls keep one place whatever the rows below say.
        take_section(ui, &self.shared.takes, &mut view, self.selected_layer);
        let runtime = header::RuntimeState::current();
        let header = header::HeaderInput { runtime: &runtime, analysis: self.analysis.as_ref(), status: self.status.as_ref(), history: &history, timeline: &timeline };
        header::strip(ui, &header, &mut self.diagnostics_open);
        let scales = match &self.analysis {
            Some(AnalysisState::Running { scales_s, .. }) => scales_s.clone(),
            _ => Vec::new(),
        };
        controls(ui, &mut view, &scales);
        if !view.frozen {
            self.view_end_s = match timeline {
                Timeline::WallClock => history.latest_time(),
                // The song from its start while it fits; then the playhead a tenth from the right.
                Timeline::Song { .. } => (song.playhead_s() + 0.1 * view.span_s).max(view.span_s),
            };
        }
        let lanes = LanesInput {
            analysis: self.analysis.as_ref(),
            history: drawn,
            wall: &history,
            timeline,
            status: self.status.as_ref(),
            patterns: &self.patterns,
            scales: &scales,
            selected: self.selected_layer,
        };
        if let Some(clicked) = lanes_section(ui, &lanes, &mut view, &mut self.view_end_s) {
            // A second click on the same layer lets it go.
            let again = self.selected_layer.is_some_and(|s| same_layer(clicked, s));
            self.selected_layer = if again { None } else { Some(clicked) };
        }
        if view != saved {
            self.params.update_view(|v| {
                let size = v.editor_size;
                *v = view;
                v.editor_size = size;
            });
        }
    }
}

impl NiceEguiApp for StrataEditor {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        _gui: nice_plug::context::gui::GuiContext,
        _frame: &mut Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        crate::memory::release_freed_memory();
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut Frame) {
        egui::CentralPanel::default().show(ui, |ui| self.draw(ui));
    }

    fn resized(&mut self, new_size: WindowSize) {
        let (w, h) = (new_size.logical.width.round(), new_size.logical.height.round());
        if w >= 1.0 && h >= 1.0 {
            self.params
                .update_view(|v| v.editor_size = (w as u32, h as u32));
        }
    }
}

/// The colour of warnings and errors.
pub(crate) const WARNING: egui::Color32 = egui::Color32::from_rgb(0xE0, 0x6C, 0x4C);

/// Record, the take, and its export: one row (the buttons first, at fixed places, then what the
/// take is), with a second for the export's progress or result.
/// Record and Export; the export's picture highlights `selected_layer` (a period, seconds).
fn take_section(ui: &mut egui::Ui, takes: &Arc<TakeControl>, view: &mut ViewSettings, selected_layer: Option<f64>) {
    ui.horizontal_wrapped(|ui| {
        record_button(ui, takes);
        ui.separator();
        export_controls(ui, takes, view, selected_layer);
        ui.separator();
        take_state(ui, takes);
    });
    export_state(ui, takes, view, selected_layer);
}

/// The Record switch: a painted dot and a button that reads what it is doing.
fn record_button(ui: &mut egui::Ui, takes: &Arc<TakeControl>) {
    let recording = takes.is_recording();
    // The record dot is painted: the default fonts have no circle glyph.
    let (dot, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
    let red = egui::Color32::from_rgb(0xE0, 0x40, 0x40);
    if recording {
        ui.painter().circle_filled(dot.center(), 5.5, red);
    } else {
        ui.painter().circle_stroke(dot.center(), 5.0, egui::Stroke::new(1.5, red));
    }
    let label = if recording { "Recording" } else { "Record" };
    let button = egui::Button::new(egui::RichText::new(label).color(if recording { egui::Color32::WHITE } else { ui.visuals().text_color() }))
        .fill(if recording { egui::Color32::from_rgb(0xC0, 0x30, 0x30) } else { ui.visuals().widgets.inactive.bg_fill })
        // One width on and off, so nothing after it moves when it is clicked.
        .min_size(egui::vec2(84.0, 0.0));
    if ui
        .add(button)
        .on_hover_text(format!("Record the track's audio (all channels, untouched) to a take on disk, in {}", takes.dir().display()))
        .clicked()
    {
        takes.set_recording(!recording);
    }
}

/// Where the export goes, and the button that starts it (for the last take, when nothing is
/// recording or exporting).
fn export_controls(ui: &mut egui::Ui, takes: &Arc<TakeControl>, view: &mut ViewSettings, selected_layer: Option<f64>) {
    ui.label("Export to");
    ui.add(egui::TextEdit::singleline(&mut view.export_folder).desired_width(220.0).hint_text("folder"))
        .on_hover_text("The folder the export goes into; each take gets a folder of its own inside it");
    let running = matches!(takes.export_state(), ExportState::Running { .. });
    let can_export = takes.take().is_some() && !running && !takes.is_recording();
    if ui.add_enabled(can_export, egui::Button::new("Export")).on_hover_text("Stems, annotations and the analysis of the last take").clicked() {
        takes.start_export(std::path::Path::new(view.export_folder.trim()), false, selected_layer);
    }
}

/// What the recorder holds: nothing yet, the take being recorded, the last take, or why it failed.
fn take_state(ui: &mut egui::Ui, takes: &Arc<TakeControl>) {
    match takes.recorder_state() {
        RecorderState::Idle => {
            ui.weak("no take yet");
        }
        RecorderState::Recording { sample_rate, channels, .. } => {
            let s = takes.recorded_frames() as f64 / f64::from(sample_rate.max(1));
            ui.label(format!("recording {} · {channels} ch · {sample_rate} Hz", clock(s)));
        }
        RecorderState::Ready(take) => {
            ui.label(format!("{} · {} · {} ch", take.name, clock(take.duration_s()), take.channels))
                .on_hover_text(take.path.display().to_string());
            if take.dropped_frames > 0 {
                ui.colored_label(
                    WARNING,
                    format!("{} frames missing: the worker fell behind while recording", take.dropped_frames),
                );
            }
        }
        RecorderState::Failed { reason, kept } => {
            ui.colored_label(WARNING, reason);
            if let Some(take) = kept {
                ui.label(format!("kept: {} ({})", take.path.display(), clock(take.duration_s())));
            }
        }
    }
}

/// Where the export stands, on a line of its own: a question before replacing an earlier export,
/// progress with Cancel, or how it ended.
fn export_state(ui: &mut egui::Ui, takes: &Arc<TakeControl>, view: &ViewSettings, selected_layer: Option<f64>) {
    match takes.export_state() {
        ExportState::Idle => {}
        ExportState::NeedsConfirmation { dest, .. } => {
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(WARNING, format!("{} already holds an export of this take.", dest.display()));
                if ui.button("Replace it").clicked() {
                    takes.start_export(std::path::Path::new(view.export_folder.trim()), true, selected_layer);
                }
                if ui.button("Cancel").clicked() {
                    takes.dismiss_export();
                }
            });
        }
        ExportState::Running { dest, progress } => {
            ui.horizontal_wrapped(|ui| {
                let (step, fraction) = progress.get();
                ui.add(egui::ProgressBar::new(fraction as f32).desired_width(180.0).show_percentage());
                ui.label(format!("{} → {}", step.describe(), dest.display()));
                if ui.button("Cancel").clicked() {
                    progress.cancel();
                }
            });
            // Keep the bar moving while nothing else asks for a repaint.
            ui.ctx().request_repaint_after(std::time::Duration::from_millis(200));
        }
        ExportState::Done { dest, files, stems, max_sum_error } => {
            ui.horizontal_wrapped(|ui| {
                ui.label(format!(
                    "Exported {files} files ({stems} layer stems and the residual, summing back within {max_sum_error:.0e}) to {}",
                    dest.display()
                ));
                if ui.small_button("OK").clicked() {
                    takes.dismiss_export();
                }
            });
        }
        ExportState::Failed { reason } => {
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(WARNING, format!("Export failed: {reason}"));
                if ui.small_button("OK").clicked() {
                    takes.dismiss_export();
                }
            });
        }
    }
}

/// Seconds as m:ss, or h:mm:ss from an hour.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Visible scales, time span and freeze; they persist with the plugin's state.
fn controls(ui: &mut egui::Ui, view: &mut ViewSettings, scales: &[f64]) {
    ui.horizontal_wrapped(|ui| {
        ui.checkbox(&mut view.frozen, "Freeze")
            .on_hover_text("Stop following the playhead: drag to scroll, scroll the wheel to zoom");
        ui.label("Span");
        let mut span = view.clamped_span_s();
        ui.add(egui::Slider::new(&mut span, SPAN_RANGE_S.0..=SPAN_RANGE_S.1).logarithmic(true).suffix(" s"));
        view.span_s = span.clamp(SPAN_RANGE_S.0, SPAN_RANGE_S.1);
        ui.separator();
        ui.label("Scales");
        for &scale in scales {
            let mut shown = !view.hidden_scales.iter().any(|h| (h - scale).abs() < 1e-9);
            if ui.checkbox(&mut shown, format!("{scale} s")).changed() {
                view.hidden_scales.retain(|h| (h - scale).abs() >= 1e-9);
                if !shown {
                    view.hidden_scales.push(scale);
                }
            }
        }
    });
}

/// Width of the readout column left of the lanes, in points.
const READOUT_WIDTH: f32 = 230.0;
/// ...but never more than this fraction of the window, so a small window keeps a timeline.
const READOUT_MAX_FRACTION: f32 = 0.3;
/// Height of one line of a lane's readout, in points (12.5 pt text).
const READOUT_LINE_H: f32 = 15.0;
/// Width (points) of a pattern layer's profile badge: two points per profile band.
const PROFILE_BADGE_W: f32 = 2.0 * crate::layers::patterns::PROFILE_BANDS as f32;
/// Lines of a lane's readout before its pattern layers' lines: the title and the period.
const READOUT_HEAD_LINES: usize = 2;

/// The lanes, longest scale on top, with a readout per lane, a time grid and hover details.
/// What the lanes are drawn from.
struct LanesInput<'a> {
    analysis: Option<&'a AnalysisState>,
    /// The history drawn: the wall clock's or the song's.
    history: &'a LaneHistory,
    /// The wall clock's history (the patterns' times are its stream's).
    wall: &'a LaneHistory,
    timeline: Timeline<'a>,
    status: Option<&'a WorkerStatus>,
    /// The pattern layers; each is drawn on the lane of its timescale.
    patterns: &'a [Pattern],
    scales: &'a [f64],
    /// The period of the pattern layer the user selected, if any.
    selected: Option<f64>,
}

/// Draws the lanes; returns the period of the pattern layer whose readout line was clicked.
fn lanes_section(ui: &mut egui::Ui, input: &LanesInput, view: &mut ViewSettings, view_end_s: &mut f64) -> Option<f64> {
    let LanesInput { analysis, history, wall, timeline: axis, status, patterns, scales, selected } = *input;
    match analysis {
        None | Some(AnalysisState::Starting) => {
            ui.label("Layers: loading the models…");
            return None;
        }
        Some(AnalysisState::Unavailable(reason)) => {
            ui.colored_label(egui::Color32::from_rgb(0xE0, 0x6C, 0x4C), format!("Layers unavailable: {reason}"));
            return None;
        }
        Some(AnalysisState::Running { .. }) => {}
    }
    if history.levels() == 0 {
        ui.label("Layers: waiting for the first seconds of audio (the shortest layer needs 0.2 s).");
        return None;
    }
    let visible: Vec<usize> = (0..scales.len())
        .rev()
        .filter(|&i| !view.hidden_scales.iter().any(|h| (h - scales[i]).abs() < 1e-9))
        .collect();
    if visible.is_empty() {
        ui.label("All scales are hidden.");
        return None;
    }
    let avail = ui.available_rect_before_wrap();
    let grid_h = 18.0;
    let lane_h = ((avail.height() - grid_h) / visible.len() as f32).clamp(24.0, 140.0);
    let timeline = egui::Rect::from_min_max(
        egui::pos2(avail.left() + READOUT_WIDTH.min(READOUT_MAX_FRACTION * avail.width()), avail.top()),
        egui::pos2(avail.right(), avail.top() + lane_h * visible.len() as f32),
    );
    let response = ui.allocate_rect(
        egui::Rect::from_min_max(avail.min, egui::pos2(avail.right(), timeline.bottom() + grid_h)),
        egui::Sense::click_and_drag(),
    );
    let t1 = *view_end_s;
    let t0 = t1 - view.span_s;
    // Free scroll and zoom while frozen.
    if view.frozen {
        if response.dragged() {
            *view_end_s -= f64::from(response.drag_delta().x / timeline.width().max(1.0)) * view.span_s;
        }
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if response.hovered() && scroll != 0.0 {
            view.span_s = (view.span_s * f64::from((-scroll / 200.0).exp())).clamp(SPAN_RANGE_S.0, SPAN_RANGE_S.1);
        }
    }
    let painter = ui.painter_at(response.rect);
    let silences = wall.silences(&axis, t0, t1);
    // The selected layer's changed stretches, drawn across every lane.
    let selected_pattern: Vec<&Pattern> = patterns.iter().filter(|p| is_selected(p, selected)).collect();
    let highlighted = lanes::stretches(&selected_pattern, wall.stream_start_s(), &axis, t0, t1);
    for (row, &level) in visible.iter().enumerate() {
        let top = timeline.top() + row as f32 * lane_h;
        let row = LaneRow {
            level,
            lane: egui::Rect::from_min_max(egui::pos2(timeline.left(), top + 2.0), egui::pos2(timeline.right(), top + lane_h - 2.0)),
            readout_at: egui::pos2(avail.left() + 4.0, top + 4.0),
            lines: (((lane_h - 4.0) / READOUT_LINE_H).floor() as usize).max(1),
        };
        paint_lane_row(ui, &painter, input, &row, &silences, (t0, t1));
        lanes::paint_highlight(&painter, row.lane, &highlighted, t0, t1);
    }
    let grid = LaneGrid { timeline, lane_h, visible, t0, t1, span_s: view.span_s };
    // A click on a pattern layer's line in a lane's readout selects that layer.
    let clicked = response
        .clicked()
        .then(|| response.interact_pointer_pos())
        .flatten()
        .and_then(|p| grid.readout_layer_at(p, patterns, scales));
    paint_grid(ui, &painter, &grid, status.and_then(|s| s.tempo_bpm.map(|b| (b, s.beats_per_bar))));
    if let Some(pos) = response.hover_pos().filter(|p| timeline.contains(*p)) {
        lane_hover(ui, input, &grid, pos);
    }
    clicked
}

/// Where the lanes lie: the timeline's rectangle (the lanes right of their readouts), each lane's
/// height, the levels shown top to bottom, and the times shown.
struct LaneGrid {
    timeline: egui::Rect,
    lane_h: f32,
    visible: Vec<usize>,
    /// The span shown as the frame began, and its length now (a zoom this frame changes it).
    t0: f64,
    t1: f64,
    span_s: f64,
}

impl LaneGrid {
    /// The x of time `t`.
    fn x(&self, t: f64) -> f32 {
        self.timeline.left() + ((t - self.t0) / self.span_s) as f32 * self.timeline.width()
    }

    /// The time at `x`, the inverse of [`Self::x`].
    fn time_at(&self, x: f32) -> f64 {
        self.t0 + f64::from((x - self.timeline.left()) / self.timeline.width()) * self.span_s
    }

    /// The level of the lane at height `y`, if one is there.
    fn level_at(&self, y: f32) -> Option<usize> {
        self.visible.get(((y - self.timeline.top()) / self.lane_h) as usize).copied()
    }

    /// The period of the pattern layer whose readout line is at `p`, left of the timeline.
    fn readout_layer_at(&self, p: egui::Pos2, patterns: &[Pattern], scales: &[f64]) -> Option<f64> {
        if p.x >= self.timeline.left() || p.y < self.timeline.top() {
            return None;
        }
        let level = self.level_at(p.y)?;
        let top = self.timeline.top() + ((p.y - self.timeline.top()) / self.lane_h).floor() * self.lane_h;
        let line = ((p.y - top - 4.0) / READOUT_LINE_H).floor() as usize;
        lane_patterns(patterns, scales[level]).get(line.checked_sub(READOUT_HEAD_LINES)?).map(|p| p.period_s)
    }
}

/// The grid under the lanes: bars when the host gives a tempo (BPM, beats per bar), seconds
/// otherwise; nothing happened before the analysis started, so no lines at negative times.
fn paint_grid(ui: &egui::Ui, painter: &egui::Painter, grid: &LaneGrid, tempo: Option<(f64, u32)>) {
    let grid_colour = egui::Color32::from_white_alpha(40);
    let (step, unit) = grid_step(grid.span_s, tempo);
    let (top, bottom) = (grid.timeline.top(), grid.timeline.bottom());
    let mut t = (grid.t0.max(0.0) / step).ceil() * step;
    while t <= grid.t1 {
        let x = grid.x(t);
        painter.line_segment([egui::pos2(x, top), egui::pos2(x, bottom)], egui::Stroke::new(1.0, grid_colour));
        let label = match unit {
            GridUnit::Seconds => format!("{t:.0} s"),
            GridUnit::Bars(bar_s) => format!("bar {}", (t / bar_s).round() as i64 + 1),
        };
        painter.text(egui::pos2(x + 2.0, bottom + 2.0), egui::Align2::LEFT_TOP, label, egui::FontId::proportional(11.0), ui.visuals().weak_text_color());
        t += step;
    }
}

/// The tooltip at `pos` on a lane: time, token, period and surprise, and the changed stretch of
/// the lane's layer there, if any.
fn lane_hover(ui: &egui::Ui, input: &LanesInput, grid: &LaneGrid, pos: egui::Pos2) {
    let LanesInput { history, wall, timeline: axis, status, patterns, scales, .. } = *input;
    let Some(level) = grid.level_at(pos.y) else { return };
    let t = grid.time_at(pos.x);
    // Nothing was heard before 0 s, whatever the first window reached back to.
    let known = t >= 0.0 && t >= history.earliest_time() - scales[level] && t <= history.latest_time();
    if let Some(f) = history.frame_at(level, t).filter(|_| known) {
        let here = lane_patterns(patterns, scales[level]);
        let changed = lanes::stretches(&here, wall.stream_start_s(), &axis, t, t)
            .into_iter()
            .find(|s| s.start_s <= t && t <= s.end_s)
            .map(|s| format!("\nlayer {:.2} s ({}) changed {:.1}–{:.1} s, for {:.1} s", s.period_s, s.register, s.start_s, s.end_s, s.end_s - s.start_s))
            .unwrap_or_default();
        let tip = format!(
            "{t:.2} s · pattern {} · surprise {:+.1}\n{}{changed}",
            history.label(level, f.token),
            f.surprise,
            period_text(status, level)
        );
        egui::Tooltip::always_open(ui.ctx().clone(), ui.layer_id(), ui.scope_id().with("lane-hover"), egui::PopupAnchor::Pointer)
            .show(|ui| ui.label(tip));
    }
}

/// Where one lane goes: its layer, its rectangle on the timeline, where its readout starts and
/// how many lines of readout fit.
struct LaneRow {
    level: usize,
    lane: egui::Rect,
    readout_at: egui::Pos2,
    lines: usize,
}

/// One lane: its blocks, silences, changed stretches and warm-up text over `t0..t1`, and its
/// readout (the current pattern, the period, the pattern layers at its timescale).
fn paint_lane_row(ui: &egui::Ui, painter: &egui::Painter, input: &LanesInput, row: &LaneRow, silences: &[(f64, f64)], (t0, t1): (f64, f64)) {
    let LanesInput { history, wall, timeline, status, patterns, scales, .. } = *input;
    let (level, lane) = (row.level, row.lane);
    let resolution_s = (t1 - t0) / f64::from(lane.width().max(1.0));
    lanes::paint_lane(painter, lane, &history.layout(level, t0, t1, resolution_s), t0, t1);
    lanes::paint_silences(painter, lane, silences, t0, t1);
    if history.current(level).is_none() {
        // Warm-up: this layer's window has not filled yet; say how long is left.
        let received_s = status.map_or(0.0, |s| s.received_samples as f64 / f64::from(s.sample_rate_hz.max(1.0)));
        painter.text(lane.center(), egui::Align2::CENTER_CENTER, warm_up_text(scales[level], received_s), egui::FontId::proportional(13.0), ui.visuals().weak_text_color());
    }
    let here = lane_patterns(patterns, scales[level]);
    lanes::paint_change_stretches(painter, lane, &lanes::stretches(&here, wall.stream_start_s(), &timeline, t0, t1), t0, t1);
    let current = history
        .current(level)
        .map(|f| format!("now {}", history.label(level, f.token)))
        .unwrap_or_default();
    let tempo = status.and_then(|s| s.tempo_bpm.map(|b| (b, s.beats_per_bar)));
    // One line each, as many as the lane has room for (a small window shows the first ones):
    // the title, the period, then each pattern layer's line, which a click selects.
    let head = format!("{} s layer  {current}", scales[level]);
    // A pattern layer's line starts with its profile badge: where it sounds, low to high.
    let lines = [(head, false, None), (period_text(status, level), false, None)]
        .into_iter()
        .chain(here.iter().map(|p| (pattern_text(p, tempo), is_selected(p, input.selected), Some(&p.profile))));
    for (k, (line, selected, profile)) in lines.take(row.lines).enumerate() {
        let colour = if selected { lanes::HIGHLIGHT } else { ui.visuals().text_color() };
        let mut at = row.readout_at + egui::vec2(0.0, k as f32 * READOUT_LINE_H);
        if let Some(profile) = profile {
            let badge = egui::Rect::from_min_size(at + egui::vec2(0.0, 2.0), egui::vec2(PROFILE_BADGE_W, READOUT_LINE_H - 5.0));
            lanes::paint_profile(painter, badge, profile, colour);
            at.x += PROFILE_BADGE_W + 5.0;
        }
        painter.text(at, egui::Align2::LEFT_TOP, line, egui::FontId::proportional(12.5), colour);
    }
}

/// Whether `p` is the layer selected by its period.
fn is_selected(p: &Pattern, selected: Option<f64>) -> bool {
    selected.is_some_and(|s| same_layer(p.period_s, s))
}

/// Whether two periods (seconds) are one layer's: the live worker finds the layers again every
/// second, and a period may move a little between two finds.
fn same_layer(period_s: f64, other_s: f64) -> bool {
    crate::layers::patterns::same_period(period_s, other_s)
}

/// What a lane says before its first step: how many more seconds of audio its window needs.
pub fn warm_up_text(scale_s: f64, received_s: f64) -> String {
    let left = scale_s - received_s;
    if left >= 1.0 {
        format!("listening: {:.0} s more for the {scale_s} s layer", left.ceil())
    } else if left > 0.0 {
        format!("listening: under a second more for the {scale_s} s layer")
    } else {
        format!("listening: the {scale_s} s layer's first step is due")
    }
}

/// The pattern layers living at the timescale `scale_s`, strongest first.
fn lane_patterns(patterns: &[Pattern], scale_s: f64) -> Vec<&Pattern> {
    let mut here: Vec<&Pattern> = patterns.iter().filter(|p| p.scale_s == scale_s).collect();
    here.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    here
}

/// One pattern layer in a line: its period (in beats or bars when the tempo is known), where it
/// sounds, and how many changes it went through.
pub fn pattern_text(p: &Pattern, tempo: Option<(f64, u32)>) -> String {
    let period = match tempo.filter(|(bpm, _)| *bpm > 0.0) {
        Some((bpm, beats_per_bar)) => {
            let beats = p.period_s * bpm / 60.0;
            let bars = beats / f64::from(beats_per_bar.max(1));
            if bars >= 1.0 {
                format!("{bars:.2} bars")
            } else {
                format!("{beats:.2} beats")
            }
        }
        None => format!("{:.2} s", p.period_s),
    };
    let changes = match p.changes.len() {
        0 => String::new(),
        1 => " · 1 change".to_owned(),
        n => format!(" · {n} changes"),
    };
    format!("layer {period} · {}{changes}", p.register)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum GridUnit {
    Seconds,
    /// Bars of this many seconds.
    Bars(f64),
}

/// The grid step for a span: whole bars (1, 2, 4, 8, ... of them) when the tempo is known,
/// otherwise 1, 5, 10, 30, 60, 300 or 600 s; about eight lines across.
fn grid_step(span_s: f64, tempo: Option<(f64, u32)>) -> (f64, GridUnit) {
    if let Some((bpm, beats_per_bar)) = tempo.filter(|(b, _)| *b > 0.0) {
        let bar = 60.0 / bpm * f64::from(beats_per_bar.max(1));
        let mut bars = 1.0;
        while span_s / (bar * bars) > 10.0 {
            bars *= 2.0;
        }
        return (bar * bars, GridUnit::Bars(bar));
    }
    let step = [1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0]
        .into_iter()
        .find(|s| span_s / s <= 10.0)
        .unwrap_or(600.0);
    (step, GridUnit::Seconds)
}



/// A layer's period in seconds, and in beats and bars when the host gives a tempo.
pub fn period_text(status: Option<&WorkerStatus>, level: usize) -> String {
    let Some(s) = status else { return String::new() };
    let Some(&p) = s.periods_s.get(level).filter(|p| p.is_finite()) else {
        return "no period yet".to_owned();
    };
    let strength = s.period_strengths.get(level).copied().unwrap_or(0.0);
    match s.tempo_bpm {
        Some(bpm) => {
            let beats = f64::from(p) * bpm / 60.0;
            let bars = beats / f64::from(s.beats_per_bar.max(1));
            format!("period {p:.2} s = {beats:.2} beats = {bars:.2} bars · strength {strength:.2}")
        }
        None => format!("period {p:.2} s · strength {strength:.2}"),
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::MAX_LEVELS;

    fn status(tempo: Option<f64>, beats_per_bar: u32) -> WorkerStatus {
        let mut periods_s = [f32::NAN; MAX_LEVELS];
        periods_s[1] = 2.0;
        WorkerStatus {
            activation: 1,
            sample_rate_hz: 48_000.0,
            rms_dbfs: -20.0,
            peak_dbfs: -6.0,
            dc_offset: 0.0,
            received_samples: 0,
            dropped_samples: 0,
            dropped_blocks: 0,
            non_finite_samples: 3,
            silent_seconds: 0.0,
            capture_rate_hz: 48_000.0,
            ring_fill: 0.0,
            stopped: false,
            tempo_bpm: tempo,
            beats_per_bar,
            periods_s,
            period_strengths: [0.5; MAX_LEVELS],
        }
    }

    #[test]
    fn warm_up_says_how_long_each_layer_still_needs() {
        assert_eq!(warm_up_text(20.0, 14.0), "listening: 6 s more for the 20 s layer");
        assert_eq!(warm_up_text(20.0, 13.2), "listening: 7 s more for the 20 s layer");
        assert_eq!(warm_up_text(0.2, 0.0), "listening: under a second more for the 0.2 s layer");
        assert_eq!(warm_up_text(5.0, 9.0), "listening: the 5 s layer's first step is due");
    }

    #[test]
    fn periods_read_in_beats_and_bars_with_a_host_tempo() {
        assert_eq!(period_text(Some(&status(None, 4)), 1), "period 2.00 s · strength 0.50");
        assert_eq!(
            period_text(Some(&status(Some(120.0), 4)), 1),
            "period 2.00 s = 4.00 beats = 1.00 bars · strength 0.50"
        );
        assert_eq!(
            period_text(Some(&status(Some(90.0), 3)), 1),
            "period 2.00 s = 3.00 beats = 1.00 bars · strength 0.50"
        );
        assert_eq!(period_text(Some(&status(None, 4)), 0), "no period yet");
    }

}
