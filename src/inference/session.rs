//! One cached ONNX Runtime session per model, and the per-device concurrency limit.
//!
//! `ort` 2.0.0-rc.15's `Session::run` takes `&mut self`, so each [`ModelSession`] keeps its
//! session behind a mutex: runs of the same model are serialised, runs of different models
//! overlap up to the [`Permits`] count. Lock order is always session, then permit, so a
//! caller waiting for a busy model never holds a permit another model could use.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ort::session::Session;

use super::InferenceError;

/// A counting semaphore for blocking threads (`Mutex` + `Condvar`).
#[derive(Debug)]
pub(crate) struct Permits {
    free: Mutex<usize>,
    available: Condvar,
}

/// A held permit; released on drop.
pub(crate) struct Permit<'a> {
    permits: &'a Permits,
}

impl Permits {
    /// `count` permits; zero is treated as one so runs can never deadlock.
    pub fn new(count: usize) -> Self {
        Self {
            free: Mutex::new(count.max(1)),
            available: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until a permit is free.
    pub fn acquire(&self) -> Permit<'_> {
        let mut free = self.lock();
        while *free == 0 {
            free = self.available.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Permit { permits: self }
    }

    #[cfg(test)]
    pub fn free(&self) -> usize {
        *self.lock()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.permits.lock() += 1;
        self.permits.available.notify_one();
    }
}

/// A model's session, its name for errors, and the shared permits.
pub(crate) struct ModelSession {
    name: &'static str,
    session: Mutex<Session>,
    permits: Arc<Permits>,
    /// How long building the session took, in milliseconds.
    pub load_ms: u64,
}

impl ModelSession {
    pub fn new(name: &'static str, session: Session, permits: Arc<Permits>, load_ms: u64) -> Self {
        Self {
            name,
            session: Mutex::new(session),
            permits,
            load_ms,
        }
    }

    /// Runs `f` on the session while holding it and a device permit. A panic inside an
    /// earlier run does not poison the model: ONNX Runtime keeps no state between runs.
    pub fn run<R>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, InferenceError>,
    ) -> Result<R, InferenceError> {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let _permit = self.permits.acquire();
        f(&mut session)
    }

    /// Reads the session (metadata, input and output descriptions) without a permit.
    pub fn inspect<R>(&self, f: impl FnOnce(&Session) -> R) -> R {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        f(&session)
    }
}

impl std::fmt::Debug for ModelSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSession")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn permits_bound_concurrency() {
        let permits = Arc::new(Permits::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (permits, running, peak) = (permits.clone(), running.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _p = permits.acquire();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(permits.free(), 2);
    }

    #[test]
    fn zero_permits_means_one() {
        let permits = Permits::new(0);
        let p = permits.acquire();
        assert_eq!(permits.free(), 0);
        drop(p);
        assert_eq!(permits.free(), 1);
    }
}
