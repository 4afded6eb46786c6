//! `strata`: Strata's analysis offline, through the same engine the plugin runs live.
//!
//!     strata analyze AUDIO... --out DIR      (a folder analyses every audio file in it)
//!     strata export AUDIO --out DIR          (also stems and annotations)
//!
//! writes DIR/strata.json and DIR/strata.png (one subfolder per file when several are given).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use strata::audio_file::AudioFile;
use strata::engine::Engine;
use strata::inference::{locate_models, runtime, ModelSet, Workload};

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
        #[command(flatten)]
        options: Options,
    },
    /// Analyse one file and export its layers: stems (one WAV per layer period plus a residual,
    /// summing back to the input, with cue points), Audacity label tracks, a CSV of segments and
    /// changes, JAMS, a MIDI file of markers, and strata.json with its picture.
    Export {
        input: PathBuf,
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
}

impl Options {
    /// Checks the options and finds the model folder and ONNX Runtime.
    fn prepare(&self) -> Result<(PathBuf, &'static strata::inference::Runtime)> {
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
            // One line: the chain of causes, outermost first.
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("strata: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Analyze { inputs, options } => {
            let files = collect_inputs(&inputs)?;
            let (models_dir, rt) = options.prepare()?;
            let several = files.len() > 1;
            for file in &files {
                let dest = if several {
                    options.out.join(file.file_stem().map(|s| s.to_owned()).unwrap_or_default())
                } else {
                    options.out.clone()
                };
                let models = ModelSet::load(&models_dir, rt, Workload::Batched)?;
                analyze_file(file, &dest, models, &options, false)
                    .with_context(|| format!("analysing {}", file.display()))?;
                eprintln!("{} -> {}", file.display(), dest.display());
            }
            Ok(())
        }
        Command::Export { input, options } => {
            let (models_dir, rt) = options.prepare()?;
            let models = ModelSet::load(&models_dir, rt, Workload::Batched)?;
            analyze_file(&input, &options.out, models, &options, true)
                .with_context(|| format!("exporting {}", input.display()))?;
            eprintln!("{} -> {}", input.display(), options.out.display());
            Ok(())
        }
    }
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

/// Analyses `path` into `dest` (with stems and annotations when `stems`).
fn analyze_file(path: &Path, dest: &Path, models: ModelSet, options: &Options, stems: bool) -> Result<()> {
    // Check the destination before the long part, so a bad folder fails at once; a folder made
    // here is removed again if the job fails.
    let existed = dest.exists();
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create output folder {}", dest.display()))?;
    let result = analyze_into(path, dest, models, options, stems);
    if result.is_err() && !existed {
        let _ = std::fs::remove_dir(dest); // only if still empty
    }
    result
}

fn analyze_into(path: &Path, dest: &Path, models: ModelSet, options: &Options, stems: bool) -> Result<()> {
    let mut file = AudioFile::open(path)?;
    let mut engine = Engine::new(models, file.sample_rate())?;
    let bar = (!options.quiet).then(|| {
        let bar = match file.duration_s() {
            Some(d) => ProgressBar::new(d.ceil() as u64),
            None => ProgressBar::new_spinner(),
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} s audio ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut block = Vec::new();
    let mut updates = Vec::new();
    while file.read_mono(&mut block)? {
        updates.clear();
        engine.push(&block, &mut updates)?;
        if let Some(bar) = &bar {
            bar.set_position(file.position_s() as u64);
        }
    }
    engine.finish(&mut updates)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if engine.duration_s() == 0.0 {
        bail!("{} holds no audio samples", path.display());
    }
    let staging = tempfile_dir(dest)?;
    let source = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let analysis = engine.analysis(&source, options.tempo, options.beats_per_bar);
    let result = (|| -> Result<()> {
        let json = serde_json::to_string_pretty(&analysis)?;
        std::fs::write(staging.join("strata.json"), json)
            .with_context(|| format!("writing into {}", staging.display()))?;
        strata::picture::draw(&analysis, &staging.join("strata.png"))?;
        let mut names = vec!["strata.json".to_owned(), "strata.png".to_owned()];
        if stems {
            names.extend(export_stems(path, &analysis, &staging)?);
        }
        // Move the finished files into place; nothing half-written is ever in `dest`.
        for name in &names {
            std::fs::rename(staging.join(name), dest.join(name))
                .with_context(|| format!("moving {name} into {}", dest.display()))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Writes the stems, label tracks and CSV for `analysis` into `dir`; returns the file names.
fn export_stems(path: &Path, analysis: &strata::layers::Analysis, dir: &Path) -> Result<Vec<String>> {
    use strata::export::{add_wav_cues, jams, midi, stems, write_audacity_labels, write_csv, write_wav};
    // Stems need the whole signal (the repeating model looks periods ahead and back).
    let mut file = AudioFile::open(path)?;
    let rate = file.sample_rate();
    let mut channels = Vec::new();
    while file.read_planar(&mut channels)? {}
    let periods = stems::distinct_periods(analysis.layers.iter().filter_map(|l| l.period_s), rate);
    let separated = stems::separate(&channels, rate, &periods);
    let mut names = Vec::new();
    // Cue points: a stem carries the segments and changes of the layers with its period; the
    // residual carries every layer's changes.
    let frame = |t: f64| (t.max(0.0) * f64::from(rate)).round() as u32;
    for (i, (period, audio)) in separated.layers.iter().enumerate() {
        let name = format!("stem_{}_{period:.3}s.wav", i + 1);
        write_wav(&dir.join(&name), audio, rate).with_context(|| format!("writing {name}"))?;
        let mut cues: Vec<(u32, String)> = Vec::new();
        for layer in analysis.layers.iter().filter(|l| l.period_s.is_some_and(|p| (p - period).abs() / period <= stems::SAME_PERIOD)) {
            cues.extend(layer.segments.iter().map(|s| (frame(s.start_s), format!("{} s layer: {}", layer.scale_s, s.label))));
            cues.extend(layer.changes.iter().map(|c| (frame(c.time_s), format!("{} s layer: change {:.2}", layer.scale_s, c.strength))));
        }
        cues.sort();
        add_wav_cues(&dir.join(&name), &cues).with_context(|| format!("writing cue points into {name}"))?;
        names.push(name);
    }
    write_wav(&dir.join("stem_residual.wav"), &separated.residual, rate).context("writing stem_residual.wav")?;
    let mut cues: Vec<(u32, String)> = analysis
        .layers
        .iter()
        .flat_map(|l| l.changes.iter().map(move |c| (frame(c.time_s), format!("{} s layer: change {:.2}", l.scale_s, c.strength))))
        .collect();
    cues.sort();
    add_wav_cues(&dir.join("stem_residual.wav"), &cues).context("writing cue points into stem_residual.wav")?;
    names.push("stem_residual.wav".to_owned());
    std::fs::write(dir.join("strata.jams"), serde_json::to_string_pretty(&jams(analysis))?).context("writing strata.jams")?;
    names.push("strata.jams".to_owned());
    std::fs::write(dir.join("strata_markers.mid"), midi(analysis)?).context("writing strata_markers.mid")?;
    names.push("strata_markers.mid".to_owned());
    names.extend(write_audacity_labels(analysis, dir).context("writing label tracks")?);
    write_csv(analysis, &dir.join("events.csv")).context("writing events.csv")?;
    names.push("events.csv".to_owned());
    Ok(names)
}

/// A fresh hidden staging folder inside `dest` (same file system, so renames are atomic).
fn tempfile_dir(dest: &Path) -> Result<PathBuf> {
    let dir = dest.join(format!(".strata-partial-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot write into output folder {}", dest.display()))?;
    Ok(dir)
}
