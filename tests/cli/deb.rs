//! The Debian package: `scripts/deb` packages the binary this suite built, its contents and
//! conffiles are what they should be, and an install into a throw-away root (dpkg `--root`,
//! maintainer scripts run chrootless with `DPKG_ROOT`) makes the system user, a 0700 state
//! directory it owns and a 0600 master key; a reinstall keeps the key, and a purge keeps the
//! data and the key. Needs dpkg and root (to own files as the new user); the machines the
//! test command runs on have both.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    clean_env(cmd);
    run_command(
        std::mem::replace(cmd, Command::new("true")),
        None,
        Duration::from_secs(600),
    )
}

/// An empty system for dpkg: its database, and the account files useradd edits.
fn throwaway_root(root: &Path) {
    for dir in [
        "etc",
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (file, text) in [
        ("var/lib/dpkg/status", ""),
        ("var/lib/dpkg/available", ""),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
        ("etc/shadow", "root:*:19000:0:99999:7:::\n"),
        ("etc/gshadow", "root:*::\n"),
    ] {
        std::fs::write(root.join(file), text).unwrap();
    }
}

fn dpkg(root: &Path, args: &[&str]) -> Output {
    let out = run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-depends",
            "--log=/dev/null",
        ])
        .args(args));
    assert_eq!(out.code, Some(0), "dpkg {args:?}: {}", out.describe());
    out
}

fn newest_deb() -> PathBuf {
    let dir = repo().join("target/debian");
    std::fs::read_dir(&dir)
        .expect("target/debian")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .max_by_key(|p| p.metadata().unwrap().modified().unwrap())
        .expect("a .deb")
}

#[test]
fn the_package_installs_into_a_throwaway_root_and_keeps_data_and_key() {
    let root_user = run(Command::new("id").arg("-u")).stdout.trim() == "0";
    if !root_user || run(Command::new("dpkg").arg("--version")).code != Some(0) {
        eprintln!("skipped: needs dpkg and root");
        return;
    }
    // the binary this suite runs, packaged as built
    let out = run(Command::new(repo().join("scripts/deb"))
        .args(["--no-build", "--profile", "dev", "--fast"])
        .current_dir(repo()));
    assert_eq!(out.code, Some(0), "scripts/deb: {}", out.describe());
    let deb = newest_deb();
    let name = deb.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with(&format!("image-layered_{}", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );

    let contents = run(Command::new("dpkg-deb").arg("-c").arg(&deb)).stdout;
    for path in [
        "./usr/bin/image-layered",
        "./usr/lib/systemd/system/image-layered.service",
        "./etc/image-layered/config.toml",
    ] {
        assert!(contents.contains(path), "{path} in\n{contents}");
    }
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path()));
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert!(conffiles.contains("/etc/image-layered/config.toml"));
    for script in ["postinst", "prerm", "postrm"] {
        let mode = control.path().join(script).metadata().unwrap().mode();
        assert!(mode & 0o111 != 0, "{script} is executable");
    }

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    throwaway_root(root);
    let deb_s = deb.to_str().unwrap();
    dpkg(root, &["-i", deb_s]);
    let version = run(Command::new(root.join("usr/bin/image-layered")).arg("--version"));
    assert!(version.ok().contains(env!("CARGO_PKG_VERSION")));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let user: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("image-layered:"))
        .expect("the system user")
        .split(':')
        .collect();
    let uid: u32 = user[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "a system user: {uid}");
    assert_eq!(user[5], "/var/lib/image-layered");
    let state = root.join("var/lib/image-layered").metadata().unwrap();
    assert!(state.is_dir());
    assert_eq!(
        (state.uid(), state.permissions().mode() & 0o777),
        (uid, 0o700)
    );
    let key_path = root.join("etc/image-layered/master.key");
    let key = key_path.metadata().unwrap();
    assert_eq!((key.uid(), key.permissions().mode() & 0o777), (0, 0o600));
    let key_bytes = std::fs::read(&key_path).unwrap();
    assert!(!key_bytes.is_empty());

    // a reinstall (upgrade) keeps the key and makes no second user
    dpkg(root, &["-i", deb_s]);
    assert_eq!(
        std::fs::read(&key_path).unwrap(),
        key_bytes,
        "the key is kept"
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let users = passwd.lines().filter(|l| l.starts_with("image-layered:"));
    assert_eq!(users.count(), 1);

    // a purge removes the program, never the data or its key
    std::fs::write(root.join("var/lib/image-layered/marker"), b"data").unwrap();
    dpkg(root, &["--purge", "image-layered"]);
    assert!(!root.join("usr/bin/image-layered").exists());
    assert!(root.join("var/lib/image-layered/marker").exists());
    assert_eq!(std::fs::read(&key_path).unwrap(), key_bytes);
}
