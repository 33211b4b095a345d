//! Sensitive metadata is sealed with the member's data key: an upload's EXIF (GPS included)
//! and SHA-256, layer names (and OCR'd text) and the document's operation log appear in the
//! API as before but nowhere in the data dir in plaintext, and once the member deletes
//! their account they cannot be read even from the records the sweep has not purged yet.

use image_layered::ids::DocumentId;
use image_layered::store::Plan;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

const SECRET_NAME: &str = "Quarterly-Secret-Launch";

#[tokio::test]
async fn exif_gps_hashes_and_layer_names_are_sealed_at_rest_and_shredded_with_the_account() {
    let t = spawn_app().await;
    let m = t.member("ann@example.com", Plan::Pro).await;
    let jpeg = std::fs::read("tests/fixtures/photos/gps.jpg").unwrap();
    let (s, meta) = m.upload_raw(jpeg, "image/jpeg").await;
    assert_eq!(s, StatusCode::CREATED, "{meta}");
    let latitude = meta["exif"]["gps"]["latitude"].as_f64().expect("GPS read");
    assert!((latitude - 48.858).abs() < 0.01, "{meta}");
    assert_eq!(meta["exif"]["model"], "Snapper 3000");
    let sha = meta["sha256"].as_str().unwrap().to_string();
    let digest = <sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read("tests/fixtures/photos/gps.jpg").unwrap(),
    );
    assert_eq!(sha, hex::encode(digest));
    let id = meta["id"].as_str().unwrap();
    m.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;

    let (_, doc) = decompose_palette(&m, id, 2).await;
    let doc_id = doc["id"].as_str().unwrap().to_string();
    let layer = doc["layers"][1]["id"].as_str().unwrap();
    let (s, doc) = m
        .post_json(
            &format!("/api/v1/documents/{doc_id}/ops"),
            json!({"op": "rename", "layer_id": layer, "name": SECRET_NAME}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{doc}");

    // the API shows everything, as before
    let (_, again) = m.json(&format!("/api/v1/images/{id}")).await;
    assert_eq!(again["sha256"], sha.as_str());
    assert_eq!(again["exif"]["gps"], meta["exif"]["gps"]);
    let (_, doc) = m.json(&format!("/api/v1/documents/{doc_id}")).await;
    assert_eq!(doc["layers"][1]["name"], SECRET_NAME);
    let undone = m
        .post(&format!("/api/v1/documents/{doc_id}/undo"))
        .send()
        .await
        .unwrap();
    assert_eq!(undone.status(), StatusCode::OK);
    let redone: Value = m
        .post(&format!("/api/v1/documents/{doc_id}/redo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        redone["layers"][1]["name"], SECRET_NAME,
        "history keeps names"
    );

    // ...and the data dir none of it in plaintext
    t.app.store.flush().await.unwrap();
    let data = t.dir.path().join("data");
    for needle in [SECRET_NAME, &sha, "Snapper 3000", "48.85", "Colour 1"] {
        assert_eq!(
            contains(&data, needle.as_bytes()),
            None,
            "{needle} in plaintext"
        );
    }

    // after deletion the records left for the sweep cannot be read any more
    let (s, _) = m
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/me",
            json!({"password": "member password"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let left = t
        .app
        .store
        .get_document(doc_id.parse::<DocumentId>().unwrap())
        .unwrap()
        .expect("not purged yet");
    assert!(left
        .layers
        .iter()
        .all(|l| l.name.is_empty() && l.text.is_none()));
    let img = t.app.store.get_image(id.parse().unwrap()).unwrap().unwrap();
    assert!(img.sha256.is_empty() && img.exif.is_none());
}
