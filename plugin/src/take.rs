//! Recording a take in the plugin and exporting it.
//!
//! Data flows one way, and the audio thread takes no part:
//!
//! 1. The editor's Record switch sets [`TakeControl::set_recording`].
//! 2. The worker, which drains every captured frame anyway, hands each block to its
//!    [`TakeRecorder`]. While the switch is on, the recorder appends the frames (all channels,
//!    untouched) to a 32-bit float WAV in the take folder ([`takes_dir`]), so a take of any
//!    length costs a few kilobytes of memory. The WAV header is brought up to date every second,
//!    so even a crash leaves a playable file.
//! 3. When the switch goes off (or the host deactivates the plugin) the take is closed and
//!    offered for export.
//! 4. The editor's Export button calls [`TakeControl::start_export`], which runs
//!    [`crate::export::job::export`] on a thread of its own into `<folder>/<take name>`: staged
//!    in a hidden folder and renamed into place, never replacing an earlier export unless the
//!    user confirmed it. The take file is only read, so a failed export (a full disk, a folder
//!    that cannot be written) leaves it as it was, and the editor says why.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::export::job::{self, ExportError, ExportProgress, ExportRequest};
use crate::inference::{locate_models, ModelSet, Workload};

/// Environment variable: where takes are recorded (default: [`takes_dir`]).
pub const ENV_TAKES_DIR: &str = "STRATA_TAKES_DIR";

/// How often the take's WAV header is brought up to date while recording.
pub const HEADER_UPDATE_INTERVAL: Duration = Duration::from_secs(1);

/// The folder takes are recorded into: `STRATA_TAKES_DIR`, else the user's cache folder
/// (`$XDG_CACHE_HOME/strata/takes` or `~/.cache/strata/takes`), else the temporary folder. Not
/// the temporary folder first: on many systems it lives in memory, and an hour of stereo audio
/// is over a gigabyte.
pub fn takes_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(ENV_TAKES_DIR) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    match cache {
        Some(c) => c.join("strata").join("takes"),
        None => std::env::temp_dir().join("strata-takes"),
    }
}

/// A finished take: a WAV file on disk and what the export needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Take {
    /// The WAV file.
    pub path: PathBuf,
    /// A name for it, from the time recording started ("Strata take 2026-11-24 21.03.15").
    pub name: String,
    pub frames: u64,
    pub sample_rate: u32,
    pub channels: u16,
    /// The host's tempo and beats per bar when the take ended, if it gave them.
    pub tempo_bpm: Option<f64>,
    pub beats_per_bar: u32,
    /// Frames the audio thread dropped while this take was recorded (the worker fell behind):
    /// the take is missing them, so the editor warns when this is not 0.
    pub dropped_frames: u64,
}

impl Take {
    pub fn duration_s(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate.max(1))
    }
}

/// What the recorder is doing, for the editor.
#[derive(Debug, Clone, PartialEq)]
pub enum RecorderState {
    /// Nothing recorded yet.
    Idle,
    /// Recording into this file (its length is [`TakeControl::recorded_frames`]).
    Recording { path: PathBuf, sample_rate: u32, channels: u16 },
    /// The last take, ready to export.
    Ready(Take),
    /// Recording stopped on an error; what was recorded before it, if anything, is kept.
    Failed { reason: String, kept: Option<Take> },
}

/// Where the export of a take stands, for the editor.
#[derive(Debug, Clone)]
pub enum ExportState {
    Idle,
    /// The folder already holds an export of this take: the user must confirm replacing it.
    NeedsConfirmation { take: Take, dest: PathBuf },
    Running { dest: PathBuf, progress: Arc<ExportProgress> },
    Done { dest: PathBuf, files: usize, stems: usize, max_sum_error: f64 },
    Failed { reason: String },
}

/// The Record switch, the recorder's state and the export job, shared by the editor (which sets
/// and reads them), the worker (which records) and the export thread. The audio thread never
/// touches it. Its locks are held for a copy at a time.
#[derive(Debug)]
pub struct TakeControl {
    /// The Record switch.
    recording: AtomicBool,
    /// Frames in the take being recorded.
    recorded_frames: AtomicU64,
    recorder: Mutex<RecorderState>,
    export: Mutex<ExportState>,
    export_thread: Mutex<Option<JoinHandle<()>>>,
    /// Exported takes: removed when a new take starts or the plugin goes away. Takes never
    /// exported are kept on disk (the editor says where).
    exported: Mutex<Vec<PathBuf>>,
    /// Where takes go (fixed when the control is made, so tests can point it elsewhere).
    dir: PathBuf,
}

impl TakeControl {
    /// A control recording into [`takes_dir`].
    pub fn new() -> Self {
        Self::with_dir(takes_dir())
    }

