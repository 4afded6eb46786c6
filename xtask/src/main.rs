//! `cargo xtask`: Strata's build tasks.
//!
//! * `cargo xtask fetch-ort [--gpu | --windows]`: ONNX Runtime 1.31.1 from its Python wheel
//!   (through pip) into `target/ort/cpu` (or `gpu`, or `windows`).
//! * `cargo xtask bundle <packages> [--release]`: nice-plug's bundler (`.clap`, `.vst3` under
//!   `target/bundled`), then ONNX Runtime put beside the `.clap` and inside the `.vst3`.
//!   With `--target x86_64-pc-windows-gnu`: the same for Windows, cross-built with MinGW-w64,
//!   under `target/windows/bundled` (see `windows.rs`).
//! * `cargo xtask demo`: analyses the bundled example (`assets/`) and exports its stems and
//!   annotations into `out/example/`.
//! * `cargo xtask wheel [--release]`: the Python package (`python/`) as a wheel in
//!   `target/wheels`, carrying ONNX Runtime and the models as the bundles do (needs maturin).
//! * `cargo xtask test`: everything the test suite needs (ONNX Runtime, the debug bundles with
//!   nice-plug's allocation checks, for Linux and for Windows with a Wine prefix, a Python
//!   environment in `target/py` with the wheel) and then every test, Rust and Python.
//! * `cargo xtask bench`: release bundles, then the benchmarks.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod windows;

/// The ONNX Runtime release Strata is built against (keep in step with the plugin's runtime.rs).
const ORT_VERSION: &str = "1.31.1";
/// Which ONNX Runtime a bundle carries: the three wheels Strata takes its libraries from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OrtBuild {
    LinuxCpu,
    LinuxGpu,
    Windows,
}

impl OrtBuild {
    /// The pip package.
    fn package(self) -> &'static str {
        match self {
            OrtBuild::LinuxGpu => "onnxruntime-gpu",
            OrtBuild::LinuxCpu | OrtBuild::Windows => "onnxruntime",
        }
    }

    /// The library files taken out of the wheel. The CUDA provider only exists in the GPU wheel.
    fn files(self) -> &'static [&'static str] {
        match self {
            OrtBuild::LinuxCpu => &["libonnxruntime.so.1.31.1", "libonnxruntime_providers_shared.so"],
            OrtBuild::LinuxGpu => &[
                "libonnxruntime.so.1.31.1",
                "libonnxruntime_providers_shared.so",
                "libonnxruntime_providers_cuda.so",
            ],
            OrtBuild::Windows => &["onnxruntime.dll", "onnxruntime_providers_shared.dll"],
        }
    }

    /// The folder under `target/ort/` the libraries are unpacked into.
    fn folder(self) -> &'static str {
        match self {
            OrtBuild::LinuxCpu => "cpu",
            OrtBuild::LinuxGpu => "gpu",
            OrtBuild::Windows => "windows",
        }
    }

    /// The wheel's platform tag in its file name, to pick it out of the download folder.
    fn wheel_platform(self) -> &'static str {
        match self {
            OrtBuild::LinuxCpu | OrtBuild::LinuxGpu => "manylinux",
            OrtBuild::Windows => "win_amd64",
        }
    }

    /// What pip is told beyond the package, when the wheel is not for the Python running here.
    /// The libraries inside are the same for every Python version, so any one wheel will do.
    fn pip_platform(self) -> &'static [&'static str] {
        match self {
            OrtBuild::LinuxCpu => &[],
            // The GPU machine runs Python 3.12 on manylinux 2.28.
            OrtBuild::LinuxGpu => &["--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64"],
            OrtBuild::Windows => &["--python-version", "3.12", "--implementation", "cp", "--platform", "win_amd64"],
        }
    }
}

