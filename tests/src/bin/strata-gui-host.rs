//! A minimal Linux CLAP host with a window: opens Strata's editor embedded in an X11 window (as a
//! DAW does), plays an audio file through the plugin at real-time pace, then keeps the window up
//! for a few seconds. For looking at (or screenshotting) the editor in a host:
//!
//!     strata-gui-host FILE [--hold SECONDS]      (needs DISPLAY, e.g. Xvfb)

use std::time::Duration;

use anyhow::{bail, Context, Result};
use strata_host_tests::audio::decode;
use strata_host_tests::*;
use strata_host_tests::x11::HostDisplay;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args.next().context("usage: strata-gui-host FILE [--hold SECONDS]")?;
    let hold = match (args.next().as_deref(), args.next()) {
        (Some("--hold"), Some(s)) => s.parse::<f64>()?,
        _ => 5.0,
    };
    let audio = decode(std::path::Path::new(&file))?;
    if audio.channels.len() != 2 {
        bail!("this host plays stereo files");
    }
    // The host's window, 1000x600, on the default display; it outlives the plugin (declared
    // first, dropped last).
    let display = HostDisplay::open()?;
    let window = display.host_window(1000, 600);
    let bundle = ClapBundle::load(&bundled("Strata.clap")?)?;
    let mut plugin = bundle.instantiate(STRATA_CLAP_ID)?;
    // SAFETY: the window lives until the display closes, after the plugin is gone.
    unsafe { plugin.open_gui_in_x11(window)? };
    let rate = f64::from(audio.sample_rate);
    let mut running = plugin.start(rate, 512)?;
    let total = audio.frames();
    running.play_in_real_time(&audio.channels, 0..total, 512, rate)?;
    println!("played {:.1} s; holding the window for {hold} s", total as f64 / rate);
    std::thread::sleep(Duration::from_secs_f64(hold));
    plugin.stop(running);
    Ok(())
}
