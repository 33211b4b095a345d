//! Camera-size images. The analysis of a decomposition (text lines, salient objects, their
//! parts, the fills that later passes look at) runs on a working copy at most
//! [`super::PeelOptions::work_side`] pixels on its long side, the detail ISNet sees anyway.
//! Full resolution is used only where it changes the answer:
//! - each layer's alpha is scaled up, then, where its edge runs, read off the full-size
//!   colours (a local two-colour model of the edge), in tiles (only those the edge
//!   crosses). It is held as a crop of the layer's box ([`AlphaCrop`]);
//! - the background is completed at full size, coarse to fine (`inpaint::fine`);
//! - the colours are solved pixel by pixel.
//!
//! No full-canvas floating-point buffer exists at full size.

use image::{GrayImage, RgbImage};

/// Least distance (RGB, 0..255) between an edge's two local colours for the full-size
/// pixels to decide it.
const MIN_CONTRAST: f32 = 24.0;
/// A scaled-up alpha at least this (or at most 1 minus it) is sure foreground (background)
/// for the edge's colour model.
const SURE: f32 = 0.9;
/// Side of the tiles the full-size refinement works in (bounded memory whatever the size).
const TILE: usize = 256;

/// A layer's alpha at full size, held over its box: `data` is `w × h`, row-major, at
/// `(x, y)` on the canvas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlphaCrop {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub data: Vec<u8>,
}

impl AlphaCrop {
    /// The alpha (0..=255) at canvas pixel `(x, y)`; 0 outside the box.
    pub fn at(&self, x: u32, y: u32) -> u8 {
        if x < self.x || y < self.y || x >= self.x + self.w || y >= self.y + self.h {
            return 0;
        }
        self.data[((y - self.y) * self.w + x - self.x) as usize]
    }
}

/// The working size of a `w × h` image: unchanged when its long side is at most `side`,
/// else scaled to that long side.
pub fn working_size(w: u32, h: u32, side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= side {
        return (w, h);
    }
    let scale = f64::from(side) / f64::from(long);
    let s = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(8, side);
    (s(w), s(h))
}

/// The working copy: an area-averaging downscale.
pub fn downscale(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    image::imageops::thumbnail(img, w, h)
}

/// `alpha` (the working copy's, 0..1) brought up to `full`'s size: scaled bilinearly, then,
/// tile by tile and only in tiles its edge crosses, snapped to the full-size pixels
/// ([`snap_edge`]). `None` when it is empty.
pub fn upsample_alpha(full: &RgbImage, small: &RgbImage, alpha: &[f32]) -> Option<AlphaCrop> {
    let (sw, sh) = (small.width() as usize, small.height() as usize);
    let (fw, fh) = (full.width() as usize, full.height() as usize);
    let (bx0, by0, bx1, by1) = bounds(alpha, sw, sh)?;
    let (kx, ky) = (fw as f32 / sw as f32, fh as f32 / sh as f32);
    let fx0 = (((bx0 as f32 - 1.0) * kx).floor().max(0.0) as usize).min(fw - 1);
    let fy0 = (((by0 as f32 - 1.0) * ky).floor().max(0.0) as usize).min(fh - 1);
    let fx1 = (((bx1 + 2) as f32 * kx).ceil() as usize).min(fw);
    let fy1 = (((by1 + 2) as f32 * ky).ceil() as usize).min(fh);
    let (ow, oh) = (fx1 - fx0, fy1 - fy0);
    // bilinear taps into the working alpha for each full-size column and row
    let taps = |f0: usize, n: usize, k: f32, len: usize| -> Vec<(usize, usize, f32)> {
        (f0..f0 + n)
            .map(|v| {
                let u = ((v as f32 + 0.5) / k - 0.5).clamp(0.0, (len - 1) as f32);
                let i0 = u.floor() as usize;
                (i0, (i0 + 1).min(len - 1), u - i0 as f32)
            })
            .collect()
    };
    // the edge ramp spans about two working pixels; the window reaches past it both ways
    let r = (2 * kx.max(ky).ceil() as usize + 2).clamp(3, 32);
    let cols = taps(0, fw, kx, sw);
    let rows = taps(0, fh, ky, sh);
    let plain = |x: usize, y: usize| {
        let ((x0, x1, tx), (y0, y1, ty)) = (cols[x], rows[y]);
        let top = alpha[y0 * sw + x0] * (1.0 - tx) + alpha[y0 * sw + x1] * tx;
        let bottom = alpha[y1 * sw + x0] * (1.0 - tx) + alpha[y1 * sw + x1] * tx;
        top * (1.0 - ty) + bottom * ty
    };
    let mut data = vec![0u8; ow * oh];
    for ty0 in (fy0..fy1).step_by(TILE) {
        for tx0 in (fx0..fx1).step_by(TILE) {
            let (tx1, ty1) = ((tx0 + TILE).min(fx1), (ty0 + TILE).min(fy1));
            // the tile with a halo of `r`, clipped to the image
            let (hx0, hy0) = (tx0.saturating_sub(r), ty0.saturating_sub(r));
            let (hx1, hy1) = ((tx1 + r).min(fw), (ty1 + r).min(fh));
            let (hw, hh) = (hx1 - hx0, hy1 - hy0);
            let p: Vec<f32> = (0..hw * hh)
                .map(|i| plain(hx0 + i % hw, hy0 + i / hw))
                .collect();
            let q = if p.iter().any(|&v| v > 0.0 && v < 1.0) {
                snap_edge(full, (hx0, hy0, hw, hh), &p, r)
            } else {
                p
            };
            for y in ty0..ty1 {
                for x in tx0..tx1 {
                    // a trace of alpha would lift the real background under it into the
                    // layer (the colour solve raises alpha to explain the pixel over the
                    // completed background): as at the working size, under 0.1 is clear
                    let v = q[(y - hy0) * hw + x - hx0];
                    let v = if v < CLEAR { 0.0 } else { v };
                    data[(y - fy0) * ow + x - fx0] = (v * 255.0).round() as u8;
                }
            }
        }
    }
    Some(AlphaCrop {
        x: fx0 as u32,
        y: fy0 as u32,
        w: ow as u32,
        h: oh as u32,
        data,
    })
    .filter(|c| c.data.iter().any(|&v| v > 0))
}

