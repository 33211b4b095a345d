//! Editing documents: one op (recolour, replace, remove, inpaint, transform, reorder, rename,
//! merge, split) or an undo / redo step makes one new revision.
//!
//! Invariants:
//! - edits to one document are serialised by a per-document lock, and each commit is a
//!   compare-and-swap on the revision it was computed from: a client that names a stale
//!   `revision` gets `409 stale_revision`, and no two edits can both land on one state;
//! - ops work on the target layer's full canvas and store the box of its visible pixels;
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

use image::RgbaImage;

use super::{DocumentError, DocumentService};
use crate::blobs::DataKey;
use crate::clock::unix;
use crate::engine::export::encode_layer_png;
use crate::engine::Layer;
use crate::ids::{BlobId, DocumentId, JobId, LayerId, UserId};
use crate::store::{DocState, DocumentRecord, JobKind, LayerRecord, LogEntry, StoreError};

use self::op::validate;
pub use self::op::{EditOp, OpRequest};

/// Undo depth: older states are dropped (and their blobs freed) beyond this.
pub const MAX_UNDO: usize = 50;

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
    svc: &'a DocumentService,
    owner: UserId,
    key: DataKey,
    blobs: Vec<BlobId>,
}

impl Written<'_> {
    /// Stores `rgba` (the full canvas) as the box of its visible pixels, under `template`'s
    /// id and settings.
    fn layer(
        &mut self,
        template: &LayerRecord,
        rgba: &RgbaImage,
    ) -> Result<LayerRecord, DocumentError> {
        let layer = Layer::from_canvas(
            template.name.clone(),
            template.kind,
            template.text.clone(),
            rgba,
        );
        let png =
            encode_layer_png(&layer).map_err(|e| DocumentError::internal("layer encode", e))?;
        let blob = self.svc.vault.put(&self.key, self.owner, &png)?;
        self.blobs.push(blob);
        Ok(LayerRecord {
            bbox: layer.bbox(),
            blob,
            origin: Some(layer.origin),
            ..template.clone()
        })
    }

    fn discard(self) {
        self.svc.vault.unlink_blocking(self.owner, self.blobs);
    }
}

impl DocumentService {
    /// Checks an op against the document without doing pixel work (used before queueing a
    /// slow op, so its `400`s come back at once).
    pub fn check_op(
        &self,
        owner: UserId,
        id: DocumentId,
        req: &OpRequest,
    ) -> Result<DocumentRecord, DocumentError> {
        let doc = self.get(owner, id)?;
        if let Some(r) = req.revision {
            if r != doc.revision {
                return Err(DocumentError::StaleRevision(doc.revision));
            }
        }
        let index = layer_index(&doc, req.op.layer_id())?;
        validate(&doc, index, &req.op)?;
        match &req.op {
            EditOp::Inpaint { mask_image_id, .. } => {
                self.images.get(owner, *mask_image_id)?;
            }
            EditOp::Replace { image_id, .. } => {
                self.images.get(owner, *image_id)?;
            }
            EditOp::Split { .. } if self.images.inference.get().is_none() => {
                return Err(DocumentError::ModelsNotReady(
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
    ) -> Result<JobId, DocumentError> {
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
    ) -> Result<DocumentRecord, DocumentError> {
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
    ) -> Result<DocumentRecord, DocumentError> {
        let lock = self.locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = req.job {
            if self
                .vault
                .store
                .document_log(id, owner)?
                .iter()
                .any(|e| e.job == Some(job))
            {
                // this job's edit landed before a crash kept the job from recording it
                return self.get(owner, id);
            }
        }
        let doc = self.check_op(owner, id, req)?;
        let pixels = u64::from(doc.width) * u64::from(doc.height);
        // waits while large jobs hold the memory (the document's lock is held meanwhile:
        // its next edit would wait for this one anyway)
        let _memory = match req.op.memory_bytes(pixels) {
            0 => None,
            bytes => crate::jobs::memory::budget().claim(bytes, &mut || true),
        };
        let mut written = Written {
            svc: self,
            owner,
            key: self.vault.data_key(owner)?,
            blobs: Vec::new(),
        };
        let result = self
            .apply(&doc, &req.op, &mut written, progress)
            .and_then(|layers| {
                let mut new = doc.clone();
                new.undo.push(DocState {
                    op: doc.last_op,
                    layers: std::mem::take(&mut new.layers),
                    revision: doc.revision,
                });
                if new.undo.len() > MAX_UNDO {
                    new.undo.remove(0);
                }
                new.redo.clear();
                new.layers = layers;
                new.last_op = req.op.name();
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
    ) -> Result<DocumentRecord, DocumentError> {
        let lock = self.locks.get(id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let doc = self.get(owner, id)?;
        if let Some(r) = revision {
            if r != doc.revision {
                return Err(DocumentError::StaleRevision(doc.revision));
            }
        }
        let mut new = doc.clone();
        let current = DocState {
            op: doc.last_op,
            layers: std::mem::take(&mut new.layers),
            revision: doc.revision,
        };
        let (from, to, action) = if forward {
            (&mut new.redo, &mut new.undo, "redo")
        } else {
            (&mut new.undo, &mut new.redo, "undo")
        };
        let Some(state) = from.pop() else {
            return Err(if forward {
                DocumentError::NothingToRedo
            } else {
                DocumentError::NothingToUndo
            });
        };
        let stepped = if forward { state.op } else { current.op };
        to.push(current);
        new.layers = state.layers;
        new.last_op = state.op;
        let stepped = serde_json::Value::String(stepped.as_str().to_string());
        self.commit(&doc, new, action, stepped, None)
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
    ) -> Result<DocumentRecord, DocumentError> {
        new.revision = old.revision + 1;
        let entry = LogEntry {
            revision: new.revision,
            action: action.to_string(),
            op,
            at: unix(self.clock.now()),
            job,
        };
        let store = &self.vault.store;
        match store.commit_document(&new, old.revision, &entry) {
            Err(StoreError::Conflict(_)) => {
                let now = store
                    .get_document(old.id)?
                    .ok_or(DocumentError::NotFound("document"))?;
                return Err(DocumentError::StaleRevision(now.revision));
            }
            other => other?,
        }
        store.flush_blocking()?;
        let keep: HashSet<BlobId> = new.blobs().collect();
        self.vault
            .unlink_blocking(new.owner, old.blobs().filter(|b| !keep.contains(b)));
        Ok(new)
    }
}

fn layer_index(doc: &DocumentRecord, id: LayerId) -> Result<usize, DocumentError> {
    doc.layers
        .iter()
        .position(|l| l.id == id)
        .ok_or(DocumentError::NotFound("layer"))
}
