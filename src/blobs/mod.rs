//! Encrypted blob storage: image bytes live in files under one root, never in the metadata
//! store, each encrypted under its owner's data key (see [`stream`] for the format and
//! [`keyring`] for master keys and data keys; wrapped keys are stored by the caller).
//!
//! Layout: `<root>/<owner uuid simple hex>/<blob uuid simple hex>.blob`, written as
//! `<same>.tmp.<random>` first. Invariants: a `.blob` file is always complete — a put goes
//! encrypted temp file → fsync(file) → rename → fsync(dir), and the caller commits metadata
//! only after `put` returns; a delete is unlink → fsync(dir), after the caller's metadata
//! delete. Directories are 0700 and files 0600. All calls block; run them on blocking
//! threads. `list` and `remove_stale_temps` serve the start-up reconciler, which must run
//! before any `put` (a temp file of a put in flight looks stale).

mod keyring;
mod seal;
mod stream;

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

pub use keyring::{
    last_rotation, open_keyring, rotate_keys, set_last_rotation, DataKey, Keyring, MasterKeyError,
    WrappedKey,
};
pub use seal::FieldKey;
pub use stream::{DecryptReader, EncryptWriter};

use crate::ids::{BlobId, UserId};

/// Errors of blob storage and key handling.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob storage i/o error: {0}")]
    Io(#[source] io::Error),
    #[error("blob not found")]
    NotFound,
    #[error("blob integrity check failed: {0}")]
    Integrity(String),
    #[error("wrong master key: a wrapped key or check value failed authentication")]
    WrongMasterKey,
    #[error("no master key of generation {0} is loaded")]
    UnknownGeneration(u32),
    #[error("master key file {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },
}

impl BlobError {
    /// A stable snake_case code for logs and the API error table.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io(_) => "blob_io",
            Self::NotFound => "blob_not_found",
            Self::Integrity(_) => "blob_integrity",
            Self::WrongMasterKey => "wrong_master_key",
            Self::UnknownGeneration(_) => "unknown_key_generation",
            Self::KeyFile { .. } => "key_file",
        }
    }

    /// Recovers a `BlobError` carried inside an `io::Error` (as `DecryptReader::read`
    /// reports integrity failures); any other I/O error becomes `Io`.
    pub fn from_io(e: io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<BlobError>()) {
            let kind = e.kind();
            return match e.into_inner().map(|inner| inner.downcast::<BlobError>()) {
                Some(Ok(b)) => *b,
                _ => Self::Io(kind.into()),
            };
        }
        Self::Io(e)
    }

    /// Wraps this error in an `io::Error` (for `Read`/`Write` impls).
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Self::Io(e) => e,
            Self::NotFound => io::Error::new(io::ErrorKind::NotFound, self),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

impl From<io::Error> for BlobError {
    fn from(e: io::Error) -> Self {
        Self::from_io(e)
    }
}

/// Makes a directory private to its owner (mode 0700); best effort.
pub(crate) fn restrict_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
}

/// fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

enum EntryKind {
    Blob(BlobId),
    Temp,
    Other,
}

fn classify(name: &str) -> EntryKind {
    let parse = |s: &str| (s.len() == 32).then(|| s.parse::<BlobId>().ok()).flatten();
    if let Some(id) = name.strip_suffix(".blob").and_then(parse) {
        return EntryKind::Blob(id);
    }
    match name.split_once(".blob.tmp.") {
        Some((stem, _)) if parse(stem).is_some() => EntryKind::Temp,
        _ => EntryKind::Other,
    }
}

