//! How images, documents and document logs are written with their sensitive fields sealed
//! (schema 2): an image's `sha256` and `exif` (GPS included), every layer's `name` and
//! `text` in every state of a document (current, undo, redo), and each log entry's `op`
//! (a rename carries the new name) are replaced in the stored JSON by one `sealed` value
//! under the owner's field key ([`FieldKey`]). Reading opens them again, so every caller
//! sees whole records and nothing above the store knows. Once the member's data key is gone
//! the sealed values cannot be opened: they read as empty.
//!
//! Invariants: a sensitive field is never written in plaintext — without a key (no keyring
//! attached, or the member's data key destroyed) it is dropped instead; reading accepts both
//! forms, so a store half-way through the schema 1 → 2 migration reads whole, and the
//! migration (re-writing every record) can be interrupted and run again.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::codec::decode;
use super::{Result, Store};
use crate::blobs::{FieldKey, Keyring};
use crate::ids::UserId;
use crate::store::records::{DocumentRecord, ImageRecord, LogEntry};

const SEALED: &str = "sealed";
/// The sealed fields of each record, each with whether its empty form is `""` (a required
/// string) rather than `null`.
const IMAGE_FIELDS: [(&str, bool); 2] = [("sha256", true), ("exif", false)];
const LAYER_FIELDS: [(&str, bool); 2] = [("name", true), ("text", false)];
const LOG_FIELDS: [(&str, bool); 1] = [("op", false)];

/// What a record's sealed values are bound to: owner, object, and which part.
fn aad(owner: UserId, object: &[u8], part: &[u8]) -> Vec<u8> {
    let mut a = owner.as_bytes().to_vec();
    a.extend_from_slice(object);
    a.extend_from_slice(part);
    a
}

/// Moves `fields` of `obj` into one sealed value (or drops them without a key), leaving
/// each field's empty form behind.
fn seal_fields(
    obj: &mut Map<String, Value>,
    fields: &[(&str, bool)],
    key: Option<&FieldKey>,
    aad: &[u8],
) {
    let mut secret = Map::new();
    for (f, string) in fields {
        if let Some(v) = obj.get_mut(*f) {
            let empty = if *string {
                Value::String(String::new())
            } else {
                Value::Null
            };
            secret.insert((*f).to_string(), std::mem::replace(v, empty));
        }
    }
    obj.remove(SEALED);
    if let Some(key) = key {
        let plain = serde_json::to_vec(&secret).expect("JSON values serialise");
        obj.insert(SEALED.into(), key.seal(aad, &plain).into());
    }
}

/// Puts a sealed value's fields back into `obj`; without the key they stay empty.
fn open_fields(obj: &mut Map<String, Value>, key: Option<&FieldKey>, aad: &[u8]) {
    let Some(Value::String(sealed)) = obj.remove(SEALED) else {
        return;
    };
    let opened = key
        .and_then(|k| k.open(aad, &sealed))
        .and_then(|plain| serde_json::from_slice::<Map<String, Value>>(&plain).ok());
    if let Some(fields) = opened {
        obj.extend(fields);
    }
}

/// Every layer object of a document JSON: current, undo and redo states.
fn layers_mut(doc: &mut Value) -> Vec<&mut Map<String, Value>> {
    let mut out = Vec::new();
    let Some(obj) = doc.as_object_mut() else {
        return out;
    };
    let mut lists: Vec<&mut Value> = Vec::new();
    for (k, v) in obj.iter_mut() {
        match k.as_str() {
            "layers" => lists.push(v),
            "undo" | "redo" => {
                if let Some(states) = v.as_array_mut() {
                    lists.extend(states.iter_mut().filter_map(|s| s.get_mut("layers")));
                }
            }
            _ => {}
        }
    }
    for list in lists {
        if let Some(layers) = list.as_array_mut() {
            out.extend(layers.iter_mut().filter_map(Value::as_object_mut));
        }
    }
    out
}

fn layer_aad(owner: UserId, doc: &[u8], layer: &Map<String, Value>) -> Vec<u8> {
    let id = layer.get("id").and_then(Value::as_str).unwrap_or_default();
    aad(owner, doc, format!("layer:{id}").as_bytes())
}

impl Store {
    /// Lets the store seal and open fields: call once the master key is open.
    pub fn attach_keyring(&self, keyring: Arc<Keyring>) {
        let _ = self.keyring.set(keyring);
    }

    /// The member's field key, if the keyring is attached and their data key exists.
    pub(crate) fn field_key(&self, owner: UserId) -> Option<FieldKey> {
        let keyring = self.keyring.get()?;
        let wrapped = self.data_key(owner).ok()??;
        let key = keyring.unwrap(&wrapped, owner).ok()?;
        Some(FieldKey::new(&key))
    }

