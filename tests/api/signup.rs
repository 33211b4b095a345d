//! Joining and getting back in, black-box: the age gate stores nothing (P14), sign-up by
//! invite or openly with a verification mail, password reset by mail (the same answer for
//! unknown emails; single-use, expiring links; every session ends), and the outbox's
//! delivery both as spooled `.eml` files (0600) and over a real SMTP conversation.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

const OPEN: &[(&str, &str)] = &[("IMAGE_LAYERED__ACCOUNTS__REGISTRATION", "open")];

#[tokio::test]
async fn an_underage_sign_up_is_refused_and_leaves_no_trace() {
    let t = spawn_app_with(OPEN).await;
    let anon = t.client();
    let entries_before = t.app.audit.entries(0, 1000).unwrap().len();
    for body in [
        json!({"email": "kid@example.com", "password": "a long password", "name": "Kid"}),
        json!({"email": "kid@example.com", "password": "a long password", "name": "Kid",
               "age_confirmed": false}),
    ] {
        let (s, e) = anon.post_json("/api/v1/auth/register", body).await;
        assert_eq!(
            (s, &e["error"]["code"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &json!("age_required"))
        );
        assert!(
            e["error"]["message"].as_str().unwrap().contains("13"),
            "{e}"
        );
    }
    t.app.store.flush().await.unwrap();
    assert!(t
        .app
        .store
        .user_by_email("kid@example.com")
        .unwrap()
        .is_none());
    assert_eq!(t.app.audit.entries(0, 1000).unwrap().len(), entries_before);
    assert!(t.app.outbox.list().unwrap().is_empty());
    let data = t.dir.path().join("data");
    assert_eq!(contains(&data, b"kid@example.com"), None);
    assert_eq!(contains(&data, b"kid@example"), None);
}

#[tokio::test]
async fn open_sign_up_verifies_the_address_by_a_single_use_link() {
    let t = spawn_app_with(OPEN).await;
    let anon = t.client();
    let (s, body) = anon
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "ann@example.com", "password": "ann's passphrase", "name": "Ann",
               "age_confirmed": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(
        (&body["email"], &body["verified"]),
        (&json!("ann@example.com"), &json!(false))
    );
    // the same address again is a conflict
    let (s, _) = anon
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "ANN@example.com", "password": "another passphrase", "name": "A",
               "age_confirmed": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (path, mail) = t.mail(0).await;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    assert!(mail.contains("To: ann@example.com"), "{mail}");
    assert!(
        mail.contains("Subject: Confirm your email address"),
        "{mail}"
    );
    let token = token_in(&mail);
    assert!(
        mail.contains("http://127.0.0.1:8080/verify?token="),
        "{mail}"
    );
    // the link opens the studio page (which posts the token)
    for page in [format!("/verify?token={token}"), "/reset?token=x".into()] {
        let r = anon.get(&page).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{page}");
        assert!(r.text().await.unwrap().contains("<html"), "{page}");
    }
    // delivered mail leaves the store (just after the file lands): no copy of the link stays
    for _ in 0..100 {
        if t.app.outbox.list().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(t.app.outbox.list().unwrap().is_empty());

    let ann = anon.login("ann@example.com", "ann's passphrase").await;
    let (_, me) = ann.json("/api/v1/me").await;
    assert_eq!(
        (&me["verified"], &me["plan"]),
        (&json!(false), &json!("free"))
    );
    let (s, v) = anon
        .post_json("/api/v1/auth/verify", json!({ "token": token }))
        .await;
    assert_eq!((s, &v["verified"]), (StatusCode::OK, &json!(true)), "{v}");
    assert_eq!(ann.json("/api/v1/me").await.1["verified"], true);
    for bad in [token.as_str(), "made-up"] {
        let (s, e) = anon
            .post_json("/api/v1/auth/verify", json!({ "token": bad }))
            .await;
        assert_eq!(
            (s, &e["error"]["code"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_token"))
        );
    }
}

#[tokio::test]
async fn invites_gate_sign_up_by_default_and_closed_means_closed() {
    let t = spawn_app().await;
    let anon = t.client();
    let signup = |invite: Option<&str>| {
        json!({"email": "inv@example.com", "password": "invited passphrase", "name": "Inv",
               "age_confirmed": true, "invite": invite})
    };
    for invite in [None, Some("not-an-invite")] {
        let (s, e) = anon
            .post_json("/api/v1/auth/register", signup(invite))
            .await;
        assert_eq!(
            (s, &e["error"]["code"]),
            (StatusCode::FORBIDDEN, &json!("invite_required"))
        );
    }
    // members cannot make invites: the route is not there for them
    let member = t
        .member("m@example.com", image_layered::store::Plan::Free)
        .await;
    let (s, _) = member
        .post_json("/api/v1/admin/invites", json!({"plan": "pro"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let admin = t.admin().await;
    let (s, inv) = admin
        .post_json(
            "/api/v1/admin/invites",
            json!({"email": "inv@example.com", "plan": "pro"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    let token = inv["token"].as_str().unwrap();
    // a sign-up that fails for another reason does not use the invite up
    let (s, _) = anon
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "inv@example.com", "password": "short", "name": "Inv",
               "age_confirmed": true, "invite": token}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, body) = anon
        .post_json("/api/v1/auth/register", signup(Some(token)))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let me = anon
        .login("inv@example.com", "invited passphrase")
        .await
        .json("/api/v1/me")
        .await
        .1;
    assert_eq!(me["plan"], "pro", "the invite's plan");
    // an invite works once
    let (s, _) = anon
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "second@example.com", "password": "invited passphrase", "name": "S",
               "age_confirmed": true, "invite": token}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(t
        .app
        .audit
        .entries(0, 100)
        .unwrap()
        .iter()
        .any(|e| e.action == "invite.create"));

    let closed = spawn_app_with(&[("IMAGE_LAYERED__ACCOUNTS__REGISTRATION", "closed")]).await;
    let (s, e) = closed
        .client()
        .post_json("/api/v1/auth/register", signup(None))
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("registration_closed"))
    );
}

#[tokio::test]
async fn a_password_reset_by_mail_ends_every_session_and_its_link_works_once() {
    let t = spawn_app().await;
    let anon = t.client();
    let before = t.admin().await;
    // the same answer for an address without an account, and no mail
    for email in ["nobody@example.com", ADMIN_EMAIL] {
        let (s, _) = anon
            .post_json("/api/v1/auth/password-reset", json!({ "email": email }))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{email}");
    }
    let (_, mail) = t.mail(0).await;
    assert!(mail.contains(&format!("To: {ADMIN_EMAIL}")), "{mail}");
    assert!(mail.contains("/reset?token="), "{mail}");
    let token = token_in(&mail);
    const NEW: &str = "reset to this passphrase";
    let (s, e) = anon
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token, "password": "short"}),
        )
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_password"))
    );
    let (s, _) = anon
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token, "password": NEW}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(before.json("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anon.post_login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    anon.login(ADMIN_EMAIL, NEW).await;
    let (s, _) = anon
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token, "password": "yet another one"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a link works once");

    // a link expires after accounts.token_hours (24)
    anon.post_json(
        "/api/v1/auth/password-reset",
        json!({ "email": ADMIN_EMAIL }),
    )
    .await;
    let (_, mail) = t.mail(1).await;
    t.advance_hours(25);
    let (s, e) = anon
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token_in(&mail), "password": "too late passphrase"}),
        )
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_token"))
    );
}

