//! `Idempotency-Key` on `POST`: the first request with a key runs and its answer is kept
//! for 24 hours; the same key with the same request (method, path, body) gets that answer
//! again (`Idempotent-Replayed: true`) and does no new work — no second job, no second
//! charge; the same key with another request is `409 idempotency_mismatch`, and while the
//! first still runs, `409 idempotency_in_progress`. Keys are scoped to the credential that
//! sent them (session cookie or API key), so two members never share one. Server errors
//! and `429`s are not kept, so a retry can succeed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE};
use hyper::{Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::request::read_body;
use super::respond::{self, Body, HttpResult};
use super::router::{self, Pattern};
use super::{ReqBody, Server};
use crate::error::ApiError;
use crate::store::IdempotencyRecord;

/// The answer's headers worth replaying.
const KEPT_HEADERS: [&str; 5] = [
    "content-type",
    "location",
    "retry-after",
    "x-credits-charged",
    "x-credits-remaining",
];

/// Answers larger than this are not kept (the store holds small values only).
const MAX_KEPT_BODY: usize = 64 * 1024;

/// The `Idempotency-Key` of a `POST`, if it has one.
pub fn key_of(req: &Request<ReqBody>) -> Option<String> {
    if req.method() != hyper::Method::POST {
        return None;
    }
    req.headers()
        .get("idempotency-key")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn refuse(code: &'static str, status: StatusCode, message: &str) -> (Pattern, HttpResult) {
    ("idempotency", Err(ApiError::new(status, code, message)))
}

/// Runs (or replays) a request that carries an idempotency key.
pub async fn run(app: &Server, req: Request<ReqBody>, key: String) -> (Pattern, HttpResult) {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return refuse(
            "invalid_idempotency_key",
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        );
    }
    let (parts, body) = req.into_parts();
    let limit = app.config.uploads.max_bytes + 64 * 1024;
    let raw = match read_body(&parts, body, limit).await {
        Ok(b) => b,
        Err(e) => return ("idempotency", Err(e)),
    };
    let credential = parts
        .headers
        .get(AUTHORIZATION)
        .or_else(|| parts.headers.get(COOKIE))
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let id: [u8; 32] = Sha256::new()
        .chain_update(&credential)
        .chain_update([0])
        .chain_update(key.as_bytes())
        .finalize()
        .into();
    let request = hex::encode(
        Sha256::new()
            .chain_update(parts.method.as_str())
            .chain_update(b" ")
            .chain_update(parts.uri.to_string())
            .chain_update([0])
            .chain_update(&raw)
            .finalize(),
    );
    let claim = IdempotencyRecord {
        request: request.clone(),
        status: None,
        headers: Vec::new(),
        body: String::new(),
        created_at: app.now(),
    };
    let store = app.store.clone();
    let seen = match super::blocking(move || {
        Ok::<_, crate::store::StoreError>(match store.idempotency_get(&id)? {
            Some(rec) => Some(rec),
            None if store.idempotency_claim(&id, &claim)? => None,
            // another request claimed it between the two
            None => store.idempotency_get(&id)?,
        })
    })
    .await
    {
        Ok(seen) => seen,
        Err(e) => return ("idempotency", Err(e)),
    };
    if let Some(rec) = seen {
        return if rec.request != request {
            refuse(
                "idempotency_mismatch",
                StatusCode::CONFLICT,
                "this Idempotency-Key was used with another request; use a new key",
            )
        } else if rec.status.is_none() {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "the first request with this Idempotency-Key is still running; try again",
            );
            e.retry_after = Some(1);
            ("idempotency", Err(e))
        } else {
            ("idempotency", Ok(replay(&rec)))
        };
    }

    let body = Full::new(raw)
        .map_err(|never| match never {})
        .boxed_unsync();
    let (pattern, result) = router::dispatch(app, Request::from_parts(parts, body)).await;
    let resp = match result {
        Ok(r) => r,
        Err(e) => respond::error(&e),
    };
    (pattern, Ok(keep(app, id, request, resp).await))
}

/// Keeps the answer for replays (or forgets the key when it should not be kept) and
/// returns it.
async fn keep(app: &Server, id: [u8; 32], request: String, resp: Response<Body>) -> Response<Body> {
    let status = resp.status();
    let (parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            tracing::warn!("an answer could not be read back for its idempotency key: {e}");
            bytes::Bytes::new()
        }
    };
    let worth_keeping = !status.is_server_error()
        && status != StatusCode::TOO_MANY_REQUESTS
        && bytes.len() <= MAX_KEPT_BODY;
    let store = app.store.clone();
    let rec = IdempotencyRecord {
        request,
        status: Some(status.as_u16()),
        headers: KEPT_HEADERS
            .iter()
            .filter_map(|h| {
                let v = parts.headers.get(*h)?.to_str().ok()?;
                Some((h.to_string(), v.to_string()))
            })
            .collect(),
        body: STANDARD.encode(&bytes),
        created_at: app.now(),
    };
    let stored = super::blocking(move || {
        if worth_keeping {
            store.idempotency_answer(&id, &rec)?;
        } else {
            store.idempotency_forget(&id)?;
        }
        store.flush_blocking()
    })
    .await;
    if let Err(e) = stored {
        tracing::warn!("an idempotency key's answer was not kept: {}", e.message);
    }
    Response::from_parts(parts, respond::full(bytes))
}

/// A kept answer, as it was first given.
fn replay(rec: &IdempotencyRecord) -> Response<Body> {
    let body = STANDARD.decode(&rec.body).unwrap_or_default();
    let mut r = Response::new(respond::full(body));
    *r.status_mut() = StatusCode::from_u16(rec.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
    let headers = r.headers_mut();
    for (k, v) in &rec.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            headers.insert(k, v);
        }
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    r
}