/// Packages whose bundles get ONNX Runtime.
const PACKAGES_WITH_ORT: &[&str] = &["strata"];
/// The model folder's name inside bundles (the plugin looks for it there).
const MODELS_DIR_NAME: &str = "strata-models";

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    nice_plug_xtask::chdir_workspace_root()?;
    let command = args.first().cloned().unwrap_or_default();
    match command.as_str() {
        "fetch-ort" => {
            let build = if take_flag(&mut args, "--gpu") {
                OrtBuild::LinuxGpu
            } else if take_flag(&mut args, "--windows") {
                OrtBuild::Windows
            } else {
                OrtBuild::LinuxCpu
            };
            let dir = fetch_ort(build)?;
            println!("ONNX Runtime {ORT_VERSION} is in {}", dir.display());
            Ok(())
        }
        "bundle" if windows::is_windows_bundle(&args) => windows::bundle(&args),
        "bundle" => {
            let build = if take_flag(&mut args, "--gpu") { OrtBuild::LinuxGpu } else { OrtBuild::LinuxCpu };
            bundle_for_linux(&args, build)
        }
        "test" => test(&args[1..]),
        "wheel" => {
            let release = take_flag(&mut args, "--release");
            let wheel = build_wheel(&python(), release)?;
            println!("Built {}", wheel.display());
            Ok(())
        }
        "demo" => demo(),
        "bench" => bench(&args[1..]),
        _ => {
            // Everything else (known-packages, bundle-universal) is nice-plug's.
            nice_plug_xtask::main_with_args("cargo xtask", args)
        }
    }
}

fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Downloads ONNX Runtime's wheel for `build` with pip, unless already there, and unpacks its
/// libraries into `target/ort/{cpu,gpu,windows}`. Returns that folder.
fn fetch_ort(build: OrtBuild) -> Result<PathBuf> {
    let (package, files) = (build.package(), build.files());
    let dest = target_dir().join("ort").join(build.folder());
    if files.iter().all(|f| dest.join(f).is_file()) {
        return Ok(dest);
    }
    let wheels = target_dir().join("ort").join("wheels");
    std::fs::create_dir_all(&wheels).with_context(|| format!("creating {}", wheels.display()))?;
    let mut pip = Command::new(python());
    pip.args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"])
        .arg(format!("{package}=={ORT_VERSION}"))
        .arg("-d")
        .arg(&wheels)
        .args(build.pip_platform());
    run(&mut pip).with_context(|| {
        format!("pip could not download {package}=={ORT_VERSION}; is python3 with pip installed?")
    })?;
    let prefix = package.replace('-', "_");
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("{prefix}-{ORT_VERSION}-")) && n.contains(build.wheel_platform()) && n.ends_with(".whl")
            })
        })
        .with_context(|| format!("pip reported success but no {prefix} wheel is in {}", wheels.display()))?;
    std::fs::create_dir_all(&dest)?;
    // A wheel is a zip file; Python's zipfile (always there with pip) unpacks the members.
    let script = "import sys, zipfile, os\n\
        wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]\n\
        z = zipfile.ZipFile(wheel)\n\
        for n in names:\n\
        \x20   data = z.read('onnxruntime/capi/' + n)\n\
        \x20   tmp = os.path.join(dest, n + '.part')\n\
        \x20   open(tmp, 'wb').write(data)\n\
        \x20   os.replace(tmp, os.path.join(dest, n))\n";
    let mut unzip = Command::new(python());
    unzip.arg("-c").arg(script).arg(&wheel).arg(&dest).args(files);
    run(&mut unzip).with_context(|| format!("unpacking {}", wheel.display()))?;
    Ok(dest)
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// `cargo xtask bundle <packages> [options]` for Linux: nice-plug's bundler into
/// `target/bundled`, then ONNX Runtime (`build`) and the models beside and into the bundles.
fn bundle_for_linux(args: &[String], build: OrtBuild) -> Result<()> {
    let ort_dir = fetch_ort(build)?;
    nice_plug_xtask::main_with_args("cargo xtask", args.to_vec())?;
    let (packages, _) = split_packages(&args[1..]);
    add_ort_to_bundles(&target_dir().join("bundled"), &packages, &ort_dir, "x86_64-linux")
}

/// Splits bundle arguments into packages (`-p NAME`, `--package NAME` or bare names) and the
/// options that go on to `cargo build` (everything else, with its value).
fn split_packages(args: &[String]) -> (Vec<String>, Vec<String>) {
    const WITH_VALUE: &[&str] = &["--target", "--profile", "--features", "-F", "--target-dir", "-j", "--jobs"];
    let (mut packages, mut options) = (Vec::new(), Vec::new());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "-p" || arg == "--package" {
            packages.extend(args.next().cloned());
        } else if WITH_VALUE.contains(&arg.as_str()) {
            options.push(arg.clone());
            options.extend(args.next().cloned());
        } else if arg.starts_with('-') {
            options.push(arg.clone());
        } else {
            packages.push(arg.clone());
        }
    }
    (packages, options)
}

