//! Sign-in, sessions (idle expiry, logout), API keys and the same-origin rule.

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn login_rejects_bad_credentials_and_bad_json() {
    let t = spawn_app().await;
    let http = reqwest::Client::new();
    let r = http
        .post(t.client().url("/api/v1/auth/login"))
        .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .post(t.client().url("/api/v1/auth/login"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
    let r = http.get(t.client().url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_end_at_logout() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let cookie_line = {
        let r = reqwest::Client::new()
            .post(t.client().url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        r.headers()["set-cookie"].to_str().unwrap().to_string()
    };
    assert!(cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Lax"));
    let (s, me) = c.json("/api/v1/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["role"], "admin");
    t.advance_hours(13); // idle limit is 12 h
    assert_eq!(c.json("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    let c = t.admin().await;
    let r = c.post("/api/v1/auth/logout").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(c.json("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_keys_work_as_bearer_tokens_until_deleted() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let r = c
        .post("/api/v1/keys")
        .json(&serde_json::json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let key: serde_json::Value = r.json().await.unwrap();
    let secret = key["key"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let me = http
        .get(t.client().url("/api/v1/me"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let (_, list) = c.json("/api/v1/keys").await;
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert!(
        list["keys"][0].get("key").is_none(),
        "the secret is shown once"
    );
    let r = http
        .get(t.client().url("/api/v1/me"))
        .bearer_auth(format!("{secret}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let id = key["id"].as_str().unwrap();
    let r = c
        .delete(&format!("/api/v1/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let me = http
        .get(t.client().url("/api/v1/me"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookie_changes_from_another_origin_are_refused() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let r = c
        .post("/api/v1/images")
        .header("origin", "https://evil.example")
        .header("content-type", "image/png")
        .body(noisy_png(10, 10, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post("/api/v1/images")
        .header("origin", &t.base)
        .header("content-type", "image/png")
        .body(noisy_png(10, 10, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let t = spawn_app().await;
    let r = reqwest::get(t.client().url("/api/v1/nope")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "route_not_found");
    let r = reqwest::Client::new()
        .put(t.client().url("/api/v1/images"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = reqwest::get(t.client().url("/")).await.unwrap();
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn a_password_change_keeps_this_session_and_ends_the_others() {
    let t = spawn_app().await;
    let here = t.admin().await;
    let elsewhere = t.admin().await;
    let key = {
        let r = here
            .post("/api/v1/keys")
            .json(&serde_json::json!({"name": "script"}))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        v["key"].as_str().unwrap().to_string()
    };
    let change = |current: &str, new: &str| {
        let body = serde_json::json!({"current_password": current, "new_password": new});
        let c = here.clone();
        async move {
            let r = c
                .post("/api/v1/me/password")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    const NEW: &str = "a brand new passphrase";
    // a wrong current password or a weak new one changes nothing
    assert_eq!(
        change("not the password", NEW).await,
        (StatusCode::FORBIDDEN, "wrong_password".into())
    );
    assert_eq!(
        change(ADMIN_PASSWORD, "short").await,
        (StatusCode::BAD_REQUEST, "invalid_password".into())
    );
    assert_eq!(elsewhere.json("/api/v1/me").await.0, StatusCode::OK);
    assert_eq!(
        change(ADMIN_PASSWORD, NEW).await,
        (StatusCode::NO_CONTENT, String::new())
    );
    assert_eq!(here.json("/api/v1/me").await.0, StatusCode::OK);
    assert_eq!(
        elsewhere.json("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    // API keys are not sessions: they stay until deleted
    assert_eq!(
        t.client().with_key(&key).json("/api/v1/me").await.0,
        StatusCode::OK
    );
    let anon = t.client();
    assert_eq!(
        anon.post_login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = anon.login(ADMIN_EMAIL, NEW).await;

    // log out everywhere: every session ends, this one too
    let r = again.post("/api/v1/auth/logout-all").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    for c in [&here, &again] {
        assert_eq!(c.json("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        t.client().with_key(&key).json("/api/v1/me").await.0,
        StatusCode::OK
    );
}
