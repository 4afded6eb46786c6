//! A long live session, accelerated: the built `Strata.clap` in the clack host, fed hours of
//! music at a multiple of real time as a DAW session would feed it: activations at changing
//! sample rates, a transport whose tempo changes and which stops and starts (stopped, the host
//! sends silence), the music looped under it, and (with `editor`) the editor opened on an Xvfb
//! display in every activation, Record switched on and off in it by real pointer clicks, and the
//! editor closed again. What a producer relies on after hours is measured: audio still
//! bit-exact, nothing dropped on the audio thread, memory flat, every take exactly what was
//! played, and the layers still those of the music.
//!
//! `tests/tests/session.rs` runs a few minutes of it; the `session` benchmark runs eight hours.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::audio::{decode, Decoded};
use crate::x11::{Display, Xvfb, RECORD_BUTTON};
use crate::{asset, bundled, last_worker_report, plugin_lock, worker_report_file, ClapBundle, ClapInstance, STRATA_CLAP_ID};

/// The rates the activations cycle through; the last activation is at the first, the example's
/// own, so its layers are the example's.
pub const SESSION_RATES_HZ: [f64; 3] = [44_100.0, 48_000.0, 96_000.0];
/// Tempos the transport steps through, one a minute of audio.
const TEMPOS_BPM: [f64; 4] = [120.0, 126.0, 90.0, 140.0];
/// Every this many seconds of audio the transport stops for `STOP_S` (silence), then plays on.
const STOP_EVERY_S: f64 = 300.0;
const STOP_S: f64 = 10.0;
/// Host block size, in frames.
const BLOCK: usize = 512;

/// What to play.
#[derive(Debug, Clone, Copy)]
pub struct SessionPlan {
    /// Seconds of audio in all.
    pub total_s: f64,
    /// Activations (each a new sample rate), of equal length.
    pub activations: usize,
    /// How many times faster than real time the host plays.
    pub speed: f64,
    /// Open the editor in every activation (on an Xvfb display of its own), record a take from
    /// it, and close it again.
    pub editor: bool,
}

/// Seconds of audio each take records (Record on, then off this much later).
pub const TAKE_S: f64 = 30.0;

/// What the session measured.
#[derive(Debug, Clone)]
pub struct SessionReport {
    /// Seconds of audio played.
    pub audio_s: f64,
    /// Resident memory of the host process (which holds the plugin), MB, sampled once a minute
    /// of audio: (hours of audio played, MB).
    pub rss_mb: Vec<(f64, f64)>,
    /// Per activation: (sample rate, frames sent, frames dropped).
    pub activations: Vec<(f64, u64, u64)>,
    /// Frames the plugin's audio thread could not hand to its worker, over all activations.
    pub dropped_frames: u64,
    /// Frames the workers received, over all activations.
    pub received_frames: u64,
    /// Frames sent, over all activations.
    pub sent_frames: u64,
    /// Takes recorded from the editor, each checked bit for bit against what was played:
    /// (sample rate, frames).
    pub takes: Vec<(f64, u64)>,
    /// Where the host's memory was after each activation (the editor closed, the plugin
    /// stopped): what malloc holds and what of it is in use, beside the other mappings.
    pub memory: Vec<MemoryBreakdown>,
    /// The pattern layers' periods the last activation's worker found last.
    pub final_periods_s: Vec<f64>,
    /// Wall-clock seconds the session took.
    pub wall_s: f64,
}

impl SessionReport {
    /// The most resident memory in the first and in the last quarter of the session (MB): flat
    /// memory means the two are about equal however long the session.
    pub fn rss_first_and_last_quarter_mb(&self) -> (f64, f64) {
        let quarter = self.audio_s / 3600.0 / 4.0;
        let max_in = |from: f64, to: f64| {
            self.rss_mb.iter().filter(|(h, _)| *h >= from && *h <= to).map(|(_, mb)| *mb).fold(0.0, f64::max)
        };
        (max_in(0.0, quarter), max_in(3.0 * quarter, f64::INFINITY))
    }
}

/// Resident memory of this process, MB (Linux).
pub fn resident_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The process's memory split by who holds it, MB. A leak grows `malloc_in_use`; memory that
/// was freed but that the allocator cannot give back (its heaps fragmented) grows `anonymous`
/// while `malloc_in_use` stays flat.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryBreakdown {
    /// Resident memory of the process.
    pub resident: f64,
    /// Bytes malloc has handed out and not had back (every arena, and its own mappings).
    pub malloc_in_use: f64,
    /// Address space malloc has taken from the system (its heaps, resident or not, and its
    /// mappings).
    pub malloc_held: f64,
    /// Resident anonymous memory (the heaps, and every other private mapping).
    pub anonymous: f64,
    /// Resident memory mapped from files (libraries, models).
    pub file_backed: f64,
}

