//! Spine benchmark (`cargo bench --bench spine`), side by side in one run:
//! 1. blob writes and reads, AES-256-GCM STREAM vs the same bytes written plainly (both
//!    temp → fsync → rename), as MB/s and a ratio;
//! 2. end-to-end HTTP upload throughput (decode + encrypt + fsync + flush) in MB/s;
//! 3. on-disk size of 1,000 uploads vs their bytes;
//! 4. `GET /api/v1/images/{id}` latency under a loopback load from wrk (p50/p99), beside
//!    `GET /healthz` as the reference, when wrk is installed.

use std::io::{Cursor, Write};
use std::sync::Arc;
use std::time::Instant;

use image_layered::app::App;
use image_layered::blobs::{BlobStore, DataKey};
use image_layered::clock::{SharedClock, SystemClock};
use image_layered::config::{Config, Overrides};
use image_layered::ids::{BlobId, UserId};

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

fn png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let px = noise((w * h * 3) as usize, seed);
    let img = image::RgbImage::from_raw(w, h, px).unwrap();
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

fn plain_write(dir: &std::path::Path, name: &str, data: &[u8]) {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
}

fn blob_bench() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
    let plain_dir = dir.path().join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let key = DataKey::generate();
    let owner = UserId::new();
    let data = noise(64 << 20, 7);
    let reps = 6;
    let (mut enc_w, mut plain_w, mut enc_r, mut plain_r) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..reps {
        let id = BlobId::new();
        let name = format!("p{i}");
        // Alternate which goes first, so page-cache and disk state favour neither.
        let enc = || {
            let t = Instant::now();
            blobs.put(&key, 1, owner, id, &mut &data[..]).unwrap();
            t.elapsed().as_secs_f64()
        };
        let plain = || {
            let t = Instant::now();
            plain_write(&plain_dir, &name, &data);
            t.elapsed().as_secs_f64()
        };
        if i % 2 == 0 {
            enc_w += enc();
            plain_w += plain();
        } else {
            plain_w += plain();
            enc_w += enc();
        }
        let t = Instant::now();
        let back = blobs.read_all(&key, owner, id).unwrap();
        enc_r += t.elapsed().as_secs_f64();
        assert_eq!(back, data);
        let t = Instant::now();
        let back = std::fs::read(plain_dir.join(&name)).unwrap();
        plain_r += t.elapsed().as_secs_f64();
        assert_eq!(back.len(), data.len());
    }
    let n = data.len() * reps;
    let (ew, pw, er, pr) = (
        mbps(n, enc_w),
        mbps(n, plain_w),
        mbps(n, enc_r),
        mbps(n, plain_r),
    );
    println!(
        "blob write 64 MiB: encrypted {ew:.0} MB/s, plain {pw:.0} MB/s, ratio {:.2}",
        ew / pw
    );
    println!(
        "blob read  64 MiB: encrypted {er:.0} MB/s, plain {pr:.0} MB/s, ratio {:.2}",
        er / pr
    );
}

struct Server {
    base: String,
    key: String,
    app: Arc<App>,
    dir: tempfile::TempDir,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load_from(
        &Overrides {
            config_path: None,
            data_dir: Some(dir.path().join("data")),
            listen: Some("127.0.0.1:0".parse().unwrap()),
        },
        vec![(
            "IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD".to_string(),
            "bench password".to_string(),
        )],
    )
    .unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let app = App::open(config, clock).unwrap();
    app.bootstrap_admin().await.unwrap();
    let admin = app.store.user_by_email("admin@localhost").unwrap().unwrap();
    let (_, key) = app.auth.create_api_key(admin.id, "bench").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = image_layered::http::Server::new(app.clone()).unwrap();
    tokio::spawn(image_layered::http::run(server, listener, rx));
    Server {
        base,
        key,
        app,
        dir,
        _shutdown: tx,
    }
}

async fn upload(http: &reqwest::Client, s: &Server, body: Vec<u8>) -> String {
    let r = http
        .post(format!("{}/api/v1/images", s.base))
        .bearer_auth(&s.key)
        .header("content-type", "image/png")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn du(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    total
}

fn wrk(url: &str, key: Option<&str>) -> Option<(String, String, String)> {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args(["-t2", "-c16", "-d8s", "--latency"]);
    if let Some(k) = key {
        cmd.args(["-H", &format!("Authorization: Bearer {k}")]);
    }
    let out = cmd.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pick = |p: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string()
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    let non2xx = text.lines().find(|l| l.contains("Non-2xx"));
    if let Some(l) = non2xx {
        println!("  wrk warning: {l}");
    }
    Some((pick("50%"), pick("99%"), rps))
}

async fn http_bench() {
    let s = start().await;
    let http = reqwest::Client::new();

    // End-to-end upload throughput with big images.
    let big: Vec<Vec<u8>> = (0..6).map(|i| png(2000, 1500, i + 1)).collect();
    let bytes: usize = big.iter().map(Vec::len).sum();
    let t = Instant::now();
    for b in big {
        upload(&http, &s, b).await;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "HTTP upload, 6 × 2000×1500 PNG ({:.1} MB each): {:.1} MB/s end to end (decode + encrypt + fsync + flush)",
        bytes as f64 / 6.0 / (1 << 20) as f64,
        mbps(bytes, secs)
    );

    // 1,000 small uploads: on-disk size.
    let (db_dir, blob_dir) = (
        s.dir.path().join("data/db"),
        s.dir.path().join("data/blobs"),
    );
    let (db0, blobs0) = (du(&db_dir), du(&blob_dir));
    let mut uploaded = 0usize;
    let mut ids = Vec::new();
    let t = Instant::now();
    for i in 0..1000u64 {
        let b = png(64, 64, 1000 + i);
        uploaded += b.len();
        ids.push(upload(&http, &s, b).await);
    }
    let secs = t.elapsed().as_secs_f64();
    // let the thumbnail jobs finish
    while s.app.jobs.counts().unwrap()[..2].iter().sum::<u64>() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    s.app.store.flush().await.unwrap();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let (db1, blobs1) = (du(&db_dir), du(&blob_dir));
    let grown = (db1 + blobs1).saturating_sub(db0 + blobs0);
    println!(
        "1,000 uploads of 64×64 PNG: {:.0} uploads/s; uploaded {:.2} MiB; on disk +{:.2} MiB = blobs +{:.2} MiB (originals + 1,000 thumbnails) + sled +{:.2} MiB; {:.2}× the uploaded bytes",
        1000.0 / secs,
        mib(uploaded as u64),
        mib(grown),
        mib(blobs1.saturating_sub(blobs0)),
        mib(db1.saturating_sub(db0)),
        grown as f64 / uploaded as f64
    );

    // Latency under loopback load.
    let url = format!("{}/api/v1/images/{}", s.base, ids[500]);
    let health = format!("{}/healthz", s.base);
    let base = s.base.clone();
    let key = s.key.clone();
    let res = tokio::task::spawn_blocking(move || {
        let _ = &base;
        (wrk(&health, None), wrk(&url, Some(&key)))
    })
    .await
    .unwrap();
    match res {
        (Some(h), Some(g)) => {
            println!(
                "GET /healthz (reference), wrk -t2 -c16 -d8s: p50 {} p99 {} ({} req/s)",
                h.0, h.1, h.2
            );
            println!(
                "GET /api/v1/images/{{id}},  wrk -t2 -c16 -d8s: p50 {} p99 {} ({} req/s)",
                g.0, g.1, g.2
            );
        }
        _ => println!("wrk not found: install it (apt-get install wrk) for the latency figures"),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    blob_bench();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(http_bench());
}
