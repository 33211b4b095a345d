//! The console's forms (`POST`): sign in and out, replace the password, and the member,
//! invite and policy changes. Each goes through the same services as the JSON admin API (so
//! each is in the audit log), is committed before the answer, and redirects to the page it
//! came from with a notice; a refused change shows the page again with the reason.

use hyper::header::SET_COOKIE;
use hyper::{Request, StatusCode};
use minijinja::context;
use serde::Deserialize;

use super::render::{bare, error_page};
use super::{admin_form, gate, hidden, parse_form, redirect, Gate};
use crate::admin::MemberPatch;
use crate::error::ApiError;
use crate::http::handlers::auth::cookie_header;
use crate::http::request::{is_secure, read_body, same_origin};
use crate::http::respond::HttpResult;
use crate::http::router::parse_id;
use crate::http::{blocking, ClientAddr, ReqBody, Server};
use crate::ids::UserId;
use crate::store::{Plan, Role};

use super::pages::{invites_page, password_page, policies_page};

/// Takes the admin and form of a `POST`, or returns the response that replaces it.
macro_rules! form {
    ($app:expr, $req:expr) => {
        match admin_form($app, $req).await {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

fn login_page(status: StatusCode, email: &str, error: Option<String>) -> HttpResult {
    bare(
        status,
        "admin/login.html",
        context! { title => "Sign in", email => email, error => error },
    )
}

/// `GET /admin/login`: the sign-in form (an admin already signed in goes to the overview).
pub async fn login_form(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    match gate(app, &parts).await? {
        Gate::Admin(_) => Ok(redirect("/admin")),
        Gate::ChangePassword => Ok(redirect("/admin/password")),
        Gate::SignIn => login_page(StatusCode::OK, "", None),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

/// `POST /admin/login`: signs an admin in (the same throttling as the API) and sets the
/// session cookie. A member's correct password signs nobody in here: the session is ended
/// at once and they are pointed to the studio page.
pub async fn login(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    match gate(app, &parts).await? {
        Gate::Admin(_) => return Ok(redirect("/admin")),
        Gate::ChangePassword => return Ok(redirect("/admin/password")),
        Gate::SignIn => {}
    }
    if !same_origin(&parts) {
        return Err(ApiError::forbidden(
            "cross_origin_request",
            "sign in from the console's own page",
        ));
    }
    let form: LoginForm = parse_form(&read_body(&parts, body, 16 * 1024).await?)?;
    let client = parts.extensions.get::<ClientAddr>().map(|c| c.0);
    let (token, user) = match app.auth.login(&form.email, &form.password, client).await {
        Ok(ok) => ok,
        Err(e) => {
            let e = ApiError::from(e);
            let mut r = login_page(e.status, &form.email, Some(e.message.clone()))?;
            if let Some(secs) = e.retry_after {
                r.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, secs.into());
            }
            return Ok(r);
        }
    };
    if user.role != Role::Admin {
        app.auth
            .logout(&crate::auth::tokens::sha256(&token))
            .await?;
        return login_page(
            StatusCode::FORBIDDEN,
            &form.email,
            Some("This account is not an admin's. Members sign in on the studio page.".into()),
        );
    }
    let mut r = redirect(if user.must_change_password {
        "/admin/password"
    } else {
        "/admin"
    });
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

#[derive(Deserialize)]
struct Nothing {}

/// `POST /admin/logout`: ends this session.
pub async fn logout(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let tls = req
        .extensions()
        .get::<crate::http::Secure>()
        .map_or(app.tls, |s| s.0);
    let (admin, Nothing {}) = form!(app, req);
    if let Some(session) = admin.principal.session {
        app.auth.logout(&session).await?;
    }
    let mut r = redirect("/admin/login");
    r.headers_mut()
        .insert(SET_COOKIE, cookie_header(tls, "", 0)?);
    Ok(r)
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// `POST /admin/password`: replaces the password; other sessions end, this one stays.
pub async fn password(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (admin, form): (_, PasswordForm) = form!(app, req);
    let p = &admin.principal;
    match app
        .auth
        .change_password(
            p.user.id,
            p.session,
            &form.current_password,
            &form.new_password,
        )
        .await
    {
        Ok(()) => Ok(redirect("/admin?done=password")),
        Err(e) => {
            let e = ApiError::from(e);
            password_page(&admin, e.status, Some(e.message))
        }
    }
}

/// The fields any member form may carry; each action reads its own.
#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    credits_delta: Option<String>,
    #[serde(default)]
    plan: Option<Plan>,
    #[serde(default)]
    suspended: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /admin/members/{id}/{credits|plan|suspend|delete}`.
pub async fn member(app: &Server, req: Request<ReqBody>, id: &str, action: &str) -> HttpResult {
    if !matches!(action, "credits" | "plan" | "suspend" | "delete") {
        return Err(hidden(req.uri().path()));
    }
    let (admin, form): (_, MemberForm) = form!(app, req);
    let done = async {
        let id: UserId = parse_id(id, "member")?;
        let reason = form.reason.filter(|r| !r.trim().is_empty());
        let required =
            |what: &str| ApiError::bad_request("invalid_form", format!("the form needs {what}"));
        let patch = match action {
            "credits" => {
                let raw = form.credits_delta.ok_or_else(|| required("an amount"))?;
                let delta: i64 = raw.trim().parse().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_form",
                        format!("{raw:?} is not a whole number of credits"),
                    )
                })?;
                MemberPatch {
                    credits_delta: Some(delta),
                    reason,
                    ..MemberPatch::default()
                }
            }
            "plan" => MemberPatch {
                plan: Some(form.plan.ok_or_else(|| required("a plan"))?),
                reason,
                ..MemberPatch::default()
            },
            "suspend" => MemberPatch {
                suspended: Some(form.suspended.ok_or_else(|| required("suspended"))?),
                reason,
                ..MemberPatch::default()
            },
            _ => {
                if form.confirm.is_none() {
                    return Err(required("the confirmation box ticked"));
                }
                let (service, by) = (app.admin.clone(), admin.principal.user.clone());
                blocking(move || service.delete(&by, id)).await?;
                app.store.flush().await?;
                app.privacy.notify_outbox();
                return Ok("/admin/members?done=deleted".to_string());
            }
        };
        let (service, by) = (app.admin.clone(), admin.principal.user.clone());
        let suspended = patch.suspended;
        blocking(move || service.update(&by, id, &patch)).await?;
        app.store.flush().await?;
        let done = match (action, suspended) {
            ("suspend", Some(true)) => "suspended",
            ("suspend", _) => "unsuspended",
            (other, _) => other,
        };
        Ok(format!("/admin/members/{id}?done={done}"))
    }
    .await;
    Ok(match done {
        Ok(to) => redirect(&to),
        Err(e) => error_page(&admin, &e),
    })
}

#[derive(Deserialize)]
struct InviteForm {
    plan: Plan,
}

/// `POST /admin/invites`: makes a single-use invite and shows its sign-up link once (`201`).
pub async fn invite(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (admin, form): (_, InviteForm) = form!(app, req);
    match app
        .auth
        .create_invite(&admin.principal.user, form.plan, &app.audit)
        .await
    {
        Ok(token) => {
            let link = format!(
                "{}/?invite={token}",
                app.config.mail.base_url.trim_end_matches('/')
            );
            let created = context! { link => link, token => token, plan => form.plan };
            invites_page(app, &admin, StatusCode::CREATED, Some(created)).await
        }
        Err(e) => Ok(error_page(&admin, &e.into())),
    }
}

#[derive(Deserialize)]
struct PolicyForm {
    version: String,
    body: String,
}

/// `POST /admin/policies`: publishes the next policy version (members are mailed; it takes
/// effect for them 30 days later).
pub async fn policy(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (admin, form): (_, PolicyForm) = form!(app, req);
    let Ok(version) = form.version.trim().parse::<u32>() else {
        let message = format!("{:?} is not a version number", form.version);
        return policies_page(app, &admin, StatusCode::BAD_REQUEST, Some(message), None).await;
    };
    let (privacy, by) = (app.privacy.clone(), admin.principal.user.clone());
    let published = blocking(move || privacy.publish_policy(&by, version, &form.body)).await;
    match published {
        Ok(_) => {
            app.store.flush().await?;
            app.privacy.notify_outbox();
            Ok(redirect("/admin/policies?done=published"))
        }
        Err(e) => policies_page(app, &admin, e.status, Some(e.message), None).await,
    }
}