impl MemoryBreakdown {
    /// Measures this process now (Linux with glibc; zeros elsewhere).
    pub fn now() -> Self {
        let mut breakdown = MemoryBreakdown { resident: resident_mb(), ..Default::default() };
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallinfo2 reads the allocator's statistics; it takes no arguments.
            let info = unsafe { libc::mallinfo2() };
            let mb = |bytes: usize| bytes as f64 / (1024.0 * 1024.0);
            breakdown.malloc_in_use = mb(info.uordblks + info.hblkhd);
            breakdown.malloc_held = mb(info.arena + info.hblkhd);
        }
        if let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") {
            let mut from_file = false;
            for line in smaps.lines() {
                let mut fields = line.split_whitespace();
                match fields.next() {
                    Some("Rss:") => {
                        let kb = fields.next().and_then(|kb| kb.parse::<f64>().ok()).unwrap_or(0.0);
                        *if from_file { &mut breakdown.file_backed } else { &mut breakdown.anonymous } += kb / 1024.0;
                    }
                    // A mapping's header: address range, permissions, offset, device, inode, path.
                    Some(range) if range.contains('-') && !range.ends_with(':') => {
                        from_file = fields.nth(4).is_some_and(|path| path.starts_with('/'));
                    }
                    _ => {}
                }
            }
        }
        breakdown
    }
}

/// Plays the session and checks, as it goes, that every block comes out bit-exact and that each
/// activation's worker received every frame sent (an error says where it did not).
pub fn run_session(plan: SessionPlan) -> Result<SessionReport> {
    let _guard = plugin_lock();
    worker_report_file();
    // Before the plugin, so that on an early return the plugin (and its editor) goes first.
    let mut editor = if plan.editor { Some(EditorDriver::start()?) } else { None };
    let music = decode(&asset("machine_wars_excerpt.ogg"))?;
    let loop_frames = music.frames();
    let bundle = ClapBundle::load(&bundled("Strata.clap")?)?;
    let mut plugin = bundle.instantiate(STRATA_CLAP_ID)?;
    let started = std::time::Instant::now();
    let segment_s = plan.total_s / plan.activations as f64;
    let mut report = SessionReport {
        audio_s: 0.0,
        rss_mb: vec![(0.0, resident_mb())],
        memory: Vec::new(),
        activations: Vec::new(),
        dropped_frames: 0,
        received_frames: 0,
        sent_frames: 0,
        takes: Vec::new(),
        final_periods_s: Vec::new(),
        wall_s: 0.0,
    };
    let mut source_pos = 0_usize;
    for activation in 0..plan.activations {
        let rate = SESSION_RATES_HZ[(plan.activations - 1 - activation) % SESSION_RATES_HZ.len()];
        let frames = (segment_s * rate) as usize;
        let input = SessionInput {
            music: &music,
            rate,
            session_t0: report.audio_s,
            source_pos0: source_pos,
            final_stretch_from_s: (activation + 1 == plan.activations).then_some(segment_s - 660.0),
        };
        let mut running = plugin.start(rate, BLOCK)?;
        if let Some(e) = editor.as_mut() {
            e.begin_activation();
        }
        let mut pos = 0;
        let segment_start = Instant::now();
        let mut next_rss_s = 60.0;
        while pos < frames {
            let n = BLOCK.min(frames - pos);
            let t = pos as f64 / rate;
            let session_t = report.audio_s + t;
            let tempo = TEMPOS_BPM[(session_t / 60.0) as usize % TEMPOS_BPM.len()];
            running.set_transport(Some((tempo, !input.stopped_at(pos), session_t)));
            for (c, block) in running.input.iter_mut().enumerate() {
                input.fill(c, pos, &mut block[..n]);
            }
            running.process(n)?;
            for (c, (input, output)) in running.input.iter().zip(&running.output).enumerate() {
                if let Some(k) = input[..n].iter().zip(&output[..n]).position(|(a, b)| a.to_bits() != b.to_bits()) {
                    bail!("activation {activation} at {rate} Hz, {t:.1} s: channel {c} sample {k} not passed through bit-exact");
                }
            }
            source_pos = (source_pos + n) % loop_frames;
            pos += n;
            if let Some(e) = editor.as_mut() {
                e.step(&mut plugin, t)?;
            }
            let due = Duration::from_secs_f64(pos as f64 / rate / plan.speed);
            if let Some(wait) = due.checked_sub(segment_start.elapsed()) {
                std::thread::sleep(wait);
            }
            if t >= next_rss_s {
                report.rss_mb.push(((report.audio_s + t) / 3600.0, resident_mb()));
                next_rss_s += 60.0;
            }
        }
        plugin.stop(running);
        let worker = last_worker_report()?;
        let received = worker["received_samples"].as_u64().unwrap_or(0);
        let dropped = worker["dropped_samples"].as_u64().unwrap_or(0);
        if received + dropped != frames as u64 {
            bail!("activation {activation}: the worker saw {received} + {dropped} dropped of {frames} frames sent");
        }
        if let Some(e) = worker["analysis_error"].as_str() {
            bail!("activation {activation}: no analysis: {e}");
        }
        if let Some(e) = editor.as_mut() {
            let take = e.end_activation(&mut plugin, &input, frames)
                .with_context(|| format!("activation {activation} at {rate} Hz"))?;
            report.takes.push((rate, take));
        }
        report.memory.push(MemoryBreakdown::now());
        report.activations.push((rate, frames as u64, dropped));
        report.received_frames += received;
        report.dropped_frames += dropped;
        report.sent_frames += frames as u64;
        report.final_periods_s = worker["pattern_periods_s"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
            .unwrap_or_default();
        report.audio_s += segment_s;
    }
    report.rss_mb.push((report.audio_s / 3600.0, resident_mb()));
    report.wall_s = started.elapsed().as_secs_f64();
    drop(plugin);
    if let Some(e) = editor {
        e.finish();
    }
    Ok(report)
}

/// What the host plays in one activation, as a function of the frame: the looped music, or
/// silence while the transport is stopped. The take check replays it.
struct SessionInput<'a> {
    music: &'a Decoded,
    rate: f64,
    /// Session seconds at the activation's first frame.
    session_t0: f64,
    /// Where in the loop the activation starts.
    source_pos0: usize,
    /// Activation seconds from which the transport no longer stops (the last activation's final
    /// stretch, whose layers are checked).
    final_stretch_from_s: Option<f64>,
}

