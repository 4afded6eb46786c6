//! The plugin's saved state: what the host stores with the project.

use std::sync::Mutex;

use nice_plug::prelude::*;
use serde::{Deserialize, Serialize};

/// Smallest editor size, in logical pixels.
pub const MIN_EDITOR_SIZE: (u32, u32) = (560, 320);
/// Editor size on first open, in logical pixels.
pub const DEFAULT_EDITOR_SIZE: (u32, u32) = (900, 520);

/// View settings that persist with the plugin's state (the host saves them in the project).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewSettings {
    /// Editor window size in logical pixels, as the user last left it.
    pub editor_size: (u32, u32),
    /// Seconds of time the lanes show.
    pub span_s: f64,
    /// Whether the lanes stop following the playhead (free scroll and zoom).
    pub frozen: bool,
    /// Scales (seconds) whose lanes are hidden.
    pub hidden_scales: Vec<f64>,
    /// The folder takes are exported into (each take gets a folder inside it).
    pub export_folder: String,
}

/// Shortest and longest time span of the lanes, in seconds.
pub const SPAN_RANGE_S: (f64, f64) = (5.0, 3600.0);

impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            editor_size: DEFAULT_EDITOR_SIZE,
            span_s: 60.0,
            frozen: false,
            hidden_scales: Vec::new(),
            export_folder: default_export_folder(),
        }
    }
}

impl ViewSettings {
    /// The size clamped to the smallest usable editor (a hand-edited or corrupt state must not
    /// open a zero-sized window).
    pub fn clamped_editor_size(&self) -> (u32, u32) {
        (
            self.editor_size.0.clamp(MIN_EDITOR_SIZE.0, 8192),
            self.editor_size.1.clamp(MIN_EDITOR_SIZE.1, 8192),
        )
    }

    /// The span clamped to [`SPAN_RANGE_S`] (a corrupt state's NaN gives the default).
    pub fn clamped_span_s(&self) -> f64 {
        if self.span_s.is_nan() {
            Self::default().span_s
        } else {
            self.span_s.clamp(SPAN_RANGE_S.0, SPAN_RANGE_S.1)
        }
    }
}

/// Strata has no automatable parameters: it changes nothing in the sound. What it saves is the
/// view.
#[derive(Params, Default)]
pub struct StrataParams {
    #[persist = "view"]
    pub view: Mutex<ViewSettings>,
}

impl StrataParams {
    /// A copy of the view settings. The lock is only ever taken off the audio thread.
    pub fn view(&self) -> ViewSettings {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the view settings in place.
    pub fn update_view(&self, change: impl FnOnce(&mut ViewSettings)) {
        change(&mut self.view.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Where exports go until the user says otherwise: `~/Music/Strata` (the temporary folder when
/// there is no home).
pub fn default_export_folder() -> String {
    std::env::var_os("HOME")
        .map(|h| std::path::PathBuf::from(h).join("Music").join("Strata"))
        .unwrap_or_else(|| std::env::temp_dir().join("Strata"))
        .display()
        .to_string()
}
