//! The model folder's manifest (`manifest.json`), as the plugin and the CLI load it: any bytes
//! must give a manifest or an error naming the file, never a panic. A manifest that parses is
//! then checked against the real model files beside it (the ONNX files and the period head) (sha256 of every file it lists), so a
//! fuzzed manifest cannot hand ONNX Runtime bytes it did not vouch for.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata::inference::{runtime, Manifest, ModelSet, Workload};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    // The real ONNX files beside the fuzzed manifest.
    let onnx = dir.path().join("onnx");
    std::fs::create_dir_all(&onnx).expect("onnx dir");
    for entry in std::fs::read_dir(models.join("onnx")).expect("models/onnx").flatten() {
        let _ = std::os::unix::fs::symlink(entry.path(), onnx.join(entry.file_name()));
    }
    // ...and the period head's folder.
    let _ = std::os::unix::fs::symlink(models.join("heads"), dir.path().join("heads"));
    std::fs::write(dir.path().join("manifest.json"), data).expect("write manifest");
    match Manifest::load(dir.path()) {
        Ok(_) => {
            if let Ok(rt) = runtime() {
                let _ = ModelSet::load(dir.path(), rt, Workload::Streaming);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
