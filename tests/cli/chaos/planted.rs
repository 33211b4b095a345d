//! The two crash outcomes the kill -9 programme found, planted by hand so they are checked
//! on every run, not only when a random kill lands in their window: a document whose image
//! is gone (an image delete cut between its image and its documents — the restart's
//! reconciler removes it), and a decompose job that stored its document but was killed
//! before recording that (its re-run must answer with that document, not make a second).

use std::time::Duration;

use image_layered::ids::{DocumentId, ImageId, JobId};
use image_layered::store::{JobState, Store};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

fn open_store(env: &Env) -> Store {
    Store::open(
        &env.data.join("db"),
        &image_layered::config::StoreConfig::default(),
    )
    .expect("open the store of the stopped server")
}

/// Uploads an image and decomposes it (palette, 3 layers): the image, the job, the document.
async fn decomposed(c: &Client) -> (String, Value, String) {
    let img = c.upload(noisy_png(40, 30, 11)).await;
    let image = img["id"].as_str().unwrap().to_string();
    let (s, job) = c
        .post_json(
            &format!("/api/v1/images/{image}/decompose"),
            json!({"mode": "palette", "layers": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let job = c.wait_job(job["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let doc = job["result"]["document_id"].as_str().unwrap().to_string();
    (image, job, doc)
}

#[tokio::test]
async fn restart_removes_a_document_whose_image_is_gone() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let (_, _, doc) = decomposed(&server.with_key(&key)).await;
    server.stop().await;

    // what an image delete cut half-way leaves: a document of an image no longer there
    // (sharing the real document's layer files, which must stay)
    let store = open_store(&env);
    let mut stray = store
        .get_document(doc.parse::<DocumentId>().unwrap())
        .unwrap()
        .expect("the document");
    stray.id = DocumentId::new();
    stray.image_id = ImageId::new();
    store.put_document(&stray).unwrap();
    store.flush_blocking().unwrap();
    drop(store);

    let server = server.restart(&env).await;
    let c = server.with_key(&key);
    let (s, _) = c.json(&format!("/api/v1/documents/{}", stray.id)).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "the stray document is still served"
    );
    let (s, d) = c.json(&format!("/api/v1/documents/{doc}")).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    for l in d["layers"].as_array().unwrap() {
        let (s, png) = c.bytes(l["url"].as_str().unwrap()).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "a layer of the real document went with the stray"
        );
        image::load_from_memory(&png).expect("a layer PNG");
    }
    assert!(
        server
            .stderr()
            .contains("removing a document whose image is gone"),
        "{}",
        server.log_tail(10)
    );
}

#[tokio::test]
async fn a_decompose_job_rerun_after_a_crash_makes_no_second_document() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let (image, job, doc) = decomposed(&server.with_key(&key)).await;
    server.stop().await;

    // the document is stored, but the job's success is not: as if killed in between
    let store = open_store(&env);
    let id = job["id"].as_str().unwrap().parse::<JobId>().unwrap();
    let mut rec = store.get_job(id).unwrap().expect("the job");
    rec.state = JobState::Running;
    rec.result = None;
    store.put_job(&rec).unwrap();
    store.flush_blocking().unwrap();
    drop(store);

    let server = server.restart(&env).await;
    let c = server.with_key(&key);
    let again = c
        .wait_job_until(
            job["id"].as_str().unwrap(),
            Duration::from_secs(60),
            is_final,
        )
        .await;
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(
        again["result"]["document_id"], doc,
        "the re-run answered with another document"
    );
    let (_, list) = c.json("/api/v1/documents").await;
    let of_image: Vec<&Value> = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["image_id"] == image.as_str())
        .collect();
    assert_eq!(of_image.len(), 1, "documents of the image: {of_image:?}");
}