/// A minimal SMTP server on loopback: accepts one message and returns (MAIL FROM, RCPT TO,
/// DATA).
async fn smtp_server() -> (u16, tokio::task::JoinHandle<(String, String, String)>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 test ESMTP\r\n").await.unwrap();
        let (mut from, mut to, mut data) = (String::new(), String::new(), String::new());
        while let Some(line) = lines.next_line().await.unwrap() {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250-test\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                from = line[10..].trim().to_string();
                b"250 ok\r\n"
            } else if upper.starts_with("RCPT TO:") {
                to = line[8..].trim().to_string();
                b"250 ok\r\n"
            } else if upper == "DATA" {
                write.write_all(b"354 go ahead\r\n").await.unwrap();
                while let Some(l) = lines.next_line().await.unwrap() {
                    if l == "." {
                        break;
                    }
                    data.push_str(&l);
                    data.push('\n');
                }
                b"250 queued\r\n"
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                b"250 ok\r\n"
            };
            write.write_all(reply).await.unwrap();
        }
        (from, to, data)
    });
    (port, task)
}

#[tokio::test]
async fn the_outbox_delivers_over_smtp() {
    let (port, server) = smtp_server().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let t = spawn_app_with(&[
        ("IMAGE_LAYERED__MAIL__SMTP_URL", url.as_str()),
        ("IMAGE_LAYERED__MAIL__FROM", "Studio <studio@example.com>"),
    ])
    .await;
    let (s, _) = t
        .client()
        .post_json(
            "/api/v1/auth/password-reset",
            json!({ "email": ADMIN_EMAIL }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (from, to, data) = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("an SMTP conversation within 20 s")
        .unwrap();
    assert_eq!(from, "<studio@example.com>");
    assert_eq!(to, format!("<{ADMIN_EMAIL}>"));
    assert!(
        data.contains("Subject: Reset your image-layered password"),
        "{data}"
    );
    assert!(token_in(&data).len() >= 40, "{data}");
    // delivered: nothing waits, and nothing was spooled
    for _ in 0..100 {
        if t.app.outbox.list().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(t.app.outbox.list().unwrap().is_empty());
    assert!(!t.dir.path().join("data/outbox").exists());
}
