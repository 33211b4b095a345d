//! Payments by webhook (P15: no card data ever reaches the studio), black-box: forged and
//! stale signatures change nothing; a checkout adds credits or sets a plan once, however
//! often or concurrently it is delivered; a cancelled subscription returns the member to
//! the free plan.

use image_layered::billing::payments::sign;
use image_layered::store::Plan;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

const SECRET: &str = "whsec_test_secret";

async fn deliver(t: &TestApp, event: &Value, secret: &str, at: i64) -> (StatusCode, Value) {
    let body = serde_json::to_vec(event).unwrap();
    let sig = hex::encode(sign(secret, at, &body));
    let r = t
        .client()
        .post("/api/v1/webhooks/payments")
        .header("content-type", "application/json")
        .header("stripe-signature", format!("t={at},v1={sig}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn checkout(id: &str, user: &str, meta: Value) -> Value {
    let mut metadata = json!({"user_id": user});
    metadata
        .as_object_mut()
        .unwrap()
        .extend(meta.as_object().unwrap().clone());
    json!({"id": id, "type": "checkout.session.completed",
        "data": {"object": {"customer": "cus_123", "metadata": metadata}}})
}

#[tokio::test]
async fn signed_checkouts_apply_once_and_forgeries_change_nothing() {
    let t = spawn_app_with(&[("IMAGE_LAYERED__PAYMENTS__WEBHOOK_SECRET", SECRET)]).await;
    let m = t.member("ann@example.com", Plan::Free).await;
    let user = t
        .app
        .store
        .user_by_email("ann@example.com")
        .unwrap()
        .unwrap();
    let uid = user.id.to_string();
    let now = t.app.now();
    assert_eq!(m.json("/api/v1/me").await.1["credits"], 50);

    let buy = checkout("evt_1", &uid, json!({"credits": "100"}));
    // forged, stale, unsigned: 400 bad_signature and nothing changes
    for (secret, at) in [
        ("whsec_wrong", now),
        (SECRET, now - 301),
        (SECRET, now + 301),
    ] {
        let (s, body) = deliver(&t, &buy, secret, at).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "bad_signature");
    }
    let r = t
        .client()
        .post("/api/v1/webhooks/payments")
        .json(&buy)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(t.app.store.balance(user.id).unwrap(), 50);

    // the real thing, then its replay
    let (s, body) = deliver(&t, &buy, SECRET, now).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["applied"], true);
    let (s, body) = deliver(&t, &buy, SECRET, now).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["applied"], false);
    assert_eq!(t.app.store.balance(user.id).unwrap(), 150);
    let (_, ledger) = m.json("/api/v1/me/ledger").await;
    assert_eq!(ledger[0]["reason"], "purchase");
    assert_eq!(ledger[0]["delta"], 100);

    // ten concurrent deliveries of a new event: applied exactly once
    let again = checkout("evt_2", &uid, json!({"credits": "7"}));
    let deliveries: Vec<_> = (0..10)
        .map(|_| {
            let (base, event) = (t.base.clone(), again.clone());
            tokio::spawn(async move {
                let body = serde_json::to_vec(&event).unwrap();
                let sig = hex::encode(sign(SECRET, now, &body));
                reqwest::Client::new()
                    .post(format!("{base}/api/v1/webhooks/payments"))
                    .header("stripe-signature", format!("t={now},v1={sig}"))
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    for d in deliveries {
        if d.await.unwrap()["applied"] == true {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(t.app.store.balance(user.id).unwrap(), 157);

    // a plan by checkout (moving expiries as any plan change), back to free when it ends
    let (s, _) = deliver(
        &t,
        &checkout("evt_3", &uid, json!({"plan": "studio"})),
        SECRET,
        now,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(m.json("/api/v1/me").await.1["plan"], "studio");
    let ended = json!({"id": "evt_4", "type": "customer.subscription.deleted",
        "data": {"object": {"metadata": {"user_id": uid}}}});
    let (s, _) = deliver(&t, &ended, SECRET, now).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(m.json("/api/v1/me").await.1["plan"], "free");
    // a replay of the old upgrade does not bring the plan back
    let (_, body) = deliver(
        &t,
        &checkout("evt_3", &uid, json!({"plan": "studio"})),
        SECRET,
        now,
    )
    .await;
    assert_eq!(body["applied"], false);
    assert_eq!(m.json("/api/v1/me").await.1["plan"], "free");

    // only the provider's customer id is kept
    let user = t.app.store.get_user(user.id).unwrap().unwrap();
    assert_eq!(user.payment_customer.as_deref(), Some("cus_123"));
    let audit = t.app.audit.entries(0, 100).unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "payment.checkout")
            .count(),
        3
    );
    // events the studio does not act on, and unknown members: acknowledged, nothing done
    let (s, body) = deliver(
        &t,
        &json!({"id": "evt_5", "type": "invoice.paid"}),
        SECRET,
        now,
    )
    .await;
    assert_eq!((s, body["applied"].clone()), (StatusCode::OK, json!(false)));
    let stranger = checkout(
        "evt_6",
        "01890000-0000-7000-8000-000000000000",
        json!({"credits": "5"}),
    );
    let (s, _) = deliver(&t, &stranger, SECRET, now).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn without_a_secret_the_webhook_is_refused() {
    let t = spawn_app().await;
    let (s, body) = deliver(&t, &json!({"id": "evt_1", "type": "x"}), "", t.app.now()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "payments_not_configured");
}
