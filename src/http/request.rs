//! Reading requests: bodies under a size limit (413 above it, checked from Content-Length
//! first), uploaded files (multipart or raw), JSON bodies with precise 400s, cookies, and
//! resolving credentials to a member — session cookie (with a same-origin check on state
//! changes, against CSRF) or API key.

use crate::http::ReqBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, ORIGIN};
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::{blocking, Server};

/// Whether the request came over TLS (ours or a trusted proxy's).
pub fn is_secure(app: &Server, parts: &Parts) -> bool {
    parts
        .extensions
        .get::<crate::http::Secure>()
        .map_or(app.tls, |s| s.0)
}

/// Name of the session cookie (`__Host-` prefixed over TLS, where browsers allow it).
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-il_session"
    } else {
        "il_session"
    }
}

/// Reads a whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(parts: &Parts, body: ReqBody, limit: u64) -> Result<Bytes, ApiError> {
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

/// A query parameter of the request, percent-decoded (`+` is a space).
pub fn query(parts: &Parts, key: &str) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default();
    pairs.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
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

/// Where a request says it came from, as a browser tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provenance {
    SameOrigin,
    CrossSite,
    /// Neither `Sec-Fetch-Site` nor `Origin`: not a browser's cross-site request, but no
    /// proof of the opposite either (a script, curl).
    Unknown,
}

/// A browser's `Sec-Fetch-Site` (which no page can set) decides when present: a form posted
/// under our `no-referrer` policy carries `Origin: null`. Without it, `Origin` must name
/// this host.
fn provenance(parts: &Parts) -> Provenance {
    if let Some(site) = parts.headers.get("sec-fetch-site") {
        return match site.to_str() {
            Ok("same-origin" | "none") => Provenance::SameOrigin,
            _ => Provenance::CrossSite,
        };
    }
    let Some(origin) = parts.headers.get(ORIGIN) else {
        return Provenance::Unknown;
    };
    let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok());
    let same = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .is_some_and(|(_, h)| Some(h.trim_end_matches('/')) == host);
    if same {
        Provenance::SameOrigin
    } else {
        Provenance::CrossSite
    }
}

/// Whether a request provably comes from our own pages: what a cookie-authenticated state
/// change needs (against CSRF). A script using a cookie sends `Origin`; better, an API key.
pub(crate) fn same_origin(parts: &Parts) -> bool {
    provenance(parts) == Provenance::SameOrigin
}

/// Whether a browser says the request comes from another site (refused at sign-in, so no
/// other site can sign a visitor into an account of its choosing).
pub(crate) fn cross_site(parts: &Parts) -> bool {
    provenance(parts) == Provenance::CrossSite
}

/// The member behind a request, or 401. The store lookups run on the blocking pool.
pub async fn authenticate(app: &Server, parts: &Parts) -> Result<Principal, ApiError> {
    let principal = identify(app, parts).await?;
    if principal.user.must_change_password && !allowed_before_password_change(parts) {
        return Err(ApiError::forbidden(
            "password_change_required",
            "this account signed in with a one-time password: choose a new one first (POST /api/v1/me/password)",
        ));
    }
    Ok(principal)
}

/// What a member who must replace a one-time password may still do: see themselves,
/// change the password, sign out (through the API or the console's forms).
fn allowed_before_password_change(parts: &Parts) -> bool {
    matches!(
        (&parts.method, parts.uri.path()),
        (&Method::GET, "/api/v1/me")
            | (&Method::POST, "/api/v1/me/password")
            | (&Method::POST, "/api/v1/auth/logout")
            | (&Method::POST, "/api/v1/auth/logout-all")
            | (&Method::GET | &Method::POST, "/admin/password")
            | (&Method::POST, "/admin/logout")
    )
}

/// The member behind a request (API key or session cookie, with the CSRF rule).
async fn identify(app: &Server, parts: &Parts) -> Result<Principal, ApiError> {
    if let Some(key) = bearer(parts) {
        let (auth, key) = (app.auth.clone(), key.to_string());
        return blocking(move || auth.from_api_key(&key))
            .await?
            .ok_or_else(ApiError::unauthorized);
    }
    if let Some(token) = cookie(parts, session_cookie_name(is_secure(app, parts))) {
        let (auth, token) = (app.auth.clone(), token.to_string());
        let principal = blocking(move || auth.from_session(&token))
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !same_origin(parts) {
            return Err(ApiError::forbidden(
                "cross_origin_request",
                "a cookie-authenticated change must come from the studio's own pages (send `Origin`, or use an API key)",
            ));
        }
        return Ok(principal);
    }
    Err(ApiError::unauthorized())
}

/// Room for multipart framing on top of the file limit.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// The uploaded file of a request: a multipart field `file`, or the raw body (`image/*`,
/// `application/octet-stream` or `application/zip`), within `uploads.max_bytes`.
pub async fn file_body(app: &Server, parts: &Parts, body: ReqBody) -> Result<Vec<u8>, ApiError> {
    let limit = app.config.uploads.max_bytes;
    let raw_ctype = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // media types compare case-insensitively; the boundary is case-sensitive
    let ctype = raw_ctype.to_ascii_lowercase();
    Ok(if ctype.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(raw_ctype).map_err(|e| {
            ApiError::bad_request(
                "invalid_multipart",
                format!("bad multipart content type: {e}"),
            )
        })?;
        let raw = read_body(parts, body, limit + MULTIPART_OVERHEAD).await?;
        multipart_file(raw, boundary, limit).await?
    } else if ctype.is_empty()
        || ctype.starts_with("image/")
        || ctype == "application/octet-stream"
        || ctype == "application/zip"
    {
        read_body(parts, body, limit).await?.to_vec()
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send the file as multipart/form-data (field `file`) or as a raw image/* body, not {ctype}"),
        ));
    })
}

async fn multipart_file(body: Bytes, boundary: String, limit: u64) -> Result<Vec<u8>, ApiError> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().for_field("file", limit));
    let mut mp = multer::Multipart::with_constraints(stream, boundary, constraints);
    let bad = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            ApiError::too_large(limit)
        }
        other => ApiError::bad_request(
            "invalid_multipart",
            format!("malformed multipart body: {other}"),
        ),
    };
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        if field.name() == Some("file") {
            return Ok(field.bytes().await.map_err(bad)?.to_vec());
        }
    }
    Err(ApiError::bad_request(
        "missing_file",
        "the multipart body has no field named `file`",
    ))
}
