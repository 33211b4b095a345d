//! Downloads under hostile readers: a client that stops reading is cut off after the write
//! timeout and gives its place back, a member has a bounded number of downloads in flight,
//! and connections past `max_connections` wait for a free one.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A noisy PNG of about 12 MB: more than the socket buffers between us hold.
fn big_png() -> Vec<u8> {
    noisy_png(2000, 2000, 77)
}

/// Sends a GET for `path` with `auth` on a raw connection and reads nothing back.
async fn stalled_get(base: &str, path: &str, auth: &Auth) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    // a small receive window, so the server's writes soon wait on the reader
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(8 * 1024).expect("SO_RCVBUF");
    let mut conn = socket
        .connect(addr.parse().expect("address"))
        .await
        .expect("connect");
    let credential = match auth {
        Auth::Cookie(cookie) => format!("Cookie: {cookie}\r\n"),
        Auth::Key(key) => format!("Authorization: Bearer {key}\r\n"),
        Auth::Anonymous => String::new(),
    };
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{credential}\r\n");
    conn.write_all(head.as_bytes()).await.expect("send");
    conn
}

/// Everything the server sends on `conn` until it closes it.
async fn drain(mut conn: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut got)).await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_are_cut_off_and_a_member_has_a_bounded_number_of_downloads() {
    let t = spawn_app_with(&[
        ("IMAGE_LAYERED__SERVER__WRITE_TIMEOUT_SECS", "1"),
        ("IMAGE_LAYERED__SERVER__DOWNLOADS_PER_MEMBER", "2"),
    ])
    .await;
    let ann = t.admin().await;
    let png = big_png();
    let image = ann.upload(png.clone()).await;
    let path = format!("/api/v1/images/{}/original", image["id"].as_str().unwrap());

    // two downloads that the client never reads take Ann's two places...
    let stalled = [
        stalled_get(&t.base, &path, &ann.auth).await,
        stalled_get(&t.base, &path, &ann.auth).await,
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = ann.get(&path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_downloads", "{body}");
    // ...while other requests, and other members' downloads, go on
    let (status, _) = ann.json("/api/v1/images").await;
    assert_eq!(status, StatusCode::OK);

    // the write timeout (1 s) closes both: each got part of the file, then the end
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    for conn in stalled {
        let got = drain(conn).await;
        assert!(
            got.len() < png.len(),
            "a stalled reader was cut off ({} of {} bytes)",
            got.len(),
            png.len()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));

    // and their places came back: a reading client gets every byte
    let (status, bytes) = ann.bytes(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == png, "the original comes back byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_free_one() {
    let t = spawn_app_with(&[("IMAGE_LAYERED__SERVER__MAX_CONNECTIONS", "2")]).await;
    let c = t.client();
    let addr = t.base.trim_start_matches("http://").to_string();
    // two idle connections hold both places
    let held = [
        TcpStream::connect(&addr).await.unwrap(),
        TcpStream::connect(&addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::time::timeout(Duration::from_millis(800), c.get("/healthz").send()).await;
    assert!(waiting.is_err(), "a third connection is not served yet");
    drop(held);
    let r = tokio::time::timeout(Duration::from_secs(15), c.get("/healthz").send())
        .await
        .expect("served once a place frees")
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