/// The alpha across a scaled-up edge, read off the full-size colours: where `p` (the tile's
/// bilinear alpha, `rect` = x, y, w, h on the canvas) ramps between 0 and 1, each pixel's
/// colour is projected onto the line from the mean colour of the surely-background pixels
/// within `r` to that of the surely-foreground ones (the classic local two-colour model
/// of an edge). So the edge lands where the image's is, sharp where the image is and soft
/// where its colours blend. Positions within two of a side's own spreads (its texture)
/// count as that side. Where the sides are too close to tell apart, `p` stays.
fn snap_edge(full: &RgbImage, rect: (usize, usize, usize, usize), p: &[f32], r: usize) -> Vec<f32> {
    let (x0, y0, w, h) = rect;
    let fw = full.width() as usize;
    let raw = full.as_raw();
    let colour = |i: usize| {
        let g = 3 * ((y0 + i / w) * fw + x0 + i % w);
        [0, 1, 2].map(|c| f32::from(raw[g + c]))
    };
    // summed-area tables, for the sure foreground and background, of (count, r, g, b, and
    // the six colour products rr, rg, rb, gg, gb, bb), in f64 (sums of squares over a tile)
    let w1 = w + 1;
    let mut fg = vec![[0f64; STATS]; w1 * (h + 1)];
    let mut bg = vec![[0f64; STATS]; w1 * (h + 1)];
    for y in 0..h {
        let (mut rf, mut rb) = ([0f64; STATS], [0f64; STATS]);
        for x in 0..w {
            let i = y * w + x;
            let c = colour(i).map(f64::from);
            let add = |row: &mut [f64; STATS]| {
                let sample = [
                    1.0,
                    c[0],
                    c[1],
                    c[2],
                    c[0] * c[0],
                    c[0] * c[1],
                    c[0] * c[2],
                    c[1] * c[1],
                    c[1] * c[2],
                    c[2] * c[2],
                ];
                row.iter_mut().zip(sample).for_each(|(r, v)| *r += v);
            };
            if p[i] >= SURE {
                add(&mut rf);
            } else if p[i] <= 1.0 - SURE {
                add(&mut rb);
            }
            for (table, row) in [(&mut fg, rf), (&mut bg, rb)] {
                let above = table[y * w1 + x + 1];
                table[(y + 1) * w1 + x + 1] = std::array::from_fn(|k| above[k] + row[k]);
            }
        }
    }
    let window = |table: &[[f64; STATS]], x: usize, y: usize| {
        let (xa, ya) = (x.saturating_sub(r), y.saturating_sub(r));
        let (xb, yb) = ((x + r + 1).min(w), (y + r + 1).min(h));
        let at = |xx: usize, yy: usize| table[yy * w1 + xx];
        let (a, b, c, d) = (at(xb, yb), at(xa, ya), at(xa, yb), at(xb, ya));
        let sums: [f64; STATS] = std::array::from_fn(|k| a[k] + b[k] - c[k] - d[k]);
        ColourStats::of(&sums)
    };
    (0..w * h)
        .map(|i| {
            let v = p[i];
            if v <= 0.0 || v >= 1.0 {
                return v;
            }
            let (x, y) = (i % w, i / w);
            let (Some(f), Some(b)) = (window(&fg, x, y), window(&bg, x, y)) else {
                return v;
            };
            let d: [f64; 3] = std::array::from_fn(|k| f.mean[k] - b.mean[k]);
            let len2: f64 = d.iter().map(|v| v * v).sum();
            if len2 < f64::from(MIN_CONTRAST * MIN_CONTRAST) {
                return v;
            }
            let c = colour(i).map(f64::from);
            let t: f64 = (0..3).map(|k| (c[k] - b.mean[k]) * d[k]).sum::<f64>() / len2;
            // Each side's own spread along the edge's colour line: a textured side (wood
            // grain beside a spoon) scatters its pixels' positions on the line, and those
            // within two spreads of its mean are that side, not a blend.
            let (lo, hi) = (2.0 * b.spread(&d, len2), 1.0 - 2.0 * f.spread(&d, len2));
            if hi - lo < 0.2 {
                return v;
            }
            let a = ((t - lo) / (hi - lo)).clamp(0.0, 1.0) as f32;
            // the colours move the edge within the ramp, not past it: near the ramp's ends
            // the result eases into the scaled-up alpha (no hard cut where the ramp stops)
            a.clamp(1.0 - RAMP_REACH * (1.0 - v), RAMP_REACH * v)
        })
        .collect()
}

