//! The editor's lanes, rendered headless from a recorded stream of real layers (the engine run on
//! the bundled example), checked on what is drawn: one lane per visible scale, token letters,
//! change markers where the changes are.

use std::path::Path;
use std::sync::Arc;

use strata::audio_file::AudioFile;
use strata::editor::{EditorShared, StrataEditor};
use strata::engine::Engine;
use strata::inference::{runtime, ModelSet, Workload};
use strata::layers::LayerFrame;
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
    let mut periods = [f32::NAN; MAX_LEVELS];
    for (i, p) in periods.iter_mut().enumerate().take(engine.models().manifest.scales.len()) {
        *p = engine.period(i).map_or(f32::NAN, |e| e.period_s as f32);
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
}

fn collect(shape: &egui::Shape, out: &mut Drawn) {
    match shape {
        egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| collect(s, out)),
        egui::Shape::Text(t) => out.texts.push((t.galley.text().to_owned(), t.pos)),
        egui::Shape::LineSegment { points, stroke } => {
            if stroke.color == egui::Color32::from_rgb(255, 70, 70) && (points[0].x - points[1].x).abs() < 0.01 {
                out.markers.push(points[0].x);
            }
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

#[test]
fn lanes_show_every_scale_its_letters_and_its_changes() {
    let (frames, scales, periods) = recorded_layers();
    let changes = frames.iter().filter(|f| f.change.is_some()).count();
    let shared = Arc::new(EditorShared::new());
    let (mut publisher, feed) = status_channel();
    shared.replace_feed(feed);
    publisher.set_analysis(AnalysisState::Running { models: "test".into(), scales_s: scales.clone() });
    for f in &frames {
        assert!(publisher.publish_layer(*f));
    }
    assert!(publisher.publish(status(periods)));
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
