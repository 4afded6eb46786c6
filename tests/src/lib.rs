//! Real host code for testing the built Strata bundles: a small CLAP host on `clack-host`, audio
//! decoding for the files in `assets/`, and helpers to find the bundles `cargo xtask` built.
//!
//! Nothing here mocks Strata: the tests load `target/bundled/Strata.clap` exactly as a DAW would.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use clack_extensions::audio_ports_config::{AudioPortsConfigBuffer, PluginAudioPortsConfig};
use clack_extensions::gui::{GuiConfiguration, GuiSize, HostGui, HostGuiImpl, PluginGui, Window};
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_host::events::event_types::{TransportEvent, TransportFlags};
use clack_host::events::{EventFlags, EventHeader};
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};

pub mod audio;
#[cfg(unix)]
pub mod session;
pub mod vst3;
#[cfg(unix)]
pub mod x11;

/// Strata's CLAP id (fixed: hosts store it in projects).
pub const STRATA_CLAP_ID: &str = "org.strata-audio.strata";
/// The null plugin's CLAP id.
pub const NULL_CLAP_ID: &str = "org.strata-audio.strata-null";

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Cargo's target folder, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// A bundle `cargo xtask bundle` made, e.g. `bundled("Strata.clap")`. Fails with the command to
/// run if it is not there.
pub fn bundled(name: &str) -> Result<PathBuf> {
    let path = target_dir().join("bundled").join(name);
    if !path.exists() {
        bail!(
            "{} does not exist: run the tests with `cargo xtask test`, which builds the bundles first",
            path.display()
        );
    }
    Ok(path)
}

/// A file in `assets/`.
pub fn asset(name: &str) -> PathBuf {
    workspace_root().join("assets").join(name)
}

/// Tests that load plugins take this lock: the plugin's worker reports go to one file per
/// process, and one plugin at a time keeps them in order.
pub fn plugin_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The file the plugin's workers append their reports to (set once per test process, before any
/// plugin is loaded).
pub fn worker_report_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("strata-worker-report-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        // SAFETY of set_var: called once, under `OnceLock`, before any plugin thread exists.
        unsafe { std::env::set_var("STRATA_WORKER_REPORT", &path) };
        path
    })
}

/// The report of the worker that stopped last.
pub fn last_worker_report() -> Result<serde_json::Value> {
    let path = worker_report_file();
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let line = text.lines().last().ok_or_else(|| anyhow!("{} is empty", path.display()))?;
    Ok(serde_json::from_str(line)?)
}

/// FNV-1a 64 over the bit patterns of `samples`, as the worker's report writes it (the plugin's
/// own `Fnv1a64`, checked against the reference vector in its unit tests).
pub fn fnv1a64(samples: &[f32]) -> String {
    let mut h = strata::worker::Fnv1a64::new();
    h.update_samples(samples);
    format!("{:016x}", h.finish())
}

/// The mono mixdown the worker analyses, of frames `start..start + len` of `channels` (the
/// plugin's own `mix_to_mono`, which its unit tests pin down).
pub fn mixdown(channels: &[Vec<f32>], start: usize, len: usize) -> Vec<f32> {
    let interleaved: Vec<f32> = (start..start + len).flat_map(|i| channels.iter().map(move |c| c[i])).collect();
    let mut mono = Vec::with_capacity(len);
    strata::capture::mix_to_mono(&interleaved, channels.len(), &mut mono);
    mono
}

// ---------------------------------------------------------------------------------------------
// The CLAP host.

struct TestHost;

/// Host state shared across threads: the plugin's extensions, found while it initialises.
pub struct TestHostShared {
    state: OnceLock<Option<PluginState>>,
    ports_config: OnceLock<Option<PluginAudioPortsConfig>>,
    gui: OnceLock<Option<PluginGui>>,
}

/// Host state on the main thread.
pub struct TestHostMainThread;

impl HostHandlers for TestHost {
    type Shared<'a> = TestHostShared;
    type MainThread<'a> = TestHostMainThread;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        // nice-plug's editor needs the host's GUI extension to exist.
        builder.register::<HostLog>().register::<HostState>().register::<HostGui>();
    }
}

