//! The admin JSON API (`/api/v1/admin/…`): members, credits, plans, suspension, deletion,
//! usage statistics and the audit log. To anyone but an admin these routes do not exist
//! (`404 route_not_found`, as for an unknown path).

use crate::http::ReqBody;
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};

use crate::admin::{member_json, MemberPatch};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::blocking;
use crate::http::request::{authenticate, parse_json, query, read_body};
use crate::http::respond::{json, HttpResult};
use crate::http::router::parse_id;
use crate::http::Server;
use crate::ids::UserId;
use crate::store::Role;

/// The admin behind the request; anyone else gets the same 404 as an unknown route.
pub async fn require_admin(app: &Server, parts: &Parts) -> Result<Principal, ApiError> {
    let p = authenticate(app, parts).await.map_err(|e| {
        if e.status == StatusCode::UNAUTHORIZED {
            hidden(parts)
        } else {
            e
        }
    })?;
    if p.user.role == Role::Admin {
        Ok(p)
    } else {
        Err(hidden(parts))
    }
}

fn hidden(parts: &Parts) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route for {}; see API.md", parts.uri.path()),
    )
}

/// `GET /api/v1/admin/users?q=`: members (search by email or name) with their balance.
pub async fn users(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    require_admin(app, &parts).await?;
    let q = query(&parts, "q");
    let admin = app.admin.clone();
    let members = blocking(move || admin.members(q.as_deref())).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "users": members.iter().map(|(u, c)| member_json(u, *c)).collect::<Vec<_>>()
        }),
    ))
}

/// `PATCH /api/v1/admin/users/{id}` `{plan?,credits_delta?,reason?,suspended?}`.
pub async fn update_user(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = require_admin(app, &parts).await?;
    let id: UserId = parse_id(id, "member")?;
    let patch: MemberPatch = parse_json(&read_body(&parts, body, 16 * 1024).await?)?;
    let admin = app.admin.clone();
    let (user, credits) = blocking(move || admin.update(&p.user, id, &patch)).await?;
    app.store.flush().await?;
    Ok(json(StatusCode::OK, &member_json(&user, credits)))
}

/// `DELETE /api/v1/admin/users/{id}`: deletes the member as P5 does; `202 {receipt}`.
pub async fn delete_user(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = require_admin(app, &parts).await?;
    let id: UserId = parse_id(id, "member")?;
    let admin = app.admin.clone();
    let receipt = blocking(move || admin.delete(&p.user, id)).await?;
    app.store.flush().await?;
    app.privacy.notify_outbox();
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "receipt": receipt }),
    ))
}

/// `GET /api/v1/admin/stats`: usage by plan and day, never a group below the minimum size.
pub async fn stats(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    require_admin(app, &parts).await?;
    let admin = app.admin.clone();
    let stats = blocking(move || admin.stats()).await?;
    Ok(json(StatusCode::OK, &stats))
}

/// `GET /api/v1/admin/audit?after=`: up to 100 entries after sequence number `after`.
pub async fn audit(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    require_admin(app, &parts).await?;
    let after = match query(&parts, "after") {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_after", "after must be a whole number"))?,
    };
    let audit = app.audit.clone();
    let entries = blocking(move || audit.entries(after, 100)).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "entries": entries }),
    ))
}

/// `POST /api/v1/webhooks/payments`: a payment provider's event, signed Stripe-style
/// (`crate::billing::payments`). A bad or stale signature is `400 bad_signature` and changes
/// nothing; an event seen before is `200` and changes nothing; the effect is committed
/// before the `200`.
pub async fn payments_webhook(app: &Server, req: Request<ReqBody>) -> HttpResult {
    use crate::billing::payments;
    let (parts, body) = req.into_parts();
    let raw = read_body(&parts, body, 64 * 1024).await?;
    let secret = app.config.payments.webhook_secret.expose().to_string();
    if secret.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "payments_not_configured",
            "this studio takes no payments (payments.webhook_secret is not set)",
        ));
    }
    let header = parts
        .headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    payments::verify(&secret, header, &raw, app.now())
        .map_err(|e| ApiError::bad_request("bad_signature", e.to_string()))?;
    let event: serde_json::Value = parse_json(&raw)?;
    let (id, action) =
        payments::parse(&event).map_err(|m| ApiError::bad_request("invalid_event", m))?;
    let admin = app.admin.clone();
    let applied = blocking(move || admin.apply_payment(&id, &action)).await?;
    app.store.flush().await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "received": true, "applied": applied }),
    ))
}
