//! One export job: the analysis, stems and annotations of an audio file, written into a folder
//! that appears whole or not at all. The CLI (`strata export`) and the plugin's Export button both
//! run [`export`].
//!
//! # What the folder gets
//!
//! `strata.json` and `strata.png` (the analysis and its picture), `stem_<k>_<period>s.wav` per
//! layer period plus `stem_residual.wav` (32-bit float, summing back to the input, each with cue
//! points), `strata.jams`, `strata_markers.mid`, `labels_<scale>s.txt` per layer (Audacity) and
//! `events.csv`.
//!
//! # Guarantees
//!
//! * **Bounded memory.** The input is read three times as a stream (analysis, stems, residual);
//!   nothing holds the whole signal, so an hour-long take needs no more memory than a minute.
//! * **All or nothing.** Everything is written into a hidden staging folder beside the
//!   destination, which is renamed into place only when complete. A failure (a full disk, an
//!   unwritable folder, a corrupt input) removes the staging folder and leaves the destination
//!   as it was. The input file is only ever read.
//! * **No silent overwrite.** A destination holding anything is refused with
//!   [`ExportError::DestinationExists`] unless the request says to replace it, and even then only
//!   if it is an earlier Strata export (it holds `strata.json`); anything else is never replaced.
//! * **Checked sums.** The residual is computed from the stems as they are written, and the job
//!   checks that stems plus residual give back every input sample to within [`SUM_TOLERANCE`].

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::stems::{self, BandProfile, StemSplitter};
use crate::audio_file::{AudioFile, AudioFileError};
use crate::engine::{Engine, EngineError};
use crate::inference::ModelSet;
use crate::layers::patterns::{layer_with_period, Trace};
use crate::layers::{Analysis, Pattern};

/// The largest difference allowed between an input sample and the sum of its stems, as a
/// fraction of full scale.
pub const SUM_TOLERANCE: f64 = 1e-6;

/// The file that marks a folder as a Strata export (the only kind ever replaced).
pub const ANALYSIS_FILE: &str = "strata.json";

/// What to export, and where.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The audio file to export (WAV, FLAC, MP3, OGG).
    pub input: PathBuf,
    /// The export folder. It is created; if it exists it must be empty, or `replace` must be set
    /// and it must be an earlier Strata export.
    pub dest: PathBuf,
    /// Replace an earlier Strata export at `dest`.
    pub replace: bool,
    /// The name recorded as the analysis' source (default: the input's file name).
    pub source_name: Option<String>,
    /// The tempo in BPM, to express periods in beats and bars.
    pub tempo_bpm: Option<f64>,
    /// Beats per bar (with the tempo).
    pub beats_per_bar: f64,
    /// The period (seconds) of the pattern layer to highlight in the picture: the one the user
    /// selected in the editor.
    pub highlight_period_s: Option<f64>,
}

/// The steps of a job, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStep {
    Analysing,
    SplittingStems,
    Residual,
    Finishing,
}

impl ExportStep {
    pub fn describe(self) -> &'static str {
        match self {
            ExportStep::Analysing => "analysing",
            ExportStep::SplittingStems => "splitting stems",
            ExportStep::Residual => "writing the residual and checking the sum",
            ExportStep::Finishing => "writing annotations",
        }
    }
}

/// How far a job has got, readable from any thread while it runs.
#[derive(Debug, Default)]
pub struct ExportProgress {
    /// The current step (index into the [`ExportStep`] order; 0 before the start).
    step: AtomicU64,
    /// Input seconds done in the current step, as f64 bits.
    done_s_bits: AtomicU64,
    /// The input's length in seconds, as f64 bits (0 while unknown).
    total_s_bits: AtomicU64,
    /// Set by anyone to stop the job; it stops at the next block and cleans up.
    cancel: AtomicBool,
}

impl ExportProgress {
    pub fn new() -> Self {
        Self::default()
    }

    fn set(&self, step: ExportStep, done_s: f64) {
        self.step.store(step as u64, Ordering::Relaxed);
        self.done_s_bits.store(done_s.to_bits(), Ordering::Relaxed);
    }

