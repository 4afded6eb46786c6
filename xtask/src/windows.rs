//! Windows bundles, cross-built here with MinGW, and what their tests under Wine need.
//!
//! Windows builds get a target folder of their own, `target/windows`: nice-plug's bundler names
//! the Windows `Strata.clap` exactly like the Linux one and puts both into `<target>/bundled`, so
//! sharing `target/` would have each build overwrite the other's bundle.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::{add_ort_to_bundles, cargo, fetch_ort, run, split_packages, OrtBuild};

/// The Rust target Windows bundles are built for (MinGW-w64: Debian's `mingw-w64` links it).
pub const TARGET: &str = "x86_64-pc-windows-gnu";
/// The VST3 bundle's folder for 64-bit Windows binaries (the SDK's "Module Architecture").
const VST3_ARCH: &str = "x86_64-win";
/// The C cross compiler for the Wine prefix's stand-in DLL (from `mingw-w64`).
const MINGW_CC: &str = "x86_64-w64-mingw32-gcc";

/// `target/windows`.
pub fn target_dir() -> PathBuf {
    crate::target_dir().join("windows")
}

/// The Wine prefix the tests run in (`target/windows/wine`), made by [`prepare_wine_prefix`].
pub fn wine_prefix() -> PathBuf {
    target_dir().join("wine")
}

/// Whether `cargo xtask bundle ...` asks for the Windows target.
pub fn is_windows_bundle(args: &[String]) -> bool {
    target_arg(args).is_some_and(|t| t.contains("windows"))
}

fn target_arg(args: &[String]) -> Option<&str> {
    args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--target=") {
        Some(t) => Some(t),
        None if a == "--target" => args.get(i + 1).map(String::as_str),
        None => None,
    })
}

/// `cargo xtask bundle <packages> [--release] --target x86_64-pc-windows-gnu`: nice-plug's
/// bundler into `target/windows/bundled`, then the Windows ONNX Runtime and the models beside the
/// `.clap` and inside the `.vst3`, as for Linux.
pub fn bundle(args: &[String]) -> Result<()> {
    let target = target_arg(args).unwrap_or(TARGET);
    anyhow::ensure!(target == TARGET, "Windows bundles are built for {TARGET} (MinGW-w64), not {target}");
    let (packages, options) = split_packages(&args[1..]);
    anyhow::ensure!(!packages.is_empty(), "cargo xtask bundle: name the packages to bundle (e.g. strata)");
    let ort_dir = fetch_ort(OrtBuild::Windows)?;
    let dir = target_dir();
    let mut build_args = options.clone();
    build_args.extend(["--target-dir".to_owned(), dir.to_string_lossy().into_owned()]);
    nice_plug_xtask::build(&packages, &build_args).with_context(|| {
        format!("cross-building for {TARGET} (needs `rustup target add {TARGET}` and Debian's mingw-w64)")
    })?;
    for package in &packages {
        nice_plug_xtask::bundle(&dir, package, &options, false)?;
    }
    add_ort_to_bundles(&dir.join("bundled"), &packages, &ort_dir, VST3_ARCH)
}

/// What the Wine tests load: the debug bundles (with nice-plug's allocation checks, as on Linux),
/// the test host `strata-play.exe`, and a Wine prefix to run them in.
pub fn build_for_tests() -> Result<()> {
    bundle(&["bundle", "strata", "--target", TARGET].map(String::from))?;
    let mut host = Command::new(cargo());
    host.args(["build", "--quiet", "-p", "strata-host-tests", "--bin", "strata-play", "--target", TARGET, "--target-dir"])
        .arg(target_dir());
    run(&mut host).context("cross-building the test host strata-play.exe")?;
    prepare_wine_prefix()
}

/// Makes the Wine prefix `target/windows/wine` once: `wineboot --init`, then the stand-in
/// `bcryptprimitives.dll` (tests/wine/) in its `system32`. Windows 10 and later have that DLL and
/// Rust's standard library imports it; Wine 8.0, Debian 12's, does not.
pub fn prepare_wine_prefix() -> Result<()> {
    // Wine takes only an absolute prefix.
    let prefix = std::path::absolute(wine_prefix())?;
    let system32 = prefix.join("drive_c").join("windows").join("system32");
    let stand_in = system32.join("bcryptprimitives.dll");
    if stand_in.is_file() {
        return Ok(());
    }
    boot_wine_prefix(&prefix)?;
    let source = Path::new("tests").join("wine");
    let built = target_dir().join("bcryptprimitives.dll");
    let mut cc = Command::new(MINGW_CC);
    cc.args(["-O2", "-shared", "-o"])
        .arg(&built)
        .arg(source.join("bcryptprimitives.c"))
        .arg(source.join("bcryptprimitives.def"))
        .arg("-ladvapi32");
    run(&mut cc).context("building the Wine prefix's bcryptprimitives.dll (Debian: mingw-w64)")?;
    std::fs::copy(&built, &stand_in).with_context(|| format!("copying into {}", system32.display()))?;
    Ok(())
}

/// How many times `wineboot --init` is tried on a fresh prefix before the tests give up.
const WINEBOOT_TRIES: u32 = 3;

/// Runs `wineboot --init` on `prefix`, starting again from nothing when it fails. A first boot
/// writes some 700 files and waits a fixed time for Wine's services. Once in CI it failed ("could
/// not load kernel32.dll", exit 53: what Wine says when that wait runs out) with the same Wine
/// and code that booted there before and boots here in seconds. A half-made prefix never boots,
/// so each try stops the prefix's wineserver and deletes the prefix first.
fn boot_wine_prefix(prefix: &Path) -> Result<()> {
    for attempt in 1..=WINEBOOT_TRIES {
        if attempt > 1 {
            // Stop the half-made prefix's wineserver (and every process in that prefix) so the
            // prefix can be deleted; with no server running these fail, the state wanted.
            let _ = wineserver(prefix, "--kill").status();
            let _ = wineserver(prefix, "--wait").status();
            if prefix.exists() {
                std::fs::remove_dir_all(prefix).with_context(|| format!("removing {}", prefix.display()))?;
            }
        }
        let mut boot = Command::new("wineboot");
        boot.arg("--init");
        wine_env(&mut boot, prefix);
        // Wine's errors say why a boot failed: kept, and shown only then (a headless boot that
        // works has some too: no display to draw on).
        boot.env("WINEDEBUG", "fixme-all");
        let output = boot.output().context("could not start wineboot (Debian: wine, wine64)")?;
        if output.status.success() {
            // The boot returns before wineserver has written the registry out; the tests' first
            // Wine call must find a finished prefix.
            return run(&mut wineserver(prefix, "--wait")).context("waiting for the Wine prefix's wineserver");
        }
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        eprintln!("wineboot --init failed with {} (try {attempt} of {WINEBOOT_TRIES})", output.status);
    }
    anyhow::bail!("creating the Wine prefix: wineboot --init failed {WINEBOOT_TRIES} times (Debian: wine, wine64)")
}

/// `wineserver FLAG` for `prefix`, in the environment every Wine call here gets.
fn wineserver(prefix: &Path, flag: &str) -> Command {
    let mut server = Command::new("wineserver");
    server.arg(flag);
    wine_env(&mut server, prefix);
    server
}

/// The environment every Wine call here gets: its prefix, quiet, and no offer to install Mono or
/// Gecko (nothing here is .NET or HTML, and the offer waits for a click).
fn wine_env(command: &mut Command, prefix: &Path) {
    command.env("WINEPREFIX", prefix).env("WINEDEBUG", "-all").env("WINEDLLOVERRIDES", "mscoree,mshtml=");
}
