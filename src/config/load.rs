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
    let config = merged.into_config()?;
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
                self.set(&section, &key, value, origin.clone())?;
            }
        }
        Ok(())
    }

    fn merge_env(&mut self, name: &str, raw: &str) -> Result<(), ConfigError> {
        let origin = Source::Env(name.to_owned());
        let dotted = env_key(name);
        let (section, key) = match dotted.split_once('.') {
            Some((section, key)) if !key.contains('.') => (section, key),
            _ => return Err(unknown(&dotted, &origin)),
        };
        let Some(default) = self.default_of(section, key) else {
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
        self.set(section, key, value, origin)
    }

    fn default_of(&self, section: &str, key: &str) -> Option<&Value> {
        self.defaults.get(section)?.as_table()?.get(key)
    }

    /// Sets `section.key` after checking it exists and the value has the default's type.
    /// Every integer key is a count, size or duration, so negative integers are refused here.
    fn set(
        &mut self,
        section: &str,
        key: &str,
        value: Value,
        origin: Source,
    ) -> Result<(), ConfigError> {
        let dotted = format!("{section}.{key}");
        let Some(default) = self.default_of(section, key) else {
            return Err(unknown(&dotted, &origin));
        };
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
        if let Some(Value::Table(body)) = self.table.get_mut(section) {
            body.insert(key.to_owned(), value);
        }
        self.origins.0.insert(dotted, origin);
        Ok(())
    }

    /// Deserializes the merged table; on failure, finds the first overridden key that fails
    /// on its own so the error can name it and its origin.
    fn into_config(&self) -> Result<Config, ConfigError> {
        let whole = self.table.clone().try_into::<Config>();
        let whole_err = match whole {
            Ok(config) => return Ok(config),
            Err(err) => err,
        };
        for (dotted, origin) in &self.origins.0 {
            let Some((section, key)) = dotted.split_once('.') else {
                continue;
            };
            let Some(value) = self.table.get(section).and_then(|s| s.get(key)) else {
                continue;
            };
            let mut probe = self.defaults.clone();
            if let Some(Value::Table(body)) = probe.get_mut(section) {
                body.insert(key.to_owned(), value.clone());
            }
            if let Err(err) = probe.try_into::<Config>() {
                return Err(ConfigError::Invalid {
                    key: dotted.clone(),
                    value: show(dotted, value),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A config file in a temp dir (kept alive by the returned guard).
    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        (dir, path)
    }

    fn load(
        file: Option<&Path>,
        vars: &[(&str, &str)],
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        load_layers(file, env(vars), overrides)
    }

    #[test]
    fn defaults_load() {
        let config = load(None, &[("PATH", "/usr/bin")], &Overrides::default()).expect("load");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn example_file_loads_as_the_defaults() {
        let (_guard, path) = file(include_str!("../../config/image-layered.toml"));
        let config = load(Some(&path), &[], &Overrides::default()).expect("example loads");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn layers_override_in_order() {
        let (_guard, path) = file(
            "[server]\nlisten = \"127.0.0.1:7000\"\ndata_dir = \"/srv/file\"\n\
             request_timeout_secs = 90\n[jobs]\nworkers = 8\n",
        );
        let none = Overrides::default();

        // File overrides defaults.
        let config = load(Some(&path), &[], &none).expect("file");
        assert_eq!(config.server.listen.port(), 7000);
        assert_eq!(config.server.data_dir, PathBuf::from("/srv/file"));
        assert_eq!(config.server.request_timeout_secs, 90);
        assert_eq!(config.jobs.workers, 8);
        assert_eq!(
            config.store.flush_every_ms, 200,
            "untouched keys keep defaults"
        );

        // Env overrides file.
        let vars = [
            ("IMAGE_LAYERED__SERVER__LISTEN", "0.0.0.0:9000"),
            ("IMAGE_LAYERED__JOBS__WORKERS", "4"),
            ("IMAGE_LAYERED__RETENTION__TEMPORARY_HOURS", "24"),
            ("IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD", "12345678"),
        ];
        let config = load(Some(&path), &vars, &none).expect("env");
        assert_eq!(config.server.listen, "0.0.0.0:9000".parse().expect("addr"));
        assert_eq!(config.jobs.workers, 4);
        assert_eq!(config.retention.temporary_hours, 24);
        assert_eq!(config.bootstrap.admin_password.expose(), "12345678");
        assert_eq!(config.server.data_dir, PathBuf::from("/srv/file"));

        // CLI overrides env.
        let cli = Overrides {
            config_path: None,
            data_dir: Some("/var/lib/image-layered".into()),
            listen: Some("127.0.0.1:1234".parse().expect("addr")),
        };
        let config = load(Some(&path), &vars, &cli).expect("cli");
        assert_eq!(config.server.listen.port(), 1234);
        assert_eq!(
            config.server.data_dir,
            PathBuf::from("/var/lib/image-layered")
        );
        assert_eq!(
            config.master_key_path(),
            PathBuf::from("/var/lib/image-layered/keys/master.key")
        );
    }

    #[test]
    fn load_from_reads_the_given_config_path() {
        let (_guard, path) = file("[store]\ncache_capacity_mb = 256\n");
        let overrides = Overrides {
            config_path: Some(path),
            ..Overrides::default()
        };
        let config = Config::load_from(&overrides, env(&[])).expect("load");
        assert_eq!(config.store.cache_capacity_mb, 256);

        let missing = Overrides {
            config_path: Some("/nonexistent/image-layered.toml".into()),
            ..Overrides::default()
        };
        let err = Config::load_from(&missing, env(&[])).expect_err("missing file");
        assert_eq!(err.code(), "config_unreadable");
        assert!(
            err.to_string().contains("/nonexistent/image-layered.toml"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_in_file_fails_naming_it() {
        let (_guard, path) = file("[retention]\ntemprary_hours = 24\n");
        let err = load(Some(&path), &[], &Overrides::default()).expect_err("unknown key");
        assert_eq!(err.code(), "config_unknown_key");
        assert_eq!(
            err.to_string(),
            format!(
                "unknown configuration key \"retention.temprary_hours\" in {}",
                path.display()
            )
        );

        let (_guard, path) = file("[retension]\ntemporary_hours = 24\n");
        let err = load(Some(&path), &[], &Overrides::default()).expect_err("unknown section");
        assert!(err.to_string().contains("\"retension\""), "{err}");

        let (_guard, path) = file("listen = \"0.0.0.0:1\"\n");
        let err = load(Some(&path), &[], &Overrides::default()).expect_err("top-level key");
        assert!(err.to_string().contains("\"listen\""), "{err}");
    }

    #[test]
    fn unknown_key_in_env_fails_naming_it() {
        for (name, key) in [
            ("IMAGE_LAYERED__SERVER__LISTN", "server.listn"),
            ("IMAGE_LAYERED__NOPE__LISTEN", "nope.listen"),
            ("IMAGE_LAYERED__SERVER", "server"),
            ("IMAGE_LAYERED__SERVER__LISTEN__X", "server.listen.x"),
        ] {
            let err = load(None, &[(name, "1")], &Overrides::default()).expect_err(name);
            assert_eq!(err.code(), "config_unknown_key");
            assert_eq!(
                err.to_string(),
                format!("unknown configuration key \"{key}\" from {name}")
            );
        }
        // Variables without the double-underscore prefix are not ours.
        load(None, &[("IMAGE_LAYERED_X", "1")], &Overrides::default()).expect("ignored");
    }

    #[test]
    fn bad_type_fails_naming_the_key() {
        let (_guard, path) = file("[jobs]\nworkers = \"many\"\n");
        let err = load(Some(&path), &[], &Overrides::default()).expect_err("bad type");
        assert_eq!(err.code(), "config_invalid");
        assert_eq!(
            err.to_string(),
            format!(
                "jobs.workers = \"many\" (in {}) has the wrong type: expected an integer",
                path.display()
            )
        );

        let name = "IMAGE_LAYERED__SERVER__REQUEST_TIMEOUT_SECS";
        let err = load(None, &[(name, "soon")], &Overrides::default()).expect_err("env type");
        assert_eq!(
            err.to_string(),
            format!("server.request_timeout_secs = \"soon\" (from {name}) is not an integer")
        );

        // Integer keys are never negative.
        let err = load(
            None,
            &[("IMAGE_LAYERED__JOBS__WORKERS", "-1")],
            &Overrides::default(),
        )
        .expect_err("negative");
        let msg = err.to_string();
        assert!(
            msg.starts_with("jobs.workers = -1 (from IMAGE_LAYERED__JOBS__WORKERS) is negative"),
            "{msg}"
        );

        let err = load(
            None,
            &[("IMAGE_LAYERED__SERVER__LISTEN", "localhost")],
            &Overrides::default(),
        )
        .expect_err("bad address");
        let msg = err.to_string();
        assert!(
            msg.starts_with("server.listen = \"localhost\" (from "),
            "{msg}"
        );
        assert!(msg.contains("IP:PORT"), "{msg}");
        assert!(!msg.contains("in `server.listen`"), "{msg}");

        // Too big for the field's type: caught when the merged table is deserialized.
        let name = "IMAGE_LAYERED__UPLOADS__MAX_SIDE";
        let err =
            load(None, &[(name, "99999999999")], &Overrides::default()).expect_err("overflow");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "uploads.max_side = 99999999999 (from {name}) is invalid"
            )),
            "{msg}"
        );
    }

    #[test]
    fn secrets_stay_out_of_error_messages() {
        let (_guard, path) = file("[bootstrap]\nadmin_password = 987654321\n");
        let err = load(Some(&path), &[], &Overrides::default()).expect_err("bad type");
        let msg = err.to_string();
        assert!(!msg.contains("987654321"), "{msg}");
        assert!(
            msg.starts_with("bootstrap.admin_password = \"<redacted>\""),
            "{msg}"
        );
    }

    #[test]
    fn temporary_hours_out_of_range_fails() {
        let name = "IMAGE_LAYERED__RETENTION__TEMPORARY_HOURS";
        let err = load(None, &[(name, "80")], &Overrides::default()).expect_err("80 hours");
        assert_eq!(err.code(), "config_invalid");
        assert_eq!(
            err.to_string(),
            "retention.temporary_hours = 80 (from IMAGE_LAYERED__RETENTION__TEMPORARY_HOURS) \
             is out of range: allowed 24..=72"
        );
    }

    #[test]
    fn tls_cert_without_key_fails() {
        let (_guard, path) = file("[tls]\ncert = \"/etc/image-layered/cert.pem\"\n");
        let err = load(Some(&path), &[], &Overrides::default()).expect_err("cert only");
        assert_eq!(err.code(), "config_invalid");
        let msg = err.to_string();
        assert!(
            msg.starts_with("tls.cert = \"/etc/image-layered/cert.pem\" (in "),
            "{msg}"
        );
        assert!(msg.contains("set both or neither"), "{msg}");
    }

    #[test]
    fn bad_cron_fails() {
        let (_guard, path) = file("[retention]\nschedule = \"every hour\"\n");
        let err = load(Some(&path), &[], &Overrides::default()).expect_err("bad cron");
        assert_eq!(err.code(), "config_invalid");
        let msg = err.to_string();
        assert!(
            msg.starts_with("retention.schedule = \"every hour\" (in "),
            "{msg}"
        );
        assert!(msg.contains("cron expression"), "{msg}");

        let (_guard, path) = file("[retention]\nschedule = \"0 0 * * *\"\n");
        let err = load(Some(&path), &[], &Overrides::default()).expect_err("5 fields");
        let msg = err.to_string();
        assert!(
            msg.contains("is invalid: 5 fields given; expected a cron expression"),
            "{msg}"
        );

        let name = "IMAGE_LAYERED__RETENTION__SCHEDULE";
        let config = load(None, &[(name, "0 30 3 * * *")], &Overrides::default()).expect("ok");
        assert_eq!(config.retention.schedule.source(), "0 30 3 * * *");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let (_guard, path) = file("[server]\nlisten = \n");
        let err = load(Some(&path), &[], &Overrides::default()).expect_err("syntax");
        assert_eq!(err.code(), "config_unreadable");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
}
