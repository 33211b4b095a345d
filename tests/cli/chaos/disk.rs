//! The chaos programme's look at the data dir while no server runs: the sled store opened
//! through the library (read only in effect: it is the same recovery the next `serve` does)
//! and the blob files on disk. Right after a SIGKILL every blob a record refers to (images,
//! every state of every document, exports) must exist, under its owner's directory — a
//! record pointing at a missing file is a violation — while extra files are allowed: a put
//! that finished before its metadata commit, an unlink not yet done, a temp file; so is a
//! document whose image is gone (an image delete cut half-way). The checker then requires
//! the restarted server's reconciler to have removed those. After a
//! clean stop with every job settled the two sets must be equal, with no temp file and no
//! job left queued or running on a missing image.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use image_layered::store::{JobKind, JobState, Store};

use crate::support::*;

/// `(owner, blob)` as the blob store names them: 32 hex digits each.
type BlobKey = (String, String);

/// What a look at a stopped server's data dir found.
#[derive(Debug, Default)]
pub struct DiskState {
    /// Blob files no record refers to.
    pub orphans: Vec<PathBuf>,
    /// Half-written puts.
    pub temps: Vec<PathBuf>,
    /// Jobs by state name.
    pub jobs: BTreeMap<&'static str, usize>,
    pub blobs: usize,
    /// Documents whose image is gone.
    pub stray_docs: Vec<String>,
    /// The states of jobs whose image is gone.
    pub jobs_on_missing_images: Vec<JobState>,
    /// Records whose file is missing, records that cannot be read: violations.
    pub violations: Vec<String>,
}

fn simple(id: impl std::fmt::Display) -> String {
    simple_id(&id.to_string())
}

fn image_of(kind: &JobKind) -> Option<String> {
    match kind {
        JobKind::Thumbnail { image_id }
        | JobKind::Cutout { image_id }
        | JobKind::Decompose { image_id, .. } => Some(image_id.to_string()),
        _ => None,
    }
}

/// Reads the store and the blob directory of the stopped server at `data`.
pub fn inspect(data: &Path, blob_root: &Path) -> DiskState {
    let mut out = DiskState::default();
    let store = Store::open(
        &data.join("db"),
        &image_layered::config::StoreConfig::default(),
    )
    .expect("open the store of the stopped server");
    let mut known: BTreeSet<BlobKey> = BTreeSet::new();
    let (images, bad_images) = store.readable_images().expect("read images");
    let image_ids: BTreeSet<String> = images.iter().map(|i| i.id.to_string()).collect();
    for img in &images {
        known.extend(img.blobs().map(|b| (simple(img.owner), simple(b))));
    }
    let (docs, bad_docs) = store.readable_documents().expect("read documents");
    for doc in &docs {
        known.extend(doc.blobs().map(|b| (simple(doc.owner), simple(b))));
        if !image_ids.contains(&doc.image_id.to_string()) {
            // an image delete cut half-way: the restart's reconciler must remove it
            out.stray_docs.push(doc.id.to_string());
        }
    }
    let (exports, bad_exports) = store.readable_exports().expect("read exports");
    for e in &exports {
        known.insert((simple(e.owner), simple(e.blob)));
    }
    if bad_images + bad_docs + bad_exports > 0 {
        out.violations.push(format!(
            "unreadable records: {bad_images} images, {bad_docs} documents, {bad_exports} exports"
        ));
    }
    for job in store.all_jobs().expect("read jobs") {
        *out.jobs.entry(job.state.as_str()).or_default() += 1;
        // a delete removes its image's finished jobs; one unfinished then ends (fails) later
        // and its record stays until it expires: counted, checked final after settling
        if image_of(&job.kind).is_some_and(|i| !image_ids.contains(&i)) {
            out.jobs_on_missing_images.push(job.state);
        }
    }
    drop(store);

    let mut on_disk: BTreeMap<BlobKey, PathBuf> = BTreeMap::new();
    for p in files_under(blob_root) {
        let name = file_name(&p);
        if name.contains(".tmp") {
            out.temps.push(p);
            continue;
        }
        let owner = p.parent().map(file_name).unwrap_or_default();
        match name.strip_suffix(".blob") {
            Some(blob) => {
                on_disk.insert((owner, blob.to_string()), p);
            }
            None => out.violations.push(format!(
                "a file the blob store never writes: {}",
                p.display()
            )),
        }
    }
    out.blobs = on_disk.len();
    for k in known.iter().filter(|k| !on_disk.contains_key(*k)) {
        out.violations.push(format!(
            "a record points at a missing blob file: owner {} blob {}",
            k.0, k.1
        ));
    }
    out.orphans = on_disk
        .iter()
        .filter(|(k, _)| !known.contains(*k))
        .map(|(_, p)| p.clone())
        .collect();
    out
}

/// The look after a clean stop: `inspect`, and nothing extra may be there.
pub fn inspect_settled(data: &Path, blob_root: &Path) -> DiskState {
    let mut s = inspect(data, blob_root);
    if !s.orphans.is_empty() {
        s.violations.push(format!(
            "orphan blob files after a clean stop: {:?}",
            s.orphans
        ));
    }
    if !s.temps.is_empty() {
        s.violations
            .push(format!("temp files after a clean stop: {:?}", s.temps));
    }
    if !s.stray_docs.is_empty() {
        s.violations.push(format!(
            "documents outlive their images after a clean stop: {:?}",
            s.stray_docs
        ));
    }
    if s.jobs_on_missing_images.iter().any(|j| !j.is_final()) {
        s.violations.push(format!(
            "jobs on deleted images not ended: {:?}",
            s.jobs_on_missing_images
        ));
    }
    for state in ["queued", "running"] {
        if let Some(n) = s.jobs.get(state) {
            s.violations
                .push(format!("{n} jobs still {state} after everything settled"));
        }
    }
    s
}