/// How far the colours may move the alpha from the scaled-up ramp: at most this many times
/// the ramp's own value (or its distance from 1).
const RAMP_REACH: f32 = 3.0;

/// A full-size alpha below this is none.
const CLEAR: f32 = 0.1;

/// Per sample: count, three colour sums and six colour-product sums.
const STATS: usize = 10;

/// Mean and covariance of the colours in a window.
struct ColourStats {
    mean: [f64; 3],
    /// rr, rg, rb, gg, gb, bb
    cov: [f64; 6],
}

impl ColourStats {
    fn of(sums: &[f64; STATS]) -> Option<Self> {
        let n = sums[0];
        if n < 1.0 {
            return None;
        }
        let mean = [sums[1] / n, sums[2] / n, sums[3] / n];
        let pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)];
        let cov = std::array::from_fn(|k| {
            let (a, b) = pairs[k];
            sums[4 + k] / n - mean[a] * mean[b]
        });
        Some(ColourStats { mean, cov })
    }

    /// The standard deviation of these colours' positions on the line along `d` (as a
    /// fraction of its length, `len2` = |d|²).
    fn spread(&self, d: &[f64; 3], len2: f64) -> f64 {
        let [rr, rg, rb, gg, gb, bb] = self.cov;
        let var = d[0] * d[0] * rr
            + d[1] * d[1] * gg
            + d[2] * d[2] * bb
            + 2.0 * (d[0] * d[1] * rg + d[0] * d[2] * rb + d[1] * d[2] * gb);
        (var.max(0.0)).sqrt() / len2
    }
}

/// Where any crop has alpha, grown by `grow` pixels (a square): the full-size hole.
pub fn hole_mask(crops: &[AlphaCrop], w: u32, h: u32, grow: usize) -> GrayImage {
    let (wu, hu) = (w as usize, h as usize);
    let mut hard = vec![false; wu * hu];
    for c in crops {
        for (row, line) in c.data.chunks_exact(c.w as usize).enumerate() {
            let y = c.y as usize + row;
            for (col, &v) in line.iter().enumerate() {
                if v > 0 {
                    hard[y * wu + c.x as usize + col] = true;
                }
            }
        }
    }
    grown_mask(&hard, w, h, grow)
}

