//! Building a [`Config`] from its layers: defaults < file < environment < CLI flags.
//!
//! The defaults are serialized to a TOML table; each layer is merged into it key by key,
//! checking that the section and key exist and that the value has the default's type (an
//! integer key takes an integer, and so on). Environment values are read by the type of the
//! key they set: string keys take the raw text verbatim, other keys parse it as a TOML scalar
//! (integer, float, bool). The origin of every overridden key is recorded so that a bad value
//! is reported with its source. The merged table is then deserialized (parsing addresses and
//! the cron schedule) and validated.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::error::{ConfigError, Source};
use super::{is_secret_key, Config, REDACTED};

/// The configuration file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/image-layered/config.toml";

/// Environment variables `IMAGE_LAYERED__SECTION__KEY` override `section.key`.
pub const ENV_PREFIX: &str = "IMAGE_LAYERED__";

/// The command-line flags that override the configuration (highest precedence).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--config F`: read this file instead of [`DEFAULT_CONFIG_PATH`]; it must exist.
    pub config_path: Option<PathBuf>,
    /// `--data-dir D`.
    pub data_dir: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<SocketAddr>,
}

/// Where each overridden key (`section.key`) came from; keys at their default are absent.
#[derive(Debug, Default)]
pub(super) struct Origins(BTreeMap<String, Source>);

impl Origins {
    pub(super) fn get(&self, key: &str) -> Option<Source> {
        self.0.get(key).cloned()
    }
}

impl Config {
    /// Loads the configuration from the default or given file, the process environment and
    /// the CLI overrides.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => env.push((name.to_owned(), value)),
                Err(_) => {
                    return Err(ConfigError::Invalid {
                        key: env_key(name),
                        value: "(not UTF-8)".into(),
                        origin: Some(Source::Env(name.to_owned())),
                        reason: "is not valid UTF-8".into(),
                    })
                }
            }
        }
        Self::load_from(overrides, env)
    }

    /// Like [`Config::load`], with the environment given explicitly (variables without the
    /// `IMAGE_LAYERED__` prefix are ignored). Still reads [`DEFAULT_CONFIG_PATH`] when
    /// `overrides.config_path` is `None` and that file exists.
    pub fn load_from(
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let file = match &overrides.config_path {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
        };
        load_layers(file.as_deref(), env, overrides)
    }
}

/// The whole pipeline with the file chosen by the caller (tests pass their own).
pub(super) fn load_layers(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let mut merged = Merged::defaults();
    if let Some(path) = file {
        merged.merge_file(path)?;
    }
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    env.sort();
    for (name, raw) in env {
        merged.merge_env(&name, &raw)?;
    }
    if let Some(dir) = &overrides.data_dir {
        let Some(dir) = dir.to_str() else {
            return Err(ConfigError::Invalid {
                key: "server.data_dir".into(),
                value: format!("{:?}", dir.display().to_string()),
                origin: Some(Source::Cli("--data-dir")),
                reason: "is not valid UTF-8".into(),
            });
        };
        merged.set(
            "server",
            "data_dir",
            Value::String(dir.into()),
            Source::Cli("--data-dir"),
        )?;
    }
    if let Some(listen) = overrides.listen {
        let value = Value::String(listen.to_string());
        merged.set("server", "listen", value, Source::Cli("--listen"))?;
    }
    let config = merged.build()?;
    config.validate_with(&merged.origins)?;
    Ok(config)
}

