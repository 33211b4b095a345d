//! Applying one op to a document's layer list: decrypt the layers it reads, run the pixel
//! work in [`crate::engine::edit`] (or the decomposer, for `split`), and write each changed
//! layer as a new blob that keeps the layer's id. Nothing is committed here.

use hyper::StatusCode;
use image::{GrayImage, RgbImage};

use super::op::{invalid, parse_hex, split_count, EditOp};
use super::{layer_index, Written};
use crate::engine::decompose::{PeelModels, PeelOptions};
use crate::engine::edit::{self, Fit, MaskSource, Recolor, ReplaceOptions};
use crate::engine::Layer;
use crate::error::ApiError;
use crate::ids::{ImageId, LayerId, UserId};
use crate::images::ImageService;
use crate::store::{DocumentRecord, LayerRecord};

impl ImageService {
    /// An uploaded image of the member's, decoded (replacement pictures, brush masks).
    pub(super) fn load_upload(
        &self,
        owner: UserId,
        id: ImageId,
    ) -> Result<image::DynamicImage, ApiError> {
        let rec = self.get(owner, id)?;
        let key = self.data_key(owner)?;
        let bytes = self.blobs.read_all(&key, owner, rec.original_blob)?;
        let decoded = crate::engine::decode(&bytes, &self.limits).map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
        })?;
        Ok(decoded.image)
    }

    /// The new layer list after `op` (new blobs go through `w`).
    pub(super) fn apply(
        &self,
        doc: &DocumentRecord,
        op: &EditOp,
        w: &mut Written<'_>,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<LayerRecord>, ApiError> {
        let owner = doc.owner;
        let index = layer_index(doc, op.layer_id())?;
        let mut layers = doc.layers.clone();
        let rec = layers[index].clone();
        let pixels = |w: &Written<'_>| self.read_layer(&w.key, owner, &rec);
        let engine_err = |e: edit::EditError| invalid(e.code(), e);
        match op {
            EditOp::Recolor {
                color,
                hue_shift,
                saturation,
                lightness,
                ..
            } => {
                let how = match color {
                    Some(c) => Recolor::Target {
                        rgb: parse_hex(c).ok_or_else(|| invalid("color", "use \"#rrggbb\""))?,
                    },
                    None => Recolor::Shift {
                        hue_deg: hue_shift.unwrap_or(0.0),
                        saturation: saturation.unwrap_or(1.0),
                        lightness: lightness.unwrap_or(0.0),
                    },
                };
                let out = edit::recolor(&pixels(w)?, &how).map_err(engine_err)?;
                layers[index] = w.layer(&rec, &out)?;
            }
            EditOp::Replace {
                image_id,
                fit,
                harmonize,
                mask,
                feather,
                ..
            } => {
                let opts = ReplaceOptions {
                    fit: match fit.as_deref().unwrap_or("cover") {
                        "contain" => Fit::Contain,
                        "cover" => Fit::Cover,
                        "stretch" => Fit::Stretch,
                        other => {
                            return Err(invalid(
                                "fit",
                                format!("{other:?} is not contain, cover or stretch"),
                            ))
                        }
                    },
                    mask: match mask.as_deref().unwrap_or("layer") {
                        "layer" => MaskSource::Layer,
                        "image" => MaskSource::Image,
                        other => {
                            return Err(invalid("mask", format!("{other:?} is not layer or image")))
                        }
                    },
                    harmonize: harmonize.unwrap_or(0.5),
                    feather: feather.unwrap_or(1.5),
                };
                let replacement = self.load_upload(owner, *image_id)?.to_rgba8();
                let out = edit::replace(&pixels(w)?, &replacement, &opts).map_err(engine_err)?;
                layers[index] = w.layer(&rec, &out)?;
            }
            EditOp::Remove { .. } => {
                layers.remove(index);
            }
            EditOp::Inpaint { mask_image_id, .. } => {
                let mask = edit::mask_from_image(
                    &self.load_upload(owner, *mask_image_id)?,
                    doc.width,
                    doc.height,
                );
                if mask.pixels().all(|p| p.0[0] == 0) {
                    return Err(invalid(
                        "mask_image_id",
                        "the mask marks no pixel to fill (white = fill, on black)",
                    ));
                }
                let inference = self.inference.get().cloned();
                let fill = |img: &RgbImage, m: &GrayImage| match &inference {
                    Some(models) => models.inpaint(img, m),
                    None => crate::engine::inpaint::patchmatch_inpaint(img, m, &Default::default()),
                };
                let out = edit::inpaint_layer(&pixels(w)?, &mask, &fill).map_err(engine_err)?;
                layers[index] = w.layer(&rec, &out)?;
            }
            EditOp::Transform {
                dx,
                dy,
                scale,
                opacity,
                visible,
                ..
            } => {
                let (dx, dy, scale) = (dx.unwrap_or(0), dy.unwrap_or(0), scale.unwrap_or(1.0));
                let mut next = if dx != 0 || dy != 0 || scale != 1.0 {
                    let out = edit::transform(&pixels(w)?, dx, dy, scale).map_err(engine_err)?;
                    w.layer(&rec, &out)?
                } else {
                    rec.clone()
                };
                if let Some(o) = opacity {
                    next.opacity = *o;
                }
                if let Some(v) = visible {
                    next.visible = *v;
                }
                layers[index] = next;
            }
            EditOp::Reorder { z, .. } => {
                let layer = layers.remove(index);
                layers.insert(*z, layer);
            }
            EditOp::Rename { name, .. } => {
                layers[index].name = name.trim().to_string();
            }
            EditOp::Merge { .. } => {
                let below = layers[index - 1].clone();
                let effective = |l: &LayerRecord| if l.visible { l.opacity } else { 0.0 };
                let out = edit::merge_down(
                    &self.read_layer(&w.key, owner, &below)?,
                    effective(&below),
                    &pixels(w)?,
                    effective(&rec),
                )
                .map_err(engine_err)?;
                let merged = LayerRecord {
                    visible: true,
                    opacity: 1.0,
                    ..below.clone()
                };
                layers[index - 1] = w.layer(&merged, &out)?;
                layers.remove(index);
            }
            EditOp::Split { layers: count, .. } => {
                let count = split_count(count)?;
                let models = self.inference.get().cloned().ok_or_else(|| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "models_not_ready",
                        "split needs the decomposition models, which are not loaded",
                    )
                })?;
                let layer = Layer {
                    name: rec.name.clone(),
                    kind: rec.kind,
                    rgba: pixels(w)?,
                    text: rec.text.clone(),
                };
                let opts = PeelOptions {
                    layers: count,
                    ..Default::default()
                };
                let parts = crate::engine::decompose::split_layer(
                    &layer,
                    models.as_ref(),
                    &opts,
                    &mut |f, _| progress(f),
                )
                .map_err(|e| {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
                })?;
                if parts.len() < 2 {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "nothing_to_split",
                        format!(
                            "no separate parts were found in {:?}; the document is unchanged",
                            rec.name
                        ),
                    ));
                }
                let mut recs = Vec::with_capacity(parts.len());
                for (i, part) in parts.iter().enumerate() {
                    let template = LayerRecord {
                        id: if i == 0 { rec.id } else { LayerId::new() },
                        name: part.name.clone(),
                        kind: part.kind,
                        text: part.text.clone(),
                        ..rec.clone()
                    };
                    recs.push(w.layer(&template, &part.rgba)?);
                }
                layers.splice(index..=index, recs);
            }
        }
        Ok(layers)
    }
}
