//! `image-layered user add|list|delete` against a real data dir, checked over HTTP.

use reqwest::StatusCode;

use crate::support::*;

const EMAIL: &str = "a@b.c";
const PASSWORD: &str = "pro member passphrase ünïcode";

fn list_line<'a>(stdout: &'a str, email: &str) -> Option<&'a str> {
    stdout.lines().find(|l| l.contains(email))
}

#[tokio::test]
async fn user_commands() {
    let env = Env::new();
    // The first start creates the admin; then the shell takes over the store.
    Server::start(&env).await.stop().await;

    let out = env.run_with(
        &[
            "user",
            "add",
            "--email",
            EMAIL,
            "--name",
            "A",
            "--plan",
            "pro",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    let id = out.ok().trim().to_string();
    assert_eq!(
        id.len(),
        36,
        "stdout should be the new id: {}",
        out.describe()
    );
    assert!(
        !out.stderr.contains(PASSWORD) && !out.stdout.contains(PASSWORD),
        "the password was echoed: {}",
        out.describe()
    );

    let out = env.run(&["user", "list"]);
    let stdout = out.ok();
    let line = list_line(stdout, EMAIL).unwrap_or_else(|| panic!("{}", out.describe()));
    assert!(line.contains(&id), "{line}");
    assert!(
        line.split_whitespace().any(|w| w == "pro"),
        "plan pro: {line}"
    );
    assert!(line.split_whitespace().any(|w| w == "member"), "{line}");
    assert!(list_line(stdout, ADMIN_EMAIL).is_some(), "{stdout}");

    // set-plan: changes the plan; a bad plan or id is a usage error
    let out = env.run(&["user", "set-plan", &id, "studio"]);
    assert!(out.ok().contains("pro -> studio"), "{}", out.describe());
    let out = env.run(&["user", "list"]);
    let line = list_line(out.ok(), EMAIL).unwrap().to_string();
    assert!(line.split_whitespace().any(|w| w == "studio"), "{line}");
    for args in [
        ["user", "set-plan", id.as_str(), "gold"],
        ["user", "set-plan", "nope", "pro"],
    ] {
        let out = env.run(&args);
        assert_eq!(out.code, Some(2), "{}", out.describe());
    }

    // Bad input is exit 2 with one clear line, and changes nothing.
    for (args, why) in [
        (
            vec![
                "user",
                "add",
                "--email",
                "not-an-email",
                "--name",
                "B",
                "--password-stdin",
            ],
            "bad email",
        ),
        (
            vec![
                "user",
                "add",
                "--email",
                EMAIL,
                "--name",
                "Again",
                "--password-stdin",
            ],
            "duplicate email",
        ),
        (
            vec![
                "user",
                "add",
                "--email",
                "A@B.C",
                "--name",
                "Again",
                "--password-stdin",
            ],
            "duplicate email in other case",
        ),
        (
            vec![
                "user",
                "add",
                "--email",
                "c@d.e",
                "--name",
                "C",
                "--password-stdin",
            ],
            "short password",
        ),
        (
            vec![
                "user", "add", "--email", "d@e.f", "--name", "D", "--plan", "gold",
            ],
            "bad plan",
        ),
        (vec!["user", "delete", "not-a-uuid"], "bad id"),
        (
            vec!["user", "delete", "01890000-0000-7000-8000-000000000000"],
            "unknown id",
        ),
    ] {
        let stdin = if why == "short password" {
            "short\n"
        } else {
            "another good password\n"
        };
        let out = env.run_with(&args, &[], Some(stdin));
        assert_eq!(out.code, Some(2), "{why}: {}", out.describe());
        assert!(!out.stderr.trim().is_empty(), "{why}: no message");
    }
    let out = env.run(&["user", "list"]);
    let stdout = out.ok();
    assert_eq!(
        stdout.lines().filter(|l| l.contains('@')).count(),
        2,
        "only the admin and {EMAIL}: {stdout}"
    );

    // Without --password-stdin a password is generated and shown once, on stderr.
    let out = env.run(&["user", "add", "--email", "g@h.i", "--name", "G"]);
    let generated_id = out.ok().trim().to_string();
    assert_eq!(generated_id.len(), 36, "{}", out.describe());
    let generated = out
        .stderr
        .lines()
        .find_map(|l| l.split_once("password for g@h.i: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no generated password: {}", out.describe()))
        .to_string();
    assert!(
        !out.stdout.contains(&generated),
        "the password went to stdout: {}",
        out.describe()
    );

    // The new members can sign in and store an image.
    let mut server = Server::start(&env).await;
    let resp = server.client.post_login("g@h.i", &generated).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "login with the generated password"
    );
    let resp = server.client.post_login(EMAIL, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let me: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(me["id"], id.as_str());
    assert_eq!(me["plan"], "studio", "as set-plan left it");
    assert_eq!(me["name"], "A");
    let key = server.api_key_for(EMAIL, PASSWORD).await;
    server.with_key(&key).upload(noisy_png(40, 30, 41)).await;
    let member_blobs = env.blobs().join(simple_id(&id));
    assert!(member_blobs.is_dir(), "{member_blobs:?}");
    server.stop().await;

    let out = env.run(&["user", "delete", &id]);
    assert!(out.ok().contains(&id), "{}", out.describe());
    assert!(!member_blobs.exists(), "the member's blob dir survived");
    let out = env.run(&["user", "list"]);
    assert!(list_line(out.ok(), EMAIL).is_none(), "{}", out.describe());

    let server = Server::start(&env).await;
    let resp = server.client.post_login(EMAIL, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = server.with_key(&key).json("/api/v1/me").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the deleted member's API key"
    );
    let resp = server.client.post_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK, "the admin is untouched");
}

#[tokio::test]
async fn set_password_replaces_a_forgotten_one_and_ends_every_session() {
    let env = Env::new();
    Server::start(&env).await.stop().await;
    let out = env.run_with(
        &[
            "user",
            "add",
            "--email",
            EMAIL,
            "--name",
            "A",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    let id = out.ok().trim().to_string();
    let mut server = Server::start(&env).await;
    let signed_in = server.client.login(EMAIL, PASSWORD).await;
    assert_eq!(signed_in.json("/api/v1/me").await.0, StatusCode::OK);
    server.stop().await;

    const NEW: &str = "a password set by the operator";
    for (args, stdin, why) in [
        (
            vec!["user", "set-password", &id],
            "x\n",
            "no --password-stdin",
        ),
        (
            vec!["user", "set-password", &id, "--password-stdin"],
            "short\n",
            "short password",
        ),
        (
            vec![
                "user",
                "set-password",
                "01890000-0000-7000-8000-000000000000",
                "--password-stdin",
            ],
            "another good password\n",
            "unknown id",
        ),
    ] {
        let out = env.run_with(&args, &[], Some(stdin));
        assert_eq!(out.code, Some(2), "{why}: {}", out.describe());
    }
    let out = env.run_with(
        &["user", "set-password", &id, "--password-stdin"],
        &[],
        Some(&format!("{NEW}\n")),
    );
    assert!(out.ok().contains(&id), "{}", out.describe());
    assert!(!out.stdout.contains(NEW) && !out.stderr.contains(NEW));

    let server = Server::start(&env).await;
    let old_session = server.client.with_auth(signed_in.auth.clone());
    assert_eq!(
        old_session.json("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED,
        "the session from before the change"
    );
    assert_eq!(
        server.client.post_login(EMAIL, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    server.client.login(EMAIL, NEW).await;
}

#[tokio::test]
async fn a_generated_admin_password_goes_to_a_private_file_and_must_be_changed_first() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let opts = ServerOpts {
        env: vec![(
            "IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD".into(),
            String::new(),
        )],
        ..ServerOpts::default()
    };
    let mut server = Server::start_with(&env, opts).await;
    let file = env.data.join("admin-password.txt");
    let stdout = server.stdout();
    assert!(
        stdout.contains(&file.display().to_string()),
        "the path is printed: {stdout}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(password.len() >= 20);
    assert!(!stdout.contains(&password), "never on the terminal");
    assert!(!server.stderr().contains(&password), "never in the log");

    let admin = server.client.login(ADMIN_EMAIL, &password).await;
    let (s, me) = admin.json("/api/v1/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["must_change_password"], true);
    // nothing else until a new password is set
    for path in ["/api/v1/images", "/api/v1/jobs", "/api/v1/me/consents"] {
        let (s, body) = admin.json(path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(body["error"]["code"], "password_change_required");
    }
    let (s, body) = admin
        .post_json(
            "/api/v1/me/password",
            serde_json::json!({"current_password": password, "new_password": "my own admin passphrase"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert!(!file.exists(), "the one-time password file is removed");
    let (s, _) = admin.json("/api/v1/images").await;
    assert_eq!(s, StatusCode::OK);
    let (_, me) = admin.json("/api/v1/me").await;
    assert_eq!(me["must_change_password"], false);

    // a restart creates no second admin and no new file
    server.stop().await;
    let mut server = server.restart(&env).await;
    assert!(!file.exists());
    server
        .client
        .login(ADMIN_EMAIL, "my own admin passphrase")
        .await;
    server.stop().await;
}
