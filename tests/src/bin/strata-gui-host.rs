//! A minimal Linux CLAP host with a window: opens Strata's editor embedded in an X11 window (as a
//! DAW does), plays an audio file through the plugin at real-time pace, then keeps the window up
//! for a few seconds. For looking at (or screenshotting) the editor in a host:
//!
//!     strata-gui-host FILE [--hold SECONDS] [--size WxH] [--screenshot PNG]   (needs DISPLAY, e.g. Xvfb)
//!
//! `--size` asks the editor to take that size once it is open (as dragging the window's corner
//! in a DAW does); `--screenshot` writes the screen to a PNG once the file has played.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use strata_host_tests::audio::decode;
use strata_host_tests::*;
use strata_host_tests::x11::HostDisplay;

fn main() -> Result<()> {
    const USAGE: &str = "usage: strata-gui-host FILE [--hold SECONDS] [--size WxH] [--screenshot PNG]";
    let mut args = std::env::args().skip(1);
    let file = args.next().context(USAGE)?;
    let (mut hold, mut size, mut screenshot) = (5.0, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--hold" => hold = value.parse::<f64>().with_context(|| format!("--hold {value}: not a number of seconds"))?,
            "--size" => {
                let (w, h) = value.split_once('x').with_context(|| format!("--size {value}: expected WxH, e.g. 560x320"))?;
                size = Some((w.parse::<u32>()?, h.parse::<u32>()?));
            }
            "--screenshot" => screenshot = Some(std::path::PathBuf::from(value)),
            _ => bail!("unknown option {flag}; {USAGE}"),
        }
    }
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
    if let Some((w, h)) = size {
        plugin.resize_gui(w, h)?;
    }
    let rate = f64::from(audio.sample_rate);
    let mut running = plugin.start(rate, 512)?;
    let total = audio.frames();
    running.play_in_real_time(&audio.channels, 0..total, 512, rate)?;
    println!("played {:.1} s; holding the window for {hold} s", total as f64 / rate);
    if let Some(path) = screenshot {
        // A second connection to the same server reads the screen as the editor drew it.
        let colours = strata_host_tests::x11::Display::open()?.screenshot(&path)?;
        println!("wrote {} ({colours} colours)", path.display());
    }
    std::thread::sleep(Duration::from_secs_f64(hold));
    plugin.stop(running);
    Ok(())
}
