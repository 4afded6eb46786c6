//! The editor's header: one thin strip of what the user must trust at a glance (input level,
//! where inference runs, a health dot that names any problem when hovered), and the full
//! diagnostics one click away.
//!
//! [`health`] is a plain function of what the worker and ONNX Runtime report, so the colour and
//! the words are tested without a window.

use crate::inference;
use crate::worker::{AnalysisState, WorkerStatus};

use super::lanes::{LaneHistory, Timeline};
use super::WARNING;

/// Layers further behind the input than this (seconds) are a problem worth a dot: the worker is
/// not keeping up (in real-time playback a few hundred milliseconds is normal).
pub const LAG_WARNING_S: f64 = 2.0;
/// A capture ring fuller than this is about to drop audio for the analysis.
pub const RING_WARNING_FILL: f32 = 0.5;
/// Width of the header's level meter, in points.
const METER_WIDTH: f32 = 90.0;

const HEALTHY: egui::Color32 = egui::Color32::from_rgb(0x4C, 0xB0, 0x6C);
const AMBER: egui::Color32 = egui::Color32::from_rgb(0xE0, 0xA8, 0x30);
const WAITING: egui::Color32 = egui::Color32::from_gray(0x90);

/// How the plugin is doing: the dot's colour, and the words its tooltip says.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// Nothing to judge yet (the host has not started audio, ONNX Runtime is loading).
    Waiting(String),
    /// Everything works.
    Ok,
    /// The layers are there but something deserves a look: the problems, one per entry.
    Warning(Vec<String>),
    /// No layers: what is missing.
    Error(Vec<String>),
}

impl Health {
    /// The dot's colour: grey, green, amber or red.
    pub fn colour(&self) -> egui::Color32 {
        match self {
            Health::Waiting(_) => WAITING,
            Health::Ok => HEALTHY,
            Health::Warning(_) => AMBER,
            Health::Error(_) => WARNING,
        }
    }

    /// The tooltip: what is wrong, one line per problem.
    pub fn describe(&self) -> String {
        match self {
            Health::Waiting(why) => why.clone(),
            Health::Ok => "Everything works: audio passes through untouched and the layers keep up.".to_owned(),
            Health::Warning(problems) | Health::Error(problems) => problems.join("\n"),
        }
    }
}

/// What ONNX Runtime's loading came to, as far as the header needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeState {
    Loading,
    /// Loaded.
    Ready {
        /// Where the live analysis runs ("CPU" or "CUDA").
        backend: String,
        /// Version, backend and why, in one line ([`inference::Runtime::summary`]).
        summary: String,
        /// The library file loaded.
        library: String,
    },
    /// Not loaded: why, in words.
    Failed(String),
}

impl RuntimeState {
    /// The process's ONNX Runtime as it stands now (never starts loading it).
    pub fn current() -> Self {
        match inference::runtime_if_started() {
            None => RuntimeState::Loading,
            Some(Ok(rt)) => RuntimeState::Ready {
                backend: rt.backend_for(inference::Workload::Streaming).to_string(),
                summary: rt.summary(),
                library: rt.library().display().to_string(),
            },
            Some(Err(e)) => RuntimeState::Failed(e.to_string()),
        }
    }
}

/// How far (seconds) the newest layer step lags behind the newest sample received, once there
/// are steps.
pub fn layers_lag_s(status: &WorkerStatus, history: &LaneHistory) -> Option<f64> {
    if history.levels() == 0 {
        return None;
    }
    let received_s = status.received_samples as f64 / f64::from(status.sample_rate_hz.max(1.0));
    Some((received_s - (history.latest_time() - history.stream_start_s())).max(0.0))
}

/// Judges the plugin's health from ONNX Runtime, the analysis, the worker's last status and the
/// layers' lag.
pub fn health(runtime: &RuntimeState, analysis: Option<&AnalysisState>, status: Option<&WorkerStatus>, lag_s: Option<f64>) -> Health {
    let mut errors = Vec::new();
    if let RuntimeState::Failed(why) = runtime {
        errors.push(format!("ONNX Runtime did not load: {why}. Audio still passes through untouched."));
    }
    if let Some(AnalysisState::Unavailable(why)) = analysis {
        errors.push(format!("No layers: {why}"));
    }
    if !errors.is_empty() {
        return Health::Error(errors);
    }
    let Some(s) = status else {
        return Health::Waiting("Waiting for the host to start audio processing.".to_owned());
    };
    if *runtime == RuntimeState::Loading || matches!(analysis, None | Some(AnalysisState::Starting)) {
        return Health::Waiting("Loading ONNX Runtime and the models.".to_owned());
    }
    let mut problems = Vec::new();
    if s.dropped_samples > 0 {
        problems.push(format!(
            "Overruns: {} samples in {} blocks never reached the analysis (the worker fell behind; the audio itself was untouched).",
            s.dropped_samples, s.dropped_blocks
        ));
    }
    if s.non_finite_samples > 0 {
        problems.push(format!("{} NaN or infinite input samples (analysed as silence).", s.non_finite_samples));
    }
    if let Some(lag) = lag_s.filter(|&l| l > LAG_WARNING_S && !s.stopped) {
        problems.push(format!("The layers are {lag:.1} s behind the input."));
    }
    if s.ring_fill > RING_WARNING_FILL {
        problems.push(format!("The capture ring is {:.0} % full.", s.ring_fill * 100.0));
    }
    if problems.is_empty() {
        Health::Ok
    } else {
        Health::Warning(problems)
    }
}

