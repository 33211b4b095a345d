//! Backup and restore of a data dir, still encrypted. A backup is a tar: `manifest.json`
//! (release, schema, counts, the dump's SHA-256), `store.dump` (every sled record as stored:
//! sealed fields stay sealed, data keys stay wrapped) and `blobs/<owner>/<id>.blob` (the
//! encrypted files, byte for byte). It is consistent while the studio serves: the store is
//! dumped while no transaction can commit, and in that same moment every blob file is
//! hard-linked into a staging folder, so a file deleted afterwards is still in the backup and
//! every file the dump refers to is there (a file is written before the record that names
//! it). Files the dump does not name are removed by the start-up reconciler after a restore.
//!
//! The master key is not in a backup — a stolen backup opens nothing — so a restore needs
//! the studio's master key back in place before it starts. A restore goes into a fresh data
//! dir only, through a staging folder renamed into place at the end.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{dump, Store, SCHEMA_VERSION};

/// What a backup holds, as its `manifest.json` says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub release: String,
    pub schema: u32,
    pub trees: u64,
    pub records: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub store_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("backup: {0}")]
    Io(#[from] io::Error),
    #[error("backup: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("not a usable backup: {0}")]
    Invalid(String),
    #[error("{0}")]
    NotEmpty(String),
}

/// Removes a staging folder however the work ends.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn staging(data_dir: &Path, what: &str) -> io::Result<Staging> {
    let dir = data_dir.join(format!(".{what}-{}", uuid::Uuid::new_v4().simple()));
    fs::create_dir_all(&dir)?;
    Ok(Staging(dir))
}

/// Hard-links every `.blob` file under `blobs` into `to` (same layout); (count, bytes).
fn link_blobs(blobs: &Path, to: &Path) -> io::Result<(u64, u64)> {
    let (mut n, mut bytes) = (0, 0);
    let Ok(owners) = fs::read_dir(blobs) else {
        return Ok((0, 0));
    };
    for owner in owners {
        let owner = owner?;
        if !owner.file_type()?.is_dir() {
            continue;
        }
        let target = to.join(owner.file_name());
        fs::create_dir_all(&target)?;
        for file in fs::read_dir(owner.path())? {
            let file = file?;
            if file.file_name().to_string_lossy().ends_with(".blob") {
                fs::hard_link(file.path(), target.join(file.file_name()))?;
                n += 1;
                bytes += file.metadata()?.len();
            }
        }
    }
    Ok((n, bytes))
}

/// Writes a backup of the store and the blob files under `data_dir/blobs` to `out`.
pub fn write(store: &Store, data_dir: &Path, out: impl Write) -> Result<Manifest, BackupError> {
    let stage = staging(data_dir, "backup")?;
    let dump_path = stage.0.join("store.dump");
    let linked = stage.0.join("blobs");
    let mut dump_file = io::BufWriter::new(fs::File::create(&dump_path)?);
    let (stats, links) = store.dump(&mut dump_file, || {
        link_blobs(&data_dir.join("blobs"), &linked)
    })?;
    let (blobs, blob_bytes) = links?;
    dump_file.flush()?;
    drop(dump_file);
    let mut hash = Sha256::new();
    io::copy(&mut fs::File::open(&dump_path)?, &mut hash)?;
    let manifest = Manifest {
        format: 1,
        release: env!("CARGO_PKG_VERSION").into(),
        schema: store.schema_version()?,
        trees: stats.trees,
        records: stats.records,
        blobs,
        blob_bytes,
        store_sha256: hex::encode(hash.finalize()),
    };
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    tar.append_data(&mut header, "manifest.json", json.as_slice())?;
    tar.append_path_with_name(&dump_path, "store.dump")?;
    if linked.exists() {
        tar.append_dir_all("blobs", &linked)?;
    }
    tar.into_inner()?.flush()?;
    Ok(manifest)
}

/// Whether `path` (inside a backup) is `blobs/<32 hex>/<32 hex>.blob`.
fn is_blob_path(path: &Path) -> bool {
    let parts: Vec<_> = path.iter().map(|p| p.to_string_lossy()).collect();
    let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    matches!(parts.as_slice(), [b, owner, file]
        if b == "blobs" && hex32(owner) && file.strip_suffix(".blob").is_some_and(hex32))
}

