//! The OpenAPI 3.1 description of every route (`GET /api/v1/openapi.json`), built from one
//! table ([`ROUTES`]): method, path, summary, who may call it, its body, its success answer
//! and the error codes it can give. A test reads the route tables' source (the router's and
//! the admin console's) and fails when a route is missing here or this table names one they
//! do not have.

use serde_json::{json, Map, Value};

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Public,
    Member,
    Admin,
}

/// What a route takes.
#[derive(Clone, Copy)]
enum In {
    None,
    /// A JSON body with these schema properties (`name: type`, `?` for optional).
    Json(&'static [&'static str]),
    /// A file: multipart `file` or a raw body.
    File,
    /// An HTML form (`application/x-www-form-urlencoded`) with these fields, as `Json`.
    Form(&'static [&'static str]),
}

/// What a route answers on success: status, media type, schema (a component name or "").
type Out = (u16, &'static str, &'static str);

struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    who: Who,
    body: In,
    ok: Out,
    errors: &'static [&'static str],
}

const JSON: &str = "application/json";
const HTML: &str = "text/html";

macro_rules! r {
    ($m:literal $p:literal, $s:literal, $who:ident, $body:expr, $ok:expr, [$($e:literal),*]) => {
        Route { method: $m, path: $p, summary: $s, who: Who::$who, body: $body, ok: $ok,
            errors: &[$($e),*] }
    };
}

