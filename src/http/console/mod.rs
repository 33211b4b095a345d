//! The admin console at `/admin`: server-rendered pages from the minijinja templates under
//! `web/templates/admin/` (compiled into the binary), plain HTML forms and not one script, so
//! the strict CSP holds and every page works without JavaScript.
//!
//! Only an admin's session sees it. To a signed-in member every console path is the same
//! `404 route_not_found` as a path that does not exist; a visitor without a session is sent
//! to the console's sign-in form. A change is a form `POST` that passes the same-origin check
//! the API uses and carries a CSRF token (an HMAC of the session token: nothing to store, and
//! it ends with the session), then redirects back (POST/redirect/GET). The sign-in form has
//! no session to tie a token to; the same-origin check alone guards it. The pages show
//! accounts, balances, counts, the queue and the audit log; never a member's pixels.

/// The admin behind a page request, or `return` the response that replaces the page.
macro_rules! admit {
    ($app:expr, $parts:expr) => {
        match super::admin_page($app, &$parts).await {
            Ok(admin) => admin,
            Err(response) => return response,
        }
    };
}

mod actions;
mod charts;
mod pages;
mod render;

use hmac::{Hmac, Mac};
use hyper::header::{HeaderValue, LOCATION};
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::request::{authenticate, cookie, is_secure, read_body, session_cookie_name};
use crate::http::respond::{empty, HttpResult};
use crate::http::router::Pattern;
use crate::http::{ReqBody, Server};
use crate::store::Role;

/// Dispatches `/admin/…` (`rest` is the path after `admin`).
pub async fn dispatch(app: &Server, req: Request<ReqBody>, rest: &[&str]) -> (Pattern, HttpResult) {
    use Method as M;
    let method = req.method().clone();
    let (pattern, result) = match (&method, rest) {
        (&M::GET, ["login"]) => ("/admin/login", actions::login_form(app, req).await),
        (&M::POST, ["login"]) => ("/admin/login", actions::login(app, req).await),
        (&M::POST, ["logout"]) => ("/admin/logout", actions::logout(app, req).await),
        (&M::GET, ["password"]) => ("/admin/password", pages::password(app, req).await),
        (&M::POST, ["password"]) => ("/admin/password", actions::password(app, req).await),
        (&M::GET, [] | [""]) => ("/admin", pages::overview(app, req).await),
        (&M::GET, ["members"]) => ("/admin/members", pages::members(app, req).await),
        (&M::GET, ["members", id]) => ("/admin/members/{id}", pages::member(app, req, id).await),
        (&M::POST, ["members", id, action]) => (
            "/admin/members/{id}/{action}",
            actions::member(app, req, id, action).await,
        ),
        (&M::GET, ["invites"]) => ("/admin/invites", pages::invites(app, req).await),
        (&M::POST, ["invites"]) => ("/admin/invites", actions::invite(app, req).await),
        (&M::GET, ["usage"]) => ("/admin/usage", pages::usage(app, req).await),
        (&M::GET, ["jobs"]) => ("/admin/jobs", pages::jobs(app, req).await),
        (&M::GET, ["retention"]) => ("/admin/retention", pages::retention(app, req).await),
        (&M::GET, ["audit"]) => ("/admin/audit", pages::audit(app, req).await),
        (&M::GET, ["policies"]) => ("/admin/policies", pages::policies(app, req).await),
        (&M::POST, ["policies"]) => ("/admin/policies", actions::policy(app, req).await),
        _ => ("unmatched", Err(hidden(req.uri().path()))),
    };
    (pattern, result)
}

/// The answer to anyone who may not see the console: what an unknown path answers.
fn hidden(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route for {path}; see API.md"),
    )
}

/// The admin behind a console request, with the CSRF token of their session.
pub struct Admin {
    pub principal: Principal,
    pub csrf: String,
}

/// Who is asking: an admin, nobody (no session), an admin who must first replace a
/// one-time password; anyone else gets the hidden 404.
enum Gate {
    Admin(Box<Admin>),
    SignIn,
    ChangePassword,
}

