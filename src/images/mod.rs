//! Uploaded images as a service: accept an upload (format sniffed from the bytes, pixel limits
//! checked from the header before decoding, EXIF read, orientation applied), store the
//! original encrypted under the owner's data key, record it with a temporary TTL and queue its
//! thumbnail, all acknowledged only after the blob is fsynced and the store flushed. Reads are
//! owner-checked: another member's image does not exist. Deletion removes metadata first
//! (flushed), then the blobs; deleting an image deletes every document made from it. The
//! thumbnail and cutout jobs live here too.

pub mod cutout;
mod thumbnail;

use std::io::Read;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::audit::{Actor, AuditLog};
use crate::billing::Pricing;
use crate::blobs::{BlobError, DataKey};
use crate::clock::{unix, SharedClock};
use crate::config::{Config, RetentionConfig};
use crate::engine::{self, DecodeError, DecodeLimits};
use crate::ids::{BlobId, ImageId, JobId, UserId};
use crate::jobs::{JobFailure, JobQueue};
use crate::store::{ImageRecord, ImageState, JobKind, Plan, StoreError};
use crate::vault::{Vault, VaultError};

pub use thumbnail::THUMBNAIL_SIDE;

/// The inference service, once the models are loaded (shared with the app).
pub type InferenceSlot = Arc<std::sync::OnceLock<Arc<crate::inference::Inference>>>;

/// What can go wrong with images; `crate::error` maps each to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the plan's storage ({limit} bytes of originals) is full; delete images or wait for temporary uploads to expire")]
    StorageFull { limit: u64 },
    #[error(transparent)]
    Enqueue(#[from] crate::jobs::EnqueueError),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("every upload slot is busy; try again in a few seconds")]
    Busy { retry_after: u64 },
    #[error("the models are not loaded yet; see /readyz (an operator runs `image-layered models fetch`)")]
    ModelsNotReady,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{context}: {message}")]
    Internal {
        context: &'static str,
        message: String,
    },
}

impl ImageError {
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::NotFound(_) => "not_found",
            ImageError::Busy { .. } => "busy",
            ImageError::ModelsNotReady => "models_not_ready",
            ImageError::Decode(e) => e.code(),
            ImageError::Vault(e) => e.code(),
            ImageError::Store(e) => e.code(),
            ImageError::Enqueue(e) => e.code(),
            ImageError::StorageFull { .. } => "storage_full",
            ImageError::Blob(e) => e.code(),
            ImageError::Internal { .. } => "internal_error",
        }
    }

    pub(crate) fn internal(context: &'static str, e: impl std::fmt::Display) -> Self {
        ImageError::Internal {
            context,
            message: e.to_string(),
        }
    }
}

/// Uploads, reads and deletes of images; shared by the HTTP handlers, jobs and the sweep.
#[derive(Clone)]
pub struct ImageService {
    pub(crate) vault: Vault,
    clock: SharedClock,
    jobs: JobQueue,
    pub(crate) limits: DecodeLimits,
    retention: RetentionConfig,
    decode_slots: Arc<Semaphore>,
    /// `uploads.slot_wait_secs`.
    slot_wait_secs: u64,
    /// `uploads.max_stack_bytes`: what an imported layered file may decode to.
    pub(crate) max_stack_bytes: u64,
    pub(crate) inference: InferenceSlot,
    audit: AuditLog,
    pricing: Pricing,
}

impl ImageService {
    pub fn new(
        vault: Vault,
        clock: SharedClock,
        jobs: JobQueue,
        inference: InferenceSlot,
        audit: AuditLog,
        config: &Config,
    ) -> Self {
        let u = &config.uploads;
        Self {
            vault,
            clock,
            jobs,
            limits: DecodeLimits {
                max_pixels: u.max_pixels,
                max_side: u.max_side,
                ..DecodeLimits::default()
            },
            retention: config.retention.clone(),
            decode_slots: Arc::new(Semaphore::new(u.decode_concurrency.max(1))),
            slot_wait_secs: u.slot_wait_secs,
            max_stack_bytes: u.max_stack_bytes,
            inference,
            audit,
            pricing: Pricing::new(config),
        }
    }

