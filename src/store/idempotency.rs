//! Idempotency keys: `sha256(credential ‖ key)` → the request's hash and, once answered,
//! the answer (status, a few headers, a small body), with a TTL entry 24 h on. A key is
//! claimed by compare-and-swap before the request runs, so two concurrent requests with one
//! key never both do the work.

use serde::{Deserialize, Serialize};

use super::codec::{decode, encode};
use super::ttl::{clear_tx, TtlKind};
use super::{Result, Store};

/// What the store keeps for a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Hex SHA-256 of method, path and body.
    pub request: String,
    /// `None` while the first request runs.
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    /// Base64 of the answer's body.
    pub body: String,
    pub created_at: i64,
}

impl Store {
    pub fn idempotency_get(&self, key: &[u8; 32]) -> Result<Option<IdempotencyRecord>> {
        self.idempotency
            .get(key)?
            .map(|v| decode("idempotency", &v))
            .transpose()
    }

    /// Claims `key` for a new request; `false` if it is taken (answered or running).
    pub fn idempotency_claim(&self, key: &[u8; 32], rec: &IdempotencyRecord) -> Result<bool> {
        let claimed = self
            .idempotency
            .compare_and_swap(key, None::<&[u8]>, Some(encode(rec)))?
            .is_ok();
        if claimed {
            self.ttl_set(TtlKind::Idempotency, key, rec.created_at + 24 * 3600)?;
        }
        Ok(claimed)
    }

    /// Stores the answer of the request that claimed `key`.
    pub fn idempotency_answer(&self, key: &[u8; 32], rec: &IdempotencyRecord) -> Result<()> {
        self.idempotency.insert(key, encode(rec))?;
        Ok(())
    }

    /// Forgets `key` (its request failed in a way worth retrying, or it expired).
    pub fn idempotency_forget(&self, key: &[u8]) -> Result<bool> {
        let gone = self.idempotency.remove(key)?.is_some();
        self.atomically((&self.ttl, &self.ttl_by_object), |(t, b)| {
            clear_tx(t, b, TtlKind::Idempotency, key)
        })?;
        Ok(gone)
    }
}
