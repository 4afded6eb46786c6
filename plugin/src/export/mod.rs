//! Exporting layers: per-layer stems that sum back to the input, and annotations other tools
//! open. (Work in progress for issue 6: stems, Audacity labels and CSV so far.)

pub mod stems;

use std::fmt::Write as _;
use std::path::Path;

use crate::layers::Analysis;

/// Writes one Audacity label track per layer (`labels_<scale>s.txt`: tab-separated start, end,
/// label; a change is a point label "change 0.80").
pub fn write_audacity_labels(analysis: &Analysis, dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for layer in &analysis.layers {
        let mut text = String::new();
        for s in &layer.segments {
            let _ = writeln!(text, "{:.6}\t{:.6}\t{}", s.start_s, s.end_s, s.label);
        }
        for c in &layer.changes {
            let _ = writeln!(text, "{:.6}\t{:.6}\tchange {:.2}", c.time_s, c.time_s, c.strength);
        }
        let name = format!("labels_{}s.txt", layer.scale_s);
        std::fs::write(dir.join(&name), text)?;
        names.push(name);
    }
    Ok(names)
}

/// Writes every segment and change of every layer as one CSV (`events.csv`).
pub fn write_csv(analysis: &Analysis, path: &Path) -> std::io::Result<()> {
    let mut text = String::from("kind,scale_s,start_s,end_s,token,label,strength\n");
    for layer in &analysis.layers {
        for s in &layer.segments {
            let _ = writeln!(text, "segment,{},{:.6},{:.6},{},{},", layer.scale_s, s.start_s, s.end_s, s.token, s.label);
        }
        for c in &layer.changes {
            let _ = writeln!(text, "change,{},{:.6},{:.6},,,{:.4}", layer.scale_s, c.time_s, c.time_s, c.strength);
        }
    }
    std::fs::write(path, text)
}

/// Writes mono or multichannel f32 audio as a 32-bit float WAV.
pub fn write_wav(path: &Path, channels: &[Vec<f32>], sample_rate: u32) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    let len = channels.first().map_or(0, Vec::len);
    for n in 0..len {
        for c in channels {
            w.write_sample(c[n])?;
        }
    }
    w.finalize()
}
