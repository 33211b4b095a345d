//! Liveness, readiness and metrics.

use hyper::StatusCode;

use crate::http::respond::{bytes, json, HttpResult};
use crate::http::{blocking, Server};

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

pub async fn metrics(app: &Server) -> HttpResult {
    let (jobs, store, blobs) = (app.jobs.clone(), app.store.clone(), app.blobs.clone());
    let (jobs, store_bytes, blob_bytes) = blocking(move || {
        let counts = jobs.counts()?;
        Ok::<_, crate::store::StoreError>((
            counts,
            store.size_on_disk(),
            blobs.disk_usage().unwrap_or(0),
        ))
    })
    .await?;
    Ok(bytes(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        app.metrics
            .render(jobs, store_bytes, blob_bytes, app.sweeper.failures()),
    ))
}

/// `GET /api/v1/openapi.json` (public): the OpenAPI 3.1 description of every route.
pub async fn openapi() -> HttpResult {
    Ok(crate::http::respond::json(
        hyper::StatusCode::OK,
        &crate::http::openapi::document(),
    ))
}
