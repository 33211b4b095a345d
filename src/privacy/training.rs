//! `image-layered training export --out DIR`: the originals of exactly the members whose
//! `training` consent is on at the moment it runs (P9), decrypted to
//! `DIR/<member id>/<image id>.<ext>`; nobody else's image is even read. The export is
//! recorded in the audit log with its counts.

use std::path::{Path, PathBuf};

use super::PrivacyService;
use crate::audit::Actor;
use crate::engine::export::write_atomic;

/// What a training export wrote.
#[derive(Debug, Default)]
pub struct TrainingExport {
    pub members: usize,
    pub images: usize,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    #[error(transparent)]
    Blob(#[from] crate::blobs::BlobError),
    #[error("cannot write {0}")]
    Write(String),
}

impl PrivacyService {
    /// Copies the originals of consenting members under `out` (blocking).
    pub fn training_export(&self, out: &Path) -> Result<TrainingExport, TrainingError> {
        let store = self.store();
        let mut done = TrainingExport::default();
        for user in store.list_users()? {
            if !store.consents(user.id)?.training {
                continue;
            }
            let images = store.list_images(user.id)?;
            if images.is_empty() {
                continue;
            }
            done.members += 1;
            let key = self.vault.data_key(user.id)?;
            let dir = out.join(user.id.to_string());
            std::fs::create_dir_all(&dir)
                .map_err(|e| TrainingError::Write(format!("{}: {e}", dir.display())))?;
            for img in images {
                let bytes = self.vault.read_all(&key, user.id, img.original_blob)?;
                let path = dir.join(format!("{}.{}", img.id, img.format.extension()));
                write_atomic(&path, &bytes).map_err(|e| TrainingError::Write(e.to_string()))?;
                done.images += 1;
                done.files.push(path);
            }
        }
        self.audit.record(
            Actor::Cli,
            "training.export",
            "training",
            serde_json::json!({"members": done.members, "images": done.images}),
        )?;
        self.store().flush_blocking()?;
        Ok(done)
    }
}
