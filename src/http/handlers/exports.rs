//! "Export my data": queue the export job, download the finished ZIP (its owner only).

use crate::http::ReqBody;
use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_LENGTH};
use hyper::{Request, StatusCode};

use crate::http::blocking;
use crate::http::request::authenticate;
use crate::http::respond::{json, HttpResult};
use crate::http::router::parse_id;
use crate::http::Server;
use crate::ids::ExportId;

/// `POST /api/v1/me/export`: `202 {job_id}`; the job's result carries the download link.
pub async fn request(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let job = app.privacy.request_export(&p.user).await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "job_id": job.id }),
    ))
}

/// `GET /api/v1/me/exports/{id}`: the ZIP, streamed as it is decrypted; another member's
/// export, or one whose link expired, is 404.
pub async fn download(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ExportId = parse_id(id, "export")?;
    let privacy = app.privacy.clone();
    let owner = p.user.id;
    let (rec, reader) = blocking(move || privacy.open_export(owner, id)).await?;
    let mut r = app.download(owner, "application/zip", reader).await?;
    let headers = r.headers_mut();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(rec.bytes));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"image-layered-export-{}.zip\"",
        rec.id
    )) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
