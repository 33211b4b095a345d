//! Images: upload (multipart field `file`, or a raw `image/*` body), list, metadata, the
//! original bytes, the thumbnail, delete. Another member's image is 404.

use std::io::Read;

use crate::http::ReqBody;
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::{Request, StatusCode};

use crate::audit::Actor;
use crate::error::ApiError;
use crate::http::blocking;
use crate::http::request::{authenticate, file_body};
use crate::http::respond::{empty, json, HttpResult};
use crate::http::router::parse_id;
use crate::http::Server;
use crate::ids::{BlobId, ImageId, UserId};
use crate::store::ImageRecord;
use crate::views::image_json;

/// The member's image and a decrypting reader over the blob `pick` chooses (on the
/// blocking pool: a store read and a file open).
async fn open_blob(
    app: &Server,
    owner: UserId,
    id: ImageId,
    pick: impl FnOnce(&ImageRecord) -> Result<BlobId, ApiError> + Send + 'static,
) -> Result<(ImageRecord, Box<dyn Read + Send>), ApiError> {
    let images = app.images.clone();
    blocking(move || {
        let rec = images.get(owner, id)?;
        let blob = pick(&rec)?;
        let reader = images.open_blob(owner, blob)?;
        Ok::<_, ApiError>((rec, reader))
    })
    .await
}

pub async fn upload(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    // the slot first: no body is held in memory while it waits for one
    let _slot = app.images.upload_slot().await?;
    let bytes = file_body(app, &parts, body).await?;
    let rec = app.images.upload_in_slot(p.user.id, bytes).await?;
    Ok(json(StatusCode::CREATED, &image_json(&rec)))
}

pub async fn list(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let images = app.images.clone();
    let images: Vec<_> = blocking(move || images.list(p.user.id))
        .await?
        .iter()
        .map(image_json)
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "images": images }),
    ))
}

pub async fn get(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    let images = app.images.clone();
    let rec = blocking(move || images.get(p.user.id, id)).await?;
    Ok(json(StatusCode::OK, &image_json(&rec)))
}

pub async fn original(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    let (rec, reader) = open_blob(app, p.user.id, id, |rec| Ok(rec.original_blob)).await?;
    let mut r = app.download(p.user.id, rec.format.mime(), reader).await?;
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(rec.bytes));
    Ok(r)
}

pub async fn thumbnail(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    let (_, reader) = open_blob(app, p.user.id, id, |rec| {
        rec.thumbnail_blob.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "thumbnail_not_ready",
                "the thumbnail is not ready yet; follow the job in thumbnail_job_id",
            )
        })
    })
    .await?;
    app.download(p.user.id, "image/png", reader).await
}

pub async fn delete(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    app.images.delete(Actor::of(&p.user), p.user.id, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn request_cutout(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    let job_id = app.images.request_cutout(p.user.id, id).await?;
    super::billing::job_accepted(app, p.user.id, job_id).await
}

pub async fn cutout(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    let (_, reader) = open_blob(app, p.user.id, id, |rec| {
        rec.cutout_blob.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "cutout_not_ready",
                "no cutout yet: POST /api/v1/images/{id}/cutout and follow its job",
            )
        })
    })
    .await?;
    app.download(p.user.id, "image/png", reader).await
}
