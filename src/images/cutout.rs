//! Background removal: the salient object of an image as an RGBA cutout at the source
//! resolution (ISNet matte as alpha, source colours kept). Used by `image-layered cutout` and
//! by the cutout job, which stores the PNG as the image's cutout blob and moves the image to
//! its owner's plan retention (it is now a processed result).

use image::{DynamicImage, RgbaImage};

use super::ImageService;
use crate::engine;
use crate::ids::BlobId;
use crate::inference::{Inference, InferenceError};
use crate::jobs::{JobContext, JobFailure, JobHandler};
use crate::store::{ImageState, JobKind};

/// The cutout of an (upright) image.
pub fn cutout(inference: &Inference, img: &DynamicImage) -> Result<RgbaImage, InferenceError> {
    let rgb = img.to_rgb8();
    let matte = inference.segmenter()?.matte(&rgb)?;
    engine::apply_matte(&rgb, &matte)
        .ok_or_else(|| InferenceError::BadInput("the matte does not match the image size".into()))
}

pub struct CutoutJob(pub ImageService);

fn retry(e: impl std::fmt::Display) -> JobFailure {
    JobFailure::Retry(e.to_string())
}

impl JobHandler for CutoutJob {
    fn run(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure> {
        let svc = &self.0;
        let JobKind::Cutout { image_id } = ctx.job().kind.clone() else {
            return Err(JobFailure::abort("wrong_job_kind", "not a cutout job"));
        };
        let Some(inference) = svc.inference.get().cloned() else {
            return Err(JobFailure::abort(
                "models_not_ready",
                "the models are not loaded; run `image-layered models fetch` and restart the studio",
            ));
        };
        let gone = || JobFailure::abort("image_deleted", "the image was deleted");
        let (img, key, decoded) = svc.load_for_job(image_id)?;
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
        let blob = BlobId::new();
        svc.blobs
            .put(
                &key,
                svc.keyring.current_generation(),
                img.owner,
                blob,
                &mut &png[..],
            )
            .map_err(retry)?;
        let Some(mut current) = svc.store.get_image(image_id).map_err(retry)? else {
            let _ = svc.blobs.delete(img.owner, blob);
            return Err(gone());
        };
        let old = current.cutout_blob.replace(blob);
        if current.state == ImageState::Temporary {
            current.state = ImageState::Processed;
            current.expires_at = svc.processed_expiry(current.owner).map_err(retry)?;
        }
        svc.store.update_image(&current).map_err(retry)?;
        svc.store.flush_blocking().map_err(retry)?;
        if let Some(old) = old {
            let _ = svc.blobs.delete(img.owner, old);
        }
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
