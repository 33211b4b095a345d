//! Uploaded images as a service: accept an upload (format sniffed from the bytes, pixel limits
//! checked from the header before decoding, EXIF read, orientation applied), store the
//! original encrypted under the owner's data key, record it with a temporary TTL and queue its
//! thumbnail, all acknowledged only after the blob is fsynced and the store flushed. Reads are
//! owner-checked: another member's image does not exist. Deletion removes metadata first
//! (flushed), then the blobs.

pub mod cutout;
pub mod decompose;
mod documents;
pub mod edit;
mod thumbnail;

use std::io::Read;
use std::sync::Arc;

use hyper::StatusCode;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::blobs::{BlobStore, DataKey, Keyring};
use crate::clock::{unix, SharedClock};
use crate::engine::{self, DecodeLimits};
use crate::error::ApiError;
use crate::ids::{BlobId, DocumentId, ImageId, JobId, UserId};
use crate::jobs::JobQueue;
use crate::store::{DocumentRecord, ImageRecord, ImageState, JobKind, Plan, Store};

pub use cutout::CutoutJob;
pub use documents::ExportFormat;
pub use thumbnail::ThumbnailJob;

/// The inference service, once the models are loaded (shared with the app).
pub type InferenceSlot = Arc<std::sync::OnceLock<Arc<crate::inference::Inference>>>;

/// Retention periods, from `[retention]`.
#[derive(Debug, Clone)]
pub struct RetentionPeriods {
    pub temporary_secs: i64,
    pub free_secs: i64,
    pub pro_secs: i64,
    pub studio_secs: i64,
}

impl RetentionPeriods {
    pub fn for_plan(&self, plan: Plan) -> i64 {
        match plan {
            Plan::Free => self.free_secs,
            Plan::Pro => self.pro_secs,
            Plan::Studio => self.studio_secs,
        }
    }
}

/// Uploads, reads and deletes of images; shared by the HTTP handlers, jobs and the sweep.
#[derive(Clone)]
pub struct ImageService {
    pub(crate) store: Store,
    pub(crate) blobs: Arc<BlobStore>,
    pub(crate) keyring: Arc<Keyring>,
    clock: SharedClock,
    jobs: JobQueue,
    limits: DecodeLimits,
    retention: RetentionPeriods,
    decode_slots: Arc<Semaphore>,
    pub(crate) inference: InferenceSlot,
    doc_locks: Arc<edit::DocLocks>,
}

