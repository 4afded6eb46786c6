//! The host's memory as the editor is opened and closed again and again
//! (`cargo bench -p strata-host-tests --bench editor_reopen` after
//! `cargo xtask bundle strata --release`; `STRATA_REOPEN_COUNT` opens, default 40).
//!
//! The built `Strata.clap` in the clack host, activated at 48 kHz and fed the example at real
//! time; the editor is opened in an Xvfb window, left to draw for a second and a half, and
//! closed, over and over. Prints the host's resident memory, threads and open files after each
//! close, and the growth per open over the second half (the first opens fill caches once).

use std::time::{Duration, Instant};

use strata_host_tests::session::resident_mb;
use strata_host_tests::x11::{Display, Xvfb};
use strata_host_tests::{asset, bundled, audio::decode, ClapBundle, STRATA_CLAP_ID};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

fn main() -> anyhow::Result<()> {
    let opens: usize = std::env::var("STRATA_REOPEN_COUNT").ok().and_then(|n| n.parse().ok()).unwrap_or(40);
    let xvfb = Xvfb::start()?;
    std::env::set_var("DISPLAY", &xvfb.display);
    let display = Display::open()?;
    let window = display.host.host_window(1000, 600);
    let music = decode(&asset("machine_wars_excerpt.ogg"))?;
    let bundle = ClapBundle::load(&bundled("Strata.clap")?)?;
    let mut plugin = bundle.instantiate(STRATA_CLAP_ID)?;
    let rate = 48_000.0;
    let block = 512;
    let mut running = plugin.start(rate, block)?;
    let mut pos = 0;
    let mut play_for = |running: &mut strata_host_tests::RunningPlugin, wall: Duration| -> anyhow::Result<()> {
        let start = Instant::now();
        let mut played = 0;
        while start.elapsed() < wall {
            for (c, buf) in running.input.iter_mut().enumerate() {
                let source = &music.channels[c % music.channels.len()];
                for (k, x) in buf[..block].iter_mut().enumerate() {
                    *x = source[(pos + k) % source.len()];
                }
            }
            running.process(block)?;
            pos += block;
            played += block;
            let due = Duration::from_secs_f64(played as f64 / rate);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        Ok(())
    };
    play_for(&mut running, Duration::from_secs(3))?;
    let mut rss = Vec::new();
    for i in 0..opens {
        // SAFETY: the window lives until the display closes, after the plugin is gone.
        unsafe { plugin.open_gui_in_x11(window)? };
        play_for(&mut running, Duration::from_millis(1500))?;
        plugin.close_gui()?;
        play_for(&mut running, Duration::from_millis(300))?;
        let mb = resident_mb();
        println!("open {:3}: {mb:7.1} MB, {} threads, {} files", i + 1, count("/proc/self/task"), count("/proc/self/fd"));
        rss.push(mb);
    }
    plugin.stop(running);
    let half = opens / 2;
    let per_open = (rss[opens - 1] - rss[half]) / (opens - 1 - half).max(1) as f64;
    println!(
        "editor_reopen: {opens} opens, {:.1} MB after the first, {:.1} MB halfway, {:.1} MB after the last (last/halfway {:.3}); {per_open:.2} MB per open over the second half",
        rss[0],
        rss[half],
        rss[opens - 1],
        rss[opens - 1] / rss[half]
    );
    drop(plugin);
    drop(bundle);
    drop(display);
    drop(xvfb);
    Ok(())
}
