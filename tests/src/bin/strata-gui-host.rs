//! A minimal Linux CLAP host with a window: opens Strata's editor embedded in an X11 window (as a
//! DAW does), plays an audio file through the plugin at real-time pace, then keeps the window up
//! for a few seconds. For looking at (or screenshotting) the editor in a host:
//!
//!     strata-gui-host FILE [--hold SECONDS]      (needs DISPLAY, e.g. Xvfb)

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use strata_host_tests::audio::decode;
use strata_host_tests::*;
use x11_dl::xlib;

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
    // The host's window, 1000x600, on the default display.
    let x = xlib::Xlib::open().context("loading libX11")?;
    // SAFETY: plain Xlib calls on a display this function opens and keeps open until it returns.
    let window = unsafe {
        let display = (x.XOpenDisplay)(std::ptr::null());
        if display.is_null() {
            bail!("cannot open the X display (is DISPLAY set?)");
        }
        let screen = (x.XDefaultScreen)(display);
        let root = (x.XRootWindow)(display, screen);
        let w = (x.XCreateSimpleWindow)(display, root, 0, 0, 1000, 600, 0, 0, 0x202020);
        (x.XMapWindow)(display, w);
        (x.XFlush)(display);
        w
    };
    let bundle = ClapBundle::load(&bundled("Strata.clap")?)?;
    let mut plugin = bundle.instantiate(STRATA_CLAP_ID)?;
    // SAFETY: the window lives until the process ends.
    unsafe { plugin.open_gui_in_x11(window)? };
    let rate = f64::from(audio.sample_rate);
    let block = 512;
    let mut running = plugin.start(rate, block)?;
    let start = Instant::now();
    let total = audio.frames();
    let mut pos = 0;
    while pos < total {
        let n = block.min(total - pos);
        for (c, ch) in audio.channels.iter().enumerate() {
            running.input[c][..n].copy_from_slice(&ch[pos..pos + n]);
        }
        running.process(n)?;
        pos += n;
        let due = Duration::from_secs_f64(pos as f64 / rate);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    println!("played {:.1} s; holding the window for {hold} s", total as f64 / rate);
    std::thread::sleep(Duration::from_secs_f64(hold));
    plugin.stop(running);
    Ok(())
}
