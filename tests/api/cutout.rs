//! Background removal as a job over HTTP, with the real models (`IMAGE_LAYERED_TEST_MODELS`,
//! set by scripts/test): readiness, the job, the downloadable RGBA result, plan retention.

use image_layered::models::SilentProgress;
use reqwest::StatusCode;

use crate::support::*;

fn models_dir() -> String {
    std::env::var("IMAGE_LAYERED_TEST_MODELS").expect(
        "set IMAGE_LAYERED_TEST_MODELS to a models dir made by `image-layered models fetch` (scripts/test does)",
    )
}

#[tokio::test]
#[ignore = "needs the real models: IMAGE_LAYERED_TEST_MODELS (scripts/test)"]
async fn cutout_job_stores_a_downloadable_rgba_result_and_readyz_reports_the_models() {
    let dir = models_dir();
    let t = spawn_app_with(&[
        ("IMAGE_LAYERED__MODELS__DIR", dir.as_str()),
        ("IMAGE_LAYERED__MODELS__AUTO_FETCH", "false"),
        ("IMAGE_LAYERED__INFERENCE__DEVICE", "cpu"),
    ])
    .await;
    let c = t.admin().await;
    let meta = c
        .upload(std::fs::read("tests/fixtures/photos/coffee.png").unwrap())
        .await;
    let id = meta["id"].as_str().unwrap();

    // before the models load: not ready, and a cutout is refused with a clear 503
    let r = reqwest::get(t.client().url("/readyz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = c
        .post(&format!("/api/v1/images/{id}/cutout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    let app = t.app.clone();
    tokio::task::spawn_blocking(move || app.load_models(&SilentProgress))
        .await
        .unwrap()
        .unwrap();
    let r = reqwest::get(t.client().url("/readyz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ready["models"]["provider"], "cpu");
    assert!(ready["models"]["loaded"]
        .as_array()
        .unwrap()
        .contains(&"isnet".into()));

    let r = c
        .post(&format!("/api/v1/images/{id}/cutout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: serde_json::Value = r.json().await.unwrap();
    let job = c.wait_job(job["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["result"]["cutout_url"],
        format!("/api/v1/images/{id}/cutout")
    );

    let r = c
        .get(&format!("/api/v1/images/{id}/cutout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cut = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(cut.color(), image::ColorType::Rgba8);
    assert_eq!((cut.width(), cut.height()), (600, 400));
    let reference = image::open("tests/fixtures/photos/coffee.matte.png")
        .unwrap()
        .to_luma8();
    let cut = cut.to_rgba8();
    let mean = cut
        .pixels()
        .zip(reference.pixels())
        .map(|(c, r)| (c.0[3] as f64 - r.0[0] as f64).abs())
        .sum::<f64>()
        / (600.0 * 400.0);
    assert!(
        mean < 1.0,
        "alpha differs from the reference by {mean:.3} levels"
    );

    // a processed result now follows the plan (the admin is on studio: 90 days)
    let (_, meta) = c.json(&format!("/api/v1/images/{id}")).await;
    assert_eq!(meta["state"], "processed");
    assert_eq!(meta["cutout_url"], format!("/api/v1/images/{id}/cutout"));
    t.advance_hours(49);
    t.sweep().await;
    let c = t.admin().await;
    assert_eq!(
        c.json(&format!("/api/v1/images/{id}")).await.0,
        StatusCode::OK
    );

    // another member cannot see it
    let b = t
        .member("other@example.com", image_layered::store::Plan::Free)
        .await;
    let r = b
        .get(&format!("/api/v1/images/{id}/cutout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = b
        .post(&format!("/api/v1/images/{id}/cutout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
