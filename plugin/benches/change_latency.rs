//! How soon a change shows on its layer in the live editor: the time from a change's start in
//! the music to the first pattern layers the worker hands the editor that hold it.
//!
//! The music is the bundled example (120 BPM, 30 s) looped four times; from 70 s to 78 s (two
//! bars) it is low-passed at 400 Hz, as a producer's filter sweep would do. A simulated host
//! pushes it in 512-sample blocks at real-time pace (`STRATA_BENCH_SPEED` plays it faster), and
//! the editor side looks at the worker's pattern layers every 10 ms. Target (issue 10): visible
//! within the changed layer's period plus one second. Run: `cargo bench -p strata --bench
//! change_latency` (two minutes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::audio_file::AudioFile;
use strata::capture::capture_ring;
use strata::worker::PATTERN_REFRESH_S;

mod common;

const BLOCK: usize = 512;
const LOOPS: usize = 4;
/// The filtered stretch, seconds into the looped music.
const CHANGE_S: (f64, f64) = (70.0, 78.0);
const CUTOFF_HZ: f64 = 400.0;
/// A reported change counts if its start (or end) is this close to the true one, as the
/// quality figures count a boundary at 3 s.
const TOLERANCE_S: f64 = 3.0;

fn main() {
    let speed: f64 = std::env::var("STRATA_BENCH_SPEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let asset = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/machine_wars_excerpt.ogg");
    let mut file = AudioFile::open(&asset).expect("example audio");
    let rate = f64::from(file.sample_rate());
    let mut one = Vec::new();
    let mut block = Vec::new();
    while file.read_mono(&mut block).expect("decodes") {
        one.extend_from_slice(&block);
    }
    let mut audio: Vec<f32> = one.iter().copied().cycle().take(one.len() * LOOPS).collect();
    // One-pole low-pass over the changed stretch.
    let a = (-2.0 * std::f64::consts::PI * CUTOFF_HZ / rate).exp();
    let mut y = 0.0_f64;
    for x in &mut audio[(CHANGE_S.0 * rate) as usize..(CHANGE_S.1 * rate) as usize] {
        y = (1.0 - a) * f64::from(*x) + a * y;
        *x = y as f32;
    }

    let (mut input, output) = capture_ring((rate * 10.0) as usize, 1);
    let (worker, feed) = common::running_worker(output, rate);

    let blocks = audio.len() / BLOCK;
    let mut next_block = 0;
    let mut seen = Arc::new(Vec::new());
    let mut refreshes = 0;
    // (audio seconds pushed when first seen, the layer's period) for the start and for the end.
    let mut start_seen: Option<(f64, f64)> = None;
    let mut end_seen: Option<(f64, f64)> = None;
    let t0 = Instant::now();
    while next_block < blocks {
        while next_block < blocks && t0.elapsed().as_secs_f64() * speed >= (next_block * BLOCK) as f64 / rate {
            input.push_block(&[&audio[next_block * BLOCK..(next_block + 1) * BLOCK]]);
            next_block += 1;
        }
        let pushed_s = (next_block * BLOCK) as f64 / rate;
        let patterns = feed.patterns();
        if !Arc::ptr_eq(&patterns, &seen) {
            refreshes += 1;
            for p in patterns.iter() {
                for c in &p.changes {
                    if start_seen.is_none() && (c.start_s - CHANGE_S.0).abs() <= TOLERANCE_S {
                        start_seen = Some((pushed_s, p.period_s));
                    }
                    // An end counts once the music has passed it (a stretch still going ends now).
                    if end_seen.is_none() && pushed_s >= CHANGE_S.1 && (c.end_s - CHANGE_S.1).abs() <= TOLERANCE_S {
                        end_seen = Some((pushed_s, p.period_s));
                    }
                }
            }
            seen = patterns;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(input);
    worker.stop();

    println!("Change visibility: {:.0} s of music at {speed}x, low-passed from {} s to {} s; {refreshes} pattern refreshes (one due every {PATTERN_REFRESH_S} s of audio)", audio.len() as f64 / rate, CHANGE_S.0, CHANGE_S.1);
    println!("| boundary | first shown at | delay | on the layer of period | target (period + 1 s) |");
    println!("|---|---|---|---|---|");
    for (name, at, seen) in [("start", CHANGE_S.0, start_seen), ("end", CHANGE_S.1, end_seen)] {
        match seen {
            Some((shown, period)) => println!("| {name} {at} s | {shown:.2} s | {:.2} s | {period:.3} s | {:.2} s |", shown - at, period + 1.0),
            None => println!("| {name} {at} s | never | | | |"),
        }
    }
}
