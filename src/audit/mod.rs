//! The audit log: every admin action, deletion and sweep removal is appended as an entry
//! that carries the hash of the entry before it, so changing, removing or reordering any
//! entry breaks the chain from there on, and [`AuditLog::verify`] names the first broken one.
//!
//! An entry's hash is the SHA-256 (hex) of the JSON of all its fields but `hash`, in a fixed
//! order; the first entry's `prev_hash` is 64 zeros. Entries name objects by id only (never an
//! email, a file name or a member's content), so the log keeps nothing that a member's
//! deletion would have to erase. Appending is one store transaction (entry and head
//! together); callers flush with the change they record.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clock::{unix, SharedClock};
use crate::ids::UserId;
use crate::store::{AuditEntry, AuditHead, Role, Store, StoreError, UserRecord};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Member(UserId),
    Admin(UserId),
    /// An operator at the command line.
    Cli,
    /// The retention sweep.
    Sweep,
    /// The payment provider, through its signed webhook.
    Payments,
}

impl Actor {
    /// The member (or admin) behind a request.
    pub fn of(user: &UserRecord) -> Actor {
        match user.role {
            Role::Admin => Actor::Admin(user.id),
            Role::Member => Actor::Member(user.id),
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Member(id) => write!(f, "member:{id}"),
            Actor::Admin(id) => write!(f, "admin:{id}"),
            Actor::Cli => f.write_str("cli"),
            Actor::Sweep => f.write_str("sweep"),
            Actor::Payments => f.write_str("payments"),
        }
    }
}

/// Why the chain does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log entry {seq} is broken: {reason}")]
    Broken { seq: u64, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuditError {
    pub fn code(&self) -> &'static str {
        match self {
            AuditError::Broken { .. } => "audit_chain_broken",
            AuditError::Store(e) => e.code(),
        }
    }
}

/// The fields an entry's hash covers, in the order they are hashed.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    at: i64,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    detail: &'a serde_json::Value,
    prev_hash: &'a str,
}

/// The hash an entry must carry.
pub fn entry_hash(e: &AuditEntry) -> String {
    let body = Hashed {
        seq: e.seq,
        at: e.at,
        actor: &e.actor,
        action: &e.action,
        target: &e.target,
        detail: &e.detail,
        prev_hash: &e.prev_hash,
    };
    let json = serde_json::to_vec(&body).expect("audit entries always serialise");
    hex::encode(Sha256::digest(json))
}

/// Appends to and verifies the audit log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
    clock: SharedClock,
}

impl AuditLog {
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// Appends one entry (blocking; the caller flushes with the change it records).
    pub fn record(
        &self,
        actor: Actor,
        action: &str,
        target: impl std::fmt::Display,
        detail: serde_json::Value,
    ) -> Result<AuditEntry, StoreError> {
        let at = unix(self.clock.now());
        let (actor, target) = (actor.to_string(), target.to_string());
        let entry = self.store.append_audit(|head: Option<&AuditHead>| {
            let mut e = AuditEntry {
                seq: head.map_or(1, |h| h.seq + 1),
                at,
                actor: actor.clone(),
                action: action.to_string(),
                target: target.clone(),
                detail: detail.clone(),
                prev_hash: head.map_or_else(|| GENESIS.to_string(), |h| h.hash.clone()),
                hash: String::new(),
            };
            e.hash = entry_hash(&e);
            e
        })?;
        tracing::debug!(seq = entry.seq, action = %entry.action, target = %entry.target, "audit");
        Ok(entry)
    }

