//! The synthetic piece the file benchmarks analyse: a click every beat at 120 BPM, a four-note
//! bass riff every two bars and a chord every eight bars (44.1 kHz, 32-bit float WAV).

use std::path::Path;

pub const RATE: u32 = 44_100;

/// Writes `minutes` of the piece to `path`. Stereo: clicks and bass drifting slowly in level
/// (every 37 s) in the middle, the chords spread left against right. Mono: the plain sum.
pub fn write_piece(path: &Path, minutes: u32, stereo: bool) {
    let channels = if stereo { 2 } else { 1 };
    let spec = hound::WavSpec { channels, sample_rate: RATE, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut w = hound::WavWriter::create(path, spec).expect("bench WAV");
    let beat = (RATE / 2) as usize;
    let riff = [55.0_f32, 65.4, 73.4, 49.0];
    let chords = [[220.0_f32, 277.2, 329.6], [196.0, 246.9, 293.7]];
    let tau = std::f32::consts::TAU;
    for n in 0..(RATE * 60 * minutes) as usize {
        let t = n as f32 / RATE as f32;
        let in_beat = n % beat;
        let click = if in_beat < 300 { 0.5 * (1.0 - in_beat as f32 / 300.0) * ((n * 7919) % 13) as f32 / 13.0 } else { 0.0 };
        let bass = 0.25 * (tau * riff[(n / (2 * beat)) % 4] * t).sin();
        let chord = chords[(n / (32 * beat)) % 2].iter().map(|f| (tau * f * t).sin()).sum::<f32>() * 0.06;
        if stereo {
            let middle = (0.8 + 0.2 * (tau * t / 37.0).sin()) * (click + bass);
            w.write_sample(middle + chord).expect("write");
            w.write_sample(middle - chord).expect("write");
        } else {
            w.write_sample(click + bass + chord).expect("write");
        }
    }
    w.finalize().expect("finalize");
}
