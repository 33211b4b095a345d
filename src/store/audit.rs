//! The audit log in the store: entries keyed by their sequence number (big-endian, so in
//! order), and the chain's head (last sequence number and hash) in the meta tree, written in
//! the same transaction as each entry — so concurrent appends serialise, no two entries share
//! a number, and a truncated tail is visible (the head names an entry that is gone). What the
//! hash covers is `crate::audit`'s business; this module only stores what it is given.

use sled::transaction::ConflictableTransactionError;

use super::codec::{decode, encode};
use super::records::AuditEntry;
use super::{Result, Store};

const HEAD_KEY: &[u8] = b"audit_head";

/// The chain's head: the last entry's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

impl Store {
    /// Appends the entry `make` builds from the head before it (`None` for the first entry).
    /// `make` may run more than once (a transaction retried under contention).
    pub fn append_audit(
        &self,
        make: impl Fn(Option<&AuditHead>) -> AuditEntry,
    ) -> Result<AuditEntry> {
        let entry = self.atomically((&self.audit, &self.meta), |(a, m)| {
            let head: Option<AuditHead> = match m.get(HEAD_KEY)? {
                Some(v) => Some(
                    decode("meta", &v)
                        .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?,
                ),
                None => None,
            };
            let entry = make(head.as_ref());
            a.insert(&entry.seq.to_be_bytes(), encode(&entry))?;
            let new_head = AuditHead {
                seq: entry.seq,
                hash: entry.hash.clone(),
            };
            m.insert(HEAD_KEY, encode(&new_head))?;
            Ok::<_, ConflictableTransactionError<String>>(entry)
        })?;
        Ok(entry)
    }

    /// The chain's head, if any entry was ever written.
    pub fn audit_head(&self) -> Result<Option<AuditHead>> {
        self.meta
            .get(HEAD_KEY)?
            .map(|v| decode("meta", &v))
            .transpose()
    }

    /// Up to `limit` entries after sequence number `after`, in order.
    pub fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        let start = after.saturating_add(1).to_be_bytes();
        self.audit
            .range(start..)
            .values()
            .take(limit)
            .map(|v| decode("audit", &v?))
            .collect()
    }
}

#[cfg(test)]
impl Store {
    /// Overwrites an entry as stored, bypassing the chain (tests of the verifier only).
    pub(crate) fn put_audit_raw(&self, e: &AuditEntry) -> Result<()> {
        self.audit.insert(e.seq.to_be_bytes(), encode(e))?;
        Ok(())
    }

    /// Removes an entry as stored, bypassing the chain (tests of the verifier only).
    pub(crate) fn remove_audit_raw(&self, seq: u64) -> Result<()> {
        self.audit.remove(seq.to_be_bytes())?;
        Ok(())
    }
}
