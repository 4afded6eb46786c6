//! The editor's lanes, rendered headless from a recorded stream of real layers (the engine run on
//! the bundled example), checked on what is drawn: one lane per visible scale, token letters,
//! change markers where the changes are.

use std::path::Path;
use std::sync::Arc;

use strata::audio_file::AudioFile;
use strata::editor::{EditorShared, StrataEditor};
use strata::engine::{lane_main_pattern, Engine};
use strata::inference::{runtime, ModelSet, Workload};
use strata::layers::{LayerFrame, Pattern};
use strata::params::StrataParams;
use strata::worker::{status_channel, AnalysisState, WorkerStatus, MAX_LEVELS};

/// Runs the engine over the example and returns every live frame (what the worker sends).
fn recorded_layers() -> (Vec<LayerFrame>, Vec<f64>, [f32; MAX_LEVELS]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let models = ModelSet::load(&dir, runtime().expect("ONNX Runtime"), Workload::Streaming).expect("models");
    let scales = models.manifest.scales.iter().map(|s| s.scale_s).collect();
    let mut file = AudioFile::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/machine_wars_excerpt.ogg")).unwrap();
    let mut engine = Engine::new(models, file.sample_rate()).unwrap();
    let (mut block, mut frames) = (Vec::new(), Vec::new());
    while file.read_mono(&mut block).unwrap() {
        engine.push(&block, &mut frames).unwrap();
    }
    let patterns = engine.patterns();
    let mut periods = [f32::NAN; MAX_LEVELS];
    for (p, scale) in periods.iter_mut().zip(&engine.models().manifest.scales) {
        *p = lane_main_pattern(&patterns, scale.scale_s).map_or(f32::NAN, |e| e.period_s as f32);
    }
    (frames, scales, periods)
}

/// What the worker would publish alongside (the periods are the engine's own).
fn status(periods_s: [f32; MAX_LEVELS]) -> WorkerStatus {
    WorkerStatus {
        activation: 1,
        sample_rate_hz: 44_100.0,
        rms_dbfs: -14.0,
        peak_dbfs: -0.3,
        dc_offset: 0.0,
        received_samples: 44_100 * 30,
        dropped_samples: 0,
        dropped_blocks: 0,
        non_finite_samples: 0,
        silent_seconds: 0.0,
        capture_rate_hz: 44_100.0,
        ring_fill: 0.0,
        stopped: false,
        tempo_bpm: None,
        beats_per_bar: 4,
        periods_s,
        period_strengths: [0.5; MAX_LEVELS],
    }
}

#[derive(Default)]
struct Drawn {
    texts: Vec<(String, egui::Pos2)>,
    /// Vertical red line segments (change markers): their x.
    markers: Vec<f32>,
    /// Rectangles outlined in the selected layer's colour.
    highlights: usize,
}

fn collect(shape: &egui::Shape, out: &mut Drawn) {
    match shape {
        egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| collect(s, out)),
        egui::Shape::Text(t) => out.texts.push((t.galley.text().to_owned(), t.pos)),
        egui::Shape::Rect(r) if r.stroke.color == strata::editor::lanes::HIGHLIGHT => out.highlights += 1,
        egui::Shape::LineSegment { points, stroke }
            if stroke.color == egui::Color32::from_rgb(255, 70, 70) && (points[0].x - points[1].x).abs() < 0.01 =>
        {
            out.markers.push(points[0].x);
        }
        _ => {}
    }
}

fn render(editor: &mut StrataEditor) -> Drawn {
    let ctx = egui::Context::default();
    let input = egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1400.0, 900.0))),
        ..Default::default()
    };
    let mut output = ctx.run_ui(input, |ui| editor.draw(ui));
    // No renderer here: the font atlas upload is not needed.
    output.textures_delta.clear();
    let mut drawn = Drawn::default();
    for clipped in &output.shapes {
        collect(&clipped.shape, &mut drawn);
    }
    drawn
}

/// An editor's shared state holding the example's recorded layers, `patterns` and a status, as
/// a worker would have published them: the frames and the scales.
fn shared_with_recorded_layers(patterns: Vec<Pattern>) -> (Arc<EditorShared>, Vec<LayerFrame>, Vec<f64>) {
    let (frames, scales, periods) = recorded_layers();
    let shared = Arc::new(EditorShared::new());
    let (mut publisher, feed) = status_channel();
    shared.replace_feed(feed);
    publisher.set_patterns(Arc::new(patterns));
    publisher.set_analysis(AnalysisState::Running { models: "test".into(), scales_s: scales.clone() });
    for f in &frames {
        assert!(publisher.publish_layer(*f));
    }
    assert!(publisher.publish(status(periods)));
    (shared, frames, scales)
}

