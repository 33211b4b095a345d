//! Exact colours: given the input, the completed background and each foreground layer's alpha
//! (top first), solve every layer's colour so that compositing the stack with "over"
//! reproduces the input: F = C_below + (C_above − C_below)/α, raising α where a colour would
//! leave [0, 1] (so no halo is clamped away and the stack stays exact to 8-bit rounding).

use image::{RgbImage, RgbaImage};

use super::scale::AlphaCrop;

/// A layer's alpha as [`solve`] reads it.
pub enum AlphaPlane<'a> {
    /// Full canvas, 0..1.
    Full(&'a [f32]),
    /// A full-size crop of the layer's box (camera-size images, see [`super::scale`]).
    Crop(&'a AlphaCrop),
}

impl AlphaPlane<'_> {
    fn at(&self, i: usize, x: u32, y: u32) -> f32 {
        match self {
            AlphaPlane::Full(a) => a[i],
            AlphaPlane::Crop(c) => f32::from(c.at(x, y)) / 255.0,
        }
    }

    /// `[x, y, w, h]` holding every pixel with alpha on a canvas `w` wide (empty: zeros).
    fn rect(&self, w: u32) -> [u32; 4] {
        match self {
            AlphaPlane::Crop(c) => [c.x, c.y, c.w, c.h],
            AlphaPlane::Full(a) => super::components::alpha_bbox(a, w as usize),
        }
    }
}

/// A solved layer: its box's pixels and the box's position on the canvas.
pub type Solved = ([u32; 2], RgbaImage);

/// Solves the layers, pixel by pixel (no full-canvas float buffers; each layer is written
/// into its alpha's box only). `alphas` are top first; the result is (background, layers top
/// first).
pub fn solve(
    img: &RgbImage,
    background: &RgbImage,
    alphas: &[AlphaPlane<'_>],
) -> (RgbaImage, Vec<Solved>) {
    let (w, h) = img.dimensions();
    let n = (w * h) as usize;
    let rects: Vec<[u32; 4]> = alphas.iter().map(|a| a.rect(w)).collect();
    let mut outs: Vec<Vec<u8>> = rects
        .iter()
        .map(|r| vec![0u8; r[2] as usize * r[3] as usize * 4])
        .collect();
    let mut bg_out = vec![0u8; n * 4];
    let (src, bgr) = (img.as_raw(), background.as_raw());
    for i in 0..n {
        let (x, y) = ((i % w as usize) as u32, (i / w as usize) as u32);
        let mut above = [0, 1, 2].map(|c| src[i * 3 + c] as f32 / 255.0);
        let lo = [0, 1, 2].map(|c| bgr[i * 3 + c] as f32 / 255.0);
        for ((alpha, out), r) in alphas.iter().zip(outs.iter_mut()).zip(&rects) {
            if x < r[0] || y < r[1] || x - r[0] >= r[2] || y - r[1] >= r[3] {
                continue;
            }
            let a0 = alpha.at(i, x, y);
            if a0 <= 0.0 {
                continue;
            }
            let o = ((y - r[1]) as usize * r[2] as usize + (x - r[0]) as usize) * 4;
            let mut need = a0;
            for c in 0..3 {
                let (up, lo) = (above[c], lo[c]);
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
                let f = lo[c] + (above[c] - lo[c]) / a;
                out[o + c] = (f * 255.0).round().clamp(0.0, 255.0) as u8;
                above[c] = lo[c];
            }
            out[o + 3] = aq as u8;
        }
        for c in 0..3 {
            bg_out[i * 4 + c] = (above[c] * 255.0).round() as u8;
        }
        bg_out[i * 4 + 3] = 255;
    }
    let layers = outs
        .into_iter()
        .zip(rects)
        .map(|(o, r)| {
            let rgba = RgbaImage::from_raw(r[2], r[3], o).expect("sizes match");
            ([r[0], r[1]], rgba)
        })
        .collect();
    (
        RgbaImage::from_raw(w, h, bg_out).expect("sizes match"),
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
        let (bgl, layers) = solve(&img, &bg, &[AlphaPlane::Full(&a1), AlphaPlane::Full(&a2)]);
        let mut stack = vec![Layer {
            name: "bg".into(),
            kind: LayerKind::Background,
            origin: [0, 0],
            rgba: bgl,
            text: None,
        }];
        assert_eq!(layers[0].0, [0, 0]);
        assert_eq!(layers[0].1.dimensions(), (12, 16), "the first alpha's box");
        assert_eq!(layers[1].0, [1, 0], "column 0 has no alpha");
        for (origin, rgba) in layers.into_iter().rev() {
            stack.push(Layer {
                name: "l".into(),
                kind: LayerKind::Object,
                origin,
                rgba,
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
