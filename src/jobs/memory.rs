//! The memory budget: work whose memory grows with the image (decompositions, cutouts,
//! exports of layered documents) claims bytes sized from its pixel count before it starts and
//! gives them back when it ends. A claim that does not fit waits until enough is given
//! back, so two camera-size jobs queue behind each other instead of exhausting the box; a
//! claim larger than the whole budget is cut to the budget (it runs, alone).
//!
//! One budget serves the process ([`budget`]): `jobs.memory_budget_mb`, or, at 0 (the
//! default), half of the machine's memory as the cgroup or `/proc/meminfo` states it. The
//! estimates ([`decompose_bytes`] and the others) are measured peaks over the models' own
//! memory, which the inference concurrency bounds (see the README's camera-size table).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// Bytes shared out among claims.
#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Bytes held from a budget; given back on drop.
#[derive(Debug)]
pub struct Claim {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl MemoryBudget {
    pub fn new(total: u64) -> Arc<Self> {
        Arc::new(MemoryBudget {
            total: total.max(1),
            used: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes claimed now.
    pub fn in_use(&self) -> u64 {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `bytes` (at most the whole budget) fit, then holds them. Every
    /// quarter-second of waiting `keep_waiting` is asked whether the claim is still wanted
    /// (a cancelled job's is not); `None` when it is not.
    pub fn claim(
        self: &Arc<Self>,
        bytes: u64,
        keep_waiting: &mut dyn FnMut() -> bool,
    ) -> Option<Claim> {
        let bytes = bytes.min(self.total);
        let mut used = self.lock();
        let mut logged = false;
        while *used + bytes > self.total {
            if !logged {
                tracing::info!(
                    claim_mib = bytes / MIB,
                    in_use_mib = *used / MIB,
                    budget_mib = self.total / MIB,
                    "waiting for memory"
                );
                logged = true;
            }
            used = self
                .freed
                .wait_timeout(used, Duration::from_millis(250))
                .unwrap_or_else(|p| p.into_inner())
                .0;
            if *used + bytes > self.total && !keep_waiting() {
                return None;
            }
        }
        *used += bytes;
        Some(Claim {
            budget: self.clone(),
            bytes,
        })
    }
}

impl Claim {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut used = self.budget.lock();
        *used = used.saturating_sub(self.bytes);
        self.budget.freed.notify_all();
    }
}

static BUDGET: OnceLock<Arc<MemoryBudget>> = OnceLock::new();

/// Sets the process's budget from `jobs.memory_budget_mb` (0 = half the machine's memory).
/// The first call wins (a process runs one studio); returns the budget in effect.
pub fn configure(memory_budget_mb: u64) -> Arc<MemoryBudget> {
    BUDGET
        .get_or_init(|| {
            let total = match memory_budget_mb {
                0 => machine_memory() / 2,
                mb => mb * MIB,
            };
            tracing::info!(budget_mib = total / MIB, "memory budget for image work");
            MemoryBudget::new(total)
        })
        .clone()
}

/// The process's budget (half the machine's memory when nothing configured it).
pub fn budget() -> Arc<MemoryBudget> {
    configure(0)
}

/// The machine's memory as this process may use it: the cgroup's limit when it sets one,
/// else `MemTotal`; 4 GiB when neither can be read.
pub fn machine_memory() -> u64 {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| parse_mem_total(&s));
    match (cgroup, total) {
        (Some(c), Some(t)) => c.min(t),
        (Some(c), None) => c,
        (None, Some(t)) => t,
        (None, None) => 4 << 30,
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What a decomposition of `pixels` claims: the working copy and the analysis (fixed), then
/// at full size the image, the background, the hole, the fill's pyramid and field, the
/// layers being solved and their PNGs.
pub fn decompose_bytes(pixels: u64) -> u64 {
    256 * MIB + 40 * pixels
}

/// What a cutout of `pixels` claims: the image, the matte scaled up, the RGBA result and
/// its PNG.
pub fn cutout_bytes(pixels: u64) -> u64 {
    64 * MIB + 16 * pixels
}

/// What reading and exporting a document of `layers` layers of `pixels` claims: every layer
/// decoded at once, the composite and the encoded file.
pub fn document_bytes(pixels: u64, layers: u64) -> u64 {
    64 * MIB + 4 * pixels * (layers + 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn claims_that_do_not_fit_wait_for_others_to_end() {
        let budget = MemoryBudget::new(100);
        let first = budget.claim(70, &mut || true).unwrap();
        assert_eq!(budget.in_use(), 70);
        let started = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (budget, started) = (budget.clone(), started.clone());
            std::thread::spawn(move || {
                let claim = budget.claim(50, &mut || true).unwrap();
                started.store(true, Ordering::SeqCst);
                claim.bytes()
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !started.load(Ordering::SeqCst),
            "50 more do not fit beside 70"
        );
        drop(first);
        assert_eq!(waiter.join().unwrap(), 50);
        assert_eq!(budget.in_use(), 0, "given back on drop");
    }

    #[test]
    fn a_claim_larger_than_the_budget_runs_alone_and_a_cancelled_one_gives_up() {
        let budget = MemoryBudget::new(100);
        let huge = budget.claim(1_000, &mut || true).unwrap();
        assert_eq!(huge.bytes(), 100);
        let mut asked = 0;
        let gave_up = budget.claim(1, &mut || {
            asked += 1;
            asked < 2
        });
        assert!(gave_up.is_none());
        assert_eq!(budget.in_use(), 100);
    }

    #[test]
    fn mem_total_is_read_in_bytes() {
        let meminfo = "MemTotal:       24683784 kB\nMemFree:        17813500 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(24_683_784 * 1024));
        assert_eq!(parse_mem_total("garbage"), None);
        assert!(machine_memory() > 0);
    }

    #[test]
    fn a_camera_size_decomposition_claims_more_than_a_small_one() {
        let (small, big) = (decompose_bytes(1 << 20), decompose_bytes(24_000_000));
        assert!(big > 3 * small && big < 2 << 30, "{small} {big}");
        assert!(cutout_bytes(24_000_000) < big);
        assert!(document_bytes(1 << 20, 5) < document_bytes(1 << 20, 10));
    }
}
