//! image-layered: a self-hostable AI image-layering studio in one binary.
//!
//! Map of the crate (one responsibility per module; dependencies point down this list's
//! services to the pure code, never from a service to `http`):
//! - [`cli`]: the command line of API.md as functions (`serve`, `accounts`, `offline`,
//!   `models`); `main.rs` only parses and dispatches.
//! - [`config`]: one typed configuration, defaults < file < env < flags.
//! - [`admin`]: member administration, usage statistics (never a small group), the audit log.
//! - [`app`]: builds the services from a config and a clock; runs the workers and scheduler.
//! - [`http`]: hyper server, TLS, route table, handlers, metrics; serves an [`app::App`].
//! - [`error`]: the one table from every service's error to `{code, message}` and a status.
//! - [`auth`]: members, passwords, sessions, API keys, the first admin.
//! - [`audit`]: the append-only, hash-chained audit log and its verifier.
//! - [`billing`]: plans and credits — job costs, limits, the ledger's grants and adjustments.
//! - [`images`]: uploads as a service; the thumbnail and cutout jobs.
//! - [`documents`]: layered documents — decompose jobs, import, editing with history, export.
//! - [`privacy`]: members' rights: consents, training export, account deletion, inactivity,
//!   policy versions and the `/privacy` page.
//! - [`retention`]: the TTL sweep and its cron schedule.
//! - [`backup`]: consistent, still-encrypted backups of a data dir (while serving) and restore.
//! - [`jobs`]: the persisted queue and its workers.
//! - [`mail`]: the outbox — notices from minijinja templates, delivered by SMTP or spooled.
//! - [`vault`]: what images and documents share — store, blobs, keyring, data keys.
//! - [`views`]: the JSON a member sees of their records (the API and the data export).
//! - [`store`]: sled behind typed methods — metadata, indexes, TTL index, jobs.
//! - [`blobs`]: encrypted files (AES-256-GCM STREAM), master key generations, data keys.
//! - [`models`]: pinned fetch (pip/npm), verification and install of the runtime and models.
//! - [`inference`]: the only code that touches `ort`: runtime, execution providers, sessions,
//!   ISNet segmentation and PP-OCRv4 text detection/recognition with their pre/post-processing.
//! - [`engine`]: pure image code — decoding with limits, EXIF, thumbnails, decomposition
//!   (peel and palette), inpainting, layer edits, PSD/OpenRaster/ZIP export and import.
//! - [`eval`]: scores decompositions against ground-truth layers exactly as `score.py` does.
//! - [`clock`]: the injectable clock behind every time decision, and RFC 3339 rendering.
//! - [`ids`]: typed UUIDv7 identifiers.

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod billing;
pub mod blobs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod documents;
pub mod engine;
pub mod error;
pub mod eval;
pub mod http;
pub mod ids;
pub mod images;
pub mod inference;
pub mod jobs;
pub mod mail;
pub mod models;
pub mod privacy;
pub mod retention;
pub mod store;
pub mod vault;
pub mod views;
