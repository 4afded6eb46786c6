//! The egui editor. It only reads: the worker's status queue and ONNX Runtime's status. Nothing
//! here touches the audio thread.

use std::sync::{Arc, Mutex};

use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::*;
use nice_plug_egui::baseview::WindowSize;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, Frame, NiceEguiApp,
    RepaintNotifier,
};

use crate::inference;
use crate::params::{StrataParams, MIN_EDITOR_SIZE};
use crate::layers::LayerFrame;
use crate::worker::{AnalysisState, StatusFeed, WorkerStatus};

/// What the plugin shares with its editor. Its lock is taken by the main thread (when the plugin
/// is activated) and the GUI thread, never by the audio thread.
pub struct EditorShared {
    /// The editor's end of the current worker's status queue.
    pub feed: Mutex<Option<StatusFeed>>,
    /// Wakes the editor when the worker has published.
    pub repaint: RepaintNotifier,
}

impl EditorShared {
    /// Points the editor at a new worker's queue.
    pub fn replace_feed(&self, feed: StatusFeed) {
        *self.feed.lock().unwrap_or_else(|e| e.into_inner()) = Some(feed);
    }

    /// The newest status waiting (if any), the analysis state, and every layer frame waiting.
    fn poll(&self, layers: &mut Vec<LayerFrame>) -> (Option<WorkerStatus>, Option<AnalysisState>) {
        let mut feed = self.feed.lock().unwrap_or_else(|e| e.into_inner());
        let Some(feed) = feed.as_mut() else {
            return (None, None);
        };
        feed.drain_layers(layers);
        (feed.latest(), Some(feed.analysis()))
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
    create_egui_editor(
        state,
        repaint,
        settings,
        StrataEditor {
            params,
            shared,
            status: None,
            analysis: None,
            latest: Vec::new(),
            incoming: Vec::new(),
        },
    )
}

/// The editor's own state.
pub struct StrataEditor {
    params: Arc<StrataParams>,
    shared: Arc<EditorShared>,
    /// The newest worker status seen; kept when the worker stops so the user sees the last state.
    status: Option<WorkerStatus>,
    /// Where the analysis stands.
    analysis: Option<AnalysisState>,
    /// The newest frame of each layer, and how many arrived.
    latest: Vec<Option<(LayerFrame, u64)>>,
    /// Scratch for frames taken from the queue.
    incoming: Vec<LayerFrame>,
}

impl NiceEguiApp for StrataEditor {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut Frame) {
        self.incoming.clear();
        let (status, analysis) = self.shared.poll(&mut self.incoming);
        if let Some(s) = status {
            self.status = Some(s);
        }
        if analysis.is_some() {
            self.analysis = analysis;
        }
        for f in &self.incoming {
            if self.latest.len() <= f.level {
                self.latest.resize(f.level + 1, None);
            }
            let count = self.latest[f.level].map_or(0, |(_, n)| n) + 1;
            self.latest[f.level] = Some((*f, count));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("Strata");
            ui.separator();
            runtime_section(ui);
            ui.separator();
            input_section(ui, self.status.as_ref());
            ui.separator();
            layers_section(ui, self.analysis.as_ref(), &self.latest, self.status.as_ref());
        });
    }

    fn resized(&mut self, new_size: WindowSize) {
        let (w, h) = (new_size.logical.width.round(), new_size.logical.height.round());
        if w >= 1.0 && h >= 1.0 {
            self.params
                .update_view(|v| v.editor_size = (w as u32, h as u32));
        }
    }
}

/// Which inference backend is in use, or exactly what is missing.
fn runtime_section(ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        ui.strong("Inference:");
        match inference::runtime_if_started() {
            None => {
                ui.label("starting ONNX Runtime…");
            }
            Some(Ok(rt)) => {
                ui.label(rt.summary());
                ui.weak(rt.library().display().to_string());
            }
            Some(Err(e)) => {
                ui.colored_label(egui::Color32::from_rgb(0xE0, 0x6C, 0x4C), e.to_string());
                ui.label("Audio still passes through untouched; analysis needs the library.");
            }
        }
    });
}