    /// The current step and the fraction of the input it has done (0..1; 0 while the length is
    /// unknown).
    pub fn get(&self) -> (ExportStep, f64) {
        let step = match self.step.load(Ordering::Relaxed) {
            0 => ExportStep::Analysing,
            1 => ExportStep::SplittingStems,
            2 => ExportStep::Residual,
            _ => ExportStep::Finishing,
        };
        let done = f64::from_bits(self.done_s_bits.load(Ordering::Relaxed));
        let total = f64::from_bits(self.total_s_bits.load(Ordering::Relaxed));
        (step, if total > 0.0 { (done / total).clamp(0.0, 1.0) } else { 0.0 })
    }

    /// The input's length in seconds, once known.
    pub fn total_s(&self) -> Option<f64> {
        Some(f64::from_bits(self.total_s_bits.load(Ordering::Relaxed))).filter(|t| *t > 0.0)
    }

    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    fn check_cancelled(&self) -> Result<(), ExportError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(ExportError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Everything that can stop an export, each saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path} already holds an export; choose another folder, or replace it")]
    DestinationExists { path: PathBuf },
    #[error("{path} holds files that are not a Strata export; choose a new or empty folder")]
    DestinationNotAnExport { path: PathBuf },
    #[error("the disk holding {path} is full: free some space and export again")]
    DiskFull { path: PathBuf },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: std::io::Error },
    #[error(transparent)]
    Input(#[from] AudioFileError),
    #[error("{path} holds no audio samples")]
    NoAudio { path: PathBuf },
    #[error("the analysis failed: {0}")]
    Analysis(#[from] EngineError),
    #[error("drawing the picture failed: {0}")]
    Picture(#[from] crate::picture::PictureError),
    #[error("reading back {path}: {reason}")]
    ReadBack { path: PathBuf, reason: String },
    #[error("the stems do not sum back to the input: sample {frame} is off by {error:e}")]
    SumMismatch { frame: u64, error: f64 },
    #[error("{path} changed while it was exported (its length went from {before} to {after} frames)")]
    InputChanged { path: PathBuf, before: u64, after: u64 },
    #[error("the export was cancelled")]
    Cancelled,
}

impl ExportError {
    /// A write error, told apart into a full disk and anything else.
    fn write(path: &Path, source: std::io::Error) -> Self {
        if is_disk_full(&source) {
            ExportError::DiskFull { path: path.to_owned() }
        } else {
            ExportError::Write { path: path.to_owned(), reason: source }
        }
    }

    /// Names a file in the staging folder by where it was going (the staging folder is hidden
    /// and gone by the time the user reads the message).
    fn in_destination(self, staging: &Path, dest: &Path) -> Self {
        let moved = |p: PathBuf| p.strip_prefix(staging).map(|rel| dest.join(rel)).unwrap_or(p);
        match self {
            ExportError::DiskFull { path } => ExportError::DiskFull { path: moved(path) },
            ExportError::Write { path, reason } => ExportError::Write { path: moved(path), reason },
            ExportError::ReadBack { path, reason } => ExportError::ReadBack { path: moved(path), reason },
            other => other,
        }
    }

    fn wav(path: &Path, e: hound::Error) -> Self {
        match e {
            hound::Error::IoError(io) => Self::write(path, io),
            other => Self::Write { path: path.to_owned(), reason: std::io::Error::other(other.to_string()) },
        }
    }
}

/// Whether a write failed for want of space: ENOSPC, or EDQUOT (the user's quota is used up).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28) | Some(122))
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// The export folder.
    pub dest: PathBuf,
    /// The files in it.
    pub files: Vec<String>,
    /// The analysis that was exported.
    pub analysis: Analysis,
    /// The stems' periods in seconds, shortest first (the residual is not listed).
    pub stem_periods_s: Vec<f64>,
    /// The largest difference between an input sample and the sum of its stems.
    pub max_sum_error: f64,
}

/// The analysis of a whole file, read as a stream.
pub struct FileAnalysis {
    pub analysis: Analysis,
    /// What the layer search weighed (`strata analyze --candidates` writes it, to train the
    /// period and attribution heads on).
    pub trace: Trace,
    pub sample_rate: u32,
    pub channels: usize,
    pub frames: u64,
}

/// Runs the analysis engine over `path`, block by block.
pub fn analyse_file(
    path: &Path,
    models: ModelSet,
    source_name: &str,
    tempo_bpm: Option<f64>,
    beats_per_bar: f64,
    progress: &ExportProgress,
) -> Result<FileAnalysis, ExportError> {
    let mut file = AudioFile::open(path)?;
    if let Some(d) = file.duration_s() {
        progress.total_s_bits.store(d.to_bits(), Ordering::Relaxed);
    }
    let mut engine = Engine::new(models, file.sample_rate())?;
    let mut block = Vec::new();
    let mut updates = Vec::new();
    let mut frames = 0_u64;
    while file.read_mono(&mut block)? {
        frames += block.len() as u64;
        updates.clear();
        engine.push(&block, &mut updates)?;
        progress.set(ExportStep::Analysing, file.position_s());
        progress.check_cancelled()?;
    }
    engine.finish(&mut updates)?;
    if frames == 0 {
        return Err(ExportError::NoAudio { path: path.to_owned() });
    }
    let seconds = frames as f64 / f64::from(file.sample_rate());
    progress.total_s_bits.store(seconds.to_bits(), Ordering::Relaxed);
    let mut trace = Trace::default();
    Ok(FileAnalysis {
        analysis: engine.analysis_traced(source_name, tempo_bpm, beats_per_bar, &mut trace),
        trace,
        sample_rate: file.sample_rate(),
        channels: file.channels(),
        frames,
    })
}

/// Checks where an export may go: `Ok(true)` if `dest` holds an earlier export to replace.
pub fn check_destination(dest: &Path, replace: bool) -> Result<bool, ExportError> {
    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(false);
            }
            if !dest.join(ANALYSIS_FILE).is_file() {
                return Err(ExportError::DestinationNotAnExport { path: dest.to_owned() });
            }
            if !replace {
                return Err(ExportError::DestinationExists { path: dest.to_owned() });
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(_) if dest.exists() => Err(ExportError::DestinationNotAnExport { path: dest.to_owned() }),
        Err(e) => Err(ExportError::write(dest, e)),
    }
}

