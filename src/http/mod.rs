//! The HTTP front: one accept loop (plain, or TLS 1.3 only via rustls when a certificate is
//! configured) taking at most `max_connections` at once, hyper 1 connections with a
//! header-read timeout and a write timeout (a client that stops reading is cut off), a request
//! timeout around every handler, security headers on every response, request metrics, and graceful shutdown that
//! stops accepting and lets in-flight requests finish (bounded by `shutdown_grace_secs`).
//!
//! A [`Server`] is the app's services plus what only HTTP needs — the TLS acceptor, the
//! request metrics and the watch that ends long-lived responses (event streams) when shutdown
//! begins; [`run`] runs a studio: the app's background work and this server.

pub mod admission;
mod console;
pub mod downloads;
pub mod handlers;
mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod request;
pub mod respond;
pub mod router;
mod tls;

use std::convert::Infallible;
use std::ops::Deref;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::error::ApiError;
use crate::ids::UserId;
use metrics::Metrics;
use respond::Body;

pub use request::file_body;

/// A request body as handlers read it: the connection's stream, or the bytes of one that
/// was read ahead (an `Idempotency-Key` request).
pub type ReqBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::io::Error>;

/// The connection's body as a [`ReqBody`].
fn boxed_body(body: Incoming) -> ReqBody {
    use http_body_util::BodyExt;
    body.map_err(std::io::Error::other).boxed_unsync()
}
pub use tls::load_tls;

/// The address a request came from (the TCP peer), for login throttling only: it is never
/// logged or stored (the throttle keeps a keyed hash of it, in memory).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// Whether a request reached the studio over TLS: its own, or a trusted proxy's
/// (`X-Forwarded-Proto: https`); it decides the session cookie's name and `Secure` flag.
#[derive(Debug, Clone, Copy)]
pub struct Secure(pub bool);

/// The app as the HTTP server sees it: its services (through `Deref`) and the HTTP-only
/// parts.
pub struct Server {
    app: Arc<App>,
    acceptor: Option<TlsAcceptor>,
    /// Whether the server speaks TLS (cookie names, HSTS).
    pub tls: bool,
    pub metrics: Metrics,
    /// Turns true when shutdown begins; long-lived responses (event streams) end on it.
    pub stopping: watch::Sender<bool>,
    /// `server.trusted_proxies`.
    trusted: Vec<std::net::IpAddr>,
    /// Places for heavy request work (exports, edits, undo and redo).
    pub admission: admission::Admission,
    /// Each member's downloads in flight.
    pub downloads: downloads::Downloads,
}

impl Deref for Server {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl Server {
    /// The server for `app`, with TLS when `[tls]` names a certificate and key (the error
    /// names the file and what is wrong with it).
    pub fn new(app: Arc<App>) -> Result<Arc<Server>, String> {
        let acceptor = match app.config.tls.paths() {
            Some((cert, key)) => Some(load_tls(cert, key).map_err(|e| format!("TLS: {e}"))?),
            None => None,
        };
        let trusted = app.config.server.trusted_proxies()?;
        let admission = admission::Admission::new(&app.config.server);
        let app_downloads_per_member = app.config.server.downloads_per_member;
        Ok(Arc::new(Server {
            app,
            tls: acceptor.is_some(),
            acceptor,
            metrics: Metrics::default(),
            stopping: watch::channel(false).0,
            trusted,
            admission,
            downloads: downloads::Downloads::new(app_downloads_per_member),
        }))
    }

    /// Streams `reader` to `owner` (`200`, `content_type`) in one of their download places.
    pub async fn download(
        &self,
        owner: UserId,
        content_type: &str,
        reader: Box<dyn std::io::Read + Send>,
    ) -> respond::HttpResult {
        let place = self.downloads.start(owner)?;
        downloads::stream(place, StatusCode::OK, content_type, reader).await
    }