    /// A decode slot for an upload or import whose body is not read yet: waits at most
    /// `uploads.slot_wait_secs`, then `Busy` (503 with `Retry-After`). Holding it before the
    /// body is read bounds the bodies in memory to the number of slots.
    pub async fn upload_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ImageError> {
        let wait = std::time::Duration::from_secs(self.slot_wait_secs);
        match tokio::time::timeout(wait, self.decode_slots.clone().acquire_owned()).await {
            Ok(permit) => permit.map_err(|e| ImageError::internal("decode slots", e)),
            Err(_) => Err(ImageError::Busy { retry_after: 5 }),
        }
    }

    /// One of the upload decode slots (an import holds one for its whole run).
    pub(crate) async fn decode_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ImageError> {
        self.decode_slots
            .acquire()
            .await
            .map_err(|e| ImageError::internal("decode slots", e))
    }

    /// For a job on `image_id`: its record, its owner's data key and the decoded original.
    /// A deleted image or a damaged original aborts the job; a transient read error retries.
    pub(crate) fn load_for_job(
        &self,
        image_id: ImageId,
    ) -> Result<(ImageRecord, DataKey, engine::Decoded), JobFailure> {
        let img = self
            .vault
            .store
            .get_image(image_id)
            .map_err(|e| JobFailure::Retry(e.to_string()))?
            .ok_or_else(image_deleted)?;
        let key = self
            .vault
            .data_key(img.owner)
            .map_err(|e| JobFailure::from(ImageError::from(e)))?;
        let bytes = self
            .vault
            .read_all(&key, img.owner, img.original_blob)
            .map_err(|e| match e {
                BlobError::Io(io) => JobFailure::Retry(io.to_string()),
                other => JobFailure::abort(other.code(), other.to_string()),
            })?;
        let decoded = engine::decode(&bytes, &self.limits)
            .map_err(|e| JobFailure::abort(e.code(), e.to_string()))?;
        Ok((img, key, decoded))
    }

    /// Validates, stores and records an upload; queues its thumbnail.
    pub async fn upload(&self, owner: UserId, bytes: Vec<u8>) -> Result<ImageRecord, ImageError> {
        let _slot = self.decode_slot().await?;
        self.upload_in_slot(owner, bytes).await
    }

    /// [`upload`](Self::upload) for a caller already holding a decode slot.
    pub(crate) async fn upload_in_slot(
        &self,
        owner: UserId,
        bytes: Vec<u8>,
    ) -> Result<ImageRecord, ImageError> {
        let this = self.clone();
        let rec = tokio::task::spawn_blocking(move || this.store_upload(owner, &bytes))
            .await
            .map_err(|e| ImageError::internal("upload task", e))??;
        self.vault.store.flush().await?;
        self.jobs.notify();
        Ok(rec)
    }

    fn store_upload(&self, owner: UserId, bytes: &[u8]) -> Result<ImageRecord, ImageError> {
        let user = self
            .vault
            .store
            .get_user(owner)?
            .ok_or(ImageError::NotFound("member"))?;
        let plan = self.pricing.limits(user.plan);
        let stored: u64 = self
            .vault
            .store
            .list_images(owner)?
            .iter()
            .map(|i| i.bytes)
            .sum();
        if stored + bytes.len() as u64 > plan.max_stored_bytes {
            return Err(ImageError::StorageFull {
                limit: plan.max_stored_bytes,
            });
        }
        let limits = DecodeLimits {
            max_pixels: self.pricing.max_pixels(user.plan),
            ..self.limits
        };
        let decoded = engine::decode(bytes, &limits)?;
        let key = self.vault.data_key(owner)?;
        let now = unix(self.clock.now());
        let id = ImageId::new();
        let blob = self.vault.put(&key, owner, bytes)?;
        let mut job = self
            .jobs
            .new_job(owner, JobKind::Thumbnail { image_id: id });
        job.not_before = now;
        let rec = ImageRecord {
            id,
            owner,
            format: decoded.format,
            width: decoded.width,
            height: decoded.height,
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
            exif: decoded.exif,
            state: ImageState::Temporary,
            created_at: now,
            expires_at: now + self.retention.temporary_ttl().as_secs() as i64,
            original_blob: blob,
            thumbnail_blob: None,
            thumbnail_job: Some(job.id),
            cutout_blob: None,
        };
        if let Err(e) = self.vault.store.insert_image(&rec, Some(&job)) {
            self.vault.unlink_blocking(owner, [blob]);
            return Err(e.into());
        }
        self.jobs.expire_later(&job)?;
        Ok(rec)
    }

