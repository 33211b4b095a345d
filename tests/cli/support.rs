//! Helpers for the command-line tests: a hermetic data dir, the real binary as a server
//! (start, SIGKILL, SIGTERM, restart), one-shot CLI commands with a timeout, and polling with
//! a deadline. The HTTP client, test images and the admin's credentials are shared with the
//! API suite (`tests/common`, re-exported here).

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use crate::common::*;

/// Longest wait for a server to print its address and answer /healthz after it was spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a one-shot command (user, keys, sweep, config).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a command that runs the real models: seconds on an idle machine, several
/// times that on a loaded 2-core one (a hang guard, not a speed check).
pub const MODEL_TIMEOUT: Duration = Duration::from_secs(180);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_image-layered")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------------
// Data dirs and one-shot commands
// ---------------------------------------------------------------------------------------

/// A temporary root holding the data dir and an empty config file. Every command gets
/// `--config <empty>` (so /etc/image-layered/config.toml never leaks in) and a child
/// environment without the caller's `IMAGE_LAYERED*` variables.
pub struct Env {
    pub root: tempfile::TempDir,
    pub data: PathBuf,
    pub config: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("il-cli-")
            .tempdir()
            .expect("tempdir");
        let data = root.path().join("data");
        let config = root.path().join("empty.toml");
        std::fs::write(&config, "# no overrides\n").expect("write empty config");
        Self { root, data, config }
    }

    pub fn blobs(&self) -> PathBuf {
        self.data.join("blobs")
    }

    pub fn master_key(&self) -> PathBuf {
        self.data.join("keys").join("master.key")
    }

    /// `image-layered <args> --config <empty> --data-dir <data>` with a clean environment
    /// plus `env`.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data)
            .current_dir(self.root.path());
        clean_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a one-shot command to completion (bounded by [`CLI_TIMEOUT`]).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[], None)
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        run_command(self.command(args, env), stdin, CLI_TIMEOUT)
    }

    /// Runs a command that does model work (bounded by [`MODEL_TIMEOUT`]).
    pub fn run_models(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        run_command(self.command(args, env), None, MODEL_TIMEOUT)
    }
}

/// Removes every `IMAGE_LAYERED*` variable the test runner may have inherited.
pub fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("IMAGE_LAYERED") {
            cmd.env_remove(k);
        }
    }
    cmd.env("IMAGE_LAYERED_LOG", "info");
    // Servers in these tests never download models; tests that need them set a models dir.
    cmd.env("IMAGE_LAYERED__MODELS__AUTO_FETCH", "false");
}

/// The installed runtime and models (`image-layered models fetch`; `scripts/test` sets this).
pub fn test_models() -> PathBuf {
    let dir = std::env::var_os("IMAGE_LAYERED_TEST_MODELS")
        .map(PathBuf::from)
        .expect(
            "set IMAGE_LAYERED_TEST_MODELS to a models dir made by `image-layered models fetch` \
         (scripts/test does this)",
        );
    assert!(
        dir.join("isnet.onnx").is_file(),
        "no models in {}",
        dir.display()
    );
    dir
}

/// A finished command.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn describe(&self) -> String {
        format!(
            "exit {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Asserts exit code 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {}", self.describe());
        &self.stdout
    }
}

