//! The layer stack every decomposition produces and every exporter reads: full-canvas RGBA
//! layers, back to front, each with a kind and a name (text layers carry their string).
//! Invariant: compositing the stack with "over" on black reproduces the source image.

use image::{RgbImage, RgbaImage};
use serde::{Deserialize, Serialize};

/// What a layer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Background,
    Object,
    Text,
}

impl LayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Background => "background",
            LayerKind::Object => "object",
            LayerKind::Text => "text",
        }
    }
}

/// One full-canvas RGBA layer (straight, not premultiplied, alpha).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
    pub rgba: RgbaImage,
    /// The recognised string of a text layer.
    pub text: Option<String>,
}

impl Layer {
    /// `[x, y, w, h]` of the pixels with alpha > 0 (all zeros for an empty layer).
    pub fn bbox(&self) -> [u32; 4] {
        let (w, h) = self.rgba.dimensions();
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        for (x, y, p) in self.rgba.enumerate_pixels() {
            if p.0[3] > 0 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
        if x1 <= x0 {
            [0, 0, 0, 0]
        } else {
            [x0, y0, x1 - x0, y1 - y0]
        }
    }
}

/// How a layer is shown: the display settings a document keeps beside the pixels, and that
/// PSD and OpenRaster files carry per layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerProps {
    /// 0.0 (transparent) to 1.0 (opaque).
    pub opacity: f32,
    pub visible: bool,
}

impl Default for LayerProps {
    fn default() -> Self {
        Self {
            opacity: 1.0,
            visible: true,
        }
    }
}

/// A decomposition: layers back to front at the source resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStack {
    pub width: u32,
    pub height: u32,
    pub layers: Vec<Layer>,
}

impl LayerStack {
    /// The stack composited with "over" on black, rounded to 8 bits.
    pub fn composite(&self) -> RgbImage {
        let n = (self.width * self.height) as usize;
        let mut acc = vec![0f32; n * 3];
        for layer in &self.layers {
            for (i, p) in layer.rgba.as_raw().chunks_exact(4).enumerate() {
                let a = p[3] as f32 / 255.0;
                if a == 0.0 {
                    continue;
                }
                for c in 0..3 {
                    let v = &mut acc[i * 3 + c];
                    *v = p[c] as f32 / 255.0 * a + *v * (1.0 - a);
                }
            }
        }
        let bytes = acc
            .iter()
            .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect();
        RgbImage::from_raw(self.width, self.height, bytes).expect("sizes match")
    }

    /// PSNR (dB, capped at 99) of the composite against `img`, as `eval` scores it.
    pub fn recon_psnr(&self, img: &RgbImage) -> f64 {
        let comp = self.composite();
        let mse = comp
            .as_raw()
            .iter()
            .zip(img.as_raw())
            .map(|(a, b)| {
                let d = (*a as f64 - *b as f64) / 255.0;
                d * d
            })
            .sum::<f64>()
            / comp.as_raw().len().max(1) as f64;
        if mse == 0.0 {
            99.0
        } else {
            (10.0 * (1.0 / mse).log10()).min(99.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_and_bbox() {
        let bg = RgbaImage::from_pixel(4, 3, image::Rgba([10, 20, 30, 255]));
        let mut fg = RgbaImage::new(4, 3);
        fg.put_pixel(1, 1, image::Rgba([200, 100, 0, 255]));
        fg.put_pixel(2, 2, image::Rgba([255, 255, 255, 128]));
        let stack = LayerStack {
            width: 4,
            height: 3,
            layers: vec![
                Layer {
                    name: "bg".into(),
                    kind: LayerKind::Background,
                    rgba: bg,
                    text: None,
                },
                Layer {
                    name: "o".into(),
                    kind: LayerKind::Object,
                    rgba: fg,
                    text: None,
                },
            ],
        };
        assert_eq!(stack.layers[1].bbox(), [1, 1, 2, 2]);
        let c = stack.composite();
        assert_eq!(c.get_pixel(0, 0).0, [10, 20, 30]);
        assert_eq!(c.get_pixel(1, 1).0, [200, 100, 0]);
        assert_eq!(c.get_pixel(2, 2).0, [133, 138, 143]);
        assert_eq!(stack.recon_psnr(&c), 99.0);
    }
}