/// Resolves the session of a console request. A member (or an API key) gets the hidden 404.
async fn gate(app: &Server, parts: &Parts) -> Result<Gate, ApiError> {
    let Some(token) = cookie(parts, session_cookie_name(is_secure(app, parts))).map(str::to_string)
    else {
        return if parts.headers.contains_key(hyper::header::AUTHORIZATION) {
            Err(hidden(parts.uri.path()))
        } else {
            Ok(Gate::SignIn)
        };
    };
    match authenticate(app, parts).await {
        Ok(p) if p.user.role == Role::Admin => Ok(Gate::Admin(Box::new(Admin {
            csrf: csrf_token(&token),
            principal: p,
        }))),
        Ok(_) => Err(hidden(parts.uri.path())),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Ok(Gate::SignIn),
        Err(e) if e.code == "password_change_required" => Ok(Gate::ChangePassword),
        Err(e) => Err(e),
    }
}

/// The admin behind a page request, or the response that replaces the page: a redirect to
/// the sign-in form or to the password form, or the hidden 404.
pub async fn admin_page(app: &Server, parts: &Parts) -> Result<Admin, HttpResult> {
    match gate(app, parts).await {
        Ok(Gate::Admin(admin)) => Ok(*admin),
        Ok(Gate::SignIn) => Err(Ok(redirect("/admin/login"))),
        Ok(Gate::ChangePassword) => Err(Ok(redirect("/admin/password"))),
        Err(e) => Err(Err(e)),
    }
}

/// The admin behind a form `POST`, after the same-origin check (in `authenticate`) and the
/// CSRF token; the form's fields parsed as `T`.
pub async fn admin_form<T: DeserializeOwned>(
    app: &Server,
    req: Request<ReqBody>,
) -> Result<(Admin, T), HttpResult> {
    let (parts, body) = req.into_parts();
    let admin = admin_page(app, &parts).await?;
    let form = async {
        let raw = read_body(&parts, body, 256 * 1024).await?;
        check_csrf(&admin, &raw)?;
        parse_form(&raw)
    }
    .await;
    match form {
        Ok(form) => Ok((admin, form)),
        Err(e) => Err(Ok(render::error_page(&admin, &e))),
    }
}

/// A page, or the error page an admin sees instead (its status kept).
fn shown(
    admin: &Admin,
    r: Result<hyper::Response<crate::http::respond::Body>, ApiError>,
) -> HttpResult {
    Ok(r.unwrap_or_else(|e| render::error_page(admin, &e)))
}

/// The CSRF token of a session: HMAC-SHA256 keyed by the session token. It reveals nothing
/// about the token and needs no storage.
fn csrf_token(session: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(session.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"image-layered admin console csrf v1");
    hex::encode(mac.finalize().into_bytes())
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

fn check_csrf(admin: &Admin, raw: &[u8]) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;
    let given: CsrfField = serde_urlencoded::from_bytes(raw).unwrap_or(CsrfField {
        csrf: String::new(),
    });
    if given.csrf.as_bytes().ct_eq(admin.csrf.as_bytes()).into() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "csrf_failed",
            "this form is out of date (or did not come from the console): reload the page and try again",
        ))
    }
}

/// Parses an `application/x-www-form-urlencoded` body; extra fields (the CSRF token, the
/// button) are ignored.
fn parse_form<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(raw)
        .map_err(|e| ApiError::bad_request("invalid_form", format!("the form is incomplete: {e}")))
}

/// `303 See Other` to `to` (a console path).
fn redirect(to: &str) -> hyper::Response<crate::http::respond::Body> {
    let mut r = empty(StatusCode::SEE_OTHER);
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_depends_on_the_session_and_does_not_contain_it() {
        let a = csrf_token("session-a");
        assert_eq!(a, csrf_token("session-a"));
        assert_ne!(a, csrf_token("session-b"));
        assert_eq!(a.len(), 64);
        assert!(!a.contains("session"));
    }

    #[test]
    fn forms_parse_and_ignore_extra_fields() {
        #[derive(serde::Deserialize)]
        struct F {
            credits_delta: i64,
            reason: String,
        }
        let f: F = parse_form(b"csrf=x&credits_delta=-5&reason=sorry+about+that%21&go=").unwrap();
        assert_eq!(
            (f.credits_delta, f.reason.as_str()),
            (-5, "sorry about that!")
        );
        let e = parse_form::<F>(b"credits_delta=abc&reason=x")
            .err()
            .unwrap();
        assert_eq!(e.code, "invalid_form");
    }
}