impl<'a> SharedHandler<'a> for TestHostShared {
    fn initializing(&self, instance: InitializingPluginHandle<'a>) {
        let _ = self.state.set(instance.get_extension());
        let _ = self.ports_config.set(instance.get_extension());
        let _ = self.gui.set(instance.get_extension());
    }
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

impl HostLogImpl for TestHostShared {
    fn log(&self, severity: LogSeverity, message: &str) {
        eprintln!("[plugin {severity:?}] {message}");
    }
}

/// The host side of the GUI extension: this host's window has a fixed size and stays shown.
impl HostGuiImpl for TestHostShared {
    fn resize_hints_changed(&self) {}
    fn request_resize(&self, _new_size: GuiSize) -> Result<(), HostError> {
        Err(HostError::Message("this test host's window has a fixed size"))
    }
    fn request_show(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn request_hide(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn closed(&self, _was_destroyed: bool) {}
}

impl<'a> MainThreadHandler<'a> for TestHostMainThread {}

impl HostStateImpl for TestHostMainThread {
    fn mark_dirty(&self) {}
}

/// A loaded CLAP bundle.
pub struct ClapBundle {
    entry: PluginEntry,
}

impl ClapBundle {
    /// Loads a `.clap` file.
    pub fn load(path: &Path) -> Result<Self> {
        worker_report_file();
        // SAFETY: loading a plugin runs its code; these are the bundles this workspace built.
        let entry = unsafe { PluginEntry::load(path) }
            .map_err(|e| anyhow!("loading {}: {e:?}", path.display()))?;
        Ok(Self { entry })
    }

    /// The ids of the plugins the bundle's factory lists.
    pub fn plugin_ids(&self) -> Vec<String> {
        self.entry
            .get_plugin_factory()
            .map(|f| {
                f.plugin_descriptors()
                    .filter_map(|d| d.id().map(|id| id.to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates an instance of the plugin with this id.
    pub fn instantiate(&self, id: &str) -> Result<ClapInstance> {
        let host_info = HostInfo::new("Strata test host", "Strata", "", "0.1.0")?;
        let id = CString::new(id)?;
        let instance = PluginInstance::<TestHost>::new(
            |_| TestHostShared {
                state: OnceLock::new(),
                ports_config: OnceLock::new(),
                gui: OnceLock::new(),
            },
            |_| TestHostMainThread,
            &self.entry,
            &id,
            &host_info,
        )
        .map_err(|e| anyhow!("instantiating {id:?}: {e:?}"))?;
        Ok(ClapInstance {
            instance,
            channels: 2,
        })
    }
}

/// One plugin instance.
pub struct ClapInstance {
    instance: PluginInstance<TestHost>,
    channels: usize,
}

/// A plugin instance that is activated and processing. Its buffers are allocated once, here,
/// so that a benchmark measures the plugin, not the host.
pub struct RunningPlugin {
    processor: StartedPluginAudioProcessor<TestHost>,
    /// Input frames for the next call, per channel.
    pub input: Vec<Vec<f32>>,
    /// Output frames of the last call, per channel.
    pub output: Vec<Vec<f32>>,
    in_ports: AudioPorts,
    out_ports: AudioPorts,
    events_in: EventBuffer,
    events_out: EventBuffer,
    steady_time: u64,
    /// What the host's transport says with every block (`None`: a free-running host).
    transport: Option<TransportEvent>,
}

impl RunningPlugin {
    /// Plays frames `range` of `channels` through the plugin in blocks of `block` frames at
    /// real-time pace for `sample_rate`, as a DAW playing does.
    pub fn play_in_real_time(&mut self, channels: &[Vec<f32>], range: std::ops::Range<usize>, block: usize, sample_rate: f64) -> Result<()> {
        let start = std::time::Instant::now();
        let mut pos = range.start;
        while pos < range.end {
            let n = block.min(range.end - pos);
            for (input, ch) in self.input.iter_mut().zip(channels) {
                input[..n].copy_from_slice(&ch[pos..pos + n]);
            }
            self.process(n)?;
            pos += n;
            let due = std::time::Duration::from_secs_f64((pos - range.start) as f64 / sample_rate);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        Ok(())
    }

    /// Sends a transport with every following block: `tempo_bpm` in 4/4, playing or stopped,
    /// at `song_pos_s` seconds; `None` for a host with no transport.
    pub fn set_transport(&mut self, transport: Option<(f64, bool, f64)>) {
        self.transport = transport.map(|(tempo, playing, song_pos_s)| {
            let mut flags = TransportFlags::HAS_TEMPO
                | TransportFlags::HAS_BEATS_TIMELINE
                | TransportFlags::HAS_SECONDS_TIMELINE
                | TransportFlags::HAS_TIME_SIGNATURE;
            if playing {
                flags |= TransportFlags::IS_PLAYING;
            }
            let beats = song_pos_s * tempo / 60.0;
            TransportEvent {
                header: EventHeader::new_core(0, EventFlags::empty()),
                flags,
                song_pos_beats: BeatTime::from_float(beats),
                song_pos_seconds: SecondsTime::from_float(song_pos_s),
                tempo,
                tempo_inc: 0.0,
                loop_start_beats: BeatTime::from_float(0.0),
                loop_end_beats: BeatTime::from_float(0.0),
                loop_start_seconds: SecondsTime::from_float(0.0),
                loop_end_seconds: SecondsTime::from_float(0.0),
                bar_start: BeatTime::from_float((beats / 4.0).floor() * 4.0),
                bar_number: (beats / 4.0).floor() as i32,
                time_signature_numerator: 4,
                time_signature_denominator: 4,
            }
        });
    }

    /// One process call over the first `frames` frames of `input`, into `output`.
    pub fn process(&mut self, frames: usize) -> Result<()> {
        let inputs = self.in_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                self.input.iter_mut().map(|b| InputChannel::variable(&mut b[..frames])),
            ),
        }]);
        let mut outputs = self.out_ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(self.output.iter_mut().map(|b| &mut b[..frames])),
        }]);
        self.processor
            .process(
                &inputs,
                &mut outputs,
                &self.events_in.as_input(),
                &mut self.events_out.as_output(),
                Some(self.steady_time),
                self.transport.as_ref(),
            )
            .map_err(|e| anyhow!("{e:?}"))?;
        self.steady_time += frames as u64;
        Ok(())
    }
}

/// Output of processing a stream.
pub struct Processed {
    /// The plugin's output, channel by channel.
    pub output: Vec<Vec<f32>>,
    /// How many process calls were made.
    pub calls: usize,
}

impl ClapInstance {
    /// Selects the audio-ports configuration with `channels` channels (1 or 2). Only while
    /// deactivated.
    pub fn select_channels(&mut self, channels: usize) -> Result<()> {
        let ext = self
            .instance
            .access_shared_handler(|h| h.ports_config.get().copied().flatten())
            .ok_or_else(|| anyhow!("the plugin has no audio-ports-config extension"))?;
        let handle = self.instance.plugin_handle();
        let mut buffer = AudioPortsConfigBuffer::new();
        let mut chosen = None;
        for i in 0..ext.count(&handle) {
            if let Some(config) = ext.get(&handle, i, &mut buffer) {
                let ch = config.main_input.as_ref().map(|p| p.channel_count as usize);
                if ch == Some(channels) {
                    chosen = Some(config.id);
                }
            }
        }
        let id = chosen.ok_or_else(|| anyhow!("no {channels}-channel audio-ports config"))?;
        ext.select(&handle, id)
            .map_err(|e| anyhow!("selecting config {id:?}: {e:?}"))?;
        self.channels = channels;
        Ok(())
    }

