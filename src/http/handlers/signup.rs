//! Sign-up, email verification, password reset by mail, and admins' invites.

use crate::http::ReqBody;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use crate::auth::SignUp;
use crate::http::request::{authenticate, parse_json, read_body};
use crate::http::respond::{empty, json, HttpResult};
use crate::http::Server;
use crate::store::Plan;

const SMALL_BODY: u64 = 16 * 1024;

/// `POST /api/v1/auth/register`: `201 {id,email,verified:false}` and a verification mail.
pub async fn register(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let signup: SignUp = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    let user = app.auth.register(signup).await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({"id": user.id, "email": user.email, "verified": user.verified}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    token: String,
}

/// `POST /api/v1/auth/verify` `{token}`: confirms the address the link was sent to.
pub async fn verify(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let body: TokenBody = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    let user = app.auth.verify_email(&body.token).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"id": user.id, "email": user.email, "verified": user.verified}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    email: String,
}

/// `POST /api/v1/auth/password-reset` `{email}`: `202` whether or not the email has an
/// account; a member gets a link by mail.
pub async fn password_reset(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let body: ResetRequest = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    app.auth.request_password_reset(&body.email).await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({"status": "if the address has an account, a link is on its way"}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetConfirm {
    token: String,
    password: String,
}

/// `POST /api/v1/auth/password-reset/confirm` `{token,password}`: `204`; every session of
/// the member ends.
pub async fn password_reset_confirm(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let body: ResetConfirm = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    app.auth
        .confirm_password_reset(&body.token, &body.password)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    /// Who the invite is for, as API.md names it; an invite is not tied to it (whoever
    /// holds the token may use it once), so it is checked and not stored.
    #[serde(default)]
    email: Option<String>,
    #[serde(default = "free")]
    plan: Plan,
}

fn free() -> Plan {
    Plan::Free
}

/// `POST /api/v1/admin/invites` `{email?,plan}`: `201 {token}` (admins only; anyone else
/// gets the 404 of a route that is not there).
pub async fn create_invite(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let body: InviteBody = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    if let Some(email) = &body.email {
        crate::auth::validate_email(email)
            .map_err(|m| crate::error::ApiError::bad_request("invalid_email", m))?;
    }
    let token = app
        .auth
        .create_invite(&p.user, body.plan, &app.audit)
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({"token": token, "plan": body.plan}),
    ))
}
