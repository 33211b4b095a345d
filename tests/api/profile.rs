//! Rectification (P12), black-box: a member corrects their name at once; a new email is
//! only applied once the link mailed to it is used (until then the old one signs in and
//! `/me` shows `pending_email`); an address another account uses is refused; the audit log
//! names the fields changed, never their values.

use image_layered::store::Plan;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_name_changes_at_once_and_a_new_email_only_once_confirmed() {
    let t = spawn_app().await;
    let a = t.member("ann@example.com", Plan::Free).await;
    t.member("bob@example.com", Plan::Free).await;

    let (s, me) = a
        .send_json(Method::PATCH, "/api/v1/me", json!({"name": "Ann Lee"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Ann Lee");
    assert_eq!(me["pending_email"], serde_json::Value::Null);

    // someone else's address: refused, nothing pending
    let (s, body) = a
        .send_json(
            Method::PATCH,
            "/api/v1/me",
            json!({"email": "BOB@example.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    // bad input
    for bad in [
        json!({"email": "not an address"}),
        json!({"name": ""}),
        json!({"role": "admin"}),
    ] {
        let (s, body) = a.send_json(Method::PATCH, "/api/v1/me", bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} → {body}");
    }

    let (s, me) = a
        .send_json(
            Method::PATCH,
            "/api/v1/me",
            json!({"email": "ann@new.example"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(
        me["email"], "ann@example.com",
        "not applied before it is confirmed"
    );
    assert_eq!(me["pending_email"], "ann@new.example");
    let (path, mail) = t.mail(0).await;
    assert!(mail.contains("To: ann@new.example"), "{mail}");
    assert!(path.exists());
    let token = token_in(&mail);

    // the old address still signs in, the new one not yet
    let r = t
        .client()
        .post_login("ann@new.example", "member password")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    t.client().login("ann@example.com", "member password").await;

    let (s, body) = t
        .client()
        .post_json("/api/v1/auth/verify", json!({"token": token}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, me) = a.json("/api/v1/me").await;
    assert_eq!(me["email"], "ann@new.example");
    assert_eq!(me["pending_email"], serde_json::Value::Null);
    assert_eq!(me["verified"], true);
    t.client().login("ann@new.example", "member password").await;
    let r = t
        .client()
        .post_login("ann@example.com", "member password")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // the old address is free for someone else now
    t.member("ann@example.com", Plan::Free).await;

    // single use
    let (s, _) = t
        .client()
        .post_json("/api/v1/auth/verify", json!({"token": token}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let audit = t.app.audit.entries(0, 100).unwrap();
    let updates: Vec<_> = audit.iter().filter(|e| e.action == "user.update").collect();
    assert_eq!(updates.len(), 2, "{audit:?}");
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains("ann@new.example") && !text.contains("Ann Lee"));
}

#[tokio::test]
async fn a_newer_email_request_supersedes_the_older_link() {
    let t = spawn_app().await;
    let a = t.member("ann@example.com", Plan::Free).await;
    for to in ["first@example.com", "second@example.com"] {
        let (s, _) = a
            .send_json(Method::PATCH, "/api/v1/me", json!({"email": to}))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let first = token_in(&t.mail(0).await.1);
    let second = token_in(&t.mail(1).await.1);
    let (s, _) = t
        .client()
        .post_json("/api/v1/auth/verify", json!({"token": first}))
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "the older link no longer applies"
    );
    let (s, _) = t
        .client()
        .post_json("/api/v1/auth/verify", json!({"token": second}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, me) = a.json("/api/v1/me").await;
    assert_eq!(me["email"], "second@example.com");

    // asking for the current address again cancels a pending change
    let (_, me) = a
        .send_json(
            Method::PATCH,
            "/api/v1/me",
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!(me["pending_email"], "x@example.com");
    let (_, me) = a
        .send_json(
            Method::PATCH,
            "/api/v1/me",
            json!({"email": "Second@example.com"}),
        )
        .await;
    assert_eq!(me["pending_email"], serde_json::Value::Null);
    let link = token_in(&t.mail(2).await.1);
    let (s, _) = t
        .client()
        .post_json("/api/v1/auth/verify", json!({"token": link}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
