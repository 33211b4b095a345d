//! Retention with the injected clock: temporary uploads live 48 h; processed results live by
//! plan (free 30, pro 60, studio 90 days).

use image_layered::ids::ImageId;
use image_layered::store::Plan;
use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn a_temporary_upload_is_kept_at_47h_and_removed_at_49h() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let meta = c.upload(noisy_png(100, 100, 1)).await;
    let id = meta["id"].as_str().unwrap();
    c.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
    t.advance_hours(47);
    assert_eq!(t.sweep().await, 0);
    let c = t.admin().await; // the old session went idle
    assert_eq!(
        c.json(&format!("/api/v1/images/{id}")).await.0,
        StatusCode::OK
    );
    t.advance_hours(2);
    assert_eq!(t.sweep().await, 1);
    let c = t.admin().await;
    assert_eq!(
        c.json(&format!("/api/v1/images/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(files_under(&t.dir.path().join("data/blobs")).is_empty());
    // the removal is in the audit log, as done by the sweep
    let audit = t.app.audit.entries(0, 100).unwrap();
    assert!(
        audit.iter().any(|e| e.actor == "sweep"
            && e.action == "sweep.remove"
            && e.target == format!("image:{id}")),
        "{audit:?}"
    );
    t.app.audit.verify().unwrap();
    // idempotent
    assert_eq!(t.sweep().await, 0);
}

#[tokio::test]
async fn processed_results_follow_the_plan_retention() {
    for (plan, days) in [(Plan::Free, 30), (Plan::Pro, 60), (Plan::Studio, 90)] {
        let t = spawn_app().await;
        let email = format!("{}@example.com", plan.as_str());
        let c = t.member(&email, plan).await;
        let meta = c.upload(noisy_png(64, 64, days)).await;
        let id: ImageId = meta["id"].as_str().unwrap().parse().unwrap();
        c.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
        t.app.images.mark_processed(id).await.unwrap();
        t.advance_hours((days as i64 - 1) * 24);
        t.sweep().await;
        assert!(
            t.app.store.get_image(id).unwrap().is_some(),
            "{plan:?} kept at {} days",
            days - 1
        );
        t.advance_hours(2 * 24);
        t.sweep().await;
        assert!(
            t.app.store.get_image(id).unwrap().is_none(),
            "{plan:?} removed at {} days",
            days + 1
        );
        let c = t.client().login(&email, "member password").await;
        assert_eq!(
            c.json(&format!("/api/v1/images/{id}")).await.0,
            StatusCode::NOT_FOUND
        );
        assert!(files_under(&t.dir.path().join("data/blobs")).is_empty());
    }
}
