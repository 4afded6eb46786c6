//! `strata._strata`: the engine behind the `strata` Python package (`python/strata/`).
//!
//! Everything here is the CLI's own code ([`strata::export::job`], [`strata::engine::Engine`]),
//! so `strata.analyze(path)` is byte for byte what `strata analyze` writes. Results cross into
//! Python as `strata.json` text (parsed there with `json.loads`), samples as little-endian
//! float32 bytes, so nothing here depends on NumPy's C API. The long calls release the GIL;
//! every error becomes a `strata.StrataError` whose message is the CLI's one-line reason.

use std::path::PathBuf;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use strata::engine::Engine;
use strata::export::job::{analyse_file, export as export_job, ExportProgress, ExportRequest};
use strata::inference::{locate_models, runtime, ModelSet, Workload};
use strata::layers::LayerFrame;

create_exception!(_strata, StrataError, PyException, "Strata could not do what was asked; the message says why, in one line.");

/// The CLI's one-line reason: the error and every error under it, joined by ": ".
fn one_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}

fn error(context: &str, e: &dyn std::error::Error) -> PyErr {
    StrataError::new_err(format!("{context}{}", one_line(e)))
}

/// Loads the models (from `models`, else where the CLI finds them: `STRATA_MODELS`, the
/// package's own `strata-models/`) on ONNX Runtime (the package's own library, else
/// `STRATA_ORT_DYLIB`), for `workload`.
fn load_models(models: Option<PathBuf>, workload: Workload) -> PyResult<ModelSet> {
    let rt = runtime().map_err(|e| error("", e))?;
    let dir = match models {
        Some(dir) => dir,
        None => locate_models().map_err(|e| error("", &e))?,
    };
    ModelSet::load(&dir, rt, workload).map_err(|e| error("", &e))
}

fn check_tempo(tempo_bpm: Option<f64>) -> PyResult<()> {
    match tempo_bpm {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            Err(StrataError::new_err(format!("tempo_bpm {t} is not a positive number of beats per minute")))
        }
        _ => Ok(()),
    }
}

/// Samples from little-endian float32 bytes.
fn samples_from_bytes(bytes: &[u8]) -> PyResult<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StrataError::new_err(format!("{} bytes of samples is not a whole number of float32 samples", bytes.len())));
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// `strata.json` (as text) of the audio file at `path`, exactly as `strata analyze` writes it.
#[pyfunction]
#[pyo3(signature = (path, tempo_bpm=None, beats_per_bar=4.0, models=None))]
fn analyze_file(py: Python<'_>, path: PathBuf, tempo_bpm: Option<f64>, beats_per_bar: f64, models: Option<PathBuf>) -> PyResult<String> {
    check_tempo(tempo_bpm)?;
    py.detach(|| {
        let models = load_models(models, Workload::Batched)?;
        let source = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let analysis = analyse_file(&path, models, &source, tempo_bpm, beats_per_bar, &ExportProgress::new())
            .map_err(|e| error(&format!("analysing {}: ", path.display()), &e))?
            .analysis;
        serde_json::to_string_pretty(&analysis).map_err(|e| error("", &e))
    })
}

/// `strata.json` (as text) of mono float32 samples (little-endian bytes) at `sample_rate`.
#[pyfunction]
#[pyo3(signature = (samples, sample_rate, source="array", tempo_bpm=None, beats_per_bar=4.0, models=None))]
fn analyze_samples(
    py: Python<'_>,
    samples: &[u8],
    sample_rate: u32,
    source: &str,
    tempo_bpm: Option<f64>,
    beats_per_bar: f64,
    models: Option<PathBuf>,
) -> PyResult<String> {
    check_tempo(tempo_bpm)?;
    let samples = samples_from_bytes(samples)?;
    py.detach(|| {
        if samples.is_empty() {
            return Err(StrataError::new_err("the array holds no audio samples"));
        }
        let mut engine = Engine::new(load_models(models, Workload::Batched)?, sample_rate).map_err(|e| error("", &e))?;
        let mut updates = Vec::new();
        engine.push(&samples, &mut updates).map_err(|e| error("the analysis failed: ", &e))?;
        engine.finish(&mut updates).map_err(|e| error("the analysis failed: ", &e))?;
        serde_json::to_string_pretty(&engine.analysis(source, tempo_bpm, beats_per_bar)).map_err(|e| error("", &e))
    })
}

