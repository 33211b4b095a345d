//! The thumbnail job: decrypt the original, decode it upright, write a 256 px PNG as a new
//! blob and link it from the image's record. A deleted image aborts the job; a missing or
//! damaged original is an abort too (retrying cannot fix it).

use super::ImageService;
use crate::engine;
use crate::ids::BlobId;
use crate::jobs::{JobContext, JobFailure, JobHandler};
use crate::store::JobKind;

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 256;

pub struct ThumbnailJob(pub ImageService);

impl JobHandler for ThumbnailJob {
    fn run(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure> {
        let svc = &self.0;
        let JobKind::Thumbnail { image_id } = ctx.job().kind.clone() else {
            return Err(JobFailure::abort("wrong_job_kind", "not a thumbnail job"));
        };
        let gone = || JobFailure::abort("image_deleted", "the image was deleted");
        let (img, key, decoded) = svc.load_for_job(image_id)?;
        ctx.progress(0.3);
        ctx.check_cancelled()?;
        ctx.progress(0.6);
        ctx.check_cancelled()?;
        let png = engine::thumbnail_png(&decoded.image, THUMBNAIL_SIDE)
            .map_err(|e| JobFailure::abort(e.code(), e.to_string()))?;
        let blob = BlobId::new();
        svc.blobs
            .put(
                &key,
                svc.keyring.current_generation(),
                img.owner,
                blob,
                &mut &png[..],
            )
            .map_err(|e| JobFailure::Retry(e.to_string()))?;
        // Re-read: the image may have been deleted while we worked.
        let Some(mut current) = svc
            .store
            .get_image(image_id)
            .map_err(|e| JobFailure::Retry(e.to_string()))?
        else {
            let _ = svc.blobs.delete(img.owner, blob);
            return Err(gone());
        };
        let old = current.thumbnail_blob.replace(blob);
        svc.store
            .update_image(&current)
            .map_err(|e| JobFailure::Retry(e.to_string()))?;
        svc.store
            .flush_blocking()
            .map_err(|e| JobFailure::Retry(e.to_string()))?;
        if let Some(old) = old {
            let _ = svc.blobs.delete(img.owner, old);
        }
        Ok(serde_json::json!({
            "image_id": image_id,
            "thumbnail_url": format!("/api/v1/images/{image_id}/thumbnail"),
            "bytes": png.len(),
        }))
    }
}
