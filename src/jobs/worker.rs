//! Workers: each loops claim → run → record, sleeping on the queue's wake-up (or a short poll,
//! for jobs waiting out a retry backoff) when nothing is runnable. A run happens on a blocking
//! thread; a panic there becomes a failed job, never a dead worker.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{JobContext, JobFailure, JobHandler, JobQueue};
use crate::clock::unix;
use crate::store::{JobError, JobRecord, JobState};

/// What runs every job: the app's dispatch by kind (a `match`, so a kind without a handler
/// does not compile).
pub type SharedHandler = Arc<dyn JobHandler>;

const IDLE_POLL: Duration = Duration::from_millis(250);

/// Starts `config.workers` workers; they stop when `shutdown` turns true, after their
/// current job.
pub fn spawn_workers(
    queue: &JobQueue,
    handler: SharedHandler,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    (0..queue.inner.config.workers.max(1))
        .map(|n| {
            let queue = queue.clone();
            let handler = handler.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    if *shutdown.borrow() {
                        break;
                    }
                    match queue.run_next(&handler).await {
                        Ok(Some(_)) => continue,
                        Ok(None) => {}
                        Err(e) => tracing::error!(worker = n, "job queue: {e}"),
                    }
                    tokio::select! {
                        _ = queue.inner.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            })
        })
        .collect()
}

