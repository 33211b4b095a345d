//! Crash safety: SIGKILL during an upload burst and during a job, and a graceful SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

/// Acknowledged uploads wanted before the kill.
const ACKED_BEFORE_KILL: usize = 40;
const UPLOADERS: u64 = 4;

struct Acked {
    id: String,
    sha256: String,
    bytes: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_upload_burst_loses_no_acknowledged_upload() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let other_answers: Arc<Mutex<Vec<String>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..UPLOADERS {
        let admin = server.with_key(&key);
        let (acked, other_answers, next, stop) = (
            acked.clone(),
            other_answers.clone(),
            next.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut interrupted = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let mut rng = Rng::new(1000 + i);
                let (w, h) = (8 + rng.below(120) as u32, 8 + rng.below(120) as u32);
                let png = noisy_png(w, h, i);
                let sent = admin
                    .post("/api/v1/images")
                    .header("content-type", "image/png")
                    .body(png.clone())
                    .send()
                    .await;
                let resp = match sent {
                    Ok(r) => r,
                    // The server is gone (killed while this was in flight, or refused).
                    Err(_) => {
                        interrupted += 1;
                        break;
                    }
                };
                let status = resp.status();
                let body = resp.bytes().await;
                match (status, body) {
                    (StatusCode::CREATED, Ok(body)) => {
                        let v: Value = serde_json::from_slice(&body).expect("upload JSON");
                        acked.lock().unwrap().push(Acked {
                            id: v["id"].as_str().expect("id").to_string(),
                            sha256: sha256_hex(&png),
                            bytes: png,
                        });
                    }
                    // 201 sent but the body was cut by the kill: not counted as acknowledged.
                    (StatusCode::CREATED, Err(_)) => {
                        interrupted += 1;
                        break;
                    }
                    (other, body) => other_answers
                        .lock()
                        .unwrap()
                        .push(format!("{other}: {:?}", body.map(|b| b.to_vec()))),
                }
            }
            interrupted
        }));
    }

    wait_for(
        "40 acknowledged uploads",
        Duration::from_secs(60),
        Duration::from_millis(2),
        || {
            let n = acked.lock().unwrap().len();
            async move { (n >= ACKED_BEFORE_KILL).then_some(()) }
        },
    )
    .await;
    // Uploaders are still going: this lands in the middle of requests.
    server.kill();
    stop.store(true, Ordering::SeqCst);
    let mut interrupted = 0;
    for t in tasks {
        interrupted += t.await.expect("uploader task");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let other = other_answers.lock().unwrap().clone();
    assert!(
        other.is_empty(),
        "the server answered uploads with something other than 201: {other:?}"
    );
    eprintln!(
        "killed after {} acknowledged uploads, {} requests cut off, {} attempted",
        acked.len(),
        interrupted,
        next.load(Ordering::SeqCst)
    );

    // Leave debris the reconciler must clean: a temp file of an interrupted put and a
    // sealed blob no metadata refers to (a copy of a real one).
    let owner_dirs: Vec<_> = std::fs::read_dir(env.blobs())
        .expect("blob root")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(owner_dirs.len(), 1, "one member uploaded: {owner_dirs:?}");
    let owner_dir = &owner_dirs[0];
    let natural_temps = files_under(&env.blobs())
        .iter()
        .filter(|p| file_name(p).contains(".tmp"))
        .count();
    let mut rng = Rng::new(4242);
    let fake_id = |rng: &mut Rng| format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    let planted_temp = owner_dir.join(format!("{}.blob.tmp.00c0ffee", fake_id(&mut rng)));
    std::fs::write(&planted_temp, b"half an upload").expect("plant temp");
    let some_blob = files_under(owner_dir)
        .into_iter()
        .find(|p| file_name(p).ends_with(".blob"))
        .expect("a sealed blob");
    let planted_orphan = owner_dir.join(format!("{}.blob", fake_id(&mut rng)));
    std::fs::copy(&some_blob, &planted_orphan).expect("plant orphan");
    eprintln!("{natural_temps} temp files were left by the kill itself");

    let server = server.restart(&env).await;

    // Let every thumbnail job settle, so no blob write is in flight while we count.
    let before = server.with_key(&key).images().await;
    for (id, img) in &before {
        if let Some(job) = img["thumbnail_job_id"].as_str() {
            let j = server
                .with_key(&key)
                .wait_job_until(job, Duration::from_secs(60), is_final)
                .await;
            assert_eq!(j["state"], "succeeded", "thumbnail job of {id}: {j}");
        }
    }
    let images = server.with_key(&key).images().await;

    // Every acknowledged upload survived, byte for byte.
    for a in &acked {
        assert!(
            images.contains_key(&a.id),
            "acknowledged upload {} is missing after the restart",
            a.id
        );
        assert_eq!(images[&a.id]["sha256"], a.sha256.as_str(), "image {}", a.id);
        let (status, bytes) = server
            .with_key(&key)
            .bytes(&format!("/api/v1/images/{}/original", a.id))
            .await;
        assert_eq!(status, StatusCode::OK, "original of {}", a.id);
        assert!(
            bytes == a.bytes,
            "original of {} differs from the upload",
            a.id
        );
    }

    // Every image the metadata knows (acknowledged or not) is whole.
    let mut expected_blobs = 0;
    for (id, img) in &images {
        expected_blobs += 1;
        let (status, bytes) = server
            .with_key(&key)
            .bytes(&format!("/api/v1/images/{id}/original"))
            .await;
        assert_eq!(status, StatusCode::OK, "original of {id}: {img}");
        assert_eq!(sha256_hex(&bytes), img["sha256"].as_str().unwrap(), "{id}");
        if img["thumbnail_url"].is_string() {
            expected_blobs += 1;
            let (status, png) = server
                .with_key(&key)
                .bytes(&format!("/api/v1/images/{id}/thumbnail"))
                .await;
            assert_eq!(status, StatusCode::OK, "thumbnail of {id}");
            let (w, h) = dimensions(&png);
            assert!(w.max(h) <= 256, "thumbnail of {id} is {w}x{h}");
        }
    }

    // No temp file, no orphan, no missing file: blob files = originals + thumbnails.
    let files = files_under(&env.blobs());
    let temps: Vec<_> = files
        .iter()
        .filter(|p| file_name(p).contains(".tmp"))
        .collect();
    assert!(
        temps.is_empty(),
        "temp files survived the restart: {temps:?}"
    );
    assert!(
        !planted_temp.exists(),
        "the reconciler kept a stale temp file"
    );
    assert!(
        !planted_orphan.exists(),
        "the reconciler kept an orphan blob"
    );
    let blobs = files
        .iter()
        .filter(|p| file_name(p).ends_with(".blob"))
        .count();
    assert_eq!(
        blobs,
        expected_blobs,
        "blob files on disk vs originals + thumbnails in metadata ({} images); files: {files:?}",
        images.len()
    );
    assert_eq!(
        blobs,
        files.len(),
        "unexpected files in the blob store: {files:?}"
    );
}