/// `IMAGE_LAYERED__RETENTION__TEMPORARY_HOURS` → `retention.temporary_hours`.
fn env_key(name: &str) -> String {
    name.strip_prefix(ENV_PREFIX)
        .unwrap_or(name)
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

/// The defaults table with the layers merged so far, and where each override came from.
struct Merged {
    defaults: Table,
    table: Table,
    origins: Origins,
}

impl Merged {
    fn defaults() -> Self {
        let defaults =
            Table::try_from(Config::default()).expect("the built-in defaults serialize to TOML");
        Self {
            table: defaults.clone(),
            defaults,
            origins: Origins::default(),
        }
    }

    fn merge_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        let file: Table = toml::from_str(&text).map_err(|err| ConfigError::Syntax {
            path: path.to_owned(),
            message: syntax_message(&text, &err),
        })?;
        let origin = Source::File(path.to_owned());
        for (section, body) in file {
            let Value::Table(body) = body else {
                return Err(unknown(&section, &origin));
            };
            if !self.defaults.contains_key(&section) {
                return Err(unknown(&section, &origin));
            }
            for (key, value) in body {
                self.set_path(&[&section, &key], value, origin.clone())?;
            }
        }
        Ok(())
    }

    fn merge_env(&mut self, name: &str, raw: &str) -> Result<(), ConfigError> {
        let origin = Source::Env(name.to_owned());
        let dotted = env_key(name);
        let path: Vec<&str> = dotted.split('.').collect();
        if path.len() < 2 {
            return Err(unknown(&dotted, &origin));
        }
        let Some(default) = self.default_of(&path) else {
            return Err(unknown(&dotted, &origin));
        };
        let value = match default {
            Value::String(_) => Value::String(raw.to_owned()),
            _ => parse_scalar(raw)
                .filter(|v| same_type(default, v))
                .ok_or_else(|| ConfigError::Invalid {
                    value: show(&dotted, &Value::String(raw.to_owned())),
                    reason: format!("is not {}", type_name(default)),
                    key: dotted.clone(),
                    origin: Some(origin.clone()),
                })?,
        };
        self.set_path(&path, value, origin)
    }

    fn default_of(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        rest.iter()
            .try_fold(self.defaults.get(*first)?, |v, k| v.as_table()?.get(*k))
    }

    /// Sets `section.key`, see [`set_path`](Self::set_path).
    fn set(
        &mut self,
        section: &str,
        key: &str,
        value: Value,
        origin: Source,
    ) -> Result<(), ConfigError> {
        self.set_path(&[section, key], value, origin)
    }

    /// Sets the key at `path` after checking it exists and the value has the default's type.
    /// A table (e.g. `[plans.free]`) sets each key it names and keeps the defaults of the
    /// others. Every integer key is a count, size or duration, so negative integers are
    /// refused here.
    fn set_path(&mut self, path: &[&str], value: Value, origin: Source) -> Result<(), ConfigError> {
        let dotted = path.join(".");
        let Some(default) = self.default_of(path) else {
            return Err(unknown(&dotted, &origin));
        };
        if let (Value::Table(_), Value::Table(body)) = (default, &value) {
            for (key, v) in body.clone() {
                let mut sub = path.to_vec();
                sub.push(&key);
                self.set_path(&sub, v, origin.clone())?;
            }
            return Ok(());
        }
        if !same_type(default, &value) {
            return Err(ConfigError::Invalid {
                value: show(&dotted, &value),
                reason: format!("has the wrong type: expected {}", type_name(default)),
                key: dotted,
                origin: Some(origin),
            });
        }
        if matches!(value, Value::Integer(i) if i < 0) {
            return Err(ConfigError::Invalid {
                value: show(&dotted, &value),
                reason: "is negative: expected a whole number >= 0".into(),
                key: dotted,
                origin: Some(origin),
            });
        }
        let value = match (default, value) {
            (Value::Float(_), Value::Integer(i)) => Value::Float(i as f64),
            (_, value) => value,
        };
        if let Some(slot) = value_at_mut(&mut self.table, path) {
            *slot = value;
        }
        self.origins.0.insert(dotted, origin);
        Ok(())
    }

    /// Deserializes the merged table; on failure, finds the first overridden key that fails
    /// on its own so the error can name it and its origin.
    fn build(&self) -> Result<Config, ConfigError> {
        let whole = self.table.clone().try_into::<Config>();
        let whole_err = match whole {
            Ok(config) => return Ok(config),
            Err(err) => err,
        };
        for (dotted, origin) in &self.origins.0 {
            let path: Vec<&str> = dotted.split('.').collect();
            let mut table = self.table.clone();
            let Some(value) = value_at_mut(&mut table, &path).map(|v| v.clone()) else {
                continue;
            };
            let mut probe = self.defaults.clone();
            if let Some(slot) = value_at_mut(&mut probe, &path) {
                *slot = value.clone();
            }
            if let Err(err) = probe.try_into::<Config>() {
                return Err(ConfigError::Invalid {
                    key: dotted.clone(),
                    value: show(dotted, &value),
                    origin: Some(origin.clone()),
                    reason: format!("is invalid: {}{}", serde_reason(&err, dotted), hint(dotted)),
                });
            }
        }
        Err(ConfigError::Invalid {
            key: "(configuration)".into(),
            value: "(merged)".into(),
            origin: None,
            reason: format!("is invalid: {}", one_line(&whole_err)),
        })
    }
}

/// The value at a dotted path of a table, if every step exists.
fn value_at_mut<'a>(table: &'a mut Table, path: &[&str]) -> Option<&'a mut Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(table.get_mut(*first)?, |v, k| v.as_table_mut()?.get_mut(*k))
}

fn unknown(key: &str, origin: &Source) -> ConfigError {
    ConfigError::UnknownKey {
        key: key.to_owned(),
        origin: origin.clone(),
    }
}

/// A TOML scalar from an environment value (`v = <raw>` must be a one-key document).
fn parse_scalar(raw: &str) -> Option<Value> {
    let mut doc: Table = toml::from_str(&format!("v = {}", raw.trim())).ok()?;
    if doc.len() != 1 {
        return None;
    }
    doc.remove("v")
}

fn same_type(default: &Value, value: &Value) -> bool {
    match (default, value) {
        (Value::Float(_), Value::Integer(_)) => true,
        (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// A value as it appears in an error message; secrets are never shown.
pub(super) fn show(key: &str, value: &Value) -> String {
    if is_secret_key(key) {
        format!("\"{REDACTED}\"")
    } else {
        value.to_string()
    }
}

/// What is allowed, for keys whose type alone does not say.
fn hint(key: &str) -> &'static str {
    match key {
        "server.listen" => "; expected IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::]:8080\"",
        "retention.schedule" => {
            "; expected a cron expression with seconds: \
             \"sec min hour day-of-month month day-of-week [year]\", e.g. \"0 0 * * * *\""
        }
        _ => "",
    }
}

/// A deserialization error without `toml`'s trailing "in `section.key`" (we name the key).
fn serde_reason(err: &impl std::fmt::Display, key: &str) -> String {
    let message = one_line(err);
    let suffix = format!(" in `{key}`");
    message
        .strip_suffix(&suffix)
        .map(str::to_owned)
        .unwrap_or(message)
}

fn one_line(err: &impl std::fmt::Display) -> String {
    err.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `toml`'s message with a line and column instead of its multi-line snippet.
fn syntax_message(text: &str, err: &toml::de::Error) -> String {
    let message = one_line(&err.message());
    match err.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}
