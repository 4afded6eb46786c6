//! Strata hears the layers music is built from (patterns that repeat at their own periods) and
//! shows them live inside a DAW.
//!
//! Data flows one way through these modules:
//!
//! * [`capture`]: the audio thread's only job, a lock-free push into a ring;
//! * [`worker`]: the thread that drains the ring and publishes results;
//! * [`dsp`]: measuring and preparing the captured signal;
//! * [`inference`]: ONNX Runtime and the trained models, found and started at run time;
//! * [`engine`] and [`layers`]: audio in, pattern layers out (shared by the worker and the CLI);
//! * [`take`]: the Record switch; the worker records a take to disk, an export thread exports it;
//! * [`export`]: stems and annotations of a file ([`export::job`], shared by the plugin and CLI);
//! * [`editor`]: the egui editor that shows what the worker published;
//! * [`plugin`] and [`params`]: the plugin as hosts see it;
//! * [`memory`]: giving freed memory back when a window or a worker thread ends.

pub mod audio_file;
pub mod capture;
pub mod dsp;
pub mod editor;
pub mod engine;
pub mod export;
pub mod inference;
pub mod layers;
pub mod memory;
pub mod params;
pub mod picture;
pub mod plugin;
pub mod take;
pub mod worker;

pub use plugin::Strata;

nice_plug::nice_export_clap!(plugin::Strata);
nice_plug::nice_export_vst3!(plugin::Strata);
