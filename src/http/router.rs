//! The one route table: method + path → handler, with the route's pattern (for metrics) and
//! its path parameters. Unknown paths are 404, known paths with the wrong method 405.

use crate::http::ReqBody;
use hyper::{Method, Request, StatusCode};

use super::handlers::{
    admin, auth, billing, documents, exports, images, jobs, signup, system, web,
};
use super::respond::HttpResult;
use crate::error::ApiError;
use crate::http::Server;

/// A matched route's pattern, e.g. `/api/v1/images/{id}`; "unmatched" for misses.
pub type Pattern = &'static str;

/// Dispatches a request; returns the route pattern along with the response.
pub async fn dispatch(app: &Server, req: Request<ReqBody>) -> (Pattern, HttpResult) {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    use Method as M;
    let (pattern, result) = match (&method, segs.as_slice()) {
        (&M::GET, [""]) => ("/", web::file(app, "index.html").await),
        // the links in verification and reset mails open the studio page, which reads the token
        (&M::GET, ["verify"]) => ("/verify", web::file(app, "index.html").await),
        (&M::GET, ["reset"]) => ("/reset", web::file(app, "index.html").await),
        (&M::GET, ["assets", name]) => ("/assets/{name}", web::file(app, name).await),
        (&M::GET, ["privacy"]) => ("/privacy", web::privacy(app).await),
        (_, ["admin", rest @ ..]) => super::console::dispatch(app, req, rest).await,
        (&M::GET, ["healthz"]) => ("/healthz", system::healthz(app).await),
        (&M::GET, ["readyz"]) => ("/readyz", system::readyz(app).await),
        (&M::GET, ["metrics"]) => ("/metrics", system::metrics(app, req).await),
        (_, ["api", "v1", rest @ ..]) => match (&method, rest) {
            (&M::POST, ["auth", "login"]) => ("/api/v1/auth/login", auth::login(app, req).await),
            (&M::POST, ["auth", "logout"]) => ("/api/v1/auth/logout", auth::logout(app, req).await),
            (&M::POST, ["auth", "register"]) => {
                ("/api/v1/auth/register", signup::register(app, req).await)
            }
            (&M::POST, ["auth", "verify"]) => {
                ("/api/v1/auth/verify", signup::verify(app, req).await)
            }
            (&M::POST, ["auth", "password-reset"]) => (
                "/api/v1/auth/password-reset",
                signup::password_reset(app, req).await,
            ),
            (&M::POST, ["auth", "password-reset", "confirm"]) => (
                "/api/v1/auth/password-reset/confirm",
                signup::password_reset_confirm(app, req).await,
            ),
            (&M::POST, ["admin", "invites"]) => (
                "/api/v1/admin/invites",
                signup::create_invite(app, req).await,
            ),
            (&M::POST, ["auth", "logout-all"]) => {
                ("/api/v1/auth/logout-all", auth::logout_all(app, req).await)
            }
            (&M::GET, ["me"]) => ("/api/v1/me", auth::me(app, req).await),
            (&M::DELETE, ["me"]) => ("/api/v1/me", auth::delete_me(app, req).await),
            (&M::GET, ["openapi.json"]) => ("/api/v1/openapi.json", system::openapi().await),
            (&M::GET, ["policy"]) => ("/api/v1/policy", auth::policy(app).await),
            (&M::POST, ["me", "policy", "accept"]) => (
                "/api/v1/me/policy/accept",
                auth::accept_policy(app, req).await,
            ),
            (&M::POST, ["webhooks", "payments"]) => (
                "/api/v1/webhooks/payments",
                admin::payments_webhook(app, req).await,
            ),
            (&M::GET, ["admin", "users"]) => ("/api/v1/admin/users", admin::users(app, req).await),
            (&M::PATCH, ["admin", "users", id]) => (
                "/api/v1/admin/users/{id}",
                admin::update_user(app, req, id).await,
            ),
            (&M::DELETE, ["admin", "users", id]) => (
                "/api/v1/admin/users/{id}",
                admin::delete_user(app, req, id).await,
            ),
            (&M::GET, ["admin", "stats"]) => ("/api/v1/admin/stats", admin::stats(app, req).await),
            (&M::GET, ["admin", "audit"]) => ("/api/v1/admin/audit", admin::audit(app, req).await),
            (&M::POST, ["admin", "policies"]) => (
                "/api/v1/admin/policies",
                auth::publish_policy(app, req).await,
            ),
            (&M::GET, ["me", "consents"]) => {
                ("/api/v1/me/consents", auth::consents(app, req).await)
            }
            (&M::PUT, ["me", "consents"]) => {
                ("/api/v1/me/consents", auth::update_consents(app, req).await)
            }
            (&M::GET, ["me", "ledger"]) => ("/api/v1/me/ledger", billing::ledger(app, req).await),
            (&M::POST, ["me", "export"]) => ("/api/v1/me/export", exports::request(app, req).await),
            (&M::GET, ["me", "exports", id]) => (
                "/api/v1/me/exports/{id}",
                exports::download(app, req, id).await,
            ),
            (&M::PATCH, ["me"]) => ("/api/v1/me", auth::update_me(app, req).await),
            (&M::POST, ["me", "password"]) => {
                ("/api/v1/me/password", auth::change_password(app, req).await)
            }
            (&M::POST, ["keys"]) => ("/api/v1/keys", auth::create_key(app, req).await),
            (&M::GET, ["keys"]) => ("/api/v1/keys", auth::list_keys(app, req).await),
            (&M::DELETE, ["keys", id]) => {
                ("/api/v1/keys/{id}", auth::delete_key(app, req, id).await)
            }
            (&M::POST, ["images"]) => ("/api/v1/images", images::upload(app, req).await),
            (&M::GET, ["images"]) => ("/api/v1/images", images::list(app, req).await),
            (&M::GET, ["images", id]) => ("/api/v1/images/{id}", images::get(app, req, id).await),
            (&M::DELETE, ["images", id]) => {
                ("/api/v1/images/{id}", images::delete(app, req, id).await)
            }
            (&M::GET, ["images", id, "original"]) => (
                "/api/v1/images/{id}/original",
                images::original(app, req, id).await,
            ),
            (&M::GET, ["images", id, "thumbnail"]) => (
                "/api/v1/images/{id}/thumbnail",
                images::thumbnail(app, req, id).await,
            ),
            (&M::POST, ["images", id, "cutout"]) => (
                "/api/v1/images/{id}/cutout",
                images::request_cutout(app, req, id).await,
            ),
            (&M::GET, ["images", id, "cutout"]) => (
                "/api/v1/images/{id}/cutout",
                images::cutout(app, req, id).await,
            ),
            (&M::POST, ["images", id, "decompose"]) => (
                "/api/v1/images/{id}/decompose",
                documents::decompose(app, req, id).await,
            ),
            (&M::GET, ["documents"]) => ("/api/v1/documents", documents::list(app, req).await),
            (&M::POST, ["documents"]) => ("/api/v1/documents", documents::import(app, req).await),
            (&M::GET, ["documents", id]) => {
                ("/api/v1/documents/{id}", documents::get(app, req, id).await)
            }
            (&M::DELETE, ["documents", id]) => (
                "/api/v1/documents/{id}",
                documents::delete(app, req, id).await,
            ),
            (&M::GET, ["documents", id, "export"]) => (
                "/api/v1/documents/{id}/export",
                documents::export(app, req, id).await,
            ),
            (&M::POST, ["documents", id, "ops"]) => (
                "/api/v1/documents/{id}/ops",
                documents::ops(app, req, id).await,
            ),
            (&M::POST, ["documents", id, "undo"]) => (
                "/api/v1/documents/{id}/undo",
                documents::step(app, req, id, false).await,
            ),
            (&M::POST, ["documents", id, "redo"]) => (
                "/api/v1/documents/{id}/redo",
                documents::step(app, req, id, true).await,
            ),
            (&M::GET, ["documents", id, "layers", layer]) => (
                "/api/v1/documents/{id}/layers/{layer_id}",
                documents::layer(app, req, id, layer).await,
            ),
            (&M::GET, ["jobs"]) => ("/api/v1/jobs", jobs::list(app, req).await),
            (&M::GET, ["jobs", id]) => ("/api/v1/jobs/{id}", jobs::get(app, req, id).await),
            (&M::DELETE, ["jobs", id]) => ("/api/v1/jobs/{id}", jobs::cancel(app, req, id).await),
            (&M::GET, ["jobs", id, "events"]) => {
                ("/api/v1/jobs/{id}/events", jobs::events(app, req, id).await)
            }
            (_, p) if known_api_path(p) => ("unmatched", Err(method_not_allowed(&method))),
            _ => ("unmatched", Err(no_route(&path))),
        },
        (_, ["healthz" | "readyz" | "metrics" | "privacy" | "verify" | "reset"]) | (_, [""]) => {
            ("unmatched", Err(method_not_allowed(&method)))
        }
        _ => ("unmatched", Err(no_route(&path))),
    };
    (pattern, result)
}

fn known_api_path(p: &[&str]) -> bool {
    matches!(
        p,
        [
            "auth",
            "login" | "logout" | "logout-all" | "register" | "verify" | "password-reset"
        ] | ["auth", "password-reset", "confirm"]
            | ["admin", "invites" | "policies"]
            | ["webhooks", "payments"]
            | ["policy"]
            | ["openapi.json"]
            | ["me", "policy", "accept"]
            | ["me"]
            | ["me", "password" | "consents" | "export" | "ledger"]
            | ["me", "exports", _]
            | ["keys"]
            | ["keys", _]
            | ["images"]
            | ["images", _]
            | [
                "images",
                _,
                "original" | "thumbnail" | "cutout" | "decompose"
            ]
            | ["documents"]
            | ["documents", _]
            | ["documents", _, "export" | "ops" | "undo" | "redo"]
            | ["documents", _, "layers", _]
            | ["jobs"]
            | ["jobs", _]
            | ["jobs", _, "events"]
    )
}

fn no_route(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route for {path}; see API.md"),
    )
}

fn method_not_allowed(m: &Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{m} is not allowed here"),
    )
}

/// Parses a path id; a malformed id is simply "not found" (no oracle, no parse details).
pub fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what))
}
