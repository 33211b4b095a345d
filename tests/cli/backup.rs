//! Backup and restore: `backup --out` while the studio serves (through its control socket),
//! then `restore --from` into a fresh data dir, where the studio reads every image back byte
//! for byte and every document layer — an image deleted after the backup included, since the
//! backup pinned its file. A second restore into a full data dir is refused, as is a damaged
//! archive; a stopped studio is backed up from its store directly.

use serde_json::{json, Value};

use crate::support::*;

struct Kept {
    id: String,
    bytes: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_every_image_and_layer() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let c = server.with_key(&key);
    let mut kept = Vec::new();
    for i in 0..6u64 {
        let png = noisy_png(40 + i as u32, 30, i);
        let v = c.upload(png.clone()).await;
        kept.push(Kept {
            id: v["id"].as_str().unwrap().to_string(),
            bytes: png,
        });
    }
    // a document, with layers and an undo state
    let (status, job) = c
        .post_json(
            &format!("/api/v1/images/{}/decompose", kept[0].id),
            json!({"mode": "palette", "layers": "3"}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let job = c.wait_job(job["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let doc_id = job["result"]["document_id"].as_str().unwrap().to_string();
    let (_, doc) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
    let layer_url = doc["layers"][1]["url"].as_str().unwrap().to_string();
    let (status, _) = c
        .post_json(
            &format!("/api/v1/documents/{doc_id}/ops"),
            json!({"op": "rename", "layer_id": doc["layers"][1]["id"], "name": "Kept"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, layer_png) = c.bytes(&layer_url).await;

    let archive = env.root.path().join("studio.backup");
    let archive_s = archive.to_str().unwrap();
    let out = env.run(&["backup", "--out", archive_s]);
    assert!(out.ok().contains("backed up"), "{}", out.describe());
    assert!(!env.root.path().join("studio.backup.partial").exists());
    // after the backup: one image deleted (its file unlinked), one more uploaded
    let r = c
        .delete(&format!("/api/v1/images/{}", kept[5].id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let late = c.upload(noisy_png(20, 20, 99)).await;
    server.stop().await;

    // restore into a fresh data dir, with the master key put back
    let fresh = Env::new();
    let out = fresh.run(&["restore", "--from", archive_s]);
    assert!(out.ok().contains("master key"), "{}", out.describe());
    std::fs::create_dir_all(fresh.master_key().parent().unwrap()).unwrap();
    std::fs::copy(env.master_key(), fresh.master_key()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(fresh.master_key(), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    let mut restored = Server::start(&fresh).await;
    let c = restored.with_key(&key);
    for k in &kept {
        let (status, bytes) = c.bytes(&format!("/api/v1/images/{}/original", k.id)).await;
        assert_eq!(status, 200, "image {}", k.id);
        assert!(bytes == k.bytes, "image {} byte for byte", k.id);
    }
    let (status, _) = c
        .json(&format!("/api/v1/images/{}", late["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 404, "uploaded after the backup");
    let (_, doc) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
    assert_eq!(doc["layers"][1]["name"], "Kept", "{doc}");
    assert_eq!(doc["can_undo"], true);
    let (status, bytes) = c.bytes(&layer_url).await;
    assert_eq!(status, 200);
    assert!(bytes == layer_png, "the layer pixel for pixel");
    let undone: Value = c
        .post(&format!("/api/v1/documents/{doc_id}/undo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(undone["layers"][1]["name"], "Kept", "{undone}");
    restored.stop().await;

    // a stopped studio is backed up from its store; a full data dir refuses a restore
    let again = fresh.root.path().join("again.backup");
    fresh
        .run(&["backup", "--out", again.to_str().unwrap()])
        .ok();
    let out = fresh.run(&["restore", "--from", archive_s]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("fresh data dir"), "{}", out.describe());

    // a cut archive restores nothing
    let bytes = std::fs::read(&again).unwrap();
    let cut = fresh.root.path().join("cut.backup");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let empty = Env::new();
    let out = empty.run(&["restore", "--from", cut.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(!empty.data.join("db").exists(), "nothing restored");
}
