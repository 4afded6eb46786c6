//! The worker's analysis: the engine, once ONNX Runtime and the models have loaded; the samples
//! that wait for it until then; and the layer frames it hands the editor.
//!
//! Loading can take a second or more, and the ring must keep draining meanwhile, so the worker
//! asks [`LiveAnalysis::try_start`] on every pass and hands every block to [`LiveAnalysis::feed`]:
//! before the engine starts, the block waits (at most [`PENDING_SECONDS`], older samples are
//! dropped and the layers' times shifted by what was dropped); after, it is analysed.

use super::{AnalysisState, LevelTally, SongClock, StatusPublisher, LIVE_HISTORY_S, PENDING_SECONDS};
use crate::engine::Engine;
use crate::inference::{locate_models, ModelSet, Workload};
use crate::layers::LayerFrame;

pub(super) struct LiveAnalysis {
    sample_rate_hz: f32,
    engine: Option<Engine>,
    /// Why there is no analysis: the runtime or the models could not load, or the engine failed.
    error: Option<String>,
    /// Samples captured before the engine started, at most `pending_cap` of them.
    pending: Vec<f32>,
    pending_cap: usize,
    /// Samples dropped from the front of `pending`.
    pending_dropped: u64,
    /// Seconds of audio the engine never saw, added to every time it reports.
    offset_s: f64,
    /// The engine's new layer frames, reused from block to block.
    updates: Vec<LayerFrame>,
    /// Layer frames handed to the editor, in all and per level.
    layer_frames: u64,
    levels: Vec<LevelTally>,
}

/// What an analysis did, for the worker's report.
pub(super) struct AnalysisSummary {
    /// Layer frames handed to the editor, in all and per level.
    pub layer_frames: u64,
    pub levels: Vec<LevelTally>,
    /// Why there was no analysis, if there was none.
    pub error: Option<String>,
}

impl LiveAnalysis {
    pub fn new(sample_rate_hz: f32) -> Self {
        Self {
            sample_rate_hz,
            engine: None,
            error: None,
            pending: Vec::new(),
            pending_cap: (PENDING_SECONDS * sample_rate_hz.max(1.0)) as usize,
            pending_dropped: 0,
            offset_s: 0.0,
            updates: Vec::new(),
            layer_frames: 0,
            levels: Vec::new(),
        }
    }

    /// Whether the samples still wait for an engine: it has neither started nor failed to.
    pub fn waiting(&self) -> bool {
        self.engine.is_none() && self.error.is_none()
    }

    /// Whether samples wait for an engine that has not started yet.
    pub fn has_pending(&self) -> bool {
        self.waiting() && !self.pending.is_empty()
    }

    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// Seconds of audio the engine never saw.
    pub fn offset_s(&self) -> f64 {
        self.offset_s
    }

    /// Starts the engine if ONNX Runtime is ready, tells the editor, and analyses the samples
    /// that waited for it. Returns whether it started (now, not before).
    pub fn try_start(&mut self, song: &SongClock, publisher: &mut StatusPublisher) -> bool {
        if !self.waiting() {
            return false;
        }
        match start_engine(self.sample_rate_hz) {
            None => false,
            Some(Err(reason)) => {
                publisher.set_analysis(AnalysisState::Unavailable(reason.clone()));
                self.error = Some(reason);
                false
            }
            Some(Ok(mut engine)) => {
                engine.set_history(Some(LIVE_HISTORY_S));
                publisher.set_analysis(AnalysisState::Running {
                    models: engine.models().manifest.id.clone(),
                    scales_s: engine.models().manifest.scales.iter().map(|s| s.scale_s).collect(),
                });
                self.offset_s = self.pending_dropped as f64 / f64::from(self.sample_rate_hz);
                self.engine = Some(engine);
                let pending = std::mem::take(&mut self.pending);
                self.analyse(&pending, song, publisher);
                true
            }
        }
    }

    /// Analyses `block`, or keeps it for the engine to come.
    pub fn feed(&mut self, block: &[f32], song: &SongClock, publisher: &mut StatusPublisher) {
        if self.waiting() {
            self.pending.extend_from_slice(block);
            if self.pending.len() > self.pending_cap {
                let excess = self.pending.len() - self.pending_cap;
                self.pending.drain(..excess);
                self.pending_dropped += excess as u64;
            }
        } else {
            self.analyse(block, song, publisher);
        }
    }

    /// Ends the analysis, giving back the engine (ten minutes of history, the models' sessions).
    pub fn finish(self) -> AnalysisSummary {
        AnalysisSummary { layer_frames: self.layer_frames, levels: self.levels, error: self.error }
    }

    /// Feeds `samples` to the engine and forwards every layer frame it completes to the editor,
    /// with times shifted by the audio the engine never saw and placed in the song by `song`. On
    /// failure the engine goes, and the editor is told why.
    fn analyse(&mut self, samples: &[f32], song: &SongClock, publisher: &mut StatusPublisher) {
        let Some(engine) = self.engine.as_mut() else { return };
        self.updates.clear();
        if let Err(err) = engine.push(samples, &mut self.updates) {
            let reason = format!("analysis stopped: {err}");
            publisher.set_analysis(AnalysisState::Unavailable(reason.clone()));
            self.error = Some(reason);
            self.engine = None;
            return;
        }
        self.layer_frames += self.updates.len() as u64;
        for mut frame in self.updates.drain(..) {
            if self.levels.len() <= frame.level {
                // Once per level, on the first frames (the engine's levels are fixed).
                self.levels.resize(frame.level + 1, LevelTally::default());
            }
            frame.time_s += self.offset_s;
            if let Some(c) = frame.change.as_mut() {
                c.0 += self.offset_s;
            }
            frame.song_s = song.song_at(frame.time_s);
            self.levels[frame.level].add(&frame);
            publisher.publish_layer(frame);
        }
    }
}

/// Starts the analysis engine if ONNX Runtime is ready: `None` while it is still loading, the
/// reason in words if there can be no analysis.
fn start_engine(sample_rate_hz: f32) -> Option<Result<Engine, String>> {
    let runtime = match crate::inference::runtime_if_started()? {
        Ok(rt) => rt,
        Err(e) => return Some(Err(e.to_string())),
    };
    let rate = sample_rate_hz.round();
    // (A NaN rate is outside the range too.)
    if !(1.0..=1_000_000.0).contains(&rate) {
        return Some(Err(format!("cannot analyse at a sample rate of {sample_rate_hz} Hz")));
    }
    Some(
        locate_models()
            .and_then(|dir| ModelSet::load(&dir, runtime, Workload::Streaming))
            .map_err(|e| e.to_string())
            .and_then(|models| Engine::new(models, rate as u32).map_err(|e| e.to_string())),
    )
}