/// Exports `request.input` into `request.dest` (see the module docs for what and how).
pub fn export(request: &ExportRequest, models: ModelSet, progress: &ExportProgress) -> Result<ExportSummary, ExportError> {
    let dest = &request.dest;
    let replacing = check_destination(dest, request.replace)?;
    // Make the staging folder first, so an unwritable place fails before the long part.
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| ExportError::write(parent, e))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "export".into());
    let staging = unique_sibling(parent, &name, "partial");
    std::fs::create_dir(&staging).map_err(|e| ExportError::write(&staging, e))?;

    let result = write_export(request, models, progress, &staging).map_err(|e| e.in_destination(&staging, dest));
    let result = result.and_then(|summary| {
        move_into_place(&staging, dest, replacing, parent, &name)?;
        Ok(ExportSummary { dest: dest.clone(), ..summary })
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// A hidden name beside `name` in `parent` that nothing else uses.
fn unique_sibling(parent: &Path, name: &str, what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    parent.join(format!(".{name}.strata-{what}-{}-{n}", std::process::id()))
}

/// Renames the finished staging folder to `dest`; an earlier export there is moved aside first
/// and removed only once the new one is in place.
fn move_into_place(staging: &Path, dest: &Path, replacing: bool, parent: &Path, name: &str) -> Result<(), ExportError> {
    let mut old = None;
    if replacing {
        let aside = unique_sibling(parent, name, "old");
        std::fs::rename(dest, &aside).map_err(|e| ExportError::write(dest, e))?;
        old = Some(aside);
    } else if dest.is_dir() {
        // An empty folder (a user may have made it to export into).
        std::fs::remove_dir(dest).map_err(|e| ExportError::write(dest, e))?;
    }
    if let Err(e) = std::fs::rename(staging, dest) {
        if let Some(aside) = &old {
            let _ = std::fs::rename(aside, dest);
        }
        return Err(ExportError::write(dest, e));
    }
    if let Some(aside) = old {
        let _ = std::fs::remove_dir_all(aside);
    }
    Ok(())
}

fn write_export(
    request: &ExportRequest,
    models: ModelSet,
    progress: &ExportProgress,
    dir: &Path,
) -> Result<ExportSummary, ExportError> {
    use super::{jams, midi, write_audacity_labels, write_csv};
    let input = &request.input;
    let source = request
        .source_name
        .clone()
        .unwrap_or_else(|| input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let fa = analyse_file(input, models, &source, request.tempo_bpm, request.beats_per_bar, progress)?;
    let analysis = fa.analysis;
    let rate = fa.sample_rate;

    // One stem per pattern layer that repeats at least twice, each taking from its layer's own
    // bands (see `stems::PROFILE_EXPONENT`).
    let periods = stems::periods_that_repeat(
        &stems::distinct_periods(analysis.patterns.iter().map(|p| p.period_s), rate),
        rate,
        fa.frames,
    );
    let stem_patterns: Vec<Option<&Pattern>> = periods.iter().map(|&p| layer_with_period(&analysis.patterns, p)).collect();
    let stem_names: Vec<String> = periods
        .iter()
        .zip(&stem_patterns)
        .enumerate()
        .map(|(i, (p, pattern))| match pattern {
            Some(pattern) => format!("stem_{}_{p:.3}s_{}.wav", i + 1, pattern.register),
            None => format!("stem_{}_{p:.3}s.wav", i + 1),
        })
        .collect();
    let profiles: Vec<Option<BandProfile>> = stem_patterns
        .iter()
        .map(|p| p.map(|p| BandProfile { upper_edges_hz: &analysis.profile_bands_hz, weights: &p.profile }))
        .collect();
    split_stems(input, dir, &stem_names, &periods, &profiles, fa.frames, progress)?;
    let max_sum_error = write_residual(input, dir, &stem_names, fa.frames, progress)?;

    progress.set(ExportStep::Finishing, 0.0);
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<(), ExportError> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| ExportError::write(&path, e))?;
        files.push(name.to_owned());
        Ok(())
    };
    let json = serde_json::to_string_pretty(&analysis).map_err(|e| ExportError::write(dir, e.into()))?;
    write(ANALYSIS_FILE, json.as_bytes())?;
    let jams_text = serde_json::to_string_pretty(&jams(&analysis)).map_err(|e| ExportError::write(dir, e.into()))?;
    write("strata.jams", jams_text.as_bytes())?;
    let midi_bytes = midi(&analysis).map_err(|e| ExportError::write(dir, e))?;
    write("strata_markers.mid", &midi_bytes)?;
    crate::picture::draw(&analysis, request.highlight_period_s, &dir.join("strata.png"))?;
    files.push("strata.png".into());
    files.extend(write_audacity_labels(&analysis, dir).map_err(|e| ExportError::write(dir, e))?);
    write_csv(&analysis, &dir.join("events.csv")).map_err(|e| ExportError::write(&dir.join("events.csv"), e))?;
    files.push("events.csv".into());

    // Cue points: a stem carries its pattern layer's changed stretches (start and end) and the
    // segments of its lane; the residual carries every change of every layer.
    let frame = |t: f64| (t.max(0.0) * f64::from(rate)).round() as u32;
    for (name, pattern) in stem_names.iter().zip(&stem_patterns) {
        let mut cues: Vec<(u32, String)> = Vec::new();
        if let Some(p) = pattern {
            cues.extend(change_cues(p, &frame));
            for layer in analysis.layers.iter().filter(|l| l.scale_s == p.scale_s) {
                cues.extend(layer.segments.iter().map(|s| (frame(s.start_s), format!("{} s layer: {}", layer.scale_s, s.label))));
            }
        }
        cues.sort();
        let path = dir.join(name);
        super::add_wav_cues(&path, &cues).map_err(|e| ExportError::write(&path, e))?;
        files.push(name.clone());
    }
    let mut cues: Vec<(u32, String)> = analysis.patterns.iter().flat_map(|p| change_cues(p, &frame)).collect();
    cues.sort();
    let residual = dir.join(RESIDUAL_FILE);
    super::add_wav_cues(&residual, &cues).map_err(|e| ExportError::write(&residual, e))?;
    files.push(RESIDUAL_FILE.into());
    files.sort();
    Ok(ExportSummary { dest: dir.to_owned(), files, analysis, stem_periods_s: periods, max_sum_error })
}

/// Cue points at the start and end of each of a pattern layer's changed stretches.
fn change_cues(p: &Pattern, frame: &impl Fn(f64) -> u32) -> Vec<(u32, String)> {
    let name = super::pattern_name(p);
    p.changes
        .iter()
        .flat_map(|c| {
            [
                (frame(c.start_s), format!("{name}: change {:.2} starts", c.strength)),
                (frame(c.end_s), format!("{name}: change ends")),
            ]
        })
        .collect()
}

/// The residual stem's file name.
pub const RESIDUAL_FILE: &str = "stem_residual.wav";

fn float_wav(path: &Path, channels: usize, sample_rate: u32) -> Result<hound::WavWriter<BufWriter<std::fs::File>>, ExportError> {
    let spec = hound::WavSpec {
        channels: channels as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    hound::WavWriter::create(path, spec).map_err(|e| ExportError::wav(path, e))
}

/// Writes `channels[c][..n]` interleaved.
fn write_interleaved(w: &mut hound::WavWriter<BufWriter<std::fs::File>>, channels: &[Vec<f32>], n: usize, path: &Path) -> Result<(), ExportError> {
    for i in 0..n {
        for c in channels {
            w.write_sample(c[i]).map_err(|e| ExportError::wav(path, e))?;
        }
    }
    Ok(())
}

/// Second pass: the stems, written as they come out of the splitter.
/// `profiles`: where each stem's layer sounds, where known.
fn split_stems(
    input: &Path,
    dir: &Path,
    names: &[String],
    periods: &[f64],
    profiles: &[Option<BandProfile>],
    frames: u64,
    progress: &ExportProgress,
) -> Result<(), ExportError> {
    let mut file = AudioFile::open(input)?;
    let channels = file.channels();
    let rate = file.sample_rate();
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    let mut writers = paths.iter().map(|p| float_wav(p, channels, rate)).collect::<Result<Vec<_>, _>>()?;
    let mut splitter = StemSplitter::with_profiles(channels, rate, periods, profiles);
    let mut block: Vec<Vec<f32>> = Vec::new();
    let mut out: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); channels]; periods.len()];
    let mut read = 0_u64;
    let flush = |out: &mut Vec<Vec<Vec<f32>>>, writers: &mut Vec<hound::WavWriter<BufWriter<std::fs::File>>>| -> Result<(), ExportError> {
        for ((stem, w), path) in out.iter_mut().zip(writers.iter_mut()).zip(&paths) {
            let n = stem.first().map_or(0, Vec::len);
            write_interleaved(w, stem, n, path)?;
            for c in stem.iter_mut() {
                c.clear();
            }
        }
        Ok(())
    };
    loop {
        for c in &mut block {
            c.clear();
        }
        if !file.read_planar(&mut block)? {
            break;
        }
        read += block.first().map_or(0, |c| c.len() as u64);
        let slices: Vec<&[f32]> = block.iter().map(Vec::as_slice).collect();
        splitter.push(&slices, &mut out);
        flush(&mut out, &mut writers)?;
        progress.set(ExportStep::SplittingStems, read as f64 / f64::from(rate));
        progress.check_cancelled()?;
    }
    if read != frames {
        return Err(ExportError::InputChanged { path: input.to_owned(), before: frames, after: read });
    }
    while splitter.finish_some(&mut out) {
        flush(&mut out, &mut writers)?;
    }
    flush(&mut out, &mut writers)?;
    for (w, path) in writers.into_iter().zip(&paths) {
        w.finalize().map_err(|e| ExportError::wav(path, e))?;
    }
    Ok(())
}

