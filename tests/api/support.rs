//! `spawn_app()`: the real app on port 0 with a temp data dir and a manual clock, plus typed
//! helpers for signing in, uploading and making test images.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;

use image::{DynamicImage, ImageFormat, RgbImage};
use image_layered::app::App;
use image_layered::auth::{create_user, NewUser};
use image_layered::clock::{ManualClock, SharedClock};
use image_layered::config::{Config, Overrides};
use image_layered::store::{Plan, Role};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::watch;

pub const ADMIN_EMAIL: &str = "admin@localhost";
pub const ADMIN_PASSWORD: &str = "admin password 1";

pub struct TestApp {
    pub base: String,
    pub app: Arc<App>,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    shutdown: watch::Sender<bool>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with extra `IMAGE_LAYERED__…` settings.
pub async fn spawn_app_with(env: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars = vec![(
        "IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD".to_string(),
        ADMIN_PASSWORD.to_string(),
    )];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::load_from(
        &Overrides {
            config_path: None,
            data_dir: Some(dir.path().join("data")),
            listen: Some("127.0.0.1:0".parse().unwrap()),
        },
        vars,
    )
    .expect("config");
    let clock = ManualClock::new(time::macros::datetime!(2026-06-01 12:00 UTC));
    let shared: SharedClock = Arc::new(clock.clone());
    let app = App::open(config, shared).expect("app opens");
    image_layered::cli::bootstrap_admin(&app)
        .await
        .expect("admin");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    tokio::spawn(app.clone().run(listener, rx));
    TestApp {
        base: format!("http://{addr}"),
        app,
        clock,
        dir,
        shutdown: tx,
    }
}

/// A signed-in HTTP client (cookie jar kept by hand: reqwest is built without cookies).
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
}

impl TestApp {
    /// Starts a graceful shutdown, as SIGTERM does.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn login(&self, email: &str, password: &str) -> Client {
        let http = reqwest::Client::new();
        let r = http
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "login as {email}");
        let cookie = r
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        Client {
            http,
            base: self.base.clone(),
            cookie,
        }
    }

    pub async fn admin(&self) -> Client {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a member with the library (as `user add` does) and signs them in.
    pub async fn member(&self, email: &str, plan: Plan) -> Client {
        let now = self.app.now();
        create_user(
            &self.app.store,
            &self.app.keyring,
            now,
            NewUser {
                email,
                name: "Member",
                role: Role::Member,
                plan,
                password: "member password",
            },
        )
        .expect("member");
        self.login(email, "member password").await
    }

    /// Runs the retention sweep at the clock's current time.
    pub async fn sweep(&self) -> usize {
        self.app.sweeper.sweep(self.app.now()).await.unwrap().len()
    }

    pub fn advance_hours(&self, h: i64) {
        self.clock.advance(time::Duration::hours(h));
    }
}

impl Client {
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
    }
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
    }
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .delete(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
    }

    /// Uploads raw bytes; returns (status, body).
    pub async fn upload_raw(&self, bytes: Vec<u8>, ctype: &str) -> (StatusCode, Value) {
        let r = self
            .post("/api/v1/images")
            .header("content-type", ctype)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Uploads a valid image and returns its metadata.
    pub async fn upload(&self, bytes: Vec<u8>) -> Value {
        let (status, body) = self.upload_raw(bytes, "image/png").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.get(path).send().await.unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Polls a job until it reaches a final state.
    pub async fn wait_job(&self, id: &str) -> Value {
        for _ in 0..3600 {
            let (s, job) = self.json(&format!("/api/v1/jobs/{id}")).await;
            assert_eq!(s, StatusCode::OK);
            if matches!(
                job["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("job {id} did not finish");
    }
}

/// Deterministic noise so PNGs do not compress to nothing.
pub fn noisy_rgb(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    RgbImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let b = s.to_le_bytes();
        image::Rgb([b[0] ^ (x as u8), b[1] ^ (y as u8), b[2]])
    })
}

pub fn encode(img: RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let dynimg = DynamicImage::ImageRgb8(img);
    match format {
        ImageFormat::WebP => dynimg.to_rgba8().write_to(&mut out, format).unwrap(),
        _ => dynimg.write_to(&mut out, format).unwrap(),
    }
    out.into_inner()
}

pub fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    encode(noisy_rgb(w, h, seed), ImageFormat::Png)
}

/// Every file under a directory, recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}