    /// Activates at `sample_rate` for blocks of up to `max_block` frames and starts processing.
    pub fn start(&mut self, sample_rate: f64, max_block: usize) -> Result<RunningPlugin> {
        self.start_with_buffers(sample_rate, max_block, max_block)
    }

    /// Like [`start`](Self::start), but with host buffers of `buffer_frames`, which may exceed
    /// the announced maximum (to test hosts that break their promise).
    pub fn start_with_buffers(&mut self, sample_rate: f64, max_block: usize, buffer_frames: usize) -> Result<RunningPlugin> {
        let config = PluginAudioConfiguration {
            sample_rate,
            min_frames_count: 1,
            max_frames_count: max_block as u32,
        };
        let processor = self
            .instance
            .activate(|_, _| (), config)
            .map_err(|e| anyhow!("activate at {sample_rate} Hz: {e:?}"))?;
        let processor = processor
            .start_processing()
            .map_err(|e| anyhow!("start_processing: {e:?}"))?;
        let channels = self.channels;
        Ok(RunningPlugin {
            processor,
            input: vec![vec![0.0; buffer_frames.max(1)]; channels],
            output: vec![vec![0.0; buffer_frames.max(1)]; channels],
            in_ports: AudioPorts::with_capacity(channels, 1),
            out_ports: AudioPorts::with_capacity(channels, 1),
            events_in: EventBuffer::new(),
            events_out: EventBuffer::new(),
            steady_time: 0,
            transport: None,
        })
    }