/// Third pass: reads the input and the stems as written, writes `input - sum(stems)` as the
/// residual, and checks that the sum comes back. Returns the largest error.
fn write_residual(input: &Path, dir: &Path, names: &[String], frames: u64, progress: &ExportProgress) -> Result<f64, ExportError> {
    let mut file = AudioFile::open(input)?;
    let channels = file.channels();
    let rate = file.sample_rate();
    let mut readers = Vec::new();
    for name in names {
        let path = dir.join(name);
        let reader = hound::WavReader::open(&path).map_err(|e| ExportError::ReadBack { path: path.clone(), reason: e.to_string() })?;
        readers.push((path, reader.into_samples::<f32>()));
    }
    let residual_path = dir.join(RESIDUAL_FILE);
    let mut writer = float_wav(&residual_path, channels, rate)?;
    let mut block: Vec<Vec<f32>> = Vec::new();
    let mut stem_block: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); channels]; names.len()];
    let mut residual: Vec<Vec<f32>> = vec![Vec::new(); channels];
    let mut max_error = 0.0_f64;
    let mut read = 0_u64;
    loop {
        for c in &mut block {
            c.clear();
        }
        if !file.read_planar(&mut block)? {
            break;
        }
        let n = block.first().map_or(0, Vec::len);
        for ((path, samples), stem) in readers.iter_mut().zip(&mut stem_block) {
            for c in stem.iter_mut() {
                c.clear();
            }
            for _ in 0..n {
                for c in stem.iter_mut() {
                    let s = samples
                        .next()
                        .ok_or_else(|| ExportError::ReadBack { path: path.clone(), reason: "it is shorter than the input".into() })?
                        .map_err(|e| ExportError::ReadBack { path: path.clone(), reason: e.to_string() })?;
                    c.push(s);
                }
            }
        }
        for c in 0..channels {
            let stems_c: Vec<&[f32]> = stem_block.iter().map(|s| s[c].as_slice()).collect();
            stems::residual_of(&block[c], &stems_c, &mut residual[c]);
            for i in 0..n {
                let x = block[c][i];
                let x = if x.is_finite() { f64::from(x) } else { 0.0 };
                let sum: f64 = stems_c.iter().map(|s| f64::from(s[i])).sum::<f64>() + f64::from(residual[c][i]);
                let error = (sum - x).abs();
                if error > max_error {
                    max_error = error;
                    if error > SUM_TOLERANCE {
                        return Err(ExportError::SumMismatch { frame: read + i as u64, error });
                    }
                }
            }
        }
        write_interleaved(&mut writer, &residual, n, &residual_path)?;
        read += n as u64;
        progress.set(ExportStep::Residual, read as f64 / f64::from(rate));
        progress.check_cancelled()?;
    }
    if read != frames {
        return Err(ExportError::InputChanged { path: input.to_owned(), before: frames, after: read });
    }
    writer.finalize().map_err(|e| ExportError::wav(&residual_path, e))?;
    Ok(max_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_as_such() {
        let path = Path::new("/music/export");
        let full = ExportError::write(path, std::io::Error::from_raw_os_error(28));
        assert_eq!(full.to_string(), "the disk holding /music/export is full: free some space and export again");
        let denied = ExportError::write(path, std::io::Error::from_raw_os_error(13));
        assert!(denied.to_string().starts_with("cannot write /music/export: "), "{denied}");
    }

    #[test]
    fn only_empty_folders_and_earlier_exports_are_export_destinations() {
        let dir = std::env::temp_dir().join(format!("strata-job-dest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!check_destination(&dir, false).unwrap(), "a missing folder");
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!check_destination(&dir, false).unwrap(), "an empty folder");
        std::fs::write(dir.join(ANALYSIS_FILE), "{}").unwrap();
        assert!(matches!(check_destination(&dir, false), Err(ExportError::DestinationExists { .. })));
        assert!(check_destination(&dir, true).unwrap(), "an earlier export, replace asked");
        std::fs::remove_file(dir.join(ANALYSIS_FILE)).unwrap();
        std::fs::write(dir.join("song.wav"), "x").unwrap();
        assert!(matches!(check_destination(&dir, true), Err(ExportError::DestinationNotAnExport { .. })));
        assert!(matches!(check_destination(&dir.join("song.wav"), true), Err(ExportError::DestinationNotAnExport { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
