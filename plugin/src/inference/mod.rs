//! Everything that talks to ONNX Runtime. Runs on worker threads only, never on the audio thread.

pub mod models;
pub mod runtime;

pub use models::{locate_models, Manifest, ModelError, ModelSet, TowerState};
pub use runtime::{
    runtime, runtime_if_started, start_runtime_in_background, Backend, CudaStatus, Runtime,
    RuntimeError, Workload,
};
