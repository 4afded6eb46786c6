//! Record and Export as a producer does them: the built `Strata.clap`, loaded by a real CLAP host
//! (clack-host), its editor embedded in an X11 window on an Xvfb display, real music played
//! through it at real-time pace, and the editor's Record, Record-off and Export buttons clicked
//! with real X pointer events (XTest). Checks that the take on disk is exactly a stretch of what
//! was played, bit for bit, and that the export folder appears with stems that sum back to the
//! take and every annotation file.
//!
//! Needs `Xvfb` and libXtst (`.ci/deps` installs both).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata_host_tests::audio::decode;
use strata_host_tests::*;
use strata_host_tests::x11::{Display, Xvfb, EXPORT_BUTTON, RECORD_BUTTON};


fn wait_for<T>(what: &str, limit: Duration, mut found: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = found() {
            return t;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == ext)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn read_wav(path: &Path) -> (u16, Vec<f32>) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let channels = r.spec().channels;
    (channels, r.samples::<f32>().map(Result::unwrap).collect())
}

#[test]
fn record_and_export_from_the_editor_of_the_clap_bundle() {
    let _lock = plugin_lock();
    let xvfb = Xvfb::start().unwrap();
    let root = std::env::temp_dir().join(format!("strata-record-gui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("home")).unwrap();
    // This test is the only one in its process, so it may set the environment: the display, where
    // takes go, and a home whose Music/Strata is the editor's default export folder.
    std::env::set_var("DISPLAY", &xvfb.display);
    std::env::set_var("STRATA_TAKES_DIR", root.join("takes"));
    std::env::set_var("HOME", root.join("home"));
    let export_folder = root.join("home/Music/Strata");

    let audio = decode(&asset("machine_wars_excerpt.ogg")).unwrap();
    assert_eq!(audio.channels.len(), 2);
    let display = Display::open().unwrap();
    let window = display.host.host_window(1000, 600);
    let bundle = ClapBundle::load(&bundled("Strata.clap").unwrap()).unwrap();
    let mut plugin = bundle.instantiate(STRATA_CLAP_ID).unwrap();
    // SAFETY: the window lives until the display closes, after the plugin is gone.
    unsafe { plugin.open_gui_in_x11(window).unwrap() };
    let rate = audio.sample_rate;
    let block = 512;
    let mut running = plugin.start(f64::from(rate), block).unwrap();

    // Plays `seconds` more of the file at real-time pace, as a DAW would.
    let mut pos = 0;
    let mut play = |running: &mut RunningPlugin, seconds: f64| {
        let end = (pos + (seconds * f64::from(rate)) as usize).min(audio.frames());
        running.play_in_real_time(&audio.channels, pos..end, block, f64::from(rate)).unwrap();
        pos = end;
    };

    // Once the editor has drawn (and at least two seconds in), Record; eight seconds later, off.
    play(&mut running, 2.0);
    let start = Instant::now();
    while !display.record_dot_drawn() {
        assert!(start.elapsed() < Duration::from_secs(20), "the editor never drew its take row");
        play(&mut running, 0.25);
    }
    assert!(files_with_extension(&root.join("takes"), "wav").is_empty(), "nothing recorded before Record");
    display.click(RECORD_BUTTON);
    play(&mut running, 8.0);
    let take_path = wait_for("the take file", Duration::from_secs(5), || files_with_extension(&root.join("takes"), "wav").pop());
    display.click(RECORD_BUTTON);
    play(&mut running, 1.0);
    let played = pos;

    // The take is one stretch of what was played, bit for bit, both channels.
    let (channels, take) = read_wav(&take_path);
    assert_eq!(channels, 2);
    let frames = take.len() / 2;
    assert!(frames as f64 > 6.0 * f64::from(rate) && frames as f64 <= 9.0 * f64::from(rate), "{frames} frames recorded");
    let offset = (0..played - frames)
        .find(|&o| audio.channels[0][o] == take[0] && audio.channels[1][o] == take[1] && audio.channels[0][o + 1] == take[2])
        .expect("the take's first frame is a frame that was played");
    for f in 0..frames {
        for c in 0..2 {
            assert!(audio.channels[c][offset + f].to_bits() == take[2 * f + c].to_bits(), "frame {f}, channel {c} differs");
        }
    }

    // Export: a folder named after the take appears in the export folder, whole.
    display.click(EXPORT_BUTTON);
    let dest = wait_for("the export", Duration::from_secs(180), || {
        std::fs::read_dir(&export_folder)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("Strata take ")))
    });
    for name in ["strata.json", "strata.png", "strata.jams", "strata_markers.mid", "events.csv", "stem_residual.wav"] {
        assert!(dest.join(name).is_file(), "{name} in {}", dest.display());
    }
    let stems = files_with_extension(&dest, "wav");
    assert!(stems.len() >= 2, "{stems:?}");
    let mut sum = vec![0.0_f64; take.len()];
    for stem in &stems {
        let (c, samples) = read_wav(stem);
        assert_eq!((c, samples.len()), (2, take.len()), "{}", stem.display());
        for (s, v) in sum.iter_mut().zip(&samples) {
            *s += f64::from(*v);
        }
    }
    let worst = sum.iter().zip(&take).map(|(s, &x)| (s - f64::from(x)).abs()).fold(0.0, f64::max);
    assert!(worst <= 1e-6, "stems sum back to the take within 1e-6 (worst {worst})");
    assert_eq!(files_with_extension(&dest, "txt").len(), 7, "one Audacity label track per lane, and one of the pattern layers");
    assert!(dest.join("labels_patterns.txt").is_file());

    plugin.stop(running);
    // The editor goes before the display: its thread would otherwise still hold a connection to
    // the X server when Xvfb stops, and Xlib ends the process on a broken connection.
    plugin.close_gui().unwrap();
    drop(plugin);
    drop(display);
    // `gui.destroy` returns before baseview's window thread has let go of its X connection
    // (seen once more in a full run: "X connection broken", then SIGSEGV at exit after the test
    // had passed). Give that thread time to close before Xvfb is stopped.
    std::thread::sleep(Duration::from_secs(1));
    std::fs::remove_dir_all(root).unwrap();
}
