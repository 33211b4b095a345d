//! The layer stack every decomposition produces and every exporter reads: RGBA layers, back
//! to front, each with a kind and a name (text layers carry their string). A layer holds only
//! its pixels' rectangle (`origin` on the canvas plus the `rgba` image); the canvas around it
//! is transparent, so a small object on a 24-megapixel photo costs its own box, not 96 MB.
//! Invariant: compositing the stack with "over" on black reproduces the source image.

use std::borrow::Cow;

use image::{RgbImage, Rgba, RgbaImage};
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

/// One RGBA layer (straight, not premultiplied, alpha): `rgba` placed at `origin` on the
/// canvas, transparent everywhere else.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
    /// Canvas position of `rgba`'s top-left pixel (`[0, 0]` for a full-canvas layer).
    pub origin: [u32; 2],
    pub rgba: RgbaImage,
    /// The recognised string of a text layer.
    pub text: Option<String>,
}

impl Layer {
    /// `[x, y, w, h]` on the canvas of the pixels with alpha > 0 (all zeros for an empty
    /// layer).
    pub fn bbox(&self) -> [u32; 4] {
        match alpha_box(&self.rgba) {
            None => [0, 0, 0, 0],
            Some([x, y, w, h]) => [self.origin[0] + x, self.origin[1] + y, w, h],
        }
    }

    /// `[x, y, w, h]` on the canvas of what the layer holds (its `rgba`, visible or not).
    pub fn rect(&self) -> [u32; 4] {
        let (w, h) = self.rgba.dimensions();
        [self.origin[0], self.origin[1], w, h]
    }

    /// Whether the layer's rectangle lies on a `width × height` canvas.
    pub fn fits(&self, width: u32, height: u32) -> bool {
        let [x, y, w, h] = self.rect();
        u64::from(x) + u64::from(w) <= u64::from(width)
            && u64::from(y) + u64::from(h) <= u64::from(height)
    }

    /// The pixel at canvas position `(x, y)` (transparent outside the layer's rectangle).
    pub fn pixel(&self, x: u32, y: u32) -> Rgba<u8> {
        let [ox, oy, w, h] = self.rect();
        if x < ox || y < oy || x - ox >= w || y - oy >= h {
            Rgba([0, 0, 0, 0])
        } else {
            *self.rgba.get_pixel(x - ox, y - oy)
        }
    }

    /// Each held pixel with its index on a canvas `width` pixels wide.
    pub fn canvas_pixels(&self, width: u32) -> impl Iterator<Item = (usize, &[u8])> + '_ {
        let lw = self.rgba.width().max(1) as usize;
        let [ox, oy] = self.origin.map(|v| v as usize);
        let width = width as usize;
        self.rgba
            .as_raw()
            .chunks_exact(4)
            .enumerate()
            .map(move |(i, p)| ((oy + i / lw) * width + ox + i % lw, p))
    }

    /// A layer holding the box of the visible pixels of `canvas` (a full-canvas image).
    pub fn from_canvas(
        name: String,
        kind: LayerKind,
        text: Option<String>,
        canvas: &RgbaImage,
    ) -> Self {
        let (origin, rgba) = visible_box(canvas, [0, 0]);
        Layer {
            name,
            kind,
            origin,
            rgba,
            text,
        }
    }

    /// The same layer holding only the box of its visible pixels (a 0×0 image at the
    /// canvas's origin when none is).
    pub fn cropped(self) -> Self {
        if let Cow::Owned(crop) = self.tight() {
            return crop;
        }
        self
    }

    /// [`Layer::cropped`] without giving up the layer: borrowed when it already is its box.
    pub fn tight(&self) -> Cow<'_, Layer> {
        let (w, h) = self.rgba.dimensions();
        match alpha_box(&self.rgba) {
            Some(b) if b == [0, 0, w, h] => return Cow::Borrowed(self),
            None if w == 0 || h == 0 => return Cow::Borrowed(self),
            _ => {}
        }
        let (origin, rgba) = visible_box(&self.rgba, self.origin);
        Cow::Owned(Layer {
            name: self.name.clone(),
            kind: self.kind,
            origin,
            rgba,
            text: self.text.clone(),
        })
    }

    /// The layer drawn on a transparent `width × height` canvas.
    pub fn to_canvas(&self, width: u32, height: u32) -> RgbaImage {
        let mut out = RgbaImage::new(width, height);
        image::imageops::replace(
            &mut out,
            &self.rgba,
            i64::from(self.origin[0]),
            i64::from(self.origin[1]),
        );
        out
    }
}

