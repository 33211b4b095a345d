//! An optional, user-supplied inpainting model with the LaMa / MI-GAN signature:
//! image `[1,3,H,W]` + mask `[1,1,H,W]` → image `[1,3,H,W]`.
//!
//! The wrapper adapts to what the model declares:
//! - inputs are told apart by name (one containing "mask") or else by channel count (1 vs 3);
//! - `float` inputs get the image as RGB in 0..1 and the mask as 0/1 (LaMa's convention);
//!   `uint8` inputs get 0..255 and 0/255 (MI-GAN's ONNX pipeline);
//! - a fixed spatial size (e.g. LaMa exports at 512×512) means resize in, resize back out;
//!   dynamic sizes are padded (edge-replicated) to a multiple of 8 and cropped back;
//! - a `float` output in 0..1 is scaled by 255, one that goes above 1.5 is taken as 0..255
//!   already; a `uint8` output is used as is.
//!
//! Mask convention for callers: nonzero = the hole to fill. Invariant: pixels outside the
//! mask are returned unchanged; only the hole takes the model's colours.

use std::sync::Arc;

use image::{GrayImage, RgbImage};
use ort::value::TensorElementType;

use super::resize::resize_rgb8_pil;
use super::session::ModelSession;
use super::InferenceError;

const MODEL: &str = "inpaint";

/// The configured inpainting model; cheap to clone.
#[derive(Clone)]
pub struct Inpainter {
    session: Arc<ModelSession>,
    layout: Layout,
}

/// What the model expects, read from its input descriptions once.
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    image_name: String,
    mask_name: String,
    uint8: bool,
    /// `(width, height)` when the model has a fixed spatial size.
    fixed: Option<(usize, usize)>,
}

impl Inpainter {
    pub(crate) fn new(session: Arc<ModelSession>) -> Result<Self, InferenceError> {
        let layout = session.inspect(|s| {
            let inputs: Vec<(String, Option<TensorElementType>, Vec<i64>)> = s
                .inputs()
                .iter()
                .map(|o| {
                    let ty = o.dtype();
                    (
                        o.name().to_owned(),
                        ty.tensor_type(),
                        ty.tensor_shape().map(|s| s.to_vec()).unwrap_or_default(),
                    )
                })
                .collect();
            layout_of(&inputs)
        })?;
        Ok(Self { session, layout })
    }

