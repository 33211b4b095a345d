//! Editing documents: one op (recolour, replace, remove, inpaint, transform, reorder, rename,
//! merge, split) or an undo / redo step makes one new revision.
//!
//! Invariants:
//! - edits to one document are serialised by a per-document lock, and each commit is a
//!   compare-and-swap on the revision it was computed from: a client that names a stale
//!   `revision` gets `409 stale_revision`, and no two edits can both land on one state;
//! - layer blobs are never rewritten: an op that changes pixels writes a new blob (fsynced
//!   before the record commits) and keeps the layer's id; the old blob stays with the undo
//!   state that refers to it. A blob is unlinked only after the commit that stops every state
//!   (current, undo, redo) referring to it, so a crash at any point loses no acknowledged state
//!   and leaves at most orphan blobs for the reconciler;
//! - only the targeted layer changes (merge changes the pair, split replaces one layer);
//! - every op is validated before any pixel work: a bad field is `400` naming it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use hyper::StatusCode;
use image::{GrayImage, RgbImage, RgbaImage};
use serde::Deserialize;

use super::ImageService;
use crate::blobs::DataKey;
use crate::clock::unix;
use crate::engine::decompose::{LayerCount, PeelModels, PeelOptions};
use crate::engine::edit::{self, Fit, MaskSource, Recolor, ReplaceOptions};
use crate::engine::export::encode_layer_png;
use crate::engine::Layer;
use crate::error::ApiError;
use crate::ids::{BlobId, DocumentId, ImageId, JobId, LayerId, UserId};
use crate::store::{DocState, DocumentRecord, JobKind, LayerRecord, LogEntry, StoreError};

/// Undo depth: older states are dropped (and their blobs freed) beyond this.
pub const MAX_UNDO: usize = 50;

/// One edit, as `POST /api/v1/documents/{id}/ops` takes it (API.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum EditOp {
    Recolor {
        layer_id: LayerId,
        #[serde(default)]
        color: Option<String>,
        #[serde(default)]
        hue_shift: Option<f32>,
        #[serde(default)]
        saturation: Option<f32>,
        #[serde(default)]
        lightness: Option<f32>,
    },
    Replace {
        layer_id: LayerId,
        image_id: ImageId,
        #[serde(default)]
        fit: Option<String>,
        #[serde(default)]
        harmonize: Option<f32>,
        /// "layer" (the layer's alpha, default) or "image" (the replacement's own).
        #[serde(default)]
        mask: Option<String>,
        /// Edge softening in pixels (default 1.5).
        #[serde(default)]
        feather: Option<f32>,
    },
    Remove {
        layer_id: LayerId,
    },
    Inpaint {
        layer_id: LayerId,
        mask_image_id: ImageId,
    },
    Transform {
        layer_id: LayerId,
        #[serde(default)]
        dx: Option<i32>,
        #[serde(default)]
        dy: Option<i32>,
        #[serde(default)]
        scale: Option<f32>,
        #[serde(default)]
        opacity: Option<f32>,
        #[serde(default)]
        visible: Option<bool>,
    },
    Reorder {
        layer_id: LayerId,
        z: usize,
    },
    Rename {
        layer_id: LayerId,
        name: String,
    },
    Merge {
        layer_id: LayerId,
    },
    Split {
        layer_id: LayerId,
        #[serde(default)]
        layers: Option<serde_json::Value>,
    },
}

impl EditOp {
    pub fn name(&self) -> &'static str {
        match self {
            EditOp::Recolor { .. } => "recolor",
            EditOp::Replace { .. } => "replace",
            EditOp::Remove { .. } => "remove",
            EditOp::Inpaint { .. } => "inpaint",
            EditOp::Transform { .. } => "transform",
            EditOp::Reorder { .. } => "reorder",
            EditOp::Rename { .. } => "rename",
            EditOp::Merge { .. } => "merge",
            EditOp::Split { .. } => "split",
        }
    }

    fn layer_id(&self) -> LayerId {
        match self {
            EditOp::Recolor { layer_id, .. }
            | EditOp::Replace { layer_id, .. }
            | EditOp::Remove { layer_id }
            | EditOp::Inpaint { layer_id, .. }
            | EditOp::Transform { layer_id, .. }
            | EditOp::Reorder { layer_id, .. }
            | EditOp::Rename { layer_id, .. }
            | EditOp::Merge { layer_id }
            | EditOp::Split { layer_id, .. } => *layer_id,
        }
    }

    /// Slow ops run as jobs (`202 {job_id}`); the rest answer at once.
    pub fn is_slow(&self) -> bool {
        matches!(self, EditOp::Inpaint { .. } | EditOp::Split { .. })
    }
}

