//! The memory budget across jobs: with `jobs.memory_budget_mb` set below what one
//! decomposition of a large image claims, they queue — each waits for the one before to
//! give its memory back (the log says so) — and all succeed.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

/// Flat bands of three colours, PNG: quick for the palette decomposition at any size.
fn bands_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| match x * 3 / w {
        0 => image::Rgb([200, 30, 30]),
        1 => image::Rgb([30, 160, 60]),
        _ => image::Rgb([20, 40, 190]),
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn large_decompositions_wait_for_memory_instead_of_running_together() {
    let env = Env::new();
    let opts = ServerOpts {
        env: vec![
            // one 2000×1500 decomposition claims 256 MiB + 40 B per pixel: over the budget,
            // so it runs alone
            ("IMAGE_LAYERED__JOBS__MEMORY_BUDGET_MB".into(), "300".into()),
            ("IMAGE_LAYERED__JOBS__WORKERS".into(), "2".into()),
        ],
        ..ServerOpts::default()
    };
    let server = Server::start_with(&env, opts).await;
    let client = server.with_key(&server.admin_key().await);
    // uploads first, then the decompositions back to back, so that with two workers
    // both take one at once (each runs for well over the milliseconds between the posts)
    let mut images = Vec::new();
    for _ in 0..4 {
        images.push(client.upload(bands_png(2000, 1500)).await);
    }
    let mut jobs = Vec::new();
    for img in &images {
        let r = client
            .post(&format!(
                "/api/v1/images/{}/decompose",
                img["id"].as_str().unwrap()
            ))
            .json(&serde_json::json!({"mode": "palette", "layers": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let job: Value = r.json().await.unwrap();
        jobs.push(job["job_id"].as_str().unwrap().to_string());
    }
    for job in &jobs {
        let done = client
            .wait_job_until(job, Duration::from_secs(120), is_final)
            .await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    let log = server.stderr();
    assert!(log.contains("memory budget for image work"), "{log}");
    assert!(log.contains("waiting for memory"), "{log}");
}
