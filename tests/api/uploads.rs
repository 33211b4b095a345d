//! Uploads: byte-identical round trips, encryption at rest, integrity, thumbnails, TIFF, BMP
//! and GIF (the formats print shops and old tools send), and every kind of bad upload getting
//! a precise 4xx while the server stays healthy.

use image::ImageFormat;
use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn upload_then_download_is_byte_identical_for_each_format_and_encoding() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let cases = [
        (encode(noise_rgb(300, 200, 1), ImageFormat::Png), "png"),
        (encode(noise_rgb(301, 199, 2), ImageFormat::Jpeg), "jpeg"),
        (encode(noise_rgb(64, 48, 3), ImageFormat::WebP), "webp"),
    ];
    for (bytes, fmt) in cases {
        // raw body, with a deliberately generic content type: the format is sniffed
        let (s, meta) = c
            .upload_raw(bytes.clone(), "application/octet-stream")
            .await;
        assert_eq!(s, StatusCode::CREATED, "{meta}");
        assert_eq!(meta["format"], fmt);
        assert_eq!(meta["bytes"], bytes.len());
        let id = meta["id"].as_str().unwrap();
        let got = c
            .get(&format!("/api/v1/images/{id}/original"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.bytes().await.unwrap().as_ref(), &bytes[..], "{fmt}");
        // multipart
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.clone()).file_name("x"),
        );
        let r = c
            .post("/api/v1/images")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let meta: serde_json::Value = r.json().await.unwrap();
        let id = meta["id"].as_str().unwrap();
        let got = c
            .get(&format!("/api/v1/images/{id}/original"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), &bytes[..]);
    }
    // a browser's form: its boundary is mixed case, and must be matched exactly
    let boundary = "----WebKitFormBoundaryAbCdEf0123XyZ";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&noisy_png(16, 16, 3));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = c
        .post("/api/v1/images")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, list) = c.json("/api/v1/images").await;
    assert_eq!(list["images"].as_array().unwrap().len(), 7);
}

/// A 16-bit RGB TIFF with LZW strips, as print shops send them.
fn tiff_rgb16_lzw(w: u32, h: u32) -> Vec<u8> {
    use tiff::encoder::{colortype::RGB16, Compression, TiffEncoder};
    let px: Vec<u16> = noise_rgb(w, h, 9)
        .as_raw()
        .iter()
        .map(|&v| u16::from(v) * 257)
        .collect();
    let mut out = std::io::Cursor::new(Vec::new());
    TiffEncoder::new(&mut out)
        .unwrap()
        .with_compression(Compression::Lzw)
        .write_image::<RGB16>(w, h, &px)
        .unwrap();
    out.into_inner()
}