/// Level, capture rate, overruns and input health.
fn input_section(ui: &mut egui::Ui, status: Option<&WorkerStatus>) {
    let Some(s) = status else {
        ui.label("Waiting for the host to start audio processing.");
        return;
    };
    egui::Grid::new("input-status").num_columns(2).spacing([16.0, 4.0]).show(ui, |ui| {
        ui.label("Input level");
        ui.horizontal(|ui| {
            // -60..0 dBFS fills the bar.
            let fill = ((s.rms_dbfs + 60.0) / 60.0).clamp(0.0, 1.0);
            ui.add(egui::ProgressBar::new(fill).desired_width(180.0));
            ui.label(format!("RMS {:.1} dBFS · peak {:.1} dBFS", s.rms_dbfs, s.peak_dbfs));
        });
        ui.end_row();

        ui.label("Sample rate");
        ui.label(format!("{:.0} Hz (activation {})", s.sample_rate_hz, s.activation));
        ui.end_row();

        ui.label("Capture");
        ui.label(format!(
            "{:.0} samples/s · {} received · ring {:.0}% full{}",
            s.capture_rate_hz,
            s.received_samples,
            s.ring_fill * 100.0,
            if s.stopped { " · stopped" } else { "" }
        ));
        ui.end_row();

        ui.label("Overruns");
        if s.dropped_samples == 0 {
            ui.label("none");
        } else {
            ui.colored_label(
                egui::Color32::from_rgb(0xE0, 0x6C, 0x4C),
                format!(
                    "{} samples in {} blocks dropped (the worker fell behind)",
                    s.dropped_samples, s.dropped_blocks
                ),
            );
        }
        ui.end_row();

        ui.label("Input health");
        ui.label(health_text(s));
        ui.end_row();
    });
}

/// What the analysis is doing, and the newest step of each layer.
fn layers_section(
    ui: &mut egui::Ui,
    analysis: Option<&AnalysisState>,
    latest: &[Option<(LayerFrame, u64)>],
    status: Option<&WorkerStatus>,
) {
    match analysis {
        None | Some(AnalysisState::Starting) => {
            ui.label("Layers: loading the models…");
        }
        Some(AnalysisState::Unavailable(reason)) => {
            ui.colored_label(egui::Color32::from_rgb(0xE0, 0x6C, 0x4C), format!("Layers unavailable: {reason}"));
        }
        Some(AnalysisState::Running { models }) => {
            ui.label(format!("Layers (models {models})"));
            egui::Grid::new("layers").num_columns(5).spacing([16.0, 2.0]).show(ui, |ui| {
                for (level, entry) in latest.iter().enumerate().rev() {
                    let Some((f, n)) = entry else { continue };
                    ui.label(format!("level {level}"));
                    ui.label(format!("token {:>3}", f.token));
                    ui.label(format!("surprise {:+.1}", f.surprise));
                    ui.label(period_text(status, level));
                    ui.label(format!("{n} steps · {:.1} s", f.time_s));
                    ui.end_row();
                }
            });
        }
    }
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

/// One line on what is odd about the input, or "ok".
pub fn health_text(s: &WorkerStatus) -> String {
    let mut notes = Vec::new();
    if s.non_finite_samples > 0 {
        notes.push(format!(
            "{} NaN/Inf samples (treated as silence)",
            s.non_finite_samples
        ));
    }
    if s.dc_offset.abs() > 0.01 {
        notes.push(format!("DC offset {:+.3}", s.dc_offset));
    }
    if s.silent_seconds >= 1.0 {
        notes.push(format!("silent for {:.1} s", s.silent_seconds));
    }
    if notes.is_empty() {
        "ok".to_owned()
    } else {
        notes.join(" · ")
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

    #[test]
    fn health_names_what_is_odd() {
        assert!(health_text(&status(None, 4)).contains("3 NaN/Inf samples"));
    }
}
