//! The vault: what images and documents share to keep a member's files — the store, the
//! encrypted blob directory and the master keyring — and the few operations both need:
//! unwrapping a member's data key, writing a blob under it (fsynced before it is referred
//! to), reading one back, and unlinking blobs after the metadata that referred to them is
//! gone and flushed (a failed unlink is left to the start-up reconciler, never an error).

use std::io::Read;
use std::sync::Arc;

use crate::blobs::{BlobError, BlobStore, DataKey, Keyring};
use crate::ids::{BlobId, DocumentId, UserId};
use crate::store::{DocumentRecord, Store, StoreError};

/// Errors of the vault's operations.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("member {0} has no data key")]
    NoDataKey(UserId),
    #[error("a blocking task failed: {0}")]
    Task(String),
}

impl VaultError {
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::Store(e) => e.code(),
            VaultError::Blob(e) => e.code(),
            VaultError::NoDataKey(_) => "no_data_key",
            VaultError::Task(_) => "internal_error",
        }
    }
}

/// Store, blobs and keyring; cheap to clone.
#[derive(Clone)]
pub struct Vault {
    pub(crate) store: Store,
    pub(crate) blobs: Arc<BlobStore>,
    pub(crate) keyring: Arc<Keyring>,
}

impl Vault {
    pub fn new(store: Store, blobs: Arc<BlobStore>, keyring: Arc<Keyring>) -> Self {
        Self {
            store,
            blobs,
            keyring,
        }
    }

    /// The member's unwrapped data key.
    pub fn data_key(&self, owner: UserId) -> Result<DataKey, VaultError> {
        let wrapped = self
            .store
            .data_key(owner)?
            .ok_or(VaultError::NoDataKey(owner))?;
        Ok(self.keyring.unwrap(&wrapped, owner)?)
    }

    /// Encrypts `bytes` as a new blob of `owner` under the current master-key generation and
    /// makes it durable. Blocking.
    pub fn put(&self, key: &DataKey, owner: UserId, bytes: &[u8]) -> Result<BlobId, BlobError> {
        let blob = BlobId::new();
        self.blobs.put(
            key,
            self.keyring.current_generation(),
            owner,
            blob,
            &mut &bytes[..],
        )?;
        Ok(blob)
    }

    /// The whole plaintext of a blob. Blocking.
    pub fn read_all(
        &self,
        key: &DataKey,
        owner: UserId,
        blob: BlobId,
    ) -> Result<Vec<u8>, BlobError> {
        self.blobs.read_all(key, owner, blob)
    }

    /// A decrypting reader over one of the member's blobs.
    pub fn open_reader(
        &self,
        owner: UserId,
        blob: BlobId,
    ) -> Result<Box<dyn Read + Send>, VaultError> {
        let key = self.data_key(owner)?;
        Ok(Box::new(self.blobs.open_reader(&key, owner, blob)?))
    }

    /// Removes blobs whose metadata is already gone (blocking); a failure is logged and left
    /// to the reconciler.
    pub fn unlink_blocking(&self, owner: UserId, doomed: impl IntoIterator<Item = BlobId>) {
        for b in doomed {
            if let Err(e) = self.blobs.delete(owner, b) {
                tracing::warn!(blob = %b, "could not remove blob file (the reconciler will): {e}");
            }
        }
    }

    /// [`unlink_blocking`](Self::unlink_blocking) on the blocking pool.
    pub async fn unlink(&self, owner: UserId, doomed: Vec<BlobId>) -> Result<(), VaultError> {
        let vault = self.clone();
        tokio::task::spawn_blocking(move || vault.unlink_blocking(owner, doomed))
            .await
            .map_err(|e| VaultError::Task(e.to_string()))
    }

    /// Deletes a document whoever owns it: its record (flushed) first, then every layer blob
    /// of every state. `Ok(None)` if it is already gone.
    pub async fn delete_document(
        &self,
        id: DocumentId,
    ) -> Result<Option<DocumentRecord>, VaultError> {
        let store = self.store.clone();
        let doc = tokio::task::spawn_blocking(move || store.delete_document(id))
            .await
            .map_err(|e| VaultError::Task(e.to_string()))??;
        let Some(doc) = doc else {
            return Ok(None);
        };
        // its finished edit jobs (their ops name layers) go with it
        self.store
            .delete_finished_jobs(doc.owner, |k| k.on_document(id))?;
        self.store.flush().await?;
        self.unlink(doc.owner, doc.blobs().collect()).await?;
        Ok(Some(doc))
    }
}
