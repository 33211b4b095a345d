//! Images: upload (multipart field `file`, or a raw `image/*` body), list, metadata, the
//! original bytes, the thumbnail, delete. Another member's image is 404.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::{Request, StatusCode};

use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::http::request::{authenticate, file_body};
use crate::http::respond::{empty, json, stream_reader, HttpResult};
use crate::http::router::parse_id;
use crate::http::Server;
use crate::ids::ImageId;
use crate::store::ImageRecord;

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

pub async fn upload(app: &Server, req: Request<Incoming>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let bytes = file_body(app, &parts, body).await?;
    let rec = app.images.upload(p.user.id, bytes).await?;
    Ok(json(StatusCode::CREATED, &image_json(&rec)))
}

pub async fn list(app: &Server, req: Request<Incoming>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let images: Vec<_> = app.images.list(p.user.id)?.iter().map(image_json).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "images": images }),
    ))
}

pub async fn get(app: &Server, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    Ok(json(
        StatusCode::OK,
        &image_json(&app.images.get(p.user.id, id)?),
    ))
}

pub async fn original(app: &Server, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    let rec = app.images.get(p.user.id, id)?;
    let reader = app.images.open_blob(p.user.id, rec.original_blob)?;
    let mut r = stream_reader(StatusCode::OK, rec.format.mime(), reader).await?;
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(rec.bytes));
    Ok(r)
}

pub async fn thumbnail(app: &Server, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
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

pub async fn delete(app: &Server, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    app.images.delete(p.user.id, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn request_cutout(app: &Server, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    let job_id = app.images.request_cutout(p.user.id, id).await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "job_id": job_id }),
    ))
}

pub async fn cutout(app: &Server, req: Request<Incoming>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
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
