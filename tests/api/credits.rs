//! Plans and credits, black-box: the monthly grant (once per period, whatever the clock
//! does), a job's cost reserved at enqueue and charged on success or refunded on failure,
//! `402` before anything is queued, the plan's queue limit, admins at zero cost, and the
//! ledger's sum under many concurrent charged requests.

use std::time::Duration;

use image_layered::clock::Clock;
use image_layered::ids::{ImageId, UserId};
use image_layered::store::{JobKind, JobRecord, LedgerReason, Plan};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

async fn upload(c: &Client, seed: u64) -> String {
    let meta = c.upload(noisy_png(48, 32, seed)).await;
    c.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
    meta["id"].as_str().unwrap().to_string()
}

async fn decompose(c: &Client, image: &str) -> reqwest::Response {
    c.post(&format!("/api/v1/images/{image}/decompose"))
        .json(&json!({"mode": "palette", "layers": 2}))
        .send()
        .await
        .unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> Option<i64> {
    r.headers().get(name)?.to_str().ok()?.parse().ok()
}

/// The ledger's entries, oldest first, as `(reason, delta, balance)`.
async fn ledger(c: &Client) -> Vec<(String, i64, i64)> {
    let (s, entries) = c.json("/api/v1/me/ledger").await;
    assert_eq!(s, StatusCode::OK, "{entries}");
    let mut out: Vec<_> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap().to_string(),
                e["delta"].as_i64().unwrap(),
                e["balance"].as_i64().unwrap(),
            )
        })
        .collect();
    out.reverse();
    out
}

fn member_id(t: &TestApp, email: &str) -> UserId {
    t.app.store.user_by_email(email).unwrap().unwrap().id
}

/// A paid job (a decomposition) of an image that is not there: it fails when it runs.
fn missing_image_job(t: &TestApp, owner: UserId) -> JobRecord {
    t.app.jobs.new_job(
        owner,
        JobKind::Decompose {
            image_id: ImageId::new(),
            layers: "2".parse().unwrap(),
            mode: "palette".parse().unwrap(),
        },
    )
}

#[tokio::test]
async fn a_job_reserves_its_cost_and_is_charged_on_success() {
    let t = spawn_app().await;
    let m = t.member("ann@example.com", Plan::Free).await;
    let (_, me) = m.json("/api/v1/me").await;
    assert_eq!(me["credits"], 50, "the first grant comes with the account");
    let image = upload(&m, 1).await;
    let r = decompose(&m, &image).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "x-credits-charged"), Some(5));
    assert_eq!(header(&r, "x-credits-remaining"), Some(45));
    let job: Value = r.json().await.unwrap();
    let job = m.wait_job(job["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded");
    assert_eq!(
        ledger(&m).await,
        [
            ("grant".into(), 50, 50),
            ("reserve".into(), -5, 45),
            ("charge".into(), 0, 45)
        ]
    );
    // a thumbnail is free; no header on free work
    assert_eq!(m.json("/api/v1/me").await.1["credits"], 45);
}

#[tokio::test]
async fn below_the_cost_the_answer_is_402_and_nothing_is_queued() {
    let t = spawn_app_with(&[("IMAGE_LAYERED__COSTS__DECOMPOSE", "60")]).await;
    let m = t.member("ann@example.com", Plan::Free).await;
    let image = upload(&m, 2).await;
    let jobs_before = m.json("/api/v1/jobs").await.1["jobs"]
        .as_array()
        .unwrap()
        .len();
    let r = decompose(&m, &image).await;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_credits");
    let jobs_after = m.json("/api/v1/jobs").await.1["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(jobs_after, jobs_before, "nothing was queued");
    assert_eq!(ledger(&m).await, [("grant".into(), 50, 50)]);
}

#[tokio::test]
async fn a_failed_job_is_refunded_once() {
    let t = spawn_app().await;
    let m = t.member("ann@example.com", Plan::Free).await;
    let owner = member_id(&t, "ann@example.com");
    // a decomposition of an image that is not there fails when it runs
    let job = missing_image_job(&t, owner);
    let queued = t.app.jobs.enqueue(&job).await.unwrap();
    assert_eq!(queued.reserved, Some(5));
    let done = m.wait_job(&job.id.to_string()).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(
        ledger(&m).await,
        [
            ("grant".into(), 50, 50),
            ("reserve".into(), -5, 45),
            ("refund".into(), 5, 50)
        ]
    );
    // writing the finished job again (a late progress write, a retry) refunds nothing more
    let rec = t.app.store.get_job(job.id).unwrap().unwrap();
    t.app.store.put_job(&rec).unwrap();
    assert_eq!(t.app.store.balance(owner).unwrap(), 50);
    assert!(t
        .app
        .store
        .ledger_of(owner)
        .unwrap()
        .iter()
        .all(|e| e.reason != LedgerReason::Charge));
}

#[tokio::test]
async fn a_cancelled_job_is_refunded() {
    let t = spawn_app().await;
    let m = t.member("ann@example.com", Plan::Free).await;
    let owner = member_id(&t, "ann@example.com");
    // held back an hour, so it is still queued when it is cancelled
    let mut job = missing_image_job(&t, owner);
    job.not_before = t.app.now() + 3600;
    t.app.jobs.enqueue(&job).await.unwrap();
    assert_eq!(t.app.store.balance(owner).unwrap(), 45);
    let r = m
        .delete(&format!("/api/v1/jobs/{}", job.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (_, j) = m.json(&format!("/api/v1/jobs/{}", job.id)).await;
    assert_eq!(j["state"], "cancelled");
    assert_eq!(
        ledger(&m).await,
        [
            ("grant".into(), 50, 50),
            ("reserve".into(), -5, 45),
            ("refund".into(), 5, 50)
        ]
    );
}

#[tokio::test]
async fn the_plans_queue_limit_answers_429_with_retry_after() {
    let t = spawn_app_with(&[("IMAGE_LAYERED__PLANS__FREE__MAX_QUEUED_JOBS", "0")]).await;
    let m = t.member("ann@example.com", Plan::Free).await;
    let image = upload(&m, 3).await;
    let r = decompose(&m, &image).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "queue_full");
    // a table given in part keeps the other defaults
    assert_eq!(t.app.config.plans.free.monthly_credits, 50);
    assert_eq!(t.app.config.plans.pro.max_queued_jobs, 16);
}

#[tokio::test]
async fn admins_are_in_the_ledger_at_zero_cost() {
    let t = spawn_app().await;
    let a = t.admin().await;
    let image = upload(&a, 4).await;
    let r = decompose(&a, &image).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "x-credits-charged"), Some(0));
    let job: Value = r.json().await.unwrap();
    a.wait_job(job["job_id"].as_str().unwrap()).await;
    let entries = ledger(&a).await;
    assert_eq!(entries[1], ("reserve".into(), 0, 2000));
    assert_eq!(entries[2], ("charge".into(), 0, 2000));
}

