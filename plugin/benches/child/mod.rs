//! What the file benchmarks share: each job runs in a child process of its own (this benchmark's
//! executable again, with `--child`), so its peak resident memory (`VmHWM`) is the job's alone.
// Each benchmark uses part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Instant;

/// What this run of a file benchmark is for.
pub enum Run {
    /// A job in a child process ([`run_child`]), with the arguments after `--child`.
    Child(Vec<String>),
    /// The benchmark itself, with a temporary folder of its own (made here) for its files.
    Bench(PathBuf),
}

/// What benchmark `name` was started for; `None` when cargo only asked for its `--list`, which is
/// answered here.
pub fn run_of(name: &str) -> Option<Run> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return Some(Run::Child(args[i + 1..].to_vec()));
    }
    if args.iter().any(|a| a == "--list") {
        println!("{name}: bench");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("strata-{name}-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    Some(Run::Bench(dir))
}

/// A child job's peak resident memory (MB), the lines it printed after that, and its wall time
/// (s, the process's start and model loading included).
pub struct ChildRun {
    pub peak_mb: f64,
    pub report: Vec<String>,
    pub wall_s: f64,
}

/// Runs `--child ARGS...` in a child process, on one core (`taskset -c 0`) when `one_core` asks
/// and `taskset` is there; returns the run and whether it was pinned. Panics if the child fails,
/// with what it said.
pub fn run_child(args: &[&OsStr], one_core: bool) -> (ChildRun, bool) {
    let exe = std::env::current_exe().expect("own path");
    let pinned = one_core && std::process::Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success());
    let mut command = if pinned {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "0"]).arg(exe);
        c
    } else {
        std::process::Command::new(exe)
    };
    command.arg("--child").args(args);
    let start = Instant::now();
    let output = command.output().expect("child");
    let wall_s = start.elapsed().as_secs_f64();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let kb: f64 = lines.next().unwrap_or_default().trim().parse().expect("VmHWM in kB");
    (ChildRun { peak_mb: kb / 1024.0, report: lines.map(str::to_owned).collect(), wall_s }, pinned)
}

/// Prints this process's peak resident memory (kB), the first line a child reports.
pub fn report_peak_memory() {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM");
    println!("{hwm}");
}
