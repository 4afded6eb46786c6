//! Finding and loading ONNX Runtime, and choosing the execution provider.
//!
//! Strata links ONNX Runtime at run time (`ort`'s `load-dynamic`), so a plugin without the
//! library still loads, passes audio and says exactly what is missing. The library is looked for,
//! in this order:
//!
//! 1. the file named by `STRATA_ORT_DYLIB`, then by `ORT_DYLIB_PATH` (`ort`'s own variable);
//! 2. beside Strata's own binary: the `.clap` file, the `.so` inside the `.vst3` bundle, or the
//!    `strata` executable (this is where `cargo xtask bundle` puts it);
//! 3. for development builds, `ort/gpu` and then `ort/cpu` one or two folders above that binary
//!    (`target/ort/...`, where `cargo xtask fetch-ort` puts it).
//!
//! The first existing file is loaded; if that fails the error names it (a wrong version, a
//! corrupt file) rather than silently trying the next one.
//!
//! Which execution provider runs a model is chosen per workload by [`Runtime::backend_for`]:
//! CUDA is only *usable* if ONNX Runtime was built with it and a session really runs on it
//! (checked once with a one-node probe model). Even then Strata's own models run on the CPU
//! unless `STRATA_BACKEND=cuda` asks for the GPU, because there they are faster: measured on an
//! H200 (`cargo bench --bench backends`, README "Benchmarks"), a tower step takes 13.5 µs on one
//! CPU thread against 152 µs through CUDA, an encoder call pays on CUDA only from about 128
//! windows at once, and the offline analysis hands the encoders a few windows per decoded
//! packet, so a whole analysis took 1.32× as long with its encoders on CUDA. Asked for, CUDA
//! takes the batched work (the offline analysis' encoders); live streaming steps stay on the
//! CPU, where each step is 7 to 11 times faster. `STRATA_BACKEND=cpu` skips the CUDA probe.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::ep::ExecutionProvider;

/// The ONNX Runtime release Strata is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";

/// Library file names tried in each folder, most specific first.
#[cfg(target_os = "linux")]
const LIBRARY_NAMES: &[&str] = &["libonnxruntime.so.1.31.1", "libonnxruntime.so.1", "libonnxruntime.so"];
#[cfg(target_os = "macos")]
const LIBRARY_NAMES: &[&str] = &["libonnxruntime.1.31.1.dylib", "libonnxruntime.dylib"];
#[cfg(target_os = "windows")]
const LIBRARY_NAMES: &[&str] = &["onnxruntime.dll"];

/// Environment variable naming the ONNX Runtime library file to load.
pub const ENV_ORT_DYLIB: &str = "STRATA_ORT_DYLIB";
/// `ort`'s own variable for the same thing, honoured second.
pub const ENV_ORT_DYLIB_ORT: &str = "ORT_DYLIB_PATH";
/// Environment variable choosing the backend: `auto` (default), `cpu` or `cuda`.
pub const ENV_BACKEND: &str = "STRATA_BACKEND";

/// A one-node model (y = x + x) used only to prove a provider can build and run a session.
/// Made by `models/tools/make_probe_model.py`.
const PROBE_MODEL: &[u8] = include_bytes!("probe_add.onnx");

/// Where a model's work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Cuda,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "CPU",
            Backend::Cuda => "CUDA",
        })
    }
}

/// The kind of work a session will do, which decides where it runs best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One small step at a time as audio streams in (the tower, live encoders).
    Streaming,
    /// Many windows at once (offline analysis).
    Batched,
}

/// What the user asked for with `STRATA_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendPreference {
    Auto,
    Cpu,
    Cuda,
}

impl BackendPreference {
    /// Reads `STRATA_BACKEND`. An unknown value is an error naming it.
    pub fn from_env() -> Result<Self, RuntimeError> {
        match std::env::var(ENV_BACKEND) {
            Err(_) => Ok(Self::Auto),
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "auto" => Ok(Self::Auto),
                "cpu" => Ok(Self::Cpu),
                "cuda" | "gpu" => Ok(Self::Cuda),
                _ => Err(RuntimeError::BadBackendPreference { value: v }),
            },
        }
    }
}

