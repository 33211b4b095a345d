//! Retention: the sweep deletes everything due in the TTL index — images with their blobs,
//! documents, expired sessions, expired data exports — and expired mail links, sends
//! inactivity warnings and deletes idle free accounts (`crate::privacy`), purges the members
//! who deleted their accounts (their key is already gone; their records and files go now),
//! then rotates the master key after such a purge and at least weekly, so no old copy of a
//! destroyed data key can be unwrapped. It works in bounded batches, soonest expiry first, logging each removal and appending it to the audit log. It is idempotent
//! (an entry whose object is already gone is dropped) and safe to interrupt: each object's
//! metadata is removed and flushed before its files, and a purge's tombstone goes last. A
//! cron schedule from the config runs it inside the server; `image-layered sweep` runs it
//! from the shell.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::audit::{Actor, AuditLog};
use crate::blobs::{last_rotation, rotate_keys, set_last_rotation, BlobStore, Keyring};
use crate::clock::{unix, SharedClock};
use crate::documents::{DocumentError, DocumentService};
use crate::ids::{DocumentId, ExportId, ImageId, JobId};
use crate::images::{ImageError, ImageService};
use crate::privacy::{InactivityItem, InactivityStep, PrivacyService};
use crate::store::{DeletionRecord, Store, StoreError, TtlEntry, TtlKind};
use crate::vault::Vault;

/// Why a sweep stopped (what it removed before stays removed).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error("rotating the master key: {0}")]
    Keys(#[from] crate::blobs::BlobError),
    #[error("a sweep task failed: {0}")]
    Task(String),
}

impl SweepError {
    pub fn code(&self) -> &'static str {
        match self {
            SweepError::Image(e) => e.code(),
            SweepError::Document(e) => e.code(),
            SweepError::Store(e) => e.code(),
            SweepError::Mail(e) => e.code(),
            SweepError::Keys(e) => e.code(),
            SweepError::Task(_) => "internal_error",
        }
    }
}

/// One object the sweep removed (or, in a dry run, would remove).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Swept {
    pub kind: &'static str,
    pub id: String,
    pub expired_at: i64,
    pub owner: Option<String>,
}

fn describe(e: &TtlEntry) -> Swept {
    let id = match e.kind {
        TtlKind::Image => ImageId::from_slice(&e.id)
            .map(|i| i.to_string())
            .unwrap_or_else(|| hex::encode(&e.id)),
        TtlKind::Document => DocumentId::from_slice(&e.id)
            .map(|i| i.to_string())
            .unwrap_or_else(|| hex::encode(&e.id)),
        TtlKind::Export => ExportId::from_slice(e.id.get(16..).unwrap_or_default())
            .map(|i| i.to_string())
            .unwrap_or_else(|| hex::encode(&e.id)),
        TtlKind::Job => JobId::from_slice(&e.id)
            .map(|i| i.to_string())
            .unwrap_or_else(|| hex::encode(&e.id)),
        // Session and idempotency keys are hashes; show a short prefix only.
        TtlKind::Idempotency => hex::encode(&e.id[..e.id.len().min(6)]),
        TtlKind::Session => hex::encode(&e.id[..e.id.len().min(6)]),
    };
    Swept {
        kind: e.kind.as_str(),
        id,
        expired_at: e.expires_at,
        owner: None,
    }
}

/// An inactivity warning or deletion as the sweep reports it.
fn inactivity_item(i: &InactivityItem) -> Swept {
    Swept {
        kind: match i.step {
            InactivityStep::Warn => "inactivity_warning",
            InactivityStep::Delete => "inactive_account",
        },
        id: i.user.to_string(),
        expired_at: i.last_active_at,
        owner: Some(i.user.to_string()),
    }
}

/// A deleted member's purge as the sweep reports it.
fn purge_item(d: &DeletionRecord) -> Swept {
    Swept {
        kind: "member",
        id: d.user_id.to_string(),
        expired_at: d.requested_at,
        owner: Some(d.user_id.to_string()),
    }
}

