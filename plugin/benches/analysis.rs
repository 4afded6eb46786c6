//! The whole analysis against file length, on one core: `cargo bench -p strata --bench analysis`.
//!
//! The layers issue's benchmarks: the whole analysis (`job::analyse_file`, what `strata analyze`
//! does, decoding and the pattern layers included) at least 200× real time on one core, and an
//! hour under 300 MB at its peak. It writes the benchmark piece (a click every beat, a bass riff
//! every two bars, chords every eight: layers that span the whole file, so the layer search does
//! all its work) at 10 and 60 minutes, and runs each job in a child process of its own, pinned to
//! one core with `taskset` where there is one:
//!
//! * the baseline: decoding the file alone (the same reader, every sample, mixed to mono), which
//!   any analysis must do;
//! * the analysis.
//!
//! This machine's speed wanders from one minute to the next (a run can take half as long again
//! as the one before it), so each job runs [`RUNS`] times, the two alternating, and the best run
//! of each is reported, the others beside it; the ratio of the two is the figure to compare
//! across runs of the benchmark; × real time and peak memory (the most any run took) are the
//! targets'.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Instant;

use strata::audio_file::AudioFile;
use strata::export::job::{self, ExportProgress};
use strata::inference::{locate_models, runtime, ModelSet, Workload};

mod child;
mod piece;
use child::{report_peak_memory, run_child, run_of, Run};
use piece::write_piece;

const MINUTES: [u32; 2] = [10, 60];
/// Runs of each job, alternating: the best is the machine's speed with the least interference.
const RUNS: usize = 3;
/// The targets: real time over analysis time, and an hour's peak memory (MB).
const TARGET_REAL_TIME: f64 = 200.0;
const TARGET_HOUR_MB: f64 = 300.0;

fn main() {
    let dir = match run_of("analysis") {
        Some(Run::Child(args)) => return child_job(&args[0], Path::new(&args[1])),
        Some(Run::Bench(dir)) => dir,
        None => return,
    };
    println!("| length | decoding alone: best s, × real time (runs) | analysis: best s, × real time (runs), peak MB, layers | analysis / decoding |");
    println!("|---|---|---|---|");
    let mut hour = None;
    let mut pinned_all = true;
    for minutes in MINUTES {
        let wav = dir.join(format!("{minutes}min.wav"));
        write_piece(&wav, minutes, true);
        let seconds = f64::from(minutes * 60);
        let job_s = |run: &child::ChildRun| run.report.first().and_then(|l| l.parse::<f64>().ok()).expect("the job's seconds");
        let (mut decodes, mut analyses) = (Vec::new(), Vec::new());
        let (mut peak_mb, mut layers) = (0.0_f64, String::new());
        for _ in 0..RUNS {
            let (decode, pinned_d) = run_child(&[OsStr::new("decode"), wav.as_os_str()], true);
            let (analysis, pinned_a) = run_child(&[OsStr::new("analyse"), wav.as_os_str()], true);
            pinned_all &= pinned_d && pinned_a;
            decodes.push(job_s(&decode));
            analyses.push(job_s(&analysis));
            peak_mb = peak_mb.max(analysis.peak_mb);
            layers = analysis.report.get(1).cloned().unwrap_or_default();
        }
        let best = |runs: &[f64]| runs.iter().copied().fold(f64::INFINITY, f64::min);
        let listed = |runs: &[f64]| runs.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(", ");
        let (d_s, a_s) = (best(&decodes), best(&analyses));
        println!(
            "| {minutes} min | {d_s:.2} s, {:.0}× ({}) | {a_s:.2} s, {:.0}× ({}), {peak_mb:.0} MB, {layers} | {:.1} |",
            seconds / d_s,
            listed(&decodes),
            seconds / a_s,
            listed(&analyses),
            a_s / d_s
        );
        if minutes == 60 {
            hour = Some((seconds / a_s, peak_mb));
        }
        let _ = std::fs::remove_file(&wav);
    }
    if let Some((speed, mb)) = hour {
        println!(
            "an hour: {speed:.0}× real time (target {TARGET_REAL_TIME:.0}×: {}), peak {mb:.0} MB (target under {TARGET_HOUR_MB:.0} MB: {}){}",
            if speed >= TARGET_REAL_TIME { "met" } else { "missed" },
            if mb < TARGET_HOUR_MB { "met" } else { "missed" },
            if pinned_all { "" } else { "; not pinned to one core (no taskset)" }
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// One job in this child process: prints its peak memory (kB), the job's own seconds (the models'
/// loading left out), and for the analysis the periods of the layers it found.
fn child_job(what: &str, wav: &Path) {
    let (seconds, layers) = if what == "decode" {
        let start = Instant::now();
        let mut file = AudioFile::open(wav).expect("bench WAV");
        let mut block = Vec::new();
        while file.read_mono(&mut block).expect("decoding") {}
        (start.elapsed().as_secs_f64(), String::new())
    } else {
        let models = ModelSet::load(&locate_models().expect("models"), runtime().expect("ONNX Runtime"), Workload::Batched)
            .expect("models load");
        let start = Instant::now();
        let analysed = job::analyse_file(wav, models, "bench", None, 4.0, &ExportProgress::new()).expect("analysis");
        let periods: Vec<String> = analysed.analysis.patterns.iter().map(|p| format!("{:.2} s", p.period_s)).collect();
        (start.elapsed().as_secs_f64(), periods.join(" · "))
    };
    report_peak_memory();
    println!("{seconds}");
    println!("{layers}");
}
