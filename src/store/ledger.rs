//! Credits in the store: each member's append-only ledger (`user ‖ entry id` → entry, ids
//! UUIDv7 so in time order) and their balance (`user` → i64), always written in one
//! transaction, so the balance is the sum of the entries at every commit. A paid job's
//! reservation is written in the same transaction as the job, and its charge or refund in the
//! same transaction as its final state, so a crash can neither charge without a job nor run
//! a job unpaid. Monthly grants are keyed by period (`user ‖ period`), so a grant is made
//! once whatever restarts or clock jumps happen; payment events by their id, likewise.

use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionalTree,
};

use super::codec::{concat, decode, encode};
use super::records::{JobRecord, JobState, LedgerEntry, LedgerReason};
use super::{Result, Store, StoreError};
use crate::ids::{JobId, LedgerId, UserId};

/// The abort reason of an enqueue the balance cannot pay for.
const INSUFFICIENT: &str = "insufficient_credits";

/// Why a paid job was not queued.
#[derive(Debug)]
pub enum ReserveError {
    /// The balance is below the job's cost.
    Insufficient {
        cost: u64,
        balance: i64,
    },
    Store(StoreError),
}

impl From<StoreError> for ReserveError {
    fn from(e: StoreError) -> Self {
        ReserveError::Store(e)
    }
}

fn balance_tx(b: &TransactionalTree, user: UserId) -> ConflictableTransactionResult<i64, String> {
    Ok(b.get(user.as_bytes())?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0))
}

/// What an entry records, besides its amount.
pub struct Posting<'a> {
    pub user: UserId,
    pub delta: i64,
    pub reason: LedgerReason,
    pub job_id: Option<JobId>,
    pub note: Option<&'a str>,
    pub at: i64,
}

/// Appends an entry inside a transaction over (`ledger`, `balances`); returns it.
fn post_tx(
    l: &TransactionalTree,
    b: &TransactionalTree,
    p: &Posting<'_>,
) -> ConflictableTransactionResult<LedgerEntry, String> {
    let balance = balance_tx(b, p.user)? + p.delta;
    let entry = LedgerEntry {
        id: LedgerId::new(),
        at: p.at,
        delta: p.delta,
        balance,
        reason: p.reason,
        job_id: p.job_id,
        note: p.note.map(str::to_string),
    };
    l.insert(
        concat(p.user.as_bytes(), entry.id.as_bytes()),
        encode(&entry),
    )?;
    b.insert(p.user.as_bytes(), &balance.to_be_bytes())?;
    Ok(entry)
}

impl Store {
    /// The member's balance (0 before any entry).
    pub fn balance(&self, user: UserId) -> Result<i64> {
        Ok(self
            .balances
            .get(user.as_bytes())?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(i64::from_be_bytes)
            .unwrap_or(0))
    }

    /// The member's ledger, oldest first.
    pub fn ledger_of(&self, user: UserId) -> Result<Vec<LedgerEntry>> {
        self.ledger
            .scan_prefix(user.as_bytes())
            .values()
            .map(|v| decode("ledger", &v?))
            .collect()
    }

    /// Appends one entry (a purchase, an adjustment); `floor` refuses a debit that would take
    /// the balance below it (`None`: no floor).
    pub fn post(&self, p: &Posting<'_>, floor: Option<i64>) -> Result<LedgerEntry> {
        let entry = self.atomically((&self.ledger, &self.balances), |(l, b)| {
            if let Some(floor) = floor {
                if p.delta < 0 && balance_tx(b, p.user)? + p.delta < floor {
                    return Err(ConflictableTransactionError::Abort(
                        INSUFFICIENT.to_string(),
                    ));
                }
            }
            post_tx(l, b, p)
        })?;
        Ok(entry)
    }

    /// The monthly grant of `period` (months since the member's sign-up), once: `None` if
    /// that period was granted already.
    pub fn grant(&self, p: &Posting<'_>, period: u32) -> Result<Option<LedgerEntry>> {
        let key = concat(p.user.as_bytes(), &period.to_be_bytes());
        let entry =
            self.atomically((&self.ledger, &self.balances, &self.grants), |(l, b, g)| {
                if g.get(&key)?.is_some() {
                    return Ok(None);
                }
                let entry = post_tx(l, b, p)?;
                g.insert(key.as_slice(), entry.id.as_bytes())?;
                Ok(Some(entry))
            })?;
        Ok(entry)
    }

