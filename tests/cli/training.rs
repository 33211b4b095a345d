//! `training export` (P9): only the originals of members whose training consent is on when
//! it runs are written, byte for byte; a member who turned it off again is left out.

use reqwest::StatusCode;

use crate::support::*;

fn add_member(env: &Env, email: &str) -> String {
    env.run_with(
        &[
            "user",
            "add",
            "--email",
            email,
            "--name",
            "M",
            "--password-stdin",
        ],
        &[],
        Some("member passphrase\n"),
    )
    .ok()
    .trim()
    .to_string()
}

async fn consent(c: &Client, training: bool) {
    let r = c
        .request(reqwest::Method::PUT, "/api/v1/me/consents")
        .json(&serde_json::json!({ "training": training }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn only_consenting_members_images_are_exported() {
    let env = Env::new();
    Server::start(&env).await.stop().await;
    let yes = add_member(&env, "yes@example.com");
    let no = add_member(&env, "no@example.com");
    let changed_mind = add_member(&env, "later@example.com");
    let mut server = Server::start(&env).await;
    let mut originals = Vec::new();
    for (email, seed, training) in [
        ("yes@example.com", 1, Some(true)),
        ("no@example.com", 2, None),
        ("later@example.com", 3, Some(false)),
    ] {
        let c = server.client.login(email, "member passphrase").await;
        for i in 0..2 {
            let png = noisy_png(32, 24, seed * 10 + i);
            let meta = c.upload(png.clone()).await;
            originals.push((email, meta["id"].as_str().unwrap().to_string(), png));
        }
        if training == Some(false) {
            consent(&c, true).await;
        }
        if let Some(t) = training {
            consent(&c, t).await;
        }
    }
    server.stop().await;

    let out = env.root.path().join("training");
    let run = env.run(&["training", "export", "--out", out.to_str().unwrap()]);
    assert!(
        run.ok().contains("2 images of 1 consenting members"),
        "{}",
        run.describe()
    );
    let files = files_under(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    for (email, id, png) in &originals {
        let path = out
            .join(if *email == "yes@example.com" {
                &yes
            } else {
                &no
            })
            .join(format!("{id}.png"));
        if *email == "yes@example.com" {
            assert_eq!(&std::fs::read(&path).unwrap(), png, "{}", path.display());
        } else {
            assert!(!path.exists(), "{}", path.display());
        }
    }
    assert!(!out.join(&no).exists() && !out.join(&changed_mind).exists());
    env.run(&["audit", "verify"]).ok();
}
