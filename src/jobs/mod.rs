//! The persisted job queue. Jobs live in the store (queued → running → succeeded | failed |
//! cancelled); a pool of workers claims them one at a time by transaction and runs each on a
//! blocking thread inside a panic boundary, so a panicking job fails alone. Failures are
//! classified: `Retry` re-queues with exponential backoff up to `max_attempts`, `Abort` fails
//! at once (bad input). Progress and state changes are broadcast for SSE. A claimed job is
//! persisted as running; the running set with its cancel flags lives in memory, so after a
//! crash the store's running jobs are queued again at start-up (their process is gone).

pub mod memory;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, Notify};

use crate::audit::{Actor, AuditLog};
use crate::billing::Pricing;
use crate::clock::{unix, SharedClock};
use crate::config::JobsConfig;
use crate::ids::{JobId, UserId};
use crate::store::{JobKind, JobRecord, JobState, ReserveError, Store, StoreError, TtlKind};

/// Why a job was not queued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("this job costs {cost} credits and the balance is {balance}; buy credits or wait for the monthly grant")]
    InsufficientCredits { cost: u64, balance: i64 },
    #[error("{limit} jobs are already queued or running for this account (the plan's limit); wait for one to finish")]
    QueueFull { limit: u64 },
    #[error("the account is gone")]
    NoAccount,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EnqueueError {
    pub fn code(&self) -> &'static str {
        match self {
            EnqueueError::InsufficientCredits { .. } => "insufficient_credits",
            EnqueueError::QueueFull { .. } => "queue_full",
            EnqueueError::NoAccount => "not_found",
            EnqueueError::Store(e) => e.code(),
        }
    }
}

pub use worker::{spawn_workers, SharedHandler};

/// How a job run ended, when it did not succeed.
#[derive(Debug)]
pub enum JobFailure {
    /// A transient failure: run again later (until `max_attempts`).
    Retry(String),
    /// Bad input or a permanent condition: fail now.
    Abort { code: String, message: String },
    /// The job saw its cancel flag.
    Cancelled,
}