    /// The member's image; another member's is `NotFound`.
    pub fn get(&self, owner: UserId, id: ImageId) -> Result<ImageRecord, ImageError> {
        self.vault
            .store
            .get_image(id)?
            .filter(|i| i.owner == owner)
            .ok_or(ImageError::NotFound("image"))
    }

    pub fn list(&self, owner: UserId) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.vault.store.list_images(owner)?)
    }

    /// A decrypting reader over one of the image's blobs.
    pub fn open_blob(
        &self,
        owner: UserId,
        blob: BlobId,
    ) -> Result<Box<dyn Read + Send>, ImageError> {
        Ok(self.vault.open_reader(owner, blob)?)
    }

    /// An uploaded image of the member's, decoded (replacement pictures, brush masks).
    /// Blocking.
    pub fn load_decoded(&self, owner: UserId, id: ImageId) -> Result<engine::Decoded, ImageError> {
        let rec = self.get(owner, id)?;
        let key = self.vault.data_key(owner)?;
        let bytes = self.vault.read_all(&key, owner, rec.original_blob)?;
        Ok(engine::decode(&bytes, &self.limits)?)
    }

    /// Deletes the member's image and every document made from it: metadata (flushed) first,
    /// then the blobs; recorded in the audit log as done by `actor`.
    pub async fn delete(&self, actor: Actor, owner: UserId, id: ImageId) -> Result<(), ImageError> {
        self.get(owner, id)?;
        if self.delete_any(id).await?.is_some() {
            self.audit.record(
                actor,
                "image.delete",
                format!("image:{id}"),
                serde_json::Value::Null,
            )?;
            self.vault.store.flush().await?;
        }
        Ok(())
    }

    /// Deletes an image whoever owns it (sweep, account deletion), with every document made
    /// from it. `Ok(None)` if already gone.
    pub async fn delete_any(&self, id: ImageId) -> Result<Option<ImageRecord>, ImageError> {
        for doc in self.vault.store.documents_of_image(id)? {
            self.vault.delete_document(doc.id).await?;
        }
        let Some(rec) = self.vault.store.delete_image(id)? else {
            return Ok(None);
        };
        // a decomposition that stored its document after the first look (and patched the
        // image before it went) left one: look again now that no new one can stay (see
        // `DocumentService::store_stack`)
        for doc in self.vault.store.documents_of_image(id)? {
            self.vault.delete_document(doc.id).await?;
        }
        // its finished jobs (kind, result) go with it; unfinished ones end and expire
        self.vault
            .store
            .delete_finished_jobs(rec.owner, |k| k.on_image(id))?;
        self.vault.store.flush().await?;
        self.vault.unlink(rec.owner, rec.blobs().collect()).await?;
        Ok(Some(rec))
    }

    /// How long a processed result of a member on `plan` is kept, in seconds.
    fn plan_retention_secs(&self, plan: Plan) -> i64 {
        let ttl = match plan {
            Plan::Free => self.retention.free_ttl(),
            Plan::Pro => self.retention.pro_ttl(),
            Plan::Studio => self.retention.studio_ttl(),
        };
        ttl.as_secs() as i64
    }

    /// Moves the expiry of the member's processed images and documents by the difference
    /// between two plans' retention (a plan change; P2). Temporary uploads keep theirs.
    /// Blocking; the caller flushes.
    pub fn replan(&self, owner: UserId, from: Plan, to: Plan) -> Result<usize, ImageError> {
        let shift = self.plan_retention_secs(to) - self.plan_retention_secs(from);
        if shift == 0 {
            return Ok(0);
        }
        let store = &self.vault.store;
        let mut moved = 0;
        for img in store.list_images(owner)? {
            for mut doc in store.documents_of_image(img.id)? {
                doc.expires_at += shift;
                store.put_document(&doc)?;
                moved += 1;
            }
            let patched = store.patch_image(img.id, |img| {
                let processed = img.state == ImageState::Processed;
                if processed {
                    img.expires_at = img.expires_at.saturating_add(shift);
                }
                processed
            })?;
            if let Some((_, true)) = patched {
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// When a result processed now for `owner` expires: now + their plan's retention.
    pub(crate) fn processed_expiry(&self, owner: UserId) -> Result<i64, ImageError> {
        let plan = self
            .vault
            .store
            .get_user(owner)?
            .map(|u| u.plan)
            .ok_or(ImageError::NotFound("member"))?;
        Ok(unix(self.clock.now()) + self.plan_retention_secs(plan))
    }

    /// Queues background removal for the member's image.
    pub async fn request_cutout(&self, owner: UserId, id: ImageId) -> Result<JobId, ImageError> {
        self.get(owner, id)?;
        if self.inference.get().is_none() {
            return Err(ImageError::ModelsNotReady);
        }
        let job = self.jobs.new_job(owner, JobKind::Cutout { image_id: id });
        self.jobs.enqueue(&job).await?;
        Ok(job.id)
    }

    /// Marks an image processed: from now on it is kept for the owner's plan retention.
    pub async fn mark_processed(&self, id: ImageId) -> Result<ImageRecord, ImageError> {
        let store = &self.vault.store;
        let owner = store
            .get_image(id)?
            .ok_or(ImageError::NotFound("image"))?
            .owner;
        let expires_at = self.processed_expiry(owner)?;
        let (rec, ()) = store
            .patch_image(id, |rec| {
                rec.state = ImageState::Processed;
                rec.expires_at = expires_at;
            })?
            .ok_or(ImageError::NotFound("image"))?;
        store.flush().await?;
        Ok(rec)
    }

    /// Links a freshly written blob into the image's record with `link` (which returns the
    /// blob it replaces), moving a temporary image to its plan retention when `processed`.
    /// A deleted image aborts the job and unlinks the new blob. Blocking.
    fn link_result(
        &self,
        image_id: ImageId,
        owner: UserId,
        blob: BlobId,
        processed: bool,
        link: impl Fn(&mut ImageRecord) -> Option<BlobId>,
    ) -> Result<(), JobFailure> {
        let retry = |e: &dyn std::fmt::Display| JobFailure::Retry(e.to_string());
        let expires_at = match processed {
            true => self.processed_expiry(owner).map_err(|e| retry(&e))?,
            false => 0,
        };
        // read, link and write in one transaction: a delete in between stays a delete
        let patched = self
            .vault
            .store
            .patch_image(image_id, |current| {
                let old = link(current);
                if processed && current.state == ImageState::Temporary {
                    current.state = ImageState::Processed;
                    current.expires_at = expires_at;
                }
                old
            })
            .map_err(|e| retry(&e))?;
        let Some((_, old)) = patched else {
            self.vault.unlink_blocking(owner, [blob]);
            return Err(image_deleted());
        };
        self.vault.store.flush_blocking().map_err(|e| retry(&e))?;
        self.vault.unlink_blocking(owner, old);
        Ok(())
    }
}

/// The job's image is gone.
pub(crate) fn image_deleted() -> JobFailure {
    JobFailure::abort("image_deleted", "the image was deleted")
}
