//! Configuration errors and where a value came from.
//!
//! Every error names the offending key (`section.key`) and, when the value did not come from
//! the built-in defaults, its origin (a file path, an environment variable, a CLI flag), so an
//! operator can fix it from one line on stderr. Secret values never appear in a message.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A TOML file (`--config F` or `/etc/image-layered/config.toml`).
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// A command-line flag, by name (e.g. `--listen`).
    Cli(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "in {}", path.display()),
            Source::Env(name) => write!(f, "from {name}"),
            Source::Cli(flag) => write!(f, "from {flag}"),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("configuration file {} is not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    /// A section or key that does not exist.
    #[error("unknown configuration key \"{key}\" {origin}")]
    UnknownKey { key: String, origin: Source },
    /// A value of the wrong type, out of range, or inconsistent with another key.
    #[error("{key} = {value}{} {reason}", origin_suffix(.origin))]
    Invalid {
        key: String,
        /// The offending value as TOML, or `"<redacted>"` for secrets.
        value: String,
        /// `None` when the value is the built-in default or was set in code.
        origin: Option<Source>,
        /// What is wrong and what is allowed, e.g. `is out of range: allowed 24..=72`.
        reason: String,
    },
}

fn origin_suffix(origin: &Option<Source>) -> String {
    match origin {
        Some(origin) => format!(" ({origin})"),
        None => String::new(),
    }
}

impl ConfigError {
    /// Stable snake_case code for scripts and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Unreadable { .. } | ConfigError::Syntax { .. } => "config_unreadable",
            ConfigError::UnknownKey { .. } => "config_unknown_key",
            ConfigError::Invalid { .. } => "config_invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_key_and_origin() {
        let err = ConfigError::Invalid {
            key: "retention.temporary_hours".into(),
            value: "80".into(),
            origin: Some(Source::Env(
                "IMAGE_LAYERED__RETENTION__TEMPORARY_HOURS".into(),
            )),
            reason: "is out of range: allowed 24..=72".into(),
        };
        assert_eq!(
            err.to_string(),
            "retention.temporary_hours = 80 (from IMAGE_LAYERED__RETENTION__TEMPORARY_HOURS) \
             is out of range: allowed 24..=72"
        );
        assert_eq!(err.code(), "config_invalid");

        let err = ConfigError::UnknownKey {
            key: "retention.temprary_hours".into(),
            origin: Source::File("/etc/x.toml".into()),
        };
        assert_eq!(
            err.to_string(),
            "unknown configuration key \"retention.temprary_hours\" in /etc/x.toml"
        );
        assert_eq!(err.code(), "config_unknown_key");

        let err = ConfigError::Invalid {
            key: "jobs.workers".into(),
            value: "0".into(),
            origin: None,
            reason: "is out of range: allowed 1..=64".into(),
        };
        assert_eq!(
            err.to_string(),
            "jobs.workers = 0 is out of range: allowed 1..=64"
        );
    }
}
