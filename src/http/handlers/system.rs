//! Liveness, readiness, metrics and the landing page.

use hyper::StatusCode;

use crate::app::App;
use crate::http::respond::{bytes, json, HttpResult};

const INDEX: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>image-layered</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>image-layered {{ version }}</h1>
<p>The studio is running. The HTTP API lives under <code>/api/v1</code>
(sign in with <code>POST /api/v1/auth/login</code>); the studio page arrives in a later release.</p>
<p>Temporary uploads are deleted after {{ temporary_hours }} hours.</p>
</main></body></html>"#;

pub async fn index(app: &App) -> HttpResult {
    let mut env = minijinja::Environment::new();
    env.add_template("index", INDEX)
        .map_err(|e| crate::error::ApiError::internal("template", e))?;
    let html = env
        .get_template("index")
        .and_then(|t| {
            t.render(minijinja::context! {
                version => env!("CARGO_PKG_VERSION"),
                temporary_hours => app.config.retention.temporary_hours,
            })
        })
        .map_err(|e| crate::error::ApiError::internal("template", e))?;
    Ok(bytes(StatusCode::OK, "text/html; charset=utf-8", html))
}

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
