//! Recursive decomposition: splitting one layer into sub-layers (the editing issue's `split`
//! op). The layer, flattened on white, goes through the peel pipeline; each of its pixels is
//! then given to exactly one sub-layer — the topmost found object that is solid there, else the
//! base — with the layer's own colour and alpha. Supports are disjoint, so the sub-layers
//! composite back to the layer exactly, whatever the layer's transparency.

use image::{RgbImage, RgbaImage};

use super::{peel, DecomposeError, PeelModels, PeelOptions};
use crate::engine::{Layer, LayerKind};

/// Splits `layer`; returns it unchanged (one element) when nothing separable is found.
/// `progress` gets the peel pipeline's (fraction, stage).
pub fn split_layer(
    layer: &Layer,
    models: &dyn PeelModels,
    opts: &PeelOptions,
    progress: &mut dyn FnMut(f32, &str),
) -> Result<Vec<Layer>, DecomposeError> {
    let (w, h) = layer.rgba.dimensions();
    let flat = RgbImage::from_fn(w, h, |x, y| {
        let p = layer.rgba.get_pixel(x, y).0;
        let a = p[3] as f32 / 255.0;
        let mix = |c: u8| (c as f32 * a + 255.0 * (1.0 - a)).round() as u8;
        image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    });
    // the objects apart, whatever kind of image the layer came from
    let opts = PeelOptions {
        photo_subject: false,
        ..opts.clone()
    };
    let (stack, _) = peel(&flat, models, &opts, progress)?;
    // owner[i] = index into stack.layers of the sub-layer that takes pixel i (0 = base)
    let n = (w * h) as usize;
    let mut owner = vec![0usize; n];
    for (li, sub) in stack.layers.iter().enumerate().skip(1) {
        for (i, p) in sub.canvas_pixels(w) {
            if p[3] >= 128 {
                owner[i] = li;
            }
        }
    }
    let mut parts: Vec<Layer> = Vec::new();
    for (li, sub) in stack.layers.iter().enumerate() {
        let mut rgba = RgbaImage::new(w, h);
        let mut any = false;
        for (i, (dst, src)) in rgba.pixels_mut().zip(layer.rgba.pixels()).enumerate() {
            if owner[i] == li && src.0[3] > 0 {
                *dst = *src;
                any = true;
            }
        }
        if !any {
            continue;
        }
        let (name, kind, text) = if li == 0 {
            (
                format!("{} (base)", layer.name),
                layer.kind,
                layer.text.clone(),
            )
        } else {
            let kind = if sub.kind == LayerKind::Background {
                LayerKind::Object
            } else {
                sub.kind
            };
            (
                format!("{} / {}", layer.name, sub.name),
                kind,
                sub.text.clone(),
            )
        };
        parts.push(Layer {
            name,
            kind,
            // the parts share the layer's frame
            origin: layer.origin,
            rgba,
            text,
        });
    }
    if parts.len() <= 1 {
        return Ok(vec![layer.clone()]);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LayerStack;
    use image::GrayImage;

    /// Salient = anything not white.
    struct NotWhite;
    impl PeelModels for NotWhite {
        fn matte(&self, img: &RgbImage) -> Result<Vec<f32>, String> {
            Ok(img
                .pixels()
                .map(|p| if p.0 == [255, 255, 255] { 0.0 } else { 1.0 })
                .collect())
        }
        fn text_lines(&self, _: &RgbImage) -> Result<Vec<super::super::TextLine>, String> {
            Ok(vec![])
        }
        fn inpaint(&self, img: &RgbImage, mask: &GrayImage) -> RgbImage {
            let mut out = img.clone();
            for (x, y, m) in mask.enumerate_pixels() {
                if m.0[0] > 0 {
                    out.put_pixel(x, y, image::Rgb([255, 255, 255]));
                }
            }
            out
        }
    }

    #[test]
    fn a_layer_with_two_objects_splits_into_parts_that_recompose_it_exactly() {
        let (w, h) = (100u32, 60u32);
        let mut rgba = RgbaImage::new(w, h);
        for y in 10..30 {
            for x in 5..35 {
                rgba.put_pixel(x, y, image::Rgba([200, 30, 30, 255]));
            }
            for x in 60..90 {
                rgba.put_pixel(x, y + 20, image::Rgba([20, 90, 200, 160])); // half transparent
            }
        }
        let layer = Layer {
            name: "Object 1".into(),
            kind: LayerKind::Object,
            origin: [0, 0],
            rgba,
            text: None,
        };
        let parts =
            split_layer(&layer, &NotWhite, &PeelOptions::default(), &mut |_, _| {}).unwrap();
        assert_eq!(
            parts.len(),
            2,
            "{:?}",
            parts.iter().map(|p| &p.name).collect::<Vec<_>>()
        );
        assert!(parts.iter().all(|p| p.name.starts_with("Object 1")));
        // over any background, the parts composite exactly like the layer
        let bg = Layer {
            name: "bg".into(),
            kind: LayerKind::Background,
            origin: [0, 0],
            rgba: RgbaImage::from_pixel(w, h, image::Rgba([10, 200, 100, 255])),
            text: None,
        };
        let whole = LayerStack {
            width: w,
            height: h,
            layers: vec![bg.clone(), layer.clone()],
        };
        let mut split = vec![bg];
        split.extend(parts);
        let split = LayerStack {
            width: w,
            height: h,
            layers: split,
        };
        assert_eq!(split.composite(), whole.composite());
    }

    #[test]
    fn an_inseparable_layer_comes_back_whole() {
        let rgba = RgbaImage::from_pixel(40, 40, image::Rgba([0, 0, 0, 0]));
        let layer = Layer {
            name: "Empty".into(),
            kind: LayerKind::Object,
            origin: [0, 0],
            rgba,
            text: None,
        };
        let parts =
            split_layer(&layer, &NotWhite, &PeelOptions::default(), &mut |_, _| {}).unwrap();
        assert_eq!(parts, vec![layer]);
    }
}
