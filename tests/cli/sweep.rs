//! `image-layered sweep`: dry runs and `--as-of` previews, a real sweep, and what remains.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn sweep_cli_dry_run_and_as_of() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let img = server.with_key(&key).upload(noisy_png(120, 90, 31)).await;
    let id = img["id"].as_str().unwrap().to_string();
    let job = img["thumbnail_job_id"].as_str().unwrap().to_string();
    let j = server
        .with_key(&key)
        .wait_job_until(&job, Duration::from_secs(30), is_final)
        .await;
    assert_eq!(j["state"], "succeeded", "{j}");
    server.stop().await;

    let blobs_before = files_under(&env.blobs());
    assert_eq!(
        blobs_before.len(),
        2,
        "original + thumbnail on disk: {blobs_before:?}"
    );

    // Temporary uploads live 48 h by default.
    let at47 = rfc3339_in_hours(47);
    let out = env.run(&["sweep", "--dry-run", "--as-of", &at47]);
    assert!(out.ok().contains("0 objects due"), "{}", out.describe());
    assert!(!out.stdout.contains(&id), "{}", out.describe());

    let at49 = rfc3339_in_hours(49);
    let out = env.run(&["sweep", "--dry-run", "--as-of", &at49]);
    let stdout = out.ok();
    assert!(stdout.contains("1 objects due"), "{}", out.describe());
    assert!(
        stdout.lines().any(|l| l.contains(&id) && l.contains("due")),
        "the dry run should list the image: {}",
        out.describe()
    );
    assert_eq!(
        files_under(&env.blobs()),
        blobs_before,
        "a dry run removed files"
    );

    for bad in ["tomorrow", "2026-13-45T00:00:00Z", ""] {
        let out = env.run(&["sweep", "--dry-run", "--as-of", bad]);
        assert_eq!(out.code, Some(2), "--as-of {bad:?}: {}", out.describe());
        assert!(out.stderr.contains("--as-of"), "{}", out.describe());
    }

    let out = env.run(&["sweep", "--as-of", &at49]);
    let stdout = out.ok();
    let lines: Vec<&str> = stdout.lines().collect();
    let id_line = lines
        .iter()
        .position(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no line names {id}: {}", out.describe()));
    let total = lines
        .iter()
        .position(|l| l.contains("1 objects removed"))
        .unwrap_or_else(|| panic!("no total line: {}", out.describe()));
    assert!(id_line < total, "the total comes last: {}", out.describe());
    assert!(
        files_under(&env.blobs()).is_empty(),
        "the sweep left blob files: {:?}",
        files_under(&env.blobs())
    );

    // Nothing is due any more.
    let out = env.run(&["sweep", "--dry-run", "--as-of", &at49]);
    assert!(out.ok().contains("0 objects due"), "{}", out.describe());

    let server = Server::start(&env).await;
    let (status, _) = server
        .with_key(&key)
        .json(&format!("/api/v1/images/{id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .with_key(&key)
        .bytes(&format!("/api/v1/images/{id}/original"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(server.with_key(&key).images().await.is_empty());
    assert!(
        files_under(&env.blobs()).is_empty(),
        "{:?}",
        files_under(&env.blobs())
    );
}
