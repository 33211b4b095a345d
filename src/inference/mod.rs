//! Inference: the only code that touches `ort` (ONNX Runtime).
//!
//! [`Inference::load`] loads the runtime shared library once per process (see
//! `runtime.rs`), picks the execution provider and hands out model wrappers:
//! [`Segmenter`] (ISNet mattes), [`TextDetector`] and [`TextRecognizer`] (PP-OCRv4) and the
//! optional [`Inpainter`]. Each wrapper does its model's real pre- and post-processing on
//! `image` buffers at the source resolution, matching the Python pipelines the models ship
//! with (documented per module).
//!
//! Invariants:
//! - the device choice is explicit: `cpu` is CPU; `cuda` is CUDA or
//!   [`InferenceError::CudaUnavailable`] naming the cause, never a silent CPU fallback;
//!   `auto` is CUDA when it works, else CPU, and logs which;
//! - each model's session is created on first use and cached for the life of the
//!   [`Inference`]; a failed creation is not cached, so it is retried on the next call;
//! - at most `concurrency` session runs are in flight per [`Inference`] (a blocking
//!   semaphore: call from blocking threads), each with `intra_threads` ONNX Runtime threads;
//! - [`MatteModel`] has a deterministic [`FakeSegmenter`] so the decomposition code is
//!   testable without ONNX Runtime.

mod det;
mod error;
mod geometry;
mod inpaint;
#[cfg(any(feature = "cuda", test))]
mod onnx_proto;
mod peel;
mod rec;
mod resize;
mod runtime;
mod segment;
mod session;
mod warp;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::environment::Environment;

use crate::config::{Device, InferenceConfig};

pub use det::{TextBox, TextDetector};
pub use error::InferenceError;
pub use inpaint::Inpainter;
pub use rec::TextRecognizer;
pub use segment::{isnet_input, FakeSegmenter, MatteModel, Segmenter, ISNET_SIZE};

use runtime::Provider;
use session::{ModelSession, Permits};

/// Where the runtime and the models are on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// The ONNX Runtime shared library (`libonnxruntime.so.1.31.1`). Its folder must also
    /// hold `libonnxruntime_providers_shared.so` and, for CUDA,
    /// `libonnxruntime_providers_cuda.so`.
    pub runtime_lib: PathBuf,
    /// Folders searched for the CUDA and cuDNN libraries (preloaded when CUDA is tried).
    pub lib_dirs: Vec<PathBuf>,
    pub isnet: PathBuf,
    pub ocr_det: PathBuf,
    pub ocr_rec: PathBuf,
    pub ocr_cls: PathBuf,
    /// A user-supplied LaMa / MI-GAN style model, if configured.
    pub inpaint: Option<PathBuf>,
}

impl ModelFiles {
    /// A models directory as `image-layered models fetch` lays it out (runtime under
    /// `runtime/`), or the flat layout `dir/{libonnxruntime.so.1.31.1, isnet.onnx, …}`;
    /// no inpainting model.
    pub fn in_dir(dir: &Path) -> Self {
        let fetched = dir.join("runtime");
        let runtime_dir = if fetched.join(RUNTIME_LIB).is_file() {
            fetched
        } else {
            dir.to_path_buf()
        };
        Self {
            runtime_lib: runtime_dir.join(RUNTIME_LIB),
            lib_dirs: vec![runtime_dir],
            isnet: dir.join("isnet.onnx"),
            ocr_det: dir.join("ppocr-det.onnx"),
            ocr_rec: dir.join("ppocr-rec.onnx"),
            ocr_cls: dir.join("ppocr-cls.onnx"),
            inpaint: None,
        }
    }
}

impl From<&crate::models::InstalledModels> for ModelFiles {
    fn from(m: &crate::models::InstalledModels) -> Self {
        Self {
            runtime_lib: m.runtime_lib.clone(),
            lib_dirs: m.lib_dirs.clone(),
            isnet: m.isnet.clone(),
            ocr_det: m.ocr_det.clone(),
            ocr_rec: m.ocr_rec.clone(),
            ocr_cls: m.ocr_cls.clone(),
            inpaint: m.inpaint.clone(),
        }
    }
}

/// The runtime library's file name in the `onnxruntime==1.31.1` wheel (`onnxruntime/capi/`).
pub const RUNTIME_LIB: &str = "libonnxruntime.so.1.31.1";

/// How inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InferenceOptions {
    pub device: Device,
    /// Intra-op threads per session; 0 = ONNX Runtime's default.
    pub intra_threads: usize,
    /// Session runs in flight at once (0 is treated as 1).
    pub concurrency: usize,
}

impl From<&InferenceConfig> for InferenceOptions {
    fn from(config: &InferenceConfig) -> Self {
        Self {
            device: config.device,
            intra_threads: config.intra_threads,
            concurrency: config.concurrency,
        }
    }
}

/// The models this module knows, in the order of [`Inference`]'s session slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Isnet,
    OcrDet,
    OcrRec,
    OcrCls,
    Inpaint,
}

impl Model {
    const ALL: [Model; 5] = [
        Model::Isnet,
        Model::OcrDet,
        Model::OcrRec,
        Model::OcrCls,
        Model::Inpaint,
    ];

    fn name(self) -> &'static str {
        match self {
            Model::Isnet => "isnet",
            Model::OcrDet => "ppocr-det",
            Model::OcrRec => "ppocr-rec",
            Model::OcrCls => "ppocr-cls",
            Model::Inpaint => "inpaint",
        }
    }
}

