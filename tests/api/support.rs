//! `spawn_app()`: the real app on port 0 with a temp data dir and a manual clock. The HTTP
//! client, test images and the admin's credentials are shared with the CLI suite
//! (`tests/common`, re-exported here).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image_layered::app::App;
use image_layered::auth::{create_user, NewUser};
use image_layered::clock::{ManualClock, SharedClock};
use image_layered::config::{Config, Overrides};
use image_layered::http::Server;
use image_layered::store::{Plan, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::watch;

pub use crate::common::*;

pub struct TestApp {
    pub base: String,
    pub app: Arc<App>,
    pub server: Arc<Server>,
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
    app.bootstrap_admin().await.expect("admin");
    let server = Server::new(app.clone()).expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    tokio::spawn(image_layered::http::run(server.clone(), listener, rx));
    TestApp {
        base: format!("http://{addr}"),
        app,
        server,
        clock,
        dir,
        shutdown: tx,
    }
}

impl TestApp {
    /// Starts a graceful shutdown, as SIGTERM does.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// An anonymous client of the app (`.login(…)` signs it in).
    pub fn client(&self) -> Client {
        Client::new(reqwest::Client::new(), &self.base)
    }

    pub async fn admin(&self) -> Client {
        self.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await
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
        self.client().login(email, "member password").await
    }

    /// Runs the retention sweep at the clock's current time.
    pub async fn sweep(&self) -> usize {
        self.app.sweeper.sweep(self.app.now()).await.unwrap().len()
    }

    /// The `n`th mail the outbox spooled (in queue order: ids are UUIDv7), with its file,
    /// once it has landed (delivery is in the background).
    pub async fn mail(&self, n: usize) -> (std::path::PathBuf, String) {
        let dir = self.dir.path().join("data/outbox");
        for _ in 0..200 {
            let mut files: Vec<_> = files_under(&dir)
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect();
            files.sort();
            if let Some(p) = files.get(n) {
                let text = std::fs::read_to_string(p).expect("read a spooled mail");
                return (p.clone(), text);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no mail number {n} in {}", dir.display());
    }

    pub fn advance_hours(&self, h: i64) {
        self.clock.advance(time::Duration::hours(h));
    }
}

/// The token in the first `…?token=` link of a plain-text mail.
pub fn token_in(mail: &str) -> String {
    let text = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = text
        .find("?token=")
        .unwrap_or_else(|| panic!("no link in {mail}"))
        + 7;
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

pub fn contains(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    files_under(dir).into_iter().find(|f| {
        std::fs::read(f)
            .map(|b| b.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}

/// Uploads a 96×64 two-colour design and decomposes it (palette, 3 layers); returns the
/// image id, the decompose job id and the document.
pub async fn document(c: &Client) -> (String, String, Value) {
    let img = image::RgbImage::from_fn(96, 64, |x, y| {
        if (20..50).contains(&x) && (10..40).contains(&y) {
            image::Rgb([200, 30, 40])
        } else if (x as i32 - 70).pow(2) + (y as i32 - 40).pow(2) < 200 {
            image::Rgb([30, 80, 200])
        } else {
            image::Rgb([240, 240, 235])
        }
    });
    let meta = c.upload(encode(img, image::ImageFormat::Png)).await;
    let id = meta["id"].as_str().unwrap().to_string();
    c.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
    let (job, doc) = decompose_palette(c, &id, 3).await;
    (id, job["id"].as_str().unwrap().to_string(), doc)
}

/// Decomposes an uploaded image with the palette pipeline (no models needed) and waits for
/// it; returns the finished job and the document.
pub async fn decompose_palette(c: &Client, image_id: &str, layers: usize) -> (Value, Value) {
    let r = c
        .post(&format!("/api/v1/images/{image_id}/decompose"))
        .json(&json!({"mode": "palette", "layers": layers}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: Value = r.json().await.unwrap();
    let job = c.wait_job(job["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let doc_id = job["result"]["document_id"].as_str().unwrap();
    let (s, doc) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    (job, doc)
}
