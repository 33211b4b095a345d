//! Jobs in the store: the record plus a `jobs_queued` index of runnable ids (UUIDv7, so in
//! submission order). A claim moves a job from queued to running in one transaction, so two
//! workers never run the same job. "Running" is not trusted across restarts: at start-up every
//! running job is queued again (the process that ran it is gone).

use sled::transaction::ConflictableTransactionError;

use super::codec::{decode, encode};
use super::records::{JobRecord, JobState};
use super::ttl::{clear_tx, TtlKind};
use super::{Result, Store};
use crate::ids::JobId;

impl Store {
    /// Inserts or rewrites a job, keeping the queued index in step with its state.
    /// A paid job reaching its final state is charged or refunded in the same transaction
    /// (`super::ledger`).
    pub fn put_job(&self, job: &JobRecord) -> Result<()> {
        self.atomically(
            (&self.jobs, &self.jobs_queued, &self.ledger, &self.balances),
            |(j, q, l, b)| super::ledger::put_job_settling_tx(j, q, l, b, job, job.updated_at),
        )?;
        Ok(())
    }

    pub fn get_job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.jobs
            .get(id.as_bytes())?
            .map(|v| decode("jobs", &v))
            .transpose()
    }

    /// Removes a job's record with its queue entry and expiry.
    pub fn delete_job(&self, id: JobId) -> Result<()> {
        self.atomically(
            (
                &self.jobs,
                &self.jobs_queued,
                &self.ttl,
                &self.ttl_by_object,
            ),
            |(j, q, t, b)| {
                j.remove(id.as_bytes())?;
                q.remove(id.as_bytes())?;
                clear_tx(t, b, TtlKind::Job, id.as_bytes())?;
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        Ok(())
    }

    /// Deletes the owner's finished jobs that `about` names (those working on a deleted
    /// image or document: their kind, op and result go with it). A job still queued or
    /// running is left to end (a paid one is refunded then) and expires later. Returns how
    /// many went.
    pub fn delete_finished_jobs(
        &self,
        owner: crate::ids::UserId,
        about: impl Fn(&super::records::JobKind) -> bool,
    ) -> Result<usize> {
        let mut n = 0;
        for job in self.jobs_of(owner)? {
            if job.state.is_final() && about(&job.kind) {
                self.delete_job(job.id)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Gives every job without an expiry one, `keep_secs` after it was queued: jobs stored
    /// before jobs expired, or by a process that stopped between storing a job and its
    /// expiry. Idempotent; returns how many it gave one.
    pub fn expire_unexpiring_jobs(&self, keep_secs: i64) -> Result<usize> {
        let mut n = 0;
        for v in self.jobs.iter().values() {
            let job: JobRecord = decode("jobs", &v?)?;
            if self.ttl_of(TtlKind::Job, job.id.as_bytes())?.is_none() {
                self.ttl_set(
                    TtlKind::Job,
                    job.id.as_bytes(),
                    job.created_at.saturating_add(keep_secs),
                )?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Claims the oldest queued job that may run at `now`, marking it running.
    pub fn claim_next_job(&self, now: i64) -> Result<Option<JobRecord>> {
        for k in self.jobs_queued.iter().keys() {
            let k = k?;
            let claimed = self.atomically((&self.jobs, &self.jobs_queued), |(j, q)| {
                if q.get(&k)?.is_none() {
                    return Ok(None);
                }
                let Some(v) = j.get(&k)? else {
                    q.remove(&k)?;
                    return Ok(None);
                };
                let mut job: JobRecord = decode("jobs", &v)
                    .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
                if job.state != JobState::Queued || job.not_before > now {
                    if job.state != JobState::Queued {
                        q.remove(&k)?;
                    }
                    return Ok(None);
                }
                job.state = JobState::Running;
                job.attempts += 1;
                job.updated_at = now;
                j.insert(&k, encode(&job))?;
                q.remove(&k)?;
                Ok::<_, ConflictableTransactionError<String>>(Some(job))
            })?;
            if claimed.is_some() {
                return Ok(claimed);
            }
        }
        Ok(None)
    }

    /// Queues again every job left running by a previous process. Returns how many.
    pub fn requeue_running_jobs(&self, now: i64) -> Result<usize> {
        let mut n = 0;
        for v in self.jobs.iter().values() {
            let mut job: JobRecord = decode("jobs", &v?)?;
            if job.state == JobState::Running {
                job.state = JobState::Queued;
                job.updated_at = now;
                self.put_job(&job)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Number of jobs in each state, in `JobState::ALL` order.
    pub fn job_counts(&self) -> Result<[u64; 5]> {
        let mut counts = [0u64; 5];
        for v in self.jobs.iter().values() {
            let job: JobRecord = decode("jobs", &v?)?;
            let i = JobState::ALL
                .iter()
                .position(|s| *s == job.state)
                .unwrap_or(0);
            counts[i] += 1;
        }
        Ok(counts)
    }

    /// The owner's jobs, oldest first.
    /// Every job (usage statistics).
    pub fn all_jobs(&self) -> Result<Vec<JobRecord>> {
        self.jobs
            .iter()
            .values()
            .map(|v| decode("jobs", &v?))
            .collect()
    }

    pub fn jobs_of(&self, owner: crate::ids::UserId) -> Result<Vec<JobRecord>> {
        let mut out = Vec::new();
        for v in self.jobs.iter().values() {
            let job: JobRecord = decode("jobs", &v?)?;
            if job.owner == owner {
                out.push(job);
            }
        }
        Ok(out)
    }
}