    /// Stops processing and deactivates (the plugin's worker stops here).
    pub fn stop(&mut self, running: RunningPlugin) {
        let stopped = running.processor.stop_processing();
        self.instance.deactivate(stopped);
    }

    /// Activates at `sample_rate` with up to `max_block` frames, feeds `input` (one Vec per
    /// channel) in blocks whose sizes come from `block_sizes` (cycled), then stops and
    /// deactivates. Returns the output.
    pub fn process_stream(
        &mut self,
        sample_rate: f64,
        max_block: usize,
        input: &[Vec<f32>],
        block_sizes: &[usize],
    ) -> Result<Processed> {
        if input.len() != self.channels {
            bail!("{} input channels for a {}-channel layout", input.len(), self.channels);
        }
        let total = input.first().map_or(0, Vec::len);
        let largest = block_sizes.iter().copied().max().unwrap_or(1).max(1);
        let mut running = self.start(sample_rate, largest.max(max_block))?;
        let mut output = vec![Vec::with_capacity(total); self.channels];
        let mut pos = 0;
        let mut calls = 0;
        let mut sizes = block_sizes.iter().copied().cycle();
        while pos < total {
            let n = sizes.next().unwrap_or(1).min(total - pos);
            for (c, channel) in input.iter().enumerate() {
                running.input[c][..n].copy_from_slice(&channel[pos..pos + n]);
                // Poison the output so a plugin that writes nothing is caught.
                running.output[c][..n].fill(f32::from_bits(0x7fc0_dead));
            }
            running
                .process(n)
                .with_context(|| format!("process call {calls} ({n} frames)"))?;
            for (c, out) in output.iter_mut().enumerate() {
                out.extend_from_slice(&running.output[c][..n]);
            }
            pos += n;
            calls += 1;
        }
        self.stop(running);
        Ok(Processed { output, calls })
    }

    /// Activates, makes raw process calls of the given frame counts with constant input (zero
    /// and larger than `max_block` included: hosts get these wrong), checks each is passed
    /// through, then deactivates.
    pub fn process_raw_frame_counts(
        &mut self,
        sample_rate: f64,
        max_block: usize,
        frame_counts: &[usize],
    ) -> Result<()> {
        let largest = frame_counts.iter().copied().max().unwrap_or(1);
        let mut running = self.start_with_buffers(sample_rate, max_block, largest)?;
        for &n in frame_counts {
            running.input.iter_mut().for_each(|c| c.fill(0.25));
            running.output.iter_mut().for_each(|c| c.fill(0.0));
            running.process(n).with_context(|| format!("process with {n} frames"))?;
            if running.output.iter().any(|b| b[..n].iter().any(|&x| x != 0.25)) {
                bail!("a {n}-frame block was not passed through");
            }
        }
        self.stop(running);
        Ok(())
    }

