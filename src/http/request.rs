//! Reading requests: bodies under a size limit (413 above it, checked from Content-Length
//! first), JSON bodies with precise 400s, cookies, and resolving credentials to a member —
//! session cookie (with a same-origin check on state changes, against CSRF) or API key.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, COOKIE, HOST, ORIGIN};
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiError;

/// Name of the session cookie (`__Host-` prefixed under TLS, where browsers allow it).
pub fn session_cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-il_session"
    } else {
        "il_session"
    }
}

/// Reads a whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(parts: &Parts, body: Incoming, limit: u64) -> Result<Bytes, ApiError> {
    if let Some(len) = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(ApiError::too_large(limit));
        }
    }
    match Limited::new(body, limit as usize).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_unreadable",
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// Parses a JSON body into `T`, with a 400 that says what is wrong.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))
}

/// The value of one cookie.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A cookie-authenticated state change must come from our own origin.
fn same_origin(parts: &Parts) -> bool {
    if let Some(site) = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    match (parts.headers.get(ORIGIN), parts.headers.get(HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or("");
            let host = host.to_str().unwrap_or("");
            origin
                .split_once("://")
                .map(|(_, h)| h.trim_end_matches('/') == host)
                .unwrap_or(false)
        }
        (Some(_), None) => false,
        _ => true,
    }
}

/// The member behind a request, or 401.
pub fn authenticate(app: &App, parts: &Parts) -> Result<Principal, ApiError> {
    if let Some(key) = bearer(parts) {
        return app
            .auth
            .from_api_key(key)?
            .ok_or_else(ApiError::unauthorized);
    }
    if let Some(token) = cookie(parts, session_cookie_name(app.tls)) {
        let principal = app
            .auth
            .from_session(token)?
            .ok_or_else(ApiError::unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !same_origin(parts) {
            return Err(ApiError::forbidden(
                "cross_origin_request",
                "a cookie-authenticated change must come from the studio's own origin",
            ));
        }
        return Ok(principal);
    }
    Err(ApiError::unauthorized())
}
