//! Atomic installation into the models directory: staged temporary files that become the
//! real file only by `fsync` + `rename`, and the `.installed.json` record of what was
//! installed.
//!
//! Invariants: a staged file lives next to its destination (same file system, so the
//! rename is atomic) under a name starting with [`TEMP_PREFIX`], and is removed when
//! dropped uncommitted — a failed fetch leaves no partial file behind; a destination is
//! either absent, its old content, or the complete verified new content. The record is
//! replaced the same way.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::error::ModelError;

/// Name prefix of every temporary file this module creates.
pub(crate) const TEMP_PREFIX: &str = ".il-tmp-";
/// The record of installed artifacts, at the root of the models directory.
pub(crate) const RECORD_FILE: &str = ".installed.json";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file that will become `dest`.
#[derive(Debug)]
pub(crate) struct Staged {
    pub path: PathBuf,
    pub dest: PathBuf,
    pub file: File,
    committed: bool,
}

impl Staged {
    /// Creates an empty temporary file beside `dest` (creating its directory).
    pub(crate) fn create(dest: &Path) -> Result<Staged, ModelError> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
        let file_name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!(
            "{TEMP_PREFIX}{file_name}-{}-{n}",
            std::process::id()
        ));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| ModelError::io(&path, e))?;
        Ok(Staged {
            path,
            dest: dest.to_path_buf(),
            file,
            committed: false,
        })
    }

    /// Flushes the content to disk; call before [`Staged::commit`].
    pub(crate) fn sync(&mut self) -> Result<(), ModelError> {
        self.file
            .flush()
            .map_err(|e| ModelError::io(&self.path, e))?;
        self.file
            .sync_all()
            .map_err(|e| ModelError::io(&self.path, e))
    }

    /// Renames the (synced) file onto its destination and syncs the directory.
    pub(crate) fn commit(mut self) -> Result<(), ModelError> {
        fs::rename(&self.path, &self.dest).map_err(|e| ModelError::io(&self.dest, e))?;
        self.committed = true;
        sync_dir(&self.dest);
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Best-effort fsync of the directory holding `path` (makes a rename durable).
fn sync_dir(path: &Path) {
    if let Some(parent) = path.parent() {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

/// Removes temporary files left in `dir` by an interrupted fetch.
pub(crate) fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// One line of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordEntry {
    pub version: String,
    pub sha256: String,
    pub size: u64,
    pub install: String,
}

/// `.installed.json`: artifact name → what was installed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub artifacts: BTreeMap<String, RecordEntry>,
}

impl Record {
    /// Reads the record; a missing or unreadable record is empty (files are then
    /// re-verified by the next fetch).
    pub(crate) fn load(dir: &Path) -> Record {
        fs::read(dir.join(RECORD_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Replaces the record atomically.
    pub(crate) fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let dest = dir.join(RECORD_FILE);
        let mut staged = Staged::create(&dest)?;
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| ModelError::io(&dest, std::io::Error::other(e)))?;
        staged
            .file
            .write_all(&json)
            .map_err(|e| ModelError::io(&staged.path, e))?;
        staged.sync()?;
        staged.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_file_is_removed_unless_committed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/model.onnx");
        let mut staged = Staged::create(&dest).unwrap();
        staged.file.write_all(b"abc").unwrap();
        let temp = staged.path.clone();
        assert!(temp.exists());
        drop(staged);
        assert!(!temp.exists());
        assert!(!dest.exists());

        let mut staged = Staged::create(&dest).unwrap();
        staged.file.write_all(b"abc").unwrap();
        staged.sync().unwrap();
        staged.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"abc");
        assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn record_round_trips_and_tolerates_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Record::load(dir.path()), Record::default());
        let mut record = Record::default();
        record.artifacts.insert(
            "isnet".into(),
            RecordEntry {
                version: "1.4.5".into(),
                sha256: "ab".repeat(32),
                size: 3,
                install: "isnet.onnx".into(),
            },
        );
        record.save(dir.path()).unwrap();
        assert_eq!(Record::load(dir.path()), record);
        fs::write(dir.path().join(RECORD_FILE), b"{not json").unwrap();
        assert_eq!(Record::load(dir.path()), Record::default());
    }

    #[test]
    fn stale_temps_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(format!("{TEMP_PREFIX}x-1-0")), b"partial").unwrap();
        fs::write(dir.path().join("keep.onnx"), b"ok").unwrap();
        remove_stale_temps(dir.path());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("keep.onnx")]);
    }
}