/// What the header strip shows.
pub struct HeaderInput<'a> {
    pub runtime: &'a RuntimeState,
    pub analysis: Option<&'a AnalysisState>,
    pub status: Option<&'a WorkerStatus>,
    pub history: &'a LaneHistory,
    /// The timeline the lanes are drawn on.
    pub timeline: &'a Timeline<'a>,
}

/// The strip: name, level meter, backend and models, the health dot, and the toggle of the
/// diagnostics panel (`open`), which is drawn below it when open.
pub fn strip(ui: &mut egui::Ui, input: &HeaderInput, open: &mut bool) {
    let lag = input.status.and_then(|s| layers_lag_s(s, input.history));
    let health = health(input.runtime, input.analysis, input.status, lag);
    ui.horizontal(|ui| {
        ui.strong("Strata");
        ui.separator();
        meter(ui, input.status);
        ui.separator();
        match input.runtime {
            RuntimeState::Loading => ui.weak("starting…"),
            RuntimeState::Ready { backend, .. } => ui.label(backend.as_str()),
            RuntimeState::Failed(_) => ui.colored_label(WARNING, "no ONNX Runtime"),
        }
        .on_hover_text("Where the live analysis runs");
        if let Some(AnalysisState::Running { models, .. }) = input.analysis {
            ui.weak(format!("models {models}"));
        }
        ui.separator();
        let (dot, response) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
        ui.painter().circle_filled(dot.center(), 5.0, health.colour());
        response.on_hover_text(health.describe());
        if let Health::Warning(problems) | Health::Error(problems) = &health {
            // The first problem in words too, short enough for the strip.
            let first = problems.first().map(String::as_str).unwrap_or_default();
            ui.colored_label(health.colour(), first.split(':').next().unwrap_or(first));
        }
        ui.separator();
        match input.timeline {
            Timeline::Song { .. } => ui.label("song time").on_hover_text("The lanes follow the host's song: a looped or replayed part is drawn once, where it lies in the song, as last heard"),
            Timeline::WallClock => ui.weak("wall clock").on_hover_text("The host sends no song position: the lanes scroll with time as it passes"),
        };
        ui.separator();
        // A toggle (highlighted while open): the default fonts have no triangle glyphs.
        if ui.selectable_label(*open, "Diagnostics").on_hover_text("ONNX Runtime, sample rate, capture, overruns, input health, lag").clicked() {
            *open = !*open;
        }
    });
    if *open {
        diagnostics(ui, input, lag);
    }
}

/// The input level: a bar (-60..0 dBFS) with the RMS in numbers.
fn meter(ui: &mut egui::Ui, status: Option<&WorkerStatus>) {
    let Some(s) = status else {
        ui.weak("no input");
        return;
    };
    let fill = ((s.rms_dbfs + 60.0) / 60.0).clamp(0.0, 1.0);
    ui.add(egui::ProgressBar::new(fill).desired_width(METER_WIDTH).desired_height(10.0))
        .on_hover_text(format!("RMS {:.1} dBFS · peak {:.1} dBFS", s.rms_dbfs, s.peak_dbfs));
    ui.weak(format!("{:.0} dB", s.rms_dbfs.max(-99.0)));
}

/// Everything the header leaves out, in a framed panel.
fn diagnostics(ui: &mut egui::Ui, input: &HeaderInput, lag_s: Option<f64>) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.strong("Inference:");
            match input.runtime {
                RuntimeState::Loading => {
                    ui.label("starting ONNX Runtime…");
                }
                RuntimeState::Ready { summary, library, .. } => {
                    ui.label(summary.as_str());
                    ui.weak(library.as_str());
                }
                RuntimeState::Failed(why) => {
                    ui.colored_label(WARNING, why.as_str());
                    ui.label("Audio still passes through untouched; analysis needs the library.");
                }
            }
        });
        let Some(s) = input.status else {
            ui.label("Waiting for the host to start audio processing.");
            return;
        };
        egui::Grid::new("input-status").num_columns(2).spacing([16.0, 4.0]).show(ui, |ui| {
            ui.label("Input level");
            ui.label(format!("RMS {:.1} dBFS · peak {:.1} dBFS", s.rms_dbfs, s.peak_dbfs));
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
                ui.colored_label(WARNING, format!("{} samples in {} blocks dropped (the worker fell behind)", s.dropped_samples, s.dropped_blocks));
            }
            ui.end_row();

            ui.label("Input health");
            ui.label(health_text(s));
            ui.end_row();

            ui.label("Layers lag");
            match lag_s {
                None => ui.label("no layer steps yet"),
                // The newest step's window ends this far behind the newest sample received.
                Some(lag) => ui.label(format!("{:.0} ms behind the input", lag * 1000.0)),
            };
            ui.end_row();
        });
    });
}