    /// Fills the nonzero pixels of `mask` in `img`. `mask` must have `img`'s size.
    pub fn inpaint(&self, img: &RgbImage, mask: &GrayImage) -> Result<RgbImage, InferenceError> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return Err(InferenceError::BadInput("the image is empty".into()));
        }
        if mask.dimensions() != img.dimensions() {
            return Err(InferenceError::BadInput(format!(
                "the mask is {}×{} but the image is {w}×{h}",
                mask.width(),
                mask.height()
            )));
        }
        if mask.as_raw().iter().all(|&m| m == 0) {
            return Ok(img.clone());
        }
        let (mw, mh) = self
            .layout
            .fixed
            .unwrap_or((w.div_ceil(8) * 8, h.div_ceil(8) * 8));
        let (rgb, holes) = match self.layout.fixed {
            Some(_) => (
                resize_rgb8_pil(img.as_raw(), w, h, mw, mh),
                resize_mask(mask.as_raw(), w, h, mw, mh),
            ),
            None => (
                pad_edge(img.as_raw(), w, h, 3, mw, mh),
                pad_edge(mask.as_raw(), w, h, 1, mw, mh),
            ),
        };
        let out = self.run(&rgb, &holes, mw, mh)?;
        let filled = match self.layout.fixed {
            Some(_) => resize_rgb8_pil(&out, mw, mh, w, h),
            None => crop(&out, mw, w, h),
        };
        let mut result = img.clone();
        for ((px, &m), f) in result
            .as_mut()
            .chunks_exact_mut(3)
            .zip(mask.as_raw())
            .zip(filled.chunks_exact(3))
        {
            if m != 0 {
                px.copy_from_slice(f);
            }
        }
        Ok(result)
    }

    /// Runs the model on packed RGB and a 0/1 hole map of `w × h`; returns packed RGB.
    fn run(&self, rgb: &[u8], holes: &[u8], w: usize, h: usize) -> Result<Vec<u8>, InferenceError> {
        let plane = w * h;
        let image_shape = [1usize, 3, h, w];
        let mask_shape = [1usize, 1, h, w];
        let layout = &self.layout;
        self.session.run(|session| {
            let failed = |e: ort::Error| InferenceError::failed(MODEL, e);
            let outputs = if layout.uint8 {
                let mut image = vec![0u8; 3 * plane];
                for (i, px) in rgb.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        image[c * plane + i] = px[c];
                    }
                }
                let mask: Vec<u8> = holes.iter().map(|&m| m * 255).collect();
                let image = ort::value::Tensor::from_array((image_shape, image)).map_err(failed)?;
                let mask = ort::value::Tensor::from_array((mask_shape, mask)).map_err(failed)?;
                session
                    .run(ort::inputs![
                        layout.image_name.as_str() => image,
                        layout.mask_name.as_str() => mask,
                    ])
                    .map_err(failed)?
            } else {
                let mut image = vec![0.0f32; 3 * plane];
                for (i, px) in rgb.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        image[c * plane + i] = px[c] as f32 / 255.0;
                    }
                }
                let mask: Vec<f32> = holes.iter().map(|&m| m as f32).collect();
                let image = ort::value::Tensor::from_array((image_shape, image)).map_err(failed)?;
                let mask = ort::value::Tensor::from_array((mask_shape, mask)).map_err(failed)?;
                session
                    .run(ort::inputs![
                        layout.image_name.as_str() => image,
                        layout.mask_name.as_str() => mask,
                    ])
                    .map_err(failed)?
            };
            let value = &outputs[0];
            let planes: Vec<f32> = match value.try_extract_tensor::<f32>() {
                Ok((_, data)) => {
                    let max = data.iter().fold(0.0f32, |m, &v| m.max(v));
                    let scale = if max > 1.5 { 1.0 } else { 255.0 };
                    data.iter().map(|&v| v * scale).collect()
                }
                Err(_) => {
                    let (_, data) = value.try_extract_tensor::<u8>().map_err(failed)?;
                    data.iter().map(|&v| v as f32).collect()
                }
            };
            if planes.len() != 3 * plane {
                return Err(InferenceError::failed(
                    MODEL,
                    format!("output has {} values, expected 3×{h}×{w}", planes.len()),
                ));
            }
            let mut out = vec![0u8; 3 * plane];
            for i in 0..plane {
                for c in 0..3 {
                    out[i * 3 + c] = planes[c * plane + i].round().clamp(0.0, 255.0) as u8;
                }
            }
            Ok(out)
        })
    }
}

/// Works out input names, element type and fixed size from `(name, type, shape)` triples.
fn layout_of(
    inputs: &[(String, Option<TensorElementType>, Vec<i64>)],
) -> Result<Layout, InferenceError> {
    let bad = |why: String| InferenceError::ModelLoadFailed {
        model: MODEL,
        path: Default::default(),
        cause: format!("not an image + mask → image model: {why}"),
    };
    if inputs.len() != 2 {
        return Err(bad(format!("{} inputs", inputs.len())));
    }
    let channels = |shape: &[i64]| shape.get(1).copied().unwrap_or(-1);
    let mask_at = inputs
        .iter()
        .position(|(n, _, _)| n.to_ascii_lowercase().contains("mask"))
        .or_else(|| inputs.iter().position(|(_, _, s)| channels(s) == 1))
        .ok_or_else(|| bad("no input named *mask* or with one channel".into()))?;
    let (image, mask) = (&inputs[1 - mask_at], &inputs[mask_at]);
    let uint8 = match image.1 {
        Some(TensorElementType::Float32) => false,
        Some(TensorElementType::Uint8) => true,
        other => return Err(bad(format!("image input type {other:?}"))),
    };
    if image.2.len() != 4 || mask.2.len() != 4 {
        return Err(bad("inputs are not 4-D".into()));
    }
    let fixed = match (image.2[2], image.2[3]) {
        (h, w) if h > 0 && w > 0 => Some((w as usize, h as usize)),
        _ => None,
    };
    Ok(Layout {
        image_name: image.0.clone(),
        mask_name: mask.0.clone(),
        uint8,
        fixed,
    })
}

