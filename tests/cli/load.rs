//! The loopback load test: a Rust client against the real binary measures the studio's
//! capacity for a representative read mix (an image's metadata, a small original download,
//! `/healthz`, in turn) with many requests in flight for a few seconds, then sends the same
//! mix open-loop at 80 % of that rate for a bounded time (`IMAGE_LAYERED_LOAD_SECS`, default
//! 10) and reports p50/p99 latency, errors and the server's RSS before and after.
//!
//! Latency runs from each request's scheduled start, not from when it was sent, so a server
//! that falls behind shows in the figures (no coordinated omission); at most
//! [`MAX_IN_FLIGHT`] requests are outstanding, so a stall cannot exhaust file descriptors.
//! What is asserted is what holds on any machine: no error at 80 % of the measured capacity
//! and no runaway memory (RSS after < 2 × before + 64 MiB: the allocator's arenas, sled's
//! page cache and per-connection buffers grow with concurrency and are kept, while a leak of
//! even 1 KiB per request would add ~100 MiB over a default run). Timings are printed,
//! never asserted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::Semaphore;

use crate::support::*;

/// How long the capacity probe runs.
const PROBE: Duration = Duration::from_secs(3);
/// Concurrent closed-loop clients of the probe.
const PROBE_CLIENTS: usize = 32;
/// The paced run's share of the measured capacity.
const LOAD_SHARE: f64 = 0.8;
/// Outstanding requests at most during the paced run.
const MAX_IN_FLIGHT: usize = 256;

/// The server's resident set, from `/proc/<pid>/status`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The request mix, in turn: metadata, the original, liveness.
fn path(i: u64, image: &str) -> String {
    match i % 3 {
        0 => format!("/api/v1/images/{image}"),
        1 => format!("/api/v1/images/{image}/original"),
        _ => "/healthz".to_string(),
    }
}

/// One request, body read to the end; `Err` describes an error (non-2xx or transport).
async fn one(c: &Client, path: &str) -> Result<(), String> {
    match c.get(path).send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.map(drop).map_err(|e| e.to_string()),
        Ok(r) => Err(format!("{path}: {}", r.status())),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_load_at_80_percent_of_capacity_has_no_errors() {
    let secs: u64 = std::env::var("IMAGE_LAYERED_LOAD_SECS")
        .ok()
        .map(|v| v.parse().expect("IMAGE_LAYERED_LOAD_SECS: whole seconds"))
        .unwrap_or(10);
    let env = Env::new();
    // every request is one member's: lift the per-member download cap (8) to what the
    // client can have in flight, so the test measures the server, not that limit
    let opts = ServerOpts {
        env: vec![(
            "IMAGE_LAYERED__SERVER__DOWNLOADS_PER_MEMBER".into(),
            MAX_IN_FLIGHT.to_string(),
        )],
        ..Default::default()
    };
    let server = Server::start_with(&env, opts).await;
    let key = server.admin_key().await;
    let c = server.with_key(&key);
    let img = c.upload(noisy_png(48, 48, 7)).await;
    let image = img["id"].as_str().expect("id").to_string();
    c.wait_job(img["thumbnail_job_id"].as_str().expect("thumbnail job"))
        .await;
    for i in 0..30 {
        one(&c, &path(i, &image)).await.expect("warm-up");
    }
    let rss_before = rss_kib(server.pid());

    // capacity: closed loop, many requests in flight
    let done = Arc::new(AtomicU64::new(0));
    let probe_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..PROBE_CLIENTS as u64 {
        let (c, image, done, errors) =
            (c.clone(), image.clone(), done.clone(), probe_errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = n;
            while started.elapsed() < PROBE {
                match one(&c, &path(i, &image)).await {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => errors.lock().unwrap().push(e),
                }
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("probe client");
    }
    let capacity = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let rss_probed = rss_kib(server.pid());
    let probe_errors = probe_errors.lock().unwrap().clone();
    assert!(
        probe_errors.is_empty(),
        "errors while measuring capacity ({} of them): {:?}",
        probe_errors.len(),
        &probe_errors[..probe_errors.len().min(5)]
    );

    // the paced run: open loop at 80 % of capacity
    let rate = capacity * LOAD_SHARE;
    let total = (rate * secs as f64) as u64;
    let gate = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let permit = gate.clone().acquire_owned().await.expect("gate");
        let (c, p, latencies, errors) = (
            c.clone(),
            path(i, &image),
            latencies.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let result = one(&c, &p).await;
            let took = due.elapsed();
            drop(permit);
            match result {
                Ok(()) => latencies.lock().unwrap().push(took),
                Err(e) => errors.lock().unwrap().push(e),
            }
        }));
    }
    for t in tasks {
        t.await.expect("paced request");
    }
    let ran_for = t0.elapsed();
    let rss_after = rss_kib(server.pid());
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let errors = errors.lock().unwrap().clone();
    eprintln!(
        "load: capacity {capacity:.0} req/s ({PROBE_CLIENTS} in flight for {PROBE:?}), ran at \
         {rate:.0} req/s for {:.1}s ({total} requests: metadata, 48x48 original, healthz), \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {}, RSS before {:.1} MiB / after the \
         probe {:.1} MiB / after {:.1} MiB",
        ran_for.as_secs_f64(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
        errors.len(),
        rss_before as f64 / 1024.0,
        rss_probed as f64 / 1024.0,
        rss_after as f64 / 1024.0,
    );
    assert!(
        errors.is_empty(),
        "{} errors at {rate:.0} req/s: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(lat.len() as u64, total, "every request answered");
    assert!(
        rss_after < 2 * rss_before + 64 * 1024,
        "the server's RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let (s, _) = c.json("/healthz").await;
    assert_eq!(s, StatusCode::OK);
}