impl ImageService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        blobs: Arc<BlobStore>,
        keyring: Arc<Keyring>,
        clock: SharedClock,
        jobs: JobQueue,
        limits: DecodeLimits,
        retention: RetentionPeriods,
        decode_concurrency: usize,
        inference: InferenceSlot,
    ) -> Self {
        Self {
            store,
            blobs,
            keyring,
            clock,
            jobs,
            limits,
            retention,
            decode_slots: Arc::new(Semaphore::new(decode_concurrency.max(1))),
            inference,
            doc_locks: Arc::default(),
        }
    }

    /// The member's unwrapped data key.
    pub(crate) fn data_key(&self, owner: UserId) -> Result<DataKey, ApiError> {
        let wrapped = self.store.data_key(owner)?.ok_or_else(|| {
            ApiError::internal("data key", format!("member {owner} has no data key"))
        })?;
        Ok(self.keyring.unwrap(&wrapped, owner)?)
    }

    /// For a job on `image_id`: its record, its owner's data key and the decoded original.
    /// A deleted image or a damaged original aborts the job; a transient read error retries.
    pub(crate) fn load_for_job(
        &self,
        image_id: ImageId,
    ) -> Result<(ImageRecord, DataKey, engine::Decoded), crate::jobs::JobFailure> {
        use crate::jobs::JobFailure;
        let img = self
            .store
            .get_image(image_id)
            .map_err(|e| JobFailure::Retry(e.to_string()))?
            .ok_or_else(|| JobFailure::abort("image_deleted", "the image was deleted"))?;
        let key = self
            .data_key(img.owner)
            .map_err(|e| JobFailure::abort(e.code, e.message))?;
        let bytes = self
            .blobs
            .read_all(&key, img.owner, img.original_blob)
            .map_err(|e| match e {
                crate::blobs::BlobError::Io(io) => JobFailure::Retry(io.to_string()),
                other => JobFailure::abort(other.code(), other.to_string()),
            })?;
        let decoded = engine::decode(&bytes, &self.limits)
            .map_err(|e| JobFailure::abort(e.code(), e.to_string()))?;
        Ok((img, key, decoded))
    }

    /// Validates, stores and records an upload; queues its thumbnail.
    pub async fn upload(&self, owner: UserId, bytes: Vec<u8>) -> Result<ImageRecord, ApiError> {
        let _slot = self
            .decode_slots
            .acquire()
            .await
            .map_err(|e| ApiError::internal("decode slots", e))?;
        self.upload_in_slot(owner, bytes).await
    }

    /// [`upload`](Self::upload) for a caller already holding a decode slot.
    pub(crate) async fn upload_in_slot(
        &self,
        owner: UserId,
        bytes: Vec<u8>,
    ) -> Result<ImageRecord, ApiError> {
        let this = self.clone();
        let rec = tokio::task::spawn_blocking(move || this.store_upload(owner, &bytes)).await??;
        self.store.flush().await?;
        self.jobs.notify();
        Ok(rec)
    }

    fn store_upload(&self, owner: UserId, bytes: &[u8]) -> Result<ImageRecord, ApiError> {
        let decoded = engine::decode(bytes, &self.limits)?;
        let key = self.data_key(owner)?;
        let now = unix(self.clock.now());
        let id = ImageId::new();
        let blob = BlobId::new();
        self.blobs.put(
            &key,
            self.keyring.current_generation(),
            owner,
            blob,
            &mut &bytes[..],
        )?;
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
            expires_at: now + self.retention.temporary_secs,
            original_blob: blob,
            thumbnail_blob: None,
            thumbnail_job: Some(job.id),
            cutout_blob: None,
        };
        if let Err(e) = self.store.insert_image(&rec, Some(&job)) {
            let _ = self.blobs.delete(owner, blob);
            return Err(e.into());
        }
        Ok(rec)
    }

    /// The member's image; another member's is 404.
    pub fn get(&self, owner: UserId, id: ImageId) -> Result<ImageRecord, ApiError> {
        self.store
            .get_image(id)?
            .filter(|i| i.owner == owner)
            .ok_or_else(|| ApiError::not_found("image"))
    }

    pub fn list(&self, owner: UserId) -> Result<Vec<ImageRecord>, ApiError> {
        Ok(self.store.list_images(owner)?)
    }

    /// A decrypting reader over one of the image's blobs.
    pub fn open_blob(&self, owner: UserId, blob: BlobId) -> Result<Box<dyn Read + Send>, ApiError> {
        let key = self.data_key(owner)?;
        Ok(Box::new(self.blobs.open_reader(&key, owner, blob)?))
    }

    /// Deletes an image: metadata (flushed) first, then its blobs.
    pub async fn delete(&self, owner: UserId, id: ImageId) -> Result<(), ApiError> {
        self.get(owner, id)?;
        self.delete_any(id).await?;
        Ok(())
    }

    /// Deletes an image whoever owns it (sweep, account deletion), with every document made
    /// from it. `Ok(None)` if already gone.
    pub async fn delete_any(&self, id: ImageId) -> Result<Option<ImageRecord>, ApiError> {
        for doc in self.store.documents_of_image(id)? {
            self.delete_document_any(doc.id).await?;
        }
        let Some(rec) = self.store.delete_image(id)? else {
            return Ok(None);
        };
        self.store.flush().await?;
        self.unlink(rec.owner, rec.blobs().collect()).await?;
        Ok(Some(rec))
    }

    /// Deletes a document and its layer blobs. `Ok(None)` if already gone.
    pub async fn delete_document_any(
        &self,
        id: DocumentId,
    ) -> Result<Option<DocumentRecord>, ApiError> {
        let Some(doc) = self.store.delete_document(id)? else {
            return Ok(None);
        };
        self.store.flush().await?;
        self.unlink(doc.owner, doc.blobs().collect()).await?;
        Ok(Some(doc))
    }

    /// Unlinks blob files after their metadata is gone (a failure is left to the reconciler).
    async fn unlink(&self, owner: UserId, doomed: Vec<BlobId>) -> Result<(), ApiError> {
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            for b in doomed {
                if let Err(e) = blobs.delete(owner, b) {
                    tracing::warn!(blob = %b, "could not remove blob file (the reconciler will): {e}");
                }
            }
        })
        .await?;
        Ok(())
    }

    /// When a result processed now for `owner` expires: now + their plan's retention.
    pub(crate) fn processed_expiry(&self, owner: UserId) -> Result<i64, ApiError> {
        let plan =
            self.store.get_user(owner)?.map(|u| u.plan).ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such member")
            })?;
        Ok(unix(self.clock.now()) + self.retention.for_plan(plan))
    }

    /// Queues background removal for the member's image.
    pub async fn request_cutout(&self, owner: UserId, id: ImageId) -> Result<JobId, ApiError> {
        self.get(owner, id)?;
        if self.inference.get().is_none() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "models_not_ready",
                "the models are not loaded yet; see /readyz (an operator runs `image-layered models fetch`)",
            ));
        }
        let job = self.jobs.new_job(owner, JobKind::Cutout { image_id: id });
        self.jobs.enqueue(&job).await?;
        Ok(job.id)
    }

    /// Marks an image processed: from now on it is kept for the owner's plan retention.
    /// (The decomposition job calls this when it stores a result.)
    pub async fn mark_processed(&self, id: ImageId) -> Result<ImageRecord, ApiError> {
        let mut rec = self
            .store
            .get_image(id)?
            .ok_or_else(|| ApiError::not_found("image"))?;
        rec.state = ImageState::Processed;
        rec.expires_at = self.processed_expiry(rec.owner)?;
        self.store.update_image(&rec)?;
        self.store.flush().await?;
        Ok(rec)
    }
}
