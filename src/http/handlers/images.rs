//! Images: upload (multipart field `file`, or a raw `image/*` body), list, metadata, the
//! original bytes, the thumbnail, delete. Another member's image is 404.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, StatusCode};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::app::App;
use crate::error::ApiError;
use crate::http::request::{authenticate, read_body};
use crate::http::respond::{empty, json, stream_reader, HttpResult};
use crate::http::router::parse_id;
use crate::ids::ImageId;
use crate::store::ImageRecord;

/// Room for multipart framing on top of the file limit.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

pub fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn image_json(i: &ImageRecord) -> serde_json::Value {
    serde_json::json!({
        "id": i.id,
        "width": i.width,
        "height": i.height,
        "format": i.format,
        "bytes": i.bytes,
        "sha256": i.sha256,
        "exif": i.exif,
        "state": i.state,
        "created_at": rfc3339(i.created_at),
        "expires_at": rfc3339(i.expires_at),
        "original_url": format!("/api/v1/images/{}/original", i.id),
        "thumbnail_url": i.thumbnail_blob.map(|_| format!("/api/v1/images/{}/thumbnail", i.id)),
        "thumbnail_job_id": i.thumbnail_job,
        "cutout_url": i.cutout_blob.map(|_| format!("/api/v1/images/{}/cutout", i.id)),
    })
}

async fn multipart_file(body: Bytes, boundary: String, limit: u64) -> Result<Vec<u8>, ApiError> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().for_field("file", limit));
    let mut mp = multer::Multipart::with_constraints(stream, boundary, constraints);
    let bad = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            ApiError::too_large(limit)
        }
        other => ApiError::bad_request(
            "invalid_multipart",
            format!("malformed multipart body: {other}"),
        ),
    };
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        if field.name() == Some("file") {
            return Ok(field.bytes().await.map_err(bad)?.to_vec());
        }
    }
    Err(ApiError::bad_request(
        "missing_file",
        "the multipart body has no field named `file`",
    ))
}

pub async fn upload(app: &App, req: Request<Incoming>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts)?;
    let bytes = file_body(app, &parts, body).await?;
    let rec = app.images.upload(p.user.id, bytes).await?;
    Ok(json(StatusCode::CREATED, &image_json(&rec)))
}

/// The uploaded file of a request: a multipart field `file`, or the raw body (`image/*`,
/// `application/octet-stream` or `application/zip`), within `uploads.max_bytes`.
pub(crate) async fn file_body(
    app: &App,
    parts: &hyper::http::request::Parts,
    body: Incoming,
) -> Result<Vec<u8>, ApiError> {
    let limit = app.config.uploads.max_bytes;
    let raw_ctype = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // media types compare case-insensitively; the boundary is case-sensitive
    let ctype = raw_ctype.to_ascii_lowercase();
    Ok(if ctype.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(raw_ctype).map_err(|e| {
            ApiError::bad_request(
                "invalid_multipart",
                format!("bad multipart content type: {e}"),
            )
        })?;
        let raw = read_body(parts, body, limit + MULTIPART_OVERHEAD).await?;
        multipart_file(raw, boundary, limit).await?
    } else if ctype.is_empty()
        || ctype.starts_with("image/")
        || ctype == "application/octet-stream"
        || ctype == "application/zip"
    {
        read_body(parts, body, limit).await?.to_vec()
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send the file as multipart/form-data (field `file`) or as a raw image/* body, not {ctype}"),
        ));
    })
}

pub async fn list(app: &App, req: Request<Incoming>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts)?;
    let images: Vec<_> = app.images.list(p.user.id)?.iter().map(image_json).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "images": images }),
    ))
}

pub async fn get(app: &App, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts)?;
    let id: ImageId = parse_id(id, "image")?;
    Ok(json(
        StatusCode::OK,
        &image_json(&app.images.get(p.user.id, id)?),
    ))
}

pub async fn original(app: &App, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts)?;
    let id: ImageId = parse_id(id, "image")?;
    let rec = app.images.get(p.user.id, id)?;
    let reader = app.images.open_blob(p.user.id, rec.original_blob)?;
    let mut r = stream_reader(StatusCode::OK, rec.format.mime(), reader).await?;
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(rec.bytes));
    Ok(r)
}

pub async fn thumbnail(app: &App, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts)?;
    let id: ImageId = parse_id(id, "image")?;
    let rec = app.images.get(p.user.id, id)?;
    let Some(blob) = rec.thumbnail_blob else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "thumbnail_not_ready",
            "the thumbnail is not ready yet; follow the job in thumbnail_job_id",
        ));
    };
    let reader = app.images.open_blob(p.user.id, blob)?;
    stream_reader(StatusCode::OK, "image/png", reader).await
}

pub async fn delete(app: &App, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts)?;
    let id: ImageId = parse_id(id, "image")?;
    app.images.delete(p.user.id, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn request_cutout(app: &App, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts)?;
    let id: ImageId = parse_id(id, "image")?;
    let job_id = app.images.request_cutout(p.user.id, id).await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "job_id": job_id }),
    ))
}

pub async fn cutout(app: &App, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts)?;
    let id: ImageId = parse_id(id, "image")?;
    let rec = app.images.get(p.user.id, id)?;
    let Some(blob) = rec.cutout_blob else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "cutout_not_ready",
            "no cutout yet: POST /api/v1/images/{id}/cutout and follow its job",
        ));
    };
    let reader = app.images.open_blob(p.user.id, blob)?;
    stream_reader(StatusCode::OK, "image/png", reader).await
}
