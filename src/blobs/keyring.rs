//! Master key (KEK) generations and the per-member data keys they wrap.
//!
//! The master key lives in a small text file (mode 0600) holding its generation and 32
//! hex-encoded key bytes. Data keys are random 32-byte keys, stored by the caller only in
//! wrapped form: AES-256-GCM under a KEK, random nonce prefixed, AAD = owner id ‖ generation.
//!
//! Crypto-shredding works by rotation, independent of where wrapped keys are stored:
//! `begin_rotation` durably writes `<path>.next` (generation + 1) and keeps both KEKs
//! loaded; the caller re-wraps every live data key (`wrap` always uses the newest loaded
//! generation) and persists them durably; `finish_rotation` renames `<path>.next` over
//! `<path>`, after which the old KEK is gone and keys wrapped under it no longer unwrap.
//! A crash in between leaves `<path>.next`, which `open` loads again (`pending_rotation`).
//! Invariants: a key file is never overwritten in place or clobbered (new files appear
//! atomically via a temp file and a hard link); key bytes never reach logs, errors or
//! `Debug` output and are zeroized on drop.
//!
//! [`open_keyring`] ties a key file to a data dir: a check value in the store proves at every
//! start that the key is the one the data was written under, and [`rotate_keys`] runs a
//! rotation against the store's wrapped keys.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::{restrict_dir, sync_dir, BlobError};
use crate::config::Config;
use crate::ids::UserId;
use crate::store::{Store, StoreError};

/// The store's meta key holding the master key's check value.
const KEK_CHECK: &str = "kek_check";
/// The store's meta key holding when the master key was last rotated (Unix seconds).
const KEK_ROTATED_AT: &str = "kek_rotated_at";

/// When the master key of `store` was last rotated, if ever since this was recorded.
pub fn last_rotation(store: &Store) -> Result<Option<i64>, StoreError> {
    Ok(store
        .meta_get(KEK_ROTATED_AT)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(i64::from_be_bytes))
}

/// Records `at` as the time of the last rotation (not flushed).
pub fn set_last_rotation(store: &Store, at: i64) -> Result<(), StoreError> {
    store.meta_set(KEK_ROTATED_AT, &at.to_be_bytes())
}

/// Why the master key of a data dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("master key {path}: {source}")]
    Keys { path: PathBuf, source: BlobError },
    #[error("the master key at {0} does not belong to this data dir (wrong key or wrong --data-dir); start with the key the store was created with")]
    WrongMasterKey(PathBuf),
    #[error("the data dir has accounts but its master key {0} is missing; restore the key file (without it the stored images cannot be read)")]
    MissingMasterKey(PathBuf),
}

impl MasterKeyError {
    pub fn code(&self) -> &'static str {
        match self {
            MasterKeyError::Store(e) => e.code(),
            MasterKeyError::Keys { .. } | MasterKeyError::MissingMasterKey(_) => {
                "master_key_unusable"
            }
            MasterKeyError::WrongMasterKey(_) => "wrong_master_key",
        }
    }
}

/// Opens the master key for `store`: created with the store, verified against it afterwards.
/// An interrupted rotation is completed here.
pub fn open_keyring(config: &Config, store: &Store) -> Result<Keyring, MasterKeyError> {
    let path = config.master_key_path();
    let keys_err = |source| MasterKeyError::Keys {
        path: path.clone(),
        source,
    };
    let check = store.meta_get(KEK_CHECK)?;
    let fresh = check.is_none() && store.count_users() == 0;
    if !fresh && !path.exists() {
        return Err(MasterKeyError::MissingMasterKey(path));
    }
    if let Some(parent) = path.parent() {
        let _ = fs::create_dir_all(parent);
        restrict_dir(parent);
    }
    let keyring = Keyring::open(&path, fresh).map_err(keys_err)?;
    match check {
        Some(v) if v.len() > 4 => {
            let generation = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            match keyring.verify_check(generation, &v[4..]) {
                Ok(()) => {}
                Err(BlobError::WrongMasterKey | BlobError::UnknownGeneration(_)) => {
                    return Err(MasterKeyError::WrongMasterKey(path))
                }
                Err(e) => return Err(keys_err(e)),
            }
        }
        _ => write_check(store, &keyring)?,
    }
    if keyring.pending_rotation() {
        tracing::warn!("completing an interrupted master key rotation");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        rotate_keys(store, &keyring, now).map_err(keys_err)?;
    }
    Ok(keyring)
}

