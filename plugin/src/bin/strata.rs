//! `strata`: Strata's analysis offline, through the same engine the plugin runs live.
//!
//!     strata analyze AUDIO... --out DIR      (a folder analyses every audio file in it)
//!     strata export AUDIO --out DIR          (also stems and annotations)
//!
//! `analyze` writes DIR/strata.json and DIR/strata.png (one subfolder per file when several are
//! given, analysed one per core; a file that fails is named and the rest go on); `export` fills
//! DIR with everything [`strata::export::job`] lists, all at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use strata::export::job::{analyse_file, export, ExportProgress, ExportRequest, FileAnalysis};
use strata::inference::{locate_models, runtime, ModelSet, Runtime, Workload};
use strata::layers::patterns::layer_with_period;

#[derive(Parser)]
#[command(name = "strata", version, about = "Hears the repeating layers music is built from")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse audio files (WAV, FLAC, MP3, OGG) into strata.json and a picture of the layers.
    Analyze {
        /// Files or folders (every audio file in a folder is analysed).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Files analysed at once when there are several (default: one per core).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        #[command(flatten)]
        options: Options,
    },
    /// Analyse one file and export its layers: stems (one WAV per layer period plus a residual,
    /// summing back to the input, with cue points), Audacity label tracks, a CSV of segments and
    /// changes, JAMS, a MIDI file of markers, and strata.json with its picture.
    Export {
        input: PathBuf,
        /// Replace an earlier Strata export in the output folder (anything else is never
        /// replaced).
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        options: Options,
    },
}

/// What `analyze` and `export` share.
#[derive(clap::Args)]
struct Options {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// The tempo in BPM, to express periods in beats and bars.
    #[arg(long)]
    tempo: Option<f64>,
    /// Beats per bar (with --tempo).
    #[arg(long, default_value_t = 4.0)]
    beats_per_bar: f64,
    /// Model folder (default: STRATA_MODELS, beside this binary, or the workspace's models/).
    #[arg(long)]
    models: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Also write candidates.jsonl, every candidate period the layer search weighed with the
    /// features the period head scores, and attributions.jsonl, every layer each change could
    /// go to with the features the attribution head scores (their training data; see
    /// models/README.md).
    #[arg(long)]
    candidates: bool,
    /// Highlight in the picture the pattern layer of this period (seconds, within 3 %), as a
    /// click on it does in the editor.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    highlight: Option<f64>,
}

impl Options {
    /// Checks the options and finds the model folder and ONNX Runtime.
    fn prepare(&self) -> Result<(PathBuf, &'static Runtime)> {
        if let Some(s) = self.highlight {
            if !(s.is_finite() && s > 0.0) {
                bail!("--highlight {s} is not a positive period in seconds");
            }
        }
        if let Some(t) = self.tempo {
            if !(t.is_finite() && t > 0.0) {
                bail!("--tempo {t} is not a positive number of beats per minute");
            }
        }
        let models_dir = match &self.models {
            Some(dir) => dir.clone(),
            None => locate_models()?,
        };
        let rt = runtime().map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!("{}", rt.summary());
        Ok((models_dir, rt))
    }
}

const AUDIO_EXTENSIONS: &[&str] = &["wav", "wave", "flac", "mp3", "ogg", "oga"];

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Analyze { inputs, jobs, options } => {
            let files = collect_inputs(&inputs)?;
            let (models_dir, rt) = options.prepare()?;
            if let [file] = &files[..] {
                let models = ModelSet::load(&models_dir, rt, Workload::Batched)?;
                analyze_file(file, &options.out, models, &options, true)
                    .with_context(|| format!("analysing {}", file.display()))?;
                eprintln!("{} -> {}", file.display(), options.out.display());
                return Ok(());
            }
            // A model folder that does not load fails the whole batch at once, not file by file.
            ModelSet::load(&models_dir, rt, Workload::Batched)?;
            let jobs = jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), usize::from);
            let failed = analyze_batch(&files, &models_dir, rt, &options, jobs);
            if failed > 0 {
                bail!("{failed} of {} files failed (each named above); the other results are written", files.len());
            }
            Ok(())
        }
        Command::Export { input, replace, options } => {
            let (models_dir, rt) = options.prepare()?;
            let models = ModelSet::load(&models_dir, rt, Workload::Batched)?;
            let request = ExportRequest {
                input: input.clone(),
                dest: options.out.clone(),
                replace,
                source_name: None,
                tempo_bpm: options.tempo,
                beats_per_bar: options.beats_per_bar,
                highlight_period_s: options.highlight,
            };
            let progress = ExportProgress::new();
            let summary = with_progress_bar(&progress, options.quiet, || export(&request, models, &progress))
                .with_context(|| format!("exporting {}", input.display()))?;
            eprintln!(
                "{} -> {} ({} stems and the residual; stems sum back to the input within {:.1e})",
                input.display(),
                summary.dest.display(),
                summary.stem_periods_s.len(),
                summary.max_sum_error
            );
            Ok(())
        }
    }
}