/// Copies ONNX Runtime beside each bundled `.clap` and into each `.vst3` (its `vst3_arch`
/// folder: `x86_64-linux`, `x86_64-win`), and the models beside and into them, for the packages
/// that were just bundled.
fn add_ort_to_bundles(bundled: &Path, packages: &[String], ort_dir: &Path, vst3_arch: &str) -> Result<()> {
    let names = bundle_display_names()?;
    for package in packages {
        if !PACKAGES_WITH_ORT.contains(&package.as_str()) {
            continue;
        }
        let name = names
            .iter()
            .find(|(p, _)| p == package)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| package.clone());
        let vst3_lib_dir = bundled.join(format!("{name}.vst3")).join("Contents").join(vst3_arch);
        let mut folders = vec![bundled.to_path_buf()];
        if vst3_lib_dir.is_dir() {
            folders.push(vst3_lib_dir);
        }
        for folder in folders {
            copy_ort(ort_dir, &folder)?;
            println!("Added ONNX Runtime {ORT_VERSION} to {}", folder.display());
        }
        // The models: beside the .clap, and in the .vst3's Resources.
        let mut model_dests = vec![bundled.join(MODELS_DIR_NAME)];
        let vst3_resources = bundled.join(format!("{name}.vst3")).join("Contents").join("Resources");
        if vst3_resources.parent().is_some_and(Path::is_dir) {
            model_dests.push(vst3_resources.join(MODELS_DIR_NAME));
        }
        for dest in model_dests {
            copy_models(Path::new("models"), &dest)?;
            println!("Added the models to {}", dest.display());
        }
    }
    Ok(())
}

/// Copies ONNX Runtime's library files (`ort_dir`, from `fetch_ort`) into `folder`.
fn copy_ort(ort_dir: &Path, folder: &Path) -> Result<()> {
    for entry in std::fs::read_dir(ort_dir)? {
        let src = entry?.path();
        let Some(file_name) = src.file_name() else { continue };
        let dst = folder.join(file_name);
        std::fs::copy(&src, &dst).with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
    }
    Ok(())
}

/// Copies `manifest.json` and the files it lists (the ONNX models, the heads).
fn copy_models(from: &Path, to: &Path) -> Result<()> {
    let manifest = from.join("manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {} (train or restore the models first)", manifest.display()))?;
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to.join("onnx"))?;
    std::fs::copy(&manifest, to.join("manifest.json"))?;
    let manifest: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    let files = manifest["files"].as_object().context("the manifest lists no files")?;
    for relative in files.keys() {
        let (src, dst) = (from.join(relative), to.join(relative));
        if let Some(folder) = dst.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
    }
    Ok(())
}

/// `package = display name` pairs from bundler.toml (nice-plug-xtask names bundles after them).
fn bundle_display_names() -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string("bundler.toml").unwrap_or_default();
    let mut pairs = Vec::new();
    let mut section: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(s.trim().to_owned());
        } else if let (Some(pkg), Some(value)) = (&section, line.strip_prefix("name")) {
            let value = value.trim_start().trim_start_matches('=').trim().trim_matches('"');
            pairs.push((pkg.clone(), value.to_owned()));
        }
    }
    Ok(pairs)
}

/// Builds what the tests load (ONNX Runtime, debug bundles with allocation checks) and runs every
/// test in the workspace, then the Python package's tests against its wheel. Extra arguments go
/// to `cargo test`.
fn test(extra: &[String]) -> Result<()> {
    bundle_for_linux(&["bundle", "-p", "strata", "-p", "strata-null"].map(String::from), OrtBuild::LinuxCpu)?;
    // The Windows bundles and test host, for the tests that run them under Wine.
    windows::build_for_tests()?;
    let mut cargo = Command::new(cargo());
    cargo.args(["test", "--workspace"]).args(extra);
    run(&mut cargo)?;
    python_tests()
}