impl SessionInput<'_> {
    /// Whether the transport is stopped in the block starting at activation frame `block_pos`:
    /// for `STOP_S` every `STOP_EVERY_S` of the session.
    fn stopped_at(&self, block_pos: usize) -> bool {
        let t = block_pos as f64 / self.rate;
        let in_final_stretch = self.final_stretch_from_s.is_some_and(|from| t > from);
        (self.session_t0 + t) % STOP_EVERY_S > STOP_EVERY_S - STOP_S && !in_final_stretch
    }

    /// Channel `c`'s samples from activation frame `pos` on (`pos` starts a block).
    fn fill(&self, c: usize, pos: usize, out: &mut [f32]) {
        let stopped = self.stopped_at(pos);
        let source = &self.music.channels[c % self.music.channels.len()];
        for (k, x) in out.iter_mut().enumerate() {
            *x = if stopped { 0.0 } else { source[(self.source_pos0 + pos + k) % source.len()] };
        }
    }

    /// Channel `c`'s sample at activation frame `f`.
    fn sample(&self, c: usize, f: usize) -> f32 {
        let source = &self.music.channels[c % self.music.channels.len()];
        if self.stopped_at(f - f % BLOCK) {
            0.0
        } else {
            source[(self.source_pos0 + f) % source.len()]
        }
    }
}

