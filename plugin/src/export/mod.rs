//! Exporting layers: per-layer stems that sum back to the input, and annotations other tools
//! open: Audacity label tracks, a CSV, JAMS, a standard MIDI file of markers, and cue points with
//! labels inside the stem WAVs.

pub mod job;
pub mod stems;

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use crate::layers::{Analysis, Change, Layer, Pattern};

/// How annotations name a pattern layer: "2.38 s layer: low".
pub fn pattern_name(p: &Pattern) -> String {
    format!("{:.2} s layer: {}", p.period_s, p.register)
}

/// Where a lane's change ends: the end of its stretch, or its instant.
fn change_end(c: &Change) -> f64 {
    c.end_s.unwrap_or(c.time_s)
}

/// The Audacity label track file of the pattern layers' changes.
pub const PATTERN_LABELS_FILE: &str = "labels_patterns.txt";

/// Writes one Audacity label track per layer (`labels_<scale>s.txt`: tab-separated start, end,
/// label; a change is a region label "change 0.80" over its stretch), and one of every pattern
/// layer's changed stretches ([`PATTERN_LABELS_FILE`], "2.38 s layer: low · change 0.80").
pub fn write_audacity_labels(analysis: &Analysis, dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for layer in &analysis.layers {
        let mut text = String::new();
        for s in &layer.segments {
            let _ = writeln!(text, "{:.6}\t{:.6}\t{}", s.start_s, s.end_s, s.label);
        }
        for c in &layer.changes {
            let _ = writeln!(text, "{:.6}\t{:.6}\tchange {:.2}", c.time_s, change_end(c), c.strength);
        }
        let name = format!("labels_{}s.txt", layer.scale_s);
        std::fs::write(dir.join(&name), text)?;
        names.push(name);
    }
    let mut text = String::new();
    for p in &analysis.patterns {
        for c in &p.changes {
            let _ = writeln!(text, "{:.6}\t{:.6}\t{} · change {:.2}", c.start_s, c.end_s, pattern_name(p), c.strength);
        }
    }
    std::fs::write(dir.join(PATTERN_LABELS_FILE), text)?;
    names.push(PATTERN_LABELS_FILE.to_owned());
    Ok(names)
}

/// Writes every segment and change of every lane, and every pattern layer's active stretches
/// (`pattern`, its confidence as the strength) and changes (`pattern_change`), as one CSV
/// (`events.csv`); a pattern's label is its period and register ("2.380s low").
pub fn write_csv(analysis: &Analysis, path: &Path) -> std::io::Result<()> {
    let mut text = String::from("kind,scale_s,start_s,end_s,token,label,strength\n");
    for layer in &analysis.layers {
        for s in &layer.segments {
            let _ = writeln!(text, "segment,{},{:.6},{:.6},{},{},", layer.scale_s, s.start_s, s.end_s, s.token, s.label);
        }
        for c in &layer.changes {
            let _ = writeln!(text, "change,{},{:.6},{:.6},,,{:.4}", layer.scale_s, c.time_s, change_end(c), c.strength);
        }
    }
    for p in &analysis.patterns {
        let label = format!("{:.3}s {}", p.period_s, p.register);
        for a in &p.active {
            let _ = writeln!(text, "pattern,{},{:.6},{:.6},,{label},{:.4}", p.scale_s, a.start_s, a.end_s, p.confidence);
        }
        for c in &p.changes {
            let _ = writeln!(text, "pattern_change,{},{:.6},{:.6},,{label},{:.4}", p.scale_s, c.start_s, c.end_s, c.strength);
        }
    }
    std::fs::write(path, text)
}

/// The JAMS version Strata writes.
pub const JAMS_VERSION: &str = "0.3.5";