/// Packages the Python tests need, pinned (installed into `target/py`).
const PYTHON_TEST_PACKAGES: &[&str] = &[
    "maturin==1.16.0",
    "pytest==9.2.0",
    "numpy==2.4.6",
    "pyarrow==26.0.1",
    "pandas==3.1.1",
    "jams==0.3.5",
    "ray==2.60.0",
];

/// The Python package's tests (`python/tests`): a virtual environment in `target/py` with the
/// packages above, the wheel built (debug, sharing the Rust tests' build) and installed into it,
/// and pytest, comparing the package with the CLI the Rust tests just built.
fn python_tests() -> Result<()> {
    let venv = target_dir().join("py");
    let venv_python = venv.join("bin").join("python");
    if !venv_python.is_file() {
        run(Command::new(python()).args(["-m", "venv"]).arg(&venv))
            .context("creating the Python test environment (Debian: python3-venv)")?;
    }
    let mut pip = Command::new(&venv_python);
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(PYTHON_TEST_PACKAGES);
    run(&mut pip).context("installing the Python test packages")?;
    let wheel = build_wheel(&venv_python.to_string_lossy(), false)?;
    let mut install = Command::new(&venv_python);
    install.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--force-reinstall", "--no-deps"]).arg(&wheel);
    run(&mut install)?;
    // Absolute: pytest runs from python/tests, so `import strata` is the installed wheel, not
    // the source folder.
    // (Not canonicalised: that would follow the virtual environment's link to the base Python.)
    let mut pytest = Command::new(std::path::absolute(&venv_python)?);
    pytest.current_dir(Path::new("python").join("tests"));
    pytest.env("STRATA_CLI", std::fs::canonicalize(target_dir())?.join("debug").join("strata"));
    pytest.env("STRATA_WHEEL", std::fs::canonicalize(&wheel)?);
    pytest.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "."]);
    run(&mut pytest)
}

/// Puts ONNX Runtime and the models into `python/strata/` and builds the wheel with maturin
/// (`python -m maturin`) into `target/wheels`. Returns the wheel's path.
fn build_wheel(python: &str, release: bool) -> Result<PathBuf> {
    let ort_dir = fetch_ort(OrtBuild::LinuxCpu)?;
    let package = Path::new("python").join("strata");
    copy_ort(&ort_dir, &package)?;
    copy_models(Path::new("models"), &package.join(MODELS_DIR_NAME))?;
    let out = target_dir().join("wheels");
    let _ = std::fs::remove_dir_all(&out);
    let mut maturin = Command::new(python);
    maturin.args(["-m", "maturin", "build", "--quiet", "--manifest-path"]).arg(Path::new("python").join("Cargo.toml"));
    maturin.arg("--out").arg(&out);
    if release {
        maturin.arg("--release");
    }
    run(&mut maturin).context("building the wheel (pip install maturin)")?;
    std::fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .with_context(|| format!("maturin reported success but no wheel is in {}", out.display()))
}

/// The README's first command: analysis, stems, annotations and picture of the bundled example,
/// into `out/example/`.
fn demo() -> Result<()> {
    fetch_ort(OrtBuild::LinuxCpu)?;
    let mut cargo = Command::new(cargo());
    cargo.args([
        "run", "--release", "--quiet", "-p", "strata", "--bin", "strata", "--",
        "export", "assets/machine_wars_excerpt.ogg", "--out", "out/example", "--replace",
    ]);
    run(&mut cargo)?;
    println!("Wrote the analysis (strata.json, strata.png), stems and annotations into out/example/");
    Ok(())
}

/// Builds release bundles of Strata and its null baseline and runs the benchmarks.
fn bench(extra: &[String]) -> Result<()> {
    bundle_for_linux(&["bundle", "-p", "strata", "-p", "strata-null", "--release"].map(String::from), OrtBuild::LinuxCpu)?;
    // Through the CLAP host: process() per block against the null plugin, and the eight-hour
    // live session.
    let mut process = Command::new(cargo());
    process.args(["bench", "-p", "strata-host-tests"]).args(extra);
    run(&mut process)?;
    // The worker's latency, through the library (no host needed).
    let mut latency = Command::new(cargo());
    latency.args(["bench", "-p", "strata", "--bench", "latency", "--bench", "editor_frame", "--bench", "export", "--bench", "backends", "--bench", "analysis"]);
    run(&mut latency)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not start {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{:?} failed with {status}", command.get_program());
    }
    Ok(())
}