/// Uploads ever bigger noisy PNGs until one's thumbnail job is seen running, then SIGKILLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_interrupted_by_sigkill_completes_after_restart() {
    let env = Env::new();
    let opts = ServerOpts {
        env: vec![(
            "IMAGE_LAYERED__UPLOADS__MAX_BYTES".into(),
            "200000000".into(),
        )],
        ..ServerOpts::default()
    };
    let mut server = Server::start_with(&env, opts).await;
    let key = server.admin_key().await;

    let mut caught = None;
    for (n, (w, h)) in [(4000u32, 3000u32), (6000, 4500)].into_iter().enumerate() {
        let png = noisy_png(w, h, 77 + n as u64);
        let img = server.with_key(&key).upload(png.clone()).await;
        let id = img["id"].as_str().unwrap().to_string();
        let job = img["thumbnail_job_id"]
            .as_str()
            .expect("thumbnail job")
            .to_string();
        let path = format!("/api/v1/jobs/{job}");
        let started = Instant::now();
        loop {
            let (status, j) = server.with_key(&key).json(&path).await;
            assert_eq!(status, StatusCode::OK, "{j}");
            let state = j["state"].as_str().unwrap_or("").to_string();
            if state == "running" {
                server.kill();
                caught = Some((id, job, png, (w, h)));
                break;
            }
            if is_final(&state) {
                eprintln!("{w}x{h}: job finished ({state}) before it was seen running");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "job never started: {j}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if caught.is_some() {
            break;
        }
    }
    let (id, job, png, (w, h)) = caught.expect("no thumbnail job was ever seen running");

    let server = server.restart(&env).await;
    let (_, j) = server
        .with_key(&key)
        .json(&format!("/api/v1/jobs/{job}"))
        .await;
    eprintln!("after the restart the job is {}", j["state"]);
    let j = server
        .with_key(&key)
        .wait_job_until(&job, Duration::from_secs(60), is_final)
        .await;
    assert_eq!(j["state"], "succeeded", "{j}\n{}", server.log_tail(20));

    let (status, thumb) = server
        .with_key(&key)
        .bytes(&format!("/api/v1/images/{id}/thumbnail"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        thumb.starts_with(b"\x89PNG\r\n\x1a\n"),
        "thumbnail is not a PNG"
    );
    let (tw, th) = dimensions(&thumb);
    assert_eq!(tw.max(th), 256, "thumbnail {tw}x{th}");
    assert_eq!(
        (tw, th),
        (256, (256.0 * h as f64 / w as f64).round() as u32),
        "aspect ratio kept"
    );
    let (status, original) = server
        .with_key(&key)
        .bytes(&format!("/api/v1/images/{id}/original"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(original == png, "original changed");

    // Exactly the original and the thumbnail of each image remain; nothing half-written.
    let images = server.with_key(&key).images().await;
    let expected: usize = images
        .values()
        .map(|i| 1 + usize::from(i["thumbnail_url"].is_string()))
        .sum();
    let files = files_under(&env.blobs());
    assert!(
        files.iter().all(|p| file_name(p).ends_with(".blob")),
        "{files:?}"
    );
    assert_eq!(files.len(), expected, "{files:?}");
}

/// A request in flight when SIGTERM arrives is answered; then the process exits 0.
#[tokio::test]
async fn sigterm_finishes_in_flight_and_exits_cleanly() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let png = noisy_png(300, 300, 5);

    // Start an upload and send only half of its body.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /api/v1/images HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.port,
        png.len()
    );
    let half = png.len() / 2;
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&png[..half]).unwrap();
    stream.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    send_signal(server.pid(), "TERM");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        server.running(),
        "the server exited with a request in flight; log:\n{}",
        server.log_tail(20)
    );
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "the server still accepts new connections after SIGTERM"
    );

    // Finish the request: it must still be served.
    stream.write_all(&png[half..]).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    assert!(
        text.starts_with("HTTP/1.1 201"),
        "in-flight upload not answered 201: {text:?}"
    );
    let body = &text[text.find('{').expect("JSON body")..=text.rfind('}').unwrap()];
    let v: Value = serde_json::from_str(body).expect("upload JSON");
    let id = v["id"].as_str().expect("id").to_string();

    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?}; log:\n{}",
        server.log_tail(20)
    );
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());

    // What was acknowledged during the shutdown is durable.
    let server = server.restart(&env).await;
    let (status, bytes) = server
        .with_key(&key)
        .bytes(&format!("/api/v1/images/{id}/original"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        bytes == png,
        "the upload answered during shutdown was not kept"
    );
}

