//! Delete at any time (P3): a document goes with its layers and history at once, a finished
//! job's record can be deleted, the member sees their processing history; another member
//! gets 404 on all of it; every deletion is in the audit log, which verifies.

use image_layered::blobs::BlobStore;
use image_layered::config::StoreConfig;
use image_layered::store::{Plan, Store};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn a_deleted_document_takes_its_layers_and_history_and_leaves_the_image() {
    let t = spawn_app().await;
    let a = t.admin().await;
    let b = t.member("b@example.com", Plan::Free).await;
    let (image_id, _, doc) = document(&a).await;
    let doc_id = doc["id"].as_str().unwrap();
    // an edit, so the history holds blobs of its own
    let layer = doc["layers"][1]["id"].as_str().unwrap();
    let r = a
        .post(&format!("/api/v1/documents/{doc_id}/ops"))
        .json(&json!({"op": "recolor", "layer_id": layer, "color": "#20a040"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let blobs = t.dir.path().join("data/blobs");
    // original, thumbnail, 3 layers and the recoloured one
    assert_eq!(files_under(&blobs).len(), 6);

    // another member: 404, and nothing changes
    let r = b
        .delete(&format!("/api/v1/documents/{doc_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(files_under(&blobs).len(), 6);

    let r = a
        .delete(&format!("/api/v1/documents/{doc_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mut derived = vec![
        format!("/api/v1/documents/{doc_id}"),
        format!("/api/v1/documents/{doc_id}/export?format=psd"),
        format!("/api/v1/documents/{doc_id}/export?format=png"),
    ];
    for l in doc["layers"].as_array().unwrap() {
        derived.push(l["url"].as_str().unwrap().to_string());
    }
    for path in &derived {
        let r = a.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for step in ["undo", "redo"] {
        let r = a
            .post(&format!("/api/v1/documents/{doc_id}/{step}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{step}");
    }
    let (_, list) = a.json("/api/v1/documents").await;
    assert!(list["documents"].as_array().unwrap().is_empty(), "{list}");
    // only the image's own files remain, and the image is untouched
    assert_eq!(files_under(&blobs).len(), 2);
    let (s, _) = a.json(&format!("/api/v1/images/{image_id}")).await;
    assert_eq!(s, StatusCode::OK);
    // deleting again is the same 404 as a document that never was
    let r = a
        .delete(&format!("/api/v1/documents/{doc_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let audit = t.app.audit.entries(0, 100).unwrap();
    let admin = t.app.store.user_by_email(ADMIN_EMAIL).unwrap().unwrap().id;
    assert!(
        audit.iter().any(|e| e.action == "document.delete"
            && e.target == format!("document:{doc_id}")
            && e.actor == format!("admin:{admin}")),
        "{audit:?}"
    );
    t.app.audit.verify().unwrap();
}

#[tokio::test]
async fn the_processing_history_is_listed_and_finished_records_can_be_deleted() {
    let t = spawn_app().await;
    let a = t.admin().await;
    let b = t.member("b@example.com", Plan::Free).await;
    let (_, decompose_job, _) = document(&a).await;

    let (s, list) = a.json("/api/v1/jobs").await;
    assert_eq!(s, StatusCode::OK);
    let jobs = list["jobs"].as_array().unwrap();
    let kinds: Vec<_> = jobs.iter().map(|j| j["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["decompose", "thumbnail"], "newest first: {list}");
    assert!(jobs.iter().all(|j| j["state"] == "succeeded"));
    // another member's history is theirs alone
    let (_, theirs) = b.json("/api/v1/jobs").await;
    assert!(theirs["jobs"].as_array().unwrap().is_empty(), "{theirs}");
    let r = b
        .delete(&format!("/api/v1/jobs/{decompose_job}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // a finished job's record is deleted: 204, then 404 everywhere
    let r = a
        .delete(&format!("/api/v1/jobs/{decompose_job}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for path in [
        format!("/api/v1/jobs/{decompose_job}"),
        format!("/api/v1/jobs/{decompose_job}/events"),
    ] {
        let r = a.get(&path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (_, list) = a.json("/api/v1/jobs").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1, "{list}");
    assert!(t
        .app
        .audit
        .entries(0, 100)
        .unwrap()
        .iter()
        .any(|e| e.action == "job.delete" && e.target == format!("job:{decompose_job}")));
    t.app.audit.verify().unwrap();
}

#[tokio::test]
async fn a_deleted_account_is_locked_at_once_and_purged_by_the_sweep() {
    let t = spawn_app().await;
    let m = t.member("gone@example.com", Plan::Free).await;
    let uid = t
        .app
        .store
        .user_by_email("gone@example.com")
        .unwrap()
        .unwrap()
        .id;
    let meta = m.upload(noisy_png(48, 32, 5)).await;
    m.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
    let key = {
        let r = m
            .post("/api/v1/keys")
            .json(&json!({"name": "k"}))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let other = t.member("stays@example.com", Plan::Free).await;
    let others = other.upload(noisy_png(48, 32, 6)).await;
    other
        .wait_job(others["thumbnail_job_id"].as_str().unwrap())
        .await;

    // what a thief (or a forgotten backup) keeps: a copy of the store and of a blob file
    t.app.store.flush().await.unwrap();
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&t.dir.path().join("data/db"), &backup.path().join("db"));
    let original_blob = t
        .app
        .store
        .get_image(meta["id"].as_str().unwrap().parse().unwrap())
        .unwrap()
        .unwrap()
        .original_blob;
    let stolen_blob = backup.path().join("original.blob");
    std::fs::copy(t.app.blobs.path_of(uid, original_blob), &stolen_blob).unwrap();
    let generation_before = t.app.keyring.current_generation();

    let r = m
        .delete("/api/v1/me")
        .json(&json!({"password": "not it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = m
        .delete("/api/v1/me")
        .json(&json!({"password": "member password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let receipt = r.json::<Value>().await.unwrap()["receipt"].clone();
    assert_eq!(receipt["email"], "gone@example.com");
    assert_eq!(receipt["requested_at"], "2026-06-01T12:00:00Z");
    assert_eq!(receipt["purge_by"], "2026-07-01T12:00:00Z");
    let receipt_id = receipt["id"].as_str().unwrap().to_string();

    // at once: no session, no key, no sign-in, no data key
    assert_eq!(m.json("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.client().with_key(&key).json("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.client()
            .post_login("gone@example.com", "member password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(t.app.store.data_key(uid).unwrap().is_none());
    let member_blobs = t
        .dir
        .path()
        .join("data/blobs")
        .join(uid.0.simple().to_string());
    assert!(
        member_blobs.is_dir(),
        "files stay until the sweep, unreadable"
    );

    // the receipt is mailed
    let (_, mail) = t.mail(0).await;
    assert!(mail.contains("To: gone@example.com"), "{mail}");
    assert!(mail.contains(&receipt_id), "{mail}");

    // until the sweep, the old store's copy of the data key would still unwrap (and so open
    // the copied file): the live store forgot the key, the master key did not change yet
    let old = Store::open(&backup.path().join("db"), &StoreConfig::default()).unwrap();
    let old_wrapped = old
        .data_key(uid)
        .unwrap()
        .expect("the old copy has the key");
    let data_key = t.app.keyring.unwrap(&old_wrapped, uid).unwrap();
    let stolen = BlobStore::open(backup.path()).unwrap();
    std::fs::create_dir_all(stolen.path_of(uid, original_blob).parent().unwrap()).unwrap();
    std::fs::rename(&stolen_blob, stolen.path_of(uid, original_blob)).unwrap();
    assert!(stolen.read_all(&data_key, uid, original_blob).is_ok());
    drop(data_key);

    // the next sweep purges files and records; the other member is untouched
    assert!(t.sweep().await >= 1);
    assert!(!member_blobs.exists());
    assert!(t.app.store.list_images(uid).unwrap().is_empty());
    assert!(t.app.store.jobs_of(uid).unwrap().is_empty());
    assert!(t.app.store.deletions().unwrap().is_empty());
    assert_eq!(
        other.json("/api/v1/images").await.1["images"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let actions: Vec<_> = t
        .app
        .audit
        .entries(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.target == format!("user:{uid}"))
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["user.delete", "sweep.purge"]);
    t.app.audit.verify().unwrap();

    // the sweep rotated the master key: the old store's copy of the destroyed data key no
    // longer unwraps, so the copied file stays sealed; the other member reads on
    assert_eq!(t.app.keyring.current_generation(), generation_before + 1);
    assert!(t.app.keyring.unwrap(&old_wrapped, uid).is_err());
    assert!(!t.dir.path().join("data/keys/master.key.next").exists());
    let (s, _) = other
        .bytes(&format!(
            "/api/v1/images/{}/original",
            others["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
