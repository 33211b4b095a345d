//! The fuzzing engine: proptest drives `arbitrary`-style mutations of a target's seed corpus
//! (bit flips, byte and integer overwrites, truncation, chunk duplication and removal, splices
//! of two seeds, inserted or wholly random bytes) and checks the target's property on each
//! result, with a memory bound, a time bound and a watchdog against hangs.
//!
//! Invariants: runs are reproducible — the RNG is seeded from `IMAGE_LAYERED_FUZZ_SEED`
//! (default [`DEFAULT_SEED`]) and the target's name, and the seed is printed with every
//! failure; a failing input is shrunk by proptest, written under
//! `$CARGO_TARGET_TMPDIR/fuzz-failures/<target>/` and named in the panic message, ready to be
//! copied into `tests/fixtures/fuzz/<target>/`. Cases run under [`serial`], so the peak
//! allocation of a case is the target's alone.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use sha2::{Digest, Sha256};

use crate::alloc::{measure, mib, serial};

/// The CI seed; override with `IMAGE_LAYERED_FUZZ_SEED=<u64>`.
pub const DEFAULT_SEED: u64 = 0x1A7E_12ED_F022_2026;
/// A case running this long is a hang: its input is saved and the process aborts.
const WATCHDOG: Duration = Duration::from_secs(60);

/// A property checked on arbitrary bytes: `Ok` names the outcome (`ok`, or the reader's
/// error code) for the run's summary, `Err` says how the property was violated.
pub type Check = fn(&[u8]) -> Result<String, String>;

/// One fuzz target.
pub struct Target {
    /// Also the directory of its regression corpus, `tests/fixtures/fuzz/<name>/`.
    pub name: &'static str,
    /// Seeds to mutate: real files and small generated ones.
    pub seeds: fn() -> Vec<Vec<u8>>,
    pub check: Check,
    /// Cases per run in CI (`IMAGE_LAYERED_FUZZ_CASES` overrides every target's).
    pub cases: u32,
    /// Most bytes one case may allocate at its peak.
    pub max_peak: usize,
}

/// One edit of the input.
#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    /// An "interesting" integer (0, -1, 0x7FFF…, powers of two) or any, 1/2/4 bytes wide.
    SetInt(Index, u32, u8, bool),
    Truncate(Index),
    Duplicate(Index, u16, Index),
    Remove(Index, u16),
    /// Our bytes up to the first index, another seed's from the third index on.
    Splice(Index, Index, Index),
    Insert(Index, Vec<u8>),
}

/// One generated input: a seed (or random bytes behind a few of its leading bytes) and the
/// mutations applied to it in order.
#[derive(Debug, Clone)]
pub struct Case {
    seed: Index,
    random: Option<(u8, Vec<u8>)>,
    mutations: Vec<Mutation>,
}

