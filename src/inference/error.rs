//! [`InferenceError`]: every way loading or running a model can fail, with a stable code.
//!
//! Messages name the file or model involved and say what to do about it; they never carry
//! image data. ONNX Runtime's own messages are kept as the `cause` text.

use std::path::PathBuf;

/// Why the runtime, a model or an inference failed.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The ONNX Runtime shared library is missing or could not be loaded.
    #[error(
        "the ONNX Runtime library {} could not be loaded ({cause}); run `image-layered models fetch` to install it",
        path.display()
    )]
    RuntimeMissing { path: PathBuf, cause: String },

    /// `device = "cuda"` was asked for and the CUDA execution provider cannot be used.
    #[error("CUDA was requested but cannot be used: {0}")]
    CudaUnavailable(String),

    /// A model file is missing or ONNX Runtime refused it.
    #[error("model {model} could not be loaded from {}: {cause}", path.display())]
    ModelLoadFailed {
        model: &'static str,
        path: PathBuf,
        cause: String,
    },

    /// A session run failed or produced output of an unexpected shape.
    #[error("{model} inference failed: {cause}")]
    InferenceFailed { model: &'static str, cause: String },

    /// The caller's input cannot be processed (empty image, mismatched mask, …).
    #[error("bad input: {0}")]
    BadInput(String),
}

impl InferenceError {
    /// A stable snake_case code for logs, job failures and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            InferenceError::RuntimeMissing { .. } => "runtime_missing",
            InferenceError::CudaUnavailable(_) => "cuda_unavailable",
            InferenceError::ModelLoadFailed { .. } => "model_load_failed",
            InferenceError::InferenceFailed { .. } => "inference_failed",
            InferenceError::BadInput(_) => "bad_input",
        }
    }

    pub(crate) fn failed(model: &'static str, cause: impl std::fmt::Display) -> Self {
        InferenceError::InferenceFailed {
            model,
            cause: cause.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_say_what_to_do() {
        let missing = InferenceError::RuntimeMissing {
            path: PathBuf::from("/m/libonnxruntime.so.1.31.1"),
            cause: "file not found".into(),
        };
        assert_eq!(missing.code(), "runtime_missing");
        let text = missing.to_string();
        assert!(text.contains("/m/libonnxruntime.so.1.31.1"), "{text}");
        assert!(text.contains("image-layered models fetch"), "{text}");
        assert_eq!(
            InferenceError::CudaUnavailable("x".into()).code(),
            "cuda_unavailable"
        );
        let load = InferenceError::ModelLoadFailed {
            model: "isnet",
            path: PathBuf::from("/m/isnet.onnx"),
            cause: "bad".into(),
        };
        assert_eq!(load.code(), "model_load_failed");
        assert!(load.to_string().contains("/m/isnet.onnx"));
        assert_eq!(
            InferenceError::failed("isnet", "boom").code(),
            "inference_failed"
        );
        assert_eq!(InferenceError::BadInput("e".into()).code(), "bad_input");
    }
}
