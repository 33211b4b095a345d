//! `outbox list`: mail that could not be delivered waits in the store with its attempts and
//! last error, and the operator sees it; nothing about it blocks the request that queued it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn undeliverable_mail_waits_and_is_listed() {
    let env = Env::new();
    let opts = ServerOpts {
        // nothing listens on port 1: every delivery fails
        env: vec![(
            "IMAGE_LAYERED__MAIL__SMTP_URL".into(),
            "smtp://127.0.0.1:1".into(),
        )],
        ..Default::default()
    };
    let mut server = Server::start_with(&env, opts).await;
    let started = Instant::now();
    let r = server
        .client
        .post("/api/v1/auth/password-reset")
        .json(&serde_json::json!({ "email": ADMIN_EMAIL }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the request waited for delivery"
    );
    // the sender tries at once; give it a moment, then stop the server
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.stop().await;
    let out = env.run(&["outbox", "list"]);
    let stdout = out.ok();
    let line = stdout
        .lines()
        .find(|l| l.contains("password_reset"))
        .unwrap_or_else(|| panic!("{}", out.describe()));
    assert!(
        line.contains("waiting") && line.contains(ADMIN_EMAIL),
        "{line}"
    );
    assert!(line.contains("SMTP"), "the last error: {line}");
    assert!(stdout.contains("1 messages"), "{stdout}");
}
