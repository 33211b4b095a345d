//! Account deletion (P5): `DELETE /api/v1/me`. In one flush: a tombstone for the purge
//! (member id, receipt id, times — no email), then the member's row, email index, wrapped
//! data key (the crypto-shred: from here their files cannot be decrypted), sessions, API
//! keys and consents; the audit entry; and the receipt mail, queued with the email it is
//! sent to. The sweep purges the files and records later (see `crate::retention`).

use serde::Serialize;

use super::PrivacyService;
use crate::audit::Actor;
use crate::clock::{rfc3339, unix};
use crate::mail::Notice;
use crate::store::{DeletionRecord, StoreError, UserRecord};

/// What the member gets back (and by mail).
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    pub id: String,
    pub email: String,
    pub requested_at: String,
    pub purge_by: String,
}

impl PrivacyService {
    /// Deletes `user`'s account at their request (blocking; the caller flushes and wakes the
    /// outbox). The caller has checked their password.
    pub fn delete_account(&self, user: &UserRecord) -> Result<Receipt, crate::mail::MailError> {
        self.delete_account_as(user, Actor::of(user), "user.delete")
    }

    /// [`delete_account`](Self::delete_account), recorded as `action` by `actor` (the sweep
    /// deletes idle accounts).
    pub fn delete_account_as(
        &self,
        user: &UserRecord,
        actor: Actor,
        action: &str,
    ) -> Result<Receipt, crate::mail::MailError> {
        let now = unix(self.clock.now());
        let tombstone = DeletionRecord {
            user_id: user.id,
            receipt_id: uuid::Uuid::now_v7().to_string(),
            requested_at: now,
            purge_by: now + self.config.deletion_purge_days as i64 * 86_400,
        };
        let store = self.store();
        store.put_deletion(&tombstone)?;
        store.delete_user(user.id)?;
        self.audit.record(
            actor,
            action,
            format!("user:{}", user.id),
            serde_json::json!({"receipt": tombstone.receipt_id, "purge_by": rfc3339(tombstone.purge_by)}),
        )?;
        let receipt = Receipt {
            id: tombstone.receipt_id,
            email: user.email.clone(),
            requested_at: rfc3339(now),
            purge_by: rfc3339(tombstone.purge_by),
        };
        self.outbox.queue(
            &user.email,
            &Notice::DeletionReceipt {
                name: user.name.clone(),
                receipt_id: receipt.id.clone(),
                requested_at: receipt.requested_at.clone(),
                purge_by: receipt.purge_by.clone(),
            },
        )?;
        Ok(receipt)
    }

    /// Wakes the outbox after a flush.
    pub fn notify_outbox(&self) {
        self.outbox.notify();
    }

    /// Deleted members not purged yet.
    pub fn pending_purges(&self) -> Result<Vec<DeletionRecord>, StoreError> {
        self.store().deletions()
    }
}
