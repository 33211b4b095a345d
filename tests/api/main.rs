//! In-process integration tests: the real app (real sled store, real encrypted files, real
//! HTTP on port 0) with a manual clock.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod admin;
mod auth;
mod consents;
mod console;
mod credits;
mod cutout;
mod deletion;
mod documents;
mod downloads;
mod edits;
mod export;
mod idempotency;
mod payments;
mod policy;
mod profile;
mod retention;
mod sealing;
mod signup;
mod support;
mod uploads;
