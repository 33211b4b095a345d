//! Liveness, readiness and metrics.

use hyper::StatusCode;

use crate::app::App;
use crate::http::respond::{bytes, json, HttpResult};

pub async fn healthz(_app: &App) -> HttpResult {
    Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"})))
}

pub async fn readyz(app: &App) -> HttpResult {
    let store_ok = app
        .store
        .get_user(crate::ids::UserId(uuid::Uuid::nil()))
        .is_ok();
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

pub async fn metrics(app: &App) -> HttpResult {
    let jobs = app.jobs.counts()?;
    let store_bytes = app.store.size_on_disk();
    let blobs = app.blobs.clone();
    let blob_bytes = tokio::task::spawn_blocking(move || blobs.disk_usage().unwrap_or(0)).await?;
    Ok(bytes(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        app.metrics.render(jobs, store_bytes, blob_bytes),
    ))
}