/// The input's health in words: NaN/Inf samples, DC offset, silence; "ok" when none.
pub fn health_text(s: &WorkerStatus) -> String {
    let mut notes = Vec::new();
    if s.non_finite_samples > 0 {
        notes.push(format!("{} NaN/Inf samples (treated as silence)", s.non_finite_samples));
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

    fn status() -> WorkerStatus {
        WorkerStatus {
            activation: 1,
            sample_rate_hz: 48_000.0,
            rms_dbfs: -18.0,
            peak_dbfs: -6.0,
            dc_offset: 0.0,
            received_samples: 480_000,
            dropped_samples: 0,
            dropped_blocks: 0,
            non_finite_samples: 0,
            silent_seconds: 0.0,
            capture_rate_hz: 48_000.0,
            ring_fill: 0.01,
            stopped: false,
            tempo_bpm: None,
            beats_per_bar: 4,
            periods_s: [f32::NAN; MAX_LEVELS],
            period_strengths: [0.0; MAX_LEVELS],
        }
    }

    fn ready() -> RuntimeState {
        RuntimeState::Ready { backend: "CPU".to_owned(), summary: "ONNX Runtime 1.31.1 · CPU".to_owned(), library: "/x/libonnxruntime.so".to_owned() }
    }

    fn running() -> AnalysisState {
        AnalysisState::Running { models: "test".to_owned(), scales_s: vec![1.0] }
    }

    #[test]
    fn a_healthy_plugin_is_green() {
        let ready = ready();
        assert_eq!(health(&ready, Some(&running()), Some(&status()), Some(0.3)), Health::Ok);
        assert_eq!(Health::Ok.colour(), HEALTHY);
    }

    #[test]
    fn waiting_is_grey_and_says_for_what() {
        let ready = ready();
        let h = health(&ready, Some(&running()), None, None);
        assert!(matches!(&h, Health::Waiting(w) if w.contains("host to start audio")), "{h:?}");
        let h = health(&RuntimeState::Loading, None, Some(&status()), None);
        assert!(matches!(&h, Health::Waiting(w) if w.contains("Loading")), "{h:?}");
        assert_eq!(h.colour(), WAITING);
    }

    #[test]
    fn a_missing_runtime_or_models_is_red_and_named() {
        let failed = RuntimeState::Failed("libonnxruntime.so.1.31.1 not found".to_owned());
        let h = health(&failed, None, Some(&status()), None);
        assert_eq!(h.colour(), WARNING);
        assert!(h.describe().contains("libonnxruntime.so.1.31.1 not found"), "{h:?}");
        let ready = ready();
        let h = health(&ready, Some(&AnalysisState::Unavailable("no models in /x".to_owned())), Some(&status()), None);
        assert!(matches!(&h, Health::Error(e) if e[0].contains("no models in /x")), "{h:?}");
    }

    #[test]
    fn overruns_nan_input_and_lag_are_amber_and_each_is_named() {
        let ready = ready();
        let mut s = status();
        s.dropped_samples = 512;
        s.dropped_blocks = 2;
        s.non_finite_samples = 7;
        let h = health(&ready, Some(&running()), Some(&s), Some(LAG_WARNING_S + 1.0));
        assert_eq!(h.colour(), AMBER);
        let Health::Warning(problems) = &h else { panic!("{h:?}") };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("512 samples in 2 blocks"), "{problems:?}");
        assert!(problems[1].contains("7 NaN"), "{problems:?}");
        assert!(problems[2].contains("3.0 s behind"), "{problems:?}");
        // A stopped worker's lag is no longer a problem: nothing more is coming.
        s.stopped = true;
        s.dropped_samples = 0;
        s.non_finite_samples = 0;
        assert_eq!(health(&ready, Some(&running()), Some(&s), Some(10.0)), Health::Ok);
    }

    #[test]
    fn input_health_in_words() {
        let mut s = status();
        assert_eq!(health_text(&s), "ok");
        s.non_finite_samples = 3;
        s.silent_seconds = 2.5;
        assert_eq!(health_text(&s), "3 NaN/Inf samples (treated as silence) · silent for 2.5 s");
    }
}
