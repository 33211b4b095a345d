//! Background removal: the salient object of an image as an RGBA cutout at the source
//! resolution (ISNet matte as alpha, source colours kept). Used by `image-layered cutout` and
//! by the cutout job, which stores the PNG as the image's cutout blob and moves the image to
//! its owner's plan retention (it is now a processed result).

use image::{DynamicImage, RgbaImage};

use super::ImageService;
use crate::engine;
use crate::ids::ImageId;
use crate::inference::{Inference, InferenceError};
use crate::jobs::{JobContext, JobFailure};

/// The cutout of an (upright) image.
pub fn cutout(inference: &Inference, img: &DynamicImage) -> Result<RgbaImage, InferenceError> {
    // an RGB image is read in place: a 24 MP copy is 72 MB more at the model's peak
    let rgb = match img.as_rgb8() {
        Some(rgb) => std::borrow::Cow::Borrowed(rgb),
        None => std::borrow::Cow::Owned(img.to_rgb8()),
    };
    let matte = inference.segmenter()?.matte(&rgb)?;
    engine::apply_matte(&rgb, &matte)
        .ok_or_else(|| InferenceError::BadInput("the matte does not match the image size".into()))
}

impl ImageService {
    /// Runs the `cutout` job of `image_id`.
    pub fn run_cutout(
        &self,
        ctx: &mut JobContext,
        image_id: ImageId,
    ) -> Result<serde_json::Value, JobFailure> {
        let Some(inference) = self.inference.get().cloned() else {
            return Err(JobFailure::abort(
                "models_not_ready",
                "the models are not loaded; run `image-layered models fetch` and restart the studio",
            ));
        };
        let (img, key, decoded) = self.load_for_job(image_id)?;
        let pixels = u64::from(decoded.width) * u64::from(decoded.height);
        let _memory = ctx.claim_memory(crate::jobs::memory::cutout_bytes(pixels))?;
        ctx.progress(0.1);
        ctx.check_cancelled()?;
        ctx.progress(0.2);
        let rgba = cutout(&inference, &decoded.image).map_err(|e| match e {
            InferenceError::BadInput(m) => JobFailure::abort("bad_input", m),
            other => JobFailure::abort(other.code(), other.to_string()),
        })?;
        ctx.progress(0.85);
        ctx.check_cancelled()?;
        let png = engine::encode_png(&DynamicImage::ImageRgba8(rgba))
            .map_err(|e| JobFailure::abort(e.code(), e.to_string()))?;
        let blob = self
            .vault
            .put(&key, img.owner, &png)
            .map_err(|e| JobFailure::Retry(e.to_string()))?;
        self.link_result(image_id, img.owner, blob, true, |rec| {
            rec.cutout_blob.replace(blob)
        })?;
        Ok(serde_json::json!({
            "image_id": image_id,
            "cutout_url": format!("/api/v1/images/{image_id}/cutout"),
            "width": decoded.width,
            "height": decoded.height,
            "bytes": png.len(),
            "provider": inference.provider(),
        }))
    }
}