/// SIGTERM while a job runs: the worker finishes (and records) it before the process exits 0.
#[tokio::test]
async fn sigterm_lets_the_running_job_finish() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let png = noisy_png(4000, 3000, 99);
    let img = server.with_key(&key).upload(png).await;
    let id = img["id"].as_str().unwrap().to_string();
    let job = img["thumbnail_job_id"].as_str().unwrap().to_string();
    let j = server
        .with_key(&key)
        .wait_job_until(&job, Duration::from_secs(30), |s| {
            s == "running" || is_final(s)
        })
        .await;
    if j["state"] != "running" {
        eprintln!(
            "the job finished before SIGTERM ({}); the check is weaker",
            j["state"]
        );
    }
    let status = server.terminate(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log_tail(20));

    let server = server.restart(&env).await;
    // Recorded before the exit, not re-run after the restart.
    let (_, j) = server
        .with_key(&key)
        .json(&format!("/api/v1/jobs/{job}"))
        .await;
    assert_eq!(j["state"], "succeeded", "{j}");
    let (status, thumb) = server
        .with_key(&key)
        .bytes(&format!("/api/v1/images/{id}/thumbnail"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dimensions(&thumb), (256, 192));
}

/// SIGTERM with an event stream open on a job that will not run before the exit: the
/// stream must end with the shutdown, not hold the process for `shutdown_grace_secs`.
#[tokio::test]
async fn sigterm_ends_open_event_streams_promptly() {
    let env = Env::new();
    let opts = ServerOpts {
        env: vec![("IMAGE_LAYERED__JOBS__WORKERS".into(), "1".into())],
        ..ServerOpts::default()
    };
    let mut server = Server::start_with(&env, opts).await;
    let key = server.admin_key().await;
    let big = server
        .with_key(&key)
        .upload(noisy_png(4000, 3000, 123))
        .await;
    let small = server.with_key(&key).upload(noisy_png(32, 32, 124)).await;
    let big_job = big["thumbnail_job_id"].as_str().unwrap().to_string();
    let small_job = small["thumbnail_job_id"].as_str().unwrap().to_string();
    // The only worker is busy with the big image; the small one waits in the queue.
    server
        .with_key(&key)
        .wait_job_until(&big_job, Duration::from_secs(30), |s| {
            s == "running" || is_final(s)
        })
        .await;
    let mut events = server
        .with_key(&key)
        .get(&format!("/api/v1/jobs/{small_job}/events"))
        .send()
        .await
        .expect("open the event stream");
    assert_eq!(events.status(), StatusCode::OK);
    let first = events
        .chunk()
        .await
        .expect("first event")
        .expect("an event");
    let first = String::from_utf8_lossy(&first).to_string();
    assert!(first.contains("\"queued\""), "{first}");

    let started = Instant::now();
    let status = server.terminate(Duration::from_secs(40)).await;
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took < Duration::from_secs(10),
        "an open event stream held the shutdown for {took:?}; server log:\n{}",
        server.stderr()
    );
    drop(events);
}

