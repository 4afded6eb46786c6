//! The worker thread: drains the capture ring, analyses what arrives, and publishes the results
//! to the editor over a lock-free queue.
//!
//! The plugin starts one [`Worker`] in `activate()` and stops it in `deactivate()` (and on drop):
//! [`Worker::stop`] drains what is left in the ring, then joins the thread, so no thread outlives
//! an activation.
//!
//! Data flows one way: audio thread → capture ring → worker → [`status_channel`] → editor.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::{mix_to_mono, CaptureOutput};
use crate::dsp::{InputMeter, MeterReading};
use crate::engine::Engine;
use crate::inference::locate_models;
use crate::engine::lane_main_pattern;
use crate::layers::{LayerFrame, Pattern};
use crate::take::{TakeControl, TakeRecorder};

mod live_analysis;
mod live_patterns;
pub mod song_clock;
use live_analysis::{AnalysisSummary, LiveAnalysis};
use live_patterns::LivePatterns;
use song_clock::SongClock;
pub use live_patterns::PATTERN_REFRESH_SHARE;

/// How often the worker publishes a status, in wall-clock time.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(30);
/// How long the worker sleeps when the ring is empty. Short enough that the ring (seconds long)
/// never fills while it sleeps; long enough to cost nothing.
pub const IDLE_WAIT: Duration = Duration::from_millis(5);
/// Frames the worker moves out of the ring per pass.
const SCRATCH_FRAMES: usize = 16_384;
/// Seconds of audio kept for the analysis while the models load.
pub const PENDING_SECONDS: f32 = 30.0;
/// Status messages the editor's queue holds; older news is not worth more.
pub const STATUS_QUEUE_CAPACITY: usize = 256;

/// Seconds of audio between two searches for the pattern layers, at the most: a search over ten
/// minutes of history takes about a second on the searcher's thread, whose share of a core
/// ([`PATTERN_REFRESH_SHARE`]) then spaces them further. Every 5 s, a change showed 5.2 s after
/// it began (`cargo bench -p strata --bench change_latency`); a change needs 3 s to count.
pub const PATTERN_REFRESH_S: f64 = 1.0;
/// Seconds of the most recent audio the live engine keeps (the log-mel frames the pattern layers
/// are found in, each lane's steps and changes): a session can run for hours, memory must stay
/// flat, and what played ten minutes ago no longer tells what repeats now. (The editor keeps its
/// own hour of lanes from the frames it is sent.)
pub const LIVE_HISTORY_S: f64 = 600.0;

/// Environment variable: a file the worker appends one JSON line to when it stops, saying what it
/// received. For support and for the host tests.
pub const ENV_WORKER_REPORT: &str = "STRATA_WORKER_REPORT";

/// What the worker publishes to the editor, several times a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerStatus {
    /// Which activation this worker belongs to (counts up from 1 per plugin instance).
    pub activation: u64,
    /// The host's sample rate for this activation.
    pub sample_rate_hz: f32,
    /// RMS level of the last interval, in dBFS.
    pub rms_dbfs: f32,
    /// Peak level of the last interval, in dBFS.
    pub peak_dbfs: f32,
    /// Mean of the last interval's samples.
    pub dc_offset: f32,
    /// Samples received this activation.
    pub received_samples: u64,
    /// Samples the audio thread had to drop because the ring was full.
    pub dropped_samples: u64,
    /// Blocks the audio thread had to drop because the ring was full.
    pub dropped_blocks: u64,
    /// NaN or infinite samples received this activation.
    pub non_finite_samples: u64,
    /// Length of the current run of silence, in seconds.
    pub silent_seconds: f32,
    /// Samples reaching the worker per wall-clock second over the last interval. Equals the
    /// sample rate in real-time playback; higher in offline rendering.
    pub capture_rate_hz: f32,
    /// How full the ring was when the worker last looked, 0..1.
    pub ring_fill: f32,
    /// Whether this is the worker's last message (it has stopped).
    pub stopped: bool,
    /// The host's tempo, if its transport gives one.
    pub tempo_bpm: Option<f64>,
    /// The host's beats per bar (4 when it does not say).
    pub beats_per_bar: u32,
    /// Each layer's current repetition period in seconds (NaN: none yet), shortest scale first.
    pub periods_s: [f32; MAX_LEVELS],
    /// How strongly each layer repeats at that period, 0..1.
    pub period_strengths: [f32; MAX_LEVELS],
}

