//! Everything that talks to ONNX Runtime. Runs on worker threads only, never on the audio thread.

pub mod runtime;

pub use runtime::{
    runtime, runtime_if_started, Backend, CudaStatus, Runtime, RuntimeError, Workload,
};