/// Whether the CUDA provider can be used, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CudaStatus {
    /// A session was built and run on the CUDA provider.
    Usable,
    /// `STRATA_BACKEND=cpu`.
    DisabledByUser,
    /// It could not be used; the text is ONNX Runtime's reason.
    Unavailable(String),
}

/// Everything that can go wrong while finding and starting ONNX Runtime.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime {ORT_VERSION} was not found; looked for {names} in: {searched}. \
         Run `cargo xtask fetch-ort` (or set {ENV_ORT_DYLIB} to the library file)",
        names = LIBRARY_NAMES.join(", "),
        searched = display_paths(.searched)
    )]
    NotFound { searched: Vec<PathBuf> },
    #[error("{variable} names {path}, which does not exist")]
    EnvPathMissing { variable: &'static str, path: PathBuf },
    #[error("could not load ONNX Runtime from {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("ONNX Runtime loaded from {path} but could not start: {reason}")]
    Start { path: PathBuf, reason: String },
    #[error("{ENV_BACKEND}={value:?} is not one of auto, cpu, cuda")]
    BadBackendPreference { value: String },
    #[error("{ENV_BACKEND}=cuda but CUDA cannot be used: {reason}")]
    CudaRequired { reason: String },
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(no folders)".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A loaded, started ONNX Runtime. There is one per process (ONNX Runtime's environment is
/// process-global); get it with [`runtime()`].
pub struct Runtime {
    environment: ort::environment::Environment,
    library: PathBuf,
    version: String,
    cuda: CudaStatus,
    preference: BackendPreference,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library)
            .field("version", &self.version)
            .field("cuda", &self.cuda)
            .finish()
    }
}

impl Runtime {
    /// The library file that was loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// ONNX Runtime's version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether CUDA can be used.
    pub fn cuda(&self) -> &CudaStatus {
        &self.cuda
    }

    /// Where a session for `workload` runs: CUDA for batched work when the user asked for it
    /// (`STRATA_BACKEND=cuda`) and it is usable; the CPU for streaming steps and by default,
    /// where the measurements in the module docs put Strata's models.
    pub fn backend_for(&self, workload: Workload) -> Backend {
        match (&self.cuda, self.preference, workload) {
            (CudaStatus::Usable, BackendPreference::Cuda, Workload::Batched) => Backend::Cuda,
            _ => Backend::Cpu,
        }
    }

    /// A session builder for `backend`, with `intra_threads` threads for the CPU provider.
    pub fn session_builder(
        &self,
        backend: Backend,
        intra_threads: usize,
    ) -> ort::Result<ort::session::builder::SessionBuilder> {
        let builder = ort::session::Session::builder(&self.environment)?
            .with_intra_threads(intra_threads.max(1))
            .map_err(ort::Error::<()>::from)?
            .with_inter_threads(1)
            .map_err(ort::Error::<()>::from)?;
        match backend {
            Backend::Cpu => Ok(builder),
            Backend::Cuda => builder
                .with_execution_providers([cuda_provider().error_on_failure()])
                .map_err(ort::Error::<()>::from),
        }
    }

    /// One line for people: which library, which version, where work runs and why.
    pub fn summary(&self) -> String {
        let cuda = match &self.cuda {
            CudaStatus::Usable => match self.preference {
                BackendPreference::Cuda => "CUDA for batched work (STRATA_BACKEND=cuda), CPU for streaming steps".to_owned(),
                _ => "CPU (CUDA usable, but slower for these models; STRATA_BACKEND=cuda uses it)".to_owned(),
            },
            CudaStatus::DisabledByUser => "CPU (CUDA turned off by STRATA_BACKEND=cpu)".to_owned(),
            CudaStatus::Unavailable(why) => format!("CPU (CUDA unavailable: {why})"),
        };
        format!("ONNX Runtime {} · {}", self.version, cuda)
    }
}

/// The CUDA provider as Strata configures it. TF32 is off so results match the CPU's to the
/// precision the parity tests check.
fn cuda_provider() -> ort::ep::ExecutionProviderDispatch {
    ort::ep::CUDA::default().with_tf32(false).build()
}

static RUNTIME: OnceLock<Result<Runtime, RuntimeError>> = OnceLock::new();