/// Layers a status can describe.
pub const MAX_LEVELS: usize = 8;

/// Layer frames the editor's queue holds: an hour of all six layers (about 19 steps a second in
/// all, 1.6 MB), so an editor that is closed for an hour loses nothing when it opens again.
pub const LAYER_QUEUE_CAPACITY: usize = 70_000;

/// Where the analysis stands, for the editor.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisState {
    /// Waiting for ONNX Runtime or the models to load.
    Starting,
    /// Layers are being computed: the models' id and their scales (seconds, shortest first).
    Running { models: String, scales_s: Vec<f64> },
    /// No analysis: the reason, in words.
    Unavailable(String),
}

/// The newest pattern layers, shared by the worker (which replaces them) and the editor (which
/// reads them).
type SharedPatterns = Arc<std::sync::Mutex<Arc<Vec<Pattern>>>>;

/// The worker's sending half of the queues to the editor.
pub struct StatusPublisher {
    producer: rtrb::Producer<WorkerStatus>,
    layers: rtrb::Producer<LayerFrame>,
    analysis: std::sync::Arc<std::sync::Mutex<AnalysisState>>,
    patterns: SharedPatterns,
}

/// The editor's receiving half.
pub struct StatusFeed {
    consumer: rtrb::Consumer<WorkerStatus>,
    layers: rtrb::Consumer<LayerFrame>,
    analysis: std::sync::Arc<std::sync::Mutex<AnalysisState>>,
    patterns: SharedPatterns,
}

/// Makes the lock-free queues from a worker to the editor. (The analysis state and the pattern
/// layers change every few seconds at most; their mutexes are shared by the worker and the GUI
/// thread only, never the audio thread, and each is held just long enough to swap an `Arc`.)
pub fn status_channel() -> (StatusPublisher, StatusFeed) {
    let (producer, consumer) = rtrb::RingBuffer::new(STATUS_QUEUE_CAPACITY);
    let (layers_tx, layers_rx) = rtrb::RingBuffer::new(LAYER_QUEUE_CAPACITY);
    let analysis = std::sync::Arc::new(std::sync::Mutex::new(AnalysisState::Starting));
    let patterns: SharedPatterns = Arc::default();
    (
        StatusPublisher { producer, layers: layers_tx, analysis: analysis.clone(), patterns: patterns.clone() },
        StatusFeed { consumer, layers: layers_rx, analysis, patterns },
    )
}

impl StatusPublisher {
    /// Sends a status; if the editor has not kept up (or is closed) the status is dropped, since
    /// a newer one follows.
    pub fn publish(&mut self, status: WorkerStatus) -> bool {
        self.producer.push(status).is_ok()
    }

    /// Sends a layer frame; dropped (and false) if the editor's queue is full.
    pub fn publish_layer(&mut self, frame: LayerFrame) -> bool {
        self.layers.push(frame).is_ok()
    }

    /// Tells the editor where the analysis stands.
    pub fn set_analysis(&self, state: AnalysisState) {
        *self.analysis.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// Hands the editor the newest pattern layers.
    pub fn set_patterns(&self, patterns: Arc<Vec<Pattern>>) {
        *self.patterns.lock().unwrap_or_else(|e| e.into_inner()) = patterns;
    }
}

impl StatusFeed {
    /// Takes every status waiting and returns the newest, if any.
    pub fn latest(&mut self) -> Option<WorkerStatus> {
        let mut newest = None;
        while let Ok(s) = self.consumer.pop() {
            newest = Some(s);
        }
        newest
    }

    /// Takes every layer frame waiting, oldest first.
    pub fn drain_layers(&mut self, into: &mut Vec<LayerFrame>) {
        while let Ok(f) = self.layers.pop() {
            into.push(f);
        }
    }

