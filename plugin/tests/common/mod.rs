//! Checks shared by the tests that export: the CLI's `strata export` and the plugin's Export.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use strata::layers::Analysis;

pub fn read_wav(path: &Path) -> (u32, Vec<Vec<f32>>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    assert_eq!((spec.bits_per_sample, spec.sample_format), (32, hound::SampleFormat::Float));
    let n_ch = spec.channels as usize;
    let interleaved: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
    let channels = (0..n_ch).map(|c| interleaved.iter().skip(c).step_by(n_ch).copied().collect()).collect();
    (spec.sample_rate, channels)
}


/// Checks an export folder against the audio it was made from: the stems sum back to the input
/// within 1e-6, the Audacity labels and the CSV parse, every stem's cue points read back with
/// their labels, the MIDI file parses with a marker per segment and change, and the JAMS file
/// passes the JAMS schema (its values each namespace's).
pub fn check_export(out: &Path, source: &Path) {
    let mut input = Vec::new();
    let mut file = strata::audio_file::AudioFile::open(source).unwrap();
    while file.read_planar(&mut input).unwrap() {}

    let mut stems: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("stem_"))
        .collect();
    stems.sort();
    assert!(stems.len() >= 2, "at least one layer stem and the residual: {stems:?}");
    assert!(stems.iter().any(|p| p.ends_with("stem_residual.wav")));
    let mut sum = vec![vec![0.0_f64; input[0].len()]; input.len()];
    for stem in &stems {
        let (rate, audio) = read_wav(stem);
        assert_eq!(rate, file.sample_rate());
        assert_eq!(audio.len(), input.len());
        for (acc, ch) in sum.iter_mut().zip(&audio) {
            assert_eq!(ch.len(), acc.len());
            for (a, &v) in acc.iter_mut().zip(ch) {
                *a += f64::from(v);
            }
        }
    }
    let worst = sum
        .iter()
        .zip(&input)
        .flat_map(|(s, x)| s.iter().zip(x).map(|(a, &b)| (a - f64::from(b)).abs()))
        .fold(0.0, f64::max);
    assert!(worst <= 1e-6, "stems sum back to the input within 1e-6 of full scale (worst {worst})");

    // Audacity labels: start<TAB>end<TAB>text, start <= end.
    let labels = std::fs::read_to_string(out.join("labels_1s.txt")).unwrap();
    assert!(!labels.is_empty());
    for line in labels.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        assert_eq!(parts.len(), 3, "{line}");
        let (a, b): (f64, f64) = (parts[0].parse().unwrap(), parts[1].parse().unwrap());
        assert!(a <= b && !parts[2].is_empty(), "{line}");
    }
    // CSV: a header and rows of seven fields.
    let csv = std::fs::read_to_string(out.join("events.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("kind,scale_s,start_s,end_s,token,label,strength"));
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().all(|r| r.split(',').count() == 7));
    assert!(rows.iter().any(|r| r.starts_with("segment,")));

    // Cue points with labels read back from every stem.
    let first_stem = stems.iter().find(|p| !p.ends_with("stem_residual.wav")).unwrap();
    let cues = strata::export::read_wav_cues(first_stem).unwrap();
    assert!(!cues.is_empty(), "the layer stem has cue points");
    assert!(cues.iter().all(|(frame, label)| (*frame as usize) <= input[0].len() && label.contains(" s layer: ")));
    assert!(hound::WavReader::open(first_stem).is_ok(), "the WAV with cue chunks still opens");

    // The MIDI file parses: a tempo track, then one track per layer with markers.
    let mid = std::fs::read(out.join("strata_markers.mid")).unwrap();
    let smf = midly::Smf::parse(&mid).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("strata.json")).unwrap()).unwrap();
    assert_eq!(json["version"], 2);
    check_analysis_json(&json);
    let layers = json["layers"].as_array().unwrap();
    let patterns = json["patterns"].as_array().unwrap();
    assert!(!patterns.is_empty(), "the example has pattern layers");
    assert_eq!(smf.tracks.len(), 1 + layers.len() + patterns.len());
    let markers = |t: &Vec<midly::TrackEvent>| t.iter().filter(|e| matches!(e.kind, midly::TrackEventKind::Meta(midly::MetaMessage::Marker(_)))).count();
    for (track, layer) in smf.tracks[1..].iter().zip(layers) {
        let expected = layer["segments"].as_array().unwrap().len() + layer["changes"].as_array().unwrap().len();
        assert_eq!(markers(track), expected);
    }
    for (track, pattern) in smf.tracks[1 + layers.len()..].iter().zip(patterns) {
        assert_eq!(markers(track), 2 * pattern["changes"].as_array().unwrap().len(), "a marker where each change starts and ends");
    }
    // The pattern label track: one region per changed stretch, inside the file.
    let pattern_labels = std::fs::read_to_string(out.join("labels_patterns.txt")).unwrap();
    let stretches: usize = patterns.iter().map(|p| p["changes"].as_array().unwrap().len()).sum();
    assert_eq!(pattern_labels.lines().count(), stretches);
    // Every pattern layer with two repeats in the file has a stem named after its period
    // (stem_<n>_<period>s_<register>.wav; layers within 3 % of each other share one).
    let duration = json["duration_s"].as_f64().unwrap();
    let stem_periods: Vec<f64> = stems
        .iter()
        .filter_map(|s| s.file_name()?.to_str()?.split('_').nth(2)?.strip_suffix('s')?.parse().ok())
        .collect();
    for p in patterns.iter().map(|p| p["period_s"].as_f64().unwrap()).filter(|p| 2.0 * p <= duration) {
        assert!(stem_periods.iter().any(|s| (s - p).abs() <= 0.031 * s.max(p)), "a stem for the {p} s layer: {stems:?}");
    }

    // JAMS: valid against the JAMS schema, and each annotation's values against its namespace.
    let jams: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("strata.jams")).unwrap()).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jams");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures.join("jams_schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&jams).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    for (file, namespace) in [("open.json", "segment_open"), ("multi.json", "multi_segment")] {
        let ns: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures.join(file)).unwrap()).unwrap();
        let value_schema = jsonschema::validator_for(&ns[namespace]["value"]).unwrap();
        let annotations: Vec<&serde_json::Value> = jams["annotations"].as_array().unwrap().iter().filter(|a| a["namespace"] == namespace).collect();
        assert!(!annotations.is_empty(), "a {namespace} annotation");
        for a in annotations {
            for obs in a["data"].as_array().unwrap() {
                assert!(value_schema.is_valid(&obs["value"]), "{namespace}: {}", obs["value"]);
            }
        }
    }
    assert_eq!(jams["annotations"].as_array().unwrap().len(), layers.len() + 1 + patterns.len());
}