/// The process's ONNX Runtime, loading and starting it on first use.
///
/// The first call can take a second (loading a large library, probing CUDA): make it from a
/// worker thread, never from the audio thread or the GUI thread.
pub fn runtime() -> Result<&'static Runtime, &'static RuntimeError> {
    RUNTIME.get_or_init(start_runtime_on_own_thread).as_ref()
}

/// Starts the runtime on a thread of its own. ONNX Runtime keeps threads of its own for the
/// life of the process, and on Linux a new thread takes its creator's name: this way they are
/// called `strata-runtime`, not after whichever worker happened to start ONNX Runtime first.
fn start_runtime_on_own_thread() -> Result<Runtime, RuntimeError> {
    let spawned = std::thread::Builder::new()
        .name("strata-runtime".to_owned())
        .spawn(start_runtime);
    match spawned {
        Ok(handle) => handle.join().unwrap_or_else(|_| {
            Err(RuntimeError::Start {
                path: PathBuf::new(),
                reason: "ONNX Runtime panicked while starting".to_owned(),
            })
        }),
        // No thread to spare: start it here.
        Err(_) => start_runtime(),
    }
}

/// Starts loading the runtime on its own thread if nobody has yet, and returns at once. Poll
/// [`runtime_if_started()`] for the result.
pub fn start_runtime_in_background() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("strata-runtime".to_owned())
            .spawn(|| {
                RUNTIME.get_or_init(start_runtime);
            });
        if spawned.is_err() {
            // No thread to spare: the next blocking `runtime()` call starts it.
        }
    });
}

/// The runtime if [`runtime()`] has already finished, without waiting or starting it.
pub fn runtime_if_started() -> Option<Result<&'static Runtime, &'static RuntimeError>> {
    RUNTIME.get().map(|r| r.as_ref())
}

fn start_runtime() -> Result<Runtime, RuntimeError> {
    let preference = BackendPreference::from_env()?;
    let library = locate_library()?;
    let builder = ort::init_from(&library).map_err(|e| RuntimeError::Load {
        path: library.clone(),
        reason: e.to_string(),
    })?;
    let environment = builder
        .with_name("strata")
        .with_telemetry(false)
        .build()
        .map_err(|e| RuntimeError::Start {
            path: library.clone(),
            reason: e.to_string(),
        })?;
    let version = ort::info()
        .split(',')
        .find_map(|part| part.trim().strip_prefix("git-branch=rel-"))
        .unwrap_or(ORT_VERSION)
        .to_owned();

    let mut runtime = Runtime {
        environment,
        library,
        version,
        cuda: CudaStatus::DisabledByUser,
        preference,
    };
    // The CPU provider must work, or nothing will.
    runtime
        .probe(Backend::Cpu)
        .map_err(|reason| RuntimeError::Start {
            path: runtime.library.clone(),
            reason,
        })?;
    runtime.cuda = match preference {
        BackendPreference::Cpu => CudaStatus::DisabledByUser,
        _ => match runtime.probe(Backend::Cuda) {
            Ok(()) => CudaStatus::Usable,
            Err(reason) => CudaStatus::Unavailable(reason),
        },
    };
    if preference == BackendPreference::Cuda {
        if let CudaStatus::Unavailable(reason) = &runtime.cuda {
            return Err(RuntimeError::CudaRequired {
                reason: reason.clone(),
            });
        }
    }
    Ok(runtime)
}

