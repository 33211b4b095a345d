//! Versioned migrations of what is stored, run at start by [`Store::migrate`] once the
//! master key is attached. Each step re-writes records in place and is idempotent, so a
//! crash part-way leaves a store that reads whole and finishes at the next start; the
//! schema version in `meta` moves on only after the step's writes are flushed.
//!
//! - 1 → 2: seal the sensitive fields of images, documents and document logs
//!   (`super::sealing`).
//! - 2 → 3: move documents' undo and redo states out of the record, each under
//!   `document ‖ revision` (`super::documents`).

use super::codec::u32_from;
use super::{Result, Store, StoreError, SCHEMA_KEY, SCHEMA_VERSION};
use crate::ids::DocumentId;

impl Store {
    /// The schema version on disk.
    pub fn schema_version(&self) -> Result<u32> {
        match self.meta.get(SCHEMA_KEY)? {
            None => Ok(SCHEMA_VERSION),
            Some(v) => u32_from(&v).ok_or_else(|| StoreError::Corrupt {
                tree: "meta",
                reason: "schema version is not 4 bytes".into(),
            }),
        }
    }

    /// Brings the store to [`SCHEMA_VERSION`]; returns the versions it migrated to.
    pub fn migrate(&self) -> Result<Vec<u32>> {
        let mut done = Vec::new();
        let mut version = self.schema_version()?;
        while version < SCHEMA_VERSION {
            let next = version + 1;
            match next {
                2 => self.seal_sensitive_fields()?,
                3 => self.move_history_out()?,
                _ => unreachable!("every schema version has a step"),
            }
            self.flush_blocking()?;
            self.meta.insert(SCHEMA_KEY, &next.to_be_bytes())?;
            self.flush_blocking()?;
            tracing::info!(from = version, to = next, "store migrated");
            done.push(next);
            version = next;
        }
        Ok(done)
    }

    /// 1 → 2: re-writes every image, document and log entry (reading accepts both forms,
    /// writing seals).
    fn seal_sensitive_fields(&self) -> Result<()> {
        if self.keyring.get().is_none() {
            return Err(StoreError::Conflict(
                "sealing fields needs the master key attached".into(),
            ));
        }
        for kv in self.images.iter() {
            let (k, v) = kv?;
            let img = self.decode_image(&v)?;
            self.images.insert(k, self.encode_image(&img))?;
        }
        for kv in self.documents.iter() {
            let (k, v) = kv?;
            let doc = self.decode_document(&v)?;
            self.documents.insert(k, self.encode_document(&doc))?;
        }
        let mut owner = None;
        for kv in self.document_log.iter() {
            let (k, v) = kv?;
            let Some(id) = k.get(..16).and_then(DocumentId::from_slice) else {
                continue;
            };
            if owner.map(|(d, _)| d) != Some(id) {
                owner = Some((id, self.get_document(id)?.map(|d| d.owner)));
            }
            let doc_owner = owner.and_then(|(_, o)| o);
            let entry = self.decode_log(doc_owner, id.as_bytes(), &v)?;
            let value = match doc_owner {
                Some(o) => self.encode_log(o, id.as_bytes(), &entry),
                // the log of a document that is gone: nothing to keep readable
                None => continue,
            };
            self.document_log.insert(k, value)?;
        }
        Ok(())
    }
}