/// The box of `rgba`'s visible pixels and its canvas position, `rgba` being at `origin` (a
/// 0×0 image at the canvas's origin when nothing is visible).
fn visible_box(rgba: &RgbaImage, origin: [u32; 2]) -> ([u32; 2], RgbaImage) {
    match alpha_box(rgba) {
        Some([x, y, w, h]) => (
            [origin[0] + x, origin[1] + y],
            image::imageops::crop_imm(rgba, x, y, w, h).to_image(),
        ),
        None => ([0, 0], RgbaImage::new(0, 0)),
    }
}

/// `[x, y, w, h]` within `rgba` of the pixels with alpha > 0; `None` when there are none.
pub(crate) fn alpha_box(rgba: &RgbaImage) -> Option<[u32; 4]> {
    let (w, h) = rgba.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (y, row) in rgba
        .as_raw()
        .chunks_exact(w.max(1) as usize * 4)
        .enumerate()
    {
        let mut alpha = row.chunks_exact(4).map(|p| p[3]);
        let Some(first) = alpha.position(|a| a > 0) else {
            continue;
        };
        let last = row.chunks_exact(4).rposition(|p| p[3] > 0).unwrap_or(first);
        x0 = x0.min(first as u32);
        x1 = x1.max(last as u32 + 1);
        y0 = y0.min(y as u32);
        y1 = y as u32 + 1;
    }
    (x1 > x0).then(|| [x0, y0, x1 - x0, y1 - y0])
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
            for (i, p) in layer.canvas_pixels(self.width) {
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
                    origin: [0, 0],
                    rgba: bg,
                    text: None,
                },
                Layer {
                    name: "o".into(),
                    kind: LayerKind::Object,
                    origin: [0, 0],
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

    #[test]
    fn a_layer_holds_its_box_and_reads_as_the_canvas() {
        let mut full = RgbaImage::new(6, 5);
        full.put_pixel(2, 1, image::Rgba([1, 2, 3, 4]));
        full.put_pixel(4, 3, image::Rgba([5, 6, 7, 255]));
        full.put_pixel(0, 4, image::Rgba([9, 9, 9, 0])); // invisible: not part of the box
        let layer = Layer::from_canvas("o".into(), LayerKind::Object, None, &full);
        assert_eq!((layer.origin, layer.rgba.dimensions()), ([2, 1], (3, 3)));
        assert_eq!((layer.rect(), layer.bbox()), ([2, 1, 3, 3], [2, 1, 3, 3]));
        assert_eq!(layer.pixel(4, 3).0, [5, 6, 7, 255]);
        assert_eq!(layer.pixel(5, 4).0, [0; 4]);
        assert!(layer.fits(6, 5) && !layer.fits(4, 5));
        let mut back = full.clone();
        back.put_pixel(0, 4, image::Rgba([0; 4]));
        assert_eq!(layer.to_canvas(6, 5), back);
        let placed: Vec<usize> = layer.canvas_pixels(6).map(|(i, _)| i).collect();
        assert_eq!(placed, [8, 9, 10, 14, 15, 16, 20, 21, 22]);
        // already its box: borrowed; a full-canvas copy: cropped to the same box
        assert!(matches!(layer.tight(), Cow::Borrowed(_)));
        let wide = Layer {
            origin: [0, 0],
            rgba: full,
            ..layer.clone()
        };
        assert_eq!(wide.cropped(), layer);
        let empty = Layer::from_canvas("e".into(), LayerKind::Object, None, &RgbaImage::new(3, 3));
        assert_eq!((empty.rect(), empty.bbox()), ([0; 4], [0; 4]));
        assert_eq!(empty.to_canvas(2, 2), RgbaImage::new(2, 2));
    }
}
