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

mod apply;
mod job;
mod op;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use hyper::StatusCode;
use image::RgbaImage;

use super::ImageService;
use crate::blobs::DataKey;
use crate::clock::unix;
use crate::engine::export::encode_layer_png;
use crate::engine::Layer;
use crate::error::ApiError;
use crate::ids::{BlobId, DocumentId, JobId, LayerId, UserId};
use crate::store::{DocState, DocumentRecord, JobKind, LayerRecord, LogEntry, StoreError};

pub use self::job::EditJob;
use self::op::validate;
pub use self::op::{EditOp, OpRequest};

/// Undo depth: older states are dropped (and their blobs freed) beyond this.
pub const MAX_UNDO: usize = 50;

fn stale(current: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "stale_revision",
        format!("the document has changed (it is now at revision {current}); reload it and apply the edit again"),
    )
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
pub(super) struct Written<'a> {
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
        self.edit_blocking_with(owner, id, req, &mut |_| {})
    }

    /// [`edit_blocking`](Self::edit_blocking), reporting the pixel work's progress (0..1) of
    /// slow ops.
    pub fn edit_blocking_with(
        &self,
        owner: UserId,
        id: DocumentId,
        req: &OpRequest,
        progress: &mut dyn FnMut(f32),
    ) -> Result<DocumentRecord, ApiError> {
        let lock = self.doc_locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = req.job {
            if self
                .store
                .document_log(id)?
                .iter()
                .any(|e| e.job == Some(job))
            {
                // this job's edit landed before a crash kept the job from recording it
                return self.get_document(owner, id);
            }
        }
        let doc = self.check_op(owner, id, req)?;
        let mut written = Written {
            svc: self,
            owner,
            key: self.data_key(owner)?,
            blobs: Vec::new(),
        };
        let result = self
            .apply(&doc, &req.op, &mut written, progress)
            .and_then(|layers| {
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
                self.commit(&doc, new, "op", req.raw.clone(), req.job)
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
        self.commit(&doc, new, action, serde_json::Value::String(stepped), None)
    }

    /// Writes `new` as the revision after `old` (compare-and-swap), flushes, then unlinks the
    /// blobs no state refers to any more.
    fn commit(
        &self,
        old: &DocumentRecord,
        mut new: DocumentRecord,
        action: &str,
        op: serde_json::Value,
        job: Option<JobId>,
    ) -> Result<DocumentRecord, ApiError> {
        new.revision = old.revision + 1;
        let entry = LogEntry {
            revision: new.revision,
            action: action.to_string(),
            op,
            at: unix(self.clock.now()),
            job,
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
}

fn layer_index(doc: &DocumentRecord, id: LayerId) -> Result<usize, ApiError> {
    doc.layers
        .iter()
        .position(|l| l.id == id)
        .ok_or_else(|| ApiError::not_found("layer"))
}
