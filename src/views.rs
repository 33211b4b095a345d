//! JSON views of the store's records: what a member sees of their account, images,
//! documents, jobs and consents. The API answers with them and the data export
//! (`crate::privacy`) writes the same shapes, so "export my data" shows exactly what the
//! API does. Internal fields (blob ids, wrapped keys, password hashes) never appear.

use crate::clock::rfc3339;
use crate::store::{ConsentRecord, DocumentRecord, ImageRecord, JobRecord, UserRecord};

/// The member's profile as `GET /api/v1/me` starts it.
pub fn me_json(u: &UserRecord) -> serde_json::Value {
    serde_json::json!({
        "id": u.id, "email": u.email, "name": u.name,
        "role": u.role, "plan": u.plan, "verified": u.verified,
        "pending_email": u.pending_email,
        "must_change_password": u.must_change_password,
        // the balance, filled in by whoever has the ledger at hand
        "credits": null,
    })
}

/// The member's consents and their history.
pub fn consents_json(c: &ConsentRecord) -> serde_json::Value {
    serde_json::json!({
        "training": c.training,
        "analytics": c.analytics,
        "marketing": c.marketing,
        "history": c.history.iter().map(|h| serde_json::json!({
            "kind": h.kind, "value": h.value, "at": rfc3339(h.at),
            "policy_version": h.policy_version,
        })).collect::<Vec<_>>(),
    })
}

/// An image as `GET /api/v1/images/{id}` shows it.
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

/// A document's summary (the list's rows): everything but its layers and history.
pub fn summary_json(d: &DocumentRecord) -> serde_json::Value {
    serde_json::json!({
        "id": d.id,
        "image_id": d.image_id,
        "width": d.width,
        "height": d.height,
        "revision": d.revision,
        "mode": d.mode.as_str(),
        "created_at": rfc3339(d.created_at),
        "expires_at": rfc3339(d.expires_at),
    })
}

/// A document as `GET /api/v1/documents/{id}` shows it: the summary, the history flags and
/// the layers back to front.
pub fn document_json(d: &DocumentRecord) -> serde_json::Value {
    let mut v = summary_json(d);
    let extra = serde_json::json!({
        "can_undo": !d.undo.is_empty(),
        "can_redo": !d.redo.is_empty(),
        "undo_op": (!d.undo.is_empty()).then_some(d.last_op.as_str()),
        "redo_op": d.redo.last().map(|s| s.op.as_str()),
        "layers": d.layers.iter().enumerate().map(|(z, l)| serde_json::json!({
            "id": l.id, "name": l.name, "kind": l.kind, "z": z, "visible": l.visible,
            "opacity": l.opacity, "bbox": l.bbox, "text": l.text,
            "url": format!("/api/v1/documents/{}/layers/{}", d.id, l.id),
        })).collect::<Vec<_>>(),
    });
    if let (Some(map), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        map.extend(extra);
    }
    v
}

/// A job as `GET /api/v1/jobs/{id}` shows it.
pub fn job_json(j: &JobRecord) -> serde_json::Value {
    serde_json::json!({
        "id": j.id,
        "kind": j.kind.name(),
        "state": j.state,
        "progress": j.progress,
        "attempts": j.attempts,
        "error": j.error,
        "result": j.result,
        "created_at": rfc3339(j.created_at),
        "updated_at": rfc3339(j.updated_at),
    })
}
