//! Documents as a service: a decomposition or an imported layered file is stored as a
//! document whose layers are encrypted PNG blobs of each layer's box, placed by the record's
//! `origin` (written and fsynced before the record commits; a layer stored before boxes is the
//! full canvas and is read as it is), kept as long as the image's plan retention; a layer is
//! served as a full-canvas PNG encoded row by row as it is read. Reads are owner-checked like
//! everything else (another member's document does not exist). Editing with history lives in
//! [`edit`], decomposition jobs in [`decompose`], import in `import`.

pub mod decompose;
pub mod edit;
mod import;

use std::io::Read;
use std::sync::Arc;

use image::RgbaImage;

use crate::audit::{Actor, AuditLog};
use crate::blobs::{BlobError, DataKey};
use crate::clock::{unix, SharedClock};
use crate::engine::decompose::DecomposeError;
use crate::engine::export::{encode, encode_layer_png, CanvasPngReader, ExportFormat};
use crate::engine::{DecodeError, Layer, LayerProps, LayerStack};
use crate::ids::{DocumentId, ImageId, LayerId, UserId};
use crate::images::{ImageError, ImageService};
use crate::jobs::JobQueue;
use crate::store::{DocumentMode, DocumentRecord, HistoryOp, ImageState, LayerRecord, StoreError};
use crate::vault::{Vault, VaultError};

/// What can go wrong with documents; `crate::error` maps each to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Enqueue(#[from] crate::jobs::EnqueueError),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error(
        "the document has changed (it is now at revision {0}); reload it and apply the edit again"
    )]
    StaleRevision(u64),
    #[error("there is nothing to undo in this document")]
    NothingToUndo,
    #[error("there is nothing to redo in this document")]
    NothingToRedo,
    /// A field of an op is wrong; the message names it.
    #[error("{0}")]
    InvalidOp(String),
    #[error("revision must be a whole number")]
    InvalidRevision,
    #[error("{0}")]
    ModelsNotReady(&'static str),
    #[error("no separate parts were found in {0:?}; the document is unchanged")]
    NothingToSplit(String),
    #[error(transparent)]
    Split(DecomposeError),
    /// A replacement picture or brush mask that cannot be decoded.
    #[error(transparent)]
    UnreadableUpload(DecodeError),
    #[error("import takes a Photoshop .psd or an OpenRaster .ora file")]
    UnsupportedImport,
    #[error("{message}")]
    UnreadableImport { code: &'static str, message: String },
    #[error("the file has no layers")]
    EmptyDocument,
    #[error("the canvas is {width}x{height}, over this studio's limit of {max_pixels} pixels")]
    CanvasTooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{context}: {message}")]
    Internal {
        context: &'static str,
        message: String,
    },
}

impl DocumentError {
    pub fn code(&self) -> &'static str {
        match self {
            DocumentError::NotFound(_) => "not_found",
            DocumentError::StaleRevision(_) => "stale_revision",
            DocumentError::NothingToUndo => "nothing_to_undo",
            DocumentError::NothingToRedo => "nothing_to_redo",
            DocumentError::InvalidOp(_) => "invalid_op",
            DocumentError::InvalidRevision => "invalid_revision",
            DocumentError::ModelsNotReady(_) => "models_not_ready",
            DocumentError::NothingToSplit(_) => "nothing_to_split",
            DocumentError::Split(e) => e.code(),
            DocumentError::UnreadableUpload(e) => e.code(),
            DocumentError::UnsupportedImport => "unsupported_type",
            DocumentError::UnreadableImport { code, .. } => code,
            DocumentError::EmptyDocument => "empty_document",
            DocumentError::CanvasTooLarge { .. } => "too_many_pixels",
            DocumentError::Image(e) => e.code(),
            DocumentError::Vault(e) => e.code(),
            DocumentError::Store(e) => e.code(),
            DocumentError::Enqueue(e) => e.code(),
            DocumentError::Blob(e) => e.code(),
            DocumentError::Internal { .. } => "internal_error",
        }
    }

    pub(crate) fn internal(context: &'static str, e: impl std::fmt::Display) -> Self {
        DocumentError::Internal {
            context,
            message: e.to_string(),
        }
    }
}

/// Documents: storing, reading, exporting and editing them.
#[derive(Clone)]
pub struct DocumentService {
    vault: Vault,
    images: ImageService,
    clock: SharedClock,
    jobs: JobQueue,
    audit: AuditLog,
    locks: Arc<edit::DocLocks>,
}

impl DocumentService {
    pub fn new(
        vault: Vault,
        images: ImageService,
        clock: SharedClock,
        jobs: JobQueue,
        audit: AuditLog,
    ) -> Self {
        Self {
            vault,
            images,
            clock,
            jobs,
            audit,
            locks: Arc::default(),
        }
    }

