//! Data exports in the store: the record under `owner ‖ export id` (so a member's exports are
//! one prefix scan, and another member's id finds nothing) and its TTL entry (the link's
//! expiry, keyed the same way), always changed together in one transaction.

use sled::transaction::ConflictableTransactionError;

use super::codec::{concat, decode, encode};
use super::records::ExportRecord;
use super::ttl::{clear_tx, set_tx, TtlKind};
use super::{Result, Store};
use crate::ids::{ExportId, UserId};

/// The key of an export (also its TTL entry's id).
pub fn export_key(owner: UserId, id: ExportId) -> Vec<u8> {
    concat(owner.as_bytes(), id.as_bytes())
}

impl Store {
    /// Inserts an export and its expiry in one transaction.
    pub fn insert_export(&self, rec: &ExportRecord) -> Result<()> {
        let key = export_key(rec.owner, rec.id);
        self.atomically(
            (&self.exports, &self.ttl, &self.ttl_by_object),
            |(e, t, b)| {
                e.insert(key.as_slice(), encode(rec))?;
                set_tx(t, b, TtlKind::Export, &key, rec.expires_at)?;
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        Ok(())
    }

    /// The member's export; another member's id is `None`.
    pub fn get_export(&self, owner: UserId, id: ExportId) -> Result<Option<ExportRecord>> {
        self.exports
            .get(export_key(owner, id))?
            .map(|v| decode("exports", &v))
            .transpose()
    }

    /// The member's exports, oldest first.
    pub fn exports_of(&self, owner: UserId) -> Result<Vec<ExportRecord>> {
        self.exports
            .scan_prefix(owner.as_bytes())
            .values()
            .map(|v| decode("exports", &v?))
            .collect()
    }

    /// Every export (for the start-up reconciler).
    /// Every export record that can be read, and how many cannot (see `readable_images`).
    pub fn readable_exports(&self) -> Result<(Vec<ExportRecord>, usize)> {
        self.readable(&self.exports, "exports", |v| decode("exports", v))
    }

    pub fn all_exports(&self) -> Result<Vec<ExportRecord>> {
        self.exports
            .iter()
            .values()
            .map(|v| decode("exports", &v?))
            .collect()
    }

    /// Removes an export record and its expiry by key (`owner ‖ id`); returns what was there.
    pub fn delete_export_key(&self, key: &[u8]) -> Result<Option<ExportRecord>> {
        let old = self.atomically(
            (&self.exports, &self.ttl, &self.ttl_by_object),
            |(e, t, b)| {
                let old = e.remove(key)?;
                clear_tx(t, b, TtlKind::Export, key)?;
                Ok::<_, ConflictableTransactionError<String>>(old)
            },
        )?;
        old.map(|v| decode("exports", &v)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BlobId, JobId};

    fn export(owner: UserId, expires_at: i64) -> ExportRecord {
        ExportRecord {
            id: ExportId::new(),
            owner,
            job_id: JobId::new(),
            blob: BlobId::new(),
            bytes: 10,
            created_at: 0,
            expires_at,
        }
    }

    #[test]
    fn exports_are_owned_and_expire_with_their_record() {
        let (_d, s) = crate::store::temp_store();
        let (alice, bob) = (UserId::new(), UserId::new());
        let a = export(alice, 100);
        s.insert_export(&a).unwrap();
        assert_eq!(s.get_export(alice, a.id).unwrap(), Some(a.clone()));
        assert_eq!(s.get_export(bob, a.id).unwrap(), None);
        assert_eq!(s.exports_of(alice).unwrap(), vec![a.clone()]);
        assert!(s.exports_of(bob).unwrap().is_empty());
        let due = s.ttl_due(100, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].kind, TtlKind::Export);
        assert_eq!(s.delete_export_key(&due[0].id).unwrap(), Some(a));
        assert!(s.ttl_due(100, 10).unwrap().is_empty());
        assert!(s.all_exports().unwrap().is_empty());
        assert_eq!(s.delete_export_key(&due[0].id).unwrap(), None);
    }
}
