//! What the worker benchmarks share: a worker started as a plugin activation starts one.

use std::time::{Duration, Instant};

use strata::capture::CaptureOutput;
use strata::worker::{status_channel, AnalysisState, StatusFeed, Worker, WorkerConfig};

/// A worker at `rate_hz` draining `output`, returned once its models have loaded (a host plays on
/// while they load; the benchmarks measure what comes after). Panics if there is no analysis.
pub fn running_worker(output: CaptureOutput, rate_hz: f64) -> (Worker, StatusFeed) {
    let (publisher, feed) = status_channel();
    let config = WorkerConfig { activation: 1, sample_rate_hz: rate_hz as f32, tempo_bits: None, beats_per_bar: None, hash_samples: false, report_file: None, takes: None };
    let worker = Worker::spawn(config, output, publisher, Box::new(|| ())).expect("worker");
    let start_wait = Instant::now();
    while !matches!(feed.analysis(), AnalysisState::Running { .. }) {
        if let AnalysisState::Unavailable(why) = feed.analysis() {
            panic!("no analysis: {why}");
        }
        assert!(start_wait.elapsed() < Duration::from_secs(30), "models did not load");
        std::thread::sleep(Duration::from_millis(5));
    }
    (worker, feed)
}