    pub(crate) fn encode_image(&self, img: &ImageRecord) -> Vec<u8> {
        self.encode_image_with(img, self.field_key(img.owner).as_ref())
    }

    /// As [`encode_image`](Self::encode_image) with the owner's field key at hand: inside a
    /// sled transaction, where reading the key (another tree) would wait on the transaction.
    pub(crate) fn encode_image_with(&self, img: &ImageRecord, key: Option<&FieldKey>) -> Vec<u8> {
        let mut v = serde_json::to_value(img).expect("records serialise");
        if let Some(obj) = v.as_object_mut() {
            seal_fields(
                obj,
                &IMAGE_FIELDS,
                key,
                &aad(img.owner, img.id.as_bytes(), b"image"),
            );
        }
        serde_json::to_vec(&v).expect("records serialise")
    }

    pub(crate) fn decode_image(&self, bytes: &[u8]) -> Result<ImageRecord> {
        self.decode_image_with(bytes, |owner| self.field_key(owner).map(Box::new))
    }

    /// The owner of an image record as stored (readable without any key).
    pub(crate) fn image_owner(&self, bytes: &[u8]) -> Result<Option<UserId>> {
        let v: Value = decode("images", bytes)?;
        Ok(owner_of(&v))
    }

    /// As [`decode_image`](Self::decode_image) with the field key from `key` (see
    /// [`encode_image_with`](Self::encode_image_with)).
    pub(crate) fn decode_image_with<K: std::ops::Deref<Target = FieldKey>>(
        &self,
        bytes: &[u8],
        key: impl FnOnce(UserId) -> Option<K>,
    ) -> Result<ImageRecord> {
        let mut v: Value = decode("images", bytes)?;
        if let (Some(owner), Some(id)) = (owner_of(&v), id_bytes(&v, "id")) {
            if let Some(obj) = v.as_object_mut() {
                if obj.contains_key(SEALED) {
                    let key = key(owner);
                    open_fields(obj, key.as_deref(), &aad(owner, &id, b"image"));
                }
            }
        }
        from_value("images", v)
    }

    pub(crate) fn encode_document(&self, doc: &DocumentRecord) -> Vec<u8> {
        let mut v = serde_json::to_value(doc).expect("records serialise");
        let key = self.field_key(doc.owner);
        for layer in layers_mut(&mut v) {
            let aad = layer_aad(doc.owner, doc.id.as_bytes(), layer);
            seal_fields(layer, &LAYER_FIELDS, key.as_ref(), &aad);
        }
        serde_json::to_vec(&v).expect("records serialise")
    }

    pub(crate) fn decode_document(&self, bytes: &[u8]) -> Result<DocumentRecord> {
        let mut v: Value = decode("documents", bytes)?;
        self.fill_history(&mut v)?;
        if let (Some(owner), Some(id)) = (owner_of(&v), id_bytes(&v, "id")) {
            let mut key = None;
            for layer in layers_mut(&mut v) {
                if layer.contains_key(SEALED) {
                    if key.is_none() {
                        key = Some(self.field_key(owner));
                    }
                    let aad = layer_aad(owner, &id, layer);
                    open_fields(layer, key.as_ref().and_then(Option::as_ref), &aad);
                }
            }
        }
        from_value("documents", v)
    }

    pub(crate) fn encode_log(&self, owner: UserId, doc: &[u8], entry: &LogEntry) -> Vec<u8> {
        let mut v = serde_json::to_value(entry).expect("records serialise");
        if let Some(obj) = v.as_object_mut() {
            let key = self.field_key(owner);
            let part = format!("log:{}", entry.revision);
            seal_fields(
                obj,
                &LOG_FIELDS,
                key.as_ref(),
                &aad(owner, doc, part.as_bytes()),
            );
        }
        serde_json::to_vec(&v).expect("records serialise")
    }

    pub(crate) fn decode_log(
        &self,
        owner: Option<UserId>,
        doc: &[u8],
        bytes: &[u8],
    ) -> Result<LogEntry> {
        let mut v: Value = decode("document_log", bytes)?;
        let revision = v
            .get("revision")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        if let (Some(owner), Some(obj)) = (owner, v.as_object_mut()) {
            if obj.contains_key(SEALED) {
                let key = self.field_key(owner);
                let part = format!("log:{revision}");
                open_fields(obj, key.as_ref(), &aad(owner, doc, part.as_bytes()));
            }
        }
        from_value("document_log", v)
    }
}

