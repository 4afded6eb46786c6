//! Strata's trained models: the manifest that describes them and the ONNX sessions that run them.
//!
//! A model folder holds `manifest.json` and the ONNX files it lists (with their sha256), and
//! the period head's weights (JSON) when it names one. It is
//! found, in order, at `STRATA_MODELS`, beside Strata's binary in `strata-models/` (where
//! `cargo xtask bundle` puts it), and, for development builds, the workspace's `models/`. Every
//! problem (a missing or corrupt file, a wrong checksum, a session that will not build) is an
//! error naming the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::session::Session;

use crate::layers::heads::{AttributionHead, ChangeHead, PeriodHead};
use ort::value::TensorRef;
use sha2::{Digest, Sha256};

use super::runtime::{Backend, Runtime, RuntimeError, Workload};
use crate::dsp::logmel::LogMelConfig;

/// Environment variable naming a model folder.
pub const ENV_MODELS: &str = "STRATA_MODELS";
/// Name of the model folder beside a binary.
pub const BUNDLED_MODELS_DIR: &str = "strata-models";
/// The manifest format this code reads.
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, serde::Deserialize)]
pub struct FrontendSpec {
    #[serde(flatten)]
    pub logmel: LogMelConfig,
    pub file: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ScaleSpec {
    pub scale_s: f64,
    pub window_frames: usize,
    pub hop_frames: usize,
    pub encoder: String,
    pub tower: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct TowerSpec {
    pub variant: String,
    pub hidden: usize,
    pub below_dim: usize,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ChangeDetectionSpec {
    pub surprise_history: usize,
    pub surprise_z: f64,
    pub min_history: usize,
    pub merge_window_s: f64,
}

/// `manifest.json`: everything the Rust side needs to know; nothing about the models is
/// hard-coded here.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub sample_rate: u32,
    pub frontend: FrontendSpec,
    pub frame_rate: f64,
    pub frame_dim: usize,
    pub vector_dim: usize,
    pub codebook_size: usize,
    pub scales: Vec<ScaleSpec>,
    pub tower: TowerSpec,
    pub change_detection: ChangeDetectionSpec,
    /// The period head's file (JSON weights, see [`crate::layers::heads`]), if the models have
    /// one.
    #[serde(default)]
    pub period_head: Option<String>,
    /// The change head's file (JSON weights, see [`crate::layers::heads`]), if the models have
    /// one.
    #[serde(default)]
    pub change_head: Option<String>,
    /// The attribution head's file (JSON weights, see [`crate::layers::heads`]), if the models
    /// have one.
    #[serde(default)]
    pub attribution_head: Option<String>,
    pub files: BTreeMap<String, String>,
}

/// Everything that can go wrong with the models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("no Strata models found; looked in: {searched}. Set {ENV_MODELS} to a folder holding manifest.json", searched = searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound { searched: Vec<PathBuf> },
    #[error("{ENV_MODELS} names {path}, which has no manifest.json")]
    EnvPathMissing { path: PathBuf },
    #[error("cannot read the model manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("model file {path} is missing")]
    FileMissing { path: PathBuf },
    #[error("model file {path} is corrupt: its sha256 is {actual}, the manifest says {expected}")]
    Checksum { path: PathBuf, expected: String, actual: String },
    #[error("model file {path} is not listed in the manifest's checksums")]
    Unlisted { path: PathBuf },
    #[error("ONNX Runtime could not load model file {path}: {reason}")]
    Session { path: PathBuf, reason: String },
    #[error("model file {path} is not a usable head: {reason}")]
    Head { path: PathBuf, reason: String },
    #[error("running {what} failed: {reason}")]
    Run { what: String, reason: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl Manifest {
    /// Reads and checks `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| ModelError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(ModelError::Manifest {
                path,
                reason: format!("format {} (this Strata reads format {MANIFEST_FORMAT})", manifest.format),
            });
        }
        if manifest.scales.is_empty() || manifest.scales.iter().any(|s| s.hop_frames == 0 || s.window_frames == 0) {
            return Err(ModelError::Manifest {
                path,
                reason: "it lists no scales, or a scale with a zero window or hop".to_owned(),
            });
        }
        Ok(manifest)
    }

    /// Log-mel settings of the front end.
    pub fn logmel(&self) -> &LogMelConfig {
        &self.frontend.logmel
    }
}

