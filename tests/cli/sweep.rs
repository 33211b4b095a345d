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

#[tokio::test]
async fn an_entry_the_sweep_cannot_remove_is_skipped_and_reported_and_the_rest_goes() {
    // a record sled holds but that no longer decodes: the studio still starts, the sweep
    // removes everything else, names it, exits 1, and nothing it may point at is deleted
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let admin = server.with_key(&server.admin_key().await);
    let mut ids = Vec::new();
    for seed in [41, 42] {
        let img = admin.upload(noisy_png(40, 30, seed)).await;
        let job = img["thumbnail_job_id"].as_str().unwrap().to_string();
        admin
            .wait_job_until(&job, Duration::from_secs(30), is_final)
            .await;
        ids.push(img["id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(1100)).await; // the first is due first
    }
    server.stop().await;
    // damage the first image's record as sled holds it
    let uuid = |s: &str| *uuid::Uuid::parse_str(s).unwrap().as_bytes();
    {
        let db = sled::open(env.data.join("db")).unwrap();
        let images = db.open_tree("images").unwrap();
        assert!(images.get(uuid(&ids[0])).unwrap().is_some());
        images
            .insert(uuid(&ids[0]), &b"\xffnot a record"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let later = rfc3339_in_hours(49);
    for _ in 0..2 {
        let run = env.run(&["sweep", "--as-of", &later]);
        assert_eq!(run.code, Some(1), "{}", run.describe());
        assert!(
            run.stderr
                .contains("1 due entry could not be removed (the log above says why)"),
            "{}",
            run.describe()
        );
        assert!(
            run.stderr.contains(&ids[0]),
            "the log names it: {}",
            run.describe()
        );
    }
    // the other image went at the first run, and stays gone; the damaged record's files are
    // kept, by the sweep and by the start-up reconciler (it cannot tell what they belong to)
    assert_eq!(files_under(&env.blobs()).len(), 2);
    let server = Server::start(&env).await;
    assert_eq!(files_under(&env.blobs()).len(), 2);
    let admin = server.with_key(&server.admin_key().await);
    let (status, _) = admin.json(&format!("/api/v1/images/{}", ids[1])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
