//! Layered documents in the store: the record (layer list, revision, and the undo and redo
//! lists), an `image ‖ document` index so deleting an image reaches its documents, the
//! document's TTL entry, its history states and its append-only operation log
//! (`document ‖ revision` → [`LogEntry`]), changed together in one transaction. An edit
//! commits only if the stored revision is still the one it was computed from
//! (compare-and-swap), so two edits can never both land on one state. Layer pixels live in
//! blobs.
//!
//! History (schema 3): each undo or redo state is its own value under `document ‖ revision`
//! (the revision at which it was current) in `document_states`; the record keeps only
//! `{op, revision}` for each, so it stays small however long the history, and an edit
//! writes one new state and removes the states it drops instead of rewriting them all.
//! A record of schema 2 or earlier holds its states inline; reading accepts both.

use std::collections::HashSet;

use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::codec::concat;
use super::records::{DocumentRecord, LogEntry};
use super::ttl::{clear_tx, set_tx, TtlKind};
use super::{Result, Store, StoreError};
use crate::ids::{DocumentId, ImageId, UserId};

/// The abort reason of a commit whose base revision is no longer current.
pub const STALE_REVISION: &str = "stale_revision";

/// The history lists of a document record.
const HISTORY: [&str; 2] = ["undo", "redo"];

/// A document as written: the record, and each history state under its revision.
struct Split {
    record: Vec<u8>,
    states: Vec<(u64, Vec<u8>)>,
}

/// The revisions of the states a stored record lists outside itself (not those inline).
fn stored_states(record: &Value) -> HashSet<u64> {
    HISTORY
        .iter()
        .filter_map(|list| record.get(*list)?.as_array())
        .flatten()
        .filter(|s| s.get("layers").is_none())
        .filter_map(|s| s.get("revision")?.as_u64())
        .collect()
}

/// Whether a stored record still holds history states inline (schema 2 or earlier).
fn has_inline_states(record: &Value) -> bool {
    HISTORY
        .iter()
        .filter_map(|list| record.get(*list)?.as_array())
        .flatten()
        .any(|s| s.get("layers").is_some())
}

fn state_key(doc: &[u8], revision: u64) -> Vec<u8> {
    concat(doc, &revision.to_be_bytes())
}

/// Writes `new`'s record and the states it lists that `old` (the stored record, if any) did
/// not; removes the states `old` listed that `new` does not.
fn write_split(
    d: &TransactionalTree,
    s: &TransactionalTree,
    id: &[u8],
    old: Option<&Value>,
    new: &Split,
) -> std::result::Result<(), ConflictableTransactionError<String>> {
    let had = old.map(stored_states).unwrap_or_default();
    let keep: HashSet<u64> = new.states.iter().map(|(r, _)| *r).collect();
    for (revision, value) in &new.states {
        if !had.contains(revision) {
            s.insert(state_key(id, *revision), value.as_slice())?;
        }
    }
    for revision in had.difference(&keep) {
        s.remove(state_key(id, *revision))?;
    }
    d.insert(id, new.record.as_slice())?;
    Ok(())
}