    /// Stores a stack as the new document `id` of `image_id` (blocking), each layer with its
    /// opacity and visibility. The image becomes a processed result: both now follow the
    /// owner's plan retention. A document `id` already stored (by an earlier run of the same
    /// job, which a crash kept from recording its result) is answered as it is: a job's
    /// re-run never makes a second document.
    pub fn store_stack(
        &self,
        owner: UserId,
        image_id: ImageId,
        id: DocumentId,
        mode: DocumentMode,
        stack: &LayerStack,
        props: &[LayerProps],
    ) -> Result<DocumentRecord, DocumentError> {
        let store = &self.vault.store;
        if let Some(doc) = store.get_document(id)? {
            if !self.keep_as_processed(image_id, doc.expires_at)? {
                return Err(DocumentError::NotFound("image"));
            }
            store.flush_blocking()?;
            return Ok(doc);
        }
        let key = self.vault.data_key(owner)?;
        let mut layers = Vec::with_capacity(stack.layers.len());
        let mut written = Vec::new();
        let result = (|| {
            for (layer, p) in stack.layers.iter().zip(props) {
                let layer = layer.tight();
                let png = encode_layer_png(&layer)
                    .map_err(|e| DocumentError::internal("layer encode", e))?;
                let blob = self.vault.put(&key, owner, &png)?;
                written.push(blob);
                layers.push(LayerRecord {
                    id: LayerId::new(),
                    name: layer.name.clone(),
                    kind: layer.kind,
                    visible: p.visible,
                    opacity: p.opacity.clamp(0.0, 1.0),
                    bbox: layer.bbox(),
                    text: layer.text.clone(),
                    blob,
                    origin: Some(layer.origin),
                });
            }
            let expires_at = self.images.processed_expiry(owner)?;
            let doc = DocumentRecord {
                id,
                owner,
                image_id,
                width: stack.width,
                height: stack.height,
                revision: 1,
                mode,
                layers,
                created_at: unix(self.clock.now()),
                expires_at,
                last_op: HistoryOp::from(mode),
                undo: Vec::new(),
                redo: Vec::new(),
            };
            if store.get_image(image_id)?.is_none() {
                return Err(DocumentError::NotFound("image"));
            }
            store.put_document(&doc)?;
            if !self.keep_as_processed(image_id, expires_at)? {
                // the image was deleted meanwhile (with the documents it had then): this one
                // goes too, rather than outlive it
                store.delete_document(doc.id)?;
                // durable before the layer blobs are unlinked below: a crash must not leave
                // the record pointing at missing files
                store.flush_blocking()?;
                return Err(DocumentError::NotFound("image"));
            }
            store.flush_blocking()?;
            Ok(doc)
        })();
        if result.is_err() {
            self.vault.unlink_blocking(owner, written);
        }
        result
    }

    /// Moves the image to the processed retention ending `expires_at` (never shortening it);
    /// `false` when the image is gone.
    fn keep_as_processed(&self, image_id: ImageId, expires_at: i64) -> Result<bool, DocumentError> {
        let patched = self.vault.store.patch_image(image_id, |img| {
            if img.state == ImageState::Temporary || img.expires_at < expires_at {
                img.state = ImageState::Processed;
                img.expires_at = expires_at;
            }
        })?;
        Ok(patched.is_some())
    }

    /// One layer's pixels on the document's full canvas (what the edit ops work on).
    pub(crate) fn read_canvas(
        &self,
        key: &DataKey,
        doc: &DocumentRecord,
        rec: &LayerRecord,
    ) -> Result<RgbaImage, DocumentError> {
        Ok(load_layer(&self.vault, key, doc, rec)?.to_canvas(doc.width, doc.height))
    }

    /// The member's documents, newest first.
    pub fn list(&self, owner: UserId) -> Result<Vec<DocumentRecord>, DocumentError> {
        let store = &self.vault.store;
        let mut docs = Vec::new();
        for img in store.list_images(owner)? {
            docs.extend(store.documents_of_image(img.id)?);
        }
        docs.retain(|d| d.owner == owner);
        docs.sort_by_key(|d| std::cmp::Reverse(d.id));
        Ok(docs)
    }

    /// The member's document; another member's is `NotFound`.
    pub fn get(&self, owner: UserId, id: DocumentId) -> Result<DocumentRecord, DocumentError> {
        self.vault
            .store
            .get_document(id)?
            .filter(|d| d.owner == owner)
            .ok_or(DocumentError::NotFound("document"))
    }

    /// A decrypting reader over one layer's PNG.
    pub fn open_layer(
        &self,
        owner: UserId,
        doc: DocumentId,
        layer: LayerId,
    ) -> Result<Box<dyn Read + Send>, DocumentError> {
        let doc = self.get(owner, doc)?;
        let layer = doc
            .layers
            .iter()
            .find(|l| l.id == layer)
            .ok_or(DocumentError::NotFound("layer"))?;
        let key = self.vault.data_key(owner)?;
        canvas_png(&self.vault, &key, &doc, layer)
    }