    /// A control recording into `dir`.
    pub fn with_dir(dir: PathBuf) -> Self {
        Self {
            recording: AtomicBool::new(false),
            recorded_frames: AtomicU64::new(0),
            recorder: Mutex::new(RecorderState::Idle),
            export: Mutex::new(ExportState::Idle),
            export_thread: Mutex::new(None),
            exported: Mutex::new(Vec::new()),
            dir,
        }
    }

    /// The folder takes are recorded into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Turns the Record switch on or off. The worker starts or closes the take on its next pass
    /// (within a few milliseconds while the host plays).
    pub fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::Release);
    }

    pub fn is_recording(&self) -> bool {
        self.recording.load(Ordering::Acquire)
    }

    /// Frames in the take being recorded.
    pub fn recorded_frames(&self) -> u64 {
        self.recorded_frames.load(Ordering::Relaxed)
    }

    pub fn recorder_state(&self) -> RecorderState {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_recorder_state(&self, state: RecorderState) {
        *self.recorder.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    pub fn export_state(&self) -> ExportState {
        self.export.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_export_state(&self, state: ExportState) {
        *self.export.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// The take the Export button would export: the last finished one.
    pub fn take(&self) -> Option<Take> {
        match self.recorder_state() {
            RecorderState::Ready(take) => Some(take),
            RecorderState::Failed { kept, .. } => kept,
            _ => None,
        }
    }

    /// Exports the last take into `folder/<take name>` on a thread of its own. With `replace`
    /// false, an earlier export there is not touched: the state becomes
    /// [`ExportState::NeedsConfirmation`] and the editor asks. Does nothing while an export runs.
    pub fn start_export(self: &Arc<Self>, folder: &Path, replace: bool, highlight_period_s: Option<f64>) {
        if matches!(self.export_state(), ExportState::Running { .. }) {
            return;
        }
        match self.export_request(folder, replace, highlight_period_s) {
            Ok(request) => self.spawn_export(request),
            Err(state) => self.set_export_state(state),
        }
    }

    /// What exporting the last take into `folder` asks of the export job, or the state to show
    /// instead: no take, no folder, a destination to confirm or one that cannot be written.
    fn export_request(&self, folder: &Path, replace: bool, highlight_period_s: Option<f64>) -> Result<ExportRequest, ExportState> {
        let Some(take) = self.take() else {
            return Err(ExportState::Failed { reason: "there is no take to export: record one first".into() });
        };
        if folder.as_os_str().is_empty() {
            return Err(ExportState::Failed { reason: "choose a folder to export into".into() });
        }
        let dest = folder.join(&take.name);
        match job::check_destination(&dest, replace) {
            Err(ExportError::DestinationExists { .. }) => return Err(ExportState::NeedsConfirmation { take, dest }),
            Err(e) => return Err(failed_keeping(&take.path, e)),
            Ok(_) => {}
        }
        Ok(ExportRequest {
            input: take.path.clone(),
            dest,
            replace,
            source_name: Some(take.name.clone()),
            tempo_bpm: take.tempo_bpm,
            beats_per_bar: f64::from(take.beats_per_bar.max(1)),
            highlight_period_s,
        })
    }

    /// Runs `request` on the export thread: the state is [`ExportState::Running`] until it ends,
    /// then what came of it.
    fn spawn_export(self: &Arc<Self>, request: ExportRequest) {
        let progress = Arc::new(ExportProgress::new());
        self.set_export_state(ExportState::Running { dest: request.dest.clone(), progress: progress.clone() });
        let control = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("strata-export".into()).spawn(move || {
            let state = match run_export(&request, &progress) {
                Ok(summary) => {
                    control.exported.lock().unwrap_or_else(|e| e.into_inner()).push(request.input.clone());
                    ExportState::Done {
                        dest: summary.dest,
                        files: summary.files.len(),
                        stems: summary.stem_periods_s.len(),
                        max_sum_error: summary.max_sum_error,
                    }
                }
                Err(reason) => failed_keeping(&request.input, reason),
            };
            control.set_export_state(state);
        });
        match spawned {
            Ok(handle) => {
                let old = self.export_thread.lock().unwrap_or_else(|e| e.into_inner()).replace(handle);
                if let Some(old) = old {
                    let _ = old.join(); // finished already: only one export runs at a time
                }
            }
            Err(e) => self.set_export_state(ExportState::Failed { reason: format!("cannot start the export: {e}") }),
        }
    }

    /// Forgets a confirmation prompt or a finished export's message.
    pub fn dismiss_export(&self) {
        if !matches!(self.export_state(), ExportState::Running { .. }) {
            self.set_export_state(ExportState::Idle);
        }
    }

    /// Stops a running export (it cleans up after itself) and waits for its thread.
    pub fn cancel_export(&self) {
        if let ExportState::Running { progress, .. } = self.export_state() {
            progress.cancel();
        }
        self.wait_for_export();
    }

    /// Waits for a running export to end (for tests and shutdown).
    pub fn wait_for_export(&self) {
        let handle = self.export_thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Removes the take files that were exported.
    fn remove_exported_takes(&self) {
        let mut exported = self.exported.lock().unwrap_or_else(|e| e.into_inner());
        for p in exported.drain(..) {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Default for TakeControl {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TakeControl {
    fn drop(&mut self) {
        self.cancel_export();
        self.remove_exported_takes();
    }
}

/// A failed export's state: the reason, and where the take (untouched) is.
fn failed_keeping(take: &Path, reason: impl std::fmt::Display) -> ExportState {
    ExportState::Failed { reason: format!("{reason}. The take is kept at {}", take.display()) }
}

/// Loads the models for a batch job and runs the export: on the export thread only.
fn run_export(request: &ExportRequest, progress: &ExportProgress) -> Result<job::ExportSummary, String> {
    let runtime = crate::inference::runtime().map_err(|e| e.to_string())?;
    let models = locate_models()
        .and_then(|dir| ModelSet::load(&dir, runtime, Workload::Batched))
        .map_err(|e| e.to_string())?;
    job::export(request, models, progress).map_err(|e| e.to_string())
}

type WavWriter = hound::WavWriter<BufWriter<std::fs::File>>;

/// The worker's half: writes the frames it is given into the take while the switch is on.
pub struct TakeRecorder {
    control: Arc<TakeControl>,
    sample_rate: u32,
    channels: u16,
    /// The take being recorded, if any.
    open: Option<OpenTake>,
    /// The host's tempo and beats per bar, as the worker last saw them.
    tempo_bpm: Option<f64>,
    beats_per_bar: u32,
    /// The capture ring's count of dropped frames, as the worker last saw it.
    dropped_total: u64,
}

struct OpenTake {
    writer: WavWriter,
    path: PathBuf,
    name: String,
    frames: u64,
    last_header_update: Instant,
    /// The ring's dropped-frame count when the take started.
    dropped_at_start: u64,
}

impl TakeRecorder {
    pub fn new(control: Arc<TakeControl>, sample_rate: u32, channels: usize) -> Self {
        Self {
            control,
            sample_rate: sample_rate.max(1),
            channels: channels.clamp(1, usize::from(u16::MAX)) as u16,
            open: None,
            tempo_bpm: None,
            beats_per_bar: 4,
            dropped_total: 0,
        }
    }

    /// Tells the recorder how many frames the audio thread has dropped so far (the capture
    /// counters), so a take can say it has gaps.
    pub fn set_dropped_frames(&mut self, total: u64) {
        self.dropped_total = total;
    }

    /// Tells the recorder the host's tempo, for the take's annotations.
    pub fn set_tempo(&mut self, tempo_bpm: Option<f64>, beats_per_bar: u32) {
        self.tempo_bpm = tempo_bpm;
        self.beats_per_bar = beats_per_bar;
    }

    /// Handles one block of interleaved frames (possibly empty: the switch is still checked).
    pub fn process(&mut self, interleaved: &[f32]) {
        let on = self.control.is_recording();
        if on && self.open.is_none() {
            self.start();
        } else if !on && self.open.is_some() {
            self.close(None);
        }
        let Some(open) = self.open.as_mut() else { return };
        let mut result = Ok(());
        for &s in interleaved {
            // Non-finite samples are recorded as they came: the export treats them as silence
            // and says so nowhere else, so keep the take faithful.
            if let Err(e) = open.writer.write_sample(s) {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            open.frames += (interleaved.len() / usize::from(self.channels)) as u64;
            self.control.recorded_frames.store(open.frames, Ordering::Relaxed);
            if open.last_header_update.elapsed() >= HEADER_UPDATE_INTERVAL {
                open.last_header_update = Instant::now();
                result = open.writer.flush();
            }
        }
        if let Err(e) = result {
            let reason = describe_write_error(&open.path, &e);
            self.close(Some(reason));
        }
    }

    /// Closes the take being recorded, if any (the worker calls this when it stops).
    pub fn finish(&mut self) {
        self.close(None);
    }

    fn start(&mut self) {
        let (name, file_stem) = take_name(SystemTime::now());
        let dir = self.control.dir().to_owned();
        let path = dir.join(format!("{file_stem}.wav"));
        let spec = hound::WavSpec {
            channels: self.channels,
            sample_rate: self.sample_rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let created = std::fs::create_dir_all(&dir)
            .map_err(hound::Error::IoError)
            .and_then(|_| hound::WavWriter::create(&path, spec));
        match created {
            Ok(writer) => {
                // The previous take stays until the new one is safely under way.
                self.control.remove_exported_takes();
                self.control.recorded_frames.store(0, Ordering::Relaxed);
                self.control.set_recorder_state(RecorderState::Recording {
                    path: path.clone(),
                    sample_rate: self.sample_rate,
                    channels: self.channels,
                });
                self.open = Some(OpenTake {
                    writer,
                    path,
                    name,
                    frames: 0,
                    last_header_update: Instant::now(),
                    dropped_at_start: self.dropped_total,
                });
            }
            Err(e) => {
                // Switch off, so the editor shows the switch as it really is.
                self.control.set_recording(false);
                let kept = self.control.take();
                self.control.set_recorder_state(RecorderState::Failed {
                    reason: format!("cannot record: {}", describe_write_error(&path, &e)),
                    kept,
                });
            }
        }
    }

    fn close(&mut self, error: Option<String>) {
        let Some(open) = self.open.take() else { return };
        let finalized = open.writer.finalize();
        let take = Take {
            path: open.path.clone(),
            name: open.name,
            frames: open.frames,
            sample_rate: self.sample_rate,
            channels: self.channels,
            tempo_bpm: self.tempo_bpm,
            beats_per_bar: self.beats_per_bar,
            dropped_frames: self.dropped_total.saturating_sub(open.dropped_at_start),
        };
        let state = match (error, finalized) {
            (None, Ok(())) if take.frames > 0 => RecorderState::Ready(take),
            (None, Ok(())) => {
                let _ = std::fs::remove_file(&open.path);
                RecorderState::Failed { reason: "the take is empty: no audio arrived while recording".into(), kept: None }
            }
            (error, finalized) => {
                self.control.set_recording(false);
                let reason = error.unwrap_or_else(|| match finalized {
                    Err(e) => describe_write_error(&open.path, &e),
                    Ok(()) => String::new(),
                });
                // The header was brought up to date at least every second, so the file holds
                // the take up to then, playable.
                let kept = (take.frames > 0).then_some(take);
                RecorderState::Failed { reason: format!("recording stopped: {reason}"), kept }
            }
        };
        self.control.set_recorder_state(state);
    }
}

impl Drop for TakeRecorder {
    fn drop(&mut self) {
        self.finish();
    }
}

fn describe_write_error(path: &Path, e: &hound::Error) -> String {
    match e {
        hound::Error::IoError(io) if job::is_disk_full(io) => {
            format!("the disk holding {} is full", path.display())
        }
        other => format!("cannot write {}: {other}", path.display()),
    }
}

/// A take's display name and file name from the time it started (UTC):
/// ("Strata take 2026-11-24 21.03.15", "take-20261124-210315-<pid>-<n>").
pub fn take_name(at: SystemTime) -> (String, String) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let (h, mi, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    (
        format!("Strata take {y:04}-{mo:02}-{d:02} {h:02}.{mi:02}.{s:02}"),
        format!("take-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{}-{n}", std::process::id()),
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_come_out_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_986_195); // 2026-11-29 21:03:15
        assert!(take_name(at).0.starts_with("Strata take 2026-11-29 21.03.15"));
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-take-unit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn records_exactly_what_it_was_given_while_the_switch_is_on() {
        let dir = temp("record");
        let control = Arc::new(TakeControl::with_dir(dir.clone()));
        let mut recorder = TakeRecorder::new(control.clone(), 44_100, 2);
        recorder.set_dropped_frames(5); // before the take: not its gap
        recorder.process(&[9.0, 9.0]); // switch off: not recorded
        control.set_recording(true);
        let frames: Vec<f32> = (0..20_000).map(|i| (i as f32 * 0.001).sin()).collect();
        for (i, block) in frames.chunks(512).enumerate() {
            if i == 10 {
                recorder.set_dropped_frames(12); // the audio thread dropped 7 frames meanwhile
            }
            recorder.process(block);
        }
        assert!(matches!(control.recorder_state(), RecorderState::Recording { .. }));
        control.set_recording(false);
        recorder.process(&[]);
        let take = control.take().expect("a finished take");
        assert_eq!((take.frames, take.channels, take.sample_rate), (10_000, 2, 44_100));
        assert_eq!(take.dropped_frames, 7, "the take knows it has a gap");
        let read: Vec<f32> = hound::WavReader::open(&take.path).unwrap().into_samples().map(Result::unwrap).collect();
        assert_eq!(read, frames);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unwritable_take_folder_switches_record_off_and_says_why() {
        let dir = temp("unwritable");
        std::fs::write(&dir, b"a file, not a folder").unwrap();
        let control = Arc::new(TakeControl::with_dir(dir.join("takes")));
        let mut recorder = TakeRecorder::new(control.clone(), 48_000, 1);
        control.set_recording(true);
        recorder.process(&[0.1; 64]);
        assert!(!control.is_recording());
        match control.recorder_state() {
            RecorderState::Failed { reason, kept: None } => assert!(reason.contains("cannot record"), "{reason}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(dir).unwrap();
    }
}