/// Exports `path` into `out_dir` as `strata export` does; returns (folder, files, stem periods
/// in seconds, the largest stem sum error).
#[pyfunction]
#[pyo3(signature = (path, out_dir, replace=false, tempo_bpm=None, beats_per_bar=4.0, models=None))]
fn export(
    py: Python<'_>,
    path: PathBuf,
    out_dir: PathBuf,
    replace: bool,
    tempo_bpm: Option<f64>,
    beats_per_bar: f64,
    models: Option<PathBuf>,
) -> PyResult<(PathBuf, Vec<String>, Vec<f64>, f64)> {
    check_tempo(tempo_bpm)?;
    py.detach(|| {
        let models = load_models(models, Workload::Batched)?;
        let request = ExportRequest {
            input: path.clone(),
            dest: out_dir,
            replace,
            source_name: None,
            tempo_bpm,
            beats_per_bar,
            highlight_period_s: None,
        };
        let summary = export_job(&request, models, &ExportProgress::new())
            .map_err(|e| error(&format!("exporting {}: ", path.display()), &e))?;
        Ok((summary.dest, summary.files, summary.stem_periods_s, summary.max_sum_error))
    })
}

/// The streaming engine: blocks of mono samples in, layer frames out as they complete, the
/// same frames (and in the end the same analysis) as the whole file at once.
#[pyclass(module = "strata._strata")]
struct Analyzer {
    engine: Engine,
    updates: Vec<LayerFrame>,
    finished: bool,
}

fn frames_to_py<'py>(py: Python<'py>, frames: &[LayerFrame]) -> PyResult<Vec<Bound<'py, PyDict>>> {
    frames
        .iter()
        .map(|f| {
            let d = PyDict::new(py);
            d.set_item("level", f.level)?;
            d.set_item("time_s", f.time_s)?;
            d.set_item("token", f.token)?;
            d.set_item("surprise", f.surprise)?;
            d.set_item("change", f.change)?;
            Ok(d)
        })
        .collect()
}

#[pymethods]
impl Analyzer {
    #[new]
    #[pyo3(signature = (sample_rate, models=None))]
    fn new(py: Python<'_>, sample_rate: u32, models: Option<PathBuf>) -> PyResult<Self> {
        let engine = py.detach(|| {
            // Streaming steps are tiny: they run on the CPU, as in the plugin.
            Engine::new(load_models(models, Workload::Streaming)?, sample_rate).map_err(|e| error("", &e))
        })?;
        Ok(Self { engine, updates: Vec::new(), finished: false })
    }

    /// Feeds mono float32 samples (little-endian bytes); returns the layer frames they completed.
    fn push_bytes<'py>(&mut self, py: Python<'py>, samples: &[u8]) -> PyResult<Vec<Bound<'py, PyDict>>> {
        if self.finished {
            return Err(StrataError::new_err("this Analyzer is finished; start a new one"));
        }
        let samples = samples_from_bytes(samples)?;
        self.updates.clear();
        let (engine, updates) = (&mut self.engine, &mut self.updates);
        py.detach(|| engine.push(&samples, updates)).map_err(|e| error("the analysis failed: ", &e))?;
        frames_to_py(py, &self.updates)
    }

    /// Ends the stream: the frames still owed (the last partial windows).
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.updates.clear();
        if !self.finished {
            let (engine, updates) = (&mut self.engine, &mut self.updates);
            py.detach(|| engine.finish(updates)).map_err(|e| error("the analysis failed: ", &e))?;
            self.finished = true;
        }
        frames_to_py(py, &self.updates)
    }

    /// Seconds of audio pushed so far.
    #[getter]
    fn duration_s(&self) -> f64 {
        self.engine.duration_s()
    }

    /// `strata.json` (as text) of everything pushed so far.
    #[pyo3(signature = (source="stream", tempo_bpm=None, beats_per_bar=4.0))]
    fn analysis_json(&self, py: Python<'_>, source: &str, tempo_bpm: Option<f64>, beats_per_bar: f64) -> PyResult<String> {
        check_tempo(tempo_bpm)?;
        let engine = &self.engine;
        py.detach(|| serde_json::to_string_pretty(&engine.analysis(source, tempo_bpm, beats_per_bar)).map_err(|e| error("", &e)))
    }
}

/// The JAMS document (as text) of a `strata.json` document (as text), exactly as `strata export`
/// writes it.
#[pyfunction]
fn jams_json(analysis: &str) -> PyResult<String> {
    let analysis: strata::layers::Analysis =
        serde_json::from_str(analysis).map_err(|e| StrataError::new_err(format!("not a strata.json document: {e}")))?;
    serde_json::to_string_pretty(&strata::export::jams(&analysis)).map_err(|e| error("", &e))
}

/// ONNX Runtime's version and backend, as the CLI prints them.
#[pyfunction]
fn runtime_summary() -> PyResult<String> {
    runtime().map(|rt| rt.summary()).map_err(|e| error("", e))
}

#[pymodule]
fn _strata(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("StrataError", m.py().get_type::<StrataError>())?;
    m.add_function(wrap_pyfunction!(analyze_file, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_samples, m)?)?;
    m.add_function(wrap_pyfunction!(export, m)?)?;
    m.add_function(wrap_pyfunction!(jams_json, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_summary, m)?)?;
    m.add_class::<Analyzer>()?;
    Ok(())
}
