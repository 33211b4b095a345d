//! Credits over HTTP: the member's ledger, and the `202` of a queued job with what it
//! reserved (`X-Credits-Charged`, `X-Credits-Remaining`, remove.bg's convention).

use crate::http::ReqBody;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};

use crate::clock::rfc3339;
use crate::http::blocking;
use crate::http::request::authenticate;
use crate::http::respond::{json, HttpResult};
use crate::http::Server;
use crate::ids::{JobId, UserId};
use crate::store::LedgerEntry;

fn entry_json(e: &LedgerEntry) -> serde_json::Value {
    serde_json::json!({
        "id": e.id, "at": rfc3339(e.at), "delta": e.delta, "balance": e.balance,
        "reason": e.reason, "job_id": e.job_id, "note": e.note,
    })
}

/// `GET /api/v1/me/ledger`: the member's credit ledger, newest first.
pub async fn ledger(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let billing = app.billing.clone();
    let (_, entries) = blocking(move || billing.ledger(p.user.id)).await?;
    Ok(json(
        StatusCode::OK,
        &entries.iter().map(entry_json).collect::<Vec<_>>(),
    ))
}

/// `202 {job_id}` for a queued job, with the credits it reserved and the balance left.
pub async fn job_accepted(app: &Server, owner: UserId, job_id: JobId) -> HttpResult {
    let (jobs, store) = (app.jobs.clone(), app.store.clone());
    let (job, balance) = blocking(move || {
        Ok::<_, crate::store::StoreError>((jobs.get(owner, job_id)?, store.balance(owner)?))
    })
    .await?;
    let mut r = json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "job_id": job_id }),
    );
    if let Some(charged) = job.and_then(|j| j.reserved) {
        let headers = r.headers_mut();
        headers.insert("x-credits-charged", HeaderValue::from(charged));
        headers.insert("x-credits-remaining", HeaderValue::from(balance));
    }
    Ok(r)
}
