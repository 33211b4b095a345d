//! Sign-in, sign-out, the current member, and API keys.

use crate::http::ReqBody;
use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::{Request, StatusCode};
use serde::Deserialize;

use crate::audit::Actor;
use crate::auth::ProfileUpdate;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::http::request::{authenticate, is_secure, parse_json, read_body, session_cookie_name};
use crate::http::respond::{empty, json, HttpResult};
use crate::http::router::parse_id;
use crate::http::{blocking, ClientAddr, Server};
use crate::ids::ApiKeyId;
use crate::privacy::ConsentUpdate;
use crate::views::{consents_json, me_json};

const SMALL_BODY: u64 = 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

/// The session cookie for `value` (empty with `max_age` 0: removed), `Secure` and
/// `__Host-` when the request came over TLS (ours or a trusted proxy's).
pub(crate) fn cookie_header(tls: bool, value: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        session_cookie_name(tls)
    ))
    .map_err(|e| ApiError::internal("cookie", e))
}

pub async fn login(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    if crate::http::request::cross_site(&parts) {
        return Err(ApiError::forbidden(
            "cross_origin_request",
            "sign in from the studio's own page",
        ));
    }
    let body: LoginBody = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    let client = parts.extensions.get::<ClientAddr>().map(|c| c.0);
    let (token, user) = app.auth.login(&body.email, &body.password, client).await?;
    let mut r = json(StatusCode::OK, &me_json(&user));
    r.headers_mut().insert(
        SET_COOKIE,
        cookie_header(
            is_secure(app, &parts),
            &token,
            app.auth.session_cookie_max_age(),
        )?,
    );
    Ok(r)
}

pub async fn logout(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let principal = authenticate(app, &parts).await?;
    if let Some(session) = principal.session {
        app.auth.logout(&session).await?;
    }
    let mut r = empty(StatusCode::NO_CONTENT);
    r.headers_mut()
        .insert(SET_COOKIE, cookie_header(is_secure(app, &parts), "", 0)?);
    Ok(r)
}