/// Restores the backup in `input` into `data_dir`, which must hold no store and no blobs.
pub fn restore(input: impl Read, data_dir: &Path) -> Result<Manifest, BackupError> {
    for part in ["db", "blobs"] {
        let p = data_dir.join(part);
        if p.exists() && fs::read_dir(&p)?.next().is_some() {
            return Err(BackupError::NotEmpty(format!(
                "{} is not empty: restore only into a fresh data dir (move the old one aside first)",
                p.display()
            )));
        }
    }
    fs::create_dir_all(data_dir)?;
    let stage = staging(data_dir, "restore")?;
    let mut manifest: Option<Manifest> = None;
    let mut dumped = false;
    let mut blobs = 0;
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(BackupError::Invalid(format!(
                "{} is not a file",
                path.display()
            )));
        }
        if path == Path::new("manifest.json") {
            manifest = Some(read_manifest(&mut entry)?);
        } else if path == Path::new("store.dump") {
            let Some(m) = &manifest else {
                return Err(BackupError::Invalid(
                    "store.dump before manifest.json".into(),
                ));
            };
            let mut reader = HashingReader {
                inner: &mut entry,
                hash: Sha256::new(),
            };
            let stats = dump::load(&mut reader, &stage.0.join("db"))?;
            io::copy(&mut reader, &mut io::sink())?;
            if hex::encode(reader.hash.finalize()) != m.store_sha256 || stats.records != m.records {
                return Err(BackupError::Invalid(
                    "store.dump does not match its manifest".into(),
                ));
            }
            dumped = true;
        } else if is_blob_path(&path) {
            let to = stage.0.join(&path);
            fs::create_dir_all(to.parent().expect("blob paths have a folder"))?;
            let mut file = fs::File::create(&to)?;
            io::copy(&mut entry, &mut file)?;
            file.sync_all()?;
            blobs += 1;
        } else {
            return Err(BackupError::Invalid(format!(
                "unexpected {}",
                path.display()
            )));
        }
    }
    let manifest = manifest.ok_or_else(|| BackupError::Invalid("no manifest.json".into()))?;
    if !dumped || blobs != manifest.blobs {
        return Err(BackupError::Invalid(format!(
            "incomplete: {blobs} of {} files{}",
            manifest.blobs,
            if dumped { "" } else { ", no store.dump" }
        )));
    }
    for part in ["db", "blobs"] {
        let (from, to) = (stage.0.join(part), data_dir.join(part));
        if to.exists() {
            fs::remove_dir(&to)?; // empty, checked above
        }
        if from.exists() {
            fs::rename(from, to)?;
        }
    }
    fs::File::open(data_dir)?.sync_all()?;
    Ok(manifest)
}

/// The `manifest.json` entry, refused when a newer release wrote it.
fn read_manifest(entry: &mut impl Read) -> Result<Manifest, BackupError> {
    let mut json = Vec::new();
    entry.take(1 << 20).read_to_end(&mut json)?;
    let m: Manifest = serde_json::from_slice(&json)
        .map_err(|e| BackupError::Invalid(format!("manifest.json: {e}")))?;
    if m.format != 1 || m.schema > SCHEMA_VERSION {
        return Err(BackupError::Invalid(format!(
            "made by image-layered {} (schema {}), newer than this build (schema {SCHEMA_VERSION}); upgrade first",
            m.release, m.schema
        )));
    }
    Ok(m)
}

/// Reads a whole archive from `input` without unpacking it: its manifest, once every entry
/// the manifest announces (the dump and each blob file) has come through, so a cut-off
/// stream is an error.
pub fn check(input: impl Read) -> Result<Manifest, BackupError> {
    let mut archive = tar::Archive::new(input);
    let mut manifest = None;
    let mut files = 0u64;
    let cut = |e: io::Error| BackupError::Invalid(format!("cut off: {e}"));
    for entry in archive.entries()? {
        let mut entry = entry.map_err(cut)?;
        if entry.path()?.as_ref() == Path::new("manifest.json") {
            manifest = Some(read_manifest(&mut entry)?);
        } else {
            io::copy(&mut entry, &mut io::sink()).map_err(cut)?;
            files += u64::from(entry.header().entry_type().is_file());
        }
    }
    let m = manifest.ok_or_else(|| BackupError::Invalid("no manifest.json".into()))?;
    // the dump and one entry per blob file
    if files != m.blobs + 1 {
        return Err(BackupError::Invalid(format!(
            "cut off: {} of {} files",
            files.saturating_sub(1),
            m.blobs
        )));
    }
    Ok(m)
}

/// Passes bytes through, hashing them.
struct HashingReader<'a, R> {
    inner: &'a mut R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_checked_whole_and_a_cut_one_is_refused() {
        let (dir, store) = crate::store::temp_store();
        let owner = "a".repeat(32);
        let blobs = dir.path().join("blobs").join(&owner);
        fs::create_dir_all(&blobs).unwrap();
        fs::write(
            blobs.join(format!("{}.blob", "0".repeat(32))),
            vec![9u8; 5000],
        )
        .unwrap();
        let mut archive = Vec::new();
        let written = write(&store, dir.path(), &mut archive).unwrap();
        assert_eq!((written.blobs, written.blob_bytes), (1, 5000));
        assert_eq!(check(archive.as_slice()).unwrap(), written);
        assert!(check(&archive[..archive.len() / 2]).is_err());
    }

    #[test]
    fn blob_paths_are_checked() {
        let ok = format!("blobs/{}/{}.blob", "a".repeat(32), "0".repeat(32));
        assert!(is_blob_path(Path::new(&ok)));
        for bad in [
            "blobs/../x.blob",
            "../blobs/x/y.blob",
            "/etc/passwd",
            "blobs/abc/def.blob",
        ] {
            assert!(!is_blob_path(Path::new(bad)), "{bad}");
        }
    }
}