/// A JAMS document: one `segment_open` annotation per layer (its segments, with the layer's
/// scale, period, strength and changes in the annotation's sandbox), and all layers together as
/// one `multi_segment` annotation (level 0 = the longest scale).
pub fn jams(analysis: &Analysis) -> serde_json::Value {
    let mut annotations: Vec<serde_json::Value> = analysis.layers.iter().map(|layer| lane_annotation(analysis, layer)).collect();
    annotations.extend(analysis.patterns.iter().map(|p| pattern_annotation(analysis, p)));
    annotations.push(lanes_together(analysis));
    json!({
        "file_metadata": {
            "title": analysis.source,
            "artist": "",
            "release": "",
            "duration": analysis.duration_s,
            "identifiers": {},
            "jams_version": JAMS_VERSION
        },
        "annotations": annotations,
        "sandbox": {"strata": {"version": analysis.version, "models": analysis.models, "tempo_bpm": analysis.tempo_bpm}}
    })
}

/// A JAMS annotation's metadata, Strata's `rules` in it.
fn annotation_metadata(analysis: &Analysis, rules: &str) -> serde_json::Value {
    // No curator: JAMS requires it to carry a valid e-mail address, and a machine has none.
    json!({
        "annotator": {},
        "version": env!("CARGO_PKG_VERSION"),
        "corpus": "",
        "annotation_tools": format!("Strata {} (models {})", env!("CARGO_PKG_VERSION"), analysis.models),
        "annotation_rules": rules,
        "validation": "",
        "data_source": "machine"
    })
}

/// One lane: its runs of one pattern token as segments, its period and changes in the sandbox.
fn lane_annotation(analysis: &Analysis, layer: &Layer) -> serde_json::Value {
    let data: Vec<_> = layer
        .segments
        .iter()
        .map(|s| json!({"time": s.start_s, "duration": (s.end_s - s.start_s).max(0.0), "value": s.label, "confidence": null}))
        .collect();
    json!({
        "namespace": "segment_open",
        "data": data,
        "annotation_metadata": annotation_metadata(analysis, &format!("Strata's {} s layer: runs of one pattern token", layer.scale_s)),
        "sandbox": {
            "strata_scale_s": layer.scale_s,
            "strata_period_s": layer.period_s,
            "strata_period_confidence": layer.period_confidence,
            "strata_strength": layer.strength,
            "strata_changes": layer.changes.iter().map(|c| json!({"time_s": c.time_s, "end_s": change_end(c), "strength": c.strength})).collect::<Vec<_>>(),
        },
        "time": 0.0,
        "duration": analysis.duration_s,
    })
}

/// One pattern layer: its changed stretches as segments labelled "change", what it is in the
/// sandbox.
fn pattern_annotation(analysis: &Analysis, p: &Pattern) -> serde_json::Value {
    let data: Vec<_> = p
        .changes
        .iter()
        .map(|c| json!({"time": c.start_s, "duration": (c.end_s - c.start_s).max(0.0), "value": "change", "confidence": c.strength}))
        .collect();
    json!({
        "namespace": "segment_open",
        "data": data,
        "annotation_metadata": annotation_metadata(analysis, &format!("Strata's pattern layer {}: the stretches where it changed", pattern_name(p))),
        "sandbox": {
            "strata_pattern_period_s": p.period_s,
            "strata_scale_s": p.scale_s,
            "strata_register": p.register,
            "strata_profile": p.profile,
            "strata_profile_bands_hz": analysis.profile_bands_hz,
            "strata_confidence": p.confidence,
            "strata_strength": p.strength,
            "strata_active": p.active.iter().map(|a| json!({"start_s": a.start_s, "end_s": a.end_s})).collect::<Vec<_>>(),
        },
        "time": 0.0,
        "duration": analysis.duration_s,
    })
}

/// Every lane's segments in one `multi_segment` annotation, the longest scale as level 0.
fn lanes_together(analysis: &Analysis) -> serde_json::Value {
    let order = analysis.lanes_longest_first();
    let mut multi = Vec::new();
    for (level, &i) in order.iter().enumerate() {
        for s in &analysis.layers[i].segments {
            multi.push(json!({
                "time": s.start_s,
                "duration": (s.end_s - s.start_s).max(0.0),
                "value": {"label": s.label, "level": level},
                "confidence": null
            }));
        }
    }
    json!({
        "namespace": "multi_segment",
        "data": multi,
        "annotation_metadata": annotation_metadata(analysis, "Strata's layers together; level 0 is the longest scale"),
        "sandbox": {
            "strata_levels": order.iter().map(|&i| json!({"scale_s": analysis.layers[i].scale_s, "period_s": analysis.layers[i].period_s})).collect::<Vec<_>>()
        },
        "time": 0.0,
        "duration": analysis.duration_s,
    })
}

