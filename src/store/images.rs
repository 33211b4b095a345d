//! Uploaded images in the store: the record, an `owner ‖ image` index for listing, and the
//! image's TTL entry, always changed together in one transaction. An upload and its thumbnail
//! job are inserted atomically, so a crash never leaves an image without its job.

use sled::transaction::ConflictableTransactionError;

use super::codec::{concat, encode};
use super::records::{ImageRecord, JobRecord, JobState};
use super::ttl::{clear_tx, set_tx, TtlKind};
use super::{Result, Store};
use crate::ids::{ImageId, UserId};

impl Store {
    /// Inserts an image, its TTL entry and (optionally) its first job in one transaction.
    pub fn insert_image(&self, img: &ImageRecord, job: Option<&JobRecord>) -> Result<()> {
        let value = self.encode_image(img);
        self.atomically(
            (
                &self.images,
                &self.images_by_owner,
                &self.ttl,
                &self.ttl_by_object,
                &self.jobs,
                &self.jobs_queued,
            ),
            |(i, o, t, b, j, q)| {
                i.insert(img.id.as_bytes(), value.as_slice())?;
                o.insert(concat(img.owner.as_bytes(), img.id.as_bytes()), &[][..])?;
                set_tx(t, b, TtlKind::Image, img.id.as_bytes(), img.expires_at)?;
                if let Some(job) = job {
                    j.insert(job.id.as_bytes(), encode(job))?;
                    if job.state == JobState::Queued {
                        q.insert(job.id.as_bytes(), &[][..])?;
                    }
                }
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        Ok(())
    }

    pub fn get_image(&self, id: ImageId) -> Result<Option<ImageRecord>> {
        self.images
            .get(id.as_bytes())?
            .map(|v| self.decode_image(&v))
            .transpose()
    }

    /// The owner's images, oldest first.
    pub fn list_images(&self, owner: UserId) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for k in self.images_by_owner.scan_prefix(owner.as_bytes()).keys() {
            let k = k?;
            if let Some(id) = ImageId::from_slice(&k[16..]) {
                if let Some(img) = self.get_image(id)? {
                    out.push(img);
                }
            }
        }
        Ok(out)
    }

    /// Every image of every owner (reconciler, metrics).
    /// Every image record that can be read, and how many cannot (each logged with its key):
    /// for the start-up reconciler, which must start whatever one damaged record holds.
    pub fn readable_images(&self) -> Result<(Vec<ImageRecord>, usize)> {
        self.readable(&self.images, "images", |v| self.decode_image(v))
    }

    pub fn all_images(&self) -> Result<Vec<ImageRecord>> {
        self.images
            .iter()
            .values()
            .map(|v| self.decode_image(&v?))
            .collect()
    }

    /// Rewrites an image record and moves its TTL entry to `expires_at`.
    pub fn update_image(&self, img: &ImageRecord) -> Result<()> {
        let value = self.encode_image(img);
        self.atomically(
            (&self.images, &self.ttl, &self.ttl_by_object),
            |(i, t, b)| {
                i.insert(img.id.as_bytes(), value.as_slice())?;
                set_tx(t, b, TtlKind::Image, img.id.as_bytes(), img.expires_at)
            },
        )?;
        Ok(())
    }

    /// Removes an image's metadata, index, TTL entry and its thumbnail job. Blobs are the
    /// caller's to unlink after the flush.
    pub fn delete_image(&self, id: ImageId) -> Result<Option<ImageRecord>> {
        let Some(img) = self.get_image(id)? else {
            return Ok(None);
        };
        self.atomically(
            (
                &self.images,
                &self.images_by_owner,
                &self.ttl,
                &self.ttl_by_object,
                &self.jobs,
                &self.jobs_queued,
            ),
            |(i, o, t, b, j, q)| {
                i.remove(id.as_bytes())?;
                o.remove(concat(img.owner.as_bytes(), id.as_bytes()))?;
                clear_tx(t, b, TtlKind::Image, id.as_bytes())?;
                if let Some(job) = img.thumbnail_job {
                    j.remove(job.as_bytes())?;
                    q.remove(job.as_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        Ok(Some(img))
    }
}