fn write_check(store: &Store, keyring: &Keyring) -> Result<(), StoreError> {
    let (generation, bytes) = keyring.check_value();
    let mut v = generation.to_be_bytes().to_vec();
    v.extend_from_slice(&bytes);
    store.meta_set(KEK_CHECK, &v)?;
    store.flush_blocking()
}

/// Re-wraps every live data key under a new master-key generation, then retires the old key
/// file, so no copy of a wrapped key from before (a backup, an old disk block) can be
/// unwrapped again. Crash-safe: the new key file is durable before any data key uses it,
/// and the old one is only replaced after every re-wrapped key is flushed. Safe while the
/// studio runs: keys made meanwhile are wrapped under the new generation (see
/// [`Keyring::wrap_and`]), and a key deleted meanwhile stays deleted (each key is swapped
/// only if it is still the one that was read). Returns (old, new, keys re-wrapped).
pub fn rotate_keys(
    store: &Store,
    keyring: &Keyring,
    now: i64,
) -> Result<(u32, u32, usize), BlobError> {
    let store_err = |e: StoreError| BlobError::Io(io::Error::other(e.to_string()));
    let old = keyring.current_generation();
    let new = keyring.begin_rotation()?;
    let old = if old == new { new - 1 } else { old };
    let mut failed = None;
    let rewrapped = store
        .rewrap_data_keys(|owner, wrapped| {
            if wrapped.generation == new || failed.is_some() {
                return None;
            }
            match keyring.unwrap(wrapped, owner) {
                Ok(dk) => Some(keyring.wrap(&dk, owner)),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }
        })
        .map_err(store_err)?;
    // a key that cannot be unwrapped stops the rotation before the old key file goes
    if let Some(e) = failed {
        return Err(e);
    }
    write_check(store, keyring).map_err(store_err)?;
    set_last_rotation(store, now).map_err(store_err)?;
    store.flush_blocking().map_err(store_err)?;
    keyring.finish_rotation()?;
    Ok((old, new, rewrapped))
}

const FILE_TITLE: &str = "image-layered master key v1";
const CHECK_LABEL: &[u8] = b"image-layered key check v1";
const NONCE_LEN: usize = 12;

/// A member's 32-byte data key. Zeroized on drop; `Debug` never shows it.
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A fresh random key from the OS generator.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key encrypted under the KEK of `generation` (nonce ‖ ciphertext ‖ tag, 60 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub generation: u32,
    pub bytes: Vec<u8>,
}

struct Kek {
    generation: u32,
    cipher: Aes256Gcm,
}

/// The loaded master key(s): the current generation and, during a rotation, the next.
struct Keks {
    current: Kek,
    next: Option<Kek>,
}

impl Keks {
    fn newest(&self) -> &Kek {
        self.next.as_ref().unwrap_or(&self.current)
    }

    fn get(&self, generation: u32) -> Result<&Kek, BlobError> {
        [Some(&self.current), self.next.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.generation == generation)
            .ok_or(BlobError::UnknownGeneration(generation))
    }
}

/// The master key file and its loaded generations. Shared by every service (`&self`
/// throughout): a rotation swaps generations under a lock while the studio runs.
pub struct Keyring {
    path: PathBuf,
    keks: RwLock<Keks>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keks = self.read();
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("current_generation", &keks.current.generation)
            .field("next_generation", &keks.next.as_ref().map(|k| k.generation))
            .finish()
    }
}

fn wrap_with(kek: &Kek, key: &DataKey, owner: UserId) -> WrappedKey {
    WrappedKey {
        generation: kek.generation,
        bytes: seal(
            &kek.cipher,
            &aad(owner.as_bytes(), kek.generation),
            key.expose(),
        ),
    }
}