    /// Deletes the member's document with its layers and history (the image stays): the
    /// record (flushed) first, then every layer blob of every state; recorded in the audit log
    /// as done by `actor`.
    pub async fn delete(
        &self,
        actor: Actor,
        owner: UserId,
        id: DocumentId,
    ) -> Result<(), DocumentError> {
        self.get(owner, id)?;
        // an edit in flight cannot bring it back: its commit is a compare-and-swap on a
        // record that is gone, and the blobs it wrote are unlinked when that fails
        if self.vault.delete_document(id).await?.is_some() {
            self.audit.record(
                actor,
                "document.delete",
                format!("document:{id}"),
                serde_json::Value::Null,
            )?;
            self.vault.store.flush().await?;
        }
        Ok(())
    }

    /// Deletes a document whoever owns it (the sweep). `Ok(None)` if already gone.
    pub async fn delete_any(
        &self,
        id: DocumentId,
    ) -> Result<Option<DocumentRecord>, DocumentError> {
        Ok(self.vault.delete_document(id).await?)
    }

    /// The document's layers as stored, with each layer's display settings (blocking:
    /// decrypts and decodes every layer).
    pub fn layers(
        &self,
        owner: UserId,
        id: DocumentId,
    ) -> Result<(LayerStack, Vec<LayerProps>), DocumentError> {
        let doc = self.get(owner, id)?;
        let key = self.vault.data_key(owner)?;
        let mut layers = Vec::with_capacity(doc.layers.len());
        let mut props = Vec::with_capacity(doc.layers.len());
        for rec in &doc.layers {
            layers.push(load_layer(&self.vault, &key, &doc, rec)?);
            props.push(LayerProps {
                opacity: rec.opacity.clamp(0.0, 1.0),
                visible: rec.visible,
            });
        }
        let stack = LayerStack {
            width: doc.width,
            height: doc.height,
            layers,
        };
        Ok((stack, props))
    }

    /// Exports a document (blocking). Flat formats are freshly encoded from the composite, so
    /// they carry no EXIF at all (no GPS can leak).
    pub fn export(
        &self,
        owner: UserId,
        id: DocumentId,
        format: ExportFormat,
    ) -> Result<Vec<u8>, DocumentError> {
        let doc = self.get(owner, id)?;
        let pixels = u64::from(doc.width) * u64::from(doc.height);
        let bytes = crate::jobs::memory::document_bytes(pixels, doc.layers.len() as u64);
        // waits while large jobs hold the memory; the request's own timeout bounds the wait
        let _memory = crate::jobs::memory::budget().claim(bytes, &mut || true);
        let (stack, props) = self.layers(owner, id)?;
        encode(&stack, &props, format).map_err(|e| DocumentError::internal("export", e))
    }
}

/// One layer as stored (its box at its place, or the full canvas for a layer stored before
/// boxes), decrypted and decoded; a blob that does not fit the canvas is an internal error.
pub(crate) fn load_layer(
    vault: &Vault,
    key: &DataKey,
    doc: &DocumentRecord,
    rec: &LayerRecord,
) -> Result<Layer, DocumentError> {
    let png = vault.read_all(key, doc.owner, rec.blob)?;
    let mut rgba = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .map_err(|e| DocumentError::internal("layer decode", e))?
        .to_rgba8();
    let mut origin = rec.origin.unwrap_or([0, 0]);
    if rec.origin.is_some() && rec.bbox[2] == 0 {
        // nothing visible: stored as one transparent pixel
        (rgba, origin) = (RgbaImage::new(0, 0), [0, 0]);
    }
    let layer = Layer {
        name: rec.name.clone(),
        kind: rec.kind,
        origin,
        rgba,
        text: rec.text.clone(),
    };
    if !layer.fits(doc.width, doc.height) {
        return Err(DocumentError::internal(
            "layer decode",
            format!(
                "layer {} ({:?}) does not fit its {}x{} canvas",
                rec.id,
                layer.rect(),
                doc.width,
                doc.height
            ),
        ));
    }
    Ok(layer)
}

/// A reader of one layer as a full-canvas PNG: the blob itself when it is the full canvas,
/// else the layer's box encoded onto the canvas row by row as it is read.
pub(crate) fn canvas_png(
    vault: &Vault,
    key: &DataKey,
    doc: &DocumentRecord,
    rec: &LayerRecord,
) -> Result<Box<dyn Read + Send>, DocumentError> {
    let whole = match rec.origin {
        None => true,
        Some(o) => o == [0, 0] && rec.bbox[2..] == [doc.width, doc.height],
    };
    if whole {
        return Ok(Box::new(vault.blobs.open_reader(key, doc.owner, rec.blob)?));
    }
    let layer = load_layer(vault, key, doc, rec)?;
    let reader = CanvasPngReader::new(layer, doc.width, doc.height)
        .map_err(|e| DocumentError::internal("layer encode", e))?;
    Ok(Box::new(reader))
}