impl JobQueue {
    /// Claims and runs the next runnable job, if any; returns it as finally recorded.
    pub async fn run_next(
        &self,
        handler: &SharedHandler,
    ) -> Result<Option<JobRecord>, crate::store::StoreError> {
        let now = unix(self.inner.clock.now());
        let Some(job) = self.inner.store.claim_next_job(now)? else {
            return Ok(None);
        };
        self.publish(&job);
        let cancel = Arc::new(AtomicBool::new(false));
        self.inner
            .running
            .lock()
            .expect("lock")
            .insert(job.id, cancel.clone());
        let handler = handler.clone();
        let mut ctx = JobContext {
            job: job.clone(),
            queue: self.clone(),
            cancel,
        };
        let joined = tokio::task::spawn_blocking(move || handler.run(&mut ctx)).await;
        let outcome = match joined {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(job = %job.id, "job panicked: {e}");
                Err(JobFailure::abort(
                    "job_panicked",
                    "the job crashed; this is a bug — the server log has details",
                ))
            }
        };
        self.inner.running.lock().expect("lock").remove(&job.id);
        let done = self.record_outcome(job, outcome)?;
        self.inner.store.flush().await?;
        self.publish(&done);
        Ok(Some(done))
    }

    fn record_outcome(
        &self,
        mut job: JobRecord,
        outcome: Result<serde_json::Value, JobFailure>,
    ) -> Result<JobRecord, crate::store::StoreError> {
        // The job may have been deleted with its image while it ran; leave it gone.
        if self.inner.store.get_job(job.id)?.is_none() {
            job.state = JobState::Cancelled;
            return Ok(job);
        }
        let now = unix(self.inner.clock.now());
        job.updated_at = now;
        match outcome {
            Ok(result) => {
                job.state = JobState::Succeeded;
                job.progress = 1.0;
                job.result = Some(result);
                job.error = None;
            }
            Err(JobFailure::Cancelled) => job.state = JobState::Cancelled,
            Err(JobFailure::Retry(msg)) if job.attempts < self.inner.config.max_attempts => {
                let backoff_ms = self
                    .inner
                    .config
                    .retry_backoff_ms
                    .saturating_mul(1 << (job.attempts - 1).min(16));
                job.state = JobState::Queued;
                job.not_before = now + backoff_ms.div_ceil(1000) as i64;
                tracing::warn!(job = %job.id, attempt = job.attempts, "job will retry: {msg}");
            }
            Err(JobFailure::Retry(msg)) => {
                job.state = JobState::Failed;
                job.error = Some(JobError {
                    code: "retries_exhausted".into(),
                    message: format!("failed after {} attempts: {msg}", job.attempts),
                });
            }
            Err(JobFailure::Abort { code, message }) => {
                job.state = JobState::Failed;
                job.error = Some(JobError { code, message });
            }
        }
        self.inner.store.put_job(&job)?;
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SharedClock};
    use crate::config::JobsConfig;
    use crate::ids::{ImageId, UserId};
    use crate::store::JobKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Scripted(AtomicU32, &'static str);
    impl JobHandler for Scripted {
        fn run(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            ctx.progress(0.5);
            match self.1 {
                "panic" => panic!("boom"),
                "flaky" if n == 0 => Err(JobFailure::Retry("try again".into())),
                "bad" => Err(JobFailure::abort("bad_input", "nope")),
                _ => Ok(serde_json::json!({"n": n})),
            }
        }
    }

    /// A member in `store` (jobs are queued for members only).
    fn member(store: &crate::store::Store) -> UserId {
        let key_file = std::env::temp_dir().join(format!("il-worker-{}.key", UserId::new()));
        let keyring = crate::blobs::Keyring::open(&key_file, true).unwrap();
        let _ = std::fs::remove_file(&key_file);
        crate::auth::create_user(
            store,
            &keyring,
            0,
            crate::auth::NewUser {
                email: &format!("{}@example.com", UserId::new()),
                name: "M",
                role: crate::store::Role::Member,
                plan: crate::store::Plan::Free,
                password: "a long enough password",
            },
        )
        .unwrap()
        .id
    }

    fn setup(mode: &'static str) -> (tempfile::TempDir, JobQueue, SharedHandler, ManualClock) {
        let (dir, store) = crate::store::temp_store();
        let clock = ManualClock::new(time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(1));
        let shared: SharedClock = Arc::new(clock.clone());
        let audit = crate::audit::AuditLog::new(store.clone(), shared.clone());
        let q = JobQueue::new(
            store,
            shared,
            JobsConfig {
                workers: 1,
                max_attempts: 3,
                retry_backoff_ms: 1500,
                keep_days: 30,
                memory_budget_mb: 0,
            },
            audit,
            crate::billing::Pricing::new(&crate::config::Config::default()),
        );
        (dir, q, Arc::new(Scripted(AtomicU32::new(0), mode)), clock)
    }

    fn kind() -> JobKind {
        JobKind::Thumbnail {
            image_id: ImageId::new(),
        }
    }

    #[tokio::test]
    async fn success_panic_abort_and_retry_with_backoff() {
        let (_d, q, h, clock) = setup("ok");
        let owner = member(&q.inner.store);
        let job = q.new_job(owner, kind());
        q.enqueue(&job).await.unwrap();
        let done = q.run_next(&h).await.unwrap().unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!(done.progress, 1.0);
        assert!(q.run_next(&h).await.unwrap().is_none());

        let (_d, q, h, _) = setup("panic");
        q.enqueue(&q.new_job(member(&q.inner.store), kind()))
            .await
            .unwrap();
        let done = q.run_next(&h).await.unwrap().unwrap();
        assert_eq!(done.state, JobState::Failed);
        assert_eq!(done.error.unwrap().code, "job_panicked");

        let (_d, q, h, _) = setup("bad");
        q.enqueue(&q.new_job(member(&q.inner.store), kind()))
            .await
            .unwrap();
        let done = q.run_next(&h).await.unwrap().unwrap();
        assert_eq!((done.state, done.attempts), (JobState::Failed, 1));

        let (_d, q, h, _) = setup("flaky");
        let _ = clock;
        let owner = member(&q.inner.store);
        let job = q.new_job(owner, kind());
        q.enqueue(&job).await.unwrap();
        let first = q.run_next(&h).await.unwrap().unwrap();
        assert_eq!(first.state, JobState::Queued);
        assert_eq!(first.not_before, job.not_before + 2);
        // not runnable until the backoff has passed
        assert!(q.run_next(&h).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn running_jobs_are_requeued_on_recovery_and_queued_ones_cancel() {
        let (_d, q, h, _) = setup("ok");
        let owner = member(&q.inner.store);
        let job = q.new_job(owner, kind());
        q.enqueue(&job).await.unwrap();
        // simulate a crash mid-run: claimed, never finished
        let claimed = q.inner.store.claim_next_job(i64::MAX).unwrap().unwrap();
        assert_eq!(claimed.state, JobState::Running);
        assert_eq!(q.recover().unwrap(), 1);
        assert_eq!(
            q.run_next(&h).await.unwrap().unwrap().state,
            JobState::Succeeded
        );

        let job = q.new_job(owner, kind());
        q.enqueue(&job).await.unwrap();
        assert!(q.cancel(UserId::new(), job.id).await.unwrap().is_none());
        q.cancel(owner, job.id).await.unwrap().unwrap();
        assert_eq!(
            q.get(owner, job.id).unwrap().unwrap().state,
            JobState::Cancelled
        );
        assert!(q.run_next(&h).await.unwrap().is_none());
    }
}
