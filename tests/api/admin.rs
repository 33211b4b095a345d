//! The admin API, black-box: to members (and to nobody signed in) it does not exist; an
//! admin lists and searches members, adjusts credits with a reason, changes a plan (moving
//! the expiry of the member's results), suspends and deletes; usage statistics never show a
//! group smaller than `privacy.min_group_size`; every change is in the audit log.

use image_layered::store::Plan;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

async fn member_id(t: &TestApp, email: &str) -> String {
    t.app
        .store
        .user_by_email(email)
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

#[tokio::test]
async fn to_members_the_admin_api_does_not_exist() {
    let t = spawn_app().await;
    let m = t.member("ann@example.com", Plan::Free).await;
    let id = member_id(&t, "ann@example.com").await;
    let anon = t.client();
    for c in [&m, &anon] {
        for (method, path) in [
            (Method::GET, "/api/v1/admin/users".to_string()),
            (Method::PATCH, format!("/api/v1/admin/users/{id}")),
            (Method::DELETE, format!("/api/v1/admin/users/{id}")),
            (Method::GET, "/api/v1/admin/stats".to_string()),
            (Method::GET, "/api/v1/admin/audit".to_string()),
        ] {
            let (s, body) = c
                .send_json(method.clone(), &path, json!({"plan": "studio"}))
                .await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert_eq!(body["error"]["code"], "route_not_found");
        }
    }
    assert_eq!(
        m.json("/api/v1/me").await.1["plan"],
        "free",
        "nothing changed"
    );
}

#[tokio::test]
async fn an_admin_adjusts_credits_changes_plans_suspends_and_deletes() {
    let t = spawn_app().await;
    let a = t.admin().await;
    let m = t.member("ann@example.com", Plan::Free).await;
    t.member("bob@example.com", Plan::Free).await;
    let id = member_id(&t, "ann@example.com").await;
    let (_, me) = m.json("/api/v1/me").await;
    assert_eq!(me["credits"], 50);

    let (s, list) = a.json("/api/v1/admin/users?q=ANN").await;
    assert_eq!(s, StatusCode::OK);
    let users = list["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{list}");
    assert_eq!(users[0]["email"], "ann@example.com");
    assert_eq!(users[0]["credits"], 50);

    // credits: a reason is required, and the balance never goes below zero
    let path = format!("/api/v1/admin/users/{id}");
    let (s, _) = a
        .send_json(Method::PATCH, &path, json!({"credits_delta": 25}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = a
        .send_json(
            Method::PATCH,
            &path,
            json!({"credits_delta": -500, "reason": "oops"}),
        )
        .await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED);
    let (s, body) = a
        .send_json(
            Method::PATCH,
            &path,
            json!({"credits_delta": 25, "reason": "goodwill after an outage"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["credits"], 75);
    let (_, ledger) = m.json("/api/v1/me/ledger").await;
    assert_eq!(ledger[0]["reason"], "adjustment");
    assert_eq!(ledger[0]["note"], "goodwill after an outage");

    // a plan change moves the expiry of processed results by the retention difference
    let (_, _, doc) = document(&m).await;
    let before = doc["expires_at"].as_str().unwrap().to_string();
    let (s, body) = a
        .send_json(
            Method::PATCH,
            &path,
            json!({"plan": "pro", "reason": "upgrade"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["plan"], "pro");
    let (_, doc) = m
        .json(&format!(
            "/api/v1/documents/{}",
            doc["id"].as_str().unwrap()
        ))
        .await;
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let moved = parse(doc["expires_at"].as_str().unwrap()) - parse(&before);
    assert_eq!(
        moved,
        time::Duration::days(30),
        "free 30 days → pro 60 days"
    );

    // suspension ends the member's sessions and refuses sign-in until lifted
    let (s, _) = a
        .send_json(Method::PATCH, &path, json!({"suspended": true}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(m.json("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    let r = t
        .client()
        .post_login("ann@example.com", "member password")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, _) = a
        .send_json(Method::PATCH, &path, json!({"suspended": false}))
        .await;
    assert_eq!(s, StatusCode::OK);
    t.client().login("ann@example.com", "member password").await;

    // deletion, as the member could: a receipt, and sign-in fails at once
    let r = a.delete(&path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let receipt: Value = r.json().await.unwrap();
    assert_eq!(receipt["receipt"]["email"], "ann@example.com");
    let r = t
        .client()
        .post_login("ann@example.com", "member password")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // all of it is in the audit log, the reason included
    let (s, audit) = a.json("/api/v1/admin/audit").await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<_> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == format!("user:{id}"))
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        [
            "credits.adjust",
            "user.plan",
            "user.suspend",
            "user.unsuspend",
            "admin.user.delete"
        ]
    );
    let first = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "credits.adjust")
        .unwrap();
    assert_eq!(first["detail"]["reason"], "goodwill after an outage");
    t.app.audit.verify().unwrap();
}

#[tokio::test]
async fn usage_statistics_never_show_a_small_group() {
    let t = spawn_app_with(&[("IMAGE_LAYERED__PRIVACY__MIN_GROUP_SIZE", "2")]).await;
    let a = t.admin().await;
    for (email, plan, seed) in [
        ("f1@example.com", Plan::Free, 1),
        ("f2@example.com", Plan::Free, 2),
        ("p1@example.com", Plan::Pro, 3),
    ] {
        let c = t.member(email, plan).await;
        let meta = c.upload(noisy_png(16, 16, seed)).await;
        c.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
    }
    let (s, stats) = a.json("/api/v1/admin/stats").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(stats["min_group_size"], 2);
    let groups = stats["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{stats}");
    assert_eq!(groups[0]["plan"], "free");
    assert_eq!(groups[0]["members"], 2);
    assert!(
        groups.iter().all(|g| g["members"].as_u64().unwrap() >= 2),
        "the lone pro member is never shown: {stats}"
    );
}
