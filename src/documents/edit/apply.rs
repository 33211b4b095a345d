//! Applying one op to a document's layer list: decrypt the layers it reads, run the pixel
//! work in [`crate::engine::edit`] (or the decomposer, for `split`), and write each changed
//! layer as a new blob that keeps the layer's id. One function per op; nothing is committed
//! here.

use image::{GrayImage, RgbImage};

use super::op::{invalid, parse_hex, EditOp};
use super::{layer_index, DocumentError, DocumentService, Written};
use crate::engine::decompose::{LayerCount, PeelModels, PeelOptions};
use crate::engine::edit::{self, Recolor, ReplaceOptions};
use crate::engine::Layer;
use crate::ids::{ImageId, LayerId, UserId};
use crate::store::{DocumentRecord, LayerRecord};

/// What every op works on: the document, the target layer's index and record, and the
/// writer for new blobs.
struct Target<'a, 'w> {
    doc: &'a DocumentRecord,
    index: usize,
    rec: LayerRecord,
    w: &'a mut Written<'w>,
}

fn engine_err(e: edit::EditError) -> DocumentError {
    invalid(e.code(), e)
}

impl DocumentService {
    /// The new layer list after `op` (new blobs go through `w`).
    pub(super) fn apply(
        &self,
        doc: &DocumentRecord,
        op: &EditOp,
        w: &mut Written<'_>,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<LayerRecord>, DocumentError> {
        let index = layer_index(doc, op.layer_id())?;
        let mut layers = doc.layers.clone();
        let mut t = Target {
            doc,
            index,
            rec: layers[index].clone(),
            w,
        };
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
                layers[index] = self.recolor(&mut t, &how)?;
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
                    fit: *fit,
                    mask: *mask,
                    harmonize: harmonize.unwrap_or(0.5),
                    feather: feather.unwrap_or(1.5),
                };
                layers[index] = self.replace(&mut t, *image_id, &opts)?;
            }
            EditOp::Remove { .. } => {
                layers.remove(index);
            }
            EditOp::Inpaint { mask_image_id, .. } => {
                layers[index] = self.inpaint(&mut t, *mask_image_id)?;
            }
            EditOp::Transform {
                dx,
                dy,
                scale,
                opacity,
                visible,
                ..
            } => {
                let moved = (dx.unwrap_or(0), dy.unwrap_or(0), scale.unwrap_or(1.0));
                layers[index] = self.transform(&mut t, moved, *opacity, *visible)?;
            }
            EditOp::Reorder { z, .. } => {
                let layer = layers.remove(index);
                layers.insert(*z, layer);
            }
            EditOp::Rename { name, .. } => {
                layers[index].name = name.trim().to_string();
            }
            EditOp::Merge { .. } => {
                layers[index - 1] = self.merge_down(&mut t)?;
                layers.remove(index);
            }
            EditOp::Split { layers: count, .. } => {
                let parts = self.split(&mut t, *count, progress)?;
                layers.splice(index..=index, parts);
            }
        }
        Ok(layers)
    }

    /// The target layer's pixels.
    fn pixels(&self, t: &Target<'_, '_>) -> Result<image::RgbaImage, DocumentError> {
        self.read_canvas(&t.w.key, t.doc, &t.rec)
    }

    /// An uploaded image of the member's, decoded; one that cannot be decoded is
    /// `UnreadableUpload`.
    fn load_upload(
        &self,
        owner: UserId,
        id: ImageId,
    ) -> Result<image::DynamicImage, DocumentError> {
        match self.images.load_decoded(owner, id) {
            Ok(decoded) => Ok(decoded.image),
            Err(crate::images::ImageError::Decode(e)) => Err(DocumentError::UnreadableUpload(e)),
            Err(other) => Err(other.into()),
        }
    }

    fn recolor(&self, t: &mut Target<'_, '_>, how: &Recolor) -> Result<LayerRecord, DocumentError> {
        let out = edit::recolor(&self.pixels(t)?, how).map_err(engine_err)?;
        t.w.layer(&t.rec, &out)
    }

    fn replace(
        &self,
        t: &mut Target<'_, '_>,
        image_id: ImageId,
        opts: &ReplaceOptions,
    ) -> Result<LayerRecord, DocumentError> {
        let replacement = self.load_upload(t.doc.owner, image_id)?.to_rgba8();
        let out = edit::replace(&self.pixels(t)?, &replacement, opts).map_err(engine_err)?;
        t.w.layer(&t.rec, &out)
    }

    fn inpaint(
        &self,
        t: &mut Target<'_, '_>,
        mask_image_id: ImageId,
    ) -> Result<LayerRecord, DocumentError> {
        let mask = edit::mask_from_image(
            &self.load_upload(t.doc.owner, mask_image_id)?,
            t.doc.width,
            t.doc.height,
        );
        if mask.pixels().all(|p| p.0[0] == 0) {
            return Err(invalid(
                "mask_image_id",
                "the mask marks no pixel to fill (white = fill, on black)",
            ));
        }
        let inference = self.images.inference.get().cloned();
        let fill = |img: &RgbImage, m: &GrayImage| match &inference {
            Some(models) => models.inpaint(img, m),
            None => crate::engine::inpaint::patchmatch_inpaint(img, m, &Default::default()),
        };
        let out = edit::inpaint_layer(&self.pixels(t)?, &mask, &fill).map_err(engine_err)?;
        t.w.layer(&t.rec, &out)
    }

    fn transform(
        &self,
        t: &mut Target<'_, '_>,
        (dx, dy, scale): (i32, i32, f32),
        opacity: Option<f32>,
        visible: Option<bool>,
    ) -> Result<LayerRecord, DocumentError> {
        let mut next = if dx != 0 || dy != 0 || scale != 1.0 {
            let out = edit::transform(&self.pixels(t)?, dx, dy, scale).map_err(engine_err)?;
            t.w.layer(&t.rec, &out)?
        } else {
            t.rec.clone()
        };
        if let Some(o) = opacity {
            next.opacity = o;
        }
        if let Some(v) = visible {
            next.visible = v;
        }
        Ok(next)
    }

    /// The target merged into the layer below it (which keeps its id, now fully visible).
    fn merge_down(&self, t: &mut Target<'_, '_>) -> Result<LayerRecord, DocumentError> {
        let below = t.doc.layers[t.index - 1].clone();
        let effective = |l: &LayerRecord| if l.visible { l.opacity } else { 0.0 };
        let out = edit::merge_down(
            &self.read_canvas(&t.w.key, t.doc, &below)?,
            effective(&below),
            &self.pixels(t)?,
            effective(&t.rec),
        )
        .map_err(engine_err)?;
        let merged = LayerRecord {
            visible: true,
            opacity: 1.0,
            ..below
        };
        t.w.layer(&merged, &out)
    }

    /// The target's parts, back to front; the first keeps the layer's id.
    fn split(
        &self,
        t: &mut Target<'_, '_>,
        count: LayerCount,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<LayerRecord>, DocumentError> {
        let models = self
            .images
            .inference
            .get()
            .cloned()
            .ok_or(DocumentError::ModelsNotReady(
                "split needs the decomposition models, which are not loaded",
            ))?;
        let rec = t.rec.clone();
        let layer = Layer {
            name: rec.name.clone(),
            kind: rec.kind,
            origin: [0, 0],
            rgba: self.pixels(t)?,
            text: rec.text.clone(),
        };
        let opts = PeelOptions {
            layers: count,
            ..Default::default()
        };
        let parts =
            crate::engine::decompose::split_layer(&layer, models.as_ref(), &opts, &mut |f, _| {
                progress(f)
            })
            .map_err(DocumentError::Split)?;
        if parts.len() < 2 {
            return Err(DocumentError::NothingToSplit(rec.name));
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
            recs.push(t.w.layer(&template, &part.rgba)?);
        }
        Ok(recs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::edit::{Fit, MaskSource};

    #[test]
    fn enumerated_fields_parse_into_their_types() {
        let id = LayerId::new();
        let img = ImageId::new();
        let op: EditOp = serde_json::from_value(serde_json::json!({
            "op": "replace", "layer_id": id, "image_id": img, "fit": "contain", "mask": "image"
        }))
        .unwrap();
        assert!(matches!(
            op,
            EditOp::Replace {
                fit: Fit::Contain,
                mask: MaskSource::Image,
                ..
            }
        ));
        let op: EditOp = serde_json::from_value(
            serde_json::json!({"op": "replace", "layer_id": id, "image_id": img}),
        )
        .unwrap();
        assert!(matches!(
            op,
            EditOp::Replace {
                fit: Fit::Cover,
                mask: MaskSource::Layer,
                ..
            }
        ));
        for bad in [
            serde_json::json!({"op": "replace", "layer_id": id, "image_id": img, "fit": "tile"}),
            serde_json::json!({"op": "split", "layer_id": id, "layers": 11}),
            serde_json::json!({"op": "split", "layer_id": id, "layers": true}),
        ] {
            assert!(serde_json::from_value::<EditOp>(bad).is_err());
        }
        let op: EditOp = serde_json::from_value(
            serde_json::json!({"op": "split", "layer_id": id, "layers": "3"}),
        )
        .unwrap();
        assert!(matches!(
            op,
            EditOp::Split {
                layers: LayerCount::Exactly(3),
                ..
            }
        ));
    }
}