/// A mask resized (nearest-ish via Pillow bilinear, thresholded at any coverage) to 0/1.
fn resize_mask(mask: &[u8], w: usize, h: usize, dw: usize, dh: usize) -> Vec<u8> {
    let rgb: Vec<u8> = mask.iter().flat_map(|&m| [m, m, m]).collect();
    resize_rgb8_pil(&rgb, w, h, dw, dh)
        .chunks_exact(3)
        .map(|p| (p[0] != 0) as u8)
        .collect()
}

/// Pads `channels`-interleaved `w × h` pixels to `dw × dh` by replicating the last row and
/// column; mask bytes come out as 0/1.
fn pad_edge(src: &[u8], w: usize, h: usize, channels: usize, dw: usize, dh: usize) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh * channels];
    for y in 0..dh {
        let sy = y.min(h - 1);
        for x in 0..dw {
            let sx = x.min(w - 1);
            let s = (sy * w + sx) * channels;
            let o = (y * dw + x) * channels;
            out[o..o + channels].copy_from_slice(&src[s..s + channels]);
        }
    }
    if channels == 1 {
        out.iter_mut().for_each(|m| *m = (*m != 0) as u8);
    }
    out
}

/// The top-left `w × h` of packed RGB rows of width `stride`.
fn crop(src: &[u8], stride: usize, w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        out.extend_from_slice(&src[y * stride * 3..(y * stride + w) * 3]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(
        name: &str,
        ty: TensorElementType,
        shape: &[i64],
    ) -> (String, Option<TensorElementType>, Vec<i64>) {
        (name.to_owned(), Some(ty), shape.to_vec())
    }

    #[test]
    fn layout_reads_lama_and_migan_signatures() {
        let lama = layout_of(&[
            input("image", TensorElementType::Float32, &[1, 3, 512, 512]),
            input("mask", TensorElementType::Float32, &[1, 1, 512, 512]),
        ])
        .expect("lama");
        assert_eq!(lama.fixed, Some((512, 512)));
        assert!(!lama.uint8);
        let migan = layout_of(&[
            input("m", TensorElementType::Uint8, &[1, 1, -1, -1]),
            input("img", TensorElementType::Uint8, &[1, 3, -1, -1]),
        ])
        .expect("migan");
        assert_eq!(
            (migan.image_name.as_str(), migan.mask_name.as_str()),
            ("img", "m")
        );
        assert!(migan.uint8 && migan.fixed.is_none());
        let err = layout_of(&[input("x", TensorElementType::Float32, &[1, 3, 8, 8])])
            .expect_err("one input");
        assert_eq!(err.code(), "model_load_failed");
    }

    #[test]
    fn padding_replicates_edges_and_crop_undoes_it() {
        let src: Vec<u8> = (0..3 * 2 * 3).map(|v| v as u8).collect(); // 3×2 RGB
        let padded = pad_edge(&src, 3, 2, 3, 8, 8);
        assert_eq!(padded.len(), 8 * 8 * 3);
        // the bottom-right padding pixel repeats the source's last pixel (2, 1)
        assert_eq!(&padded[(7 * 8 + 7) * 3..], &src[(3 + 2) * 3..]);
        assert_eq!(crop(&padded, 8, 3, 2), src);
        let mask = pad_edge(&[0, 200, 0, 0], 2, 2, 1, 8, 8);
        assert_eq!(mask[1], 1);
        assert_eq!(mask[7], 1); // replicated from (1, 0)
    }

    #[test]
    fn masks_resize_to_binary() {
        let mut mask = vec![0u8; 16 * 16];
        mask[5 * 16 + 5] = 255;
        let small = resize_mask(&mask, 16, 16, 8, 8);
        assert!(small.iter().all(|&m| m <= 1));
        assert!(small.contains(&1));
    }
}
