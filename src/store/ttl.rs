//! The TTL index: `expires_at (BE, sign-flipped) ‖ kind ‖ object id` → empty, plus a reverse
//! map `kind ‖ id` → entry key so an object's expiry can be moved or dropped. The retention
//! sweep walks the index in key order, i.e. soonest expiry first, and stops at "now".

use sled::transaction::{ConflictableTransactionResult, TransactionalTree};

use super::codec::{concat, time_from_key, time_key};
use super::{Result, Store};

/// What kind of object a TTL entry points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TtlKind {
    /// An image: temporary upload or processed result (with its derived blobs).
    Image = 1,
    /// A login session at its absolute expiry.
    Session = 2,
    /// A layered document with its layer blobs.
    Document = 3,
    /// A data export's download link (id: owner ‖ export id).
    Export = 4,
    /// An idempotency key's remembered answer (id: its 32-byte hash).
    Idempotency = 5,
    /// A job's record (its kind, op and result).
    Job = 6,
}

impl TtlKind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(TtlKind::Image),
            2 => Some(TtlKind::Session),
            3 => Some(TtlKind::Document),
            4 => Some(TtlKind::Export),
            5 => Some(TtlKind::Idempotency),
            6 => Some(TtlKind::Job),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TtlKind::Image => "image",
            TtlKind::Session => "session",
            TtlKind::Document => "document",
            TtlKind::Export => "export",
            TtlKind::Idempotency => "idempotency_key",
            TtlKind::Job => "job",
        }
    }
}

/// One due (or future) expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlEntry {
    pub expires_at: i64,
    pub kind: TtlKind,
    /// The object's key: 16 id bytes for images, 32 hash bytes for sessions.
    pub id: Vec<u8>,
}

fn entry_key(expires_at: i64, kind: TtlKind, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + id.len());
    k.extend_from_slice(&time_key(expires_at));
    k.push(kind as u8);
    k.extend_from_slice(id);
    k
}

fn object_key(kind: TtlKind, id: &[u8]) -> Vec<u8> {
    concat(&[kind as u8], id)
}

/// Sets (or moves) an object's expiry inside a transaction over (`ttl`, `ttl_by_object`).
pub(crate) fn set_tx(
    ttl: &TransactionalTree,
    by_obj: &TransactionalTree,
    kind: TtlKind,
    id: &[u8],
    expires_at: i64,
) -> ConflictableTransactionResult<(), String> {
    let ok = object_key(kind, id);
    if let Some(old) = by_obj.get(&ok)? {
        ttl.remove(old)?;
    }
    let ek = entry_key(expires_at, kind, id);
    ttl.insert(ek.clone(), &[][..])?;
    by_obj.insert(ok, ek)?;
    Ok(())
}

/// Drops an object's expiry inside a transaction over (`ttl`, `ttl_by_object`).
pub(crate) fn clear_tx(
    ttl: &TransactionalTree,
    by_obj: &TransactionalTree,
    kind: TtlKind,
    id: &[u8],
) -> ConflictableTransactionResult<(), String> {
    if let Some(old) = by_obj.remove(object_key(kind, id))? {
        ttl.remove(old)?;
    }
    Ok(())
}

impl Store {
    /// Up to `limit` entries due at or before `now`, soonest first.
    pub fn ttl_due(&self, now: i64, limit: usize) -> Result<Vec<TtlEntry>> {
        let end = time_key(now.saturating_add(1));
        let mut out = Vec::new();
        for kv in self.ttl.range(..end.to_vec()) {
            let (k, _) = kv?;
            if k.len() < 9 {
                continue;
            }
            let Some(kind) = TtlKind::from_u8(k[8]) else {
                continue;
            };
            out.push(TtlEntry {
                expires_at: time_from_key(&k),
                kind,
                id: k[9..].to_vec(),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The expiry recorded for an object, if any.
    pub fn ttl_of(&self, kind: TtlKind, id: &[u8]) -> Result<Option<i64>> {
        Ok(self
            .ttl_by_object
            .get(object_key(kind, id))?
            .map(|k| time_from_key(&k)))
    }

    /// Removes an entry whose object is already gone (or unknown), so the sweep moves on.
    pub fn ttl_drop(&self, entry: &TtlEntry) -> Result<()> {
        self.atomically((&self.ttl, &self.ttl_by_object), |(t, b)| {
            clear_tx(t, b, entry.kind, &entry.id)
        })?;
        Ok(())
    }

    /// Sets a single object's expiry (outside any other change).
    pub fn ttl_set(&self, kind: TtlKind, id: &[u8], expires_at: i64) -> Result<()> {
        self.atomically((&self.ttl, &self.ttl_by_object), |(t, b)| {
            set_tx(t, b, kind, id, expires_at)
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_come_soonest_first_and_stop_at_now() {
        let (_d, s) = crate::store::temp_store();
        s.ttl_set(TtlKind::Image, &[3; 16], 300).unwrap();
        s.ttl_set(TtlKind::Image, &[1; 16], 100).unwrap();
        s.ttl_set(TtlKind::Session, &[2; 32], 200).unwrap();
        let due = s.ttl_due(250, 10).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].expires_at, 100);
        assert_eq!(due[1].kind, TtlKind::Session);
        assert_eq!(s.ttl_due(300, 10).unwrap().len(), 3);
        assert_eq!(s.ttl_due(300, 1).unwrap().len(), 1);
        // moving an expiry replaces the old entry
        s.ttl_set(TtlKind::Image, &[1; 16], 1000).unwrap();
        assert_eq!(s.ttl_due(300, 10).unwrap().len(), 2);
        assert_eq!(s.ttl_of(TtlKind::Image, &[1; 16]).unwrap(), Some(1000));
        s.ttl_drop(&due[1]).unwrap();
        assert_eq!(s.ttl_due(300, 10).unwrap().len(), 1);
    }
}