/// Runs `job` on a thread of its own while this one draws a progress bar following `progress`
/// (none when `quiet`), and returns what the job returned.
fn with_progress_bar<T: Send>(progress: &ExportProgress, quiet: bool, job: impl FnOnce() -> T + Send) -> T {
    if quiet {
        // No bar to draw: no thread, and no 100 ms poll added to every file of a batch.
        return job();
    }
    std::thread::scope(|scope| {
        let job = scope.spawn(job);
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg:<44} [{bar:30}] {percent}%")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        while !job.is_finished() {
            let (step, fraction) = progress.get();
            bar.set_message(step.describe());
            bar.set_position((fraction * 1000.0) as u64);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        bar.finish_and_clear();
        // A panic in the job is a bug: let it show as one.
        job.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Analyses several files, `jobs` at a time, each into its own subfolder of `--out`
/// ([`batch_destinations`]). A file that fails is named on one line and leaves nothing behind;
/// the others go on. Returns how many failed.
fn analyze_batch(files: &[PathBuf], models_dir: &Path, rt: &'static Runtime, options: &Options, jobs: usize) -> usize {
    let destinations = batch_destinations(files, &options.out);
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let bar = if options.quiet { ProgressBar::hidden() } else { ProgressBar::new(files.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {pos}/{len} files {msg} [{bar:30}] eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(files.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(file) = files.get(i) else { break };
                let result = ModelSet::load(models_dir, rt, Workload::Batched)
                    .map_err(anyhow::Error::from)
                    .and_then(|models| analyze_file(file, &destinations[i], models, options, false));
                match result {
                    // `suspend`, not `println`: a hidden bar (--quiet) prints nothing with `println`.
                    Ok(()) => bar.suspend(|| eprintln!("{} -> {}", file.display(), destinations[i].display())),
                    Err(e) => {
                        let n = failed.fetch_add(1, Ordering::Relaxed) + 1;
                        bar.set_message(format!("({n} failed)"));
                        bar.suspend(|| eprintln!("strata: analysing {}: {}", file.display(), one_line(&e)));
                    }
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let failed = failed.into_inner();
    eprintln!("{} of {} files analysed, {failed} failed", files.len() - failed, files.len());
    failed
}

/// The subfolder of `out` each file's results go to: its name without the extension, or with
/// it where two inputs share a stem (`take.wav`, `take.flac`), and a number added where two
/// inputs from different folders share a name.
fn batch_destinations(files: &[PathBuf], out: &Path) -> Vec<PathBuf> {
    let stem = |f: &PathBuf| f.file_stem().unwrap_or_default().to_os_string();
    let mut taken = std::collections::HashSet::new();
    files
        .iter()
        .map(|f| {
            let shared_stem = files.iter().filter(|g| stem(g) == stem(f)).count() > 1;
            let base = if shared_stem { f.file_name().unwrap_or_default().to_os_string() } else { stem(f) };
            let mut name = base.clone();
            let mut k = 1;
            while !taken.insert(name.clone()) {
                k += 1;
                name = base.clone();
                name.push(format!("-{k}"));
            }
            out.join(name)
        })
        .collect()
}

/// An error and its causes on one line, outermost first.
fn one_line(e: &anyhow::Error) -> String {
    e.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("reading folder {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{} holds no audio files ({})", input.display(), AUDIO_EXTENSIONS.join(", "));
            }
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Analyses `path` into `dest/strata.json` and `dest/strata.png`.
fn analyze_file(path: &Path, dest: &Path, models: ModelSet, options: &Options, show_progress: bool) -> Result<()> {
    // Check the destination before the long part, so a bad folder fails at once; a folder made
    // here is removed again if the job fails.
    let existed = dest.exists();
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create output folder {}", dest.display()))?;
    let result = analyze_into(path, dest, models, options, show_progress);
    if result.is_err() && !existed {
        let _ = std::fs::remove_dir(dest); // only if still empty
    }
    result
}

/// Writes `records` to `path`, one JSON object a line.
fn write_jsonl<T: serde::Serialize>(path: &Path, records: &[T]) -> Result<()> {
    let lines: Vec<String> = records.iter().map(serde_json::to_string).collect::<Result<_, _>>()?;
    std::fs::write(path, lines.join("\n") + "\n").with_context(|| format!("writing {}", path.display()))
}

fn analyze_into(path: &Path, dest: &Path, models: ModelSet, options: &Options, show_progress: bool) -> Result<()> {
    let progress = ExportProgress::new();
    let source = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let FileAnalysis { analysis, trace, .. } = with_progress_bar(&progress, options.quiet || !show_progress, || {
        analyse_file(path, models, &source, options.tempo, options.beats_per_bar, &progress)
    })?;
    // Written beside their final names and renamed, so nothing half-written is ever in `dest`.
    let staging = dest.join(format!(".strata-partial-{}", std::process::id()));
    std::fs::create_dir_all(&staging).with_context(|| format!("cannot write into output folder {}", dest.display()))?;
    let result = (|| -> Result<()> {
        let json = serde_json::to_string_pretty(&analysis)?;
        std::fs::write(staging.join("strata.json"), json).with_context(|| format!("writing into {}", staging.display()))?;
        if let Some(s) = options.highlight.filter(|&s| layer_with_period(&analysis.patterns, s).is_none()) {
            eprintln!("{}: no pattern layer within 3 % of {s} s to highlight", path.display());
        }
        strata::picture::draw(&analysis, options.highlight, &staging.join("strata.png"))?;
        let mut names = vec!["strata.json", "strata.png"];
        if options.candidates {
            write_jsonl(&staging.join("candidates.jsonl"), &trace.candidates)?;
            write_jsonl(&staging.join("attributions.jsonl"), &trace.attributions)?;
            names.extend(["candidates.jsonl", "attributions.jsonl"]);
        }
        for name in names {
            std::fs::rename(staging.join(name), dest.join(name))
                .with_context(|| format!("moving {name} into {}", dest.display()))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}