fn key_file_err(path: &Path, reason: impl Into<String>) -> BlobError {
    BlobError::KeyFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// See [`Keyring::not_rotatable`].
fn not_rotatable(path: &Path, credentials: Option<&Path>) -> Option<String> {
    if credentials.is_some_and(|dir| path.starts_with(dir)) {
        return Some(format!(
            "{} is a systemd credential (read-only)",
            path.display()
        ));
    }
    let probe = with_suffix(path, ".probe");
    match fs::File::create(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            None
        }
        Err(e) => Some(format!("cannot write beside {}: {e}", path.display())),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn aad(owner: &[u8; 16], generation: u32) -> [u8; 20] {
    let mut a = [0u8; 20];
    a[..16].copy_from_slice(owner);
    a[16..].copy_from_slice(&generation.to_be_bytes());
    a
}

fn seal(cipher: &Aes256Gcm, aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg, aad })
        .expect("AES-GCM encryption of a short message cannot fail");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens `nonce ‖ ciphertext ‖ tag`; `None` on any authentication failure.
fn open_sealed(cipher: &Aes256Gcm, aad: &[u8], bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if bytes.len() < NONCE_LEN + 16 {
        return None;
    }
    let (nonce, ct) = bytes.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

/// Parses a key file's text; errors never quote the key.
fn parse_key_file(path: &Path, text: &str) -> Result<Kek, BlobError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(FILE_TITLE) {
        return Err(key_file_err(
            path,
            format!("first line must be `{FILE_TITLE}`"),
        ));
    }
    let (mut generation, mut key) = (None, None::<Zeroizing<[u8; 32]>>);
    for line in lines {
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| key_file_err(path, "expected `name = value` lines"))?;
        match name.trim() {
            "generation" if generation.is_none() => {
                let g = value.trim().parse::<u32>().ok().filter(|g| *g >= 1);
                generation =
                    Some(g.ok_or_else(|| {
                        key_file_err(path, "generation must be a positive integer")
                    })?);
            }
            "key" if key.is_none() => {
                let mut k = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(value.trim(), k.as_mut())
                    .map_err(|_| key_file_err(path, "key must be 64 hex digits"))?;
                key = Some(k);
            }
            other => {
                return Err(key_file_err(
                    path,
                    format!("unexpected or repeated field `{other}`"),
                ))
            }
        }
    }
    let generation = generation.ok_or_else(|| key_file_err(path, "missing `generation`"))?;
    let key = key.ok_or_else(|| key_file_err(path, "missing `key`"))?;
    Ok(Kek {
        generation,
        cipher: Aes256Gcm::new(key.as_ref().into()),
    })
}