#[tokio::test]
async fn grants_come_once_per_period_whatever_the_clock_does() {
    let t = spawn_app().await;
    t.member("ann@example.com", Plan::Free).await;
    let owner = member_id(&t, "ann@example.com");
    let credits = |t: &TestApp| t.app.store.balance(owner).unwrap();
    t.app.billing.run_grants(t.app.now()).unwrap();
    t.app.billing.run_grants(t.app.now()).unwrap();
    assert_eq!(credits(&t), 50);
    // a month later: the second period
    let start = t.clock.now();
    t.advance_hours(31 * 24);
    t.app.billing.run_grants(t.app.now()).unwrap();
    assert_eq!(credits(&t), 100);
    // the clock jumps back, then forward again: nothing more
    t.clock.set(start);
    t.app.billing.run_grants(t.app.now()).unwrap();
    t.clock.set(start + time::Duration::days(31));
    t.app.billing.run_grants(t.app.now()).unwrap();
    assert_eq!(credits(&t), 100);
    let m = t.client().login("ann@example.com", "member password").await;
    assert_eq!(m.json("/api/v1/me").await.1["credits"], 100);
}

#[tokio::test]
async fn the_ledger_sums_to_the_balance_under_50_concurrent_charged_requests() {
    let t = spawn_app().await;
    let m = t.member("ann@example.com", Plan::Studio).await;
    let image = upload(&m, 5).await;
    let requests = (0..50).map(|_| {
        let (m, image) = (m.clone(), image.clone());
        tokio::spawn(async move {
            let r = decompose(&m, &image).await;
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            (status, body)
        })
    });
    let mut accepted = Vec::new();
    let handles: Vec<_> = requests.collect();
    for h in handles {
        let (status, body) = h.await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        accepted.push(body["job_id"].as_str().unwrap().to_string());
    }
    let mut succeeded = 0;
    for id in &accepted {
        let job = m
            .wait_job_until(id, Duration::from_secs(120), is_final)
            .await;
        if job["state"] == "succeeded" {
            succeeded += 1;
        }
    }
    let entries = ledger(&m).await;
    let sum: i64 = entries.iter().map(|e| e.1).sum();
    let balance = entries.last().unwrap().2;
    assert_eq!(sum, balance, "the balance is the sum of the entries");
    assert_eq!(balance, 2000 - 5 * succeeded);
    assert_eq!(m.json("/api/v1/me").await.1["credits"], balance);
    let reserves = entries.iter().filter(|e| e.0 == "reserve").count();
    assert_eq!(reserves, 50);
}

#[tokio::test]
async fn the_plans_pixel_and_storage_limits_apply_to_uploads() {
    let t = spawn_app_with(&[
        ("IMAGE_LAYERED__PLANS__FREE__MAX_PIXELS", "1000"),
        ("IMAGE_LAYERED__PLANS__PRO__MAX_STORED_BYTES", "30000"),
    ])
    .await;
    let free = t.member("free@example.com", Plan::Free).await;
    let (s, body) = free.upload_raw(noisy_png(48, 32, 1), "image/png").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (s, _) = free.upload_raw(noisy_png(30, 30, 1), "image/png").await;
    assert_eq!(s, StatusCode::CREATED);

    let pro = t.member("pro@example.com", Plan::Pro).await;
    let png = noisy_png(64, 64, 2);
    assert!(png.len() > 10_000 && png.len() < 15_000, "{}", png.len());
    let (s, _) = pro.upload_raw(png.clone(), "image/png").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = pro.upload_raw(png.clone(), "image/png").await;
    assert_eq!(s, StatusCode::CREATED);
    let r = pro
        .post("/api/v1/images")
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_full");
}
