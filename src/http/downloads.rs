//! Downloads: a decrypting reader streamed to the client from an async loop, one 64 KiB
//! chunk per short blocking read, so a client that stops reading holds no thread — only its
//! reader and its place. Each member has at most `server.downloads_per_member` downloads in
//! flight (past it: `429 too_many_downloads`); a place is given back when the body is done
//! or dropped, which the connection's write timeout (`server.write_timeout_secs`) bounds for
//! a stalled reader.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::respond::Body;
use crate::error::ApiError;
use crate::ids::UserId;

/// Bytes read and sent at a time.
const CHUNK: usize = 64 * 1024;

/// How many downloads each member has in flight.
pub struct Downloads {
    per_member: usize,
    active: Arc<Mutex<HashMap<UserId, usize>>>,
}

/// One download's place; dropping it gives the place back.
pub struct Place {
    owner: UserId,
    active: Arc<Mutex<HashMap<UserId, usize>>>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = active.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                active.remove(&self.owner);
            }
        }
    }
}

impl Downloads {
    pub fn new(per_member: usize) -> Self {
        Self {
            per_member: per_member.max(1),
            active: Arc::default(),
        }
    }

    /// A place for one more of `owner`'s downloads, or the `429` that refuses it.
    pub fn start(&self, owner: UserId) -> Result<Place, ApiError> {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let n = active.entry(owner).or_insert(0);
        if *n >= self.per_member {
            return Err(ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_downloads",
                    format!(
                        "you already have {} downloads in progress; let one finish first",
                        self.per_member
                    ),
                )
            });
        }
        *n += 1;
        Ok(Place {
            owner,
            active: self.active.clone(),
        })
    }

    /// Downloads in flight over the studio.
    pub fn in_flight(&self) -> usize {
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        active.values().sum()
    }
}

/// A reader and the place it holds, moved into each chunk's blocking read and back.
struct Source {
    reader: Box<dyn Read + Send>,
    _place: Place,
}

/// Fills one chunk (less only at the end); `None` once the reader is done.
fn next_chunk(reader: &mut dyn Read) -> std::io::Result<Option<Bytes>> {
    let mut buf = vec![0u8; CHUNK];
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

/// Reads the next chunk on the blocking pool, handing the source back with it.
async fn read_chunk(mut source: Source) -> std::io::Result<(Option<Bytes>, Source)> {
    tokio::task::spawn_blocking(move || {
        let chunk = next_chunk(&mut *source.reader)?;
        Ok((chunk, source))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Streams `reader` under `place`. The first chunk is read before the status is sent, so a
/// damaged small file is an error response; a read error later ends the transfer (the
/// client sees a truncated body, never wrong bytes).
pub async fn stream(
    place: Place,
    status: StatusCode,
    content_type: &str,
    reader: Box<dyn Read + Send>,
) -> Result<Response<Body>, ApiError> {
    let source = Source {
        reader,
        _place: place,
    };
    let (first, source) = read_chunk(source)
        .await
        .map_err(|e| ApiError::from(crate::blobs::BlobError::from_io(e)))?;
    let chunks =
        futures_util::stream::try_unfold((first, Some(source)), |(ready, source)| async move {
            let Some(chunk) = ready else {
                return Ok(None);
            };
            // read ahead one chunk while this one goes out; the last read drops the source
            let next = match source {
                Some(source) => match read_chunk(source).await {
                    Ok((Some(next), source)) => (Some(next), Some(source)),
                    Ok((None, _)) => (None, None),
                    Err(e) => {
                        tracing::error!("download aborted: {e}");
                        return Err(e);
                    }
                },
                None => (None, None),
            };
            Ok(Some((Frame::data(chunk), next)))
        });
    let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(chunks.boxed())));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_has_their_share_of_downloads_and_places_come_back() {
        let downloads = Downloads::new(2);
        let (ann, bob) = (UserId::new(), UserId::new());
        let a1 = downloads.start(ann).unwrap();
        let _a2 = downloads.start(ann).unwrap();
        let e = downloads.start(ann).err().unwrap();
        assert_eq!((e.status.as_u16(), e.code), (429, "too_many_downloads"));
        let _b = downloads.start(bob).unwrap();
        assert_eq!(downloads.in_flight(), 3);
        drop(a1);
        let _a3 = downloads.start(ann).unwrap();
        drop((_a2, _a3));
        assert_eq!(downloads.in_flight(), 1);
        assert!(!downloads.active.lock().unwrap().contains_key(&ann));
    }

    #[tokio::test]
    async fn the_stream_sends_every_byte_and_frees_its_place_at_the_end() {
        let downloads = Downloads::new(1);
        let owner = UserId::new();
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let place = downloads.start(owner).unwrap();
        let r = stream(
            place,
            StatusCode::OK,
            "application/octet-stream",
            Box::new(std::io::Cursor::new(data.clone())),
        )
        .await
        .unwrap();
        assert!(downloads.start(owner).is_err(), "held while streaming");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.as_ref(), data.as_slice());
        assert!(downloads.start(owner).is_ok(), "given back at the end");
    }

    #[tokio::test]
    async fn a_read_error_after_the_first_chunk_truncates_and_frees_the_place() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("damaged"));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                buf[..n].fill(7);
                Ok(n)
            }
        }
        let downloads = Downloads::new(1);
        let owner = UserId::new();
        let place = downloads.start(owner).unwrap();
        let r = stream(place, StatusCode::OK, "x/y", Box::new(Failing(CHUNK + 5)))
            .await
            .unwrap();
        assert!(r.into_body().collect().await.is_err());
        assert!(downloads.start(owner).is_ok());
        // a reader that fails at once is an error answer, not a 200
        let place = downloads.start(owner).unwrap();
        assert!(stream(place, StatusCode::OK, "x/y", Box::new(Failing(0)))
            .await
            .is_err());
        assert!(downloads.start(owner).is_ok());
    }
}
