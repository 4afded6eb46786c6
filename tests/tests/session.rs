//! A short live session through the CLAP host (the `session` benchmark runs eight hours of it):
//! three activations at 96, 48 and 44.1 kHz, seven and a half minutes of looped music at 8x real
//! time, the transport changing tempo every minute and stopping once, and in every activation
//! the editor opened on an Xvfb display, Record clicked on and off in it, and the editor closed.
//! Every block passes bit-exact, each worker receives every frame sent and drops none, every
//! take is exactly a stretch of what was played, and at the end the live layers are the
//! example's: its beat (0.501 s) and its two-bar riff (4.00 s). Needs Xvfb and libXtst.

use anyhow::Result;
use strata_host_tests::session::{run_session, SessionPlan};

#[test]
fn a_session_across_rates_and_transport_changes_drops_nothing_and_ends_with_the_right_layers() -> Result<()> {
    let report = run_session(SessionPlan { total_s: 450.0, activations: 3, speed: 8.0, editor: true })?;
    println!("{report:?}");
    assert_eq!(report.received_frames, report.sent_frames, "every frame reached a worker");
    assert_eq!(report.dropped_frames, 0);
    assert_eq!(report.takes.len(), 3, "one take checked per activation");
    for expected in [0.501, 4.00] {
        assert!(
            report.final_periods_s.iter().any(|p| (p - expected).abs() <= 0.03 * expected),
            "the live layers at the end include {expected} s: {:?}",
            report.final_periods_s
        );
    }
    Ok(())
}
