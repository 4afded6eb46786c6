//! The plugin's Record and Export, end to end through the real parts: the capture ring (as the
//! audio thread fills it), the worker recording the take to disk, and the export thread writing
//! stems and annotations, checked like the CLI's (sums, JAMS schema, MIDI, cues, labels).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::capture::capture_ring;
use strata::take::{ExportState, RecorderState, TakeControl};
use strata::worker::{status_channel, StatusFeed, Worker, WorkerConfig};

mod common;

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-take-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn asset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/machine_wars_excerpt.ogg")
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn export_and_wait(control: &Arc<TakeControl>, folder: &Path, replace: bool) -> ExportState {
    control.start_export(folder, replace, None);
    control.wait_for_export();
    control.export_state()
}

#[test]
fn a_recorded_take_is_the_track_bit_for_bit_and_exports_like_the_cli() {
    let root = temp("record");
    let control = Arc::new(TakeControl::with_dir(root.join("takes")));

    // The example, stereo, played through the capture ring in host-sized blocks.
    let mut file = strata::audio_file::AudioFile::open(&asset()).unwrap();
    let rate = file.sample_rate();
    let mut audio = Vec::new();
    while file.read_planar(&mut audio).unwrap() {}
    assert_eq!(audio.len(), 2);
    let (mut input, output) = capture_ring(rate as usize * 60, 2);
    let (publisher, mut feed) = status_channel();
    let mut config = WorkerConfig::from_env(1, rate as f32);
    config.takes = Some(control.clone());
    let worker = Worker::spawn(config, output, publisher, Box::new(|| ())).unwrap();

    // Audio before Record is not in the take.
    let lead_in = 4_096;
    assert!(input.push_block(&[&audio[0][..lead_in], &audio[1][..lead_in]]));
    wait_until("the lead-in to be drained", || worker_has_drained(&mut feed, lead_in));
    control.set_recording(true);
    for start in (lead_in..audio[0].len()).step_by(441) {
        let end = (start + 441).min(audio[0].len());
        assert!(input.push_block(&[&audio[0][start..end], &audio[1][start..end]]), "the ring never fills here");
    }
    wait_until("the take to reach its length", || control.recorded_frames() == (audio[0].len() - lead_in) as u64);
    control.set_recording(false);
    wait_until("the take to close", || matches!(control.recorder_state(), RecorderState::Ready(_)));
    worker.stop().unwrap();

    let take = control.take().unwrap();
    assert_eq!((take.channels, take.sample_rate, take.dropped_frames), (2, rate, 0));
    let (take_rate, recorded) = common::read_wav(&take.path);
    assert_eq!(take_rate, rate);
    for c in 0..2 {
        assert!(recorded[c] == audio[c][lead_in..], "channel {c} recorded bit for bit");
    }
    let take_bytes = std::fs::read(&take.path).unwrap();

    // Export into a folder that does not exist yet: it appears whole, named after the take.
    let exports = root.join("exports");
    match export_and_wait(&control, &exports, false) {
        ExportState::Done { dest, stems, max_sum_error, .. } => {
            assert_eq!(dest, exports.join(&take.name));
            assert!(stems >= 1);
            assert!(max_sum_error <= 1e-6);
        }
        other => panic!("{other:?}"),
    }
    let dest = exports.join(&take.name);
    common::check_export(&dest, &take.path);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dest.join("strata.json")).unwrap()).unwrap();
    assert_eq!(json["source"], take.name.as_str());

    // Exporting again asks first, and replaces only when told to.
    let before = std::fs::read(dest.join("strata.json")).unwrap();
    match export_and_wait(&control, &exports, false) {
        ExportState::NeedsConfirmation { dest: asked, .. } => assert_eq!(asked, dest),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(dest.join("strata.json")).unwrap(), before, "nothing was touched while asking");
    std::fs::write(dest.join("stale.txt"), b"x").unwrap();
    assert!(matches!(export_and_wait(&control, &exports, true), ExportState::Done { .. }));
    assert!(!dest.join("stale.txt").exists());
    common::check_export(&dest, &take.path);

    // A folder that cannot be written: the export fails, says why, and the take is intact.
    let blocker = root.join("not-a-folder");
    std::fs::write(&blocker, b"a file").unwrap();
    match export_and_wait(&control, &blocker.join("exports"), false) {
        ExportState::Failed { reason } => {
            assert!(reason.contains("not-a-folder") && reason.contains("take is kept"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&take.path).unwrap(), take_bytes, "the take is untouched");
    let leftovers: Vec<_> = std::fs::read_dir(&exports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec![take.name.clone()], "no staging folders left: {leftovers:?}");

    // The exported take goes when the plugin does; the export stays.
    let take_path = take.path.clone();
    drop(control);
    assert!(!take_path.exists());
    assert!(dest.join("strata.json").is_file());
    std::fs::remove_dir_all(root).unwrap();
}

/// True once the worker says it has received the `frames` pushed so far and left the ring empty:
/// it passed them to the recorder while the switch was off, so the test may turn Record on
/// without catching the lead-in. (A fixed wait raced the worker's start, which loads the models
/// first: with the change head's 0.7 MB to check and read, 50 ms was not always enough on a
/// loaded machine.)
fn worker_has_drained(feed: &mut StatusFeed, frames: usize) -> bool {
    feed.latest().is_some_and(|s| s.received_samples >= frames as u64 && s.ring_fill == 0.0)
}

#[test]
fn record_without_audio_says_the_take_is_empty_and_export_needs_a_take() {
    let root = temp("empty");
    let control = Arc::new(TakeControl::with_dir(root.join("takes")));
    let (_input, output) = capture_ring(1_024, 2);
    let (publisher, _feed) = status_channel();
    let mut config = WorkerConfig::from_env(1, 48_000.0);
    config.takes = Some(control.clone());
    let worker = Worker::spawn(config, output, publisher, Box::new(|| ())).unwrap();
    control.set_recording(true);
    wait_until("recording to start", || matches!(control.recorder_state(), RecorderState::Recording { .. }));
    control.set_recording(false);
    wait_until("the take to close", || !matches!(control.recorder_state(), RecorderState::Recording { .. }));
    worker.stop().unwrap();
    match control.recorder_state() {
        RecorderState::Failed { reason, kept: None } => assert!(reason.contains("empty"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match export_and_wait(&control, &root.join("exports"), false) {
        ExportState::Failed { reason } => assert!(reason.contains("record one first"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(!root.join("exports").exists());
    let _ = std::fs::remove_dir_all(root);
}
