//! The regression corpus: every file under `tests/fixtures/fuzz/<target>/` (README files
//! aside) is fed to its target on every run, under the same memory and time bounds as a fuzz
//! case. A crash found by fuzzing is fixed in `src/` and its input lands here, so it stays
//! fixed; see `tests/fixtures/fuzz/README.md`.

use std::time::Duration;

use crate::alloc::serial;
use crate::harness::{check_bounded, time_scale};
use crate::seeds::{files_with, fixture};
use crate::targets;

#[test]
fn every_regression_input_still_passes_its_target() {
    let _serial = serial();
    let slow = Duration::from_secs(5).mul_f64(time_scale());
    let mut replayed = 0;
    let mut failures = Vec::new();
    for target in crate::all_targets() {
        let dir = fixture("fuzz").join(target.name);
        // Building the seeds sets up what the check needs (keys, the app), outside the
        // measurement: that one-time cost is not the input's.
        let _ = (target.seeds)();
        for path in files_with(&dir, &[""]) {
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("README"))
            {
                continue;
            }
            let input = std::fs::read(&path).expect("read a regression input");
            if let Err(e) = check_bounded(target.name, target.check, &input, target.max_peak, slow)
            {
                failures.push(format!("{}: {e}", path.display()));
            }
            replayed += 1;
        }
    }
    println!("replayed {replayed} regression inputs");
    assert!(
        replayed >= 2,
        "the regression corpus is empty: {}",
        fixture("fuzz").display()
    );
    assert!(
        failures.is_empty(),
        "regressions:\n  {}",
        failures.join("\n  ")
    );
    let _ = targets::DECODE_LIMITS;
}
