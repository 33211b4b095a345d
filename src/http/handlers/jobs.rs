//! Jobs: state, cancellation, and progress as Server-Sent Events (`progress` events, then
//! `done` or `error`).

use crate::http::ReqBody;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use tokio::sync::broadcast::error::RecvError;

use crate::audit::Actor;
use crate::error::ApiError;
use crate::http::blocking;
use crate::http::request::authenticate;
use crate::http::respond::{empty, json, HttpResult};
use crate::http::router::parse_id;
use crate::http::Server;
use crate::ids::{JobId, UserId};
use crate::jobs::Removal;
use crate::store::{JobRecord, JobState};
use crate::views::job_json;

fn sse_frame(job: &JobRecord) -> Bytes {
    let event = match job.state {
        JobState::Succeeded => "done",
        JobState::Failed | JobState::Cancelled => "error",
        _ => "progress",
    };
    Bytes::from(format!("event: {event}\ndata: {}\n\n", job_json(job)))
}

/// The member's job (read on the blocking pool); another member's is 404.
async fn member_job(app: &Server, owner: UserId, id: JobId) -> Result<JobRecord, ApiError> {
    let jobs = app.jobs.clone();
    blocking(move || jobs.get(owner, id))
        .await?
        .ok_or_else(|| ApiError::not_found("job"))
}

pub async fn get(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: JobId = parse_id(id, "job")?;
    let job = member_job(app, p.user.id, id).await?;
    Ok(json(StatusCode::OK, &job_json(&job)))
}

/// `GET /api/v1/jobs`: the member's processing history, newest first.
pub async fn list(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let jobs = app.jobs.clone();
    let list: Vec<_> = blocking(move || jobs.list(p.user.id))
        .await?
        .iter()
        .map(job_json)
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "jobs": list })))
}

/// `DELETE /api/v1/jobs/{id}`: cancels a queued or running job (`202` with the job), deletes
/// a finished one's record (`204`).
pub async fn cancel(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: JobId = parse_id(id, "job")?;
    match app
        .jobs
        .cancel_or_delete(Actor::of(&p.user), p.user.id, id)
        .await?
    {
        Some(Removal::Cancelled(job)) => Ok(json(StatusCode::ACCEPTED, &job_json(&job))),
        Some(Removal::Deleted) => Ok(empty(StatusCode::NO_CONTENT)),
        None => Err(ApiError::not_found("job")),
    }
}

pub async fn events(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: JobId = parse_id(id, "job")?;
    // Subscribe before reading the state, so no change falls between the two.
    let rx = app.jobs.subscribe();
    let job = member_job(app, p.user.id, id).await?;
    let first = sse_frame(&job);
    let finished = job.state.is_final();
    let jobs = app.jobs.clone();
    let owner = p.user.id;
    let stopping = app.stopping.subscribe();
    let state = (rx, finished, stopping);
    let rest = futures_util::stream::unfold(state, move |(mut rx, finished, mut stopping)| {
        let jobs = jobs.clone();
        async move {
            if finished || *stopping.borrow() {
                return None;
            }
            loop {
                let next = tokio::select! {
                    r = rx.recv() => r,
                    // Shutdown ends the stream; the client reconnects to the next process.
                    _ = stopping.changed() => return None,
                };
                let j = match next {
                    Ok(j) if j.id == id => j,
                    Ok(_) => continue,
                    // Missed events: resend the current state.
                    Err(RecvError::Lagged(_)) => jobs.get(owner, id).ok().flatten()?,
                    Err(RecvError::Closed) => return None,
                };
                let fin = j.state.is_final();
                return Some((sse_frame(&j), (rx, fin, stopping)));
            }
        }
    });
    let stream = futures_util::stream::once(async move { first })
        .chain(rest)
        .map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream.boxed())));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
