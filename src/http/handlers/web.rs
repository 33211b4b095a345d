//! The studio page: the HTML, JavaScript and CSS under `web/`, compiled into the binary so one
//! file is the whole product. `server.web_dir`, when set, serves the same file names from that
//! folder instead (for working on the page without rebuilding). Only the names listed here are
//! served; nothing else on disk is reachable.

use hyper::StatusCode;

use crate::error::ApiError;
use crate::http::respond::{bytes, HttpResult};
use crate::http::Server;

/// (name, content type, embedded bytes)
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../web/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/style.css"),
    ),
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/admin.css"),
    ),
];

/// `GET /privacy`: the privacy policy, rendered from the configuration and the version in
/// effect.
pub async fn privacy(app: &Server) -> HttpResult {
    let privacy = app.privacy.clone();
    let tls = app.tls;
    let html = crate::http::blocking(move || privacy.privacy_page(tls)).await?;
    let mut r = bytes(StatusCode::OK, "text/html; charset=utf-8", html);
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    Ok(r)
}

/// `GET /` and `GET /assets/{name}`.
pub async fn file(app: &Server, name: &str) -> HttpResult {
    let Some(&(name, content_type, embedded)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return Err(ApiError::not_found("file"));
    };
    let dir = &app.config.server.web_dir;
    let body = if dir.as_os_str().is_empty() {
        bytes::Bytes::from_static(embedded)
    } else {
        tokio::fs::read(dir.join(name))
            .await
            .map_err(|e| ApiError::internal("web_dir", e))?
            .into()
    };
    let mut r = bytes(StatusCode::OK, content_type, body);
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    Ok(r)
}
