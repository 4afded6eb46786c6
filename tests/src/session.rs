//! A long live session, accelerated: the built `Strata.clap` in the clack host, fed hours of
//! music at a multiple of real time as a DAW session would feed it: activations at changing
//! sample rates, a transport whose tempo changes and which stops and starts (stopped, the host
//! sends silence), and the music looped under it. What a producer relies on after hours is
//! measured: audio still bit-exact, nothing dropped on the audio thread, memory flat, and the
//! layers still those of the music.
//!
//! `tests/tests/session.rs` runs a few minutes of it; the `session` benchmark runs eight hours.

use anyhow::{bail, Result};

use crate::audio::decode;
use crate::{asset, bundled, last_worker_report, plugin_lock, worker_report_file, ClapBundle, STRATA_CLAP_ID};

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
}

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

/// Plays the session and checks, as it goes, that every block comes out bit-exact and that each
/// activation's worker received every frame sent (an error says where it did not).
pub fn run_session(plan: SessionPlan) -> Result<SessionReport> {
    let _guard = plugin_lock();
    worker_report_file();
    let music = decode(&asset("machine_wars_excerpt.ogg"))?;
    let channels = music.channels.len();
    let loop_frames = music.frames();
    let bundle = ClapBundle::load(&bundled("Strata.clap")?)?;
    let mut plugin = bundle.instantiate(STRATA_CLAP_ID)?;
    let started = std::time::Instant::now();
    let segment_s = plan.total_s / plan.activations as f64;
    let mut report = SessionReport {
        audio_s: 0.0,
        rss_mb: vec![(0.0, resident_mb())],
        activations: Vec::new(),
        dropped_frames: 0,
        received_frames: 0,
        sent_frames: 0,
        final_periods_s: Vec::new(),
        wall_s: 0.0,
    };
    let mut source_pos = 0_usize;
    for activation in 0..plan.activations {
        let rate = SESSION_RATES_HZ[(plan.activations - 1 - activation) % SESSION_RATES_HZ.len()];
        let frames = (segment_s * rate) as usize;
        let mut running = plugin.start(rate, BLOCK)?;
        let mut pos = 0;
        let segment_start = std::time::Instant::now();
        let mut next_rss_s = 60.0;
        while pos < frames {
            let n = BLOCK.min(frames - pos);
            let t = pos as f64 / rate;
            let session_t = report.audio_s + t;
            // Stopped for STOP_S every STOP_EVERY_S, never in the last activation's final
            // stretch (whose layers are checked).
            let in_final_stretch = activation + 1 == plan.activations && segment_s - t < 660.0;
            let stopped = session_t % STOP_EVERY_S > STOP_EVERY_S - STOP_S && !in_final_stretch;
            let tempo = TEMPOS_BPM[(session_t / 60.0) as usize % TEMPOS_BPM.len()];
            running.set_transport(Some((tempo, !stopped, session_t)));
            for (c, input) in running.input.iter_mut().enumerate() {
                for (k, x) in input[..n].iter_mut().enumerate() {
                    *x = if stopped { 0.0 } else { music.channels[c % channels][(source_pos + k) % loop_frames] };
                }
            }
            running.process(n)?;
            for (c, (input, output)) in running.input.iter().zip(&running.output).enumerate() {
                if let Some(k) = input[..n].iter().zip(&output[..n]).position(|(a, b)| a.to_bits() != b.to_bits()) {
                    bail!("activation {activation} at {rate} Hz, {t:.1} s: channel {c} sample {k} not passed through bit-exact");
                }
            }
            source_pos = (source_pos + n) % loop_frames;
            pos += n;
            let due = std::time::Duration::from_secs_f64(pos as f64 / rate / plan.speed);
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
    Ok(report)
}