/// A parsed request: the op, the revision the client saw (if it said), and the op as sent
/// (kept in the log and carried by a job).
#[derive(Debug, Clone)]
pub struct OpRequest {
    pub op: EditOp,
    pub revision: Option<u64>,
    pub raw: serde_json::Value,
}

impl OpRequest {
    /// Parses and checks the shape of an op body; `400` with a precise message otherwise.
    pub fn parse(value: serde_json::Value) -> Result<Self, ApiError> {
        let serde_json::Value::Object(mut map) = value else {
            return Err(ApiError::bad_request(
                "invalid_op",
                "the body must be a JSON object like {\"op\":\"rename\",\"layer_id\":\"…\",\"name\":\"…\"}",
            ));
        };
        let revision = match map.remove("revision") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                ApiError::bad_request("invalid_revision", "revision must be a whole number")
            })?),
        };
        if !map.contains_key("op") {
            return Err(ApiError::bad_request(
                "invalid_op",
                "missing \"op\": one of recolor, replace, remove, inpaint, transform, reorder, rename, merge, split",
            ));
        }
        let raw = serde_json::Value::Object(map);
        let op: EditOp = serde_json::from_value(raw.clone())
            .map_err(|e| ApiError::bad_request("invalid_op", format!("invalid op: {e}")))?;
        Ok(OpRequest { op, revision, raw })
    }
}

fn invalid(field: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_op",
        format!("{field}: {msg}"),
    )
}

fn stale(current: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "stale_revision",
        format!("the document has changed (it is now at revision {current}); reload it and apply the edit again"),
    )
}

fn parse_hex(s: &str) -> Option<[u8; 3]> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 || !h.is_ascii() {
        return None;
    }
    let b = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
    Some([b(0)?, b(2)?, b(4)?])
}

/// Per-document edit locks.
#[derive(Default)]
pub struct DocLocks(Mutex<HashMap<DocumentId, Arc<Mutex<()>>>>);

impl DocLocks {
    fn get(&self, id: DocumentId) -> Arc<Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // forget locks nobody holds, so the map stays as small as the set of busy documents
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(id).or_default().clone()
    }
}

/// New blobs written by an edit in progress: unlinked again if it does not commit.
struct Written<'a> {
    svc: &'a ImageService,
    owner: UserId,
    key: DataKey,
    blobs: Vec<BlobId>,
}

impl Written<'_> {
    fn layer(&mut self, template: &LayerRecord, rgba: &RgbaImage) -> Result<LayerRecord, ApiError> {
        let layer = Layer {
            name: template.name.clone(),
            kind: template.kind,
            rgba: rgba.clone(),
            text: template.text.clone(),
        };
        let png = encode_layer_png(&layer).map_err(|e| ApiError::internal("layer encode", e))?;
        let blob = BlobId::new();
        let generation = self.svc.keyring.current_generation();
        self.svc
            .blobs
            .put(&self.key, generation, self.owner, blob, &mut &png[..])?;
        self.blobs.push(blob);
        Ok(LayerRecord {
            bbox: layer.bbox(),
            blob,
            ..template.clone()
        })
    }

    fn discard(self) {
        for b in self.blobs {
            let _ = self.svc.blobs.delete(self.owner, b);
        }
    }
}

impl ImageService {
    fn read_layer(
        &self,
        key: &DataKey,
        owner: UserId,
        rec: &LayerRecord,
    ) -> Result<RgbaImage, ApiError> {
        let png = self.blobs.read_all(key, owner, rec.blob)?;
        Ok(
            image::load_from_memory_with_format(&png, image::ImageFormat::Png)
                .map_err(|e| ApiError::internal("layer decode", e))?
                .to_rgba8(),
        )
    }