/// The master key is rotated at least this often, and after every sweep that purged a
/// deleted member (P5: no old copy of a destroyed data key can be unwrapped again).
pub const ROTATE_EVERY_SECS: i64 = 7 * 86_400;

/// Runs sweeps against the store.
#[derive(Clone)]
pub struct Sweeper {
    store: Store,
    blobs: Arc<BlobStore>,
    keyring: Arc<Keyring>,
    images: ImageService,
    documents: DocumentService,
    privacy: PrivacyService,
    audit: AuditLog,
    batch: usize,
    /// Entries a sweep could not remove, since start-up.
    failures: Arc<std::sync::atomic::AtomicU64>,
}

impl Sweeper {
    pub fn new(
        vault: &Vault,
        images: ImageService,
        documents: DocumentService,
        privacy: PrivacyService,
        audit: AuditLog,
        batch: usize,
    ) -> Self {
        Self {
            store: vault.store.clone(),
            blobs: vault.blobs.clone(),
            keyring: vault.keyring.clone(),
            images,
            documents,
            privacy,
            audit,
            batch: batch.max(1),
            failures: Arc::default(),
        }
    }

    /// What a sweep at `as_of` would remove, without removing anything.
    pub fn due(&self, as_of: i64) -> Result<Vec<Swept>, SweepError> {
        let mut due: Vec<Swept> = self
            .store
            .ttl_due(as_of, usize::MAX)?
            .iter()
            .map(describe)
            .collect();
        due.extend(
            self.privacy
                .inactivity_due(as_of)?
                .iter()
                .map(inactivity_item),
        );
        let deletions = self.store.deletions()?;
        due.extend(deletions.iter().map(purge_item));
        if let Some(reason) = self.rotation_due(as_of, !deletions.is_empty())? {
            due.push(Swept {
                kind: "master_key",
                id: format!("rotation ({reason})"),
                expired_at: as_of,
                owner: None,
            });
        }
        Ok(due)
    }