/// Ticks per quarter note in the MIDI file (at 120 BPM, one tick is about 1 ms).
pub const MIDI_TICKS_PER_QUARTER: u16 = 480;

/// A standard MIDI file (format 1): a tempo track at 120 BPM (or the known tempo), then one track
/// per layer named after it, with a marker event at every segment start ("A", "B", ...) and
/// every change ("change 0.80"), then one track per pattern layer with a marker where each of its
/// changes starts ("change 0.80") and ends ("change ends").
pub fn midi(analysis: &Analysis) -> Result<Vec<u8>, std::io::Error> {
    use midly::{Format, Header, MetaMessage, Smf, Timing, TrackEvent, TrackEventKind};
    let bpm = analysis.tempo_bpm.filter(|b| b.is_finite() && *b > 0.0).unwrap_or(120.0);
    let us_per_quarter = (60_000_000.0 / bpm).round() as u32;
    let ticks_per_s = f64::from(MIDI_TICKS_PER_QUARTER) * bpm / 60.0;
    let mut texts: Vec<Vec<(u32, Vec<u8>)>> = Vec::new();
    let mut names: Vec<Vec<u8>> = Vec::new();
    for layer in &analysis.layers {
        let mut events: Vec<(u32, Vec<u8>)> = layer
            .segments
            .iter()
            .map(|s| ((s.start_s * ticks_per_s).round() as u32, s.label.clone().into_bytes()))
            .chain(layer.changes.iter().map(|c| ((c.time_s * ticks_per_s).round() as u32, format!("change {:.2}", c.strength).into_bytes())))
            .collect();
        events.sort_by_key(|e| e.0);
        texts.push(events);
        names.push(format!("Strata {} s layer", layer.scale_s).into_bytes());
    }
    let tick = |t: f64| (t.max(0.0) * ticks_per_s).round() as u32;
    for p in &analysis.patterns {
        let mut events: Vec<(u32, Vec<u8>)> = p
            .changes
            .iter()
            .flat_map(|c| [(tick(c.start_s), format!("change {:.2}", c.strength).into_bytes()), (tick(c.end_s), b"change ends".to_vec())])
            .collect();
        events.sort_by_key(|e| e.0);
        texts.push(events);
        names.push(format!("Strata {}", pattern_name(p)).into_bytes());
    }
    let mut tracks = vec![vec![
        TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::Tempo(us_per_quarter.into())) },
        TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) },
    ]];
    for (events, name) in texts.iter().zip(&names) {
        let mut track = vec![TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::TrackName(name)) }];
        let mut now = 0_u32;
        for (tick, text) in events {
            track.push(TrackEvent { delta: (tick - now).into(), kind: TrackEventKind::Meta(MetaMessage::Marker(text)) });
            now = *tick;
        }
        track.push(TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
        tracks.push(track);
    }
    let smf = Smf { header: Header::new(Format::Parallel, Timing::Metrical(MIDI_TICKS_PER_QUARTER.into())), tracks };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes)?;
    Ok(bytes)
}