#[test]
fn lanes_show_every_scale_its_letters_and_its_changes() {
    let (shared, frames, scales) = shared_with_recorded_layers(Vec::new());
    let changes = frames.iter().filter(|f| f.change.is_some()).count();
    let params = Arc::new(StrataParams::default());
    params.update_view(|v| v.span_s = 40.0); // the whole 30 s example in view
    let mut editor = StrataEditor::new(params.clone(), shared.clone());
    let drawn = render(&mut editor);

    // One readout per lane, longest scale on top.
    let lane_titles: Vec<(String, f32)> = drawn
        .texts
        .iter()
        .filter(|(t, _)| t.contains(" s layer"))
        .map(|(t, p)| (t.lines().next().unwrap_or("").to_owned(), p.y))
        .collect();
    assert_eq!(lane_titles.len(), scales.len(), "{lane_titles:?}");
    assert!(lane_titles[0].0.starts_with("20 s layer"), "{lane_titles:?}");
    assert!(lane_titles.windows(2).all(|w| w[0].1 < w[1].1), "top to bottom: {lane_titles:?}");
    // Token letters on the blocks, and every change as a marker.
    assert!(drawn.texts.iter().any(|(t, _)| t == "A"));
    assert!(drawn.texts.iter().any(|(t, _)| t == "B"), "more than one pattern somewhere");
    assert_eq!(drawn.markers.len(), changes, "one marker per change");
    // The header names the models in use.
    assert!(drawn.texts.iter().any(|(t, _)| t == "models test"));
    // Periods read out in seconds (no host tempo here).
    assert!(drawn.texts.iter().any(|(t, _)| t.contains("period 0.50 s")), "the beat of the example");

    // Closing and reopening the editor loses nothing; hiding a scale removes its lane.
    drop(editor);
    params.update_view(|v| v.hidden_scales = vec![0.2]);
    let mut reopened = StrataEditor::new(params, shared);
    let drawn = render(&mut reopened);
    let lanes = drawn.texts.iter().filter(|(t, _)| t.contains(" s layer")).count();
    assert_eq!(lanes, scales.len() - 1);
    assert!(drawn.texts.iter().any(|(t, _)| t == "A"));
}

#[test]
fn at_the_default_size_the_lanes_fill_the_window_and_diagnostics_are_one_click_away() {
    use strata::params::DEFAULT_EDITOR_SIZE;

    let (shared, _, _) = shared_with_recorded_layers(Vec::new());
    let (w, h) = (DEFAULT_EDITOR_SIZE.0 as f32, DEFAULT_EDITOR_SIZE.1 as f32);
    let params = Arc::new(StrataParams::default());
    let mut driver = Driver { ctx: egui::Context::default(), editor: StrataEditor::new(params, shared), size: egui::vec2(w, h) };
    let drawn = driver.frame(Vec::new());
    let lanes_top = drawn
        .texts
        .iter()
        .filter(|(t, _)| t.contains(" s layer"))
        .map(|(_, p)| p.y)
        .fold(f32::INFINITY, f32::min);
    // The take row, the header strip and the controls: three thin rows; the lanes get the rest.
    assert!(lanes_top < 0.25 * h, "the lanes start at {lanes_top} of {h}");
    assert!(!drawn.texts.iter().any(|(t, _)| t == "Sample rate"), "the diagnostics start closed");
    let drawn = driver.click("Diagnostics");
    let drawn = if drawn.texts.iter().any(|(t, _)| t == "Sample rate") { drawn } else { driver.frame(Vec::new()) };
    assert!(drawn.texts.iter().any(|(t, _)| t == "Sample rate"), "one click opens them");
}