/// Every route of the router (see the module note for how this is kept true).
const ROUTES: &[Route] = &[
    r!("get" "/", "The studio page", Public, In::None, (200, "text/html", ""), []),
    r!("get" "/verify", "The studio page, opened from a verification link", Public, In::None, (200, "text/html", ""), []),
    r!("get" "/reset", "The studio page, opened from a password-reset link", Public, In::None, (200, "text/html", ""), []),
    r!("get" "/assets/{name}", "A file of the studio page", Public, In::None, (200, "application/octet-stream", ""), ["route_not_found"]),
    r!("get" "/privacy", "The privacy policy, from the configured numbers", Public, In::None, (200, "text/html", ""), []),
    r!("get" "/healthz", "Liveness", Public, In::None, (200, JSON, ""), []),
    r!("get" "/readyz", "Readiness: the models are loaded", Public, In::None, (200, JSON, ""), ["not_ready"]),
    r!("get" "/metrics", "Prometheus metrics (loopback, or server.metrics_token as a bearer token)", Public, In::None, (200, "text/plain", ""), ["route_not_found"]),
    r!("get" "/api/v1/openapi.json", "This description", Public, In::None, (200, JSON, ""), []),
    r!("post" "/api/v1/auth/login", "Sign in; sets the session cookie", Public, In::Json(&["email: string", "password: string"]), (200, JSON, "Me"), ["invalid_credentials", "rate_limited", "account_suspended", "invalid_json"]),
    r!("post" "/api/v1/auth/logout", "Sign out", Member, In::None, (204, "", ""), ["unauthorized"]),
    r!("post" "/api/v1/auth/logout-all", "End every session of the member", Member, In::None, (204, "", ""), ["unauthorized"]),
    r!("post" "/api/v1/auth/register", "Sign up (age gate; by invite or open)", Public, In::Json(&["email: string", "password: string", "name: string", "age_confirmed: boolean", "invite?: string"]), (201, JSON, ""), ["age_required", "registration_closed", "invite_required", "conflict", "invalid_password", "invalid_json"]),
    r!("post" "/api/v1/auth/verify", "Confirm an address (sign-up or email change)", Public, In::Json(&["token: string"]), (200, JSON, ""), ["invalid_token", "conflict"]),
    r!("post" "/api/v1/auth/password-reset", "Mail a reset link (the same answer for unknown emails)", Public, In::Json(&["email: string"]), (202, "", ""), ["invalid_json"]),
    r!("post" "/api/v1/auth/password-reset/confirm", "Set a new password with a reset link", Public, In::Json(&["token: string", "password: string"]), (204, "", ""), ["invalid_token", "invalid_password"]),
    r!("get" "/api/v1/me", "The member, with credits and policy state", Member, In::None, (200, JSON, "Me"), ["unauthorized", "password_change_required"]),
    r!("patch" "/api/v1/me", "Change name or email (a new email applies once confirmed)", Member, In::Json(&["name?: string", "email?: string"]), (200, JSON, "Me"), ["unauthorized", "conflict", "invalid_name", "invalid_request"]),
    r!("delete" "/api/v1/me", "Delete the account (receipt; purge by the sweep)", Member, In::Json(&["password: string"]), (202, JSON, "Receipt"), ["unauthorized", "wrong_password", "rate_limited"]),
    r!("post" "/api/v1/me/password", "Change the password; ends every other session", Member, In::Json(&["current_password: string", "new_password: string"]), (204, "", ""), ["unauthorized", "wrong_password", "invalid_password", "rate_limited"]),
    r!("get" "/api/v1/me/consents", "Consents and their history", Member, In::None, (200, JSON, "Consents"), ["unauthorized"]),
    r!("put" "/api/v1/me/consents", "Change consents", Member, In::Json(&["training?: boolean", "analytics?: boolean", "marketing?: boolean"]), (200, JSON, "Consents"), ["unauthorized", "invalid_json"]),
    r!("get" "/api/v1/me/ledger", "The credit ledger, newest first", Member, In::None, (200, JSON, "Ledger"), ["unauthorized"]),
    r!("post" "/api/v1/me/export", "Export my data: a job that builds a ZIP", Member, In::None, (202, JSON, "JobAccepted"), ["unauthorized", "queue_full"]),
    r!("get" "/api/v1/me/exports/{id}", "Download a data export", Member, In::None, (200, "application/zip", ""), ["unauthorized", "not_found", "too_many_downloads"]),
    r!("post" "/api/v1/me/policy/accept", "Accept a policy version", Member, In::Json(&["version: integer"]), (200, JSON, ""), ["unauthorized", "invalid_request"]),
    r!("get" "/api/v1/policy", "The policy version in effect, sign-up mode and minimum age", Public, In::None, (200, JSON, ""), []),
    r!("post" "/api/v1/keys", "Create an API key (shown once)", Member, In::Json(&["name: string"]), (201, JSON, ""), ["unauthorized", "invalid_name"]),
    r!("get" "/api/v1/keys", "The member's API keys", Member, In::None, (200, JSON, ""), ["unauthorized"]),
    r!("delete" "/api/v1/keys/{id}", "Revoke an API key", Member, In::None, (204, "", ""), ["unauthorized", "not_found"]),
    r!("post" "/api/v1/images", "Upload an image: PNG, JPEG, WebP, TIFF (first page), BMP or GIF (first frame), recognised from its bytes", Member, In::File, (201, JSON, "Image"), ["unauthorized", "payload_too_large", "unsupported_media_type", "empty_upload", "image_too_large", "truncated_image", "undecodable_image", "storage_full", "invalid_multipart", "busy"]),
    r!("get" "/api/v1/images", "The member's images", Member, In::None, (200, JSON, ""), ["unauthorized"]),
    r!("get" "/api/v1/images/{id}", "One image", Member, In::None, (200, JSON, "Image"), ["unauthorized", "not_found"]),
    r!("delete" "/api/v1/images/{id}", "Delete an image with its documents", Member, In::None, (204, "", ""), ["unauthorized", "not_found"]),
    r!("get" "/api/v1/images/{id}/original", "The original bytes", Member, In::None, (200, "application/octet-stream", ""), ["unauthorized", "not_found", "too_many_downloads"]),
    r!("get" "/api/v1/images/{id}/thumbnail", "The 256 px thumbnail", Member, In::None, (200, "image/png", ""), ["unauthorized", "not_found", "too_many_downloads"]),
    r!("post" "/api/v1/images/{id}/cutout", "Queue background removal (paid)", Member, In::None, (202, JSON, "JobAccepted"), ["unauthorized", "not_found", "insufficient_credits", "queue_full", "models_not_ready"]),
    r!("get" "/api/v1/images/{id}/cutout", "The cutout (RGBA PNG)", Member, In::None, (200, "image/png", ""), ["unauthorized", "not_found", "too_many_downloads"]),
    r!("post" "/api/v1/images/{id}/decompose", "Queue a decomposition into layers (paid)", Member, In::Json(&["mode?: string", "layers?: string"]), (202, JSON, "JobAccepted"), ["unauthorized", "not_found", "insufficient_credits", "queue_full", "invalid_mode", "invalid_layers"]),
    r!("get" "/api/v1/documents", "The member's documents", Member, In::None, (200, JSON, ""), ["unauthorized"]),
    r!("post" "/api/v1/documents", "Import a PSD or OpenRaster file as a document", Member, In::File, (201, JSON, "Document"), ["unauthorized", "payload_too_large", "unsupported_import", "unreadable_import", "busy"]),
    r!("get" "/api/v1/documents/{id}", "A document with its layers", Member, In::None, (200, JSON, "Document"), ["unauthorized", "not_found"]),
    r!("delete" "/api/v1/documents/{id}", "Delete a document with its layers and history", Member, In::None, (204, "", ""), ["unauthorized", "not_found"]),
    r!("get" "/api/v1/documents/{id}/export", "Export as png, jpeg, webp, zip, ora or psd (?format=)", Member, In::None, (200, "application/octet-stream", ""), ["unauthorized", "not_found", "invalid_format", "too_many_requests", "busy"]),
    r!("post" "/api/v1/documents/{id}/ops", "Apply an edit (slow ones answer 202 with a job)", Member, In::Json(&["op: string", "revision?: integer"]), (200, JSON, "Document"), ["unauthorized", "not_found", "stale_revision", "invalid_op", "insufficient_credits", "too_many_requests", "busy"]),
    r!("post" "/api/v1/documents/{id}/undo", "Undo the last edit", Member, In::Json(&["revision?: integer"]), (200, JSON, "Document"), ["unauthorized", "not_found", "nothing_to_undo", "stale_revision", "too_many_requests", "busy"]),
    r!("post" "/api/v1/documents/{id}/redo", "Redo the last undone edit", Member, In::Json(&["revision?: integer"]), (200, JSON, "Document"), ["unauthorized", "not_found", "nothing_to_redo", "stale_revision", "too_many_requests", "busy"]),
    r!("get" "/api/v1/documents/{id}/layers/{layer_id}", "One layer as a full-canvas RGBA PNG", Member, In::None, (200, "image/png", ""), ["unauthorized", "not_found", "too_many_downloads"]),
    r!("get" "/api/v1/jobs", "The member's processing history, newest first", Member, In::None, (200, JSON, ""), ["unauthorized"]),
    r!("get" "/api/v1/jobs/{id}", "One job", Member, In::None, (200, JSON, "Job"), ["unauthorized", "not_found"]),
    r!("delete" "/api/v1/jobs/{id}", "Cancel a running job (202) or delete a finished one's record (204)", Member, In::None, (202, JSON, "Job"), ["unauthorized", "not_found"]),
    r!("get" "/api/v1/jobs/{id}/events", "A job's progress as server-sent events", Member, In::None, (200, "text/event-stream", ""), ["unauthorized", "not_found"]),
    r!("post" "/api/v1/webhooks/payments", "The payment provider's signed events", Public, In::Json(&["id: string", "type: string", "data: object"]), (200, JSON, ""), ["bad_signature", "invalid_event", "payments_not_configured"]),
    r!("post" "/api/v1/admin/invites", "Make a single-use invite", Admin, In::Json(&["plan?: string", "email?: string"]), (201, JSON, ""), ["route_not_found"]),
    r!("post" "/api/v1/admin/policies", "Publish a policy version", Admin, In::Json(&["version: integer", "body: string"]), (201, JSON, ""), ["route_not_found", "invalid_request"]),
    r!("get" "/api/v1/admin/users", "Members with plan and balance (?q= to search)", Admin, In::None, (200, JSON, ""), ["route_not_found"]),
    r!("patch" "/api/v1/admin/users/{id}", "Change a member's plan, credits or suspension", Admin, In::Json(&["plan?: string", "credits_delta?: integer", "reason?: string", "suspended?: boolean"]), (200, JSON, ""), ["route_not_found", "not_found", "invalid_request", "insufficient_credits"]),
    r!("delete" "/api/v1/admin/users/{id}", "Delete a member (as P5)", Admin, In::None, (202, JSON, "Receipt"), ["route_not_found", "not_found", "invalid_request"]),
    r!("get" "/api/v1/admin/stats", "Usage by plan and day, never a small group", Admin, In::None, (200, JSON, ""), ["route_not_found"]),
    r!("get" "/api/v1/admin/audit", "The audit log (?after=)", Admin, In::None, (200, JSON, ""), ["route_not_found", "invalid_after"]),
    // the admin console: HTML pages and forms (every form also carries `csrf`)
    r!("get" "/admin", "Console: overview", Admin, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("get" "/admin/login", "Console: the sign-in form", Public, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("post" "/admin/login", "Console: sign in (303 to /admin)", Public, In::Form(&["email: string", "password: string"]), (303, "", ""), ["invalid_credentials", "rate_limited", "cross_origin_request"]),
    r!("post" "/admin/logout", "Console: sign out", Admin, In::Form(&[]), (303, "", ""), ["route_not_found", "csrf_failed"]),
    r!("get" "/admin/password", "Console: the password form", Admin, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("post" "/admin/password", "Console: change the password", Admin, In::Form(&["current_password: string", "new_password: string"]), (303, "", ""), ["route_not_found", "csrf_failed", "wrong_password", "invalid_password"]),
    r!("get" "/admin/members", "Console: members (?q= to search)", Admin, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("get" "/admin/members/{id}", "Console: one member, balance and ledger", Admin, In::None, (200, HTML, ""), ["route_not_found", "not_found"]),
    r!("post" "/admin/members/{id}/{action}", "Console: credits, plan, suspend or delete", Admin, In::Form(&["credits_delta?: integer", "plan?: string", "suspended?: boolean", "reason?: string", "confirm?: string"]), (303, "", ""), ["route_not_found", "csrf_failed", "invalid_form", "not_found", "invalid_request"]),
    r!("get" "/admin/invites", "Console: open invites", Admin, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("post" "/admin/invites", "Console: make an invite (its link shown once)", Admin, In::Form(&["plan: string"]), (201, HTML, ""), ["route_not_found", "csrf_failed", "invalid_form"]),
    r!("get" "/admin/usage", "Console: usage charts (never a small group)", Admin, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("get" "/admin/jobs", "Console: the queue and the models", Admin, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("get" "/admin/retention", "Console: the next sweep and what is due this week", Admin, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("get" "/admin/audit", "Console: the audit log (?before=)", Admin, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("get" "/admin/policies", "Console: policy versions", Admin, In::None, (200, HTML, ""), ["route_not_found"]),
    r!("post" "/admin/policies", "Console: publish a policy version", Admin, In::Form(&["version: integer", "body: string"]), (303, "", ""), ["route_not_found", "csrf_failed", "invalid_request"]),
];

fn object(props: &[(&str, &str)]) -> Value {
    let mut p = Map::new();
    for (name, ty) in props {
        p.insert(name.to_string(), type_schema(ty));
    }
    json!({"type": "object", "properties": p})
}

fn type_schema(ty: &str) -> Value {
    match ty {
        "string" | "integer" | "boolean" | "number" | "object" | "array" => json!({"type": ty}),
        _ => json!({"type": ["string", "null"]}),
    }
}

fn components() -> Value {
    let o = object;
    json!({
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": o(&[("code", "string"), ("message", "string")])}},
            "Me": o(&[("id", "string"), ("email", "string"), ("name", "string"), ("role", "string"), ("plan", "string"), ("credits", "integer"), ("verified", "boolean"), ("pending_email", "nullable"), ("policy", "object"), ("last_active_at", "string")]),
            "Image": o(&[("id", "string"), ("width", "integer"), ("height", "integer"), ("format", "string"), ("bytes", "integer"), ("sha256", "string"), ("exif", "object"), ("state", "string"), ("created_at", "string"), ("expires_at", "string")]),
            "Document": o(&[("id", "string"), ("image_id", "string"), ("width", "integer"), ("height", "integer"), ("revision", "integer"), ("mode", "string"), ("layers", "array"), ("can_undo", "boolean"), ("can_redo", "boolean")]),
            "Job": o(&[("id", "string"), ("kind", "string"), ("state", "string"), ("progress", "number"), ("result", "object"), ("error", "object")]),
            "JobAccepted": o(&[("job_id", "string")]),
            "Consents": o(&[("training", "boolean"), ("analytics", "boolean"), ("marketing", "boolean"), ("history", "array")]),
            "Ledger": {"type": "array", "items": o(&[("id", "string"), ("at", "string"), ("delta", "integer"), ("balance", "integer"), ("reason", "string"), ("job_id", "nullable"), ("note", "nullable")])},
            "Receipt": {"type": "object", "properties": {"receipt": o(&[("id", "string"), ("email", "string"), ("requested_at", "string"), ("purge_by", "string")])}},
        },
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "il_session"},
            "apiKey": {"type": "http", "scheme": "bearer"},
        },
    })
}

/// A request body of `media` with these fields (`name: type`, `?` for optional).
fn fields_body(media: &str, fields: &[&str]) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in fields {
        let (name, ty) = f.split_once(": ").unwrap_or((f, "string"));
        let name = match name.strip_suffix('?') {
            Some(n) => n,
            None => {
                required.push(name);
                name
            }
        };
        props.insert(name.to_string(), type_schema(ty));
    }
    json!({"required": !required.is_empty(),
        "content": {media: {"schema": {"type": "object", "properties": props, "required": required}}}})
}

fn operation(r: &Route) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), r.summary.into());
    op.insert(
        "operationId".into(),
        format!(
            "{}_{}",
            r.method,
            r.path.replace(['/', '{', '}', '.', '-'], "_")
        )
        .into(),
    );
    let params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if !params.is_empty() {
        op.insert("parameters".into(), params.into());
    }
    match r.body {
        In::None => {}
        In::Json(fields) => {
            op.insert("requestBody".into(), fields_body(JSON, fields));
        }
        In::Form(fields) => {
            op.insert(
                "requestBody".into(),
                fields_body("application/x-www-form-urlencoded", fields),
            );
        }
        In::File => {
            op.insert("requestBody".into(), json!({"required": true, "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
                "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}},
            }}));
        }
    }
    let (status, media, schema) = r.ok;
    let mut ok = json!({"description": "success"});
    if !media.is_empty() {
        let schema = if schema.is_empty() {
            json!({})
        } else {
            json!({"$ref": format!("#/components/schemas/{schema}")})
        };
        ok["content"] = json!({ media: {"schema": schema} });
    }
    let mut responses = Map::new();
    responses.insert(status.to_string(), ok);
    if !r.errors.is_empty() {
        responses.insert(
            "default".into(),
            json!({"description": format!("an error; codes: {}", r.errors.join(", ")),
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    op.insert("responses".into(), responses.into());
    match r.who {
        Who::Public => {
            op.insert("security".into(), json!([]));
        }
        Who::Member => {}
        Who::Admin => {
            op.insert("x-admin-only".into(), true.into());
        }
    }
    op.into()
}

/// The whole OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let item = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        item[r.method] = operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "image-layered", "version": env!("CARGO_PKG_VERSION"),
            "description": "The studio's HTTP API: errors are {\"error\":{\"code\",\"message\"}}; a POST may carry Idempotency-Key; paid jobs answer with X-Credits-Charged and X-Credits-Remaining."},
        "paths": paths,
        "components": components(),
        "security": [{"session": []}, {"apiKey": []}],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// (method, path) of every arm of the router's route table, read from its source.
    fn router_routes() -> BTreeSet<(String, String)> {
        let src = concat!(include_str!("router.rs"), include_str!("console/mod.rs"));
        let mut out = BTreeSet::new();
        for (i, _) in src.match_indices("(&M::") {
            let rest = &src[i + 5..];
            let method = rest.split(',').next().unwrap().to_lowercase();
            let after = &rest[rest.find("=>").expect("an arm")..];
            let path = after.split('"').nth(1).expect("the arm's pattern");
            out.insert((method, path.to_string()));
        }
        out
    }

    #[test]
    fn every_route_is_described_and_nothing_else() {
        let router = router_routes();
        assert!(router.len() > 50, "{router:?}");
        let described: BTreeSet<_> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        let missing: Vec<_> = router.difference(&described).collect();
        let extra: Vec<_> = described.difference(&router).collect();
        assert!(
            missing.is_empty(),
            "routes missing from openapi.rs: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "openapi.rs names routes the router lacks: {extra:?}"
        );
    }

    #[test]
    fn the_document_names_every_path_parameter() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let params = path.matches('{').count();
                let given = op["parameters"].as_array().map_or(0, Vec::len);
                assert_eq!(params, given, "{method} {path}");
            }
        }
    }
}
