//! Decoding the real audio in `assets/` into planar f32, with Strata's own streaming reader.

use std::path::Path;

use anyhow::Result;
use strata::audio_file::AudioFile;

/// Decoded audio: one `Vec` per channel.
pub struct Decoded {
    pub sample_rate: u32,
    pub channels: Vec<Vec<f32>>,
}

impl Decoded {
    /// Frames per channel.
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// `seconds` of audio starting at `start_s`, all channels.
    pub fn excerpt(&self, start_s: f64, seconds: f64) -> Vec<Vec<f32>> {
        let start = ((start_s * f64::from(self.sample_rate)) as usize).min(self.frames());
        let end = (start + (seconds * f64::from(self.sample_rate)) as usize).min(self.frames());
        self.channels.iter().map(|c| c[start..end].to_vec()).collect()
    }
}

/// Decodes a whole file.
pub fn decode(path: &Path) -> Result<Decoded> {
    let mut file = AudioFile::open(path)?;
    let mut channels = Vec::new();
    while file.read_planar(&mut channels)? {}
    Ok(Decoded { sample_rate: file.sample_rate(), channels })
}
