//! Consents (P9, P12) and cookies (P13): every consent is off until its member turns it on,
//! each change is kept with the policy version in force and audited, another member's are
//! their own, and the studio sets no cookie but the session's.

use image_layered::store::Plan;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn consents_start_off_and_every_change_is_kept() {
    let t = spawn_app().await;
    let a = t.member("a@example.com", Plan::Free).await;
    let b = t.member("b@example.com", Plan::Free).await;
    let (s, c) = a.json("/api/v1/me/consents").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        c,
        json!({"training": false, "analytics": false, "marketing": false, "history": []})
    );

    let (s, c) = a
        .send_json(
            reqwest::Method::PUT,
            "/api/v1/me/consents",
            json!({"training": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["training"], true);
    let h = c["history"].as_array().unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (&h[0]["kind"], &h[0]["value"], &h[0]["policy_version"]),
        (&json!("training"), &json!(true), &json!(1))
    );
    assert_eq!(h[0]["at"], "2026-06-01T12:00:00Z");
    // a repeat changes nothing and adds nothing
    let (_, c) = a
        .send_json(
            reqwest::Method::PUT,
            "/api/v1/me/consents",
            json!({"training": true, "marketing": false}),
        )
        .await;
    assert_eq!(c["history"].as_array().unwrap().len(), 1);
    t.advance_hours(1);
    let (_, c) = a
        .send_json(
            reqwest::Method::PUT,
            "/api/v1/me/consents",
            json!({"analytics": true, "training": false}),
        )
        .await;
    assert_eq!(
        (&c["training"], &c["analytics"], &c["marketing"]),
        (&json!(false), &json!(true), &json!(false))
    );
    let kinds: Vec<_> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["kind"].as_str().unwrap(), h["value"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("training", true), ("training", false), ("analytics", true)]
    );
    // it is what a later read says too
    assert_eq!(a.json("/api/v1/me/consents").await.1, c);
    // another member's are untouched
    assert_eq!(b.json("/api/v1/me/consents").await.1["history"], json!([]));

    for bad in [
        json!({"training": "yes"}),
        json!({"cookies": true}),
        json!([1]),
    ] {
        let (s, e) = a
            .send_json(reqwest::Method::PUT, "/api/v1/me/consents", bad.clone())
            .await;
        assert_eq!(
            (s, &e["error"]["code"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_json")),
            "{bad}"
        );
    }
    assert_eq!(
        a.json("/api/v1/me/consents").await.1,
        c,
        "bad requests change nothing"
    );

    let changes = t
        .app
        .audit
        .entries(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "consent.change")
        .count();
    assert_eq!(changes, 3);
    t.app.audit.verify().unwrap();
}

#[tokio::test]
async fn the_studio_sets_no_cookie_but_the_session() {
    let t = spawn_app().await;
    let anon = t.client();
    for path in [
        "/",
        "/assets/app.js",
        "/assets/style.css",
        "/healthz",
        "/readyz",
    ] {
        let r = anon.get(path).send().await.unwrap();
        assert!(r.headers().get("set-cookie").is_none(), "{path}");
    }
    let r = anon.post_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].to_str().unwrap().starts_with("il_session="));
    let c = t.admin().await;
    for path in ["/api/v1/me", "/api/v1/me/consents", "/api/v1/images", "/"] {
        let r = c.get(path).send().await.unwrap();
        assert!(r.headers().get("set-cookie").is_none(), "{path}");
    }
}