/// `hard` (a `w × h` flag per pixel) grown by `grow` pixels (a square), as a 0/255 mask.
pub(super) fn grown_mask(hard: &[bool], w: u32, h: u32, grow: usize) -> GrayImage {
    let grown = crate::engine::inpaint::dilate(hard, w as usize, h as usize, grow);
    let data = grown.iter().map(|&g| if g { 255 } else { 0 }).collect();
    GrayImage::from_raw(w, h, data).expect("sizes match")
}

/// The inclusive box of the pixels with alpha > 0.
fn bounds(alpha: &[f32], w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        let row = &alpha[y * w..(y + 1) * w];
        if let Some(first) = row.iter().position(|&a| a > 0.0) {
            let last = row.iter().rposition(|&a| a > 0.0).unwrap_or(first);
            (x0, x1, y0, y1) = (x0.min(first), x1.max(last), y0.min(y), y);
        }
    }
    (x0 <= x1).then_some((x0, y0, x1, y1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A disc on a textured ground, at any size (the same scene).
    fn scene(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (u, v) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
            if u * u + v * v < 0.09 {
                Rgb([200, 40, 30])
            } else {
                let t = ((x * 7 + y * 3) % 40) as u8;
                Rgb([30 + t, 90 + t, 60])
            }
        })
    }

    #[test]
    fn working_size_keeps_small_images_and_scales_the_long_side() {
        assert_eq!(working_size(800, 600, 1024), (800, 600));
        assert_eq!(working_size(6000, 4000, 1024), (1024, 683));
        assert_eq!(working_size(4000, 6000, 1024), (683, 1024));
    }

    #[test]
    fn an_upsampled_alpha_follows_the_full_size_edge() {
        let (fw, fh) = (960, 720);
        let full = scene(fw, fh);
        let (sw, sh) = working_size(fw, fh, 240);
        let small = downscale(&full, sw, sh);
        // the working alpha: hard disc at the working size
        let alpha: Vec<f32> = (0..sw * sh)
            .map(|i| {
                let (x, y) = (i % sw, i / sw);
                let (u, v) = (x as f32 / sw as f32 - 0.5, y as f32 / sh as f32 - 0.5);
                f32::from(u8::from(u * u + v * v < 0.09))
            })
            .collect();
        let crop = upsample_alpha(&full, &small, &alpha).unwrap();
        // inside the disc (by more than a working pixel) opaque, outside clear, and the
        // full-size edge is sharp: few pixels in between
        let (mut wrong, mut soft, mut total) = (0, 0, 0);
        for y in 0..fh {
            for x in 0..fw {
                let (u, v) = (x as f32 / fw as f32 - 0.5, y as f32 / fh as f32 - 0.5);
                let d = (u * u + v * v).sqrt() - 0.3;
                let a = crop.at(x, y);
                if d.abs() > 0.01 {
                    total += 1;
                    if (d < 0.0) != (a > 127) {
                        wrong += 1;
                    }
                }
                soft += usize::from(a > 10 && a < 245);
            }
        }
        assert!(wrong * 1000 < total, "{wrong} of {total} on the wrong side");
        // sharper than the working alpha scaled up bilinearly
        let grey = image::GrayImage::from_fn(sw, sh, |x, y| {
            image::Luma([(alpha[(y * sw + x) as usize] * 255.0) as u8])
        });
        let plain = image::imageops::resize(&grey, fw, fh, image::imageops::FilterType::Triangle);
        let plain_soft = plain.pixels().filter(|p| p[0] > 10 && p[0] < 245).count();
        assert!(
            soft * 2 < plain_soft,
            "{soft} soft pixels, {plain_soft} when scaled up plainly"
        );
        assert!(crop.w < fw && crop.h < fh, "cropped to the disc");
    }

    #[test]
    fn hole_mask_grows_the_crops() {
        let crop = AlphaCrop {
            x: 10,
            y: 5,
            w: 2,
            h: 1,
            data: vec![0, 9],
        };
        let mask = hole_mask(&[crop], 20, 10, 1);
        let set: Vec<(u32, u32)> = (0..10)
            .flat_map(|y| (0..20).map(move |x| (x, y)))
            .filter(|&(x, y)| mask.get_pixel(x, y)[0] == 255)
            .collect();
        assert_eq!(set.len(), 9);
        assert!(set.contains(&(10, 4)) && set.contains(&(12, 6)));
    }
}