#[tokio::test]
async fn tiff_bmp_and_gif_uploads_are_accepted_and_cut_ones_refused() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let cases = [
        (
            tiff_rgb16_lzw(301, 203),
            "tiff",
            "image/tiff",
            (301u32, 203u32),
        ),
        (
            encode(noise_rgb(123, 45, 7), ImageFormat::Bmp),
            "bmp",
            "image/bmp",
            (123, 45),
        ),
        (
            encode(noise_rgb(64, 40, 8), ImageFormat::Gif),
            "gif",
            "image/gif",
            (64, 40),
        ),
    ];
    for &(ref bytes, fmt, mime, (w, h)) in &cases {
        // sniffed from the bytes: the declared type is generic
        let (s, meta) = c
            .upload_raw(bytes.clone(), "application/octet-stream")
            .await;
        assert_eq!(s, StatusCode::CREATED, "{fmt}: {meta}");
        assert_eq!(meta["format"], fmt, "{meta}");
        assert_eq!(
            (meta["width"].clone(), meta["height"].clone()),
            (w.into(), h.into()),
            "{fmt}"
        );
        let id = meta["id"].as_str().unwrap();
        let r = c
            .get(&format!("/api/v1/images/{id}/original"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], mime);
        assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..], "{fmt}");
        // the thumbnail job decodes it again (a 16-bit TIFF included)
        let job = c.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
        assert_eq!(job["state"], "succeeded", "{fmt}: {job}");
    }
    for (bytes, fmt, mime, _) in &cases {
        let cut = bytes[..bytes.len() * 2 / 3].to_vec();
        let (s, body) = c.upload_raw(cut, mime).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "cut {fmt}: {body}");
        assert_eq!(
            body["error"]["code"], "truncated_image",
            "cut {fmt}: {body}"
        );
    }
    // a tiny TIFF declaring 100000×100000 is refused from its header
    let mut bomb = tiff_rgb16_lzw(4, 4);
    let ifd = u32::from_le_bytes(bomb[4..8].try_into().unwrap()) as usize;
    let entries = usize::from(u16::from_le_bytes([bomb[ifd], bomb[ifd + 1]]));
    for e in (0..entries).map(|i| ifd + 2 + 12 * i) {
        if matches!(u16::from_le_bytes([bomb[e], bomb[e + 1]]), 256 | 257) {
            bomb[e + 2..e + 4].copy_from_slice(&4u16.to_le_bytes()); // LONG
            bomb[e + 8..e + 12].copy_from_slice(&100_000u32.to_le_bytes());
        }
    }
    let (s, body) = c.upload_raw(bomb, "image/tiff").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "image_too_large", "{body}");
    let (_, list) = c.json("/api/v1/images").await;
    assert_eq!(list["images"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn nothing_under_the_data_dir_reveals_an_uploaded_image() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let png = noisy_png(200, 150, 7);
    let jpeg = encode(noise_rgb(200, 150, 8), ImageFormat::Jpeg);
    for b in [&png, &jpeg] {
        let meta = c.upload(b.clone()).await;
        c.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
    }
    t.app.store.flush().await.unwrap();
    let files = files_under(t.dir.path());
    assert!(
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "blob"))
            .count()
            >= 4
    );
    for f in files {
        let data = std::fs::read(&f).unwrap();
        // 4 bytes at least: a 3-byte pattern turns up by chance in ~0.5% of 90 kB of
        // ciphertext, and this test failed that way now and then
        for sig in [
            &b"\x89PNG"[..],
            b"\xFF\xD8\xFF\xE0",
            b"IHDR",
            b"JFIF",
            b"IDAT",
        ] {
            assert!(
                !data.windows(sig.len()).any(|w| w == sig),
                "{} contains an image signature {sig:?}",
                f.display()
            );
        }
        for src in [&png, &jpeg] {
            for off in (0..src.len().saturating_sub(24)).step_by(997) {
                let slice = &src[off..off + 24];
                assert!(
                    !data.windows(24).any(|w| w == slice),
                    "{} contains bytes of an upload",
                    f.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn a_flipped_byte_in_a_stored_file_is_an_integrity_error() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let meta = c.upload(noisy_png(120, 90, 11)).await;
    let id: image_layered::ids::ImageId = meta["id"].as_str().unwrap().parse().unwrap();
    let rec = t.app.store.get_image(id).unwrap().unwrap();
    let path = t.app.blobs.path_of(rec.owner, rec.original_blob);
    let mut data = std::fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x01;
    std::fs::write(&path, data).unwrap();
    let r = c
        .get(&format!("/api/v1/images/{id}/original"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "blob_integrity");
}

#[tokio::test]
async fn thumbnail_job_produces_a_256px_png_and_reports_over_sse() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let meta = c.upload(noisy_png(640, 320, 5)).await;
    let id = meta["id"].as_str().unwrap();
    let job_id = meta["thumbnail_job_id"].as_str().unwrap();
    let job = c.wait_job(job_id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "thumbnail");
    let r = c
        .get(&format!("/api/v1/images/{id}/thumbnail"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    let thumb = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 128));
    let (_, meta) = c.json(&format!("/api/v1/images/{id}")).await;
    assert_eq!(
        meta["thumbnail_url"],
        format!("/api/v1/images/{id}/thumbnail")
    );
    // SSE on a finished job: one `done` event, then the stream ends
    let r = c
        .get(&format!("/api/v1/jobs/{job_id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert!(text.starts_with("event: done\ndata: {"), "{text}");
}

#[tokio::test]
async fn sse_streams_progress_until_done() {
    let t = spawn_app_with(&[("IMAGE_LAYERED__JOBS__WORKERS", "1")]).await;
    let c = t.admin().await;
    let meta = c.upload(noisy_png(1600, 1200, 9)).await;
    let job_id = meta["thumbnail_job_id"].as_str().unwrap();
    let r = c
        .get(&format!("/api/v1/jobs/{job_id}/events"))
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(std::time::Duration::from_secs(60), r.text())
        .await
        .expect("stream ends")
        .unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.last(), Some(&"done"), "{text}");
    assert!(events[..events.len() - 1].iter().all(|e| *e == "progress"));
}

#[tokio::test]
async fn bad_uploads_get_precise_4xx_and_the_server_stays_healthy() {
    let t = spawn_app_with(&[("IMAGE_LAYERED__UPLOADS__MAX_BYTES", "1048576")]).await;
    let c = t.admin().await;
    let good = noisy_png(100, 80, 3);
    // a PNG header declaring 100000×100000 followed by a few bytes of IDAT
    let bomb = {
        let mut img = good.clone();
        // IHDR width/height live at bytes 16..24; fix the CRC so the header is valid
        img[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        img[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&img[12..29]);
        img[29..33].copy_from_slice(&crc.to_be_bytes());
        img.truncate(200);
        img
    };
    let cases: Vec<(&str, Vec<u8>, &str, StatusCode, &str)> = vec![
        (
            "empty",
            vec![],
            "image/png",
            StatusCode::BAD_REQUEST,
            "empty_upload",
        ),
        (
            "text",
            b"hello, not an image".to_vec(),
            "image/png",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "heic",
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec(),
            "image/heic",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "gif without a frame",
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            "image/gif",
            StatusCode::UNPROCESSABLE_ENTITY,
            "undecodable_image",
        ),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "image/png",
            StatusCode::UNPROCESSABLE_ENTITY,
            "truncated_image",
        ),
        (
            "bomb",
            bomb,
            "image/png",
            StatusCode::PAYLOAD_TOO_LARGE,
            "image_too_large",
        ),
        (
            "oversized",
            noisy_png(800, 600, 4),
            "image/png",
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "json",
            b"{}".to_vec(),
            "application/json",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (name, bytes, ctype, status, code) in cases {
        let started = std::time::Instant::now();
        let (s, body) = c.upload_raw(bytes, ctype).await;
        assert_eq!(s, status, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 10);
        assert!(started.elapsed().as_secs() < 5, "{name} was slow");
        let h = reqwest::get(t.client().url("/healthz")).await.unwrap();
        assert_eq!(h.status(), StatusCode::OK);
    }
    // nothing was stored by the failures; a good upload still works
    let (_, list) = c.json("/api/v1/images").await;
    assert_eq!(list["images"].as_array().unwrap().len(), 0);
    assert!(files_under(&t.dir.path().join("data/blobs")).is_empty());
    c.upload(good).await;
    // multipart without a `file` field
    let form = reqwest::multipart::Form::new().text("other", "x");
    let r = c
        .post("/api/v1/images")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let t = spawn_app().await;
    let c = t.admin().await;
    c.upload(noisy_png(10, 10, 1)).await;
    let _ = c.get("/api/v1/images/not-an-id").send().await.unwrap();
    let text = reqwest::get(t.client().url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"image_layered_http_requests_total{route="/api/v1/images",status="201"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/images/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains("image_layered_jobs{state="));
    assert!(text.contains(r#"image_layered_store_bytes{part="blobs"}"#));
    // no models in this app: up, but not ready, and it says why
    let r = reqwest::get(t.client().url("/readyz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["store"], "ok");
    assert_eq!(body["models"]["state"], "not_loaded");
}

#[tokio::test]
async fn event_streams_end_when_the_server_shuts_down() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let me = t.app.store.user_by_email(ADMIN_EMAIL).unwrap().unwrap();
    // a job that will not run for a day: its stream would stay open forever
    let mut job = t.app.jobs.new_job(
        me.id,
        image_layered::store::JobKind::Thumbnail {
            image_id: image_layered::ids::ImageId::new(),
        },
    );
    job.not_before += 86_400;
    t.app.jobs.enqueue(&job).await.unwrap();
    let mut r = c
        .get(&format!("/api/v1/jobs/{}/events", job.id))
        .send()
        .await
        .unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"queued\""));
    t.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(*t.server.stopping.borrow(), "stopping was not signalled");
    let rest = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Ok(Some(_)) = r.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "the event stream outlived the shutdown");
}

#[tokio::test]
async fn metrics_answer_loopback_or_the_token_and_nobody_else() {
    // the studio behind a proxy on this host: requests it relays come from elsewhere
    let t = spawn_app_with(&[
        ("IMAGE_LAYERED__SERVER__TRUSTED_PROXIES", "127.0.0.1"),
        (
            "IMAGE_LAYERED__SERVER__METRICS_TOKEN",
            "scrape-me-0123456789",
        ),
    ])
    .await;
    let get = |forwarded: Option<&'static str>, token: Option<&'static str>| {
        let mut r = t.client().get("/metrics");
        if let Some(f) = forwarded {
            r = r.header("x-forwarded-for", f);
        }
        if let Some(tok) = token {
            r = r.bearer_auth(tok);
        }
        async move { r.send().await.unwrap().status() }
    };
    assert_eq!(
        get(Some("127.0.0.1"), None).await,
        StatusCode::OK,
        "loopback"
    );
    // relayed without saying for whom: not taken for the proxy's own loopback address
    assert_eq!(get(None, None).await, StatusCode::NOT_FOUND);
    assert_eq!(get(Some("203.0.113.9"), None).await, StatusCode::NOT_FOUND);
    assert_eq!(
        get(Some("203.0.113.9"), Some("wrong")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(Some("203.0.113.9"), Some("scrape-me-0123456789")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_upload_holds_its_slot_before_its_body_and_a_full_house_answers_busy() {
    use tokio::io::AsyncWriteExt;
    let t = spawn_app_with(&[
        ("IMAGE_LAYERED__UPLOADS__DECODE_CONCURRENCY", "1"),
        ("IMAGE_LAYERED__UPLOADS__SLOT_WAIT_SECS", "1"),
    ])
    .await;
    let c = t.admin().await;
    let (_, k) = c
        .post_json("/api/v1/keys", serde_json::json!({"name": "slow"}))
        .await;
    let key = k["key"].as_str().unwrap();
    // a client that announces a large body and sends almost none of it
    let addr = t.base.trim_start_matches("http://");
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/images HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\n\
         content-type: image/png\r\ncontent-length: 1000000\r\n\r\nPNG"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // it holds the only slot: the next upload waits a second, then is told to come back
    let started = std::time::Instant::now();
    let r = c
        .post("/api/v1/images")
        .header("content-type", "image/png")
        .body(noisy_png(8, 8, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "busy");
    // the stalled client goes away: its slot is free again
    drop(slow);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let meta = c.upload(noisy_png(8, 8, 2)).await;
    assert!(meta["id"].is_string(), "{meta}");
}