    /// Whether a payment event was applied already.
    pub fn payment_event_seen(&self, event_id: &str) -> Result<bool> {
        Ok(self.payment_events.contains_key(event_id.as_bytes())?)
    }

    /// Records a payment event as applied, posting its credits (if any) in the same
    /// transaction. `false` if it was applied before (a replay, or a concurrent delivery).
    pub fn apply_payment_event(&self, event_id: &str, at: i64, p: &Posting<'_>) -> Result<bool> {
        let applied = self.atomically(
            (&self.ledger, &self.balances, &self.payment_events),
            |(l, b, e)| {
                if e.get(event_id.as_bytes())?.is_some() {
                    return Ok(false);
                }
                e.insert(event_id.as_bytes(), &at.to_be_bytes())?;
                if p.delta != 0 {
                    post_tx(l, b, p)?;
                }
                Ok(true)
            },
        )?;
        Ok(applied)
    }

    /// Stores a new paid job with the reservation of its cost (`job.reserved`), in one
    /// transaction; refuses when the balance is below the cost.
    pub fn insert_reserved_job(
        &self,
        job: &JobRecord,
    ) -> std::result::Result<LedgerEntry, ReserveError> {
        let cost = job.reserved.unwrap_or(0);
        let res = self.atomically(
            (&self.jobs, &self.jobs_queued, &self.ledger, &self.balances),
            |(j, q, l, b)| {
                let balance = balance_tx(b, job.owner)?;
                if (cost as i64) > balance {
                    return Err(ConflictableTransactionError::Abort(format!(
                        "{INSUFFICIENT}:{balance}"
                    )));
                }
                let entry = post_tx(
                    l,
                    b,
                    &Posting {
                        user: job.owner,
                        delta: -(cost as i64),
                        reason: LedgerReason::Reserve,
                        job_id: Some(job.id),
                        note: Some(job.kind.name()),
                        at: job.created_at,
                    },
                )?;
                j.insert(job.id.as_bytes(), encode(job))?;
                if job.state == JobState::Queued {
                    q.insert(job.id.as_bytes(), &[][..])?;
                }
                Ok(entry)
            },
        );
        match res {
            Ok(entry) => Ok(entry),
            Err(sled::transaction::TransactionError::Abort(m)) if m.starts_with(INSUFFICIENT) => {
                let balance = m
                    .split_once(':')
                    .and_then(|(_, b)| b.parse().ok())
                    .unwrap_or(0);
                Err(ReserveError::Insufficient { cost, balance })
            }
            Err(e) => Err(ReserveError::Store(e.into())),
        }
    }

    /// Removes a member's ledger, balance and grants (the purge of a deleted member).
    pub fn delete_ledger_of(&self, user: UserId) -> Result<()> {
        for k in self.ledger.scan_prefix(user.as_bytes()).keys() {
            self.ledger.remove(k?)?;
        }
        for k in self.grants.scan_prefix(user.as_bytes()).keys() {
            self.grants.remove(k?)?;
        }
        self.balances.remove(user.as_bytes())?;
        Ok(())
    }
}

/// Writes `job` in a transaction over (`jobs`, `jobs_queued`, `ledger`, `balances`), settling
/// its reservation when it reaches a final state: charged (a zero entry) on success, refunded
/// otherwise — once, whatever copy of the job the caller had.
pub(super) fn put_job_settling_tx(
    j: &TransactionalTree,
    q: &TransactionalTree,
    l: &TransactionalTree,
    b: &TransactionalTree,
    job: &JobRecord,
    now: i64,
) -> ConflictableTransactionResult<(), String> {
    let mut job = job.clone();
    let stored: Option<JobRecord> = j
        .get(job.id.as_bytes())?
        .and_then(|v| serde_json::from_slice(&v).ok());
    if stored.as_ref().is_some_and(|s| s.settled) {
        job.settled = true;
    }
    if let (Some(cost), true, false) = (job.reserved, job.state.is_final(), job.settled) {
        let (delta, reason) = match job.state {
            JobState::Succeeded => (0, LedgerReason::Charge),
            _ => (cost as i64, LedgerReason::Refund),
        };
        post_tx(
            l,
            b,
            &Posting {
                user: job.owner,
                delta,
                reason,
                job_id: Some(job.id),
                note: Some(job.kind.name()),
                at: now,
            },
        )?;
        job.settled = true;
    }
    j.insert(job.id.as_bytes(), encode(&job))?;
    if job.state == JobState::Queued {
        q.insert(job.id.as_bytes(), &[][..])?;
    } else {
        q.remove(job.id.as_bytes())?;
    }
    Ok(())
}