/// The producer at the editor: in every activation it opens the editor, switches Record on once
/// the editor has drawn, off [`TAKE_S`] of audio later, and closes the editor; after the
/// activation it checks the take.
struct EditorDriver {
    display: Display,
    window: u64,
    takes_dir: PathBuf,
    phase: EditorPhase,
    /// When the screen was last looked at (reading it costs a round trip to the X server).
    last_look: Instant,
    /// Activation seconds at which Record was switched on.
    record_on_s: f64,
    _xvfb: Xvfb,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum EditorPhase {
    /// Closed, to be opened at the next step.
    Closed,
    /// Open, not yet drawn (or not yet time to record).
    Opened,
    Recording,
    /// Record switched off at this activation second; the editor closes a few seconds later.
    Recorded(f64),
    /// Closed again for the rest of the activation.
    Done,
}

impl EditorDriver {
    /// Starts Xvfb and the host window. Sets `DISPLAY` and `STRATA_TAKES_DIR` for this process
    /// (the session is the only test in its process).
    fn start() -> Result<Self> {
        let xvfb = Xvfb::start()?;
        let takes_dir = std::env::temp_dir().join(format!("strata-session-takes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&takes_dir);
        std::env::set_var("DISPLAY", &xvfb.display);
        std::env::set_var(strata::take::ENV_TAKES_DIR, &takes_dir);
        let display = Display::open()?;
        let window = display.host.host_window(1000, 600);
        Ok(Self {
            display,
            window,
            takes_dir,
            phase: EditorPhase::Done,
            last_look: Instant::now(),
            record_on_s: 0.0,
            _xvfb: xvfb,
        })
    }

    fn begin_activation(&mut self) {
        self.phase = EditorPhase::Closed;
    }

    /// One host block later, at activation second `t`.
    fn step(&mut self, plugin: &mut ClapInstance, t: f64) -> Result<()> {
        match self.phase {
            EditorPhase::Closed => {
                // SAFETY: the window lives until the display closes, after the plugin is gone.
                unsafe { plugin.open_gui_in_x11(self.window)? };
                self.phase = EditorPhase::Opened;
            }
            EditorPhase::Opened if t >= 5.0 && self.last_look.elapsed() >= Duration::from_millis(250) => {
                self.last_look = Instant::now();
                if self.display.record_dot_drawn() {
                    self.display.click(RECORD_BUTTON);
                    self.record_on_s = t;
                    self.phase = EditorPhase::Recording;
                }
            }
            EditorPhase::Recording if t >= self.record_on_s + TAKE_S => {
                self.display.click(RECORD_BUTTON);
                self.phase = EditorPhase::Recorded(t);
            }
            EditorPhase::Recorded(off_s) if t >= off_s + 5.0 => {
                plugin.close_gui()?;
                self.phase = EditorPhase::Done;
            }
            _ => {}
        }
        Ok(())
    }

    /// After the activation has stopped: closes the editor if it is still open, and checks that
    /// the activation left exactly one take, which is a stretch of what was played, bit for bit.
    /// Returns its length in frames; the take is then deleted.
    fn end_activation(&mut self, plugin: &mut ClapInstance, input: &SessionInput, frames: usize) -> Result<u64> {
        if !matches!(self.phase, EditorPhase::Done | EditorPhase::Closed) {
            plugin.close_gui()?;
        }
        if matches!(self.phase, EditorPhase::Closed | EditorPhase::Opened) {
            bail!("the editor never drew its take row, so nothing was recorded");
        }
        self.phase = EditorPhase::Done;
        let takes = wav_files(&self.takes_dir);
        let [take] = takes.as_slice() else {
            bail!("{} takes in {} after one Record on and off", takes.len(), self.takes_dir.display());
        };
        let mut reader = hound::WavReader::open(take).with_context(|| format!("reading {}", take.display()))?;
        let spec = reader.spec();
        if spec.channels != 2 {
            bail!("{}: {} channels, the session plays two", take.display(), spec.channels);
        }
        if f64::from(spec.sample_rate) != input.rate {
            bail!("the take is at {} Hz, the activation at {} Hz", spec.sample_rate, input.rate);
        }
        let take_frames = reader.duration() as usize;
        let expected = TAKE_S * input.rate;
        if (take_frames as f64) < 0.5 * expected || take_frames as f64 > 1.5 * expected {
            bail!("the take holds {take_frames} frames; Record was on for about {expected} frames");
        }
        // Where it starts: near where Record was switched on (the click reaches the worker a
        // little later; the host's clock runs at a multiple of real time). The take is streamed,
        // not read whole: a 30 s take at 96 kHz is 23 MB, and this process's memory is what the
        // session measures. Every start still in the running is checked against every sample.
        let near = (self.record_on_s * input.rate) as usize;
        let reach = (10.0 * input.rate) as usize;
        let range = near.saturating_sub(reach)..(near + reach).min(frames.saturating_sub(take_frames));
        let mut samples = reader.samples::<f32>();
        let first = match samples.next() {
            Some(s) => s?.to_bits(),
            None => bail!("the take is empty"),
        };
        let mut starts: Vec<usize> = range.filter(|&f0| input.sample(0, f0).to_bits() == first).collect();
        for (k, sample) in samples.enumerate().map(|(k, s)| (k + 1, s)) {
            let (f, c) = (k / 2, k % 2);
            let sample = sample?.to_bits();
            starts.retain(|&f0| input.sample(c, f0 + f).to_bits() == sample);
            if starts.is_empty() {
                break;
            }
        }
        if starts.is_empty() {
            bail!("the take ({take_frames} frames) is not a stretch of what was played near {:.1} s", self.record_on_s);
        }
        std::fs::remove_file(take)?;
        Ok(take_frames as u64)
    }

    /// Ends the display after the plugin is gone. `gui.destroy` returns before baseview's window
    /// thread has let go of its X connection, and Xlib ends the process on a broken connection:
    /// that thread gets a second before Xvfb stops.
    fn finish(self) {
        std::thread::sleep(Duration::from_secs(1));
        let _ = std::fs::remove_dir_all(&self.takes_dir);
    }
}

fn wav_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "wav")).collect())
        .unwrap_or_default()
}