    /// An uploaded image of the member's, decoded (replacement pictures, brush masks).
    fn load_upload(&self, owner: UserId, id: ImageId) -> Result<image::DynamicImage, ApiError> {
        let rec = self.get(owner, id)?;
        let key = self.data_key(owner)?;
        let bytes = self.blobs.read_all(&key, owner, rec.original_blob)?;
        let decoded = crate::engine::decode(&bytes, &self.limits).map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
        })?;
        Ok(decoded.image)
    }

    /// Checks an op against the document without doing pixel work (used before queueing a
    /// slow op, so its `400`s come back at once).
    pub fn check_op(
        &self,
        owner: UserId,
        id: DocumentId,
        req: &OpRequest,
    ) -> Result<DocumentRecord, ApiError> {
        let doc = self.get_document(owner, id)?;
        if let Some(r) = req.revision {
            if r != doc.revision {
                return Err(stale(doc.revision));
            }
        }
        let index = layer_index(&doc, req.op.layer_id())?;
        validate(&doc, index, &req.op)?;
        match &req.op {
            EditOp::Inpaint { mask_image_id, .. } => {
                self.get(owner, *mask_image_id)?;
            }
            EditOp::Replace { image_id, .. } => {
                self.get(owner, *image_id)?;
            }
            EditOp::Split { .. } if self.inference.get().is_none() => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "models_not_ready",
                    "split needs the decomposition models, which are not loaded; see /readyz",
                ));
            }
            _ => {}
        }
        Ok(doc)
    }

    /// Queues a slow op as a job.
    pub async fn request_edit(
        &self,
        owner: UserId,
        id: DocumentId,
        req: &OpRequest,
    ) -> Result<JobId, ApiError> {
        let mut raw = req.raw.clone();
        if let (Some(r), Some(map)) = (req.revision, raw.as_object_mut()) {
            map.insert("revision".into(), r.into());
        }
        let job = self.jobs.new_job(
            owner,
            JobKind::Edit {
                document_id: id,
                op: raw,
            },
        );
        self.jobs.enqueue(&job).await?;
        Ok(job.id)
    }

    /// Applies one op and commits it as the next revision (blocking: decrypts, computes and
    /// encrypts pixels).
    pub fn edit_blocking(
        &self,
        owner: UserId,
        id: DocumentId,
        req: &OpRequest,
    ) -> Result<DocumentRecord, ApiError> {
        let lock = self.doc_locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let doc = self.check_op(owner, id, req)?;
        let mut written = Written {
            svc: self,
            owner,
            key: self.data_key(owner)?,
            blobs: Vec::new(),
        };
        let result = self.apply(&doc, &req.op, &mut written).and_then(|layers| {
            let mut new = doc.clone();
            new.undo.push(DocState {
                op: doc.last_op.clone(),
                layers: std::mem::take(&mut new.layers),
            });
            if new.undo.len() > MAX_UNDO {
                new.undo.remove(0);
            }
            new.redo.clear();
            new.layers = layers;
            new.last_op = req.op.name().to_string();
            self.commit(&doc, new, "op", req.raw.clone())
        });
        match result {
            Ok(doc) => Ok(doc),
            Err(e) => {
                written.discard();
                Err(e)
            }
        }
    }

    /// Undo (`forward == false`) or redo one step (blocking).
    pub fn step_blocking(
        &self,
        owner: UserId,
        id: DocumentId,
        forward: bool,
        revision: Option<u64>,
    ) -> Result<DocumentRecord, ApiError> {
        let lock = self.doc_locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let doc = self.get_document(owner, id)?;
        if let Some(r) = revision {
            if r != doc.revision {
                return Err(stale(doc.revision));
            }
        }
        let mut new = doc.clone();
        let current = DocState {
            op: doc.last_op.clone(),
            layers: std::mem::take(&mut new.layers),
        };
        let (from, to, action) = if forward {
            (&mut new.redo, &mut new.undo, "redo")
        } else {
            (&mut new.undo, &mut new.redo, "undo")
        };
        let Some(state) = from.pop() else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                if forward {
                    "nothing_to_redo"
                } else {
                    "nothing_to_undo"
                },
                format!("there is nothing to {action} in this document"),
            ));
        };
        let stepped = if forward {
            state.op.clone()
        } else {
            current.op.clone()
        };
        to.push(current);
        new.layers = state.layers;
        new.last_op = state.op;
        self.commit(&doc, new, action, serde_json::Value::String(stepped))
    }

    /// Writes `new` as the revision after `old` (compare-and-swap), flushes, then unlinks the
    /// blobs no state refers to any more.
    fn commit(
        &self,
        old: &DocumentRecord,
        mut new: DocumentRecord,
        action: &str,
        op: serde_json::Value,
    ) -> Result<DocumentRecord, ApiError> {
        new.revision = old.revision + 1;
        let entry = LogEntry {
            revision: new.revision,
            action: action.to_string(),
            op,
            at: unix(self.clock.now()),
        };
        match self.store.commit_document(&new, old.revision, &entry) {
            Err(StoreError::Conflict(_)) => {
                let now = self
                    .store
                    .get_document(old.id)?
                    .ok_or_else(|| ApiError::not_found("document"))?;
                return Err(stale(now.revision));
            }
            other => other?,
        }
        self.store.flush_blocking()?;
        let keep: HashSet<BlobId> = new.blobs().collect();
        for b in old.blobs().filter(|b| !keep.contains(b)) {
            if let Err(e) = self.blobs.delete(new.owner, b) {
                tracing::warn!(blob = %b, "could not remove a dropped layer blob (the reconciler will): {e}");
            }
        }
        Ok(new)
    }

    /// The new layer list after `op` (new blobs go through `w`).
    fn apply(
        &self,
        doc: &DocumentRecord,
        op: &EditOp,
        w: &mut Written<'_>,
    ) -> Result<Vec<LayerRecord>, ApiError> {
        let owner = doc.owner;
        let index = layer_index(doc, op.layer_id())?;
        let mut layers = doc.layers.clone();
        let rec = layers[index].clone();
        let pixels = |w: &Written<'_>| self.read_layer(&w.key, owner, &rec);
        let engine_err = |e: edit::EditError| invalid(e.code(), e);
        match op {
            EditOp::Recolor {
                color,
                hue_shift,
                saturation,
                lightness,
                ..
            } => {
                let how = match color {
                    Some(c) => Recolor::Target {
                        rgb: parse_hex(c).ok_or_else(|| invalid("color", "use \"#rrggbb\""))?,
                    },
                    None => Recolor::Shift {
                        hue_deg: hue_shift.unwrap_or(0.0),
                        saturation: saturation.unwrap_or(1.0),
                        lightness: lightness.unwrap_or(0.0),
                    },
                };
                let out = edit::recolor(&pixels(w)?, &how).map_err(engine_err)?;
                layers[index] = w.layer(&rec, &out)?;
            }
            EditOp::Replace {
                image_id,
                fit,
                harmonize,
                mask,
                feather,
                ..
            } => {
                let opts = ReplaceOptions {
                    fit: match fit.as_deref().unwrap_or("cover") {
                        "contain" => Fit::Contain,
                        "cover" => Fit::Cover,
                        "stretch" => Fit::Stretch,
                        other => {
                            return Err(invalid(
                                "fit",
                                format!("{other:?} is not contain, cover or stretch"),
                            ))
                        }
                    },
                    mask: match mask.as_deref().unwrap_or("layer") {
                        "layer" => MaskSource::Layer,
                        "image" => MaskSource::Image,
                        other => {
                            return Err(invalid("mask", format!("{other:?} is not layer or image")))
                        }
                    },
                    harmonize: harmonize.unwrap_or(0.5),
                    feather: feather.unwrap_or(1.5),
                };
                let replacement = self.load_upload(owner, *image_id)?.to_rgba8();
                let out = edit::replace(&pixels(w)?, &replacement, &opts).map_err(engine_err)?;
                layers[index] = w.layer(&rec, &out)?;
            }
            EditOp::Remove { .. } => {
                layers.remove(index);
            }
            EditOp::Inpaint { mask_image_id, .. } => {
                let mask = edit::mask_from_image(
                    &self.load_upload(owner, *mask_image_id)?,
                    doc.width,
                    doc.height,
                );
                let inference = self.inference.get().cloned();
                let fill = |img: &RgbImage, m: &GrayImage| match &inference {
                    Some(models) => models.inpaint(img, m),
                    None => crate::engine::inpaint::patchmatch_inpaint(img, m, &Default::default()),
                };
                let out = edit::inpaint_layer(&pixels(w)?, &mask, &fill).map_err(engine_err)?;
                layers[index] = w.layer(&rec, &out)?;
            }
            EditOp::Transform {
                dx,
                dy,
                scale,
                opacity,
                visible,
                ..
            } => {
                let (dx, dy, scale) = (dx.unwrap_or(0), dy.unwrap_or(0), scale.unwrap_or(1.0));
                let mut next = if dx != 0 || dy != 0 || scale != 1.0 {
                    let out = edit::transform(&pixels(w)?, dx, dy, scale).map_err(engine_err)?;
                    w.layer(&rec, &out)?
                } else {
                    rec.clone()
                };
                if let Some(o) = opacity {
                    next.opacity = *o;
                }
                if let Some(v) = visible {
                    next.visible = *v;
                }
                layers[index] = next;
            }
            EditOp::Reorder { z, .. } => {
                let layer = layers.remove(index);
                layers.insert(*z, layer);
            }
            EditOp::Rename { name, .. } => {
                layers[index].name = name.trim().to_string();
            }
            EditOp::Merge { .. } => {
                let below = layers[index - 1].clone();
                let effective = |l: &LayerRecord| if l.visible { l.opacity } else { 0.0 };
                let out = edit::merge_down(
                    &self.read_layer(&w.key, owner, &below)?,
                    effective(&below),
                    &pixels(w)?,
                    effective(&rec),
                )
                .map_err(engine_err)?;
                let merged = LayerRecord {
                    visible: true,
                    opacity: 1.0,
                    ..below.clone()
                };
                layers[index - 1] = w.layer(&merged, &out)?;
                layers.remove(index);
            }
            EditOp::Split { layers: count, .. } => {
                let count = split_count(count)?;
                let models = self.inference.get().cloned().ok_or_else(|| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "models_not_ready",
                        "split needs the decomposition models, which are not loaded",
                    )
                })?;
                let layer = Layer {
                    name: rec.name.clone(),
                    kind: rec.kind,
                    rgba: pixels(w)?,
                    text: rec.text.clone(),
                };
                let opts = PeelOptions {
                    layers: count,
                    ..Default::default()
                };
                let parts = crate::engine::decompose::split_layer(&layer, models.as_ref(), &opts)
                    .map_err(|e| {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
                })?;
                let mut recs = Vec::with_capacity(parts.len());
                for (i, part) in parts.iter().enumerate() {
                    let template = LayerRecord {
                        id: if i == 0 { rec.id } else { LayerId::new() },
                        name: part.name.clone(),
                        kind: part.kind,
                        text: part.text.clone(),
                        ..rec.clone()
                    };
                    recs.push(w.layer(&template, &part.rgba)?);
                }
                layers.splice(index..=index, recs);
            }
        }
        Ok(layers)
    }
}