fn interesting() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000, 0x7FFF_FFFF,
            0x8000_0000, 0xFFFF_FFFF, 30_000, 30_001, 65_535, 100_000,
        ]),
        1 => any::<u32>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<Index>;
    prop_oneof![
        4 => (idx(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        3 => (idx(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        3 => (idx(), interesting(), prop::sample::select(vec![1u8, 2, 4]), any::<bool>())
            .prop_map(|(i, v, w, be)| Mutation::SetInt(i, v, w, be)),
        1 => idx().prop_map(Mutation::Truncate),
        1 => (idx(), 1u16..512, idx()).prop_map(|(f, n, t)| Mutation::Duplicate(f, n, t)),
        1 => (idx(), 1u16..512).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (idx(), idx(), idx()).prop_map(|(o, a, f)| Mutation::Splice(o, a, f)),
        1 => (idx(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let random = prop_oneof![
        15 => Just(None),
        1 => (0u8..40, prop::collection::vec(any::<u8>(), 0..600)).prop_map(Some),
    ];
    (
        any::<Index>(),
        random,
        prop::collection::vec(mutation(), 0..6),
    )
        .prop_map(|(seed, random, mutations)| Case {
            seed,
            random,
            mutations,
        })
}

impl Case {
    /// The bytes this case stands for.
    pub fn apply(&self, seeds: &[Vec<u8>]) -> Vec<u8> {
        let base = &seeds[self.seed.index(seeds.len())];
        let mut b = match &self.random {
            Some((keep, rest)) => {
                let mut b = base[..base.len().min(*keep as usize)].to_vec();
                b.extend_from_slice(rest);
                b
            }
            None => base.clone(),
        };
        for m in &self.mutations {
            apply(m, &mut b, seeds);
        }
        b
    }
}

fn apply(m: &Mutation, b: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match m {
        Mutation::FlipBit(i, bit) if !b.is_empty() => {
            let p = at(i, b.len());
            b[p] ^= 1 << bit;
        }
        Mutation::SetByte(i, v) if !b.is_empty() => {
            let p = at(i, b.len());
            b[p] = *v;
        }
        Mutation::SetInt(i, v, width, be) if !b.is_empty() => {
            let w = *width as usize;
            let bytes = if *be {
                v.to_be_bytes()[4 - w..].to_vec()
            } else {
                v.to_le_bytes()[..w].to_vec()
            };
            let p = at(i, b.len());
            let end = (p + w).min(b.len());
            b[p..end].copy_from_slice(&bytes[..end - p]);
        }
        Mutation::Truncate(i) => {
            let p = at(i, b.len() + 1);
            b.truncate(p);
        }
        Mutation::Duplicate(from, n, to) if !b.is_empty() => {
            let f = at(from, b.len());
            let chunk = b[f..(f + *n as usize).min(b.len())].to_vec();
            let t = at(to, b.len() + 1);
            b.splice(t..t, chunk);
        }
        Mutation::Remove(i, n) if !b.is_empty() => {
            let p = at(i, b.len());
            let end = (p + *n as usize).min(b.len());
            b.drain(p..end);
        }
        Mutation::Splice(other, a, from) => {
            let o = &seeds[other.index(seeds.len())];
            let p = at(a, b.len() + 1);
            let f = at(from, o.len() + 1);
            b.truncate(p);
            b.extend_from_slice(&o[f..]);
        }
        Mutation::Insert(i, bytes) => {
            let p = at(i, b.len() + 1);
            b.splice(p..p, bytes.iter().copied());
        }
        _ => {}
    }
}

/// `IMAGE_LAYERED_FUZZ_SEED`, or the CI seed.
pub fn base_seed() -> u64 {
    match std::env::var("IMAGE_LAYERED_FUZZ_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("IMAGE_LAYERED_FUZZ_SEED={v:?} is not a u64")),
        Err(_) => DEFAULT_SEED,
    }
}

/// `IMAGE_LAYERED_FUZZ_CASES`, or the target's CI count.
fn cases_for(target: &Target) -> u32 {
    match std::env::var("IMAGE_LAYERED_FUZZ_CASES") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("IMAGE_LAYERED_FUZZ_CASES={v:?} is not a number")),
        Err(_) => target.cases,
    }
}

/// `IMAGE_LAYERED_FUZZ_TIME_SCALE` (default 1): multiplies every time limit, for slow or
/// loaded machines and sanitizer builds.
pub fn time_scale() -> f64 {
    std::env::var("IMAGE_LAYERED_FUZZ_TIME_SCALE")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0)
}

/// The case in flight, for the watchdog: target, start, input.
type InFlight = Option<(&'static str, Instant, Vec<u8>)>;

fn in_flight() -> &'static Mutex<InFlight> {
    static CELL: OnceLock<Mutex<InFlight>> = OnceLock::new();
    CELL.get_or_init(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(500));
            let guard = in_flight().lock().unwrap_or_else(|e| e.into_inner());
            if let Some((name, start, input)) = guard.as_ref() {
                if start.elapsed() > WATCHDOG.mul_f64(time_scale()) {
                    let path = save_failure(name, input);
                    eprintln!(
                        "fuzz {name}: one case has run for {:?}: a hang; input saved to {} \
                         (IMAGE_LAYERED_FUZZ_SEED={})",
                        start.elapsed(),
                        path.display(),
                        base_seed()
                    );
                    std::process::abort();
                }
            }
        });
        Mutex::new(None)
    })
}

