//! The admin console over plain HTTP (the browser test is `tests/cli/console.rs`): to members
//! and API keys every console path is the 404 of an unknown route; visitors without a session
//! are sent to the sign-in form; a form change needs the session's CSRF token and the
//! studio's own origin, is applied once and lands in the audit log; every page is HTML under
//! the strict CSP, with no script and not cached.

use image_layered::store::Plan;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::*;

/// The same client, not following redirects (the console answers forms with 303).
fn no_redirects(c: &Client) -> Client {
    Client {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        ..c.clone()
    }
}

fn member_id(t: &TestApp, email: &str) -> String {
    let u = t.app.store.user_by_email(email).unwrap().unwrap();
    u.id.to_string()
}

/// The CSRF token in a console page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_string()
}

async fn page(c: &Client, path: &str) -> (StatusCode, String) {
    let r = c.get(path).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn form(c: &Client, path: &str, origin: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    c.bare(Method::POST, path)
        .header(ORIGIN, origin)
        .form(fields)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn to_members_and_api_keys_the_console_does_not_exist() {
    let t = spawn_app().await;
    let m = no_redirects(&t.member("ann@example.com", Plan::Free).await);
    let id = member_id(&t, "ann@example.com");
    let (_, k) = m
        .post_json("/api/v1/keys", serde_json::json!({"name": "script"}))
        .await;
    let keyed = no_redirects(&t.client().with_key(k["key"].as_str().unwrap()));
    let paths = [
        (Method::GET, "/admin".to_string()),
        (Method::GET, "/admin/login".to_string()),
        (Method::GET, "/admin/members".to_string()),
        (Method::GET, format!("/admin/members/{id}")),
        (Method::GET, "/admin/invites".to_string()),
        (Method::GET, "/admin/usage".to_string()),
        (Method::GET, "/admin/jobs".to_string()),
        (Method::GET, "/admin/retention".to_string()),
        (Method::GET, "/admin/audit".to_string()),
        (Method::GET, "/admin/policies".to_string()),
        (Method::GET, "/admin/password".to_string()),
        (Method::POST, format!("/admin/members/{id}/credits")),
        (Method::POST, format!("/admin/members/{id}/plan")),
        (Method::POST, "/admin/invites".to_string()),
        (Method::POST, "/admin/policies".to_string()),
        (Method::POST, "/admin/login".to_string()),
        (Method::POST, "/admin/logout".to_string()),
    ];
    for c in [&m, &keyed] {
        for (method, path) in &paths {
            let r = c
                .bare(method.clone(), path)
                .header(ORIGIN, &t.base)
                .form(&[
                    ("credits_delta", "100"),
                    ("reason", "x"),
                    ("plan", "studio"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "route_not_found", "{method} {path}");
        }
    }
    let me = m.json("/api/v1/me").await.1;
    assert_eq!(
        (me["plan"].as_str(), me["credits"].as_i64()),
        (Some("free"), Some(50))
    );

    // nobody signed in: only the sign-in form
    let anon = no_redirects(&t.client());
    let r = anon.get("/admin/members").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/admin/login");
    let (s, html) = page(&anon, "/admin/login").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(r#"<form id="login-form""#), "{html}");
    assert!(!html.contains("admin-nav"), "no console before signing in");
}

#[tokio::test]
async fn signing_in_with_the_form_admits_admins_only() {
    let t = spawn_app().await;
    t.member("bob@example.com", Plan::Free).await;
    let anon = no_redirects(&t.client());
    let login = |email: &'static str, password: &'static str| {
        let anon = anon.clone();
        let base = t.base.clone();
        async move {
            form(
                &anon,
                "/admin/login",
                &base,
                &[("email", email), ("password", password)],
            )
            .await
        }
    };
    let r = login(ADMIN_EMAIL, "wrong password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains(r#"class="error""#));

    let r = login("bob@example.com", "member password").await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a member's right password"
    );
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("not an admin"));

    let r = anon
        .bare(Method::POST, "/admin/login")
        .header(ORIGIN, "http://evil.example")
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a cross-site sign-in");

    let r = login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/admin");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let admin = anon.with_auth(Auth::Cookie(cookie));
    let (s, html) = page(&admin, "/admin").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(r#"id="admin-nav""#));

    // signing out ends the session
    let csrf = csrf_of(&html);
    let r = form(&admin, "/admin/logout", &t.base, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = admin.get("/admin").send().await.unwrap();
    assert_eq!(r.headers()[LOCATION], "/admin/login");
}

#[tokio::test]
async fn a_form_needs_the_csrf_token_and_the_origin_and_is_audited() {
    let t = spawn_app().await;
    t.member("cy@example.com", Plan::Free).await;
    let id = member_id(&t, "cy@example.com");
    let admin = no_redirects(&t.admin().await);
    let path = format!("/admin/members/{id}");
    let (s, html) = page(&admin, &path).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(r#"<dd id="member-credits">50</dd>"#),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let credits = format!("{path}/credits");
    let fields = |token: &str| {
        vec![
            ("csrf", token.to_string()),
            ("credits_delta", "25".to_string()),
            ("reason", "goodwill for the outage".to_string()),
        ]
    };
    let send = |origin: String, f: Vec<(&'static str, String)>| {
        let (admin, credits) = (admin.clone(), credits.clone());
        async move {
            admin
                .bare(Method::POST, &credits)
                .header(ORIGIN, origin)
                .form(&f)
                .send()
                .await
                .unwrap()
        }
    };
    // no token, a wrong token, another site: refused, nothing changes
    let r = send(t.base.clone(), fields("")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("csrf_failed"));
    let r = send(t.base.clone(), fields(&"0".repeat(64))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send("http://evil.example".into(), fields(&csrf)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "cross_origin_request");
    let r = admin
        .bare(Method::POST, &credits)
        .header(ORIGIN, &t.base)
        .header("sec-fetch-site", "cross-site")
        .form(&fields(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "the browser says cross-site"
    );
    assert_eq!(t.app.store.balance(id.parse().unwrap()).unwrap(), 50);

    // a bad amount is a page that says so
    let mut bad = fields(&csrf);
    bad[1].1 = "lots".into();
    let r = send(t.base.clone(), bad).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("not a whole number"));

    // the real thing, as a browser posts it under our no-referrer policy (`Origin: null`,
    // `Sec-Fetch-Site: same-origin`): applied once, shown, audited with the reason
    let r = admin
        .bare(Method::POST, &credits)
        .header(ORIGIN, "null")
        .header("sec-fetch-site", "same-origin")
        .form(&fields(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        format!("{path}?done=credits").as_str()
    );
    let (_, html) = page(&admin, &format!("{path}?done=credits")).await;
    assert!(html.contains(r#"<dd id="member-credits">75</dd>"#));
    assert!(html.contains(r#"id="notice""#));
    let r = form(
        &admin,
        &format!("{path}/plan"),
        &t.base,
        &[("csrf", &csrf), ("plan", "pro"), ("reason", "upgrade")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&admin, &path).await;
    assert!(html.contains(r#"<dd id="member-plan">pro</dd>"#));
    let (_, audit) = page(&admin, "/admin/audit").await;
    assert!(audit.contains("credits.adjust") && audit.contains("goodwill for the outage"));
    assert!(audit.contains("user.plan"));
    assert!(audit.contains("Hash chain intact"));
}

#[tokio::test]
async fn every_page_is_html_without_script_under_the_strict_csp_and_not_cached() {
    let t = spawn_app().await;
    t.member("dee@example.com", Plan::Pro).await;
    let id = member_id(&t, "dee@example.com");
    let admin = no_redirects(&t.admin().await);
    for (path, marker) in [
        ("/admin".to_string(), r#"id="overview""#),
        ("/admin/members?q=DEE".to_string(), "dee@example.com"),
        (format!("/admin/members/{id}"), r#"id="credits-form""#),
        ("/admin/invites".to_string(), r#"id="invite-form""#),
        ("/admin/usage".to_string(), r#"<svg id="jobs-chart""#),
        ("/admin/jobs".to_string(), r#"id="models""#),
        ("/admin/retention".to_string(), r#"id="next-sweep""#),
        ("/admin/audit".to_string(), r#"id="audit""#),
        ("/admin/policies".to_string(), r#"id="policy-form""#),
        ("/admin/password".to_string(), r#"id="password-form""#),
    ] {
        let r = admin.get(&path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        assert!(h[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        assert_eq!(h[CACHE_CONTROL], "no-store", "{path}");
        let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains(marker), "{path} lacks {marker}");
        assert!(
            !html.contains("<script") && !html.contains("style="),
            "{path}"
        );
    }
    let (_, html) = page(&admin, "/admin/members?q=nobody-matches").await;
    assert!(!html.contains("dee@example.com"));
    let (s, html) = page(
        &admin,
        "/admin/members/00000000-0000-0000-0000-000000000000",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        html.contains("admin-nav"),
        "an admin's 404 is a console page"
    );

    // an invite made here works for sign-up
    let (_, html) = page(&admin, "/admin/invites").await;
    let r = form(
        &admin,
        "/admin/invites",
        &t.base,
        &[("csrf", &csrf_of(&html)), ("plan", "pro")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let html = r.text().await.unwrap();
    let at = html.find("?invite=").unwrap() + 8;
    let token: String = html[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let (s, body) = t
        .client()
        .post_json(
            "/api/v1/auth/register",
            serde_json::json!({"email": "eve@example.com", "password": "a long password",
                "name": "Eve", "age_confirmed": true, "invite": token}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let eve = t
        .app
        .store
        .user_by_email("eve@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(eve.plan, Plan::Pro);
}

#[tokio::test]
async fn an_admin_with_a_one_time_password_must_replace_it_first() {
    let t = spawn_app().await;
    let mut u = t.app.store.user_by_email(ADMIN_EMAIL).unwrap().unwrap();
    u.must_change_password = true;
    t.app.store.put_user(&u).unwrap();
    let admin = no_redirects(&t.admin().await);
    for path in ["/admin", "/admin/members", "/admin/audit"] {
        let r = admin.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()[LOCATION], "/admin/password");
    }
    let (s, html) = page(&admin, "/admin/password").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("one-time password"));
    let csrf = csrf_of(&html);
    let change = |current: &'static str| {
        let (admin, base, csrf) = (admin.clone(), t.base.clone(), csrf.clone());
        async move {
            form(
                &admin,
                "/admin/password",
                &base,
                &[
                    ("csrf", csrf.as_str()),
                    ("current_password", current),
                    ("new_password", "a brand new passphrase"),
                ],
            )
            .await
        }
    };
    let r = change("not the password").await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.text().await.unwrap().contains(r#"class="error""#));
    let r = change(ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/admin?done=password");
    let (s, html) = page(&admin, "/admin?done=password").await;
    assert_eq!(s, StatusCode::OK, "this session stays signed in");
    assert!(html.contains("Password changed"));
}