/// Appends cue points with labels to a finished WAV file (a `cue ` chunk and a `LIST`/`adtl`
/// chunk of `labl` entries), the way DAWs and editors store markers, and fixes the RIFF size.
/// The file is extended in place: an hour of audio is not read into memory for a few markers.
pub fn add_wav_cues(path: &Path, cues: &[(u32, String)]) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut header = [0_u8; 12];
    if file.read_exact(&mut header).is_err() || &header[0..4] != b"RIFF" || &header[8..12] != b"WAVE" {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not a WAV file", path.display())));
    }
    let mut cue = Vec::new();
    cue.extend_from_slice(&(cues.len() as u32).to_le_bytes());
    for (id, (frame, _)) in cues.iter().enumerate() {
        cue.extend_from_slice(&(id as u32 + 1).to_le_bytes()); // cue point id
        cue.extend_from_slice(&frame.to_le_bytes()); // position
        cue.extend_from_slice(b"data");
        cue.extend_from_slice(&0u32.to_le_bytes()); // chunk start
        cue.extend_from_slice(&0u32.to_le_bytes()); // block start
        cue.extend_from_slice(&frame.to_le_bytes()); // sample offset
    }
    let mut adtl = b"adtl".to_vec();
    for (id, (_, label)) in cues.iter().enumerate() {
        let mut text = label.clone().into_bytes();
        text.push(0);
        adtl.extend_from_slice(b"labl");
        adtl.extend_from_slice(&(4 + text.len() as u32).to_le_bytes());
        adtl.extend_from_slice(&(id as u32 + 1).to_le_bytes());
        adtl.extend_from_slice(&text);
        if text.len() % 2 == 1 {
            adtl.push(0);
        }
    }
    let mut chunks = Vec::new();
    for (tag, body) in [(b"cue ", cue), (b"LIST", adtl)] {
        chunks.extend_from_slice(tag);
        chunks.extend_from_slice(&(body.len() as u32).to_le_bytes());
        chunks.extend_from_slice(&body);
        if body.len() % 2 == 1 {
            chunks.push(0);
        }
    }
    let end = file.seek(SeekFrom::End(0))?;
    let riff_size = u32::try_from(end + chunks.len() as u64 - 8)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} would pass the 4 GiB WAV limit", path.display())))?;
    file.write_all(&chunks)?;
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&riff_size.to_le_bytes())?;
    file.sync_all()
}

/// Reads back the cue points and labels of a WAV file (frame, label), in cue id order. Skips
/// over the audio data rather than reading it.
pub fn read_wav_cues(path: &Path) -> std::io::Result<Vec<(u32, String)>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::io::BufReader::new(std::fs::File::open(path)?);
    let len = file.get_ref().metadata()?.len();
    let mut header = [0_u8; 12];
    file.read_exact(&mut header)?;
    if &header[0..4] != b"RIFF" || &header[8..12] != b"WAVE" {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not a WAV file", path.display())));
    }
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut positions: Vec<(u32, u32)> = Vec::new();
    let mut labels: std::collections::BTreeMap<u32, String> = Default::default();
    let mut at = 12_u64;
    while at + 8 <= len {
        file.seek(SeekFrom::Start(at))?;
        let mut chunk_header = [0_u8; 8];
        file.read_exact(&mut chunk_header)?;
        let tag = &chunk_header[0..4];
        let size = u64::from(u32_at(&chunk_header, 4));
        if tag == b"cue " || tag == b"LIST" {
            let mut body = vec![0_u8; size.min(len - at - 8) as usize];
            file.read_exact(&mut body)?;
            if tag == b"cue " && body.len() >= 4 {
                for k in 0..u32_at(&body, 0) as usize {
                    let o = 4 + 24 * k;
                    if o + 24 <= body.len() {
                        positions.push((u32_at(&body, o), u32_at(&body, o + 20)));
                    }
                }
            } else if body.starts_with(b"adtl") {
                let mut i = 4;
                while i + 12 <= body.len() {
                    let len = u32_at(&body, i + 4) as usize;
                    if &body[i..i + 4] == b"labl" && i + 8 + len <= body.len() {
                        let id = u32_at(&body, i + 8);
                        let text = &body[i + 12..i + 8 + len];
                        let text = text.split(|&b| b == 0).next().unwrap_or(&[]);
                        labels.insert(id, String::from_utf8_lossy(text).into_owned());
                    }
                    i += 8 + len + (len % 2);
                }
            }
        }
        at += 8 + size + (size % 2);
    }
    positions.sort();
    Ok(positions.into_iter().map(|(id, frame)| (frame, labels.get(&id).cloned().unwrap_or_default())).collect())
}
