//! Integration tests of the real `image-layered` binary: crash safety under SIGKILL (single
//! scenarios, and the kill -9 programme of random cycles with an invariant checker), graceful
//! SIGTERM, a loopback load test, the store lock, master keys, the retention sweep, account
//! commands, configuration printing, TLS, upgrades, backup and restore, and the Debian
//! package. Every test has its own temporary data dir and port; helpers live in `support`
//! and, shared with the API suite, `common`.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod audit;
mod backup;
mod chaos;
mod config;
mod console;
mod crash;
mod deb;
mod decompose;
mod inpaint;
mod keys;
mod load;
mod memory;
mod models;
mod openapi;
mod outbox;
mod store_lock;
mod studio;
mod sweep;
mod systemd;
mod tls;
mod training;
mod upgrade;
mod users;
