//! Signal processing on the worker thread: measuring, resampling and framing the captured audio.

pub mod bass;
pub mod logmel;
pub mod median;
pub mod meter;
pub mod resample;

pub use meter::{InputMeter, MeterReading};
