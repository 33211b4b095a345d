//! The process-wide ONNX Runtime: loading the shared library once, and choosing the
//! execution provider.
//!
//! `ort` allows one environment per process and loads one runtime library per process, so
//! both live in a static: the first successful [`environment`] call loads the library and
//! builds the environment, later calls reuse it (a different library path then only logs a
//! warning). A failed load leaves nothing behind, so it can be retried after
//! `image-layered models fetch`.
//!
//! CUDA is never assumed: [`probe_cuda`] registers the CUDA execution provider with
//! `error_on_failure` on a tiny built-in model and runs it, so a missing provider library,
//! CUDA/cuDNN library, driver or GPU shows up here, at start-up, with ONNX Runtime's reason.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;

use super::InferenceError;

/// Where inference runs once chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    Cpu,
    Cuda,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }
}

struct Runtime {
    env: Environment,
    lib: PathBuf,
}

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// The process's ONNX Runtime environment, loading `lib` on first use.
pub(crate) fn environment(lib: &Path) -> Result<Environment, InferenceError> {
    let missing = |cause: String| InferenceError::RuntimeMissing {
        path: lib.to_path_buf(),
        cause,
    };
    if !lib.is_file() {
        return Err(missing("file not found".into()));
    }
    let mut runtime = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = runtime.as_ref() {
        if rt.lib != lib {
            tracing::warn!(
                loaded = %rt.lib.display(),
                requested = %lib.display(),
                "ONNX Runtime is already loaded in this process; keeping the loaded library"
            );
        }
        return Ok(rt.env.clone());
    }
    let builder = ort::init_from(lib).map_err(|e| missing(e.to_string()))?;
    let env = builder
        .with_name("image-layered")
        .with_telemetry(false)
        .build()
        .map_err(|e| missing(e.to_string()))?;
    tracing::info!(library = %lib.display(), "ONNX Runtime loaded");
    *runtime = Some(Runtime {
        env: env.clone(),
        lib: lib.to_path_buf(),
    });
    Ok(env)
}

/// Shared libraries the CUDA execution provider loads, in dependency order.
#[cfg(feature = "cuda")]
fn cuda_libraries() -> impl Iterator<Item = &'static str> {
    ort::ep::cuda::CUDA_DYLIBS
        .iter()
        .chain(ort::ep::cuda::CUDNN_DYLIBS)
        .copied()
}

/// Preloads the CUDA and cuDNN libraries found in `lib_dirs` (e.g. the `nvidia-*` wheels'
/// `lib/` folders), so the provider finds them without `LD_LIBRARY_PATH`. Returns the names
/// not found there (they may still be found system-wide).
#[cfg(feature = "cuda")]
fn preload_cuda_libraries(lib_dirs: &[PathBuf]) -> Vec<&'static str> {
    let mut not_found = Vec::new();
    for name in cuda_libraries() {
        match lib_dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            Some(path) => {
                if let Err(e) = ort::util::preload_dylib(&path) {
                    tracing::warn!(library = %path.display(), error = %e, "could not preload");
                    not_found.push(name);
                }
            }
            None => not_found.push(name),
        }
    }
    not_found
}

/// Whether the CUDA execution provider works here: `Ok(())`, or the reason it does not.
#[cfg(feature = "cuda")]
pub(crate) fn probe_cuda(
    env: &Environment,
    lib: &Path,
    lib_dirs: &[PathBuf],
) -> Result<(), String> {
    use ort::ep::ExecutionProvider;

    match ort::ep::CUDA::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "the ONNX Runtime library {} has no CUDA execution provider (it is the CPU \
                 build); install the GPU build with `image-layered models fetch --gpu`",
                lib.display()
            ))
        }
        Err(e) => return Err(format!("cannot list execution providers: {e}")),
    }
    let not_found = preload_cuda_libraries(lib_dirs);
    let hint = |cause: String| {
        if not_found.is_empty() {
            cause
        } else {
            format!(
                "{cause} (neither in the models' library folders nor found by the dynamic \
                 loader: {}; put their folders on LD_LIBRARY_PATH, as models.cuda_libraries = \
                 \"system\" expects, or install them with `image-layered models fetch --gpu` \
                 under models.cuda_libraries = \"fetched\")",
                not_found.join(", ")
            )
        }
    };
    let builder = Session::builder(env).map_err(|e| e.to_string())?;
    let mut builder = builder
        .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
        .map_err(|e| hint(e.to_string()))?;
    let mut session = builder
        .commit_from_memory(&super::onnx_proto::probe_model())
        .map_err(|e| hint(e.to_string()))?;
    let input = [1.0f32];
    let tensor = ort::value::TensorRef::from_array_view(([1usize], &input[..]))
        .map_err(|e| e.to_string())?;
    session
        .run(ort::inputs![tensor])
        .map_err(|e| hint(format!("a test run on the GPU failed: {e}")))?;
    Ok(())
}

/// Without the `cuda` feature CUDA is never available.
#[cfg(not(feature = "cuda"))]
pub(crate) fn probe_cuda(
    _env: &Environment,
    _lib: &Path,
    _lib_dirs: &[PathBuf],
) -> Result<(), String> {
    Err(
        "this build of image-layered has no CUDA support (built without the `cuda` \
         feature)"
            .into(),
    )
}

/// A session for the model at `path` (or in `bytes`) on `provider` with `intra_threads`
/// (0 = ONNX Runtime's default).
pub(crate) fn build_session(
    env: &Environment,
    provider: Provider,
    intra_threads: usize,
    model: &'static str,
    path: &Path,
) -> Result<Session, InferenceError> {
    let failed = |cause: String| InferenceError::ModelLoadFailed {
        model,
        path: path.to_path_buf(),
        cause,
    };
    if !path.is_file() {
        return Err(failed(
            "file not found; run `image-layered models fetch` to install it".into(),
        ));
    }
    let mut builder = Session::builder(env).map_err(|e| failed(e.to_string()))?;
    if intra_threads > 0 {
        builder = builder
            .with_intra_threads(intra_threads)
            .map_err(|e| failed(e.to_string()))?;
    }
    if provider == Provider::Cuda {
        builder = with_cuda(builder).map_err(failed)?;
    } else {
        // No arena and no memory pattern: ISNet's ~1 GB of activations go back to the
        // system after each run instead of staying reserved (a decomposition's peak is the
        // model's run plus the image work, not their sum). Basic graph optimisations only:
        // the extended ones repack every convolution's weights (+336 MiB resident for ISNet,
        // 256 MiB more at the peak of a run) for no measurable speed here (2.16 s vs 2.14 s
        // per 1024² run on 2 cores).
        builder = builder
            .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
            .map_err(|e| failed(e.to_string()))?
            .with_memory_pattern(false)
            .map_err(|e| failed(e.to_string()))?
            .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level1)
            .map_err(|e| failed(e.to_string()))?;
    }
    builder
        .commit_from_file(path)
        .map_err(|e| failed(e.to_string()))
}

#[cfg(feature = "cuda")]
fn with_cuda(
    builder: ort::session::builder::SessionBuilder,
) -> Result<ort::session::builder::SessionBuilder, String> {
    builder
        .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
        .map_err(|e| format!("CUDA execution provider: {e}"))
}

#[cfg(not(feature = "cuda"))]
fn with_cuda(
    _builder: ort::session::builder::SessionBuilder,
) -> Result<ort::session::builder::SessionBuilder, String> {
    Err("built without the `cuda` feature".into())
}
