//! Fuzzing and bomb programmes (issue 12): property-based fuzzing on stable Rust of every
//! reader of hostile input — image decoders, PSD and ORA readers, the blob decryptor, sealed
//! fields, API-key and credential-header parsing, the upload (multipart) reader — by mutation
//! of a seed corpus of real and generated files; the replay of the checked-in regression
//! corpus (`tests/fixtures/fuzz/`); and the bomb corpus, each refused quickly within bounded
//! memory. A counting global allocator measures the peak memory of every case.
//!
//! CI runs a fixed number of cases per target with a fixed seed; for a longer manual run set
//! `IMAGE_LAYERED_FUZZ_CASES` (cases per target, e.g. 100000) and `IMAGE_LAYERED_FUZZ_SEED`
//! (any u64, printed on failure) — see `tests/fixtures/fuzz/README.md`. Every test of this
//! binary takes one lock (`alloc::serial`), so they run one at a time and measure cleanly.

mod alloc;
mod app;
mod bombs;
mod forge;
mod harness;
mod replay;
mod seeds;
mod targets;

use harness::{fuzz, Target};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// Every fuzz target, in a fixed order.
pub fn all_targets() -> Vec<Target> {
    vec![
        targets::decode_target(),
        targets::psd_target(),
        targets::ora_target(),
        targets::blob_target(),
        targets::seal_target(),
        targets::api_key_target(),
        app::auth_header_target(),
        app::multipart_target(),
    ]
}

#[test]
fn fuzz_image_decoders() {
    fuzz(&targets::decode_target());
}

#[test]
fn fuzz_psd_reader() {
    fuzz(&targets::psd_target());
}

#[test]
fn fuzz_ora_reader() {
    fuzz(&targets::ora_target());
}

#[test]
fn fuzz_blob_decryptor() {
    fuzz(&targets::blob_target());
}

#[test]
fn fuzz_sealed_fields() {
    fuzz(&targets::seal_target());
}

#[test]
fn fuzz_api_key_parsing() {
    fuzz(&targets::api_key_target());
}

#[test]
fn fuzz_credential_headers() {
    fuzz(&app::auth_header_target());
}

#[test]
fn fuzz_upload_reader() {
    fuzz(&app::multipart_target());
}