/// Runs `cmd` with piped output, optional stdin, and a hard timeout (killed, then panics).
pub fn run_command(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn image-layered");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut w = child.stdin.take().expect("stdin");
        // A command may exit (say, on a bad argument) before it reads its input.
        if let Err(e) = w.write_all(input.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "command {cmd:?} did not finish within {timeout:?}; stderr so far: {}",
                err_t.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        code: status.code(),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

/// Sends a signal by name with the system `kill` (no libc needed).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

// ---------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------

/// How to start a server beyond the defaults.
#[derive(Default, Clone)]
pub struct ServerOpts {
    /// Extra environment, e.g. `IMAGE_LAYERED__TLS__CERT`.
    pub env: Vec<(String, String)>,
    /// PEM of a certificate to trust: the server is HTTPS at `https://localhost:PORT`.
    pub tls_ca_pem: Option<String>,
}

/// A running `image-layered serve` on a port of its own choosing (`--listen 127.0.0.1:0`; the
/// port is read from the `listening on` line it prints), with stdout and stderr in files under
/// the env's root (so a full pipe never blocks it, and failures can quote the log).
pub struct Server {
    pub child: Child,
    /// The port the server reported.
    pub port: u16,
    /// An anonymous client of this server; [`Server::with_key`] authenticates one.
    pub client: Client,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    pub data: PathBuf,
    opts: ServerOpts,
    exited: Option<ExitStatus>,
}

/// A server that exited before it became healthy.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

static LOG_SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn spawn_serve(env: &Env, opts: &ServerOpts) -> (Child, PathBuf, PathBuf) {
    let n = LOG_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stdout_path = env.root.path().join(format!("serve-{n}.out"));
    let stderr_path = env.root.path().join(format!("serve-{n}.err"));
    let mut cmd = env.command(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
    (
        cmd.spawn().expect("spawn image-layered serve"),
        stdout_path,
        stderr_path,
    )
}

/// The port in `image-layered <version> listening on http(s)://127.0.0.1:PORT`, once that
/// line is complete in `stdout`.
fn listening_port(stdout: &str) -> Option<u16> {
    stdout
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .find_map(|l| l.split_once(" listening on "))
        .map(|(_, url)| {
            let addr = url.trim().split_once("://").map_or(url.trim(), |(_, a)| a);
            addr.parse::<std::net::SocketAddr>()
                .unwrap_or_else(|e| panic!("bad address in {url:?}: {e}"))
                .port()
        })
}

fn server_client(opts: &ServerOpts, port: u16, log: &Path) -> Client {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(5))
        .no_proxy();
    let base = match &opts.tls_ca_pem {
        Some(pem) => {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes()).expect("CA PEM");
            b = b
                .add_root_certificate(cert)
                .resolve("localhost", ([127, 0, 0, 1], port).into());
            format!("https://localhost:{port}")
        }
        None => format!("http://127.0.0.1:{port}"),
    };
    Client {
        server_log: Some(log.to_path_buf()),
        ..Client::new(b.build().expect("reqwest client"), base)
    }
}

impl Server {
    /// Starts a server on `env` and waits for /healthz; panics (quoting the log) on failure.
    pub async fn start(env: &Env) -> Server {
        Self::start_with(env, ServerOpts::default()).await
    }

    pub async fn start_with(env: &Env, opts: ServerOpts) -> Server {
        match Self::try_start(env, opts).await {
            Ok(s) => s,
            Err(f) => panic!("server exited before it was healthy: {f:?}"),
        }
    }

    /// Starts a server; `Err` if it exits before answering /healthz (what a refused start
    /// looks like). Panics if it neither exits nor becomes healthy within [`START_TIMEOUT`].
    pub async fn try_start(env: &Env, opts: ServerOpts) -> Result<Server, StartFailure> {
        let started = Instant::now();
        let (mut child, stdout_path, stderr_path) = spawn_serve(env, &opts);
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let port = loop {
            if let Some(port) = listening_port(&read(&stdout_path)) {
                break port;
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Err(StartFailure {
                    status,
                    elapsed: started.elapsed(),
                    stdout: read(&stdout_path),
                    stderr: read(&stderr_path),
                });
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server printed no address within {START_TIMEOUT:?}; stdout:\n{}\nstderr:\n{}",
                    read(&stdout_path),
                    read(&stderr_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut server = Server {
            child,
            port,
            client: server_client(&opts, port, &stderr_path),
            stdout_path,
            stderr_path,
            data: env.data.clone(),
            opts,
            exited: None,
        };
        loop {
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                server.exited = Some(status);
                return Err(StartFailure {
                    status,
                    elapsed: started.elapsed(),
                    stdout: server.stdout(),
                    stderr: server.stderr(),
                });
            }
            let probe = server
                .client
                .get("/healthz")
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if matches!(&probe, Ok(r) if r.status() == StatusCode::OK) {
                return Ok(server);
            }
            if started.elapsed() > START_TIMEOUT {
                let log = server.stderr();
                server.kill();
                panic!("server not healthy within {START_TIMEOUT:?}; last probe {probe:?}; stderr:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The last `n` lines of the server's stderr (for assertion messages).
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.stderr_path, n)
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap.
    pub fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit status (SIGKILL and panic if late).
    pub async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        send_signal(self.pid(), "TERM");
        self.wait_exit(timeout).await
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(s);
                return s;
            }
            if started.elapsed() > timeout {
                self.kill();
                panic!(
                    "server did not exit within {timeout:?}; log tail:\n{}",
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.exited.is_none() && self.child.try_wait().expect("try_wait").is_none()
    }

    /// SIGTERM and expect a clean exit (status 0) within 15 s.
    pub async fn stop(&mut self) {
        let status = self.terminate(Duration::from_secs(15)).await;
        assert!(
            status.success(),
            "server did not exit cleanly: {status:?}; log tail:\n{}",
            self.log_tail(30)
        );
    }

    /// A fresh server on the same data dir (and options), after this one has exited. It
    /// listens on a new port.
    pub async fn restart(&mut self, env: &Env) -> Server {
        assert!(
            self.exited.is_some(),
            "restart a server only after it exited"
        );
        Server::start_with(env, self.opts.clone()).await
    }

    // --- HTTP -----------------------------------------------------------------------

    /// A client of this server that sends `key` as a bearer token.
    pub fn with_key(&self, key: &str) -> Client {
        self.client.with_key(key)
    }

    /// Logs in as `email` and creates an API key; returns the key.
    pub async fn api_key_for(&self, email: &str, password: &str) -> String {
        let resp = self
            .client
            .login(email, password)
            .await
            .post("/api/v1/keys")
            .json(&serde_json::json!({"name": "cli tests"}))
            .send()
            .await
            .expect("POST /api/v1/keys");
        assert_eq!(resp.status(), StatusCode::CREATED, "create API key");
        let v: Value = resp.json().await.expect("key JSON");
        v["key"].as_str().expect("key string").to_string()
    }

    /// An API key of the bootstrap admin.
    pub async fn admin_key(&self) -> String {
        self.api_key_for(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------
// Files on disk
// ---------------------------------------------------------------------------------------

pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A UUID as the blob store names directories and files (32 hex digits, no hyphens).
pub fn simple_id(id: &str) -> String {
    id.replace('-', "")
}

// ---------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------

/// Decodes image bytes (PNG or JPEG) and returns (width, height).
pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("decodable image");
    (img.width(), img.height())
}

// ---------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------

/// Polls `check` every `every` until it returns `Some`, or panics with `what` after
/// `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// An RFC 3339 UTC time `hours` from now.
pub fn rfc3339_in_hours(hours: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    (time::OffsetDateTime::now_utc() + time::Duration::hours(hours))
        .format(&Rfc3339)
        .expect("format RFC 3339")
}
