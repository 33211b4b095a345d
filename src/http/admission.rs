//! Admission for heavy request work — exports, edits, undo and redo — which runs on the
//! blocking pool and may hold large buffers (an OpenRaster export keeps a float canvas):
//! at most `server.heavy_concurrency` at once over the studio and `server.heavy_per_member`
//! per member, so one member can neither take every blocking thread nor fill memory. A
//! request waits up to `server.heavy_wait_secs` for its place (a burst of one member's edits
//! runs one after another); then it is answered `429 too_many_requests` when the member's own
//! requests fill their share, `503 busy` when the studio is full; both with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::ids::UserId;

/// The studio's slots for heavy work, and each member's.
pub struct Admission {
    slots: Arc<Semaphore>,
    members: Mutex<HashMap<UserId, Arc<Semaphore>>>,
    per_member: usize,
    wait: Duration,
}

/// A request's place; dropping it frees the slot and the member's share.
pub struct Admitted<'a> {
    admission: &'a Admission,
    owner: UserId,
    mine: Option<OwnedSemaphorePermit>,
    slot: Option<OwnedSemaphorePermit>,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        drop((self.slot.take(), self.mine.take()));
        // forget a member with nothing running (and nobody waiting)
        let mut members = self
            .admission
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(sem) = members.get(&self.owner) {
            if Arc::strong_count(sem) == 1 && sem.available_permits() == self.admission.per_member {
                members.remove(&self.owner);
            }
        }
    }
}

impl Admission {
    pub fn new(config: &ServerConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(config.heavy_concurrency.max(1))),
            members: Mutex::new(HashMap::new()),
            per_member: config.heavy_per_member.max(1),
            wait: Duration::from_secs(config.heavy_wait_secs),
        }
    }

    /// A place for `owner`'s heavy request, waiting up to `heavy_wait_secs` for the member's
    /// share and a studio slot; or the 429 (their own requests fill their share) or 503
    /// (the studio is full) that refuses it.
    pub async fn admit(&self, owner: UserId) -> Result<Admitted<'_>, ApiError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        let member = {
            let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
            members
                .entry(owner)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_member)))
                .clone()
        };
        // from here a refusal gives everything back (the drop)
        let mut admitted = Admitted {
            admission: self,
            owner,
            mine: None,
            slot: None,
        };
        let mine = tokio::time::timeout_at(deadline, member.acquire_owned()).await;
        admitted.mine = Some(match mine {
            Ok(permit) => permit.map_err(|e| ApiError::internal("admission", e))?,
            Err(_) => {
                return Err(ApiError {
                    retry_after: Some(2),
                    ..ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_requests",
                        format!(
                        "your other {} exports or edits are still running; wait for one to finish",
                        self.per_member
                    ),
                    )
                })
            }
        });
        let slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await;
        admitted.slot = Some(match slot {
            Ok(permit) => permit.map_err(|e| ApiError::internal("admission", e))?,
            Err(_) => return Err(ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "the studio is busy with other exports and edits; try again in a few seconds",
                )
            }),
        });
        Ok(admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(slots: usize, per_member: usize) -> Admission {
        Admission::new(&ServerConfig {
            heavy_concurrency: slots,
            heavy_per_member: per_member,
            heavy_wait_secs: 1,
            ..ServerConfig::default()
        })
    }

    #[tokio::test]
    async fn a_member_gets_their_share_and_a_full_studio_answers_busy() {
        let gate = admission(2, 1);
        let (ann, bob, cy) = (UserId::new(), UserId::new(), UserId::new());
        let a = gate.admit(ann).await.unwrap();
        // Ann's share is taken by herself: she waits a second, then 429
        let e = gate.admit(ann).await.err().unwrap();
        assert_eq!((e.status.as_u16(), e.retry_after), (429, Some(2)));
        let b = gate.admit(bob).await.unwrap();
        // both slots taken: Cy waits a second, then is told to come back
        let started = std::time::Instant::now();
        let e = gate.admit(cy).await.err().unwrap();
        assert_eq!((e.code, e.retry_after), ("busy", Some(5)));
        assert!(started.elapsed() >= Duration::from_millis(900));
        // a refusal kept nothing: Cy gets in as soon as a slot frees
        drop(a);
        let c = gate.admit(cy).await.unwrap();
        assert!(gate.admit(ann).await.is_err(), "no slot left");
        drop((b, c));
        let _a = gate.admit(ann).await.unwrap();
        assert_eq!(
            gate.members.lock().unwrap().len(),
            1,
            "idle members are forgotten"
        );
    }

    #[tokio::test]
    async fn a_burst_of_one_members_edits_runs_one_after_another() {
        let gate = Arc::new(admission(4, 1));
        let ann = UserId::new();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (gate, running) = (gate.clone(), running.clone());
                tokio::spawn(async move {
                    let _place = gate.admit(ann).await?;
                    let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    assert_eq!(now, 0, "two of one member's edits ran at once");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, ApiError>(())
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_next_free_slot() {
        let gate = Arc::new(admission(1, 1));
        let (ann, bob) = (UserId::new(), UserId::new());
        let a = gate.admit(ann).await.unwrap();
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.admit(bob).await.map(|_| ()).is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(a);
        assert!(waiter.await.unwrap());
    }
}
