//! `Idempotency-Key` on POST, black-box: the same key and body get the first answer again
//! and no second job or charge; another body is 409; keys are the sender's own; a key is
//! forgotten after 24 hours.

use image_layered::store::Plan;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

async fn decompose(c: &Client, image: &str, key: &str, layers: u32) -> reqwest::Response {
    c.post(&format!("/api/v1/images/{image}/decompose"))
        .header("idempotency-key", key)
        .json(&json!({"mode": "palette", "layers": layers}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeated_request_gets_the_first_answer_and_costs_nothing_more() {
    let t = spawn_app().await;
    let m = t.member("ann@example.com", Plan::Free).await;
    let key = m
        .post_json("/api/v1/keys", json!({"name": "script"}))
        .await
        .1["key"]
        .as_str()
        .unwrap()
        .to_string();
    let m = t.client().with_key(&key);
    let meta = m.upload(noisy_png(40, 30, 1)).await;
    let image = meta["id"].as_str().unwrap().to_string();
    m.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;

    let first = decompose(&m, &image, "order-42", 2).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let job: Value = first.json().await.unwrap();

    let again = decompose(&m, &image, "order-42", 2).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["x-credits-charged"], "5");
    assert_eq!(again.json::<Value>().await.unwrap(), job, "the same job");

    let (_, ledger) = m.json("/api/v1/me/ledger").await;
    let reserves = ledger
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "reserve")
        .count();
    assert_eq!(reserves, 1, "charged once: {ledger}");

    // the same key with another request
    let other = decompose(&m, &image, "order-42", 3).await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["error"]["code"], "idempotency_mismatch");

    // a malformed key
    let r = decompose(&m, &image, "has spaces", 2).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // keys belong to whoever sent them
    let b = t.member("bob@example.com", Plan::Free).await;
    let meta = b.upload(noisy_png(40, 30, 2)).await;
    b.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
    let theirs = decompose(&b, meta["id"].as_str().unwrap(), "order-42", 2).await;
    assert_eq!(theirs.status(), StatusCode::ACCEPTED);
    assert!(!theirs.headers().contains_key("idempotent-replayed"));

    // after 24 hours the key is forgotten: the request runs again
    m.wait_job(job["job_id"].as_str().unwrap()).await;
    t.advance_hours(25);
    t.sweep().await;
    let later = decompose(&m, &image, "order-42", 2).await;
    assert_eq!(later.status(), StatusCode::ACCEPTED);
    assert!(!later.headers().contains_key("idempotent-replayed"));
    assert_ne!(later.json::<Value>().await.unwrap(), job);
}