    /// The client and whether it came over TLS, for a connection from `peer`: a trusted
    /// proxy's `X-Forwarded-For` (its last address, the one the proxy itself added) and
    /// `X-Forwarded-Proto` count; anyone else's are ignored. A trusted proxy's request
    /// without a usable `X-Forwarded-For` comes from an unknown client (`0.0.0.0`), never
    /// from the proxy's own (perhaps loopback) address.
    fn origin_of(
        &self,
        peer: std::net::IpAddr,
        headers: &hyper::HeaderMap,
    ) -> (ClientAddr, Secure) {
        if !self.trusted.contains(&peer) {
            return (ClientAddr(peer), Secure(self.tls));
        }
        let client = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let https = headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        (ClientAddr(client), Secure(self.tls || https))
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// Runs a blocking service call (store reads, file opens, pixel work) on the blocking pool,
/// off the threads that serve connections.
pub async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?.map_err(Into::into)
}

/// Runs a studio until `shutdown` turns true: the app's workers and scheduler, and `server`
/// on `listener`; then drains requests and lets workers finish their current job.
pub async fn run(server: Arc<Server>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    let background = server.app.start_background(shutdown.clone());
    serve(server.clone(), listener, shutdown).await;
    background.stop(&server.app).await;
}

/// Serves until `shutdown` turns true, then drains in-flight connections.
pub async fn serve(app: Arc<Server>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let tls = app.acceptor.clone();
    let mut signal = shutdown.clone();
    let stopping = app.clone();
    tokio::spawn(async move {
        while !*signal.borrow() {
            if signal.changed().await.is_err() {
                break;
            }
        }
        stopping.stopping.send_replace(true);
    });
    let connections = Arc::new(tokio::sync::Semaphore::new(
        app.config.server.max_connections.max(1),
    ));
    loop {
        // past `max_connections`, new connections wait in the listen backlog
        let place = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        // a client that stops reading is cut off once a write has waited this long
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(app.config.server.write_timeout()));
        let stream = Box::pin(stream);
        let app2 = app.clone();
        let service = service_fn(move |mut req: Request<Incoming>| {
            let app = app2.clone();
            let (client, secure) = app.origin_of(peer.ip(), req.headers());
            req.extensions_mut().insert(client);
            req.extensions_mut().insert(secure);
            async move { Ok::<_, Infallible>(handle(app, req).await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(app.config.server.header_read_timeout())
            .keep_alive(true);
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let fut = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        tracing::debug!("connection ended: {e}");
                    }
                    drop(place);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let timeout = app.config.server.header_read_timeout();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls_stream =
                        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!("TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!("connection ended: {e}");
                    }
                    drop(place);
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(app.config.server.shutdown_grace()) => {
            tracing::warn!("shutdown grace period over; closing remaining connections")
        }
    }
}

/// Runs one request through the router under the request timeout and decorates the answer.
pub async fn handle(app: Arc<Server>, req: Request<Incoming>) -> Response<Body> {
    let timeout = app.config.server.request_timeout();
    let req = req.map(boxed_body);
    let run = async {
        match idempotency::key_of(&req) {
            Some(key) => idempotency::run(&app, req, key).await,
            None => router::dispatch(&app, req).await,
        }
    };
    let (pattern, result) = match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => (
            "timeout",
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("the request took longer than {} s", timeout.as_secs()),
            )),
        ),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => respond::error(&e),
    };
    app.metrics.record(pattern, resp.status().as_u16());
    security_headers(&mut resp, app.tls);
    resp
}

fn security_headers(resp: &mut Response<Body>, tls: bool) {
    let h = resp.headers_mut();
    let is_html = h
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let csp = if is_html {
        "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    } else {
        // User images and API data: never executable, never framed.
        "default-src 'none'; sandbox; frame-ancestors 'none'"
    };
    let pairs: [(&str, &str); 3] = [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", csp),
    ];
    for (k, v) in pairs {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    // Members' data (JSON, originals, layers, exports) is never kept by a browser or a
    // cache between; only the public page files say otherwise (`no-cache`: revalidate).
    if !h.contains_key(hyper::header::CACHE_CONTROL) {
        h.insert(
            hyper::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
    }
    if tls {
        h.insert(
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static("max-age=63072000"),
        );
    }
}
