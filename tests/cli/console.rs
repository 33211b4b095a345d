//! The admin console (`/admin`) end to end, in a real headless Chromium with JavaScript off,
//! driven by Selenium (`tests/e2e_console.py`) against the real binary (no models needed). A
//! member is added at the command line; over plain HTTP, signed in, they get 404 on every
//! console page and form, and an anonymous visitor gets no console page. Then the admin signs
//! in on the console, finds the member, grants 25 credits and moves them to pro (each with a
//! reason), reads both in the audit log with the hash chain intact, visits every other page,
//! makes an invite, and signs out; the admin JSON API then shows the new balance and plan. On
//! failure the script leaves a screenshot, the browser console and the page's HTML under
//! `target/tmp/e2e-console/`; a run that passes leaves `console-members.png` and
//! `console-audit.png` there.

use std::process::Command;
use std::time::Duration;

use reqwest::header::{LOCATION, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;

use crate::support::*;

const MEMBER_EMAIL: &str = "dana.member@example.com";
const MEMBER_PASSWORD: &str = "dana's own passphrase 42";

/// The `name=value` pair of the first `Set-Cookie` of a response.
fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get(SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .expect("ASCII cookie")
        .split(';')
        .next()
        .expect("cookie pair")
        .to_string()
}

/// The member as the admin JSON API shows them: (plan, credits).
async fn member_via_api(admin: &Client, id: &str) -> (String, i64) {
    let (status, v) = admin.json("/api/v1/admin/users?q=dana.member").await;
    assert_eq!(status, StatusCode::OK, "GET /api/v1/admin/users: {v}");
    let users = v["users"].as_array().expect("users array");
    let m = users
        .iter()
        .find(|u| u["id"] == id)
        .unwrap_or_else(|| panic!("member {id} not in {v}"));
    (
        m["plan"].as_str().expect("plan").to_string(),
        m["credits"].as_i64().expect("credits"),
    )
}

#[tokio::test]
#[ignore = "needs Chromium, chromedriver and selenium (scripts/test installs them)"]
async fn admin_console_in_chromium_without_javascript_grants_credits_changes_a_plan_and_audits() {
    let env = Env::new();
    // The first start creates the admin; then the command line adds the member while no
    // server holds the store.
    Server::start(&env).await.stop().await;
    let out = env.run_with(
        &[
            "user",
            "add",
            "--email",
            MEMBER_EMAIL,
            "--name",
            "Dana Member",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{MEMBER_PASSWORD}\n")),
    );
    let member_id = out.ok().trim().to_string();
    assert_eq!(member_id.len(), 36, "the new id: {}", out.describe());

    let server = Server::start_with(&env, ServerOpts::default()).await;
    // Redirects are answers here, not something to follow.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("reqwest client");
    let anonymous = Client::new(http, server.client.base.clone());

    // A signed-in member sees no console at all: every page and form is 404.
    let member = anonymous.login(MEMBER_EMAIL, MEMBER_PASSWORD).await;
    let member_page = format!("/admin/members/{member_id}");
    for path in [
        "/admin",
        "/admin/members",
        "/admin/audit",
        "/admin/usage",
        member_page.as_str(),
    ] {
        let r = member.get(path).send().await.expect("GET as the member");
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "a member's GET {path} (location {:?})",
            r.headers().get(LOCATION)
        );
    }
    let credits = format!("/admin/members/{member_id}/credits");
    let r = member
        .post(&credits)
        .form(&[
            ("csrf", "guess"),
            ("credits_delta", "1000"),
            ("reason", "self service"),
        ])
        .send()
        .await
        .expect("POST as the member");
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "a member's POST {credits} (location {:?})",
        r.headers().get(LOCATION)
    );

    // An anonymous visitor: /admin sends them to the sign-in page; nothing else is served.
    let r = anonymous.get("/admin").send().await.expect("GET /admin");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "anonymous GET /admin");
    let to = r.headers().get(LOCATION).map(|v| v.to_str().unwrap_or(""));
    assert!(
        to.is_some_and(|l| l.ends_with("/admin/login")),
        "anonymous GET /admin redirects to {to:?}"
    );
    let r = anonymous
        .get("/admin/members")
        .send()
        .await
        .expect("GET /admin/members");
    assert_ne!(r.status(), StatusCode::OK, "anonymous GET /admin/members");
    let r = anonymous
        .get("/admin/login")
        .send()
        .await
        .expect("GET /admin/login");
    assert_eq!(r.status(), StatusCode::OK, "anonymous GET /admin/login");

    let admin = server.with_key(&server.admin_key().await);
    let (plan_before, credits_before) = member_via_api(&admin, &member_id).await;
    assert_ne!(plan_before, "pro", "the member must not start on pro");

    // The admin's console session over plain HTTP: a form POST with a forged csrf token is
    // refused and changes nothing (the balance is checked after the browser's run).
    let r = anonymous
        .post("/admin/login")
        .header(ORIGIN, &server.client.base)
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("POST /admin/login");
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the admin's POST /admin/login"
    );
    let to = r.headers().get(LOCATION).map(|v| v.to_str().unwrap_or(""));
    assert!(
        to.is_some_and(|l| l.ends_with("/admin")),
        "signing in redirects to {to:?}"
    );
    let console = anonymous.with_auth(Auth::Cookie(session_cookie(&r)));
    let r = console.get("/admin").send().await.expect("GET /admin");
    assert_eq!(r.status(), StatusCode::OK, "the admin's GET /admin");
    let r = console
        .post(&credits)
        .form(&[
            ("csrf", "forged"),
            ("credits_delta", "1000"),
            ("reason", "forged"),
        ])
        .send()
        .await
        .expect("POST with a forged csrf token");
    assert!(
        r.status().is_client_error(),
        "an admin's POST {credits} with a forged csrf token: {} (location {:?})",
        r.status(),
        r.headers().get(LOCATION)
    );

    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-console");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = Command::new("python3");
    cmd.args([
        "tests/e2e_console.py",
        "--url",
        &server.client.base,
        "--email",
        ADMIN_EMAIL,
        "--password",
        ADMIN_PASSWORD,
        "--member-email",
        MEMBER_EMAIL,
        "--out",
        out.to_str().unwrap(),
    ]);
    let run = tokio::task::spawn_blocking(move || run_command(cmd, None, Duration::from_secs(240)))
        .await
        .unwrap();
    eprintln!("{}", run.stdout);
    assert_eq!(
        run.code,
        Some(0),
        "the browser test failed (artifacts in {}):\n{}\nserver log:\n{}",
        out.display(),
        run.describe(),
        server.log_tail(30)
    );
    for shot in ["console-members.png", "console-audit.png"] {
        assert!(out.join(shot).is_file(), "no {shot} in {}", out.display());
    }

    // What the browser did is in the store: 25 more credits (and not the forged 1000s), pro.
    let (plan, credits) = member_via_api(&admin, &member_id).await;
    assert_eq!(plan, "pro", "the member's plan after the console run");
    assert_eq!(
        credits,
        credits_before + 25,
        "the member's balance after the console run"
    );
}