/// A writer that counts what passes through it.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encrypted blob files under one root directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating, mode 0700) the root directory.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        DirBuilder::new().recursive(true).mode(0o700).create(root)?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    fn owner_dir(&self, owner: UserId) -> PathBuf {
        self.root.join(owner.0.simple().to_string())
    }

    /// Where the blob `(owner, id)` lives.
    pub fn path_of(&self, owner: UserId, id: BlobId) -> PathBuf {
        self.owner_dir(owner)
            .join(format!("{}.blob", id.0.simple()))
    }

    /// Encrypts everything `src` yields into the blob `(owner, id)` and makes it durable;
    /// returns the plaintext length. On error no `.blob` file is left behind (an existing
    /// one is kept); on success an existing blob of that id is atomically replaced.
    pub fn put(
        &self,
        key: &DataKey,
        kek_generation: u32,
        owner: UserId,
        id: BlobId,
        src: &mut dyn Read,
    ) -> Result<u64, BlobError> {
        self.put_with(key, kek_generation, owner, id, |w| {
            io::copy(src, w)?;
            Ok(())
        })
    }

    /// Like [`put`](Self::put), but `write` produces the plaintext into an encrypting writer
    /// (for content built as a stream, e.g. a ZIP); returns the plaintext length. An error
    /// from `write` leaves no `.blob` file.
    pub fn put_with(
        &self,
        key: &DataKey,
        kek_generation: u32,
        owner: UserId,
        id: BlobId,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<u64, BlobError> {
        let dir = self.owner_dir(owner);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => sync_dir(&self.root)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        let final_path = self.path_of(owner, id);
        let mut suffix = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut suffix);
        let tmp = dir.join(format!(
            "{}.blob.tmp.{}",
            id.0.simple(),
            hex::encode(suffix)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let written = (|| {
            let mut w = Counting {
                inner: EncryptWriter::new(file, key, kek_generation, owner, id)?,
                n: 0,
            };
            write(&mut w)?;
            let n = w.n;
            w.inner.finish()?.sync_all()?;
            fs::rename(&tmp, &final_path)?;
            Ok::<_, io::Error>(n)
        })();
        match written {
            Ok(n) => {
                sync_dir(&dir)?;
                Ok(n)
            }
            Err(e) => {
                if let Err(rm) = fs::remove_file(&tmp) {
                    tracing::warn!(path = %tmp.display(), error = %rm, "cannot remove temp blob");
                }
                Err(BlobError::from_io(e))
            }
        }
    }

    /// A streaming reader of the plaintext. Integrity failures surface from `read` as an
    /// `io::Error` that [`BlobError::from_io`] turns back into `BlobError::Integrity`.
    pub fn open_reader(
        &self,
        key: &DataKey,
        owner: UserId,
        id: BlobId,
    ) -> Result<DecryptReader<File>, BlobError> {
        let file = match File::open(self.path_of(owner, id)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        DecryptReader::new(file, key, owner, id)
    }

    /// The whole plaintext of a blob.
    pub fn read_all(&self, key: &DataKey, owner: UserId, id: BlobId) -> Result<Vec<u8>, BlobError> {
        let mut reader = self.open_reader(key, owner, id)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(BlobError::from_io)?;
        Ok(out)
    }

    /// Removes a blob durably; `Ok(false)` if it did not exist.
    pub fn delete(&self, owner: UserId, id: BlobId) -> Result<bool, BlobError> {
        match fs::remove_file(self.path_of(owner, id)) {
            Ok(()) => {
                sync_dir(&self.owner_dir(owner))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes every file of `owner` and the owner's directory; returns how many blobs
    /// were removed. New puts for the owner must be stopped first.
    pub fn delete_owner(&self, owner: UserId) -> Result<usize, BlobError> {
        let dir = self.owner_dir(owner);
        let entries = match fs::read_dir(&dir) {
            Ok(it) => it,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            fs::remove_file(entry.path())?;
            if matches!(
                classify(&entry.file_name().to_string_lossy()),
                EntryKind::Blob(_)
            ) {
                removed += 1;
            }
        }
        fs::remove_dir(&dir)?;
        sync_dir(&self.root)?;
        Ok(removed)
    }

    /// Calls `f(owner, owner_dir, entry)` for every file in every owner directory. Entries
    /// that do not follow the layout are logged and skipped.
    fn walk(
        &self,
        mut f: impl FnMut(UserId, &Path, &fs::DirEntry) -> Result<(), BlobError>,
    ) -> Result<(), BlobError> {
        for owner_entry in fs::read_dir(&self.root)? {
            let owner_entry = owner_entry?;
            let name = owner_entry.file_name();
            let name = name.to_string_lossy();
            let owner = (name.len() == 32)
                .then(|| name.parse::<UserId>().ok())
                .flatten();
            let Some(owner) = owner.filter(|_| owner_entry.file_type().is_ok_and(|t| t.is_dir()))
            else {
                let path = owner_entry.path();
                tracing::warn!(path = %path.display(), "unexpected entry in blob root");
                continue;
            };
            let dir = owner_entry.path();
            for entry in fs::read_dir(&dir)? {
                f(owner, &dir, &entry?)?;
            }
        }
        Ok(())
    }

    /// Every stored blob, sorted (temp files are not listed).
    pub fn list(&self) -> Result<Vec<(UserId, BlobId)>, BlobError> {
        let mut out = Vec::new();
        self.walk(|owner, _, entry| {
            match classify(&entry.file_name().to_string_lossy()) {
                EntryKind::Blob(id) => out.push((owner, id)),
                EntryKind::Temp => {}
                EntryKind::Other => {
                    tracing::warn!(path = %entry.path().display(), "unexpected file in blob store")
                }
            }
            Ok(())
        })?;
        out.sort();
        Ok(out)
    }

    /// Removes the temp files of interrupted puts; returns how many. Start-up only.
    pub fn remove_stale_temps(&self) -> Result<usize, BlobError> {
        let mut removed = 0;
        self.walk(|_, dir, entry| {
            if matches!(
                classify(&entry.file_name().to_string_lossy()),
                EntryKind::Temp
            ) {
                fs::remove_file(entry.path())?;
                sync_dir(dir)?;
                removed += 1;
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// Total size in bytes of all files in the store (blobs and temp files).
    pub fn disk_usage(&self) -> Result<u64, BlobError> {
        let mut total = 0;
        self.walk(|_, _, entry| {
            total += entry.metadata()?.len();
            Ok(())
        })?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("blobs")).unwrap();
        (dir, store)
    }

    fn random_bytes(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        rand::thread_rng().fill_bytes(&mut v);
        v
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip_and_no_plaintext_on_disk() {
        let (_dir, store) = store();
        let key = DataKey::generate();
        let owner = UserId::new();
        for len in [0, 1, 4096, 200_000] {
            let id = BlobId::new();
            let pt = random_bytes(len);
            assert_eq!(
                store.put(&key, 1, owner, id, &mut &pt[..]).unwrap(),
                len as u64
            );
            assert_eq!(store.read_all(&key, owner, id).unwrap(), pt);
        }

        let png = b"\x89PNG\r\n\x1a\n";
        let pt = [&png[..], &random_bytes(4096 - png.len())].concat();
        let id = BlobId::new();
        store.put(&key, 1, owner, id, &mut &pt[..]).unwrap();
        let path = store.path_of(owner, id);
        let on_disk = fs::read(&path).unwrap();
        assert!(!on_disk.starts_with(png));
        let windows: HashSet<&[u8]> = on_disk.windows(16).collect();
        assert!(
            pt.windows(16).all(|w| !windows.contains(w)),
            "plaintext leaked"
        );
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&store.root), 0o700);
        assert_eq!(
            store.open_reader(&key, owner, id).unwrap().kek_generation(),
            1
        );
    }

    #[test]
    fn corruption_swap_and_wrong_key_are_integrity_errors() {
        let (_dir, store) = store();
        let key = DataKey::generate();
        let (owner, id) = (UserId::new(), BlobId::new());
        let pt = random_bytes(70_000);
        store.put(&key, 1, owner, id, &mut &pt[..]).unwrap();
        let path = store.path_of(owner, id);
        let good = fs::read(&path).unwrap();
        for pos in [0, 20, 100, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[pos] ^= 0x10;
            fs::write(&path, &bad).unwrap();
            let err = store.read_all(&key, owner, id).unwrap_err();
            assert!(
                matches!(err, BlobError::Integrity(_)),
                "flip at {pos}: {err:?}"
            );
            assert_eq!(err.code(), "blob_integrity");
        }
        fs::write(&path, &good).unwrap();
        let wrong = store.read_all(&DataKey::generate(), owner, id).unwrap_err();
        assert!(matches!(wrong, BlobError::Integrity(_)));

        // Another member's file moved into this member's place.
        let (other, other_id) = (UserId::new(), BlobId::new());
        store.put(&key, 1, other, other_id, &mut &pt[..]).unwrap();
        fs::copy(store.path_of(other, other_id), &path).unwrap();
        assert!(matches!(
            store.read_all(&key, owner, id),
            Err(BlobError::Integrity(_))
        ));
    }

    #[test]
    fn failed_put_leaves_nothing_behind() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("source broke"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(7);
                self.0 -= n;
                Ok(n)
            }
        }
        let (_dir, store) = store();
        let key = DataKey::generate();
        let (owner, id) = (UserId::new(), BlobId::new());
        let err = store
            .put(&key, 1, owner, id, &mut Failing(100_000))
            .unwrap_err();
        assert!(matches!(err, BlobError::Io(_)), "{err:?}");
        assert_eq!(fs::read_dir(store.owner_dir(owner)).unwrap().count(), 0);
        assert!(matches!(
            store.read_all(&key, owner, id),
            Err(BlobError::NotFound)
        ));
    }

    #[test]
    fn delete_list_temps_and_usage() {
        let (_dir, store) = store();
        let key = DataKey::generate();
        let (a, b) = (UserId::new(), UserId::new());
        let (a1, a2, b1) = (BlobId::new(), BlobId::new(), BlobId::new());
        for (owner, id) in [(a, a1), (a, a2), (b, b1)] {
            store
                .put(&key, 1, owner, id, &mut &random_bytes(1000)[..])
                .unwrap();
        }
        let temp = store
            .owner_dir(a)
            .join(format!("{}.blob.tmp.00ff", BlobId::new().0.simple()));
        fs::write(&temp, b"partial").unwrap();
        fs::write(store.owner_dir(a).join("notes.txt"), b"x").unwrap();
        fs::write(store.root.join("stray"), b"x").unwrap();

        let mut expected = vec![(a, a1), (a, a2), (b, b1)];
        expected.sort();
        assert_eq!(store.list().unwrap(), expected);
        // Three sealed 1000-byte blobs, the temp file and notes.txt (the root's stray
        // file is not in an owner directory).
        let sealed = (stream::HEADER_LEN + 1000 + stream::TAG_LEN) as u64;
        assert_eq!(store.disk_usage().unwrap(), 3 * sealed + 7 + 1);
        assert_eq!(store.remove_stale_temps().unwrap(), 1);
        assert!(!temp.exists());
        assert_eq!(store.remove_stale_temps().unwrap(), 0);

        assert!(store.delete(a, a1).unwrap());
        assert!(!store.delete(a, a1).unwrap());
        assert!(matches!(
            store.read_all(&key, a, a1),
            Err(BlobError::NotFound)
        ));
        assert_eq!(store.list().unwrap().len(), 2);

        assert_eq!(store.delete_owner(a).unwrap(), 1);
        assert_eq!(store.delete_owner(a).unwrap(), 0);
        assert!(!store.owner_dir(a).exists());
        assert_eq!(store.list().unwrap(), vec![(b, b1)]);
        assert_eq!(store.read_all(&key, b, b1).unwrap().len(), 1000);
    }

    #[test]
    fn from_io_recovers_blob_errors() {
        let e = BlobError::from_io(BlobError::Integrity("x".into()).into_io());
        assert!(matches!(e, BlobError::Integrity(m) if m == "x"));
        let e = BlobError::from_io(io::Error::other("plain"));
        assert_eq!(e.code(), "blob_io");
        let codes: HashSet<&str> = [
            BlobError::NotFound,
            BlobError::WrongMasterKey,
            BlobError::UnknownGeneration(3),
            BlobError::KeyFile {
                path: "k".into(),
                reason: "r".into(),
            },
        ]
        .iter()
        .map(BlobError::code)
        .collect();
        assert_eq!(codes.len(), 4);
    }
}