    /// Why the master key should be rotated now, if it should: members were purged, or
    /// the last rotation is a week old. A store that never recorded one starts counting now.
    fn rotation_due(&self, as_of: i64, purged: bool) -> Result<Option<&'static str>, StoreError> {
        if purged {
            return Ok(Some("deleted members"));
        }
        Ok(match last_rotation(&self.store)? {
            Some(at) if as_of - at >= ROTATE_EVERY_SECS => Some("weekly"),
            Some(_) => None,
            None => {
                set_last_rotation(&self.store, as_of)?;
                None
            }
        })
    }

    /// Rotates the master key when [`rotation_due`](Self::rotation_due); recorded in the
    /// audit log.
    async fn rotate_if_due(&self, as_of: i64, purged: bool) -> Result<Option<Swept>, SweepError> {
        let Some(reason) = self.rotation_due(as_of, purged)? else {
            return Ok(None);
        };
        // under systemd the key is a read-only credential: the sweep goes on, and says how
        if let Some(why) = self.keyring.not_rotatable() {
            tracing::warn!(
                reason,
                "retention: the master key is due for rotation but {why}; stop the service and run `image-layered keys rotate` on the key's source file"
            );
            return Ok(None);
        }
        let (store, keyring) = (self.store.clone(), self.keyring.clone());
        let (old, new, n) =
            tokio::task::spawn_blocking(move || rotate_keys(&store, &keyring, as_of))
                .await
                .map_err(|e| SweepError::Task(e.to_string()))??;
        self.audit.record(
            Actor::Sweep,
            "keys.rotate",
            "master_key",
            serde_json::json!({"from": old, "to": new, "rewrapped": n, "reason": reason}),
        )?;
        self.store.flush().await?;
        tracing::info!(
            from = old,
            to = new,
            rewrapped = n,
            reason,
            "retention: master key rotated"
        );
        Ok(Some(Swept {
            kind: "master_key",
            id: format!("generation {new}"),
            expired_at: as_of,
            owner: None,
        }))
    }

    /// Purges every deleted member (their key is already gone): every image with its
    /// documents, every job, the files left under their folder, and the tombstone last, so
    /// an interrupted purge runs again. Recorded in the audit log.
    async fn purge_deleted_members(&self) -> Result<Vec<Swept>, SweepError> {
        let mut purged = Vec::new();
        for tombstone in self.store.deletions()? {
            let user = tombstone.user_id;
            for img in self.store.list_images(user)? {
                self.images.delete_any(img.id).await?;
            }
            for job in self.store.jobs_of(user)? {
                self.store.delete_job(job.id)?;
            }
            for export in self.store.exports_of(user)? {
                self.store
                    .delete_export_key(&crate::store::export_key(user, export.id))?;
            }
            self.store.delete_user(user)?;
            self.store.flush().await?;
            let blobs = self.blobs.clone();
            let files = tokio::task::spawn_blocking(move || blobs.delete_owner(user))
                .await
                .map_err(|e| SweepError::Task(e.to_string()))?
                .unwrap_or_else(|e| {
                    tracing::warn!(member = %user, "could not remove every file (the reconciler will): {e}");
                    0
                });
            self.store.remove_deletion(user)?;
            let item = purge_item(&tombstone);
            self.audit.record(
                Actor::Sweep,
                "sweep.purge",
                format!("user:{user}"),
                serde_json::json!({"receipt": tombstone.receipt_id, "files": files}),
            )?;
            self.store.flush().await?;
            tracing::info!(member = %user, files, "retention: purged a deleted member");
            purged.push(item);
        }
        Ok(purged)
    }

    /// Removes one due entry's object; what the sweep reports for it (`None`: kept for
    /// now, a job that has not ended).
    async fn remove(&self, entry: &TtlEntry, as_of: i64) -> Result<Option<Swept>, SweepError> {
        let mut item = describe(entry);
        match entry.kind {
            TtlKind::Image => {
                let gone = match ImageId::from_slice(&entry.id) {
                    Some(id) => self.images.delete_any(id).await?,
                    None => None,
                };
                match gone {
                    Some(rec) => item.owner = Some(rec.owner.to_string()),
                    None => self.store.ttl_drop(entry)?,
                }
            }
            TtlKind::Document => {
                let gone = match DocumentId::from_slice(&entry.id) {
                    Some(id) => self.documents.delete_any(id).await?,
                    None => None,
                };
                match gone {
                    Some(doc) => item.owner = Some(doc.owner.to_string()),
                    None => self.store.ttl_drop(entry)?,
                }
            }
            TtlKind::Session => {
                if !self.store.delete_session(&entry.id)? {
                    self.store.ttl_drop(entry)?;
                }
            }
            TtlKind::Idempotency => {
                if !self.store.idempotency_forget(&entry.id)? {
                    self.store.ttl_drop(entry)?;
                }
            }
            TtlKind::Export => match self.privacy.remove_export(&entry.id).await? {
                Some(rec) => item.owner = Some(rec.owner.to_string()),
                None => self.store.ttl_drop(entry)?,
            },
            TtlKind::Job => match JobId::from_slice(&entry.id) {
                Some(id) => match self.store.get_job(id)? {
                    Some(job) if !job.state.is_final() => {
                        // still queued or running: kept until it ends, looked at daily
                        self.store.ttl_set(
                            TtlKind::Job,
                            &entry.id,
                            as_of.saturating_add(86_400),
                        )?;
                        return Ok(None);
                    }
                    Some(job) => {
                        self.store.delete_job(id)?;
                        item.owner = Some(job.owner.to_string());
                    }
                    None => self.store.ttl_drop(entry)?,
                },
                None => self.store.ttl_drop(entry)?,
            },
        }
        Ok(Some(item))
    }

    /// How many entries sweeps could not remove since start-up (`/metrics`).
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Removes everything due at `as_of`, batch by batch; returns what was removed. An entry
    /// that cannot be removed is logged, counted and skipped (the next sweep tries it again):
    /// one bad entry never stops the rest, which it would forever, being due first.
    pub async fn sweep(&self, as_of: i64) -> Result<Vec<Swept>, SweepError> {
        let mut removed = Vec::new();
        let mut skipped: HashSet<(i64, &'static str, Vec<u8>)> = HashSet::new();
        loop {
            let due: Vec<TtlEntry> = self
                .store
                .ttl_due(as_of, self.batch + skipped.len())?
                .into_iter()
                .filter(|e| !skipped.contains(&(e.expires_at, e.kind.as_str(), e.id.clone())))
                .collect();
            if due.is_empty() {
                break;
            }
            for entry in &due {
                let item = match self.remove(entry, as_of).await {
                    Ok(Some(item)) => item,
                    Ok(None) => continue,
                    Err(e) => {
                        let item = describe(entry);
                        tracing::error!(kind = item.kind, id = %item.id, code = e.code(),
                            "retention: could not remove (skipped; the next sweep tries again): {e}");
                        self.failures
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        skipped.insert((entry.expires_at, entry.kind.as_str(), entry.id.clone()));
                        continue;
                    }
                };
                tracing::info!(kind = item.kind, id = %item.id, expired_at = item.expired_at, "retention: removed");
                self.audit.record(
                    Actor::Sweep,
                    "sweep.remove",
                    format!("{}:{}", item.kind, item.id),
                    serde_json::json!({"expired_at": item.expired_at, "owner": item.owner}),
                )?;
                removed.push(item);
            }
            self.store.flush().await?;
        }
        let tokens = self.store.delete_expired_tokens(as_of)?;
        if tokens > 0 {
            tracing::info!(
                tokens,
                "retention: removed expired links (verification, reset, invite)"
            );
        }
        let privacy = self.privacy.clone();
        let idle = tokio::task::spawn_blocking(move || privacy.apply_inactivity(as_of))
            .await
            .map_err(|e| SweepError::Task(e.to_string()))??;
        if !idle.is_empty() {
            self.store.flush().await?;
            self.privacy.notify_outbox();
            for item in &idle {
                let item = inactivity_item(item);
                tracing::info!(kind = item.kind, member = %item.id, "retention: inactivity");
                removed.push(item);
            }
        }
        let purged = self.purge_deleted_members().await?;
        let rotated = self.rotate_if_due(as_of, !purged.is_empty()).await?;
        removed.extend(purged);
        removed.extend(rotated);
        if !removed.is_empty() {
            tracing::info!(removed = removed.len(), "retention sweep finished");
        }
        Ok(removed)
    }
}

/// Parses a cron expression (6 or 7 fields, seconds first).
pub fn parse_schedule(expr: &str) -> Result<cron::Schedule, String> {
    cron::Schedule::from_str(expr).map_err(|e| format!("bad cron schedule {expr:?}: {e}"))
}

/// Runs the sweep on `schedule` until `shutdown` turns true.
pub fn spawn_scheduler(
    sweeper: Sweeper,
    schedule: cron::Schedule,
    clock: SharedClock,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = clock.now();
            let Some(next) = next_after(&schedule, now) else {
                tracing::warn!("the retention schedule has no future run; sweeps are off");
                return;
            };
            let wait = (next - now).max(time::Duration::ZERO);
            let wait = std::time::Duration::try_from(wait).unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = sweeper.sweep(unix(clock.now())).await {
                tracing::error!("retention sweep failed: {e}");
            }
        }
    })
}

pub(crate) fn next_after(schedule: &cron::Schedule, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let utc = chrono_like(now)?;
    let next = schedule.after(&utc).next()?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
}

fn chrono_like(t: OffsetDateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.unix_timestamp(), 0)
}