#[test]
fn clicking_a_pattern_layer_highlights_its_changes_across_the_lanes() {
    use strata::layers::{ChangeSpan, Span};

    let beat = Pattern {
        period_s: 0.5,
        period_beats: None,
        period_bars: None,
        confidence: 1.0,
        strength: 0.3,
        scale_s: 1.0,
        profile: vec![0.0, 0.0, 0.0, 0.2, 0.5, 1.0, 0.9, 0.8],
        register: "high".to_owned(),
        active: vec![Span { start_s: 0.0, end_s: 30.0 }],
        changes: vec![ChangeSpan { start_s: 10.0, end_s: 14.0, strength: 0.6 }],
    };
    let (shared, _, scales) = shared_with_recorded_layers(vec![beat]);
    let params = Arc::new(StrataParams::default());
    params.update_view(|v| v.span_s = 40.0);
    let mut driver = Driver { ctx: egui::Context::default(), editor: StrataEditor::new(params, shared), size: egui::vec2(1400.0, 900.0) };
    let line = "layer 0.50 s · high · 1 change";
    assert_eq!(driver.frame(Vec::new()).highlights, 0, "nothing selected at first");
    // Selected: its changed stretch is marked on every lane.
    let drawn = driver.click(line);
    let drawn = if drawn.highlights > 0 { drawn } else { driver.frame(Vec::new()) };
    assert_eq!(drawn.highlights, scales.len(), "one band per lane");
    // A second click lets it go.
    let drawn = driver.click(line);
    let drawn = if drawn.highlights == 0 { drawn } else { driver.frame(Vec::new()) };
    assert_eq!(drawn.highlights, 0);
}

/// An editor driven like a user would: frames rendered in one egui context, with pointer clicks
/// on the drawn widgets.
struct Driver {
    ctx: egui::Context,
    editor: StrataEditor,
    /// The window's size, in points.
    size: egui::Vec2,
}

impl Driver {
    fn frame(&mut self, events: Vec<egui::Event>) -> Drawn {
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, self.size)),
            events,
            ..Default::default()
        };
        let editor = &mut self.editor;
        let mut output = self.ctx.run_ui(input, |ui| editor.draw(ui));
        output.textures_delta.clear();
        let mut drawn = Drawn::default();
        for clipped in &output.shapes {
            collect(&clipped.shape, &mut drawn);
        }
        drawn
    }

    /// Clicks the widget whose text is `label` (found in the frame drawn just before).
    fn click(&mut self, label: &str) -> Drawn {
        let drawn = self.frame(Vec::new());
        let pos = drawn
            .texts
            .iter()
            .find(|(t, _)| t == label)
            .map(|(_, p)| *p + egui::vec2(4.0, 6.0))
            .unwrap_or_else(|| panic!("no {label:?} drawn: {:?}", drawn.texts.iter().map(|t| &t.0).collect::<Vec<_>>()));
        let button = |pressed| egui::Event::PointerButton { pos, button: egui::PointerButton::Primary, pressed, modifiers: Default::default() };
        self.frame(vec![egui::Event::PointerMoved(pos), button(true)]);
        self.frame(vec![button(false)])
    }
}

