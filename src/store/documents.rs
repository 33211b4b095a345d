//! Layered documents in the store: the record (layer list, revision), an
//! `image ‖ document` index so deleting an image reaches its documents, and the document's TTL
//! entry, changed together in one transaction. Layer pixels live in blobs.

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::codec::{concat, decode, encode};
use super::records::DocumentRecord;
use super::ttl::{clear_tx, set_tx, TtlKind};
use super::{Result, Store};
use crate::ids::{DocumentId, ImageId};

impl Store {
    /// Inserts or rewrites a document with its index and TTL entry.
    pub fn put_document(&self, doc: &DocumentRecord) -> Result<()> {
        (
            &self.documents,
            &self.documents_by_image,
            &self.ttl,
            &self.ttl_by_object,
        )
            .transaction(|(d, i, t, b)| {
                d.insert(doc.id.as_bytes(), encode(doc))?;
                i.insert(concat(doc.image_id.as_bytes(), doc.id.as_bytes()), &[][..])?;
                set_tx(t, b, TtlKind::Document, doc.id.as_bytes(), doc.expires_at)?;
                Ok::<_, ConflictableTransactionError<String>>(())
            })?;
        Ok(())
    }

    pub fn get_document(&self, id: DocumentId) -> Result<Option<DocumentRecord>> {
        self.documents
            .get(id.as_bytes())?
            .map(|v| decode("documents", &v))
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
    pub fn all_documents(&self) -> Result<Vec<DocumentRecord>> {
        self.documents
            .iter()
            .values()
            .map(|v| decode("documents", &v?))
            .collect()
    }

    /// Removes a document's metadata; its blobs are the caller's to unlink after the flush.
    pub fn delete_document(&self, id: DocumentId) -> Result<Option<DocumentRecord>> {
        let Some(doc) = self.get_document(id)? else {
            return Ok(None);
        };
        (
            &self.documents,
            &self.documents_by_image,
            &self.ttl,
            &self.ttl_by_object,
        )
            .transaction(|(d, i, t, b)| {
                d.remove(id.as_bytes())?;
                i.remove(concat(doc.image_id.as_bytes(), id.as_bytes()))?;
                clear_tx(t, b, TtlKind::Document, id.as_bytes())?;
                Ok::<_, ConflictableTransactionError<String>>(())
            })?;
        Ok(Some(doc))
    }
}
