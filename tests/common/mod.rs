//! Helpers shared by the two integration suites, `tests/api` (the app in process) and
//! `tests/cli` (the real binary). Each suite includes this file with
//! `#[path = "../common/mod.rs"] mod common;` and re-exports it from its `support` module, so
//! there is one copy of: the bootstrap admin's credentials, an HTTP [`Client`] with the usual
//! calls (sign in, upload, read JSON, wait for a job), deterministic noise images, and
//! [`files_under`].

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

/// The bootstrap admin every test server is started with
/// (`IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD`).
pub const ADMIN_EMAIL: &str = "admin@localhost";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// Longest wait of [`Client::wait_job`].
pub const JOB_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

/// How a [`Client`] authenticates its requests.
#[derive(Clone, Debug)]
pub enum Auth {
    Anonymous,
    /// The `name=value` pair of a session cookie (reqwest is built without a cookie jar).
    Cookie(String),
    /// An API key, sent as a bearer token.
    Key(String),
}

/// An HTTP client of one server, anonymous or signed in.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT`), no trailing slash.
    pub base: String,
    pub auth: Auth,
    /// The server's log, quoted when a wait times out.
    pub server_log: Option<PathBuf>,
}

impl Client {
    /// An anonymous client of the server at `base`.
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into(),
            auth: Auth::Anonymous,
            server_log: None,
        }
    }

    /// The same server, authenticated with `auth`.
    pub fn with_auth(&self, auth: Auth) -> Self {
        Self {
            auth,
            ..self.clone()
        }
    }

    /// The same server, authenticated with an API key.
    pub fn with_key(&self, key: &str) -> Self {
        self.with_auth(Auth::Key(key.to_string()))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` carrying this client's credentials; with a session cookie it
    /// also says it comes from the studio's own origin, as the studio page's requests do.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.bare(method, path);
        match &self.auth {
            Auth::Cookie(_) => r.header(reqwest::header::ORIGIN, &self.base),
            _ => r,
        }
    }

    /// A request with the credentials only (no `Origin`): for tests of the origin checks.
    pub fn bare(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, self.url(path));
        match &self.auth {
            Auth::Anonymous => r,
            Auth::Cookie(cookie) => r.header(reqwest::header::COOKIE, cookie),
            Auth::Key(key) => r.bearer_auth(key),
        }
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// `POST /api/v1/auth/login`, whatever the answer.
    pub async fn post_login(&self, email: &str, password: &str) -> Response {
        self.http
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .expect("POST /api/v1/auth/login")
    }

    /// Signs in (asserting 200) and returns a client with the session cookie.
    pub async fn login(&self, email: &str, password: &str) -> Client {
        let resp = self.post_login(email, password).await;
        assert_eq!(resp.status(), StatusCode::OK, "login as {email}");
        let cookie = resp
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .expect("Set-Cookie on login")
            .to_str()
            .expect("ASCII cookie")
            .split(';')
            .next()
            .expect("cookie pair")
            .to_string();
        self.with_auth(Auth::Cookie(cookie))
    }

    /// Uploads a raw body as `ctype`; returns the status and the JSON (or `Null`).
    pub async fn upload_raw(&self, bytes: Vec<u8>, ctype: &str) -> (StatusCode, Value) {
        let resp = self
            .post("/api/v1/images")
            .header(reqwest::header::CONTENT_TYPE, ctype)
            .body(bytes)
            .send()
            .await
            .expect("POST /api/v1/images");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Uploads a PNG and asserts 201; returns the image JSON.
    pub async fn upload(&self, png: Vec<u8>) -> Value {
        let (status, body) = self.upload_raw(png, "image/png").await;
        assert_eq!(status, StatusCode::CREATED, "upload: {body}");
        body
    }

    /// GET `path`; the status and the JSON (or `Null`).
    pub async fn json(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.get(path).send().await.expect("GET");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `method path` with a JSON body; the status and the JSON answer (or `Null`).
    pub async fn send_json(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .request(method, path)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_json(Method::POST, path, body).await
    }

    /// GET `path`; the status and the body.
    pub async fn bytes(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let resp = self.get(path).send().await.expect("GET");
        let status = resp.status();
        (status, resp.bytes().await.expect("body").to_vec())
    }

    /// The signed-in member's images, by id.
    pub async fn images(&self) -> BTreeMap<String, Value> {
        let (status, v) = self.json("/api/v1/images").await;
        assert_eq!(status, StatusCode::OK, "list images: {v}");
        v["images"]
            .as_array()
            .expect("images array")
            .iter()
            .map(|i| (i["id"].as_str().expect("id").to_string(), i.clone()))
            .collect()
    }

    /// Polls a job until it reaches a final state (within [`JOB_TIMEOUT`]).
    pub async fn wait_job(&self, id: &str) -> Value {
        self.wait_job_until(id, JOB_TIMEOUT, is_final).await
    }

    /// Polls a job until `done(state)` holds; returns the job JSON. Panics after `timeout`.
    pub async fn wait_job_until(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Value {
        let path = format!("/api/v1/jobs/{id}");
        let started = Instant::now();
        loop {
            let (status, v) = self.json(&path).await;
            assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
            if done(v["state"].as_str().unwrap_or("")) {
                return v;
            }
            assert!(
                started.elapsed() < timeout,
                "job {id} still {} after {timeout:?}; log tail:\n{}",
                v["state"],
                self.server_log
                    .as_deref()
                    .map(|p| log_tail(p, 20))
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Whether a job state is final.
pub fn is_final(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

/// The last `n` lines of a log file (empty if it cannot be read).
pub fn log_tail(path: &Path, n: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------
// Files on disk
// ---------------------------------------------------------------------------------------

/// Every file below `dir`, recursively and sorted (empty if it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------

/// A tiny deterministic PRNG (xorshift64*), so test images are noisy but reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// An RGB image of pure noise (so encoded images do not compress to nothing).
pub fn noise_rgb(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut buf = vec![0u8; (w * h * 3) as usize];
    Rng::new(seed).fill(&mut buf);
    RgbImage::from_raw(w, h, buf).expect("buffer size")
}

/// A noisy PNG (fast compression: noise does not compress anyway).
pub fn noisy_png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let img = noise_rgb(w, h, seed);
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::NoFilter)
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .expect("encode PNG");
    out
}

/// Encodes an RGB image in `format` (WebP as RGBA, which the encoder wants).
pub fn encode(img: RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let img = DynamicImage::ImageRgb8(img);
    match format {
        ImageFormat::WebP => img.to_rgba8().write_to(&mut out, format),
        _ => img.write_to(&mut out, format),
    }
    .expect("encode image");
    out.into_inner()
}