    /// Up to `limit` entries after `after`, in order.
    pub fn entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.store.audit_entries(after, limit)
    }

    /// Walks the whole chain: numbers without gaps from 1, each `prev_hash` the hash of the
    /// entry before, each hash what its fields give, and the last entry the recorded head.
    /// Returns how many entries there are.
    pub fn verify(&self) -> Result<u64, AuditError> {
        let broken = |seq: u64, reason: String| AuditError::Broken { seq, reason };
        let mut prev = GENESIS.to_string();
        let mut expected = 1u64;
        loop {
            let batch = self.store.audit_entries(expected - 1, 1000)?;
            if batch.is_empty() {
                break;
            }
            for e in batch {
                if e.seq != expected {
                    return Err(broken(
                        expected,
                        format!("missing (the next entry is {})", e.seq),
                    ));
                }
                if e.prev_hash != prev {
                    return Err(broken(
                        e.seq,
                        "its prev_hash is not the hash of the entry before".into(),
                    ));
                }
                if entry_hash(&e) != e.hash {
                    return Err(broken(e.seq, "its content does not match its hash".into()));
                }
                prev = e.hash;
                expected += 1;
            }
        }
        let count = expected - 1;
        match self.store.audit_head()? {
            Some(head) if head.seq != count || head.hash != prev => Err(broken(
                count + 1,
                format!(
                    "missing: the log ends at entry {count}, but entry {} was written",
                    head.seq
                ),
            )),
            None if count > 0 => Err(broken(1, "the log has entries but no head".into())),
            _ => Ok(count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    fn log() -> (tempfile::TempDir, Store, AuditLog) {
        let (dir, store) = crate::store::temp_store();
        let clock = ManualClock::new(time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(1));
        let audit = AuditLog::new(store.clone(), Arc::new(clock));
        (dir, store, audit)
    }

    #[test]
    fn entries_chain_and_verify() {
        let (_d, _s, audit) = log();
        assert_eq!(audit.verify().unwrap(), 0);
        let user = UserId::new();
        let a = audit
            .record(
                Actor::Member(user),
                "image.delete",
                "image:1",
                serde_json::json!({}),
            )
            .unwrap();
        let b = audit
            .record(
                Actor::Cli,
                "keys.rotate",
                "keys",
                serde_json::json!({"to": 2}),
            )
            .unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(a.actor, format!("member:{user}"));
        assert_eq!(audit.verify().unwrap(), 2);
        assert_eq!(audit.entries(1, 10).unwrap(), vec![b]);
    }

    #[test]
    fn concurrent_appends_get_distinct_numbers() {
        let (_d, _s, audit) = log();
        std::thread::scope(|s| {
            for t in 0..4 {
                let audit = audit.clone();
                s.spawn(move || {
                    for i in 0..25 {
                        audit
                            .record(
                                Actor::Sweep,
                                "sweep.remove",
                                format!("{t}:{i}"),
                                serde_json::Value::Null,
                            )
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(audit.verify().unwrap(), 100);
    }

    #[test]
    fn a_changed_or_missing_entry_is_named() {
        let (_d, store, audit) = log();
        for i in 0..5 {
            audit
                .record(
                    Actor::Cli,
                    "user.create",
                    format!("user:{i}"),
                    serde_json::Value::Null,
                )
                .unwrap();
        }
        // change entry 3's target, keeping its stored hash
        let mut third = store.audit_entries(2, 1).unwrap().remove(0);
        third.target = "user:someone-else".into();
        store.put_audit_raw(&third).unwrap();
        match audit.verify() {
            Err(AuditError::Broken { seq: 3, reason }) => {
                assert!(reason.contains("hash"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // recomputing its hash does not help: entry 4 no longer follows
        third.hash = entry_hash(&third);
        store.put_audit_raw(&third).unwrap();
        match audit.verify() {
            Err(AuditError::Broken { seq: 4, reason }) => {
                assert!(reason.contains("prev_hash"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_dropped_tail_is_named() {
        let (_d, store, audit) = log();
        for i in 0..3 {
            audit
                .record(
                    Actor::Cli,
                    "user.create",
                    format!("user:{i}"),
                    serde_json::Value::Null,
                )
                .unwrap();
        }
        store.remove_audit_raw(3).unwrap();
        match audit.verify() {
            Err(AuditError::Broken { seq: 3, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
