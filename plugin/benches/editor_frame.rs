//! The editor's frame time with six lanes and one hour of history (target: under 4 ms per frame
//! on this machine's CPU). A frame is egui laying out and painting the whole editor (the same
//! `StrataEditor::draw` the window calls) and tessellating the result into triangles; the GPU
//! upload is not included. Run: `cargo bench -p strata --bench editor_frame`.

use std::sync::Arc;
use std::time::Instant;

use strata::editor::{EditorShared, StrataEditor};
use strata::layers::LayerFrame;
use strata::params::StrataParams;
use strata::worker::{status_channel, AnalysisState};

const SCALES: [f64; 6] = [0.2, 1.0, 2.0, 5.0, 10.0, 20.0];
const HOPS: [f64; 6] = [0.1, 0.2, 0.5, 1.0, 2.0, 4.0];

fn main() {
    let shared = Arc::new(EditorShared::new());
    let (publisher, feed) = status_channel();
    shared.replace_feed(feed);
    publisher.set_analysis(AnalysisState::Running { models: "bench".into(), scales_s: SCALES.to_vec() });
    // An hour of layers: tokens that repeat and change, a change every 30 s per layer.
    {
        let mut history = shared.history.lock().unwrap();
        for (level, hop) in HOPS.iter().enumerate() {
            let steps = (3600.0 / hop) as usize;
            for k in 0..steps {
                let t = (k + 1) as f64 * hop;
                let token = ((k / (4 + level)) % 7 + 3 * level) as u8;
                let change = (k % (30.0 / hop) as usize == 0).then_some((t, 0.6));
                history.push(LayerFrame { level, time_s: t, token, surprise: ((k % 13) as f32) * 0.5, change, song_s: None });
            }
        }
    }
    let mut results = Vec::new();
    for span_s in [60.0, 600.0, 3600.0] {
        let params = Arc::new(StrataParams::default());
        params.update_view(|v| v.span_s = span_s);
        let mut editor = StrataEditor::new(params, shared.clone());
        let ctx = egui::Context::default();
        let input = || egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1200.0, 700.0))),
            ..Default::default()
        };
        let mut times = Vec::new();
        for i in 0..120 {
            let start = Instant::now();
            let mut out = ctx.run_ui(input(), |ui| editor.draw(ui));
            let meshes = ctx.tessellate(std::mem::take(&mut out.shapes), out.pixels_per_point);
            std::hint::black_box(meshes);
            out.textures_delta.clear();
            if i >= 20 {
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        results.push((span_s, times[times.len() / 2], times[times.len() * 95 / 100]));
    }
    println!("Editor frame time, six lanes, one hour of history (1200x700 points, layout + paint + tessellation):");
    println!("| span shown | median | p95 | target |");
    println!("|---|---|---|---|");
    for (span, median, p95) in results {
        println!("| {span:.0} s | {median:.2} ms | {p95:.2} ms | 4 ms |");
    }
}
