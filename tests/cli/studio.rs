//! The studio page end to end, in a real headless Chromium driven by Selenium
//! (`tests/e2e_studio.py`) against the real binary with the real models. A new member signs
//! up on the page, opens the links of the mails the server spools into `<data_dir>/outbox/`
//! (verification, password reset), accepts a privacy policy the admin publishes, turns a
//! consent on, edits the profile, exports their data, changes the password and deletes the
//! account; then the admin signs in, uploads, decomposes (watching progress), hides a layer,
//! undoes and redoes, exports a PSD and reads it back with psd-tools. On failure the script
//! leaves a screenshot, the browser console and the page's HTML under
//! `target/tmp/e2e-studio/`; a run that passes leaves screenshots of the sign-up, account and
//! studio screens there.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
#[ignore = "needs Chromium, chromedriver, selenium and the real models (scripts/test installs them)"]
async fn studio_page_in_chromium_signs_in_decomposes_hides_a_layer_and_exports_psd() {
    let env = Env::new();
    let models = test_models();
    // where the links in mails point (the server listens on a port of its own choosing; the
    // script opens each link's path and query on the server it drives)
    let mail_base = "http://studio.example";
    let opts = ServerOpts {
        env: vec![
            (
                "IMAGE_LAYERED__MODELS__DIR".into(),
                models.display().to_string(),
            ),
            (
                "IMAGE_LAYERED__ACCOUNTS__REGISTRATION".into(),
                "open".into(),
            ),
            ("IMAGE_LAYERED__MAIL__BASE_URL".into(), mail_base.into()),
        ],
        ..ServerOpts::default()
    };
    let server = Server::start_with(&env, opts).await;
    let started = Instant::now();
    loop {
        let r = server.client.get("/readyz").send().await.unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "models never loaded: {}",
            server.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let admin_key = server.admin_key().await;
    let outbox = server.data.join("outbox");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-studio");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = Command::new("python3");
    cmd.args([
        "tests/e2e_studio.py",
        "--url",
        &server.client.base,
        "--email",
        ADMIN_EMAIL,
        "--password",
        ADMIN_PASSWORD,
        "--image",
        "tests/fixtures/eval/public-1-012/composite.png",
        "--out",
        out.to_str().unwrap(),
        "--outbox",
        outbox.to_str().unwrap(),
        "--admin-key",
        &admin_key,
        "--mail-base",
        mail_base,
    ]);
    let run = tokio::task::spawn_blocking(move || run_command(cmd, None, Duration::from_secs(400)))
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
}
