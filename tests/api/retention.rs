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

#[tokio::test]
async fn idle_free_accounts_are_warned_then_deleted_and_no_one_else_is() {
    let t = spawn_app().await;
    let idle = t.member("idle@example.com", Plan::Free).await;
    let meta = idle.upload(noisy_png(40, 30, 9)).await;
    idle.wait_job(meta["thumbnail_job_id"].as_str().unwrap())
        .await;
    t.member("pro@example.com", Plan::Pro).await;
    t.member("active@example.com", Plan::Free).await;
    let id_of = |email: &str| t.app.store.user_by_email(email).unwrap().unwrap().id;
    let idle_id = id_of("idle@example.com");
    let kinds = |items: &[image_layered::retention::Swept]| -> Vec<(String, String)> {
        items
            .iter()
            .filter(|i| i.kind != "image" && i.kind != "session")
            .map(|i| (i.kind.to_string(), i.id.clone()))
            .collect()
    };

    t.advance_hours(20 * 24);
    t.client()
        .login("active@example.com", "member password")
        .await;
    // 23 days idle: the warning, for the idle free member only
    t.advance_hours(3 * 24 + 1);
    let due = t.app.sweeper.due(t.app.now()).unwrap();
    assert_eq!(
        kinds(&due),
        [("inactivity_warning".into(), idle_id.to_string())]
    );
    let swept = t.app.sweeper.sweep(t.app.now()).await.unwrap();
    assert_eq!(
        kinds(&swept),
        [("inactivity_warning".into(), idle_id.to_string())]
    );
    let (_, mail) = t.mail(0).await;
    assert!(mail.contains("To: idle@example.com"), "{mail}");
    assert!(
        mail.contains("2026-07-01T13:00:00Z"),
        "the deletion date: {mail}"
    );
    // warned once: nothing more until the 30 days are up
    t.advance_hours(6 * 24);
    assert!(kinds(&t.app.sweeper.sweep(t.app.now()).await.unwrap()).is_empty());

    // 30 days: deleted as in P5, purged in the same sweep, and the master key rotated
    t.advance_hours(24);
    let swept = t.app.sweeper.sweep(t.app.now()).await.unwrap();
    assert_eq!(
        kinds(&swept),
        [
            ("inactive_account".into(), idle_id.to_string()),
            ("member".into(), idle_id.to_string()),
            ("master_key".into(), "generation 2".to_string())
        ]
    );
    assert!(t.app.store.get_user(idle_id).unwrap().is_none());
    assert!(t.app.store.list_images(idle_id).unwrap().is_empty());
    assert_eq!(
        t.client()
            .post_login("idle@example.com", "member password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // the active free member, the paid one and the admin (idle as long) are all kept
    for email in ["active@example.com", "pro@example.com", ADMIN_EMAIL] {
        assert!(
            t.app.store.user_by_email(email).unwrap().is_some(),
            "{email}"
        );
    }
    t.app.audit.verify().unwrap();
}

#[tokio::test]
async fn the_master_key_is_rotated_weekly_and_everything_stays_readable() {
    let t = spawn_app().await;
    t.member("ann@example.com", Plan::Pro).await;
    let generation = t.app.keyring.current_generation();
    // the master key's line (sessions expire meanwhile too)
    let names = |items: &[image_layered::retention::Swept]| -> Vec<String> {
        items
            .iter()
            .filter(|i| i.kind == "master_key")
            .map(|i| format!("{} {}", i.kind, i.id))
            .collect()
    };

    // the first sweep starts the clock; six days later nothing is due
    assert_eq!(t.sweep().await, 0);
    t.advance_hours(6 * 24);
    assert!(names(&t.app.sweeper.due(t.app.now()).unwrap()).is_empty());
    assert!(names(&t.app.sweeper.sweep(t.app.now()).await.unwrap()).is_empty());
    assert_eq!(t.app.keyring.current_generation(), generation);
    // an upload under the old generation (kept 48 h)
    let c = t.client().login("ann@example.com", "member password").await;
    let meta = c.upload(noisy_png(40, 40, 3)).await;
    let id = meta["id"].as_str().unwrap();
    c.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;

    // a week: the dry run says so, the sweep rotates
    t.advance_hours(24);
    assert_eq!(
        names(&t.app.sweeper.due(t.app.now()).unwrap()),
        ["master_key rotation (weekly)"]
    );
    let swept = t.app.sweeper.sweep(t.app.now()).await.unwrap();
    assert_eq!(
        names(&swept),
        [format!("master_key generation {}", generation + 1)]
    );
    assert_eq!(t.app.keyring.current_generation(), generation + 1);
    let wrapped = t
        .app
        .store
        .data_key(
            t.app
                .store
                .user_by_email("ann@example.com")
                .unwrap()
                .unwrap()
                .id,
        )
        .unwrap()
        .unwrap();
    assert_eq!(wrapped.generation, generation + 1, "re-wrapped");

    // the running studio reads old data and writes new data under the new generation
    let c = t.client().login("ann@example.com", "member password").await;
    let (s, _) = c.bytes(&format!("/api/v1/images/{id}/original")).await;
    assert_eq!(s, StatusCode::OK);
    let meta = c.upload(noisy_png(20, 20, 4)).await;
    let (s, _) = c
        .bytes(&format!(
            "/api/v1/images/{}/original",
            meta["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    // a member made now gets a key under the new generation
    t.member("new@example.com", Plan::Free).await;
    let audit = t.app.audit.entries(0, 100).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "keys.rotate" && e.actor == "sweep"));
}

#[tokio::test]
async fn job_records_expire_and_go_with_their_image_but_an_unfinished_one_waits() {
    let t = spawn_app().await;
    let c = t.admin().await;
    // a decomposition's job goes with its image
    let a = c.upload(noisy_png(64, 48, 5)).await;
    let a_id = a["id"].as_str().unwrap();
    let (job, _doc) = decompose_palette(&c, a_id, 2).await;
    let job_id = job["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.json(&format!("/api/v1/jobs/{job_id}")).await.0,
        StatusCode::OK
    );
    let r = c
        .delete(&format!("/api/v1/images/{a_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.json(&format!("/api/v1/jobs/{job_id}")).await.0,
        StatusCode::NOT_FOUND,
        "the decomposition's record (its op and result) went with the image"
    );

    // a finished job expires after jobs.keep_days (30); one still waiting is kept
    let (s, export) = c
        .post_json("/api/v1/me/export", serde_json::json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{export}");
    let finished = export["job_id"].as_str().unwrap().to_string();
    assert_eq!(c.wait_job(&finished).await["state"], "succeeded");
    let me = t.app.store.user_by_email(ADMIN_EMAIL).unwrap().unwrap();
    let mut waiting = t
        .app
        .jobs
        .new_job(me.id, image_layered::store::JobKind::Export);
    waiting.not_before += 400 * 86_400; // will not run during this test
    t.app.jobs.enqueue(&waiting).await.unwrap();
    t.advance_hours(29 * 24);
    let swept = t.app.sweeper.sweep(t.app.now()).await.unwrap();
    assert!(!swept.iter().any(|s| s.kind == "job"), "{swept:?}");
    t.advance_hours(2 * 24);
    let swept = t.app.sweeper.sweep(t.app.now()).await.unwrap();
    let jobs: Vec<&str> = swept
        .iter()
        .filter(|s| s.kind == "job")
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(jobs, [finished.as_str()]);
    assert!(t
        .app
        .store
        .get_job(finished.parse().unwrap())
        .unwrap()
        .is_none());
    assert!(!jobs.contains(&waiting.id.to_string().as_str()), "{jobs:?}");
    let kept = t.app.store.get_job(waiting.id).unwrap().unwrap();
    assert_eq!(kept.state.as_str(), "queued");
    let next = t
        .app
        .store
        .ttl_of(image_layered::store::TtlKind::Job, waiting.id.as_bytes())
        .unwrap();
    assert_eq!(next, Some(t.app.now() + 86_400), "looked at again tomorrow");
    // nothing is left without an expiry
    assert_eq!(t.app.store.expire_unexpiring_jobs(1).unwrap(), 0);
}
