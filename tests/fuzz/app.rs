//! Fuzz targets that need the real app in process (on a temp data dir, no listener): the
//! upload reader (`http::file_body`, multipart through `multer` or a raw body) and request
//! authentication from a `Cookie` or `Authorization` header (`request::cookie`,
//! `request::authenticate`, which resolves session tokens and API keys in the store).
//!
//! Properties: an upload body is answered with the file (within `uploads.max_bytes`) or a
//! 4xx, never a 5xx or a panic; a mutated credential header authenticates only when it still
//! carries the genuine session token or API-key secret (the key's id may be respelt: UUIDs
//! parse in any case), and then as its own member; refusals are 401/403.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE};
use hyper::Request;
use image_layered::app::App;
use image_layered::auth::tokens::parse_api_key;
use image_layered::clock::{ManualClock, SharedClock};
use image_layered::config::{Config, Overrides};
use image_layered::http::request::{authenticate, cookie, session_cookie_name};
use image_layered::http::{file_body, ReqBody, Server};
use image_layered::ids::UserId;

use crate::harness::Target;

const MIB: usize = 1 << 20;
const ADMIN_EMAIL: &str = "admin@localhost";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// The app, a runtime to drive it, and a genuine session token and API key of the admin.
pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub server: Arc<Server>,
    pub session: String,
    pub key: String,
    pub admin: UserId,
    _dir: tempfile::TempDir,
}

pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let vars = vec![(
            "IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD".to_string(),
            ADMIN_PASSWORD.to_string(),
        )];
        let config = Config::load_from(
            &Overrides {
                config_path: None,
                data_dir: Some(dir.path().join("data")),
                listen: Some("127.0.0.1:0".parse().unwrap()),
            },
            vars,
        )
        .expect("config");
        let clock = ManualClock::new(time::macros::datetime!(2026-06-01 12:00 UTC));
        let shared: SharedClock = Arc::new(clock);
        let (server, session, key, admin) = rt.block_on(async {
            let app = App::open(config, shared).expect("app opens");
            app.bootstrap_admin().await.expect("admin");
            let (session, user) = app
                .auth
                .login(ADMIN_EMAIL, ADMIN_PASSWORD, None)
                .await
                .expect("admin signs in");
            let (_, key) = app
                .auth
                .create_api_key(user.id, "fuzz")
                .await
                .expect("api key");
            let server = Server::new(app).expect("server");
            (server, session, key, user.id)
        });
        World {
            rt,
            server,
            session,
            key,
            admin,
            _dir: dir,
        }
    })
}

pub fn auth_header_target() -> Target {
    Target {
        name: "auth_header",
        seeds: || {
            let w = world();
            let name = session_cookie_name(false);
            vec![
                format!("C{name}={}", w.session).into_bytes(),
                format!("Ctheme=dark; {name}={}; other=1", w.session).into_bytes(),
                format!("ABearer {}", w.key).into_bytes(),
                format!("Abearer   {}  ", w.key).into_bytes(),
                format!("ABearer {}", w.session).into_bytes(),
                b"ABasic YWRtaW46cGFzcw==".to_vec(),
            ]
        },
        check: check_auth_header,
        cases: 100_000,
        max_peak: 16 * MIB,
    }
}

/// The first byte picks the header (`C`ookie or anything else: `Authorization`), the rest is
/// its value.
pub fn check_auth_header(bytes: &[u8]) -> Result<String, String> {
    let w = world();
    let Some((&which, value)) = bytes.split_first() else {
        return Ok("empty".into());
    };
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return Ok("not a header value".into()); // hyper would never hand us this header
    };
    let name = if which == b'C' { COOKIE } else { AUTHORIZATION };
    let (parts, ()) = Request::get("/api/v1/me")
        .header(name, value.clone())
        .body(())
        .expect("request")
        .into_parts();
    let cookie_name = session_cookie_name(false);
    if let Some(v) = cookie(&parts, cookie_name) {
        let raw = value.to_str().unwrap_or_default();
        if !raw.contains(v) {
            return Err(format!("cookie {v:?} is not in the header {raw:?}"));
        }
    }
    // The key's id may be respelt (UUIDs parse in any case and several forms): its secret
    // may not.
    let secret = parse_api_key(&w.key).expect("a real key parses").1;
    let genuine = [w.session.as_bytes(), secret.as_bytes()]
        .iter()
        .any(|t| value.as_bytes().windows(t.len()).any(|win| win == *t));
    match w.rt.block_on(authenticate(&w.server, &parts)) {
        Ok(p) if !genuine => Err(format!("{value:?} authenticated as {:?}", p.user.email)),
        Ok(p) if p.user.id != w.admin => Err(format!("authenticated as {:?}", p.user.email)),
        Ok(_) => Ok("authenticated".into()),
        Err(e) if matches!(e.status.as_u16(), 401 | 403) => Ok(e.code.into()),
        Err(e) => Err(format!(
            "refused with {} {}: {}",
            e.status, e.code, e.message
        )),
    }
}

/// `content type \n body`.
fn upload(ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{ctype}\n").into_bytes();
    out.extend_from_slice(body);
    out
}

fn multipart(boundary: &str, fields: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, data) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes(),
        );
        if let Some(f) = filename {
            body.extend(format!("; filename=\"{f}\"\r\nContent-Type: image/png").bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend_from_slice(data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    body
}

pub fn multipart_target() -> Target {
    Target {
        name: "multipart",
        seeds: || {
            let png = crate::seeds::generated_images().swap_remove(0);
            let b = "X-BOUNDARY-7d1";
            vec![
                upload(
                    &format!("multipart/form-data; boundary={b}"),
                    &multipart(b, &[("file", Some("a.png"), &png)]),
                ),
                upload(
                    "multipart/form-data; boundary=\"q u o t e d\"",
                    &multipart(
                        "q u o t e d",
                        &[
                            ("note", None, b"hello"),
                            ("file", Some("\u{e9}.png"), b"\x89PNG"),
                        ],
                    ),
                ),
                upload(
                    "Multipart/Form-Data; charset=utf-8; boundary=--",
                    &multipart("--", &[("other", None, b"x"), ("file", None, b"")]),
                ),
                upload("image/png", &png),
                upload("application/zip", b"PK\x03\x04"),
            ]
        },
        check: check_multipart,
        cases: 100_000,
        max_peak: 16 * MIB,
    }
}

/// Up to the first `\n`: the content type; the rest: the body.
pub fn check_multipart(bytes: &[u8]) -> Result<String, String> {
    let w = world();
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let (ctype, body) = (&bytes[..split], bytes.get(split + 1..).unwrap_or_default());
    let mut req = Request::post("/api/v1/images");
    if let Ok(v) = HeaderValue::from_bytes(ctype) {
        req = req.header(CONTENT_TYPE, v);
    }
    let (parts, ()) = req.body(()).expect("request").into_parts();
    let body: ReqBody = Full::new(Bytes::copy_from_slice(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let limit = w.server.config.uploads.max_bytes;
    match w.rt.block_on(file_body(&w.server, &parts, body)) {
        Ok(file) if file.len() as u64 <= limit => Ok("file".into()),
        Ok(file) => Err(format!("a {}-byte file passed the limit", file.len())),
        Err(e) if e.status.is_client_error() => Ok(e.code.into()),
        Err(e) => Err(format!("answered {} {}: {}", e.status, e.code, e.message)),
    }
}
