//! Strata without ONNX Runtime: a copy of the `.clap` in a folder with no library beside it still
//! loads, passes audio bit-exact, and reports exactly what is missing and where it looked.
//!
//! Its own test binary (so its own process): ONNX Runtime, once loaded, stays loaded.

use anyhow::Result;
use strata_host_tests::*;

#[test]
fn without_onnx_runtime_audio_passes_and_the_gap_is_named() -> Result<()> {
    let _guard = plugin_lock();
    // SAFETY of remove_var: before any plugin thread exists in this process.
    unsafe {
        std::env::remove_var("STRATA_ORT_DYLIB");
        std::env::remove_var("ORT_DYLIB_PATH");
    }
    let lonely = std::env::temp_dir().join(format!("strata-no-ort-{}", std::process::id()));
    std::fs::create_dir_all(&lonely)?;
    let clap = lonely.join("Strata.clap");
    std::fs::copy(bundled("Strata.clap")?, &clap)?;

    let bundle = ClapBundle::load(&clap)?;
    let mut plugin = bundle.instantiate(STRATA_CLAP_ID)?;
    let input = vec![
        (0..9000).map(|i| (i as f32 * 0.01).sin()).collect::<Vec<_>>(),
        (0..9000).map(|i| (i as f32 * 0.013).cos()).collect::<Vec<_>>(),
    ];
    let out = plugin.process_stream(44_100.0, 512, &input, &[512])?;
    assert_eq!(out.output, input, "audio passes untouched without ONNX Runtime");

    let report = last_worker_report()?;
    assert_eq!(report["received_samples"].as_u64().unwrap(), 9000);
    let runtime = report["runtime"].as_str().unwrap();
    assert!(runtime.contains("ONNX Runtime 1.31.1 was not found"), "{runtime}");
    assert!(runtime.contains(&lonely.canonicalize()?.display().to_string()), "names the folder it searched: {runtime}");
    assert!(runtime.contains("cargo xtask fetch-ort"), "says how to fix it: {runtime}");
    std::fs::remove_dir_all(&lonely)?;
    Ok(())
}