/// Finds the model folder.
pub fn locate_models() -> Result<PathBuf, ModelError> {
    if let Some(dir) = std::env::var_os(ENV_MODELS).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.join("manifest.json").is_file() {
            Ok(dir)
        } else {
            Err(ModelError::EnvPathMissing { path: dir })
        };
    }
    let mut searched = Vec::new();
    for base in super::runtime::search_folders() {
        for candidate in [base.join(BUNDLED_MODELS_DIR), base.join("..").join("Resources").join(BUNDLED_MODELS_DIR)] {
            if candidate.join("manifest.json").is_file() {
                return Ok(candidate);
            }
            searched.push(candidate);
        }
    }
    let dev = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("models");
    if dev.join("manifest.json").is_file() {
        return Ok(dev);
    }
    searched.push(dev);
    Err(ModelError::NotFound { searched })
}

/// Verifies `dir/relative` against the manifest's sha256 and returns its bytes.
fn verified_bytes(manifest: &Manifest, dir: &Path, relative: &str) -> Result<Vec<u8>, ModelError> {
    let path = dir.join(relative);
    let expected = manifest
        .files
        .get(relative)
        .ok_or_else(|| ModelError::Unlisted { path: path.clone() })?;
    let bytes = std::fs::read(&path).map_err(|_| ModelError::FileMissing { path: path.clone() })?;
    let actual = format!("{:x}", Sha256::digest(&bytes));
    if &actual != expected {
        return Err(ModelError::Checksum {
            path,
            expected: expected.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// The head the manifest names at `relative` (if any), its checksum verified and its trees read
/// by `read`; a head that cannot be read is an error naming its file.
fn head<T, E: std::fmt::Display>(
    manifest: &Manifest,
    dir: &Path,
    relative: Option<&str>,
    read: impl Fn(&str) -> Result<T, E>,
) -> Result<Option<Arc<T>>, ModelError> {
    let Some(relative) = relative else { return Ok(None) };
    let bytes = verified_bytes(manifest, dir, relative)?;
    let bad = |reason: String| ModelError::Head { path: dir.join(relative), reason };
    let text = String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
    Ok(Some(Arc::new(read(&text).map_err(|e| bad(e.to_string()))?)))
}

/// The loaded models, ready to run.
pub struct ModelSet {
    pub manifest: Manifest,
    pub dir: PathBuf,
    /// Where the encoders run (batched work may go to CUDA).
    pub encoder_backend: Backend,
    /// The learned scorer of candidate periods, if the manifest names one.
    pub period_head: Option<Arc<PeriodHead>>,
    /// The learned scorer of moments as change edges, if the manifest names one.
    pub change_head: Option<Arc<ChangeHead>>,
    /// The learned judge of which layer a change belongs to, if the manifest names one.
    pub attribution_head: Option<Arc<AttributionHead>>,
    frontend: Session,
    encoders: Vec<Session>,
    towers: Vec<Session>,
}

impl std::fmt::Debug for ModelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSet").field("id", &self.manifest.id).field("dir", &self.dir).finish()
    }
}

impl ModelSet {
    /// Loads every model of `dir` on `runtime`. `workload` decides where the encoders run;
    /// the front end and the tower steps always run on the CPU (small streaming steps).
    pub fn load(dir: &Path, runtime: &Runtime, workload: Workload) -> Result<Self, ModelError> {
        Self::load_on(dir, runtime, runtime.backend_for(workload), Backend::Cpu)
    }

    /// Loads every model of `dir` with the encoders on `encoder_backend` and the tower steps on
    /// `tower_backend` (the front end stays on the CPU). [`ModelSet::load`] chooses for you;
    /// this is for measuring one provider against the other (`cargo bench --bench backends`).
    pub fn load_on(
        dir: &Path,
        runtime: &Runtime,
        encoder_backend: Backend,
        tower_backend: Backend,
    ) -> Result<Self, ModelError> {
        let manifest = Manifest::load(dir)?;
        let session = |relative: &str, backend: Backend| -> Result<Session, ModelError> {
            let bytes = verified_bytes(&manifest, dir, relative)?;
            runtime
                .session_builder(backend, 1)
                .and_then(|mut b| b.commit_from_memory(&bytes))
                .map_err(|e| ModelError::Session {
                    path: dir.join(relative),
                    reason: e.to_string(),
                })
        };
        let frontend = session(&manifest.frontend.file, Backend::Cpu)?;
        let encoders = manifest
            .scales
            .iter()
            .map(|s| session(&s.encoder, encoder_backend))
            .collect::<Result<Vec<_>, _>>()?;
        let towers = manifest
            .scales
            .iter()
            .map(|s| session(&s.tower, tower_backend))
            .collect::<Result<Vec<_>, _>>()?;
        let period_head = head(&manifest, dir, manifest.period_head.as_deref(), PeriodHead::from_json)?;
        let change_head = head(&manifest, dir, manifest.change_head.as_deref(), ChangeHead::from_json)?;
        let attribution_head = head(&manifest, dir, manifest.attribution_head.as_deref(), AttributionHead::from_json)?;
        Ok(Self {
            manifest,
            dir: dir.to_path_buf(),
            encoder_backend,
            period_head,
            change_head,
            attribution_head,
            frontend,
            encoders,
            towers,
        })
    }

    /// Frame embeddings for `frames` log-mel frames (row-major, n_mels each), appended to `out`.
    pub fn frame_embeddings(&mut self, logmel: &[f32], out: &mut Vec<f32>) -> Result<(), ModelError> {
        let n_mels = self.manifest.frontend.logmel.n_mels;
        let frames = logmel.len() / n_mels;
        if frames == 0 {
            return Ok(());
        }
        let input = TensorRef::from_array_view(([frames, n_mels], &logmel[..frames * n_mels]))
            .map_err(|e| run_error("the front end", e))?;
        let outputs = self
            .frontend
            .run(ort::inputs!["logmel" => input])
            .map_err(|e| run_error("the front end", e))?;
        let (_, data) = outputs["frame_embedding"]
            .try_extract_tensor::<f32>()
            .map_err(|e| run_error("the front end", e))?;
        out.extend_from_slice(data);
        Ok(())
    }

    /// Encodes `batch` windows of scale `scale` (each window_frames × frame_dim, row-major) and
    /// appends their vectors and tokens.
    pub fn encode(
        &mut self,
        scale: usize,
        windows: &[f32],
        vectors: &mut Vec<f32>,
        tokens: &mut Vec<u8>,
    ) -> Result<(), ModelError> {
        let w = self.manifest.scales[scale].window_frames;
        let d = self.manifest.frame_dim;
        let batch = windows.len() / (w * d);
        if batch == 0 {
            return Ok(());
        }
        // Named only when something fails, not with a string made (and freed) on every call.
        let scale_s = self.manifest.scales[scale].scale_s;
        let failed = |e: ort::Error| run_error(&format!("the {scale_s} s encoder"), e);
        let input = TensorRef::from_array_view(([batch, w, d], &windows[..batch * w * d])).map_err(failed)?;
        let outputs = self.encoders[scale].run(ort::inputs!["frames" => input]).map_err(failed)?;
        let (_, v) = outputs["vector"].try_extract_tensor::<f32>().map_err(failed)?;
        vectors.extend_from_slice(v);
        let (_, t) = outputs["token"].try_extract_tensor::<i64>().map_err(failed)?;
        tokens.extend(t.iter().map(|&t| t.clamp(0, 255) as u8));
        Ok(())
    }

    /// One tower step of `level` from its state; writes the prediction and the new state.
    pub fn tower_step(
        &mut self,
        level: usize,
        feature: &[f32],
        below: &[f32],
        state: &mut TowerState,
        prediction: &mut [f32],
    ) -> Result<(), ModelError> {
        let (vd, bd, hd) = (self.manifest.vector_dim, self.manifest.tower.below_dim, self.manifest.tower.hidden);
        // Named only when something fails (see `encode`).
        let failed = |e: ort::Error| run_error(&format!("tower level {level}"), e);
        let f = TensorRef::from_array_view(([1, vd], feature)).map_err(failed)?;
        let b = TensorRef::from_array_view(([1, bd], below)).map_err(failed)?;
        let h = TensorRef::from_array_view(([1, hd], &state.h[..])).map_err(failed)?;
        let c = TensorRef::from_array_view(([1, hd], &state.c[..])).map_err(failed)?;
        let outputs = self.towers[level]
            .run(ort::inputs!["feature" => f, "below" => b, "h" => h, "c" => c])
            .map_err(failed)?;
        let (_, p) = outputs["prediction"].try_extract_tensor::<f32>().map_err(failed)?;
        prediction.copy_from_slice(p);
        let (_, h) = outputs["h_out"].try_extract_tensor::<f32>().map_err(failed)?;
        let (_, c) = outputs["c_out"].try_extract_tensor::<f32>().map_err(failed)?;
        state.h.copy_from_slice(h);
        state.c.copy_from_slice(c);
        Ok(())
    }
}

/// The (h, c) state of one tower level.
#[derive(Debug, Clone, PartialEq)]
pub struct TowerState {
    pub h: Vec<f32>,
    pub c: Vec<f32>,
}

impl TowerState {
    pub fn zeros(hidden: usize) -> Self {
        Self {
            h: vec![0.0; hidden],
            c: vec![0.0; hidden],
        }
    }
}

fn run_error(what: &str, e: impl std::fmt::Display) -> ModelError {
    ModelError::Run {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}