impl JobFailure {
    pub fn abort(code: &str, message: impl Into<String>) -> Self {
        JobFailure::Abort {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// What `DELETE` did to a job.
#[derive(Debug)]
pub enum Removal {
    /// It was queued or running: it is cancelled (a running one at its next check).
    Cancelled(Box<JobRecord>),
    /// It had finished: its record is gone.
    Deleted,
}

/// What a running job may do besides its work: report progress, look at its cancel flag.
pub struct JobContext {
    job: JobRecord,
    queue: JobQueue,
    cancel: Arc<AtomicBool>,
}

impl JobContext {
    pub fn job(&self) -> &JobRecord {
        &self.job
    }

    /// Records progress (0.0..=1.0) and tells subscribers; not flushed (progress is advisory).
    pub fn progress(&mut self, p: f32) {
        self.job.progress = p.clamp(0.0, 1.0);
        self.job.updated_at = unix(self.queue.inner.clock.now());
        if self.queue.inner.store.put_job(&self.job).is_ok() {
            self.queue.publish(&self.job);
        }
    }

    /// Holds `bytes` of the memory budget (see [`memory`]) for as long as the claim lives,
    /// waiting while other work holds it; `Err(Cancelled)` if the job is cancelled while it
    /// waits.
    pub fn claim_memory(&self, bytes: u64) -> Result<memory::Claim, JobFailure> {
        let cancel = self.cancel.clone();
        memory::budget()
            .claim(bytes, &mut || !cancel.load(Ordering::Relaxed))
            .ok_or(JobFailure::Cancelled)
    }

    /// `Err(Cancelled)` once a cancel was requested; call between steps.
    pub fn check_cancelled(&self) -> Result<(), JobFailure> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(JobFailure::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Runs jobs (the app dispatches on the job's kind). Called on a blocking thread.
pub trait JobHandler: Send + Sync + 'static {
    fn run(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure>;
}

struct Inner {
    store: Store,
    pricing: Pricing,
    audit: AuditLog,
    clock: SharedClock,
    config: JobsConfig,
    wake: Notify,
    events: broadcast::Sender<JobRecord>,
    running: Mutex<HashMap<JobId, Arc<AtomicBool>>>,
}

/// Handle to the queue; cheap to clone.
#[derive(Clone)]
pub struct JobQueue {
    inner: Arc<Inner>,
}

impl JobQueue {
    pub fn new(
        store: Store,
        clock: SharedClock,
        config: JobsConfig,
        audit: AuditLog,
        pricing: Pricing,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                store,
                pricing,
                audit,
                clock,
                config,
                wake: Notify::new(),
                events,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A fresh queued job record (not yet stored: callers insert it with what it works on).
    pub fn new_job(&self, owner: UserId, kind: JobKind) -> JobRecord {
        let now = unix(self.inner.clock.now());
        JobRecord {
            id: JobId::new(),
            owner,
            kind,
            state: JobState::Queued,
            progress: 0.0,
            attempts: 0,
            not_before: now,
            error: None,
            result: None,
            created_at: now,
            updated_at: now,
            reserved: None,
            settled: false,
        }
    }

    /// Gives a stored job its expiry, `jobs.keep_days` after it was queued (a crash before
    /// this is mended at the next start: `Store::expire_unexpiring_jobs`).
    pub fn expire_later(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.inner.store.ttl_set(
            TtlKind::Job,
            job.id.as_bytes(),
            job.created_at + self.keep_secs(),
        )
    }

    /// How long job records are kept, in seconds.
    pub fn keep_secs(&self) -> i64 {
        (self.inner.config.keep_days as i64).saturating_mul(86_400)
    }

    /// Wakes the workers after a job was stored (and flushed).
    pub fn notify(&self) {
        self.inner.wake.notify_waiters();
        self.inner.wake.notify_one();
    }

    /// Stores, flushes and announces a new job. A paid kind reserves its cost in the same
    /// transaction (`insufficient_credits` when the balance is below it), and every kind but
    /// thumbnails counts against the plan's `max_queued_jobs`. Returns the job as stored.
    pub async fn enqueue(&self, job: &JobRecord) -> Result<JobRecord, EnqueueError> {
        let store = &self.inner.store;
        let mut job = job.clone();
        let user = store.get_user(job.owner)?.ok_or(EnqueueError::NoAccount)?;
        crate::billing::grants::grant_current(
            store,
            &self.inner.pricing,
            &user,
            unix(self.inner.clock.now()),
        )?;
        if !matches!(job.kind, JobKind::Thumbnail { .. }) {
            let limit = self.inner.pricing.limits(user.plan).max_queued_jobs;
            let active = store
                .jobs_of(job.owner)?
                .iter()
                .filter(|j| !j.state.is_final())
                .count() as u64;
            if active >= limit {
                return Err(EnqueueError::QueueFull { limit });
            }
        }
        match self.inner.pricing.cost(&user, &job.kind) {
            Some(cost) => {
                job.reserved = Some(cost);
                store.insert_reserved_job(&job).map_err(|e| match e {
                    ReserveError::Insufficient { cost, balance } => {
                        EnqueueError::InsufficientCredits { cost, balance }
                    }
                    ReserveError::Store(e) => EnqueueError::Store(e),
                })?;
            }
            None => store.put_job(&job)?,
        }
        self.expire_later(&job)?;
        store.flush().await?;
        self.notify();
        Ok(job)
    }

    /// A member's job; another member's is `None`.
    pub fn get(&self, owner: UserId, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.inner.store.get_job(id)?.filter(|j| j.owner == owner))
    }

    /// Subscribes to every job change (filter by id).
    pub fn subscribe(&self) -> broadcast::Receiver<JobRecord> {
        self.inner.events.subscribe()
    }

    fn publish(&self, job: &JobRecord) {
        let _ = self.inner.events.send(job.clone());
    }

    /// Cancels a job: a queued one at once, a running one when it next checks its flag.
    /// Returns the job as it stands, or `None` if it is not the member's.
    pub async fn cancel(&self, owner: UserId, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let Some(mut job) = self.get(owner, id)? else {
            return Ok(None);
        };
        match job.state {
            JobState::Queued => {
                job.state = JobState::Cancelled;
                job.updated_at = unix(self.inner.clock.now());
                self.inner.store.put_job(&job)?;
                self.inner.store.flush().await?;
                self.publish(&job);
            }
            JobState::Running => {
                if let Some(flag) = self.inner.running.lock().expect("lock").get(&id) {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            _ => {}
        }
        Ok(Some(job))
    }

    /// The member's jobs (their processing history), newest first.
    pub fn list(&self, owner: UserId) -> Result<Vec<JobRecord>, StoreError> {
        let mut jobs = self.inner.store.jobs_of(owner)?;
        jobs.reverse();
        Ok(jobs)
    }

    /// `DELETE` on a job: a queued or running one is cancelled (as [`cancel`](Self::cancel));
    /// a finished one's record is deleted, recorded in the audit log as done by `actor`.
    /// `None` if it is not the member's.
    pub async fn cancel_or_delete(
        &self,
        actor: Actor,
        owner: UserId,
        id: JobId,
    ) -> Result<Option<Removal>, StoreError> {
        let Some(job) = self.get(owner, id)? else {
            return Ok(None);
        };
        if !job.state.is_final() {
            return Ok(self
                .cancel(owner, id)
                .await?
                .map(|j| Removal::Cancelled(Box::new(j))));
        }
        self.inner.store.delete_job(id)?;
        self.inner.audit.record(
            actor,
            "job.delete",
            format!("job:{id}"),
            serde_json::Value::Null,
        )?;
        self.inner.store.flush().await?;
        Ok(Some(Removal::Deleted))
    }

    /// Re-queues jobs a previous process left running. Call once at start-up.
    pub fn recover(&self) -> Result<usize, StoreError> {
        let n = self
            .inner
            .store
            .requeue_running_jobs(unix(self.inner.clock.now()))?;
        if n > 0 {
            tracing::info!(jobs = n, "re-queued jobs interrupted by the last shutdown");
        }
        Ok(n)
    }

    /// Job counts by state for metrics, in `JobState::ALL` order.
    pub fn counts(&self) -> Result<[u64; 5], StoreError> {
        self.inner.store.job_counts()
    }
}