fn layer_index(doc: &DocumentRecord, id: LayerId) -> Result<usize, ApiError> {
    doc.layers
        .iter()
        .position(|l| l.id == id)
        .ok_or_else(|| ApiError::not_found("layer"))
}

fn split_count(v: &Option<serde_json::Value>) -> Result<LayerCount, ApiError> {
    let s = match v {
        None => "auto".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(invalid(
                "layers",
                format!("must be \"auto\" or 2..=10, not {other}"),
            ))
        }
    };
    s.parse().map_err(|m: String| invalid("layers", m))
}

/// Field checks that need the document but no pixels.
fn validate(doc: &DocumentRecord, index: usize, op: &EditOp) -> Result<(), ApiError> {
    let finite = |name: &str, v: Option<f32>| match v {
        Some(x) if !x.is_finite() => Err(invalid(name, "must be a finite number")),
        _ => Ok(()),
    };
    match op {
        EditOp::Recolor {
            color,
            hue_shift,
            saturation,
            lightness,
            ..
        } => {
            let shift = hue_shift.is_some() || saturation.is_some() || lightness.is_some();
            match (color, shift) {
                (Some(_), true) => {
                    return Err(invalid(
                        "recolor",
                        "give either color or hue_shift/saturation/lightness, not both",
                    ))
                }
                (None, false) => {
                    return Err(invalid(
                        "recolor",
                        "give color (\"#rrggbb\") or any of hue_shift, saturation, lightness",
                    ))
                }
                (Some(c), false) if parse_hex(c).is_none() => {
                    return Err(invalid("color", format!("{c:?} is not \"#rrggbb\"")))
                }
                _ => {}
            }
            finite("hue_shift", *hue_shift)?;
            finite("saturation", *saturation)?;
            finite("lightness", *lightness)?;
            if saturation.is_some_and(|s| !(0.0..=10.0).contains(&s)) {
                return Err(invalid("saturation", "must be a factor in 0..=10"));
            }
            if lightness.is_some_and(|l| !(-1.0..=1.0).contains(&l)) {
                return Err(invalid("lightness", "must be a delta in -1..=1"));
            }
        }
        EditOp::Replace {
            harmonize, feather, ..
        } => {
            finite("harmonize", *harmonize)?;
            finite("feather", *feather)?;
            if harmonize.is_some_and(|h| !(0.0..=1.0).contains(&h)) {
                return Err(invalid("harmonize", "must be in 0..=1"));
            }
            if feather.is_some_and(|f| !(0.0..=64.0).contains(&f)) {
                return Err(invalid("feather", "must be 0..=64 pixels"));
            }
        }
        EditOp::Remove { .. } if doc.layers.len() == 1 => {
            return Err(invalid(
                "layer_id",
                "the only layer of a document cannot be removed",
            ));
        }
        EditOp::Transform {
            dx,
            dy,
            scale,
            opacity,
            visible,
            ..
        } => {
            if dx.is_none()
                && dy.is_none()
                && scale.is_none()
                && opacity.is_none()
                && visible.is_none()
            {
                return Err(invalid(
                    "transform",
                    "give at least one of dx, dy, scale, opacity, visible",
                ));
            }
            finite("scale", *scale)?;
            finite("opacity", *opacity)?;
            if scale.is_some_and(|s| !(0.05..=20.0).contains(&s)) {
                return Err(invalid("scale", "must be in 0.05..=20"));
            }
            if opacity.is_some_and(|o| !(0.0..=1.0).contains(&o)) {
                return Err(invalid("opacity", "must be in 0..=1"));
            }
            let limit = 2 * doc.width.max(doc.height) as i64;
            if [dx, dy]
                .iter()
                .any(|d| d.is_some_and(|d| (d as i64).abs() > limit))
            {
                return Err(invalid("dx/dy", format!("must be within ±{limit} pixels")));
            }
        }
        EditOp::Reorder { z, .. } if *z >= doc.layers.len() => {
            return Err(invalid(
                "z",
                format!("must be 0..={} (0 is the back)", doc.layers.len() - 1),
            ));
        }
        EditOp::Rename { name, .. } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(invalid("name", "must be 1..=200 printable characters"));
            }
        }
        EditOp::Merge { .. } if index == 0 => {
            return Err(invalid(
                "layer_id",
                "the bottom layer has no layer below to merge into",
            ));
        }
        EditOp::Split { layers, .. } => {
            split_count(layers)?;
        }
        _ => {}
    }
    Ok(())
}

/// The job behind a slow op: applies it as [`ImageService::edit_blocking`] would have.
pub struct EditJob(pub ImageService);

impl crate::jobs::JobHandler for EditJob {
    fn run(
        &self,
        ctx: &mut crate::jobs::JobContext,
    ) -> Result<serde_json::Value, crate::jobs::JobFailure> {
        use crate::jobs::JobFailure;
        let JobKind::Edit { document_id, op } = ctx.job().kind.clone() else {
            return Err(JobFailure::abort("wrong_job_kind", "not an edit job"));
        };
        let owner = ctx.job().owner;
        let req = OpRequest::parse(op).map_err(|e| JobFailure::abort(e.code, e.message))?;
        ctx.progress(0.1);
        let doc = self
            .0
            .edit_blocking(owner, document_id, &req)
            .map_err(|e| JobFailure::abort(e.code, e.message))?;
        Ok(serde_json::json!({
            "document_id": doc.id,
            "revision": doc.revision,
            "op": req.op.name(),
        }))
    }
}
