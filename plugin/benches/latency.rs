//! The worker's latency: from the last sample of a layer step's window entering the capture ring
//! to that step's layer frame reaching the editor's queue.
//!
//! A simulated host pushes real music (the bundled example) in 512-sample blocks at real-time
//! pace at 48 kHz, exactly as `process()` would; the editor side polls its queue every 0.5 ms.
//! Target: under 50 ms plus the scale's hop. Run: `cargo bench -p strata --bench latency`.

use std::time::{Duration, Instant};

use strata::audio_file::AudioFile;
use strata::capture::capture_ring;
use strata::inference::Manifest;

mod common;

const RATE: f64 = 48_000.0;
const BLOCK: usize = 512;
const SECONDS: f64 = 24.0;

fn main() {
    let asset = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/machine_wars_excerpt.ogg");
    let mut file = AudioFile::open(&asset).expect("example audio");
    let mut audio = Vec::new();
    let mut block = Vec::new();
    while file.read_mono(&mut block).expect("decodes") {
        audio.extend_from_slice(&block);
    }
    audio.truncate((SECONDS * RATE) as usize);
    let manifest = Manifest::load(&strata::inference::locate_models().expect("models")).expect("manifest");
    let model_rate = f64::from(manifest.sample_rate);
    let (n_fft, hop) = (manifest.logmel().n_fft as f64, manifest.logmel().hop as f64);

    let (mut input, output) = capture_ring((RATE * 10.0) as usize, 1);
    let (worker, mut feed) = common::running_worker(output, RATE);

    let mut pushed_at: Vec<Instant> = Vec::new(); // per block
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); manifest.scales.len()];
    let mut frames = Vec::new();
    let t0 = Instant::now();
    let mut next_block = 0;
    let blocks = audio.len() / BLOCK;
    while next_block < blocks || t0.elapsed().as_secs_f64() < SECONDS + 1.0 {
        // The host: push every block that is due.
        while next_block < blocks && t0.elapsed().as_secs_f64() >= (next_block * BLOCK) as f64 / RATE {
            let b = &audio[next_block * BLOCK..(next_block + 1) * BLOCK];
            input.push_block(&[b]);
            pushed_at.push(Instant::now());
            next_block += 1;
        }
        // The editor: take what arrived.
        frames.clear();
        feed.drain_layers(&mut frames);
        let now = Instant::now();
        for f in &frames {
            // The step's window ends at frame e = time_s * frame_rate; its last sample is
            // (e - 1) * hop + n_fft at the model rate.
            let e = (f.time_s * manifest.frame_rate).round();
            let last_sample_s = ((e - 1.0) * hop + n_fft) / model_rate;
            let block_index = ((last_sample_s * RATE) as usize).saturating_sub(1) / BLOCK;
            if let Some(at) = pushed_at.get(block_index) {
                latencies[f.level].push(now.duration_since(*at).as_secs_f64() * 1000.0);
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    drop(input);
    worker.stop();

    println!("Worker latency, last sample of a step's window entering the ring -> its layer frame in the editor's queue");
    println!("| scale | hop | steps | median | p95 | max | target (50 ms + hop) |");
    println!("|---|---|---|---|---|---|---|");
    for (i, lat) in latencies.iter_mut().enumerate() {
        if lat.is_empty() {
            continue;
        }
        lat.sort_by(f64::total_cmp);
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
        let hop_ms = manifest.scales[i].hop_frames as f64 / manifest.frame_rate * 1000.0;
        println!(
            "| {} s | {:.0} ms | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} ms |",
            manifest.scales[i].scale_s,
            hop_ms,
            lat.len(),
            q(0.5),
            q(0.95),
            lat[lat.len() - 1],
            50.0 + hop_ms
        );
    }
}
