//! TLS: 1.3 only, a TLS 1.2 client is refused, and the session cookie is `__Host-` + Secure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::support::*;

fn client_config(
    cert: &CertificateDer<'static>,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).expect("trust the test certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn connect(port: u16, config: Arc<ClientConfig>) -> StreamOwned<ClientConnection, TcpStream> {
    let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config, name).expect("client connection");
    StreamOwned::new(conn, sock)
}

/// Drives the handshake to its end (or its error).
fn handshake(s: &mut StreamOwned<ClientConnection, TcpStream>) -> Result<(), std::io::Error> {
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(())
}

#[tokio::test]
async fn tls13_only() {
    let env = Env::new();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("self-signed certificate");
    let cert_pem = ck.cert.pem();
    let cert_path = env.root.path().join("cert.pem");
    let key_path = env.root.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, ck.key_pair.serialize_pem()).unwrap();
    let opts = ServerOpts {
        env: vec![
            (
                "IMAGE_LAYERED__TLS__CERT".into(),
                cert_path.to_str().unwrap().into(),
            ),
            (
                "IMAGE_LAYERED__TLS__KEY".into(),
                key_path.to_str().unwrap().into(),
            ),
        ],
        tls_ca_pem: Some(cert_pem),
    };
    // Readiness is polled over HTTPS with the test certificate trusted.
    let server = Server::start_with(&env, opts).await;
    assert!(server.stdout().contains("https://"), "{}", server.stdout());
    let cert = ck.cert.der().clone();
    let port = server.port;

    // TLS 1.3: handshake, then GET /healthz.
    let body = tokio::task::spawn_blocking(move || {
        let mut s = connect(port, client_config(&cert, &rustls::version::TLS13));
        handshake(&mut s).expect("TLS 1.3 handshake");
        assert_eq!(
            s.conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        // A peer closing without close_notify is an error after the data; keep the data.
        let _ = s.read_to_end(&mut out);
        let tls12 = client_config(&cert, &rustls::version::TLS12);
        (String::from_utf8_lossy(&out).to_string(), tls12)
    })
    .await
    .unwrap();
    let (response, tls12) = body;
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(response.contains("\"ok\""), "{response:?}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("strict-transport-security:"),
        "HSTS under TLS: {response:?}"
    );

    // TLS 1.2 only: the server must refuse the handshake.
    let refused = tokio::task::spawn_blocking(move || {
        let mut s = connect(port, tls12);
        handshake(&mut s)
    })
    .await
    .unwrap();
    let err = refused.expect_err("a TLS 1.2-only client completed a handshake");
    eprintln!("TLS 1.2 refused: {err}");

    // The login cookie is __Host- prefixed and Secure.
    let resp = server.client.post_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let cookie = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("__Host-"), "{cookie}");
    let attrs: Vec<String> = cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for want in ["secure", "httponly", "path=/"] {
        assert!(attrs.iter().any(|a| a == want), "{want} missing: {cookie}");
    }
    assert!(
        !attrs.iter().any(|a| a.starts_with("domain=")),
        "__Host- cookies must not set Domain: {cookie}"
    );
    // ...and it authenticates over HTTPS.
    let pair = cookie.split(';').next().unwrap().to_string();
    let me = server
        .client
        .get("/api/v1/me")
        .header(reqwest::header::COOKIE, pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), reqwest::StatusCode::OK);
}
