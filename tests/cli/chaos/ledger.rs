//! What the chaos programme's clients were told: every acknowledged upload (with its bytes),
//! delete, decompose job and document state, and the one request of each client that was in
//! flight when the server died (which may or may not have landed). The checker compares the
//! restarted server against it. A document is modelled as its current state plus its undo
//! and redo stacks, exactly as the server keeps them (`MAX_UNDO` deep), so the checker can
//! walk the undo history and name the state each step must restore.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The server's undo depth (`image_layered::documents::edit::MAX_UNDO`).
pub const MAX_UNDO: usize = image_layered::documents::edit::MAX_UNDO;

/// A document state as a client sees it: the layers' JSON (ids, names, order, visibility,
/// opacity, boxes) and, once fetched, the sha256 of each layer's PNG.
#[derive(Clone, Debug, PartialEq)]
pub struct Fp {
    pub layers: Value,
    pub pixels: Option<Vec<String>>,
}

impl Fp {
    pub fn of(doc: &Value) -> Self {
        Fp {
            layers: doc["layers"].clone(),
            pixels: None,
        }
    }
}

/// One history-changing request on a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Op,
    Undo,
    Redo,
}

/// A document's acknowledged history.
#[derive(Clone, Debug)]
pub struct DocModel {
    pub image: String,
    /// The last acknowledged revision.
    pub revision: u64,
    pub current: Fp,
    /// Oldest first, like the server's.
    pub undo: Vec<Fp>,
    /// The most recently undone last.
    pub redo: Vec<Fp>,
    /// A step sent but not acknowledged when the server died.
    pub in_flight: Option<Step>,
}

impl DocModel {
    pub fn fresh(image: &str, doc: &Value) -> Self {
        DocModel {
            image: image.to_string(),
            revision: doc["revision"].as_u64().expect("revision"),
            current: Fp::of(doc),
            undo: Vec::new(),
            redo: Vec::new(),
            in_flight: None,
        }
    }

    /// Records a step that landed at `revision`; `after` is the new state for an op (undo
    /// and redo restore a known one).
    pub fn apply(&mut self, step: Step, revision: u64, after: Option<Fp>) {
        match step {
            Step::Op => {
                let before =
                    std::mem::replace(&mut self.current, after.expect("an op's new state"));
                self.undo.push(before);
                if self.undo.len() > MAX_UNDO {
                    self.undo.remove(0);
                }
                self.redo.clear();
            }
            Step::Undo => {
                let back = self.undo.pop().expect("an undo state");
                self.redo.push(std::mem::replace(&mut self.current, back));
            }
            Step::Redo => {
                let fwd = self.redo.pop().expect("a redo state");
                self.undo.push(std::mem::replace(&mut self.current, fwd));
            }
        }
        self.revision = revision;
        self.in_flight = None;
    }
}

/// An acknowledged upload.
#[derive(Clone, Debug)]
pub struct AckedImage {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// An acknowledged job (`201` upload's thumbnail job, `202` decompose).
#[derive(Clone, Debug)]
pub struct AckedJob {
    pub image: String,
    pub kind: &'static str,
    /// A decompose job whose document has been adopted (or which failed).
    pub resolved: bool,
}

/// Everything acknowledged so far. Workers each get a share (by image) and give it back.
#[derive(Default, Debug)]
pub struct Ledger {
    pub images: BTreeMap<String, AckedImage>,
    pub docs: BTreeMap<String, DocModel>,
    pub jobs: BTreeMap<String, AckedJob>,
    pub deleted_images: BTreeSet<String>,
    pub deleted_docs: BTreeSet<String>,
    /// Deletes in flight at the kill: gone or not, both are right.
    pub maybe_deleted_images: BTreeMap<String, AckedImage>,
    pub maybe_deleted_docs: BTreeMap<String, DocModel>,
    /// Answers no correct server gives (a 500, a 404 for a live resource...).
    pub surprises: Vec<String>,
    /// Acknowledged requests, by kind (for the report).
    pub acked: BTreeMap<&'static str, u64>,
}

impl Ledger {
    pub fn count(&mut self, what: &'static str) {
        *self.acked.entry(what).or_default() += 1;
    }

    /// Splits the live images (with their documents and jobs) among `n` workers.
    pub fn split(&mut self, n: usize) -> Vec<Ledger> {
        let mut parts: Vec<Ledger> = (0..n).map(|_| Ledger::default()).collect();
        let share = |id: &str| {
            id.bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
                % n
        };
        for (id, img) in std::mem::take(&mut self.images) {
            parts[share(&id)].images.insert(id, img);
        }
        for (id, doc) in std::mem::take(&mut self.docs) {
            parts[share(&doc.image)].docs.insert(id, doc);
        }
        for (id, job) in std::mem::take(&mut self.jobs) {
            parts[share(&job.image)].jobs.insert(id, job);
        }
        parts
    }

    /// Takes a worker's share back.
    pub fn merge(&mut self, part: Ledger) {
        self.images.extend(part.images);
        self.docs.extend(part.docs);
        self.jobs.extend(part.jobs);
        self.deleted_images.extend(part.deleted_images);
        self.deleted_docs.extend(part.deleted_docs);
        self.maybe_deleted_images.extend(part.maybe_deleted_images);
        self.maybe_deleted_docs.extend(part.maybe_deleted_docs);
        self.surprises.extend(part.surprises);
        for (k, v) in part.acked {
            *self.acked.entry(k).or_default() += v;
        }
    }

    /// An acknowledged image delete: the image and every document made from it are gone.
    pub fn image_deleted(&mut self, id: &str) {
        self.images.remove(id);
        self.maybe_deleted_images.remove(id);
        self.deleted_images.insert(id.to_string());
        let docs: Vec<String> = self
            .docs
            .iter()
            .chain(self.maybe_deleted_docs.iter())
            .filter(|(_, d)| d.image == id)
            .map(|(k, _)| k.clone())
            .collect();
        for d in docs {
            self.doc_deleted(&d);
        }
    }

    pub fn doc_deleted(&mut self, id: &str) {
        self.docs.remove(id);
        self.maybe_deleted_docs.remove(id);
        self.deleted_docs.insert(id.to_string());
    }
}
