//! Tests of the whole pipeline: defaults, the example file, layering order, error messages
//! and redaction.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::load_layers;
use super::*;

// ---- defaults, accessors, redaction ----
const EXAMPLE: &str = include_str!("../../config/image-layered.toml");

#[test]
fn example_file_is_exactly_the_defaults() {
    let parsed: Config = toml::from_str(EXAMPLE).expect("example config parses");
    assert_eq!(parsed, Config::default());
    // ...and it documents every key: the defaults have no key the file lacks.
    let file: toml::Table = toml::from_str(EXAMPLE).expect("example is TOML");
    let defaults = toml::Table::try_from(Config::default()).expect("defaults serialize");
    assert_eq!(file, defaults);
}

#[test]
fn defaults_are_valid() {
    Config::default().validate().expect("defaults validate");
}

#[test]
fn master_key_path_defaults_under_data_dir() {
    let mut config = Config::default();
    config.server.data_dir = PathBuf::from("/var/lib/image-layered");
    assert_eq!(
        config.master_key_path(),
        PathBuf::from("/var/lib/image-layered/keys/master.key")
    );
    config.crypto.master_key_file = PathBuf::from("/run/credentials/x/master.key");
    assert_eq!(
        config.master_key_path(),
        PathBuf::from("/run/credentials/x/master.key")
    );
}

#[test]
fn redacted_print_hides_password_but_shows_other_values() {
    let mut config = Config::default();
    config.bootstrap.admin_password = Secret::new("hunter2-very-secret");
    config.server.listen = "0.0.0.0:9000".parse().expect("addr");
    let printed = config.redacted_toml();
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(
        printed.contains("admin_password = \"<redacted>\""),
        "{printed}"
    );
    assert!(printed.contains("listen = \"0.0.0.0:9000\""), "{printed}");
    assert!(
        printed.contains("admin_email = \"admin@localhost\""),
        "{printed}"
    );
    assert!(printed.contains("schedule = \"0 0 * * * *\""), "{printed}");
    // Sections keep their documented order.
    let server = printed.find("[server]").expect("server section");
    let log = printed.find("[log]").expect("log section");
    assert!(server < log, "{printed}");
    // An empty secret is shown as empty, so "unset" stays visible.
    let printed = Config::default().redacted_toml();
    assert!(printed.contains("admin_password = \"\""), "{printed}");
}

#[test]
fn debug_hides_the_password() {
    let mut config = Config::default();
    config.bootstrap.admin_password = Secret::new("hunter2-very-secret");
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("Secret(<redacted>)"), "{debug}");
    assert!(debug.contains("admin@localhost"), "{debug}");
}

#[test]
fn secret_key_names() {
    assert!(is_secret_key("bootstrap.admin_password"));
    assert!(is_secret_key("smtp.client_secret"));
    assert!(is_secret_key("api_token"));
    assert!(!is_secret_key("crypto.master_key_file"));
    assert!(!is_secret_key("bootstrap.admin_email"));
}

#[test]
fn duration_accessors() {
    let config = Config::default();
    assert_eq!(
        config.retention.temporary_ttl(),
        Duration::from_secs(48 * 3600)
    );
    assert_eq!(
        config.retention.free_ttl(),
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(config.auth.session_idle(), Duration::from_secs(720 * 60));
    assert_eq!(config.store.flush_every(), Duration::from_millis(200));
    assert_eq!(config.store.cache_capacity_bytes(), 128 * 1024 * 1024);
    assert_eq!(config.server.request_timeout(), Duration::from_secs(60));
    assert!(config.tls.paths().is_none());
}

// ---- layering ----
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
    let err = load(None, &[(name, "99999999999")], &Overrides::default()).expect_err("overflow");
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
fn trusted_proxies_must_be_ip_addresses() {
    let name = "IMAGE_LAYERED__SERVER__TRUSTED_PROXIES";
    let ok = load(None, &[(name, " 10.0.0.1, ::1 ")], &Overrides::default()).unwrap();
    assert_eq!(ok.server.trusted_proxies().unwrap().len(), 2);
    let err = load(
        None,
        &[(name, "10.0.0.1, proxy.lan")],
        &Overrides::default(),
    )
    .expect_err("a host name");
    assert_eq!(err.code(), "config_invalid");
    assert!(
        err.to_string()
            .contains("\"proxy.lan\" is not an IP address"),
        "{err}"
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

    let (_guard, path) = file("[retention]\nschedule = \"61 * * * * *\"\n");
    let err = load(Some(&path), &[], &Overrides::default()).expect_err("61 seconds");
    let msg = err.to_string();
    assert!(msg.contains("is invalid: Seconds must be"), "{msg}");

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