    /// Opens the plugin's editor embedded in an X11 window of the host's (`x11_window`), the way
    /// a DAW on Linux does.
    ///
    /// # Safety
    /// `x11_window` must be a live X11 window that outlives the editor.
    pub unsafe fn open_gui_in_x11(&mut self, x11_window: u64) -> Result<()> {
        // SAFETY: the caller keeps the window alive.
        unsafe { self.open_gui_in(Window::from_x11_handle(x11_window as std::ffi::c_ulong)) }
    }

    /// Opens the plugin's editor embedded in a Win32 window of the host's (`hwnd`), the way a DAW
    /// on Windows does. The host's thread must pump the window's messages while it is open.
    ///
    /// # Safety
    /// `hwnd` must be a live window that outlives the editor.
    #[cfg(windows)]
    pub unsafe fn open_gui_in_win32(&mut self, hwnd: *mut std::ffi::c_void) -> Result<()> {
        // SAFETY: the caller keeps the window alive.
        unsafe { self.open_gui_in(Window::from_win32_hwnd(hwnd)) }
    }

    /// `gui.create` for the window's API, `gui.set_parent(window)`, `gui.show`.
    unsafe fn open_gui_in(&mut self, window: Window<'static, '_>) -> Result<()> {
        let gui = self
            .instance
            .access_shared_handler(|h| h.gui.get().copied().flatten())
            .ok_or_else(|| anyhow!("the plugin has no GUI extension"))?;
        let handle = self.instance.plugin_handle();
        gui.create(&handle, GuiConfiguration { api_type: window.api_type(), is_floating: false })
            .map_err(|e| anyhow!("gui.create: {e:?}"))?;
        // SAFETY: the caller keeps the window alive.
        unsafe { gui.set_parent(&handle, window) }.map_err(|e| anyhow!("gui.set_parent: {e:?}"))?;
        gui.show(&handle).map_err(|e| anyhow!("gui.show: {e:?}"))?;
        Ok(())
    }

    /// Asks the open editor to take `width` x `height` (`gui.set_size`), as a host does when the
    /// user drags its window's corner; an editor that cannot resize says so.
    pub fn resize_gui(&mut self, width: u32, height: u32) -> Result<()> {
        let gui = self
            .instance
            .access_shared_handler(|h| h.gui.get().copied().flatten())
            .ok_or_else(|| anyhow!("the plugin has no GUI extension"))?;
        let handle = self.instance.plugin_handle();
        if !gui.can_resize(&handle) {
            bail!("the editor cannot be resized");
        }
        gui.set_size(&handle, GuiSize { width, height }).map_err(|e| anyhow!("gui.set_size({width}, {height}): {e:?}"))
    }

    /// Closes the plugin's editor (`gui.destroy`), as a host does before it removes the plugin or
    /// closes its display: the editor's thread lets go of the X connection first.
    pub fn close_gui(&mut self) -> Result<()> {
        let gui = self
            .instance
            .access_shared_handler(|h| h.gui.get().copied().flatten())
            .ok_or_else(|| anyhow!("the plugin has no GUI extension"))?;
        gui.destroy(&self.instance.plugin_handle());
        Ok(())
    }

    /// The plugin's saved state.
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        let ext = self.state_extension()?;
        let mut bytes = Vec::new();
        ext.save(&self.instance.plugin_handle(), &mut bytes)
            .map_err(|e| anyhow!("saving state: {e}"))?;
        Ok(bytes)
    }

    /// Restores a saved state.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let ext = self.state_extension()?;
        let mut reader = std::io::Cursor::new(bytes);
        ext.load(&self.instance.plugin_handle(), &mut reader)
            .map_err(|e| anyhow!("loading state: {e}"))
    }

    fn state_extension(&mut self) -> Result<PluginState> {
        self.instance
            .access_shared_handler(|h| h.state.get().copied().flatten())
            .ok_or_else(|| anyhow!("the plugin has no state extension"))
    }
}
