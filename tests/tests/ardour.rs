//! Strata in Ardour, Debian's `ardour` package (7.x): the VST3 scanner Ardour runs finds it, and
//! a headless Ardour session (`ardour7-lua`, the "None (Dummy)" backend) runs it on an audio
//! track and feeds it audio.
//!
//! How headless discovery works (found out for this test): `ardour7-lua` only reads Ardour's
//! plugin *cache* (`~/.cache/ardour7/vst/*.v3i`); it never scans. A VST3 becomes visible once
//! `ardour-vst3-scanner` has scanned its bundle in a VST3 search folder (`~/.vst3` is one) and
//! written that cache. Two details matter: Ardour looks in `VST3_PATH` (the `~/.vst3` default did
//! not follow a changed `HOME`), and it trusts a cache file only if it is newer than the plugin
//! *in whole seconds*, so a bundle scanned in the same second it was copied stays "stale" and
//! unlisted. Each test uses a home folder of its own, so the user's Ardour configuration is never
//! touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};
use strata_host_tests::*;

/// Where Debian's ardour package keeps its programs and libraries.
const ARDOUR_LIB: &str = "/usr/lib/ardour7";

fn ardour_lib() -> Result<PathBuf> {
    let lib = PathBuf::from(ARDOUR_LIB);
    if !lib.join("ardour-vst3-scanner").is_file() {
        bail!("{ARDOUR_LIB}/ardour-vst3-scanner is missing: install Debian's ardour package (apt-get install ardour)");
    }
    Ok(lib)
}

/// A fresh home folder holding a copy of the `.vst3` bundle in `~/.vst3`.
fn home_with_strata(tag: &str) -> Result<(PathBuf, PathBuf)> {
    let home = std::env::temp_dir().join(format!("strata-ardour-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let vst3 = home.join(".vst3").join("Strata.vst3");
    copy_dir(&bundled("Strata.vst3")?, &vst3)?;
    // Ardour compares cache and plugin mtimes in whole seconds (see the module docs).
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
    set_mtime_recursively(&vst3, past)?;
    Ok((home, vst3))
}

fn set_mtime_recursively(path: &Path, time: std::time::SystemTime) -> Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            set_mtime_recursively(&entry?.path(), time)?;
        }
    }
    std::fs::File::open(path)?.set_modified(time)?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs an Ardour program with `home` as its home folder and Ardour's library folder on the
