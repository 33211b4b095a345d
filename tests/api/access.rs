//! Ownership: another member's resources are 404 (never 403), on every route with an id.

use image_layered::store::Plan;
use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn a_second_member_gets_404_for_everything_of_the_first() {
    let t = spawn_app().await;
    let a = t.admin().await;
    let b = t.member("b@example.com", Plan::Free).await;
    let meta = a.upload(noisy_png(200, 100, 1)).await;
    let id = meta["id"].as_str().unwrap();
    let job = meta["thumbnail_job_id"].as_str().unwrap();
    a.wait_job(job).await;
    for path in [
        format!("/api/v1/images/{id}"),
        format!("/api/v1/images/{id}/original"),
        format!("/api/v1/images/{id}/thumbnail"),
        format!("/api/v1/jobs/{job}"),
        format!("/api/v1/jobs/{job}/events"),
    ] {
        let r = b.get(&path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
        // and the owner does see it
        let r = a.get(&path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let r = b
        .delete(&format!("/api/v1/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = b
        .delete(&format!("/api/v1/jobs/{job}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, list) = b.json("/api/v1/images").await;
    assert!(list["images"].as_array().unwrap().is_empty());
    // still there for its owner
    let (s, _) = a.json(&format!("/api/v1/images/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    // a made-up id is the same 404
    let r = b
        .get("/api/v1/images/01a22497-5531-7178-9a7c-9213a702a8a5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_removes_metadata_and_files() {
    let t = spawn_app().await;
    let a = t.admin().await;
    let meta = a.upload(noisy_png(200, 100, 2)).await;
    let id = meta["id"].as_str().unwrap();
    a.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
    assert_eq!(files_under(&t.dir.path().join("data/blobs")).len(), 2);
    let r = a
        .delete(&format!("/api/v1/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for p in ["", "/original", "/thumbnail"] {
        let r = a
            .get(&format!("/api/v1/images/{id}{p}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    assert!(files_under(&t.dir.path().join("data/blobs")).is_empty());
}
