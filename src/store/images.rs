//! Uploaded images in the store: the record, an `owner ‖ image` index for listing, and the
//! image's TTL entry, always changed together in one transaction. An upload and its thumbnail
//! job are inserted atomically, so a crash never leaves an image without its job.

use sled::transaction::ConflictableTransactionError;

use super::codec::{concat, encode};
use super::records::{ImageRecord, JobRecord, JobState};
use super::ttl::{clear_tx, set_tx, TtlKind};
use super::{Result, Store, StoreError};
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

    /// Reads, changes and writes an image record in one transaction, moving its TTL entry to
    /// the new `expires_at`. `None`, writing nothing, when the record is gone: a delete in
    /// between is never undone, and two patches never lose each other's change. `f` may run
    /// more than once (when a transaction retries) and must only change the record.
    pub fn patch_image<R>(
        &self,
        id: ImageId,
        f: impl Fn(&mut ImageRecord) -> R,
    ) -> Result<Option<(ImageRecord, R)>> {
        // the owner's field key is read first: reading it (another tree) inside the
        // transaction would wait on the transaction itself
        let Some(raw) = self.images.get(id.as_bytes())? else {
            return Ok(None);
        };
        let Some(owner) = self.image_owner(&raw)? else {
            return Err(StoreError::Corrupt {
                tree: "images",
                reason: "a record without an owner".into(),
            });
        };
        let key = self.field_key(owner);
        let patched = self.atomically(
            (&self.images, &self.ttl, &self.ttl_by_object),
            |(i, t, b)| {
                let Some(raw) = i.get(id.as_bytes())? else {
                    return Ok(None);
                };
                let mut img = self
                    .decode_image_with(&raw, |o| key.as_ref().filter(|_| o == owner))
                    .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
                let out = f(&mut img);
                i.insert(id.as_bytes(), self.encode_image_with(&img, key.as_ref()))?;
                set_tx(t, b, TtlKind::Image, id.as_bytes(), img.expires_at)?;
                Ok::<_, ConflictableTransactionError<String>>(Some((img, out)))
            },
        )?;
        Ok(patched)
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
                    clear_tx(t, b, TtlKind::Job, job.as_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        Ok(Some(img))
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::ImageState;
    use super::super::temp_store;
    use crate::engine::ImageFormatKind;
    use crate::ids::{BlobId, ImageId, UserId};

    use super::*;

    fn image(owner: UserId) -> ImageRecord {
        ImageRecord {
            id: ImageId::new(),
            owner,
            format: ImageFormatKind::Png,
            width: 4,
            height: 4,
            bytes: 10,
            sha256: "0".repeat(64),
            exif: None,
            state: ImageState::Temporary,
            created_at: 0,
            expires_at: 100,
            original_blob: BlobId::new(),
            thumbnail_blob: None,
            thumbnail_job: None,
            cutout_blob: None,
        }
    }

    #[test]
    fn a_patch_never_brings_back_a_deleted_image() {
        let (_dir, store) = temp_store();
        let img = image(UserId::new());
        store.insert_image(&img, None).unwrap();
        store.delete_image(img.id).unwrap();
        let patched = store
            .patch_image(img.id, |r| r.cutout_blob = Some(BlobId::new()))
            .unwrap();
        assert!(patched.is_none());
        assert!(store.get_image(img.id).unwrap().is_none());
        assert_eq!(
            store.ttl_of(TtlKind::Image, img.id.as_bytes()).unwrap(),
            None
        );
    }

    #[test]
    fn concurrent_patches_of_different_fields_all_land() {
        // a keyed store: sealed fields are opened and sealed again inside the transaction
        let (_d, _k, store, owner) = super::super::sealing::tests::setup();
        let img = image(owner);
        store.insert_image(&img, None).unwrap();
        let (cutout, thumb) = (BlobId::new(), BlobId::new());
        std::thread::scope(|s| {
            for i in 0..4 {
                let store = &store;
                // two jobs each link their result once while others keep rewriting the
                // record: a read-then-write would lose a link now and then
                s.spawn(move || {
                    let rounds = if i < 2 { 1 } else { 50 };
                    for n in 0..rounds {
                        store
                            .patch_image(img.id, |r| match i {
                                0 => r.cutout_blob = Some(cutout),
                                1 => r.thumbnail_blob = Some(thumb),
                                _ => r.expires_at = r.expires_at.max(1000 + n),
                            })
                            .unwrap()
                            .unwrap();
                    }
                });
            }
        });
        let got = store.get_image(img.id).unwrap().unwrap();
        assert_eq!(got.cutout_blob, Some(cutout));
        assert_eq!(got.thumbnail_blob, Some(thumb));
        assert_eq!(got.expires_at, 1049);
        assert_eq!(got.sha256, img.sha256, "a sealed field survives");
        let raw = store.images.get(img.id.as_bytes()).unwrap().unwrap();
        assert!(
            !String::from_utf8_lossy(&raw).contains(&img.sha256),
            "still sealed"
        );
        let ttl = store.ttl_of(TtlKind::Image, img.id.as_bytes()).unwrap();
        assert_eq!(ttl, Some(1049), "the TTL entry moved with the record");
    }
}
