//! Members' rights over their data, kept by mechanism:
//! - consents with their history (P9, P12): every change is appended with the policy version
//!   in force, and to the audit log; the training export honours them;
//! - account deletion (P5): at once the member's sessions, API keys and wrapped data key are
//!   gone (their files are unreadable from that moment), a receipt is mailed, and the next
//!   sweep purges files and records (`crate::retention`), at the latest
//!   `privacy.deletion_purge_days` later;
//! - inactivity (P4): idle free accounts are warned, then deleted as in P5;
//! - policy versions and the `/privacy` page (P16);
//! - "export my data" (P11): a job streams a ZIP of everything held about the member into
//!   an encrypted blob, downloadable by its owner until its link expires.
//!
//! Invariants: every consent is off until its member turns it on; the history only grows
//! (a repeat of the current value appends nothing); the training export reads consents at
//! the moment it runs and copies the originals of consenting members only.

mod deletion;
mod export;
mod inactivity;
mod policy;
mod training;

use serde::Deserialize;

use crate::audit::{Actor, AuditLog};
use crate::clock::{unix, SharedClock};
use crate::config::{Config, PrivacyConfig};
use crate::ids::UserId;
use crate::jobs::JobQueue;
use crate::mail::Outbox;
use crate::store::{ConsentKind, ConsentRecord, Store, StoreError};
use crate::vault::Vault;

pub use deletion::Receipt;
pub use inactivity::{InactivityItem, InactivityStep};
pub use policy::{PolicyState, NOTICE_DAYS};
pub use training::TrainingExport;

/// What can go wrong with privacy requests; `crate::error` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error(transparent)]
    Enqueue(#[from] crate::jobs::EnqueueError),
    #[error("{0}")]
    Invalid(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    #[error("the privacy page: {0}")]
    Page(String),
}

impl PrivacyError {
    pub fn code(&self) -> &'static str {
        match self {
            PrivacyError::Invalid(_) => "invalid_request",
            PrivacyError::NotFound(_) => "not_found",
            PrivacyError::Store(e) => e.code(),
            PrivacyError::Enqueue(e) => e.code(),
            PrivacyError::Mail(e) => e.code(),
            PrivacyError::Vault(e) => e.code(),
            PrivacyError::Page(_) => "internal_error",
        }
    }
}

/// The configured numbers the `/privacy` page shows.
#[derive(Debug, Clone)]
struct PageNumbers {
    temporary_hours: u64,
    free_days: u64,
    pro_days: u64,
    studio_days: u64,
    inactive_days: u64,
    inactive_warning_days: u64,
    purge_days: u64,
    min_age: u32,
}

/// A consent update as `PUT /api/v1/me/consents` takes it: the ones named change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentUpdate {
    #[serde(default)]
    pub training: Option<bool>,
    #[serde(default)]
    pub analytics: Option<bool>,
    #[serde(default)]
    pub marketing: Option<bool>,
}

/// Consents, exports, deletion, inactivity and policy versions; cheap to clone.
#[derive(Clone)]
pub struct PrivacyService {
    vault: Vault,
    jobs: JobQueue,
    clock: SharedClock,
    audit: AuditLog,
    outbox: Outbox,
    config: PrivacyConfig,
    page: PageNumbers,
}

impl PrivacyService {
    pub fn new(
        vault: Vault,
        jobs: JobQueue,
        clock: SharedClock,
        audit: AuditLog,
        outbox: Outbox,
        config: &Config,
    ) -> Self {
        let (r, p) = (&config.retention, &config.privacy);
        Self {
            vault,
            jobs,
            clock,
            audit,
            outbox,
            config: p.clone(),
            page: PageNumbers {
                temporary_hours: r.temporary_hours,
                free_days: r.free_days,
                pro_days: r.pro_days,
                studio_days: r.studio_days,
                inactive_days: p.inactive_days,
                inactive_warning_days: p.inactive_warning_days,
                purge_days: p.deletion_purge_days,
                min_age: config.accounts.min_age,
            },
        }
    }

    fn store(&self) -> &Store {
        &self.vault.store
    }

    /// The member's consents (blocking).
    pub fn consents(&self, user: UserId) -> Result<ConsentRecord, StoreError> {
        self.store().consents(user)
    }

    /// Applies the changes named in `update` (blocking; the caller flushes): each one that
    /// changes a value is appended to the history and to the audit log.
    pub fn update_consents(
        &self,
        actor: Actor,
        user: UserId,
        update: &ConsentUpdate,
    ) -> Result<ConsentRecord, StoreError> {
        let mut rec = self.store().consents(user)?;
        let now = unix(self.clock.now());
        let version = self.policy_state()?.current;
        let wanted = [
            (ConsentKind::Training, update.training),
            (ConsentKind::Analytics, update.analytics),
            (ConsentKind::Marketing, update.marketing),
        ];
        let mut changed = Vec::new();
        for (kind, value) in wanted {
            if let Some(v) = value {
                if rec.set(kind, v, now, version) {
                    changed.push((kind, v));
                }
            }
        }
        if !changed.is_empty() {
            self.store().put_consents(user, &rec)?;
            for (kind, value) in changed {
                self.audit.record(
                    actor,
                    "consent.change",
                    format!("user:{user}"),
                    serde_json::json!({"kind": kind, "value": value, "policy_version": version}),
                )?;
            }
        }
        Ok(rec)
    }
}
