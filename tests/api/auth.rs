//! Sign-in, sessions (idle expiry, logout), API keys and the same-origin rule.

use reqwest::{Method, StatusCode};

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
async fn cookie_changes_need_proof_of_our_origin_and_sign_in_refuses_other_sites() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let upload = |headers: &[(&'static str, String)]| {
        let mut r = c
            .bare(Method::POST, "/api/v1/images")
            .header("content-type", "image/png")
            .body(noisy_png(10, 10, 1));
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        async move { r.send().await.unwrap().status() }
    };
    let evil = "https://evil.example".to_string();
    let cases = [
        (vec![("origin", evil.clone())], StatusCode::FORBIDDEN),
        // neither header: no proof it came from our pages
        (vec![], StatusCode::FORBIDDEN),
        (vec![("origin", "null".to_string())], StatusCode::FORBIDDEN),
        (
            vec![
                ("sec-fetch-site", "cross-site".into()),
                ("origin", t.base.clone()),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("sec-fetch-site", "same-site".into())],
            StatusCode::FORBIDDEN,
        ),
        (vec![("origin", t.base.clone())], StatusCode::CREATED),
        // a form under the no-referrer policy: Origin null, the browser vouches
        (
            vec![
                ("sec-fetch-site", "same-origin".into()),
                ("origin", "null".into()),
            ],
            StatusCode::CREATED,
        ),
    ];
    for (headers, expected) in cases {
        assert_eq!(upload(&headers).await, expected, "{headers:?}");
    }
    // an API key needs no origin (no ambient credential to abuse)
    let (_, key) = c
        .post_json("/api/v1/keys", serde_json::json!({"name": "script"}))
        .await;
    let r = t
        .client()
        .with_key(key["key"].as_str().unwrap())
        .post("/api/v1/images")
        .header("content-type", "image/png")
        .body(noisy_png(10, 10, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // sign-in: refused when a browser says another site sent it; scripts still sign in
    let login = |headers: &[(&'static str, &'static str)]| {
        let mut r = t
            .client()
            .bare(Method::POST, "/api/v1/auth/login")
            .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        async move { r.send().await.unwrap().status() }
    };
    assert_eq!(
        login(&[("origin", "https://evil.example")]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        login(&[("sec-fetch-site", "cross-site")]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(login(&[]).await, StatusCode::OK);
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

#[tokio::test]
async fn repeated_failures_are_throttled_before_any_hashing_and_no_address_is_kept() {
    let t = spawn_app().await;
    let anon = t.client();
    let login = |email: &'static str, password: &'static str| {
        let anon = anon.clone();
        async move {
            let r = anon.post_login(email, password).await;
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
                retry,
            )
        }
    };
    // one account: five failures are answered, then it is locked out — even for the right
    // password — for 1 s, then longer
    for _ in 0..5 {
        let (s, code, _) = login(ADMIN_EMAIL, "wrong password").await;
        assert_eq!(
            (s, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_credentials")
        );
    }
    let (s, code, retry) = login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        (s, code.as_str(), retry.as_deref()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some("1"))
    );
    t.clock.advance(time::Duration::seconds(1));
    assert_eq!(
        login(ADMIN_EMAIL, "wrong again").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _, retry) = login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        (s, retry.as_deref()),
        (StatusCode::TOO_MANY_REQUESTS, Some("2"))
    );
    t.clock.advance(time::Duration::seconds(2));
    assert_eq!(login(ADMIN_EMAIL, ADMIN_PASSWORD).await.0, StatusCode::OK);
    // the account starts over after a success
    assert_eq!(
        login(ADMIN_EMAIL, "wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(ADMIN_EMAIL, ADMIN_PASSWORD).await.0, StatusCode::OK);

    // one client guessing many accounts is locked out for all of them (after 20 failures by
    // default; it has 7 already)
    const UNKNOWN: [&str; 13] = [
        "u0@x.y", "u1@x.y", "u2@x.y", "u3@x.y", "u4@x.y", "u5@x.y", "u6@x.y", "u7@x.y", "u8@x.y",
        "u9@x.y", "u10@x.y", "u11@x.y", "u12@x.y",
    ];
    for email in UNKNOWN {
        assert_eq!(
            login(email, "guess").await.0,
            StatusCode::UNAUTHORIZED,
            "{email}"
        );
    }
    let (s, code, retry) = login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(retry.is_some());

    // no raw client address anywhere under the data dir
    t.app.store.flush().await.unwrap();
    for f in files_under(&t.dir.path().join("data")) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"127.0.0.1"),
            "{} holds the client address",
            f.display()
        );
    }
}

#[tokio::test]
async fn a_session_cannot_guess_the_password_faster_than_the_sign_in_page() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let body = serde_json::json!({"current_password": "guess", "new_password": "a new passphrase"});
    for _ in 0..5 {
        let r = c
            .post("/api/v1/me/password")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let r = c
        .post("/api/v1/me/password")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    let r = c
        .delete("/api/v1/me")
        .json(&serde_json::json!({ "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the same lock");
    assert_eq!(
        c.json("/api/v1/me").await.0,
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn private_answers_are_never_cached_and_page_files_revalidate() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let img = c.upload(noisy_png(16, 16, 3)).await;
    let id = img["id"].as_str().unwrap();
    for path in [
        "/api/v1/me".to_string(),
        "/api/v1/images".to_string(),
        format!("/api/v1/images/{id}"),
        format!("/api/v1/images/{id}/original"),
        "/api/v1/me/ledger".to_string(),
        "/api/v1/images/00000000-0000-0000-0000-000000000000".to_string(),
    ] {
        let r = c.get(&path).send().await.unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    let r = t.client().get("/").send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-cache");
}

#[tokio::test]
async fn the_cookie_is_secure_behind_a_trusted_tls_proxy_only() {
    let login = |t: &TestApp, proto: Option<&'static str>| {
        let mut r = t
            .client()
            .bare(Method::POST, "/api/v1/auth/login")
            .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}));
        if let Some(p) = proto {
            r = r.header("x-forwarded-proto", p);
        }
        async move {
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.headers()["set-cookie"].to_str().unwrap().to_string()
        }
    };
    // not a trusted proxy: X-Forwarded-Proto is anyone's to send, and ignored
    let t = spawn_app().await;
    let cookie = login(&t, Some("https")).await;
    assert!(
        cookie.starts_with("il_session=") && !cookie.contains("Secure"),
        "{cookie}"
    );

    let t = spawn_app_with(&[(
        "IMAGE_LAYERED__SERVER__TRUSTED_PROXIES",
        "10.9.8.7, 127.0.0.1",
    )])
    .await;
    let cookie = login(&t, Some("https")).await;
    assert!(cookie.starts_with("__Host-il_session="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    // the proxy keeps saying https, and the cookie it relays signs the member in
    let pair = cookie.split(';').next().unwrap();
    let r = t
        .client()
        .bare(Method::GET, "/api/v1/me")
        .header("cookie", pair)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = login(&t, Some("http")).await;
    assert!(
        cookie.starts_with("il_session=") && !cookie.contains("Secure"),
        "{cookie}"
    );
}