/// library path, as Debian's wrapper scripts do.
fn ardour_command(program: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("HOME", home)
        .env("VST3_PATH", home.join(".vst3"))
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env("LD_LIBRARY_PATH", ARDOUR_LIB)
        .env("ARDOUR_DATA_PATH", "/usr/share/ardour7")
        .env("ARDOUR_CONFIG_PATH", "/etc/ardour7")
        .env("ARDOUR_DLL_PATH", ARDOUR_LIB)
        .env_remove("STRATA_ORT_DYLIB")
        .env_remove("ORT_DYLIB_PATH");
    cmd
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn scan(lib: &Path, home: &Path, bundle: &Path) -> Result<String> {
    let output = ardour_command(&lib.join("ardour-vst3-scanner"), home)
        .arg("-v")
        .arg(bundle)
        .output()
        .context("running ardour-vst3-scanner")?;
    let log = text(&output);
    if !output.status.success() {
        bail!("ardour-vst3-scanner failed ({}):\n{log}", output.status);
    }
    Ok(log)
}

#[test]
fn ardour_vst3_scanner_finds_strata() -> Result<()> {
    let lib = ardour_lib()?;
    let (home, vst3) = home_with_strata("scan")?;
    let log = scan(&lib, &home, &vst3)?;
    assert!(log.contains("Found Plugin: Strata"), "{log}");
    // The VST3 class id is fixed ("StrataLayersAnlz") and the category says analyzer.
    assert!(log.contains("uid=\"5374726174614C6179657273416E6C7A\""), "{log}");
    assert!(log.contains("category=\"Fx|Analyzer\""), "{log}");
    assert!(log.contains("n_inputs=\"2\" n_outputs=\"2\""), "{log}");
    std::fs::remove_dir_all(&home)?;
    Ok(())
}

/// The session script: dummy backend generating a sine on its inputs, a new session, an audio
/// track monitoring its input, Strata inserted on it, three seconds of processing, then close.
const SESSION_SCRIPT: &str = r#"
function say(...) print(...); io.stdout:flush() end
ARDOUR.config():set_hide_dummy_backend(false)
local backend = AudioEngine:set_backend("None (Dummy)", "", "")
assert(backend, "no dummy backend")
backend:set_device_name("Sine Wave")
assert(create_session(SESSION_DIR, "strata-test", 48000), "could not create a session")
say("session rate", Session:nominal_sample_rate())
local found = false
for p in ARDOUR.LuaAPI.list_plugins():iter() do
  if p.type == ARDOUR.PluginType.VST3 and p.name == "Strata" then found = true; say(string.format("discovered %s %s", p.name, p.unique_id)) end
end
assert(found, "Strata was not discovered")
local track = Session:new_audio_track(2, 2, nil, 1, "Music", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true):front()
local plugin = ARDOUR.LuaAPI.new_plugin(Session, "Strata", ARDOUR.PluginType.VST3, "")
assert(not plugin:isnil(), "Strata did not instantiate")
assert(track:add_processor_by_index(plugin, 0, nil, true), "could not insert Strata")
track:monitoring_control():set_value(ARDOUR.MonitorChoice.MonitorInput, PBD.GroupControlDisposition.NoGroup)
local p = track:nth_plugin(0)
say(string.format("inserted %s active %s", p:name(), tostring(p:active())))
ARDOUR.LuaAPI.usleep(3000000)
close_session()
say("closed")
"#;

#[test]
fn a_headless_ardour_session_runs_strata_on_a_track() -> Result<()> {
    let lib = ardour_lib()?;
    let (home, vst3) = home_with_strata("session")?;
    // Headless Ardour reads only the plugin cache: the scanner writes it (see the module docs).
    scan(&lib, &home, &vst3)?;

    let script = home.join("session.lua");
    let session_dir = home.join("session");
    std::fs::write(
        &script,
        format!("SESSION_DIR = {:?}\n{SESSION_SCRIPT}", session_dir.display().to_string()),
    )?;
    let report = home.join("worker-report.jsonl");
    let output = ardour_command(&lib.join("luasession"), &home)
        .arg(&script)
        .env("STRATA_WORKER_REPORT", &report)
        .output()
        .context("running ardour's luasession")?;
    let log = text(&output);
    assert!(output.status.success(), "ardour7-lua failed ({}):\n{log}", output.status);
    assert!(log.contains("discovered Strata 5374726174614C6179657273416E6C7A"), "{log}");
    assert!(log.contains("inserted Strata active true"), "{log}");
    assert!(log.contains("closed"), "{log}");

    // What Strata's worker saw inside Ardour.
    let lines = std::fs::read_to_string(&report)
        .with_context(|| format!("Strata wrote no worker report; Ardour said:\n{log}"))?;
    let last: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap_or("{}"))?;
    assert_eq!(last["sample_rate_hz"].as_f64(), Some(48_000.0), "{lines}");
    let received = last["received_samples"].as_u64().unwrap_or(0);
    assert!(received >= 48_000 * 2, "at least two of the three seconds reached the worker: {lines}");
    let peak = last["peak_dbfs"].as_f64().unwrap_or(-120.0);
    assert!(peak > -30.0, "the dummy backend's sine reached Strata (peak {peak} dBFS): {lines}");
    // ONNX Runtime was found inside the .vst3 bundle, as it would be on another machine.
    let runtime = last["runtime"].as_str().unwrap_or("");
    assert!(runtime.starts_with("ONNX Runtime 1.31"), "{runtime}");
    std::fs::remove_dir_all(&home)?;
    Ok(())
}