impl Store {
    /// Inserts or rewrites a document with its index and TTL entry.
    pub fn put_document(&self, doc: &DocumentRecord) -> Result<()> {
        let split = self.split_document(doc);
        self.atomically(
            (
                &self.documents,
                &self.documents_by_image,
                &self.ttl,
                &self.ttl_by_object,
                &self.document_states,
            ),
            |(d, i, t, b, s)| {
                let old: Option<Value> = d
                    .get(doc.id.as_bytes())?
                    .and_then(|v| serde_json::from_slice(&v).ok());
                write_split(d, s, doc.id.as_bytes(), old.as_ref(), &split)?;
                i.insert(concat(doc.image_id.as_bytes(), doc.id.as_bytes()), &[][..])?;
                set_tx(t, b, TtlKind::Document, doc.id.as_bytes(), doc.expires_at)?;
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        Ok(())
    }

    /// Replaces document `doc.id` if its stored revision is still `base_revision`, appending
    /// `entry` to its log, in one transaction. A changed (or deleted) document aborts with
    /// [`StoreError::Conflict`](super::StoreError::Conflict) carrying `"stale_revision"`.
    pub fn commit_document(
        &self,
        doc: &DocumentRecord,
        base_revision: u64,
        entry: &LogEntry,
    ) -> Result<()> {
        let split = self.split_document(doc);
        let log_value = self.encode_log(doc.owner, doc.id.as_bytes(), entry);
        self.atomically(
            (
                &self.documents,
                &self.ttl,
                &self.ttl_by_object,
                &self.document_log,
                &self.document_states,
            ),
            |(d, t, b, l, s)| {
                let current: Option<Value> = d
                    .get(doc.id.as_bytes())?
                    .and_then(|v| serde_json::from_slice(&v).ok());
                let revision = current.as_ref().and_then(|c| c.get("revision")?.as_u64());
                if revision != Some(base_revision) {
                    return Err(ConflictableTransactionError::Abort(
                        STALE_REVISION.to_string(),
                    ));
                }
                write_split(d, s, doc.id.as_bytes(), current.as_ref(), &split)?;
                set_tx(t, b, TtlKind::Document, doc.id.as_bytes(), doc.expires_at)?;
                l.insert(
                    concat(doc.id.as_bytes(), &entry.revision.to_be_bytes()),
                    log_value.as_slice(),
                )?;
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        Ok(())
    }

    /// The document's operation log, oldest first.
    /// (`owner` opens the entries' sealed ops.)
    pub fn document_log(&self, id: DocumentId, owner: UserId) -> Result<Vec<LogEntry>> {
        self.document_log
            .scan_prefix(id.as_bytes())
            .values()
            .map(|v| self.decode_log(Some(owner), id.as_bytes(), &v?))
            .collect()
    }

    pub fn get_document(&self, id: DocumentId) -> Result<Option<DocumentRecord>> {
        self.documents
            .get(id.as_bytes())?
            .map(|v| self.decode_document(&v))
            .transpose()
    }

    /// The documents made from an image.
    pub fn documents_of_image(&self, image: ImageId) -> Result<Vec<DocumentRecord>> {
        let mut out = Vec::new();
        for k in self.documents_by_image.scan_prefix(image.as_bytes()).keys() {
            if let Some(id) = DocumentId::from_slice(&k?[16..]) {
                if let Some(doc) = self.get_document(id)? {
                    out.push(doc);
                }
            }
        }
        Ok(out)
    }

    /// Every document (reconciler).
    /// Every document record that can be read, and how many cannot (see `readable_images`).
    pub fn readable_documents(&self) -> Result<(Vec<DocumentRecord>, usize)> {
        self.readable(&self.documents, "documents", |v| self.decode_document(v))
    }

    pub fn all_documents(&self) -> Result<Vec<DocumentRecord>> {
        self.documents
            .iter()
            .values()
            .map(|v| self.decode_document(&v?))
            .collect()
    }

    /// Removes a document's metadata; its blobs are the caller's to unlink after the flush.
    pub fn delete_document(&self, id: DocumentId) -> Result<Option<DocumentRecord>> {
        let Some(doc) = self.get_document(id)? else {
            return Ok(None);
        };
        self.atomically(
            (
                &self.documents,
                &self.documents_by_image,
                &self.ttl,
                &self.ttl_by_object,
                &self.document_states,
            ),
            |(d, i, t, b, s)| {
                let old: Option<Value> = d
                    .get(id.as_bytes())?
                    .and_then(|v| serde_json::from_slice(&v).ok());
                for revision in old.as_ref().map(stored_states).unwrap_or_default() {
                    s.remove(state_key(id.as_bytes(), revision))?;
                }
                d.remove(id.as_bytes())?;
                i.remove(concat(doc.image_id.as_bytes(), id.as_bytes()))?;
                clear_tx(t, b, TtlKind::Document, id.as_bytes())?;
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        // what no record lists any more: the log, and any state a crash left behind
        for tree in [&self.document_log, &self.document_states] {
            for k in tree.scan_prefix(id.as_bytes()).keys() {
                tree.remove(k?)?;
            }
        }
        Ok(Some(doc))
    }

    /// The record and states to write for `doc`: sealed as one JSON (see `super::sealing`),
    /// then each history state moved out under its revision, leaving `{op, revision}`.
    fn split_document(&self, doc: &DocumentRecord) -> Split {
        let mut record: Value =
            serde_json::from_slice(&self.encode_document(doc)).expect("records serialise");
        let mut states = Vec::new();
        for list in HISTORY {
            let Some(Value::Array(list)) = record.get_mut(list) else {
                continue;
            };
            for state in list {
                let (Some(revision), Some(obj)) = (
                    state.get("revision").and_then(Value::as_u64),
                    state.as_object_mut(),
                ) else {
                    continue;
                };
                if let Some(layers) = obj.remove("layers") {
                    let value = serde_json::json!({ "op": obj.get("op"), "layers": layers });
                    states.push((revision, serde_json::to_vec(&value).expect("JSON")));
                }
            }
        }
        Split {
            record: serde_json::to_vec(&record).expect("records serialise"),
            states,
        }
    }

    /// Puts each history state a stored record lists back into it (sealed as stored).
    pub(super) fn fill_history(&self, record: &mut Value) -> Result<()> {
        let Some(id) = record
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<uuid::Uuid>().ok())
        else {
            return Ok(());
        };
        for list in HISTORY {
            let Some(Value::Array(list)) = record.get_mut(list) else {
                continue;
            };
            for state in list.iter_mut().filter(|s| s.get("layers").is_none()) {
                let revision = state.get("revision").and_then(Value::as_u64);
                let stored = match revision {
                    Some(r) => self.document_states.get(state_key(id.as_bytes(), r))?,
                    None => None,
                };
                let Some(stored) = stored else {
                    return Err(StoreError::Corrupt {
                        tree: "document_states",
                        reason: format!(
                            "document {id} lists a state at {revision:?} that is missing"
                        ),
                    });
                };
                let stored: Value = super::codec::decode("document_states", &stored)?;
                if let (Some(obj), Some(layers)) = (state.as_object_mut(), stored.get("layers")) {
                    obj.insert("layers".into(), layers.clone());
                }
            }
        }
        Ok(())
    }

    /// Schema 2 → 3: moves every document's inline history states under their own keys,
    /// each numbered by a revision below the document's current one (every state was made by
    /// a commit since revision 1, so there are fewer states than revisions) in history order;
    /// later states are numbered by the revisions to come, so no two can meet.
    /// A record already moved is left alone, so the step can run again after a crash.
    pub(super) fn move_history_out(&self) -> Result<()> {
        for kv in self.documents.iter() {
            let (_, v) = kv?;
            let raw: Value = super::codec::decode("documents", &v)?;
            if !has_inline_states(&raw) {
                continue;
            }
            let mut doc = self.decode_document(&v)?;
            let states = doc.undo.iter_mut().chain(doc.redo.iter_mut());
            for (n, state) in states.enumerate() {
                state.revision = n as u64;
            }
            let count = (doc.undo.len() + doc.redo.len()) as u64;
            if count >= doc.revision {
                // cannot happen from this program's commits; keep the keys below it anyway
                tracing::warn!(document = %doc.id, count, "more history states than revisions");
                doc.revision = count + 1;
            }
            self.put_document(&doc)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{DocState, HistoryOp};
    use crate::store::sealing::tests::{document, layer, setup};

    fn as_json(doc: &DocumentRecord) -> Value {
        serde_json::to_value(doc).unwrap()
    }

    fn entry(revision: u64) -> LogEntry {
        LogEntry {
            revision,
            action: "op".into(),
            op: Value::Null,
            at: 0,
            job: None,
        }
    }

    /// `doc` after one edit: its current state pushed on the undo list (at most 50 kept).
    fn edited(doc: &DocumentRecord) -> DocumentRecord {
        let mut new = doc.clone();
        new.undo.push(DocState {
            op: doc.last_op,
            layers: std::mem::take(&mut new.layers),
            revision: doc.revision,
        });
        if new.undo.len() > 50 {
            new.undo.remove(0);
        }
        new.redo.clear();
        new.layers = (0..20)
            .map(|i| layer(&format!("layer {i}"), None))
            .collect();
        new.last_op = HistoryOp::Recolor;
        new.revision = doc.revision + 1;
        new
    }

    fn states(store: &Store) -> usize {
        store.document_states.len()
    }

    #[test]
    fn a_long_history_keeps_the_record_small_and_reads_back_whole() {
        let (_d, _k, store, owner) = setup();
        let mut doc = document(owner);
        doc.undo.clear();
        store.put_document(&doc).unwrap();
        for _ in 0..60 {
            let new = edited(&doc);
            store
                .commit_document(&new, doc.revision, &entry(new.revision))
                .unwrap();
            doc = new;
        }
        // 50 states of 20 layers each, and the record holds none of them
        assert_eq!(doc.undo.len(), 50);
        assert_eq!(states(&store), 50, "the trimmed states are gone");
        let record = store.documents.get(doc.id.as_bytes()).unwrap().unwrap();
        let history: usize = store
            .document_states
            .iter()
            .map(|kv| kv.unwrap().1.len())
            .sum();
        assert!(
            record.len() < 16 * 1024 && history > 10 * record.len(),
            "record {} bytes, history {history} bytes",
            record.len()
        );
        let back = store.get_document(doc.id).unwrap().unwrap();
        assert_eq!(as_json(&back), as_json(&doc));

        // an undo moves the current state to the redo list and takes the last one back
        let mut undone = doc.clone();
        let state = undone.undo.pop().unwrap();
        undone.redo.push(DocState {
            op: doc.last_op,
            layers: std::mem::take(&mut undone.layers),
            revision: doc.revision,
        });
        undone.layers = state.layers;
        undone.revision += 1;
        store
            .commit_document(&undone, doc.revision, &entry(undone.revision))
            .unwrap();
        assert_eq!(states(&store), 50);
        let back = store.get_document(doc.id).unwrap().unwrap();
        assert_eq!(as_json(&back), as_json(&undone));

        // a stale commit changes nothing
        let again = edited(&doc);
        assert!(store
            .commit_document(&again, doc.revision, &entry(again.revision))
            .is_err());
        assert_eq!(states(&store), 50);

        store.delete_document(doc.id).unwrap();
        assert_eq!(states(&store), 0);
        assert!(store.get_document(doc.id).unwrap().is_none());
    }

    #[test]
    fn the_migration_moves_inline_history_out_and_can_run_again() {
        let (_d, _k, store, owner) = setup();
        let mut doc = document(owner);
        for _ in 0..3 {
            doc = edited(&doc);
        }
        let mut redo = doc.undo.pop().unwrap();
        redo.revision = 0;
        doc.redo.push(redo);
        for s in &mut doc.undo {
            s.revision = 0;
        }
        // as schema 2 wrote it: states inline, without revisions
        let inline = store.encode_document(&doc);
        store.documents.insert(doc.id.as_bytes(), inline).unwrap();
        store
            .meta
            .insert(crate::store::SCHEMA_KEY, &2u32.to_be_bytes())
            .unwrap();
        let before = store.get_document(doc.id).unwrap().unwrap();
        assert_eq!(before.undo.len(), 3);

        assert_eq!(store.migrate().unwrap(), [3]);
        let record = store.documents.get(doc.id.as_bytes()).unwrap().unwrap();
        assert!(!has_inline_states(
            &serde_json::from_slice(&record).unwrap()
        ));
        assert_eq!(states(&store), 4);
        let after = store.get_document(doc.id).unwrap().unwrap();
        let revisions: Vec<u64> = after
            .undo
            .iter()
            .chain(&after.redo)
            .map(|s| s.revision)
            .collect();
        assert_eq!(revisions, [0, 1, 2, 3]);
        assert!(revisions.iter().all(|r| *r < after.revision));
        for (a, b) in after
            .undo
            .iter()
            .chain(&after.redo)
            .zip(before.undo.iter().chain(&before.redo))
        {
            assert_eq!((a.op, &a.layers), (b.op, &b.layers));
        }
        assert_eq!(after.layers, before.layers);

        // interrupted and run again: nothing changes
        store
            .meta
            .insert(crate::store::SCHEMA_KEY, &2u32.to_be_bytes())
            .unwrap();
        assert_eq!(store.migrate().unwrap(), [3]);
        assert_eq!(
            store.documents.get(doc.id.as_bytes()).unwrap().unwrap(),
            record
        );
        assert_eq!(states(&store), 4);

        // the next edit numbers its state past the migrated ones
        let next = edited(&after);
        store
            .commit_document(&next, after.revision, &entry(next.revision))
            .unwrap();
        assert_eq!(states(&store), 4, "redo cleared, one undo state added");
        let back = store.get_document(doc.id).unwrap().unwrap();
        assert_eq!(as_json(&back), as_json(&next));
    }
}
