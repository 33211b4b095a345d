//! Policy versions (P16) and the `/privacy` page: the page shows the configured numbers and
//! the version in effect; a published version is mailed to every member, waits 30 days for
//! existing members (shown in `/me` until accepted), and is accepted at sign-up by new ones.

use image_layered::store::Plan;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

async fn page(t: &TestApp) -> String {
    let r = t.client().get("/privacy").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    r.text().await.unwrap()
}

#[tokio::test]
async fn the_privacy_page_says_what_the_configuration_does() {
    let t = spawn_app_with(&[
        ("IMAGE_LAYERED__RETENTION__FREE_DAYS", "45"),
        ("IMAGE_LAYERED__RETENTION__TEMPORARY_HOURS", "24"),
        ("IMAGE_LAYERED__PRIVACY__INACTIVE_DAYS", "60"),
    ])
    .await;
    let html = page(&t).await;
    for want in [
        "Version 1, in effect since installation",
        "deleted after 24 hours",
        "kept 45 days on the free plan",
        "60 days on pro",
        "90 days on studio",
        "not used for 60 days",
        "warning mail 7 days before",
        "within 30 days",
        "at least 13",
    ] {
        assert!(html.contains(want), "{want:?} not in the page:\n{html}");
    }
    let (s, p) = t.client().json("/api/v1/policy").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        p,
        json!({"version": 1, "effective_at": null, "url": "/privacy",
            "registration": "invite", "min_age": 13})
    );
}

#[tokio::test]
async fn a_new_version_is_announced_waits_30_days_and_is_accepted() {
    let t = spawn_app_with(&[("IMAGE_LAYERED__ACCOUNTS__REGISTRATION", "open")]).await;
    let admin = t.admin().await;
    let member = t.member("m@example.com", Plan::Free).await;
    let (_, me) = member.json("/api/v1/me").await;
    assert_eq!(me["policy"], json!({"accepted": 1, "current": 1}));

    let (s, _) = member
        .post_json("/api/v1/admin/policies", json!({"version": 2, "body": "x"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "members cannot publish");
    let (s, e) = admin
        .post_json("/api/v1/admin/policies", json!({"version": 3, "body": "x"}))
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    let (s, v) = admin
        .post_json(
            "/api/v1/admin/policies",
            json!({"version": 2, "body": "Analytics now count jobs per plan and day."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v,
        json!({"version": 2, "effective_at": "2026-07-01T12:00:00Z"})
    );

    // every member is told by mail
    let texts = [t.mail(0).await.1, t.mail(1).await.1];
    assert_eq!(files_under(&t.dir.path().join("data/outbox")).len(), 2);
    for to in [ADMIN_EMAIL, "m@example.com"] {
        assert!(
            texts
                .iter()
                .any(|m| m.contains(&format!("To: {to}")) && m.contains("(version 2)")),
            "{to}: {texts:?}"
        );
    }

    // shown until accepted; version 1 stays in effect for 30 days
    let (_, me) = member.json("/api/v1/me").await;
    assert_eq!(
        me["policy"],
        json!({"accepted": 1, "current": 1,
               "pending": {"version": 2, "effective_at": "2026-07-01T12:00:00Z"}})
    );
    assert_eq!(t.client().json("/api/v1/policy").await.1["version"], 1);
    for bad in [5, 0] {
        let (s, _) = member
            .post_json("/api/v1/me/policy/accept", json!({ "version": bad }))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (s, r) = member
        .post_json("/api/v1/me/policy/accept", json!({"version": 2}))
        .await;
    assert_eq!(
        (s, &r["policy"]),
        (StatusCode::OK, &json!({"accepted": 2, "current": 1}))
    );
    let (s, _) = member
        .post_json("/api/v1/me/policy/accept", json!({"version": 1}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no going back");

    // a new member accepts the newest version as they sign up
    let (s, _) = t
        .client()
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "new@example.com", "password": "new member passphrase", "name": "N",
               "age_confirmed": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let new = t
        .client()
        .login("new@example.com", "new member passphrase")
        .await;
    assert_eq!(
        new.json("/api/v1/me").await.1["policy"],
        json!({"accepted": 2, "current": 1})
    );

    // 30 days later it is in effect, and the page shows it
    t.advance_hours(30 * 24);
    let (_, p) = t.client().json("/api/v1/policy").await;
    assert_eq!(
        (&p["version"], &p["effective_at"]),
        (&json!(2), &json!("2026-07-01T12:00:00Z"))
    );
    let html = page(&t).await;
    assert!(
        html.contains("Version 2, in effect since 2026-07-01T12:00:00Z"),
        "{html}"
    );
    assert!(
        html.contains("Analytics now count jobs per plan and day."),
        "{html}"
    );
    let actions: Vec<_> = t
        .app
        .audit
        .entries(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("policy."))
        .collect();
    assert_eq!(actions, ["policy.publish", "policy.accept"]);
}
