//! Decomposition as a service: the pipeline choice (peel with the models, or palette) and the
//! decompose job, which stores the result as a document — each layer an encrypted PNG blob —
//! and moves the source image to its owner's plan retention.

use std::sync::Arc;

use image::RgbImage;

use crate::engine::decompose::{peel, DecomposeError, LayerCount, PeelOptions, Timings};
use crate::engine::LayerStack;
use crate::inference::Inference;

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
                let _ = layers;
                Err(DecomposeError::Model("the palette pipeline is not built yet".into()))
            }
        }
    }
}
