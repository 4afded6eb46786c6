//! The plugin as hosts see it: "Strata", an analyzer with CLAP and VST3 wrappers.
//!
//! `process()` leaves the audio untouched and copies it into the capture ring
//! ([`crate::capture`]); everything else happens on the worker thread ([`crate::worker`]) that
//! `activate()` starts and `deactivate()` stops.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use nice_plug::prelude::*;
use nice_plug_egui::EguiEditor;

use crate::capture::{capture_ring, CaptureInput};
use crate::editor::{self, EditorShared};
use crate::params::StrataParams;
use crate::worker::{status_channel, Worker, WorkerConfig};

/// Seconds of audio the capture ring holds: how long the worker may stall (loading models,
/// a busy machine) before the audio thread has to drop samples.
pub const RING_SECONDS: f32 = 10.0;

/// The plugin instance.
pub struct Strata {
    params: Arc<StrataParams>,
    /// The audio thread's half of the capture ring; `None` while not activated.
    capture: Option<CaptureInput>,
    /// The running worker; `None` while not activated.
    worker: Option<Worker>,
    /// How many times this instance was activated, to tell the worker's statuses apart.
    activations: u64,
    /// What the editor reads: the worker's status queue and how to wake the editor.
    editor_shared: Arc<EditorShared>,
    /// The host's tempo as f64 bits (NaN: unknown): a wait-free store on the audio thread, read
    /// by the worker to express periods in beats and bars.
    tempo_bits: Arc<AtomicU64>,
    /// The host's beats per bar (0: unknown), likewise.
    beats_per_bar: Arc<AtomicU32>,
}

impl Default for Strata {
    fn default() -> Self {
        Self {
            params: Arc::new(StrataParams::default()),
            capture: None,
            worker: None,
            activations: 0,
            editor_shared: Arc::new(EditorShared::new()),
            tempo_bits: Arc::new(AtomicU64::new(f64::NAN.to_bits())),
            beats_per_bar: Arc::new(AtomicU32::new(0)),
        }
    }
}

impl Strata {
    /// Stops capture first (so the audio thread pushes nothing more), then the worker.
    fn stop_worker(&mut self) {
        self.capture = None;
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        self.stop_worker();
        // An export still running would outlive the instance, and the host may unload the
        // library right after: stop it (it removes what it had staged; the take stays) and wait.
        self.editor_shared.takes.cancel_export();
    }
}

impl Plugin for Strata {
    const NAME: &'static str = "Strata";
    const VENDOR: &'static str = "Strata";
    const URL: &'static str = env!("CARGO_PKG_HOMEPAGE");
    const EMAIL: &'static str = "";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(1),
            main_output_channels: NonZeroU32::new(1),
            ..AudioIOLayout::const_default()
        },
    ];

    // Strata reads audio; the timing of parameter changes does not matter to it.
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type Editor = EguiEditor<editor::StrataEditor>;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(self.params.clone(), self.editor_shared.clone())
    }

    fn activate(
        &mut self,
        layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        // A host may activate twice without deactivating; never leave a worker behind.
        self.stop_worker();
        self.activations += 1;
        // Activation is on the main thread: the one place to set the allocator up, once.
        crate::memory::hold_allocator_thresholds();

        let sample_rate = buffer_config.sample_rate;
        if !(sample_rate.is_finite() && sample_rate > 0.0) {
            // Nothing sensible to analyse; audio still passes (process() does not need capture).
            return true;
        }
        let capacity = (sample_rate * RING_SECONDS) as usize + buffer_config.max_buffer_size as usize;
        let channels = layout.main_input_channels.map_or(1, |c| c.get() as usize);
        let (input, output) = capture_ring(capacity, channels);
        let (publisher, feed) = status_channel();
        self.editor_shared.replace_feed(feed);
        let mut config = WorkerConfig::from_env(self.activations, sample_rate);
        config.tempo_bits = Some(self.tempo_bits.clone());
        config.beats_per_bar = Some(self.beats_per_bar.clone());
        config.takes = Some(self.editor_shared.takes.clone());
        // If no thread can be started the plugin still passes audio; it just captures nothing.
        let repaint = self.editor_shared.repaint.clone();
        let wake = Box::new(move || repaint.request_repaint());
        if let Ok(worker) = Worker::spawn(config, output, publisher, wake) {
            self.worker = Some(worker);
            self.capture = Some(input);
        }
        true
    }

    fn deactivate(&mut self) {
        self.stop_worker();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let transport = context.transport();
        let tempo = transport.tempo.unwrap_or(f64::NAN);
        self.tempo_bits.store(tempo.to_bits(), Ordering::Relaxed);
        let beats_per_bar = transport.time_sig_numerator.filter(|n| *n > 0).unwrap_or(0) as u32;
        self.beats_per_bar.store(beats_per_bar, Ordering::Relaxed);
        // The buffer already holds the input (in place): leaving it alone passes audio through
        // bit-exact. Capture only reads it.
        if let Some(capture) = self.capture.as_mut() {
            // Where the song is, so the lanes can be drawn on its timeline (none while stopped).
            let song_s = if transport.playing { transport.pos_seconds() } else { None };
            capture.note_song_position(song_s, transport.sample_rate);
            capture.push_block(buffer.as_slice_immutable());
        }
        // Silence is information for an analyzer: ask the host to keep calling us.
        ProcessStatus::KeepAlive
    }
}

impl ClapPlugin for Strata {
    const CLAP_ID: &'static str = "org.strata-audio.strata";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Hears the repeating layers music is built from and shows them live");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::AudioEffect,
        ClapFeature::Analyzer,
        ClapFeature::Stereo,
        ClapFeature::Mono,
    ];
}

impl Vst3Plugin for Strata {
    // Fixed forever: hosts store it in projects to find the plugin again.
    const VST3_CLASS_ID: [u8; 16] = *b"StrataLayersAnlz";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Fx, Vst3SubCategory::Analyzer];
}
