//! Export memory and speed against file length: `cargo bench -p strata --bench export`.
//!
//! Writes synthetic stereo pieces of 1, 10 and 60 minutes (44.1 kHz, 32-bit float: a click every
//! beat, a bass riff every two bars, chords every eight, drifting in level), then runs each job
//! in a child process of its own and reads the child's peak resident memory (`VmHWM`):
//!
//! * the baseline: the analysis alone (`job::analyse_file`, what `strata analyze` does), which
//!   streams and is known to stay flat;
//! * the export (`job::export`: analysis, stems, residual, annotations).
//!
//! Memory that does not grow with the file shows as a 60-minute / 1-minute ratio near 1.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use strata::export::job::{self, ExportProgress, ExportRequest};
use strata::inference::{locate_models, runtime, ModelSet, Workload};

mod child;
mod piece;
use child::{report_peak_memory, run_child, run_of, Run};
use piece::write_piece;

const MINUTES: [u32; 3] = [1, 10, 60];

fn main() {
    let dir = match run_of("export") {
        Some(Run::Child(args)) => return child(&args[0], Path::new(&args[1]), Path::new(&args[2])),
        Some(Run::Bench(dir)) => dir,
        None => return,
    };
    println!("| length | analysis alone: peak MB, × real time | export: peak MB, × real time |");
    println!("|---|---|---|");
    let mut peaks = Vec::new();
    for minutes in MINUTES {
        let wav = dir.join(format!("{minutes}min.wav"));
        write_piece(&wav, minutes, true);
        let seconds = f64::from(minutes * 60);
        let (a_mb, a_s) = run_job("analyse", &wav, &dir.join(format!("a{minutes}")));
        let (e_mb, e_s) = run_job("export", &wav, &dir.join(format!("e{minutes}")));
        println!(
            "| {minutes} min | {a_mb:.0} MB, {:.0}× | {e_mb:.0} MB, {:.0}× |",
            seconds / a_s,
            seconds / e_s
        );
        peaks.push((a_mb, e_mb));
        let _ = std::fs::remove_dir_all(dir.join(format!("e{minutes}")));
        let _ = std::fs::remove_file(&wav);
    }
    let (first, last) = (peaks[0], peaks[peaks.len() - 1]);
    println!(
        "peak memory, 60 min / 1 min: analysis {:.2}×, export {:.2}×; export / analysis at 60 min: {:.1}×",
        last.0 / first.0,
        last.1 / first.1,
        last.1 / last.0
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs one job in a child process; returns its peak resident memory (MB) and wall time (s).
fn run_job(what: &str, wav: &Path, out: &Path) -> (f64, f64) {
    let (run, _) = run_child(&[OsStr::new(what), wav.as_os_str(), out.as_os_str()], false);
    (run.peak_mb, run.wall_s)
}

fn child(what: &str, wav: &Path, out: &Path) {
    let models = ModelSet::load(&locate_models().expect("models"), runtime().expect("ONNX Runtime"), Workload::Batched)
        .expect("models load");
    let progress = ExportProgress::new();
    match what {
        "analyse" => {
            job::analyse_file(wav, models, "bench", None, 4.0, &progress).expect("analysis");
        }
        _ => {
            let request = ExportRequest {
                input: wav.to_owned(),
                dest: PathBuf::from(out),
                replace: false,
                source_name: None,
                tempo_bpm: None,
                beats_per_bar: 4.0,
                highlight_period_s: None,
            };
            job::export(&request, models, &progress).expect("export");
        }
    }
    report_peak_memory();
}
