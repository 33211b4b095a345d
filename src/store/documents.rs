//! Layered documents in the store: the record (layer list, revision, undo and redo states), an
//! `image ‖ document` index so deleting an image reaches its documents, the document's TTL
//! entry, and its append-only operation log (`document ‖ revision` → [`LogEntry`]), changed
//! together in one transaction. An edit commits only if the stored revision is still the one
//! it was computed from (compare-and-swap), so two edits can never both land on one state.
//! Layer pixels live in blobs.

use sled::transaction::ConflictableTransactionError;

use super::codec::concat;
use super::records::{DocumentRecord, LogEntry};
use super::ttl::{clear_tx, set_tx, TtlKind};
use super::{Result, Store};
use crate::ids::{DocumentId, ImageId, UserId};

/// The abort reason of a commit whose base revision is no longer current.
pub const STALE_REVISION: &str = "stale_revision";

impl Store {
    /// Inserts or rewrites a document with its index and TTL entry.
    pub fn put_document(&self, doc: &DocumentRecord) -> Result<()> {
        let value = self.encode_document(doc);
        self.atomically(
            (
                &self.documents,
                &self.documents_by_image,
                &self.ttl,
                &self.ttl_by_object,
            ),
            |(d, i, t, b)| {
                d.insert(doc.id.as_bytes(), value.as_slice())?;
                i.insert(concat(doc.image_id.as_bytes(), doc.id.as_bytes()), &[][..])?;
                set_tx(t, b, TtlKind::Document, doc.id.as_bytes(), doc.expires_at)?;
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        Ok(())
    }

    /// Replaces document `doc.id` if its stored revision is still `base_revision`, appending
    /// `entry` to its log, in one transaction. A changed (or deleted) document aborts with
    /// [`StoreError::Conflict`](super::StoreError::Conflict) carrying `"stale_revision"`.
    pub fn commit_document(
        &self,
        doc: &DocumentRecord,
        base_revision: u64,
        entry: &LogEntry,
    ) -> Result<()> {
        let value = self.encode_document(doc);
        let log_value = self.encode_log(doc.owner, doc.id.as_bytes(), entry);
        self.atomically(
            (
                &self.documents,
                &self.ttl,
                &self.ttl_by_object,
                &self.document_log,
            ),
            |(d, t, b, l)| {
                let current: Option<DocumentRecord> = d
                    .get(doc.id.as_bytes())?
                    .and_then(|v| serde_json::from_slice(&v).ok());
                if current.map(|c| c.revision) != Some(base_revision) {
                    return Err(ConflictableTransactionError::Abort(
                        STALE_REVISION.to_string(),
                    ));
                }
                d.insert(doc.id.as_bytes(), value.as_slice())?;
                set_tx(t, b, TtlKind::Document, doc.id.as_bytes(), doc.expires_at)?;
                l.insert(
                    concat(doc.id.as_bytes(), &entry.revision.to_be_bytes()),
                    log_value.as_slice(),
                )?;
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        Ok(())
    }

    /// The document's operation log, oldest first.
    /// (`owner` opens the entries' sealed ops.)
    pub fn document_log(&self, id: DocumentId, owner: UserId) -> Result<Vec<LogEntry>> {
        self.document_log
            .scan_prefix(id.as_bytes())
            .values()
            .map(|v| self.decode_log(Some(owner), id.as_bytes(), &v?))
            .collect()
    }

    pub fn get_document(&self, id: DocumentId) -> Result<Option<DocumentRecord>> {
        self.documents
            .get(id.as_bytes())?
            .map(|v| self.decode_document(&v))
            .transpose()
    }

    /// The documents made from an image.
    pub fn documents_of_image(&self, image: ImageId) -> Result<Vec<DocumentRecord>> {
        let mut out = Vec::new();
        for k in self.documents_by_image.scan_prefix(image.as_bytes()).keys() {
            if let Some(id) = DocumentId::from_slice(&k?[16..]) {
                if let Some(doc) = self.get_document(id)? {
                    out.push(doc);
                }
            }
        }
        Ok(out)
    }

    /// Every document (reconciler).
    /// Every document record that can be read, and how many cannot (see `readable_images`).
    pub fn readable_documents(&self) -> Result<(Vec<DocumentRecord>, usize)> {
        self.readable(&self.documents, "documents", |v| self.decode_document(v))
    }

    pub fn all_documents(&self) -> Result<Vec<DocumentRecord>> {
        self.documents
            .iter()
            .values()
            .map(|v| self.decode_document(&v?))
            .collect()
    }

    /// Removes a document's metadata; its blobs are the caller's to unlink after the flush.
    pub fn delete_document(&self, id: DocumentId) -> Result<Option<DocumentRecord>> {
        let Some(doc) = self.get_document(id)? else {
            return Ok(None);
        };
        self.atomically(
            (
                &self.documents,
                &self.documents_by_image,
                &self.ttl,
                &self.ttl_by_object,
            ),
            |(d, i, t, b)| {
                d.remove(id.as_bytes())?;
                i.remove(concat(doc.image_id.as_bytes(), id.as_bytes()))?;
                clear_tx(t, b, TtlKind::Document, id.as_bytes())?;
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        for k in self.document_log.scan_prefix(id.as_bytes()).keys() {
            self.document_log.remove(k?)?;
        }
        Ok(Some(doc))
    }
}
