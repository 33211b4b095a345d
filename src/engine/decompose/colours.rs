//! Exact colours: given the input, the completed background and each foreground layer's alpha
//! (top first), solve every layer's colour so that compositing the stack with "over"
//! reproduces the input: F = C_below + (C_above − C_below)/α, raising α where a colour would
//! leave [0, 1] (so no halo is clamped away and the stack stays exact to 8-bit rounding).

use image::{RgbImage, RgbaImage};

/// Solves the layers. `alphas` are top first; the result is (background, layers top first).
pub fn solve(
    img: &RgbImage,
    background: &RgbImage,
    alphas: &[Vec<f32>],
) -> (RgbaImage, Vec<RgbaImage>) {
    let (w, h) = img.dimensions();
    let n = (w * h) as usize;
    let to_f = |im: &RgbImage| {
        im.as_raw()
            .iter()
            .map(|v| *v as f32 / 255.0)
            .collect::<Vec<f32>>()
    };
    let mut above = to_f(img);
    let bg = to_f(background);
    let mut layers = Vec::with_capacity(alphas.len());
    for alpha in alphas {
        let mut below = above.clone();
        let mut out = vec![0u8; n * 4];
        for i in 0..n {
            let a0 = alpha[i];
            if a0 <= 0.0 {
                continue;
            }
            let mut need = a0;
            for c in 0..3 {
                let (up, lo) = (above[i * 3 + c], bg[i * 3 + c]);
                let d = up - lo;
                let req = if d > 0.0 {
                    if lo >= 1.0 {
                        1.0
                    } else {
                        d / (1.0 - lo)
                    }
                } else if d < 0.0 {
                    if lo <= 0.0 {
                        1.0
                    } else {
                        -d / lo
                    }
                } else {
                    0.0
                };
                need = need.max(req);
            }
            let aq = ((need.min(1.0) * 255.0).ceil()).clamp(1.0, 255.0);
            let a = aq / 255.0;
            for c in 0..3 {
                let lo = bg[i * 3 + c];
                below[i * 3 + c] = lo;
                let f = lo + (above[i * 3 + c] - lo) / a;
                out[i * 4 + c] = (f * 255.0).round().clamp(0.0, 255.0) as u8;
            }
            out[i * 4 + 3] = aq as u8;
        }
        layers.push(RgbaImage::from_raw(w, h, out).expect("sizes match"));
        above = below;
    }
    let bg_layer: Vec<u8> = above
        .chunks_exact(3)
        .flat_map(|p| {
            [
                (p[0] * 255.0).round() as u8,
                (p[1] * 255.0).round() as u8,
                (p[2] * 255.0).round() as u8,
                255,
            ]
        })
        .collect();
    (
        RgbaImage::from_raw(w, h, bg_layer).expect("sizes match"),
        layers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Layer, LayerKind, LayerStack};

    #[test]
    fn any_alpha_and_background_recompose_the_input() {
        let (w, h) = (32u32, 16u32);
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 16) as u8, ((x * y) % 255) as u8])
        });
        let bg = RgbImage::from_fn(w, h, |x, _| image::Rgb([255 - (x * 8) as u8, 128, 3]));
        let a1: Vec<f32> = (0..w * h)
            .map(|i| if (i % w) < 12 { 0.7 } else { 0.0 })
            .collect();
        let a2: Vec<f32> = (0..w * h)
            .map(|i| ((i % w) as f32 / w as f32) * 0.5)
            .collect();
        let (bgl, layers) = solve(&img, &bg, &[a1, a2]);
        let mut stack = vec![Layer {
            name: "bg".into(),
            kind: LayerKind::Background,
            rgba: bgl,
            text: None,
        }];
        for l in layers.into_iter().rev() {
            stack.push(Layer {
                name: "l".into(),
                kind: LayerKind::Object,
                rgba: l,
                text: None,
            });
        }
        let s = LayerStack {
            width: w,
            height: h,
            layers: stack,
        };
        assert!(s.recon_psnr(&img) > 50.0, "{}", s.recon_psnr(&img));
    }
}