/// The loaded runtime, the chosen provider and the session cache. `Send + Sync`; share it
/// as `Arc<Inference>`.
pub struct Inference {
    env: Environment,
    files: ModelFiles,
    provider: Provider,
    intra_threads: usize,
    permits: Arc<Permits>,
    sessions: [Mutex<Option<Arc<ModelSession>>>; 5],
}

impl Inference {
    /// Loads the runtime (once per process), chooses the execution provider as
    /// `opts.device` says, and returns an inference handle with no sessions yet.
    pub fn load(files: &ModelFiles, opts: &InferenceOptions) -> Result<Arc<Self>, InferenceError> {
        let env = runtime::environment(&files.runtime_lib)?;
        let provider = match opts.device {
            Device::Cpu => Provider::Cpu,
            Device::Cuda => {
                runtime::probe_cuda(&env, &files.runtime_lib, &files.lib_dirs)
                    .map_err(InferenceError::CudaUnavailable)?;
                Provider::Cuda
            }
            Device::Auto => match runtime::probe_cuda(&env, &files.runtime_lib, &files.lib_dirs) {
                Ok(()) => Provider::Cuda,
                Err(cause) => {
                    tracing::info!(%cause, "CUDA not available; running inference on the CPU");
                    Provider::Cpu
                }
            },
        };
        tracing::info!(
            provider = provider.name(),
            intra_threads = opts.intra_threads,
            concurrency = opts.concurrency.max(1),
            "inference ready"
        );
        Ok(Arc::new(Self {
            env,
            files: files.clone(),
            provider,
            intra_threads: opts.intra_threads,
            permits: Arc::new(Permits::new(opts.concurrency)),
            sessions: Default::default(),
        }))
    }

    /// The execution provider in use: `"cpu"` or `"cuda"`.
    pub fn provider(&self) -> &'static str {
        self.provider.name()
    }

    /// Names of the models with a live session.
    pub fn loaded(&self) -> Vec<&'static str> {
        Model::ALL
            .iter()
            .zip(&self.sessions)
            .filter(|(_, slot)| slot.lock().unwrap_or_else(|p| p.into_inner()).is_some())
            .map(|(model, _)| model.name())
            .collect()
    }

    /// Every model with whether its session is live and how long it took to load (ms).
    pub fn models(&self) -> Vec<(&'static str, Option<u64>)> {
        Model::ALL
            .iter()
            .zip(&self.sessions)
            .map(|(model, slot)| {
                let slot = slot.lock().unwrap_or_else(|p| p.into_inner());
                (model.name(), slot.as_ref().map(|s| s.load_ms))
            })
            .collect()
    }

    /// The ISNet segmenter.
    pub fn segmenter(&self) -> Result<Segmenter, InferenceError> {
        Ok(Segmenter::new(self.session(Model::Isnet)?))
    }

    /// The PP-OCRv4 text detector.
    pub fn text_detector(&self) -> Result<TextDetector, InferenceError> {
        Ok(TextDetector::new(self.session(Model::OcrDet)?))
    }

    /// The PP-OCRv4 text recogniser (with the text-angle classifier).
    pub fn text_recognizer(&self) -> Result<TextRecognizer, InferenceError> {
        TextRecognizer::new(self.session(Model::OcrRec)?, self.session(Model::OcrCls)?)
    }

    /// The configured inpainting model, or `None` when there is none.
    pub fn inpainter(&self) -> Result<Option<Inpainter>, InferenceError> {
        if self.files.inpaint.is_none() {
            return Ok(None);
        }
        let session = self.session(Model::Inpaint)?;
        match Inpainter::new(session) {
            Ok(inpainter) => Ok(Some(inpainter)),
            Err(InferenceError::ModelLoadFailed { model, cause, .. }) => {
                // Do not keep a session for a model we cannot use.
                *self.slot(Model::Inpaint) = None;
                Err(InferenceError::ModelLoadFailed {
                    model,
                    path: self.files.inpaint.clone().unwrap_or_default(),
                    cause,
                })
            }
            Err(other) => Err(other),
        }
    }

    fn path(&self, model: Model) -> PathBuf {
        match model {
            Model::Isnet => self.files.isnet.clone(),
            Model::OcrDet => self.files.ocr_det.clone(),
            Model::OcrRec => self.files.ocr_rec.clone(),
            Model::OcrCls => self.files.ocr_cls.clone(),
            Model::Inpaint => self.files.inpaint.clone().unwrap_or_default(),
        }
    }

    fn slot(&self, model: Model) -> std::sync::MutexGuard<'_, Option<Arc<ModelSession>>> {
        let index = Model::ALL.iter().position(|m| *m == model).unwrap_or(0);
        self.sessions[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The cached session for `model`, created on first use. The slot stays locked while
    /// the session is built, so concurrent first calls build it once.
    fn session(&self, model: Model) -> Result<Arc<ModelSession>, InferenceError> {
        let mut slot = self.slot(model);
        if let Some(session) = slot.as_ref() {
            return Ok(session.clone());
        }
        let started = std::time::Instant::now();
        let path = self.path(model);
        let session = runtime::build_session(
            &self.env,
            self.provider,
            self.intra_threads,
            model.name(),
            &path,
        )?;
        let load_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            model = model.name(),
            provider = self.provider.name(),
            ms = load_ms,
            "model loaded"
        );
        let session = Arc::new(ModelSession::new(
            model.name(),
            session,
            self.permits.clone(),
            load_ms,
        ));
        *slot = Some(session.clone());
        Ok(session)
    }
}

impl std::fmt::Debug for Inference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inference")
            .field("provider", &self.provider.name())
            .field("intra_threads", &self.intra_threads)
            .field("loaded", &self.loaded())
            .finish_non_exhaustive()
    }
}
