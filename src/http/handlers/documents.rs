//! Decomposition requests and layered documents: start a decompose job, read a document,
//! download one layer as a full-canvas RGBA PNG, edit it (ops, undo, redo) and export it.
//! Another member's document is 404.

use crate::http::ReqBody;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use crate::audit::Actor;
use crate::documents::edit::OpRequest;
use crate::engine::decompose::{DecomposeMode, LayerCount};
use crate::engine::export::ExportFormat;
use crate::error::ApiError;
use crate::http::blocking;
use crate::http::request::{authenticate, file_body, parse_json, query, read_body};
use crate::http::respond::{empty, json, HttpResult};
use crate::http::router::parse_id;
use crate::http::Server;
use crate::ids::{DocumentId, ImageId, LayerId};
use crate::views::{document_json, summary_json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecomposeBody {
    #[serde(default)]
    layers: Option<serde_json::Value>,
    #[serde(default)]
    mode: Option<String>,
}

pub async fn decompose(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: ImageId = parse_id(id, "image")?;
    let raw = read_body(&parts, body, 16 * 1024).await?;
    let body: DecomposeBody = if raw.is_empty() {
        DecomposeBody {
            layers: None,
            mode: None,
        }
    } else {
        parse_json(&raw)?
    };
    let layers = LayerCount::from_json(body.layers.as_ref())
        .map_err(|m| ApiError::bad_request("invalid_layers", m))?;
    let mode: DecomposeMode = match body.mode {
        None => DecomposeMode::Peel,
        Some(m) => m
            .parse()
            .map_err(|m| ApiError::bad_request("invalid_mode", m))?,
    };
    let job_id = app
        .documents
        .request_decompose(p.user.id, id, layers, mode)
        .await?;
    super::billing::job_accepted(app, p.user.id, job_id).await
}

pub async fn get(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: DocumentId = parse_id(id, "document")?;
    let documents = app.documents.clone();
    let doc = blocking(move || documents.get(p.user.id, id)).await?;
    Ok(json(StatusCode::OK, &document_json(&doc)))
}

pub async fn layer(app: &Server, req: Request<ReqBody>, id: &str, layer: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: DocumentId = parse_id(id, "document")?;
    let layer: LayerId = parse_id(layer, "layer")?;
    let documents = app.documents.clone();
    let owner = p.user.id;
    let reader = blocking(move || documents.open_layer(owner, id, layer)).await?;
    app.download(owner, "image/png", reader).await
}

pub async fn export(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: DocumentId = parse_id(id, "document")?;
    let format: ExportFormat = query(&parts, "format")
        .as_deref()
        .unwrap_or("png")
        .parse()
        .map_err(|m| ApiError::bad_request("invalid_format", m))?;
    let documents = app.documents.clone();
    let owner = p.user.id;
    let _place = app.admission.admit(owner).await?;
    let bytes = blocking(move || documents.export(owner, id, format)).await?;
    let mut r = crate::http::respond::bytes(StatusCode::OK, format.content_type(), bytes);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&format!(
        "attachment; filename=\"document-{id}.{}\"",
        format.extension()
    )) {
        r.headers_mut()
            .insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// `DELETE /api/v1/documents/{id}`: the document, its layers and its history, at once
/// (`204`); the image it was made from stays.
pub async fn delete(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: DocumentId = parse_id(id, "document")?;
    app.documents
        .delete(Actor::of(&p.user), p.user.id, id)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /api/v1/documents/{id}/ops`: fast ops answer `200` with the new document, slow ones
/// (inpaint, split) `202 {job_id}`.
pub async fn ops(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: DocumentId = parse_id(id, "document")?;
    let raw = read_body(&parts, body, 64 * 1024).await?;
    let value: serde_json::Value = parse_json(&raw)?;
    let op = OpRequest::parse(value)?;
    let owner = p.user.id;
    let documents = app.documents.clone();
    if op.op.is_slow() {
        let checked = op.clone();
        blocking(move || documents.check_op(owner, id, &checked)).await?;
        let job_id = app.documents.request_edit(owner, id, &op).await?;
        return super::billing::job_accepted(app, owner, job_id).await;
    }
    let _place = app.admission.admit(owner).await?;
    let doc = blocking(move || documents.edit_blocking(owner, id, &op)).await?;
    Ok(json(StatusCode::OK, &document_json(&doc)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    #[serde(default)]
    revision: Option<u64>,
}

/// `POST /api/v1/documents/{id}/undo` and `/redo`: one step through the history.
pub async fn step(app: &Server, req: Request<ReqBody>, id: &str, forward: bool) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let id: DocumentId = parse_id(id, "document")?;
    let raw = read_body(&parts, body, 4 * 1024).await?;
    let body: StepBody = if raw.is_empty() {
        StepBody { revision: None }
    } else {
        parse_json(&raw)?
    };
    let documents = app.documents.clone();
    let owner = p.user.id;
    let _place = app.admission.admit(owner).await?;
    let doc = blocking(move || documents.step_blocking(owner, id, forward, body.revision)).await?;
    Ok(json(StatusCode::OK, &document_json(&doc)))
}

/// `POST /api/v1/documents`: import a .psd or .ora as a new document (`201`).
pub async fn import(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, body) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    // the slot first: no body is held in memory while it waits for one
    let _slot = app.images.upload_slot().await?;
    let bytes = file_body(app, &parts, body).await?;
    let doc = app.documents.import_in_slot(p.user.id, bytes).await?;
    Ok(json(StatusCode::CREATED, &document_json(&doc)))
}

/// `GET /api/v1/documents`: the member's documents, newest first (summaries; `GET
/// /api/v1/documents/{id}` has the layers).
pub async fn list(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let p = authenticate(app, &parts).await?;
    let documents = app.documents.clone();
    let docs: Vec<_> = blocking(move || documents.list(p.user.id))
        .await?
        .iter()
        .map(|d| {
            let mut v = summary_json(d);
            v["layers"] = d.layers.len().into();
            v
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "documents": docs }),
    ))
}
