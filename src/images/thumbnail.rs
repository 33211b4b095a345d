//! The thumbnail job: decrypt the original, decode it upright, write a 256 px PNG as a new
//! blob and link it from the image's record. A deleted image aborts the job; a missing or
//! damaged original is an abort too (retrying cannot fix it).

use super::ImageService;
use crate::engine;
use crate::ids::ImageId;
use crate::jobs::{JobContext, JobFailure};

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 256;

impl ImageService {
    /// Runs the `thumbnail` job of `image_id`.
    pub fn run_thumbnail(
        &self,
        ctx: &mut JobContext,
        image_id: ImageId,
    ) -> Result<serde_json::Value, JobFailure> {
        let (img, key, decoded) = self.load_for_job(image_id)?;
        ctx.progress(0.3);
        ctx.check_cancelled()?;
        ctx.progress(0.6);
        ctx.check_cancelled()?;
        let png = engine::thumbnail_png(&decoded.image, THUMBNAIL_SIDE)
            .map_err(|e| JobFailure::abort(e.code(), e.to_string()))?;
        let blob = self
            .vault
            .put(&key, img.owner, &png)
            .map_err(|e| JobFailure::Retry(e.to_string()))?;
        // the image may have been deleted while we worked: link_result checks
        self.link_result(image_id, img.owner, blob, false, |rec| {
            rec.thumbnail_blob.replace(blob)
        })?;
        Ok(serde_json::json!({
            "image_id": image_id,
            "thumbnail_url": format!("/api/v1/images/{image_id}/thumbnail"),
            "bytes": png.len(),
        }))
    }
}