    /// Where the analysis stands.
    pub fn analysis(&self) -> AnalysisState {
        self.analysis.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The newest pattern layers (times from the start of the activation).
    pub fn patterns(&self) -> Arc<Vec<Pattern>> {
        self.patterns.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Called by the worker after each publish, to wake whoever reads the queue (the editor asks
/// for a repaint). Must be cheap and must not block.
pub type Wake = Box<dyn Fn() + Send>;

/// What a worker needs to know about its activation.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub activation: u64,
    pub sample_rate_hz: f32,
    /// The host's tempo as f64 bits (NaN: unknown), written by the audio thread.
    pub tempo_bits: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The host's beats per bar (0: unknown), written by the audio thread.
    pub beats_per_bar: Option<Arc<std::sync::atomic::AtomicU32>>,
    /// Hash every received sample for the report (costs a few ns per sample).
    pub hash_samples: bool,
    /// Append the report to this file when the worker stops.
    pub report_file: Option<std::path::PathBuf>,
    /// The Record switch and where takes go; `None`: this worker never records.
    pub takes: Option<Arc<TakeControl>>,
}

impl WorkerConfig {
    /// A config for one activation, with the report settings taken from [`ENV_WORKER_REPORT`].
    pub fn from_env(activation: u64, sample_rate_hz: f32) -> Self {
        let report_file = std::env::var_os(ENV_WORKER_REPORT).map(std::path::PathBuf::from);
        Self {
            activation,
            sample_rate_hz,
            tempo_bits: None,
            beats_per_bar: None,
            hash_samples: report_file.is_some(),
            report_file,
            takes: None,
        }
    }
}

/// A running worker thread. Stop it with [`Worker::stop`]; dropping it stops it too.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<WorkerReport>>,
}

/// What a worker did, returned when it stops (and written to [`ENV_WORKER_REPORT`] if set).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkerReport {
    pub activation: u64,
    pub sample_rate_hz: f32,
    pub received_samples: u64,
    pub dropped_samples: u64,
    pub dropped_blocks: u64,
    pub non_finite_samples: u64,
    /// Peak absolute value of all finite samples received, in dBFS.
    pub peak_dbfs: f32,
    /// FNV-1a (64-bit) over the bit patterns of every received sample, in order: lets a test
    /// check that exactly the samples it sent arrived. Computed only when the report is written
    /// to a file ([`ENV_WORKER_REPORT`]); empty otherwise.
    pub received_fnv1a64: String,
    /// The ONNX Runtime status line the worker saw.
    pub runtime: String,
    /// The ONNX Runtime library file that was loaded, if one was.
    pub runtime_library: Option<String>,
    /// The model folder the analysis loads from, if one was found.
    pub models_dir: Option<String>,
    /// Layer frames the analysis produced.
    pub layer_frames: u64,
    /// The same frames tallied per level (timescale), shortest first.
    pub levels: Vec<LevelTally>,
    /// The periods (seconds) of the pattern layers found last, shortest first.
    pub pattern_periods_s: Vec<f64>,
    /// Why there was no analysis, if there was none.
    pub analysis_error: Option<String>,
}

/// One level's frames, tallied for the report: enough to compare two builds' analyses of the same
/// audio (the Linux and the Windows bundle) without keeping the frames themselves.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LevelTally {
    pub frames: u64,
    /// Sum of the frames' surprise.
    pub surprise_sum: f64,
    /// Sum of the frames' pattern tokens.
    pub token_sum: u64,
    /// Frames placed in the host's song, and the earliest and latest song positions they got.
    #[serde(default)]
    pub song_frames: u64,
    #[serde(default)]
    pub song_range_s: Option<(f64, f64)>,
}

impl LevelTally {
    /// Counts one frame.
    fn add(&mut self, frame: &LayerFrame) {
        self.frames += 1;
        self.surprise_sum += f64::from(frame.surprise);
        self.token_sum += u64::from(frame.token);
        if let Some(s) = frame.song_s {
            self.song_frames += 1;
            self.song_range_s = Some(self.song_range_s.map_or((s, s), |(a, b)| (a.min(s), b.max(s))));
        }
    }
}

impl Worker {
    /// Starts a worker thread draining `capture` and publishing to `publisher`.
    pub fn spawn(
        config: WorkerConfig,
        capture: CaptureOutput,
        publisher: StatusPublisher,
        wake: Wake,
    ) -> std::io::Result<Worker> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(worker_thread_name(config.activation))
            .spawn(move || run(config, capture, publisher, wake, &thread_stop))?;
        Ok(Worker {
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the worker to finish what is in the ring, waits for it, and returns its report.
    /// `None` if the thread panicked.
    pub fn stop(mut self) -> Option<WorkerReport> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Option<WorkerReport> {
        let thread = self.thread.take()?;
        self.stop.store(true, Ordering::Release);
        thread.thread().unpark();
        thread.join().ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The worker thread's body: passes until stopped and drained, then the report.
fn run(config: WorkerConfig, capture: CaptureOutput, mut publisher: StatusPublisher, wake: Wake, stop: &AtomicBool) -> WorkerReport {
    // Loading ONNX Runtime can take a second: it happens on a thread of its own while this one
    // keeps draining the ring, never on the audio or GUI thread.
    crate::inference::start_runtime_in_background();
    let mut worker = WorkerLoop::new(config, capture);
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let drained = worker.pass(&mut publisher) == 0;
        worker.publish_when_due(&mut publisher, &wake, stopping && drained);
        if drained {
            if stopping {
                if worker.analysis.has_pending() {
                    // Stopping before the models were ready: wait for them once, so what was
                    // captured is still analysed (deactivation is not on the audio thread).
                    let _ = crate::inference::runtime();
                    continue;
                }
                break;
            }
            std::thread::park_timeout(IDLE_WAIT);
        }
    }
    worker.finish(&publisher)
}

/// What the worker thread holds between its passes over the ring.
struct WorkerLoop {
    config: WorkerConfig,
    capture: CaptureOutput,
    /// Interleaved frames out of the ring, allocated once.
    scratch: Vec<f32>,
    /// The channels' average of a pass: the models listen to it; the take keeps every channel.
    mono: Vec<f32>,
    recorder: Option<TakeRecorder>,
    meter: InputMeter,
    hash: Option<Fnv1a64>,
    /// Frames received this activation, and at the last publish.
    received: u64,
    received_at_last_publish: u64,
    last_publish: Instant,
    analysis: LiveAnalysis,
    patterns: LivePatterns,
    song: SongClock,
    /// The thread's name, which the pattern search's thread is named after.
    name: String,
}

impl WorkerLoop {
    fn new(config: WorkerConfig, capture: CaptureOutput) -> Self {
        let channels = capture.channels();
        let recorder = config
            .takes
            .clone()
            .map(|control| TakeRecorder::new(control, config.sample_rate_hz.round().max(1.0) as u32, channels));
        Self {
            scratch: vec![0.0_f32; SCRATCH_FRAMES * channels],
            mono: Vec::with_capacity(SCRATCH_FRAMES),
            recorder,
            meter: InputMeter::new(config.sample_rate_hz),
            hash: config.hash_samples.then(Fnv1a64::new),
            received: 0,
            received_at_last_publish: 0,
            last_publish: Instant::now(),
            analysis: LiveAnalysis::new(config.sample_rate_hz),
            patterns: LivePatterns::new(0.0),
            song: SongClock::new(config.sample_rate_hz),
            name: worker_thread_name(config.activation),
            config,
            capture,
        }
    }

    /// One pass: starts the analysis once the models are ready, moves what the ring holds to
    /// the take, the analysis, the meter and the hash, and looks for finished pattern searches.
    /// Returns the frames moved (0: the ring was empty).
    fn pass(&mut self, publisher: &mut StatusPublisher) -> usize {
        if self.analysis.try_start(&self.song, publisher) {
            self.patterns.set_offset_s(self.analysis.offset_s());
        }
        let channels = self.capture.channels();
        let n = self.capture.pop_frames(&mut self.scratch);
        // After the frames: each block's mark went in before it.
        let song = &mut self.song;
        self.capture.pop_song_marks(|mark| song.note(mark));
        if let Some(r) = self.recorder.as_mut() {
            r.set_dropped_frames(self.capture.counters().dropped_frames());
            // Also with nothing new, so the switch takes effect while the host is stopped.
            r.process(&self.scratch[..n * channels]);
        }
        if n > 0 {
            mix_to_mono(&self.scratch[..n * channels], channels, &mut self.mono);
            self.analysis.feed(&self.mono, &self.song, publisher);
            self.meter.add(&self.mono);
            if let Some(hash) = self.hash.as_mut() {
                hash.update_samples(&self.mono);
            }
            self.received += n as u64;
        }
        if let Some(e) = self.analysis.engine() {
            // Also with nothing new: a search that ends while the host is stopped still shows.
            self.patterns.poll(e, &self.name, publisher);
        }
        n
    }

    /// Publishes a status every [`PUBLISH_INTERVAL`], and a last one (`last`: stopping with the
    /// ring drained), then wakes the reader.
    fn publish_when_due(&mut self, publisher: &mut StatusPublisher, wake: &Wake, last: bool) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_publish);
        if elapsed < PUBLISH_INTERVAL && !last {
            return;
        }
        let rate_hz = (self.received - self.received_at_last_publish) as f64 / elapsed.as_secs_f64().max(1e-9);
        let lanes = lane_periods(self.analysis.engine(), &self.patterns.found);
        let status = status(&self.config, &self.capture, self.meter.take_reading(), self.received, rate_hz as f32, last, lanes);
        if let Some(r) = self.recorder.as_mut() {
            r.set_tempo(status.tempo_bpm, status.beats_per_bar);
        }
        publisher.publish(status);
        wake();
        self.last_publish = now;
        self.received_at_last_publish = self.received;
    }

    /// Stops the pattern search, lets the engine go, ends the take and reports.
    fn finish(mut self, publisher: &StatusPublisher) -> WorkerReport {
        self.patterns.stop(publisher);
        // The engine (ten minutes of history, the models' sessions) goes with the activation;
        // what it held goes back to the system rather than staying in this thread's heap.
        let analysed = self.analysis.finish();
        crate::memory::release_freed_memory();
        // The take (if one is being recorded) ends with the activation.
        if let Some(r) = self.recorder.as_mut() {
            r.finish();
        }
        let report = final_report(&self.config, &self.capture, self.meter.take_reading(), self.received, self.hash, analysed, &self.patterns.found);
        if let Some(path) = &self.config.report_file {
            append_report(path, &report);
        }
        report
    }
}

/// Each lane's main pattern layer (period in seconds, NaN for none, and its strength), lane by
/// lane up to [`MAX_LEVELS`].
type LanePeriods = ([f32; MAX_LEVELS], [f32; MAX_LEVELS]);

/// The period and strength of each of the engine's lanes' main layer among `found`.
fn lane_periods(engine: Option<&Engine>, found: &[Pattern]) -> LanePeriods {
    let mut periods_s = [f32::NAN; MAX_LEVELS];
    let mut strengths = [0.0; MAX_LEVELS];
    if let Some(e) = engine {
        for (i, scale) in e.models().manifest.scales.iter().enumerate().take(MAX_LEVELS) {
            if let Some(p) = lane_main_pattern(found, scale.scale_s) {
                periods_s[i] = p.period_s as f32;
                strengths[i] = p.strength as f32;
            }
        }
    }
    (periods_s, strengths)
}

/// The status the editor gets now: the input's `reading` since the last one, the ring's state,
/// the host's tempo and the lanes' periods.
fn status(config: &WorkerConfig, capture: &CaptureOutput, reading: MeterReading, received: u64, capture_rate_hz: f32, stopped: bool, lanes: LanePeriods) -> WorkerStatus {
    let tempo_bpm = config
        .tempo_bits
        .as_ref()
        .map(|t| f64::from_bits(t.load(Ordering::Relaxed)))
        .filter(|t| t.is_finite() && *t > 0.0);
    let beats_per_bar = config.beats_per_bar.as_ref().map(|b| b.load(Ordering::Relaxed)).filter(|b| *b > 0).unwrap_or(4);
    let counters = capture.counters();
    WorkerStatus {
        activation: config.activation,
        sample_rate_hz: config.sample_rate_hz,
        rms_dbfs: reading.rms_dbfs,
        peak_dbfs: reading.peak_dbfs,
        dc_offset: reading.dc_offset,
        received_samples: received,
        dropped_samples: counters.dropped_frames(),
        dropped_blocks: counters.dropped_blocks(),
        non_finite_samples: reading.non_finite_samples,
        silent_seconds: reading.silent_seconds,
        capture_rate_hz,
        ring_fill: capture.available_frames() as f32 / capture.capacity_frames() as f32,
        stopped,
        tempo_bpm,
        beats_per_bar,
        periods_s: lanes.0,
        period_strengths: lanes.1,
    }
}

/// What the worker did: what arrived (`reading` is the meter's last, `hash` its samples' hash if
/// kept), the runtime, and what the analysis made of it. By now the runtime has had the whole
/// activation to start; this waits for it if it has not.
fn final_report(
    config: &WorkerConfig,
    capture: &CaptureOutput,
    reading: MeterReading,
    received: u64,
    hash: Option<Fnv1a64>,
    analysed: AnalysisSummary,
    found: &[Pattern],
) -> WorkerReport {
    let (runtime, runtime_library) = match crate::inference::runtime() {
        Ok(rt) => (rt.summary(), Some(rt.library().display().to_string())),
        Err(e) => (e.to_string(), None),
    };
    let counters = capture.counters();
    WorkerReport {
        activation: config.activation,
        sample_rate_hz: config.sample_rate_hz,
        received_samples: received,
        dropped_samples: counters.dropped_frames(),
        dropped_blocks: counters.dropped_blocks(),
        non_finite_samples: reading.non_finite_samples,
        peak_dbfs: reading.session_peak_dbfs,
        received_fnv1a64: hash.map(|h| format!("{:016x}", h.finish())).unwrap_or_default(),
        runtime,
        runtime_library,
        models_dir: locate_models().ok().map(|dir| dir.display().to_string()),
        layer_frames: analysed.layer_frames,
        levels: analysed.levels,
        pattern_periods_s: found.iter().map(|p| p.period_s).collect(),
        analysis_error: analysed.error,
    }
}

/// Appends `report` to `path` as one JSON line. Best effort: a report that cannot be written must
/// not take the worker down.
fn append_report(path: &std::path::Path, report: &WorkerReport) {
    if let Ok(line) = serde_json::to_string(report) {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
    }
}

/// The worker thread's name (its pattern searcher's starts with it too).
fn worker_thread_name(activation: u64) -> String {
    format!("strata-worker-{activation}")
}

/// FNV-1a, 64-bit: a tiny, well-known, order-sensitive hash.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    pub const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Hashes each sample's little-endian bit pattern.
    pub fn update_samples(&mut self, samples: &[f32]) {
        for s in samples {
            for byte in s.to_bits().to_le_bytes() {
                self.0 ^= u64::from(byte);
                self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }

    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::capture_ring;

    #[test]
    fn worker_drains_everything_before_it_stops() {
        let (mut input, output) = capture_ring(48_000, 1);
        let (publisher, mut feed) = status_channel();
        let worker = Worker::spawn(
            WorkerConfig {
                activation: 7,
                sample_rate_hz: 48_000.0,
                tempo_bits: None,
                beats_per_bar: None,
                hash_samples: true,
                report_file: None,
                takes: None,
            },
            output,
            publisher,
            Box::new(|| ()),
        )
        .unwrap();
        let mut expected = Fnv1a64::new();
        for block in 0..100 {
            let samples: Vec<f32> = (0..256).map(|i| ((block * 256 + i) as f32).sin()).collect();
            assert!(input.push_block(&[&samples[..]]));
            expected.update_samples(&samples);
        }
        let report = worker.stop().expect("worker thread ended normally");
        assert_eq!(report.received_samples, 25_600);
        assert_eq!(report.received_fnv1a64, format!("{:016x}", expected.finish()));
        let last = feed.latest().expect("the worker published");
        assert!(last.stopped);
        assert_eq!(last.activation, 7);
        assert_eq!(last.received_samples, 25_600);
    }

    #[test]
    fn dropping_a_worker_joins_it() {
        let (_input, output) = capture_ring(16, 2);
        let (publisher, _feed) = status_channel();
        let config = WorkerConfig {
            activation: 1,
            sample_rate_hz: 44_100.0,
            tempo_bits: None,
            beats_per_bar: None,
            hash_samples: false,
            report_file: None,
            takes: None,
        };
        for _ in 0..20 {
            let (_i, o) = capture_ring(16, 2);
            let (p, _f) = status_channel();
            drop(Worker::spawn(config.clone(), o, p, Box::new(|| ())).unwrap());
        }
        drop(Worker::spawn(config, output, publisher, Box::new(|| ())).unwrap());
    }

    #[test]
    fn fnv_matches_the_reference_vector() {
        // FNV-1a 64 of the empty input is the offset basis; of the bytes "a" is af63dc4c8601ec8c.
        assert_eq!(Fnv1a64::new().finish(), 0xcbf29ce484222325);
        let mut h = Fnv1a64(0xcbf2_9ce4_8422_2325);
        h.0 ^= u64::from(b'a');
        h.0 = h.0.wrapping_mul(0x0000_0100_0000_01b3);
        assert_eq!(h.finish(), 0xaf63dc4c8601ec8c);
    }
}
