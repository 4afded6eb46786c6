//! Eight hours of a live session, accelerated (`cargo xtask bench`, or
//! `cargo bench -p strata-host-tests --bench session` after `cargo xtask bundle strata --release`;
//! `STRATA_SESSION_HOURS`, `STRATA_SESSION_SPEED` and `STRATA_SESSION_ACTIVATIONS` change the
//! length, the pace and how many activations share it; `STRATA_SESSION_EDITOR=0` leaves the
//! editor closed, to tell its memory from the engine's).
//!
//! The editor is opened and closed, and a take recorded from it, in every activation (see
//! `strata_host_tests::session`). Prints the resident memory over the session (the host process
//! holding the plugin), and after each activation what malloc has handed out beside what is
//! resident (a leak grows the first; a fragmented heap only the second). Fails if the last
//! quarter holds more than the first plus 32 MB (memory that grows with the session), if any
//! frame was dropped, if a take is not what was played, or if the layers at the end are not the
//! example's.

use strata_host_tests::session::{run_session, SessionPlan};

fn main() -> anyhow::Result<()> {
    let hours: f64 = std::env::var("STRATA_SESSION_HOURS").ok().and_then(|h| h.parse().ok()).unwrap_or(8.0);
    let speed: f64 = std::env::var("STRATA_SESSION_SPEED").ok().and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let activations: usize = std::env::var("STRATA_SESSION_ACTIVATIONS")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or((hours.ceil() as usize).max(1) * 3);
    let editor = std::env::var("STRATA_SESSION_EDITOR").map_or(true, |e| e != "0");
    let report = run_session(SessionPlan { total_s: hours * 3600.0, activations, speed, editor })?;
    let (first, last) = report.rss_first_and_last_quarter_mb();
    println!("session: {hours} h of audio in {:.0} s ({:.0}x real time), {activations} activations", report.wall_s, report.audio_s / report.wall_s);
    println!("session: resident memory, most in the first quarter {first:.1} MB, in the last quarter {last:.1} MB (ratio {:.3})", last / first);
    for (h, mb) in report.rss_mb.iter().step_by((report.rss_mb.len() / 16).max(1)).chain(report.rss_mb.last()) {
        println!("session:   {h:5.2} h  {mb:7.1} MB");
    }
    println!("session: after each activation, MB: resident, malloc in use, malloc's address space, anonymous resident, from files");
    for (k, m) in report.memory.iter().enumerate() {
        println!(
            "session:   {k:3}  {:7.1}  {:7.1}  {:7.1}  {:7.1}  {:7.1}",
            m.resident, m.malloc_in_use, m.malloc_held, m.anonymous, m.file_backed
        );
    }
    for (rate, sent, dropped) in &report.activations {
        if *dropped > 0 {
            println!("session:   activation at {rate} Hz dropped {dropped} of {sent} frames");
        }
    }
    println!("session: {} of {} frames received, {} dropped; layers at the end {:?}", report.received_frames, report.sent_frames, report.dropped_frames, report.final_periods_s);
    println!("session: {} takes recorded from the editor, each a stretch of what was played", report.takes.len());
    anyhow::ensure!(report.dropped_frames == 0, "frames were dropped");
    anyhow::ensure!(last <= first + 32.0, "memory grew over the session: {first:.1} -> {last:.1} MB");
    for expected in [0.501, 4.00] {
        anyhow::ensure!(
            report.final_periods_s.iter().any(|p| (p - expected).abs() <= 0.03 * expected),
            "the layers at the end lack {expected} s: {:?}",
            report.final_periods_s
        );
    }
    Ok(())
}
