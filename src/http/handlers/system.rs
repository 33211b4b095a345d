//! Liveness, readiness and metrics (the last for the loopback interface or a token).

use hyper::StatusCode;

use hyper::http::request::Parts;
use hyper::Request;

use crate::error::ApiError;
use crate::http::respond::{bytes, json, HttpResult};
use crate::http::{blocking, ClientAddr, ReqBody, Server};

pub async fn healthz(_app: &Server) -> HttpResult {
    Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"})))
}

pub async fn readyz(app: &Server) -> HttpResult {
    let store = app.store.clone();
    let store_ok =
        tokio::task::spawn_blocking(move || store.get_user(crate::ids::UserId(uuid::Uuid::nil())))
            .await
            .is_ok_and(|r| r.is_ok());
    let models = match app.inference.get() {
        Some(inf) => serde_json::json!({
            "state": "loaded", "provider": inf.provider(), "loaded": inf.loaded(),
        }),
        None => serde_json::json!({
            "state": "not_loaded",
            "reason": app.models_note.lock().map(|n| n.clone()).unwrap_or_default(),
        }),
    };
    let ready = store_ok && app.inference.get().is_some();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json(
        status,
        &serde_json::json!({
            "ready": ready,
            "store": if store_ok { "ok" } else { "unavailable" },
            "models": models,
        }),
    ))
}

/// How long `/metrics` reuses its gauges (job counts, bytes on disk), which cost a scan.
const GAUGES_FRESH: std::time::Duration = std::time::Duration::from_secs(15);

/// `GET /metrics`: for the loopback interface, or with `server.metrics_token` as a bearer
/// token; to anyone else it does not exist. The gauges are computed at most every 15 s.
pub async fn metrics(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    if !may_read_metrics(app, &parts) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "no route for /metrics; see API.md",
        ));
    }
    let cached = app.metrics.gauges(GAUGES_FRESH);
    let gauges = match cached {
        Some(g) => g,
        None => {
            let (jobs, store, blobs) = (app.jobs.clone(), app.store.clone(), app.blobs.clone());
            let g = blocking(move || {
                let counts = jobs.counts()?;
                Ok::<_, crate::store::StoreError>((
                    counts,
                    store.size_on_disk(),
                    blobs.disk_usage().unwrap_or(0),
                ))
            })
            .await?;
            app.metrics.keep_gauges(g);
            g
        }
    };
    let (jobs, store_bytes, blob_bytes) = gauges;
    Ok(bytes(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        app.metrics
            .render(jobs, store_bytes, blob_bytes, app.sweeper.failures()),
    ))
}

fn may_read_metrics(app: &Server, parts: &Parts) -> bool {
    use subtle::ConstantTimeEq;
    let loopback = parts
        .extensions
        .get::<ClientAddr>()
        .is_some_and(|c| c.0.is_loopback());
    let token = app.config.server.metrics_token.expose();
    let bearer = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !token.is_empty() && bool::from(t.as_bytes().ct_eq(token.as_bytes())));
    loopback || bearer
}

/// `GET /api/v1/openapi.json` (public): the OpenAPI 3.1 description of every route.
pub async fn openapi() -> HttpResult {
    Ok(crate::http::respond::json(
        hyper::StatusCode::OK,
        &crate::http::openapi::document(),
    ))
}
