//! The kill -9 programme: cycles of a mixed load (uploads, palette decompositions, layer ops,
//! undo and redo, deletes) against the real binary, each ended by a SIGKILL after a random
//! delay; then, with the server down, a look at the data dir (no record points at a missing
//! blob file), a restart on the same data dir, and the invariant checker (the restart's
//! reconciler removed every orphan and temp file; acknowledged uploads, revisions, undo
//! states and deletes all hold; jobs settle). After the last cycle the full undo history is
//! walked, the server stops cleanly and the blob files must be exactly those the records
//! name. Palette decomposition needs no models, so this runs everywhere.
//!
//! `IMAGE_LAYERED_CHAOS_CYCLES` (default 20; 200 for a manual run) and
//! `IMAGE_LAYERED_CHAOS_SEED` (printed at the start) replay a run's choices: the actions of
//! each client and the kill delays; thread timing still varies.

mod check;
mod disk;
mod ledger;
mod planted;
mod workers;

use std::time::{Duration, Instant};

use crate::support::*;
use ledger::{Ledger, MAX_UNDO};
use workers::Worker;

/// Concurrent clients of the load.
const WORKERS: usize = 3;
/// Undo steps checked per document after each restart (the full history at the end).
const CYCLE_DEPTH: usize = 8;
/// The kill lands this long (uniformly, in ms) after the load starts.
const KILL_AFTER_MS: (u64, u64) = (50, 1500);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?}: {e}"))
    })
}

fn fail(seed: u64, cycle: u64, what: &str, v: &[String], server: &Server) -> ! {
    panic!(
        "chaos seed {seed}, cycle {cycle}: {what}:\n  {}\nserver log tail:\n{}",
        v.join("\n  "),
        server.log_tail(30)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_programme_keeps_every_acknowledged_state() {
    let cycles = env_u64("IMAGE_LAYERED_CHAOS_CYCLES").unwrap_or(20);
    let seed = env_u64("IMAGE_LAYERED_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64
    });
    eprintln!(
        "chaos: seed {seed}, {cycles} cycles (replay with IMAGE_LAYERED_CHAOS_SEED={seed} \
         IMAGE_LAYERED_CHAOS_CYCLES={cycles})"
    );
    let started = Instant::now();
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let mut rng = Rng::new(seed);
    let mut ledger = Ledger::default();
    let (mut orphans, mut temps, mut running, mut strays) = (0, 0, 0, 0);
    for cycle in 0..cycles {
        let mut tasks = Vec::new();
        for (n, share) in ledger.split(WORKERS).into_iter().enumerate() {
            let w = Worker {
                c: server.with_key(&key),
                rng: Rng::new(rng.next_u64()),
                share,
                tag: format!("c{cycle}w{n}"),
            };
            tasks.push(tokio::spawn(w.run(100_000)));
        }
        let delay = KILL_AFTER_MS.0 + rng.below(KILL_AFTER_MS.1 - KILL_AFTER_MS.0);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill();
        for t in tasks {
            ledger.merge(t.await.expect("worker"));
        }
        let surprises = std::mem::take(&mut ledger.surprises);
        if !surprises.is_empty() {
            fail(
                seed,
                cycle,
                "answers no correct server gives",
                &surprises,
                &server,
            );
        }

        // the server is down: records vs files on disk
        let disk = disk::inspect(&env.data, &env.blobs());
        if !disk.violations.is_empty() {
            fail(
                seed,
                cycle,
                "the data dir after the kill",
                &disk.violations,
                &server,
            );
        }
        orphans += disk.orphans.len();
        temps += disk.temps.len();
        running += disk.jobs.get("running").copied().unwrap_or(0);

        server = server.restart(&env).await;
        let mut v = Vec::new();
        for p in disk.orphans.iter().chain(&disk.temps) {
            if p.exists() {
                v.push(format!("the restart kept {}", p.display()));
            }
        }
        for d in &disk.stray_docs {
            let (s, _) = server
                .with_key(&key)
                .json(&format!("/api/v1/documents/{d}"))
                .await;
            if s != reqwest::StatusCode::NOT_FOUND {
                v.push(format!(
                    "document {d}, whose image is gone, is still there: {s}"
                ));
            }
        }
        strays += disk.stray_docs.len();
        if server.stderr().contains("points at a missing blob file") {
            v.push("the reconciler reported a missing blob file".into());
        }
        v.extend(check::check_server(&server.with_key(&key), &mut ledger, CYCLE_DEPTH).await);
        if !v.is_empty() {
            fail(seed, cycle, "invariants after the restart", &v, &server);
        }
    }

    // the whole undo history, a clean stop, and exactly the files the records name
    let v = check::check_server(&server.with_key(&key), &mut ledger, MAX_UNDO).await;
    if !v.is_empty() {
        fail(seed, cycles, "invariants at the end", &v, &server);
    }
    server.stop().await;
    let disk = disk::inspect_settled(&env.data, &env.blobs());
    if !disk.violations.is_empty() {
        fail(
            seed,
            cycles,
            "the data dir after a clean stop",
            &disk.violations,
            &server,
        );
    }
    eprintln!(
        "chaos: seed {seed}: {cycles} kills in {:.1?}; acknowledged {:?}; at the kills {orphans} \
         orphan and {temps} temp files and {strays} documents without their image (all removed \
         by the restarts), {running} jobs running (all settled); at the end {} images, {} documents, {} blob files, jobs {:?}",
        started.elapsed(),
        ledger.acked,
        ledger.images.len(),
        ledger.docs.len(),
        disk.blobs,
        disk.jobs
    );
}