/// Two analyses of the same audio agree: the lanes' steps, tokens, segments, changes and periods,
/// and the pattern layers' periods, lanes, registers and changed stretches (surprise within
/// float tolerance).
pub fn assert_same(a: &Analysis, b: &Analysis, what: &str) {
    assert_eq!(a.layers.len(), b.layers.len());
    assert_eq!(a.duration_s, b.duration_s, "{what}");
    for (i, (x, y)) in a.layers.iter().zip(&b.layers).enumerate() {
        assert_eq!(x.frames.time_s, y.frames.time_s, "{what}: layer {i} times");
        assert_eq!(x.frames.token, y.frames.token, "{what}: layer {i} tokens");
        for (k, (p, q)) in x.frames.surprise.iter().zip(&y.frames.surprise).enumerate() {
            assert!((p - q).abs() <= 1e-3 * p.abs().max(1.0), "{what}: layer {i} step {k} surprise {p} vs {q}");
        }
        assert_eq!(x.segments, y.segments, "{what}: layer {i} segments");
        assert_eq!(x.changes.len(), y.changes.len(), "{what}: layer {i} changes");
        for (c, d) in x.changes.iter().zip(&y.changes) {
            assert_eq!(c.time_s, d.time_s, "{what}: layer {i} change time");
            assert!((c.strength - d.strength).abs() < 1e-3, "{what}: layer {i} change strength");
        }
        match (x.period_s, y.period_s) {
            (Some(p), Some(q)) => assert!((p - q).abs() < 1e-4, "{what}: layer {i} period {p} vs {q}"),
            (p, q) => assert_eq!(p, q, "{what}: layer {i} period"),
        }
    }
    // The pattern layers: the same layers, periods and changed stretches.
    assert_eq!(a.patterns.len(), b.patterns.len(), "{what}: pattern layers");
    for (x, y) in a.patterns.iter().zip(&b.patterns) {
        assert!((x.period_s - y.period_s).abs() < 1e-4, "{what}: pattern period {} vs {}", x.period_s, y.period_s);
        assert_eq!((x.scale_s, &x.register), (y.scale_s, &y.register), "{what}: pattern at {} s", x.period_s);
        assert_eq!(x.changes.len(), y.changes.len(), "{what}: changes of the {} s pattern", x.period_s);
        for (c, d) in x.changes.iter().zip(&y.changes) {
            assert!((c.start_s - d.start_s).abs() < 1e-6 && (c.end_s - d.end_s).abs() < 1e-6, "{what}: {c:?} vs {d:?}");
        }
    }
}

/// `strata.json` as written (`json`) passes the documented schema (`plugin/strata.schema.json`)
/// and every time in it lies inside the file.
pub fn check_analysis_json(json: &serde_json::Value) {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("strata.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(json).map(|e| format!("{} at {}", e, e.instance_path())).take(5).collect();
    assert!(errors.is_empty(), "strata.json against its schema: {errors:?}");

    let duration = json["duration_s"].as_f64().unwrap();
    let inside = |t: &serde_json::Value, what: &str| {
        let t = t.as_f64().unwrap();
        assert!((0.0..=duration + 1e-6).contains(&t), "{what} at {t} s, outside the file's {duration} s");
    };
    let spans = |list: &serde_json::Value, what: &str| {
        for s in list.as_array().unwrap() {
            inside(&s["start_s"], what);
            inside(&s["end_s"], what);
            assert!(s["start_s"].as_f64() <= s["end_s"].as_f64(), "{what} ends before it starts: {s}");
        }
    };
    for p in json["patterns"].as_array().unwrap() {
        spans(&p["active"], "an active stretch");
        spans(&p["changes"], "a change");
    }
    for l in json["layers"].as_array().unwrap() {
        l["frames"]["time_s"].as_array().unwrap().iter().for_each(|t| inside(t, "a step"));
        spans(&l["segments"], "a segment");
        for c in l["changes"].as_array().unwrap() {
            inside(&c["time_s"], "a lane change");
        }
    }
}