/// Edits acknowledged before a SIGKILL are all there after the restart, with every undo state
/// intact (each state's layer blobs readable), and the document accepts edits again.
#[tokio::test]
async fn sigkill_during_edits_loses_no_acknowledged_revision_or_undo_state() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let design = std::fs::read("tests/fixtures/eval/public-1-012/composite.png").unwrap();
    let img = server.with_key(&key).upload(design).await;
    let id = img["id"].as_str().unwrap();
    let r = server
        .with_key(&key)
        .post(&format!("/api/v1/images/{id}/decompose"))
        .json(&serde_json::json!({"mode": "palette", "layers": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: Value = r.json().await.unwrap();
    let job = server
        .with_key(&key)
        .wait_job_until(
            job["job_id"].as_str().unwrap(),
            Duration::from_secs(60),
            is_final,
        )
        .await;
    let doc_id = job["result"]["document_id"].as_str().unwrap().to_string();
    let (_, doc) = server
        .with_key(&key)
        .json(&format!("/api/v1/documents/{doc_id}"))
        .await;
    let layer = doc["layers"][1]["id"].as_str().unwrap().to_string();

    // two clients edit the same document (pixel ops and metadata ops) until the kill
    let acked = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..2u64 {
        let (admin, path, layer, acked, stop) = (
            server.with_key(&key),
            format!("/api/v1/documents/{doc_id}/ops"),
            layer.clone(),
            acked.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let body = if (i + worker).is_multiple_of(2) {
                    serde_json::json!({"op": "transform", "layer_id": layer, "dx": 1})
                } else {
                    serde_json::json!({"op": "recolor", "layer_id": layer, "hue_shift": 7})
                };
                let sent = admin.post(&path).json(&body).send().await;
                let Ok(r) = sent else { break };
                if r.status() != StatusCode::OK {
                    break;
                }
                let Ok(d) = r.json::<Value>().await else {
                    break;
                };
                acked.fetch_max(d["revision"].as_u64().unwrap(), Ordering::SeqCst);
            }
        }));
    }
    while acked.load(Ordering::SeqCst) < 12 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.load(Ordering::SeqCst);

    let server = server.restart(&env).await;
    let path = format!("/api/v1/documents/{doc_id}");
    let (s, doc) = server.with_key(&key).json(&path).await;
    assert_eq!(s, StatusCode::OK);
    let revision = doc["revision"].as_u64().unwrap();
    assert!(
        revision >= acked,
        "revision {revision} after the restart, but {acked} was acknowledged"
    );
    // undo every state back to the decomposition: each state's layers are all readable
    let mut undone = 0;
    loop {
        let (_, d) = server.with_key(&key).json(&path).await;
        for l in d["layers"].as_array().unwrap() {
            let (s, png) = server
                .with_key(&key)
                .bytes(l["url"].as_str().unwrap())
                .await;
            assert_eq!(s, StatusCode::OK, "a layer of a history state is gone");
            image::load_from_memory(&png).expect("a layer PNG decodes");
        }
        if d["can_undo"] != true {
            break;
        }
        let r = server
            .with_key(&key)
            .post(&format!("{path}/undo"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        undone += 1;
    }
    assert!(
        undone as u64 >= (acked - 1).min(50),
        "{undone} undo steps for {acked} revisions"
    );
    // and it takes edits again
    let r = server
        .with_key(&key)
        .post(&format!("{path}/ops"))
        .json(&serde_json::json!({"op": "rename", "layer_id": layer, "name": "after"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !(server.stderr() + &server.stdout()).contains("points at a missing blob file"),
        "the reconciler reported missing files:\n{}",
        server.log_tail(20)
    );
}

/// SIGKILL while a paid job runs: after the restart the job runs again and its cost is
/// settled exactly once — no credit lost, none made; the balance is the ledger's sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_reserve_and_charge_loses_and_makes_no_credit() {
    let env = Env::new();
    let opts = ServerOpts {
        env: vec![
            (
                "IMAGE_LAYERED__BILLING__CHARGE_ADMINS".into(),
                "true".into(),
            ),
            (
                "IMAGE_LAYERED__UPLOADS__MAX_BYTES".into(),
                "200000000".into(),
            ),
        ],
        ..ServerOpts::default()
    };
    let mut server = Server::start_with(&env, opts).await;
    let key = server.admin_key().await;
    let c = server.with_key(&key);
    let img = c.upload(noisy_png(2400, 1800, 5)).await;
    let id = img["id"].as_str().unwrap().to_string();
    c.wait_job_until(
        img["thumbnail_job_id"].as_str().unwrap(),
        Duration::from_secs(60),
        is_final,
    )
    .await;
    let r = c
        .post(&format!("/api/v1/images/{id}/decompose"))
        .json(&serde_json::json!({"mode": "palette", "layers": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["x-credits-charged"], "5");
    let job = r.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    loop {
        let (_, j) = c.json(&format!("/api/v1/jobs/{job}")).await;
        let state = j["state"].as_str().unwrap_or("").to_string();
        if state == "running" || is_final(&state) {
            eprintln!("killed with the job {state}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{j}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill();

    let server = server.restart(&env).await;
    let c = server.with_key(&key);
    let j = c
        .wait_job_until(&job, Duration::from_secs(120), is_final)
        .await;
    assert_eq!(j["state"], "succeeded", "{j}\n{}", server.log_tail(20));
    let (_, ledger) = c.json("/api/v1/me/ledger").await;
    let entries = ledger.as_array().unwrap();
    let sum: i64 = entries.iter().map(|e| e["delta"].as_i64().unwrap()).sum();
    assert_eq!(sum, entries[0]["balance"].as_i64().unwrap(), "{ledger}");
    let of_job: Vec<_> = entries
        .iter()
        .filter(|e| e["job_id"] == job.as_str())
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(of_job, ["charge", "reserve"], "{ledger}");
    assert_eq!(c.json("/api/v1/me").await.1["credits"], 2000 - 5);
}