/// The watchdog's view of the case in flight, cleared when the case ends, even by a panic.
struct Armed;

impl Armed {
    fn new(name: &'static str, input: &[u8]) -> Self {
        *in_flight().lock().unwrap_or_else(|e| e.into_inner()) =
            Some((name, Instant::now(), input.to_vec()));
        Armed
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        *in_flight().lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Writes a failing input where a developer can pick it up; returns its path.
pub fn save_failure(target: &str, input: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("fuzz-failures")
        .join(target);
    let _ = std::fs::create_dir_all(&dir);
    let name = hex::encode(&Sha256::digest(input)[..8]);
    let path = dir.join(format!("{name}.bin"));
    let _ = std::fs::write(&path, input);
    path
}

/// Runs `check` on `input` under the memory and time bounds: the property plus "no more
/// than `max_peak` bytes at once" and "no slower than `slow`".
pub fn check_bounded(
    name: &'static str,
    check: Check,
    input: &[u8],
    max_peak: usize,
    slow: Duration,
) -> Result<(String, Duration, usize), String> {
    let _armed = Armed::new(name, input);
    let start = Instant::now();
    let (verdict, peak) = measure(|| check(input));
    let took = start.elapsed();
    drop(_armed);
    let outcome = verdict?;
    if peak > max_peak {
        return Err(format!(
            "one case allocated {} at its peak, over the {} bound",
            mib(peak),
            mib(max_peak)
        ));
    }
    if took > slow {
        return Err(format!("one case took {took:?}, over {slow:?}"));
    }
    Ok((outcome, took, peak))
}

/// Fuzzes `target` for its number of cases; panics with the seed, the reason and the path of
/// the shrunk input on the first violation.
pub fn fuzz(target: &Target) {
    // The lock first: building seeds allocates, and must not pollute another test's peak.
    let _serial = serial();
    let seeds = (target.seeds)();
    assert!(!seeds.is_empty(), "{}: no seeds", target.name);
    let cases = cases_for(target);
    let seed = base_seed();
    let mut key = Sha256::new();
    key.update(seed.to_le_bytes());
    key.update(target.name.as_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key.finalize());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let slow = Duration::from_secs(5).mul_f64(time_scale());
    let stats = Mutex::new((Duration::ZERO, 0usize, BTreeMap::<String, u32>::new()));
    let started = Instant::now();
    let result = runner.run(&case(), |c| {
        let input = c.apply(&seeds);
        let (outcome, took, peak) =
            check_bounded(target.name, target.check, &input, target.max_peak, slow)
                .map_err(TestCaseError::fail)?;
        let mut s = stats.lock().unwrap();
        s.0 = s.0.max(took);
        s.1 = s.1.max(peak);
        *s.2.entry(outcome).or_default() += 1;
        Ok(())
    });
    let (slowest, peak, outcomes) = std::mem::take(&mut *stats.lock().unwrap());
    let mut outcomes: Vec<_> = outcomes.into_iter().collect();
    outcomes.sort_by_key(|o| std::cmp::Reverse(o.1));
    let outcomes: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
    match result {
        Ok(()) => println!(
            "fuzz {}: {cases} cases from {} seeds in {:.1?} (slowest {slowest:.1?}, peak {}), \
             IMAGE_LAYERED_FUZZ_SEED={seed}\n  outcomes: {}",
            target.name,
            seeds.len(),
            started.elapsed(),
            mib(peak),
            outcomes.join(", ")
        ),
        Err(TestError::Fail(reason, c)) => {
            let path = save_failure(target.name, &c.apply(&seeds));
            panic!(
                "fuzz {}: {reason}\n  minimal input saved to {}\n  reproduce with \
                 IMAGE_LAYERED_FUZZ_SEED={seed}; add the file to tests/fixtures/fuzz/{}/ once \
                 fixed",
                target.name,
                path.display(),
                target.name
            );
        }
        Err(TestError::Abort(reason)) => {
            panic!(
                "fuzz {}: aborted: {reason} (IMAGE_LAYERED_FUZZ_SEED={seed})",
                target.name
            )
        }
    }
}