/// `POST /api/v1/auth/logout-all`: ends every session of the member, this one too.
pub async fn logout_all(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    app.auth.logout_all(p.user.id).await?;
    let mut r = empty(StatusCode::NO_CONTENT);
    r.headers_mut()
        .insert(SET_COOKIE, cookie_header(is_secure(app, &parts), "", 0)?);
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/me/password`: checks the current password, sets the new one and ends every
/// other session (this one stays signed in).
pub async fn change_password(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let body: PasswordBody = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    app.auth
        .change_password(
            p.user.id,
            p.session,
            &body.current_password,
            &body.new_password,
        )
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `GET /api/v1/me/consents`: every consent (off until turned on) and their history.
pub async fn consents(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let privacy = app.privacy.clone();
    let rec = blocking(move || privacy.consents(p.user.id)).await?;
    Ok(json(StatusCode::OK, &consents_json(&rec)))
}

/// `PUT /api/v1/me/consents` `{training?,analytics?,marketing?}`: the ones named change;
/// every change is kept in the history.
pub async fn update_consents(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let update: ConsentUpdate = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    let privacy = app.privacy.clone();
    let actor = Actor::of(&p.user);
    let rec = blocking(move || privacy.update_consents(actor, p.user.id, &update)).await?;
    app.store.flush().await?;
    Ok(json(StatusCode::OK, &consents_json(&rec)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    password: String,
}

/// `DELETE /api/v1/me` `{password}`: `202 {receipt}`; at once the sessions, API keys and data
/// key are gone and sign-in fails; the sweep purges the files by `receipt.purge_by`; the
/// receipt is mailed too.
pub async fn delete_me(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let body: DeleteBody = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    app.auth.confirm_password(p.user.id, &body.password).await?;
    let privacy = app.privacy.clone();
    let user = p.user.clone();
    let receipt = blocking(move || privacy.delete_account(&user)).await?;
    app.store.flush().await?;
    app.privacy.notify_outbox();
    let mut r = json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "receipt": receipt }),
    );
    r.headers_mut()
        .insert(SET_COOKIE, cookie_header(is_secure(app, &parts), "", 0)?);
    Ok(r)
}

pub async fn me(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    me_view(app, &p.user).await
}

/// The member as `GET /api/v1/me` shows them, with their policy state.
async fn me_view(app: &Server, user: &crate::store::UserRecord) -> HttpResult {
    let (privacy, billing, now) = (app.privacy.clone(), app.billing.clone(), app.now());
    let u = user.clone();
    let (policy, credits) = blocking(move || {
        billing.grant_current(&u, now)?;
        Ok::<_, ApiError>((privacy.policy_of(&u)?, billing.balance(u.id)?))
    })
    .await?;
    let mut v = me_json(user);
    v["policy"] = policy;
    v["credits"] = credits.into();
    v["last_active_at"] = rfc3339(user.last_active_at).into();
    Ok(json(StatusCode::OK, &v))
}

/// `PATCH /api/v1/me` `{name?,email?}`: rectification. A name changes at once; a new email
/// is mailed a link and shows as `pending_email` until that link is used.
pub async fn update_me(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let update: ProfileUpdate = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    let user = app.auth.update_profile(&p.user, update, &app.audit).await?;
    me_view(app, &user).await
}

/// `GET /api/v1/policy` (public): the version in effect.
pub async fn policy(app: &Server) -> HttpResult {
    let privacy = app.privacy.clone();
    let state = blocking(move || privacy.policy_state()).await?;
    let effective_at = if state.current == 1 {
        serde_json::Value::Null
    } else {
        rfc3339(state.current_effective_at).into()
    };
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "version": state.current, "effective_at": effective_at, "url": "/privacy",
            // what the sign-up form needs to know before anyone signs in
            "registration": app.config.accounts.registration,
            "min_age": app.config.accounts.min_age,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    version: u32,
}

/// `POST /api/v1/me/policy/accept` `{version}`.
pub async fn accept_policy(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let body: AcceptBody = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    let privacy = app.privacy.clone();
    let user = blocking(move || {
        let user = privacy.accept_policy(&p.user, body.version)?;
        let policy = privacy.policy_of(&user)?;
        Ok::<_, crate::privacy::PrivacyError>(policy)
    })
    .await?;
    app.store.flush().await?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "policy": user })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    version: u32,
    body: String,
}

/// `POST /api/v1/admin/policies` `{version,body}`: publishes the next version (admins only;
/// anyone else gets the 404 of a route that is not there); every member is told by mail.
pub async fn publish_policy(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let body: PublishBody = parse_json(&read_body(&parts, body, 256 * 1024).await?)?;
    let privacy = app.privacy.clone();
    let rec = blocking(move || privacy.publish_policy(&p.user, body.version, &body.body)).await?;
    app.store.flush().await?;
    app.privacy.notify_outbox();
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({"version": rec.version, "effective_at": rfc3339(rec.effective_at)}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    name: String,
}

pub async fn create_key(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let body: KeyBody = parse_json(&read_body(&parts, body, SMALL_BODY).await?)?;
    let (rec, key) = app.auth.create_api_key(p.user.id, &body.name).await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({
            "id": rec.id, "name": rec.name, "key": key, "created_at": rfc3339(rec.created_at),
        }),
    ))
}

pub async fn list_keys(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let auth = app.auth.clone();
    let owner = p.user.id;
    let keys: Vec<_> = blocking(move || auth.list_api_keys(owner))
        .await?
        .into_iter()
        .map(|k| {
            serde_json::json!({
                "id": k.id, "name": k.name, "created_at": rfc3339(k.created_at),
                "last_used_at": k.last_used_at.map(rfc3339),
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "keys": keys })))
}

pub async fn delete_key(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ApiKeyId = parse_id(id, "API key")?;
    app.auth.delete_api_key(p.user.id, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
