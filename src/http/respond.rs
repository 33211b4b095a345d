//! Building responses: one body type for everything (buffered or streamed), JSON and error
//! helpers, and streaming a decrypting reader to the client chunk by chunk so a large file
//! never sits in memory whole.

use std::io::Read;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::error::ApiError;

/// Every response body.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub type HttpResult = Result<Response<Body>, ApiError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn bytes(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes(status, "application/json", body)
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn error(e: &ApiError) -> Response<Body> {
    let mut r = json(e.status, &e.body());
    if let Some(secs) = e.retry_after {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// Streams a (decrypting) reader on a blocking thread, 64 KiB at a time. The first chunk is
/// read before the status is sent, so a damaged small file is an error response; a read
/// error later aborts the transfer (the client sees a truncated body, never wrong bytes).
pub async fn stream_reader(
    status: StatusCode,
    content_type: &str,
    mut reader: Box<dyn Read + Send>,
) -> Result<Response<Body>, ApiError> {
    fn next_chunk(reader: &mut dyn Read) -> std::io::Result<Option<Bytes>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        buf.truncate(filled);
        Ok((filled > 0).then(|| Bytes::from(buf)))
    }
    let (first, reader) = tokio::task::spawn_blocking(move || {
        let first = next_chunk(&mut *reader);
        (first, reader)
    })
    .await?;
    let first = first.map_err(|e| ApiError::from(crate::blobs::BlobError::from_io(e)))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    if let Some(first) = first {
        tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            if tx.blocking_send(Ok(first)).is_err() {
                return;
            }
            loop {
                match next_chunk(&mut *reader) {
                    Ok(None) => break,
                    Ok(Some(b)) => {
                        if tx.blocking_send(Ok(b)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!("stream aborted: {e}");
                        let _ = tx.blocking_send(Err(e));
                        break;
                    }
                }
            }
        });
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Frame::data), rx))
    });
    let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream.boxed())));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    Ok(r)
}
