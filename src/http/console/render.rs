//! Rendering console pages: one minijinja environment holding the templates under
//! `web/templates/admin/` (compiled into the binary; HTML auto-escaping on), filters for
//! times and sizes, and the page frame every template extends — the navigation, the signed-in
//! admin, the sign-out form with its CSRF token, and the notice or error of the moment.

use std::sync::LazyLock;

use hyper::header::{HeaderValue, CACHE_CONTROL};
use hyper::{Response, StatusCode};
use minijinja::{context, Environment, Value};

use super::Admin;
use crate::error::ApiError;
use crate::http::respond::{bytes, Body};

const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin/base.html",
        include_str!("../../../web/templates/admin/base.html"),
    ),
    (
        "admin/login.html",
        include_str!("../../../web/templates/admin/login.html"),
    ),
    (
        "admin/password.html",
        include_str!("../../../web/templates/admin/password.html"),
    ),
    (
        "admin/error.html",
        include_str!("../../../web/templates/admin/error.html"),
    ),
    (
        "admin/overview.html",
        include_str!("../../../web/templates/admin/overview.html"),
    ),
    (
        "admin/members.html",
        include_str!("../../../web/templates/admin/members.html"),
    ),
    (
        "admin/member.html",
        include_str!("../../../web/templates/admin/member.html"),
    ),
    (
        "admin/invites.html",
        include_str!("../../../web/templates/admin/invites.html"),
    ),
    (
        "admin/usage.html",
        include_str!("../../../web/templates/admin/usage.html"),
    ),
    (
        "admin/jobs.html",
        include_str!("../../../web/templates/admin/jobs.html"),
    ),
    (
        "admin/retention.html",
        include_str!("../../../web/templates/admin/retention.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../../../web/templates/admin/audit.html"),
    ),
    (
        "admin/policies.html",
        include_str!("../../../web/templates/admin/policies.html"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("the built-in console templates parse");
    }
    env.add_filter("time", time);
    env.add_filter("size", size);
    env
});

/// Unix seconds as `2026-12-06 04:33 UTC`; nothing for 0 (never).
fn time(unix: i64) -> String {
    if unix == 0 {
        return "—".into();
    }
    let full = crate::clock::rfc3339(unix);
    format!("{} {} UTC", &full[..10], full.get(11..16).unwrap_or(""))
}

/// Bytes in binary units, one decimal.
fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// What a `?done=` after a redirect says.
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "credits" => "Credits adjusted; the ledger has the entry and the audit log the reason.",
        "plan" => "Plan changed; the expiry of the member's results moved with it.",
        "suspended" => "Member suspended; their sessions have ended.",
        "unsuspended" => "Member reinstated.",
        "deleted" => "Member deleted: a receipt was mailed and the sweep purges their files.",
        "published" => "Policy version published; members were mailed the notice.",
        "password" => "Password changed.",
        _ => return None,
    })
}

/// A console page for `admin`: `template` with `ctx`, in the frame, under `title`.
pub fn page(
    admin: &Admin,
    status: StatusCode,
    template: &str,
    title: &str,
    section: &str,
    ctx: Value,
) -> Result<Response<Body>, ApiError> {
    let frame = context! {
        admin => context! { email => admin.principal.user.email.clone() },
        csrf => admin.csrf.clone(),
        title => title,
        section => section,
        ..ctx
    };
    html(status, template, frame)
}

/// A page outside the signed-in frame (sign-in).
pub fn bare(status: StatusCode, template: &str, ctx: Value) -> Result<Response<Body>, ApiError> {
    html(status, template, ctx)
}

/// An error shown to an admin as a page (status and code kept), with a way back.
pub fn error_page(admin: &Admin, e: &ApiError) -> Response<Body> {
    let ctx =
        context! { status => e.status.as_u16(), code => e.code, message => e.message.clone() };
    page(
        admin,
        e.status,
        "admin/error.html",
        "Something went wrong",
        "",
        ctx,
    )
    .unwrap_or_else(|e| crate::http::respond::error(&e))
}

fn html(status: StatusCode, template: &str, ctx: Value) -> Result<Response<Body>, ApiError> {
    let body = ENV
        .get_template(template)
        .and_then(|t| t.render(ctx))
        .map_err(|e| ApiError::internal("console template", e))?;
    let mut r = bytes(status, "text/html; charset=utf-8", body);
    // account data: never kept by the browser or anything between
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_times_and_sizes_read_well() {
        for (name, _) in TEMPLATES {
            ENV.get_template(name).unwrap();
        }
        assert_eq!(time(0), "—");
        assert_eq!(time(1_780_000_000), "2026-05-28 20:26 UTC");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MiB");
    }

    #[test]
    fn notices_are_fixed_texts_never_the_query() {
        assert!(notice(Some("credits")).is_some());
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }
}