#[test]
fn record_and_export_buttons_record_a_take_and_export_it() {
    use strata::capture::capture_ring;
    use strata::take::{ExportState, RecorderState};
    use strata::worker::{Worker, WorkerConfig};

    let root = std::env::temp_dir().join(format!("strata-editor-take-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let shared = Arc::new(EditorShared::with_takes_dir(root.join("takes")));
    let params = Arc::new(StrataParams::default());
    params.update_view(|v| v.export_folder = root.join("exports").display().to_string());
    let mut driver = Driver { ctx: egui::Context::default(), editor: StrataEditor::new(params, shared.clone()), size: egui::vec2(1400.0, 900.0) };

    // What the plugin does on activate: a worker that records into the editor's take control.
    let rate = 44_100;
    let (mut input, output) = capture_ring(rate * 20, 2);
    let (publisher, feed) = status_channel();
    shared.replace_feed(feed);
    let mut config = WorkerConfig::from_env(1, rate as f32);
    config.takes = Some(shared.takes.clone());
    let worker = Worker::spawn(config, output, publisher, Box::new(|| ())).unwrap();

    driver.click("Record");
    assert!(shared.takes.is_recording(), "the button turned Record on");
    // Ten seconds of a stereo beat: a click every half second over a low tone.
    let left: Vec<f32> = (0..rate * 10)
        .map(|i| if i % (rate / 2) < 200 { 0.8 } else { 0.0 } + 0.2 * (i as f32 * 0.01).sin())
        .collect();
    let right: Vec<f32> = left.iter().map(|x| 0.5 * x).collect();
    for (l, r) in left.chunks(512).zip(right.chunks(512)) {
        assert!(input.push_block(&[l, r]));
    }
    let start = std::time::Instant::now();
    while shared.takes.recorded_frames() < left.len() as u64 {
        assert!(start.elapsed().as_secs() < 60, "the worker records what arrives");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let drawn = driver.click("Recording");
    assert!(!shared.takes.is_recording());
    while matches!(shared.takes.recorder_state(), RecorderState::Recording { .. }) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let take = shared.takes.take().expect("a take");
    assert_eq!(take.frames, left.len() as u64);
    let drawn = if drawn.texts.iter().any(|(t, _)| t.starts_with("Strata take")) { drawn } else { driver.frame(Vec::new()) };
    assert!(drawn.texts.iter().any(|(t, _)| t.starts_with(&take.name)), "the editor names the take");

    driver.click("Export");
    shared.takes.wait_for_export();
    match shared.takes.export_state() {
        ExportState::Done { dest, .. } => {
            assert_eq!(dest, root.join("exports").join(&take.name));
            assert!(dest.join("strata.jams").is_file() && dest.join("stem_residual.wav").is_file());
        }
        other => panic!("{other:?}"),
    }
    let drawn = driver.frame(Vec::new());
    assert!(drawn.texts.iter().any(|(t, _)| t.starts_with("Exported ")), "the editor says where it went");
    // Exporting the same take again asks before replacing.
    driver.click("Export");
    assert!(matches!(shared.takes.export_state(), ExportState::NeedsConfirmation { .. }));
    let drawn = driver.frame(Vec::new());
    assert!(drawn.texts.iter().any(|(t, _)| t == "Replace it"));
    driver.click("Cancel");
    assert!(matches!(shared.takes.export_state(), ExportState::Idle));
    worker.stop().unwrap();
    std::fs::remove_dir_all(root).unwrap();
}

/// Song-timeline mode: a host loops bars 1-8 (12 s at 160 BPM) twice. The real worker places
/// each layer step in the song from the capture ring's song marks, and the editor keeps one pass
/// of bars 1-8 (the newest), not two scrolled copies; the header says the lanes follow the song.
#[test]
fn a_looped_stretch_of_the_song_is_drawn_once_where_it_lies_in_the_song() {
    use strata::capture::capture_ring;
    use strata::worker::{Worker, WorkerConfig};
    const TEMPO: f64 = 160.0;
    const LOOP_S: f64 = 8.0 * 4.0 * 60.0 / TEMPO;

    let shared = Arc::new(EditorShared::new());
    let mut driver = Driver { ctx: egui::Context::default(), editor: StrataEditor::new(Arc::new(StrataParams::default()), shared.clone()), size: egui::vec2(900.0, 520.0) };
    let music = AudioFile::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/machine_wars_excerpt.ogg")).unwrap();
    let rate = music.sample_rate() as usize;
    let mut mono = Vec::new();
    let mut all = Vec::new();
    let mut music = music;
    while music.read_mono(&mut mono).unwrap() {
        all.extend_from_slice(&mono);
    }
    all.truncate((2.0 * LOOP_S) as usize * rate);
    let (mut input, output) = capture_ring(rate * 30, 1);
    let (publisher, feed) = status_channel();
    shared.replace_feed(feed);
    let worker = Worker::spawn(WorkerConfig::from_env(1, rate as f32), output, publisher, Box::new(|| ())).unwrap();
    for (k, block) in all.chunks(512).enumerate() {
        let song_s = (k * 512) as f64 / rate as f64 % LOOP_S;
        input.note_song_position(Some(song_s), rate as f32);
        assert!(input.push_block(&[block]));
    }
    worker.stop().unwrap();
    let drawn = driver.frame(Vec::new());
    assert!(drawn.texts.iter().any(|(t, _)| t == "song time"), "{:?}", drawn.texts);
    // The song from its beginning (no tempo from this worker, so the ruler is in seconds).
    assert!(drawn.texts.iter().any(|(t, _)| t == "0 s"), "the lanes start at the song's beginning: {:?}", drawn.texts);

    let (wall, song) = (shared.history.lock().unwrap(), shared.song_history.lock().unwrap());
    // The finest lane steps every 0.1 s: the wall clock holds both passes, the song one.
    let heard = wall.layout(0, 0.0, 100.0, 0.0).surprise;
    let placed = song.layout(0, -100.0, 100.0, 0.0).surprise;
    assert!(heard.len() as f64 > 1.8 * LOOP_S * 10.0, "{} steps heard", heard.len());
    assert!(placed.iter().all(|&(t, _)| (0.0..=LOOP_S + 1e-6).contains(&t)), "every step lies in bars 1-8");
    assert!((placed.len() as f64 - LOOP_S * 10.0).abs() <= 3.0, "one pass of bars 1-8: {} steps", placed.len());
    // ...and the pass kept is the newest: the song position of the last step heard.
    assert!((song.playhead_s() - (heard.last().unwrap().0 % LOOP_S)).abs() < 0.15, "{} vs {}", song.playhead_s(), heard.last().unwrap().0);
}
