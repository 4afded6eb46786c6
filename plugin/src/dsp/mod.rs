//! Signal processing on the worker thread: measuring, resampling and framing the captured audio.

pub mod meter;

pub use meter::{InputMeter, MeterReading};