impl Runtime {
    /// Builds the probe model on `backend` and runs it once, checking its answer.
    fn probe(&self, backend: Backend) -> Result<(), String> {
        if backend == Backend::Cuda && !ort::ep::CUDA::is_available().unwrap_or(false) {
            return Err("this ONNX Runtime build has no CUDA provider (the CPU build)".to_owned());
        }
        let mut session = self
            .session_builder(backend, 1)
            .and_then(|mut b| b.commit_from_memory(PROBE_MODEL))
            .map_err(|e| first_line(&e.to_string()))?;
        let x = [1.0_f32, -2.0, 0.5, 3.0];
        let input = ort::value::TensorRef::from_array_view(([1_usize, 4], &x[..]))
            .map_err(|e| e.to_string())?;
        let outputs = session
            .run(ort::inputs![input])
            .map_err(|e| first_line(&e.to_string()))?;
        let (_, y) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        if y.iter().zip(x).all(|(y, x)| *y == 2.0 * x) {
            Ok(())
        } else {
            Err(format!("the probe model gave a wrong answer: {y:?}"))
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_owned()
}

/// Finds the library file to load, following the order in the module docs.
pub fn locate_library() -> Result<PathBuf, RuntimeError> {
    for variable in [ENV_ORT_DYLIB, ENV_ORT_DYLIB_ORT] {
        if let Some(value) = std::env::var_os(variable).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(value);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(RuntimeError::EnvPathMissing { variable, path })
            };
        }
    }
    let folders = search_folders();
    for folder in &folders {
        for name in LIBRARY_NAMES {
            let candidate = folder.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(RuntimeError::NotFound { searched: folders })
}

/// The folders searched for the library, in order, without duplicates.
pub fn search_folders() -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if !folders.contains(&p) {
            folders.push(p);
        }
    };
    // Beside the binary this code is in: the plugin's own file inside a host (never the host's
    // executable), or the executable for the CLI and tests.
    let own = own_binary_folder().or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
    });
    for base in own.into_iter() {
        push(base.clone());
        // Development builds: target/<profile>/ (binaries), target/<profile>/deps/ (tests) and
        // target/bundled/ all find target/ort/{gpu,cpu}.
        for target in base.ancestors().skip(1).take(2) {
            push(target.join("ort").join("gpu"));
            push(target.join("ort").join("cpu"));
        }
    }
    folders
}

/// The folder of the binary this code is running from: the plugin's shared library when loaded
/// by a host, or the executable.
fn own_binary_folder() -> Option<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        // SAFETY: dladdr only reads the loader's tables; `info` is plain data it fills in.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        let address = own_binary_folder as *const () as *const libc::c_void;
        if unsafe { libc::dladdr(address, &mut info) } == 0 || info.dli_fname.is_null() {
            return None;
        }
        // SAFETY: dladdr returned a NUL-terminated path that lives as long as the module.
        let bytes = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_bytes().to_vec();
        let path = PathBuf::from(OsString::from_vec(bytes));
        let path = path.canonicalize().unwrap_or(path);
        path.parent().map(Path::to_path_buf)
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStringExt;
        use windows_sys::Win32::System::LibraryLoader::{
            GetModuleFileNameW, GetModuleHandleExW, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
            GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
        };
        // The module (the plugin's DLL, or the executable) that holds this very function.
        let address = own_binary_folder as *const () as *const u16;
        let mut module = std::ptr::null_mut();
        let flags = GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT;
        // SAFETY: with FROM_ADDRESS the name argument is an address inside a loaded module; the
        // handle is only read (UNCHANGED_REFCOUNT: nothing to release).
        if unsafe { GetModuleHandleExW(flags, address, &mut module) } == 0 {
            return None;
        }
        // Long paths: grow the buffer until the name fits (the call truncates silently).
        let mut buffer = vec![0u16; 512];
        loop {
            // SAFETY: `buffer` is writable for its length, which is what the call is told.
            let written = unsafe { GetModuleFileNameW(module, buffer.as_mut_ptr(), buffer.len() as u32) } as usize;
            if written == 0 {
                return None;
            }
            if written < buffer.len() {
                let path = PathBuf::from(OsString::from_wide(&buffer[..written]));
                return path.parent().map(Path::to_path_buf);
            }
            if buffer.len() >= 32_768 {
                return None;
            }
            buffer.resize(buffer.len() * 2, 0);
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_error_names_every_folder_and_the_fix() {
        let e = RuntimeError::NotFound {
            searched: vec![PathBuf::from("/a"), PathBuf::from("/b")],
        };
        let text = e.to_string();
        assert!(text.contains("/a, /b"), "{text}");
        assert!(text.contains("cargo xtask fetch-ort"), "{text}");
        assert!(text.contains(ORT_VERSION), "{text}");
    }

    #[test]
    fn search_folders_start_beside_this_binary() {
        let folders = search_folders();
        let exe_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
        assert!(folders.contains(&exe_dir.canonicalize().unwrap()) || folders.contains(&exe_dir));
        assert!(folders.iter().any(|f| f.ends_with("ort/cpu")));
    }
}
