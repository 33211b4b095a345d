//! `image-layered config print`: merged values, secrets redacted, bad environment refused.

use crate::support::*;

#[test]
fn config_print_redacts_secrets_and_env_overrides() {
    let env = Env::new();
    let out = env.run_with(
        &["config", "print"],
        &[
            ("IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD", "hunter2hunter2"),
            ("IMAGE_LAYERED__RETENTION__TEMPORARY_HOURS", "24"),
        ],
        None,
    );
    let stdout = out.ok();
    assert!(
        stdout.lines().any(|l| l.trim() == "temporary_hours = 24"),
        "{}",
        out.describe()
    );
    assert!(
        !stdout.contains("hunter2") && !out.stderr.contains("hunter2"),
        "the password leaked: {}",
        out.describe()
    );
    assert!(
        stdout.contains("admin_password = \"<redacted>\""),
        "{}",
        out.describe()
    );
    // --data-dir is merged too, and the output is TOML.
    let data_dir = env.data.to_str().unwrap();
    assert!(stdout.contains(data_dir), "{}", out.describe());
    let parsed: toml::Table = toml::from_str(stdout).expect("config print is TOML");
    assert_eq!(
        parsed["retention"]["temporary_hours"].as_integer(),
        Some(24)
    );
    // Printing opens nothing.
    assert!(!env.data.exists(), "config print created the data dir");

    let out = env.run_with(
        &["config", "print"],
        &[("IMAGE_LAYERED__RETENTION__TEMPORARY_HOURS", "80")],
        None,
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("retention.temporary_hours"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());

    let out = env.run_with(
        &["config", "print"],
        &[("IMAGE_LAYERED__NOPE__X", "1")],
        None,
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("IMAGE_LAYERED__NOPE__X") || out.stderr.contains("nope.x"),
        "{}",
        out.describe()
    );

    // A secret in a bad value is not echoed either.
    let out = env.run_with(
        &["config", "print"],
        &[
            ("IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD", "hunter2hunter2"),
            ("IMAGE_LAYERED__BOOTSTRAP__ADMIN_EMAIL", "nobody"),
        ],
        None,
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(!out.stderr.contains("hunter2"), "{}", out.describe());
}
