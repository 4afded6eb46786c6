//! The cost of Strata's `process()` per block, against a null plugin built the same way
//! (`tests/null-plugin`: same framework, features and profile, a `process()` that does nothing).
//!
//! Run with `cargo xtask bench`, which builds release bundles of both first. Both plugins run in
//! the same process, through the same CLAP host code, on the same real audio; the ratio of their
//! medians is what Strata's capture adds to the framework's own wrapper.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use strata_host_tests::audio::decode;
use strata_host_tests::*;

const BLOCK_SIZES: [usize; 3] = [64, 512, 4096];
const SAMPLE_RATE: f64 = 48_000.0;
/// Samples pushed per burst: a third of Strata's 10 s ring at 48 kHz. Between bursts (untimed)
/// the worker drains the ring, so every timed push succeeds: a full ring would make Strata's
/// process() cheaper (a dropped block is just counted), which is not the cost to measure.
const BURST_SAMPLES: usize = 160_000;
/// Untimed pause between bursts, long enough for the worker to drain a burst.
const DRAIN_PAUSE: Duration = Duration::from_millis(15);

fn bench_process(c: &mut Criterion, music: &[Vec<f32>]) {
    let mut group = c.benchmark_group("process");
    group.warm_up_time(Duration::from_millis(200));
    group.measurement_time(Duration::from_secs(1));
    group.sample_size(30);
    for (label, file, id) in [
        ("null", "StrataNull.clap", NULL_CLAP_ID),
        ("strata", "Strata.clap", STRATA_CLAP_ID),
    ] {
        let bundle = ClapBundle::load(&bundled(file).expect("bundles built by cargo xtask bench"))
            .expect("bundle loads");
        for block in BLOCK_SIZES {
            let mut plugin = bundle.instantiate(id).expect("instantiates");
            let mut running = plugin.start(SAMPLE_RATE, block).expect("activates");
            for (ch, src) in running.input.iter_mut().zip(music) {
                ch.copy_from_slice(&src[..block]);
            }
            group.throughput(Throughput::Elements(block as u64));
            let burst = (BURST_SAMPLES / block) as u64;
            group.bench_function(BenchmarkId::new(label, block), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let n = burst.min(iters - done);
                        let start = Instant::now();
                        for _ in 0..n {
                            running.process(block).expect("process");
                        }
                        timed += start.elapsed();
                        done += n;
                        std::thread::sleep(DRAIN_PAUSE);
                    }
                    timed
                });
            });
            plugin.stop(running);
            if label == "strata" {
                let report = last_worker_report().expect("worker report");
                println!(
                    "strata/{block}: worker received {} samples, {} dropped",
                    report["received_samples"], report["dropped_samples"]
                );
            }
        }
    }
    group.finish();
}

/// Reads criterion's median estimate (ns) for one benchmark.
fn median_ns(label: &str, block: usize) -> Option<f64> {
    let path = target_dir()
        .join("criterion")
        .join("process")
        .join(label)
        .join(block.to_string())
        .join("new")
        .join("estimates.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn main() {
    let music = decode(&asset("machine_wars_excerpt.ogg")).expect("asset decodes");
    let excerpt = music.excerpt(5.0, 1.0);
    let mut criterion = Criterion::default().configure_from_args();
    bench_process(&mut criterion, &excerpt);
    criterion.final_summary();

    println!("\nprocess() per block, Strata against the null plugin (medians, same run):");
    println!("| block | null (ns) | Strata (ns) | ratio |");
    println!("|---|---|---|---|");
    for block in BLOCK_SIZES {
        if let (Some(null), Some(strata)) = (median_ns("null", block), median_ns("strata", block)) {
            println!("| {block} | {null:.0} | {strata:.0} | {:.2}x |", strata / null);
        }
    }
}