fn owner_of(v: &Value) -> Option<UserId> {
    v.get("owner")?.as_str()?.parse().ok()
}

fn id_bytes(v: &Value, field: &str) -> Option<Vec<u8>> {
    let id: uuid::Uuid = v.get(field)?.as_str()?.parse().ok()?;
    Some(id.as_bytes().to_vec())
}

fn from_value<T: serde::de::DeserializeOwned>(tree: &'static str, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| super::StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::blobs::{DataKey, Keyring};
    use crate::engine::LayerKind;
    use crate::ids::{BlobId, DocumentId, ImageId, LayerId};
    use crate::store::records::{DocState, DocumentMode, HistoryOp, LayerRecord};

    pub(crate) fn layer(name: &str, text: Option<&str>) -> LayerRecord {
        LayerRecord {
            id: LayerId::new(),
            name: name.into(),
            kind: LayerKind::Text,
            visible: true,
            opacity: 1.0,
            bbox: [0, 0, 1, 1],
            origin: None,
            text: text.map(Into::into),
            blob: BlobId::new(),
        }
    }

    /// A store with a keyring attached and a member with a data key.
    pub(crate) fn setup() -> (tempfile::TempDir, tempfile::TempDir, Store, UserId) {
        let (d, store) = crate::store::temp_store();
        let keys = tempfile::tempdir().unwrap();
        let keyring = Arc::new(Keyring::open(&keys.path().join("master.key"), true).unwrap());
        let owner = UserId::new();
        store
            .data_keys
            .insert(
                owner.as_bytes(),
                super::super::codec::encode(&keyring.wrap(&DataKey::generate(), owner)),
            )
            .unwrap();
        store.attach_keyring(keyring);
        (d, keys, store, owner)
    }

    pub(crate) fn document(owner: UserId) -> DocumentRecord {
        DocumentRecord {
            id: DocumentId::new(),
            owner,
            image_id: ImageId::new(),
            width: 1,
            height: 1,
            revision: 2,
            mode: DocumentMode::Peel,
            layers: vec![layer("Headline", Some("SUMMER SALE"))],
            created_at: 0,
            expires_at: 10,
            last_op: HistoryOp::Rename,
            undo: vec![DocState {
                op: HistoryOp::Peel,
                layers: vec![layer("Old headline", Some("SPRING SALE"))],
                revision: 1,
            }],
            redo: vec![],
        }
    }

    fn raw(store: &Store, doc: &DocumentRecord) -> String {
        String::from_utf8(
            store
                .documents
                .get(doc.id.as_bytes())
                .unwrap()
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn layer_names_and_text_are_sealed_in_every_state_and_read_back_whole() {
        let (_d, _k, store, owner) = setup();
        let doc = document(owner);
        store.put_document(&doc).unwrap();
        let mut stored = raw(&store, &doc);
        for kv in store.document_states.iter() {
            stored.push_str(std::str::from_utf8(&kv.unwrap().1).unwrap());
        }
        assert!(stored.contains(r#""layers":[{"#), "the state is read too");
        for secret in ["Headline", "SUMMER", "SPRING"] {
            assert!(!stored.contains(secret), "{secret} in {stored}");
        }
        let back = store.get_document(doc.id).unwrap().unwrap();
        assert_eq!(back.layers, doc.layers);
        assert_eq!(back.undo, doc.undo);
    }

    #[test]
    fn the_migration_seals_plaintext_records_and_can_run_again() {
        let (_d, _k, store, owner) = setup();
        let doc = document(owner);
        // as schema 1 wrote it
        store
            .documents
            .insert(doc.id.as_bytes(), serde_json::to_vec(&doc).unwrap())
            .unwrap();
        store
            .meta
            .insert(crate::store::SCHEMA_KEY, &1u32.to_be_bytes())
            .unwrap();
        assert_eq!(
            store.get_document(doc.id).unwrap().unwrap().layers,
            doc.layers
        );
        assert_eq!(store.migrate().unwrap(), [2, 3]);
        assert!(!raw(&store, &doc).contains("Headline"));
        assert_eq!(
            store.get_document(doc.id).unwrap().unwrap().layers,
            doc.layers
        );
        assert!(store.migrate().unwrap().is_empty());
    }

    #[test]
    fn without_a_key_sensitive_fields_are_dropped_never_written_plain() {
        let (_d, store) = crate::store::temp_store();
        let doc = document(UserId::new());
        store.put_document(&doc).unwrap();
        assert!(!raw(&store, &doc).contains("Headline"));
        let back = store.get_document(doc.id).unwrap().unwrap();
        assert!(back.layers[0].name.is_empty() && back.layers[0].text.is_none());
    }
}
