//! The payment provider's webhook, signed the way Stripe signs: `Stripe-Signature:
//! t=<unix>,v1=<hex>[,v1=<hex>…]`, where each `v1` is HMAC-SHA256(secret, "<t>.<raw body>").
//! A signature is accepted within five minutes of `t`, compared in constant time, and any
//! of several `v1` values may match (the provider sends one per secret while a secret is
//! rotated). Only the events the studio acts on are read; no card data ever arrives here.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signature's timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    #[error("the signature's timestamp is more than 5 minutes from now")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` against `body` with `secret` at `now`.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = sign(secret, t, body);
    if sigs
        .iter()
        .any(|s| s.len() == expected.len() && bool::from(s.ct_eq(&expected)))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// HMAC-SHA256(secret, "<t>.<body>").
pub fn sign(secret: &str, t: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// What an event asks of the studio.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// A completed checkout: credits to add and/or a plan to set.
    Checkout {
        user_id: String,
        credits: Option<i64>,
        plan: Option<String>,
        customer: Option<String>,
    },
    /// A subscription ended: back to the free plan.
    SubscriptionEnded { user_id: String },
    /// Anything else: acknowledged, nothing done.
    Ignored,
}

/// Reads an event (`{id, type, data: {object: {metadata, customer}}}`); `Err` with a reason
/// when it is not a well-formed event the studio should act on.
pub fn parse(event: &serde_json::Value) -> Result<(String, Action), String> {
    let id = event["id"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or("the event has no id")?
        .to_string();
    let object = &event["data"]["object"];
    let meta = &object["metadata"];
    let user_id = || {
        meta["user_id"]
            .as_str()
            .map(str::to_string)
            .ok_or("metadata.user_id is missing")
    };
    let action = match event["type"].as_str() {
        Some("checkout.session.completed") => {
            let credits = match meta["credits"].as_str() {
                None => None,
                Some(c) => Some(
                    c.parse::<i64>()
                        .ok()
                        .filter(|c| *c > 0 && *c <= 1_000_000)
                        .ok_or("metadata.credits is not a whole number from 1 to 1000000")?,
                ),
            };
            Action::Checkout {
                user_id: user_id()?,
                credits,
                plan: meta["plan"].as_str().map(str::to_string),
                customer: object["customer"].as_str().map(str::to_string),
            }
        }
        Some("customer.subscription.deleted") => Action::SubscriptionEnded {
            user_id: user_id()?,
        },
        _ => Action::Ignored,
    };
    Ok((id, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_in_time_and_any_v1_may_match() {
        let body = br#"{"id":"evt_1"}"#;
        let t = 1_700_000_000;
        let good = hex::encode(sign("whsec_new", t, body));
        let old = hex::encode(sign("whsec_old", t, body));
        let header = format!("t={t},v1={old},v1={good}");
        assert_eq!(verify("whsec_new", &header, body, t + 10), Ok(()));
        assert_eq!(verify("whsec_old", &header, body, t), Ok(()));
        assert_eq!(
            verify("whsec_other", &header, body, t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_new", &header, b"{\"id\":\"evt_2\"}", t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_new", &header, body, t + 301),
            Err(SignatureError::Stale)
        );
        for bad in ["", "t=1", &format!("v1={good}"), "t=x,v1=zz"] {
            assert!(verify("whsec_new", bad, body, t).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_are_read_with_string_metadata() {
        let e = serde_json::json!({"id": "evt_1", "type": "checkout.session.completed",
            "data": {"object": {"customer": "cus_9", "metadata": {"user_id": "u", "credits": "100"}}}});
        assert_eq!(
            parse(&e).unwrap(),
            (
                "evt_1".into(),
                Action::Checkout {
                    user_id: "u".into(),
                    credits: Some(100),
                    plan: None,
                    customer: Some("cus_9".into())
                }
            )
        );
        let bad = serde_json::json!({"id": "evt_2", "type": "checkout.session.completed",
            "data": {"object": {"metadata": {"user_id": "u", "credits": "-5"}}}});
        assert!(parse(&bad).is_err());
        let other = serde_json::json!({"id": "evt_3", "type": "invoice.paid"});
        assert_eq!(parse(&other).unwrap().1, Action::Ignored);
    }
}