/// Loads a key file; `Ok(None)` if it does not exist. A key file anyone but its owner can
/// read or write (any mode other than 0600 or 0400) is refused, with the fix in the message.
fn load_key_file(path: &Path) -> Result<Option<Kek>, BlobError> {
    match fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o177 != 0 {
                return Err(key_file_err(
                    path,
                    format!(
                        "its mode is {mode:o}: a master key must be readable by its owner only; \
                         run `chmod 600 {}` and start again",
                        path.display()
                    ),
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(key_file_err(path, format!("cannot read: {e}"))),
    }
    let text = match fs::read_to_string(path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(key_file_err(path, format!("cannot read: {e}"))),
    };
    parse_key_file(path, &text).map(Some)
}

/// Creates a new key file for `generation` at `path` without ever clobbering one: the text
/// is written and fsynced to `<path>.tmp`, hard-linked to `path` (fails if it exists), and
/// the directory is fsynced. Returns the loaded KEK.
fn create_key_file(path: &Path, generation: u32) -> Result<Kek, BlobError> {
    let err = |what: &str, e: io::Error| key_file_err(path, format!("cannot {what}: {e}"));
    let tmp = with_suffix(path, ".tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => tracing::warn!(path = %tmp.display(), "removed leftover temporary key file"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err("remove stale temporary file", e)),
    }
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    let text = Zeroizing::new(format!(
        "{FILE_TITLE}\ngeneration = {generation}\nkey = {}\n",
        Zeroizing::new(hex::encode(key.as_ref())).as_str()
    ));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| err("create", e))?;
    f.write_all(text.as_bytes()).map_err(|e| err("write", e))?;
    f.sync_all().map_err(|e| err("fsync", e))?;
    drop(f);
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked.map_err(|e| err("install", e))?;
    sync_dir(parent_dir(path)).map_err(|e| err("fsync directory of", e))?;
    Ok(Kek {
        generation,
        cipher: Aes256Gcm::new(key.as_ref().into()),
    })
}

impl Keyring {
    /// Loads the master key at `path`, creating generation 1 if it is missing and
    /// `create_if_missing`. A leftover `<path>.next` (an interrupted rotation) is loaded too.
    pub fn open(path: &Path, create_if_missing: bool) -> Result<Self, BlobError> {
        let current = match load_key_file(path)? {
            Some(k) => k,
            None if create_if_missing => {
                let k = create_key_file(path, 1)?;
                tracing::info!(path = %path.display(), "created master key, generation 1");
                k
            }
            None => {
                return Err(key_file_err(
                    path,
                    "not found (create it, or enable creation)",
                ))
            }
        };
        let next_path = with_suffix(path, ".next");
        let next = load_key_file(&next_path)?;
        if let Some(n) = &next {
            if Some(n.generation) != current.generation.checked_add(1) {
                return Err(key_file_err(
                    &next_path,
                    format!(
                        "generation {} does not follow current {}",
                        n.generation, current.generation
                    ),
                ));
            }
            tracing::warn!(
                generation = n.generation,
                "master key rotation was interrupted; finish it"
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            keks: RwLock::new(Keks { current, next }),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keks> {
        self.keks.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keks> {
        self.keks.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The generation `wrap` and `check_value` use (the pending one during a rotation).
    pub fn current_generation(&self) -> u32 {
        self.read().newest().generation
    }

    /// Whether a rotation was begun and not finished (also after a crash).
    pub fn pending_rotation(&self) -> bool {
        self.read().next.is_some()
    }

    /// Wraps `key` for `owner` under the newest loaded KEK.
    pub fn wrap(&self, key: &DataKey, owner: UserId) -> WrappedKey {
        wrap_with(self.read().newest(), key, owner)
    }

    /// Wraps `key` for `owner` and hands the wrapped key to `store`, which must persist it:
    /// a rotation cannot begin in between, so no key wrapped under a generation that is
    /// being retired reaches the store after the rotation has looked.
    pub fn wrap_and<T>(
        &self,
        key: &DataKey,
        owner: UserId,
        store: impl FnOnce(WrappedKey) -> T,
    ) -> T {
        let keks = self.read();
        store(wrap_with(keks.newest(), key, owner))
    }

    /// Unwraps `w` for `owner`. A wrong master key, owner or tampered bytes all read as
    /// `WrongMasterKey`: authentication cannot tell them apart.
    pub fn unwrap(&self, w: &WrappedKey, owner: UserId) -> Result<DataKey, BlobError> {
        let keks = self.read();
        let kek = keks.get(w.generation)?;
        let plain = open_sealed(&kek.cipher, &aad(owner.as_bytes(), w.generation), &w.bytes)
            .ok_or(BlobError::WrongMasterKey)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| BlobError::WrongMasterKey)?;
        Ok(DataKey(bytes))
    }

    /// A value to store beside the wrapped keys, so a wrong master key is detected at
    /// start-up. Store a fresh one after each rotation.
    pub fn check_value(&self) -> (u32, Vec<u8>) {
        let keks = self.read();
        let kek = keks.newest();
        let aad = aad(&[0u8; 16], kek.generation);
        (kek.generation, seal(&kek.cipher, &aad, CHECK_LABEL))
    }

    /// Verifies a stored check value against the loaded KEK of `generation`.
    pub fn verify_check(&self, generation: u32, bytes: &[u8]) -> Result<(), BlobError> {
        let keks = self.read();
        let kek = keks.get(generation)?;
        match open_sealed(&kek.cipher, &aad(&[0u8; 16], generation), bytes) {
            Some(p) if p.as_slice() == CHECK_LABEL => Ok(()),
            _ => Err(BlobError::WrongMasterKey),
        }
    }

    /// Step 1 of a rotation: durably writes `<path>.next` with generation + 1 and loads it.
    /// If a rotation is already pending, returns its generation and writes nothing.
    /// Why the key file cannot be rotated where it is, if it cannot: a systemd credential
    /// (read-only by design; rotate the credential's source with `keys rotate`), or a
    /// folder this process cannot write.
    pub fn not_rotatable(&self) -> Option<String> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        not_rotatable(&self.path, credentials.as_deref())
    }

    pub fn begin_rotation(&self) -> Result<u32, BlobError> {
        let mut keks = self.write();
        if let Some(n) = &keks.next {
            return Ok(n.generation);
        }
        let generation = keks
            .current
            .generation
            .checked_add(1)
            .ok_or_else(|| key_file_err(&self.path, "generation counter exhausted"))?;
        let kek = create_key_file(&with_suffix(&self.path, ".next"), generation)?;
        keks.next = Some(kek);
        tracing::info!(generation, "master key rotation begun");
        Ok(generation)
    }

    /// Step 2, only once every live data key is re-wrapped and durably stored: renames
    /// `<path>.next` over `<path>`, fsyncs the directory and forgets the old generation.
    pub fn finish_rotation(&self) -> Result<u32, BlobError> {
        let mut keks = self.write();
        if keks.next.is_none() {
            return Err(key_file_err(&self.path, "no key rotation in progress"));
        }
        let next_path = with_suffix(&self.path, ".next");
        fs::rename(&next_path, &self.path)
            .map_err(|e| key_file_err(&self.path, format!("cannot install next key: {e}")))?;
        // The rename happened: the old generation is gone whatever the fsync says.
        if let Some(next) = keks.next.take() {
            keks.current = next;
        }
        sync_dir(parent_dir(&self.path))
            .map_err(|e| key_file_err(&self.path, format!("cannot fsync directory: {e}")))?;
        tracing::info!(
            generation = keks.current.generation,
            "master key rotation finished"
        );
        Ok(keks.current.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("master.key")
    }

    #[test]
    fn a_systemd_credential_or_an_unwritable_folder_is_not_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        assert_eq!(not_rotatable(&path, None), None);
        assert_eq!(
            not_rotatable(&path, Some(Path::new("/run/credentials/x"))),
            None
        );
        let why = not_rotatable(&path, Some(dir.path())).unwrap();
        assert!(why.contains("systemd credential"), "{why}");
        let why = not_rotatable(&dir.path().join("missing/master.key"), None).unwrap();
        assert!(why.contains("cannot write"), "{why}");
        assert!(!path.with_extension("key.probe").exists());
    }

    #[test]
    fn creates_opens_and_refuses_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        match Keyring::open(&path, false) {
            Err(e @ BlobError::KeyFile { .. }) => {
                assert!(e.to_string().contains("master.key"), "{e}");
                assert_eq!(e.code(), "key_file");
            }
            other => panic!("expected KeyFile, got {other:?}"),
        }
        let ring = Keyring::open(&path, true).unwrap();
        assert_eq!(ring.current_generation(), 1);
        assert!(!ring.pending_rotation());
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("image-layered master key v1\ngeneration = 1\nkey = "));
        assert!(!dir.path().join("master.key.tmp").exists());

        // The same key comes back on reopen; create_if_missing never replaces a key.
        let owner = UserId::new();
        let dk = DataKey::generate();
        let w = ring.wrap(&dk, owner);
        assert_eq!((w.generation, w.bytes.len()), (1, 60));
        let again = Keyring::open(&path, true).unwrap();
        assert_eq!(again.unwrap(&w, owner).unwrap().expose(), dk.expose());
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn malformed_file_is_a_clear_error_without_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        let secret = "ab".repeat(31) + "a"; // 63 hex digits
        let cases = [
            String::new(),
            "hello\n".to_string(),
            format!("{FILE_TITLE}\ngeneration = 1\nkey = {secret}\n"),
            format!("{FILE_TITLE}\ngeneration = 0\nkey = {secret}b\n"),
            format!("{FILE_TITLE}\ngeneration = 1\n"),
            format!("{FILE_TITLE}\ngeneration = 1\nkey = {secret}b\nkey = {secret}b\n"),
        ];
        let write = |text: &str| {
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        };
        for text in cases {
            write(&text);
            let err = Keyring::open(&path, true).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, BlobError::KeyFile { .. }), "{msg}");
            assert!(msg.contains("master.key"), "{msg}");
            assert!(!msg.contains(&secret[..16]), "key leaked: {msg}");
        }
        write(&format!("{FILE_TITLE}\ngeneration = 3\nkey = {secret}b\n"));
        assert_eq!(Keyring::open(&path, false).unwrap().current_generation(), 3);
    }

    #[test]
    fn a_key_file_others_can_read_or_write_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        Keyring::open(&path, true).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o700] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let msg = Keyring::open(&path, false).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
        }
        for mode in [0o600, 0o400] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            Keyring::open(&path, false).unwrap();
        }
    }

    #[test]
    fn wrong_master_key_or_owner_fails_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let a = Keyring::open(&dir.path().join("a.key"), true).unwrap();
        let b = Keyring::open(&dir.path().join("b.key"), true).unwrap();
        let owner = UserId::new();
        let w = a.wrap(&DataKey::generate(), owner);
        assert!(matches!(
            b.unwrap(&w, owner),
            Err(BlobError::WrongMasterKey)
        ));
        assert!(matches!(
            a.unwrap(&w, UserId::new()),
            Err(BlobError::WrongMasterKey)
        ));
        let mut tampered = w.clone();
        tampered.bytes[20] ^= 1;
        assert!(matches!(
            a.unwrap(&tampered, owner),
            Err(BlobError::WrongMasterKey)
        ));
        tampered.bytes.truncate(10);
        assert!(matches!(
            a.unwrap(&tampered, owner),
            Err(BlobError::WrongMasterKey)
        ));

        let (generation, check) = a.check_value();
        assert_eq!(generation, 1);
        a.verify_check(generation, &check).unwrap();
        assert!(matches!(
            b.verify_check(generation, &check),
            Err(BlobError::WrongMasterKey)
        ));
        assert!(matches!(
            a.verify_check(2, &check),
            Err(BlobError::UnknownGeneration(2))
        ));
        let mut bad = check.clone();
        bad[NONCE_LEN] ^= 1;
        assert!(matches!(
            a.verify_check(generation, &bad),
            Err(BlobError::WrongMasterKey)
        ));
    }

    #[test]
    fn rotation_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        let ring = Keyring::open(&path, true).unwrap();
        let owner = UserId::new();
        let dk = DataKey::generate();
        let old = ring.wrap(&dk, owner);

        assert_eq!(ring.begin_rotation().unwrap(), 2);
        assert_eq!(
            ring.begin_rotation().unwrap(),
            2,
            "idempotent while pending"
        );
        assert!(ring.pending_rotation());
        let next_path = dir.path().join("master.key.next");
        assert_eq!(
            fs::metadata(&next_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let rewrapped = ring.wrap(&ring.unwrap(&old, owner).unwrap(), owner);
        assert_eq!(rewrapped.generation, 2);
        assert_eq!(ring.current_generation(), 2);
        assert_eq!(ring.finish_rotation().unwrap(), 2);
        assert!(!ring.pending_rotation() && !next_path.exists());
        assert!(ring.finish_rotation().is_err());

        let reopened = Keyring::open(&path, false).unwrap();
        assert_eq!(reopened.current_generation(), 2);
        assert_eq!(
            reopened.unwrap(&rewrapped, owner).unwrap().expose(),
            dk.expose()
        );
        assert!(matches!(
            reopened.unwrap(&old, owner),
            Err(BlobError::UnknownGeneration(1))
        ));
        assert!(matches!(
            ring.unwrap(&old, owner),
            Err(BlobError::UnknownGeneration(1))
        ));
    }

    #[test]
    fn crash_between_begin_and_finish_keeps_both_generations() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        let owner = UserId::new();
        let dk = DataKey::generate();
        let (old, new) = {
            let ring = Keyring::open(&path, true).unwrap();
            let old = ring.wrap(&dk, owner);
            ring.begin_rotation().unwrap();
            (old, ring.wrap(&dk, owner))
            // "crash": dropped without finish_rotation
        };
        let ring = Keyring::open(&path, false).unwrap();
        assert!(ring.pending_rotation());
        assert_eq!(ring.current_generation(), 2);
        assert_eq!(ring.unwrap(&old, owner).unwrap().expose(), dk.expose());
        assert_eq!(ring.unwrap(&new, owner).unwrap().expose(), dk.expose());
        assert_eq!(ring.begin_rotation().unwrap(), 2);
        ring.finish_rotation().unwrap();
        let ring = Keyring::open(&path, false).unwrap();
        assert!(!ring.pending_rotation());
        assert_eq!(ring.unwrap(&new, owner).unwrap().expose(), dk.expose());

        // A `.next` that does not follow the current generation is refused.
        fs::write(
            dir.path().join("master.key.next"),
            fs::read_to_string(&path).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            Keyring::open(&path, false),
            Err(BlobError::KeyFile { .. })
        ));
    }

    #[test]
    fn secrets_stay_out_of_debug_and_wrapped_keys_serialize() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        let ring = Keyring::open(&path, true).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let key_hex = text.lines().last().unwrap().trim_start_matches("key = ");
        assert_eq!(key_hex.len(), 64);
        assert!(!format!("{ring:?}").contains(&key_hex[..16]));
        let dk = DataKey::generate();
        assert_eq!(format!("{dk:?}"), "DataKey(<redacted>)");
        let w = ring.wrap(&dk, UserId::new());
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<WrappedKey>(&json).unwrap(), w);
    }
}
