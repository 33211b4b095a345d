//! Decomposition as a service: the pipeline choice (peel with the models, or palette), the
//! request that queues a decompose job, and the job itself, which stores the result as a
//! document — each layer an encrypted PNG blob — and moves the source image to its owner's
//! plan retention.

use std::sync::Arc;

use image::RgbImage;

use super::{DocumentError, DocumentService};
use crate::engine::decompose::{
    peel, DecomposeError, DecomposeMode, LayerCount, PeelOptions, Timings,
};
use crate::engine::{LayerProps, LayerStack};
use crate::ids::{DocumentId, ImageId, JobId, UserId};
use crate::inference::Inference;
use crate::jobs::{JobContext, JobFailure};
use crate::store::JobKind;

/// A configured decomposition pipeline.
pub enum Decomposer {
    Peel {
        inference: Arc<Inference>,
        layers: LayerCount,
    },
    Palette {
        layers: LayerCount,
    },
}

impl Decomposer {
    /// Decomposes `img`; `progress` gets (fraction, stage).
    pub fn run(
        &self,
        img: &RgbImage,
        progress: &mut dyn FnMut(f32, &str),
    ) -> Result<(LayerStack, Timings), DecomposeError> {
        match self {
            Decomposer::Peel { inference, layers } => {
                let opts = PeelOptions {
                    layers: *layers,
                    ..Default::default()
                };
                peel(img, inference.as_ref(), &opts, progress)
            }
            Decomposer::Palette { layers } => {
                let started = std::time::Instant::now();
                progress(0.1, "palette");
                let opts = crate::engine::palette::PaletteOptions {
                    k: match layers {
                        LayerCount::Auto => None,
                        LayerCount::Exactly(n) => Some(*n),
                    },
                    ..Default::default()
                };
                let result = crate::engine::palette::palette_decompose(img, &opts)
                    .map_err(|e| DecomposeError::Model(e.to_string()))?;
                progress(1.0, "done");
                Ok((
                    result.stack,
                    vec![("palette".to_string(), started.elapsed().as_secs_f64())],
                ))
            }
        }
    }
}

impl DocumentService {
    /// Queues a decomposition of the member's image.
    pub async fn request_decompose(
        &self,
        owner: UserId,
        id: ImageId,
        layers: LayerCount,
        mode: DecomposeMode,
    ) -> Result<JobId, DocumentError> {
        self.images.get(owner, id)?;
        if mode == DecomposeMode::Peel && self.images.inference.get().is_none() {
            return Err(crate::images::ImageError::ModelsNotReady.into());
        }
        let job = self.jobs.new_job(
            owner,
            JobKind::Decompose {
                image_id: id,
                layers,
                mode,
            },
        );
        self.jobs.enqueue(&job).await?;
        Ok(job.id)
    }

    /// Runs the `decompose` job: decrypt and decode the original, run the pipeline, store
    /// the layers as a document, and move the image (and the document) to the owner's plan
    /// retention.
    pub fn run_decompose(
        &self,
        ctx: &mut JobContext,
        image_id: ImageId,
        layers: LayerCount,
        mode: DecomposeMode,
    ) -> Result<serde_json::Value, JobFailure> {
        let decomposer = match mode {
            DecomposeMode::Palette => Decomposer::Palette { layers },
            DecomposeMode::Peel => match self.images.inference.get().cloned() {
                Some(inference) => Decomposer::Peel { inference, layers },
                None => {
                    return Err(JobFailure::abort(
                        "models_not_ready",
                        "the models are not loaded; run `image-layered models fetch` and restart the studio",
                    ))
                }
            },
        };
        let (img, _key, decoded) = self.images.load_for_job(image_id)?;
        let pixels = u64::from(decoded.width) * u64::from(decoded.height);
        let _memory = ctx.claim_memory(crate::jobs::memory::decompose_bytes(pixels))?;
        ctx.progress(0.05);
        let rgb = decoded.image.to_rgb8();
        let started = std::time::Instant::now();
        let mut last = 0.0f32;
        let (stack, timings) = decomposer
            .run(&rgb, &mut |f, _stage| {
                // 5%..90% of the job is the pipeline; report in 5% steps
                let p = 0.05 + 0.85 * f;
                if p - last >= 0.05 || f >= 1.0 {
                    last = p;
                    ctx.progress(p);
                }
            })
            .map_err(|e| match e {
                DecomposeError::Model(m) => JobFailure::Retry(m),
                other => JobFailure::abort(other.code(), other.to_string()),
            })?;
        ctx.check_cancelled()?;
        let props = vec![LayerProps::default(); stack.layers.len()];
        // the document's id is the job's, so a re-run after a crash finds what it stored
        let doc_id = DocumentId(ctx.job().id.0);
        let doc = self.store_stack(img.owner, image_id, doc_id, mode.into(), &stack, &props)?;
        Ok(serde_json::json!({
            "document_id": doc.id,
            "image_id": image_id,
            "layers": doc.layers.len(),
            "seconds": started.elapsed().as_secs_f64(),
            "stages": timings.iter().map(|(s, t)| serde_json::json!({"name": s, "seconds": t})).collect::<Vec<_>>(),
        }))
    }
}
