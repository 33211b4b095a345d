//! Working image for the fillers: an RGB `f32` buffer plus a known/hole flag per pixel, and
//! the pyramid operations between levels.
//!
//! Invariants: `rgb.len() == 3 * w * h` and `known.len() == w * h`; values of hole pixels are
//! never read by [`Plane::downsample`], so whatever the caller left under the hole cannot leak
//! into a coarser level; [`Plane::upsample_holes_from`] writes hole pixels only.

use image::{GrayImage, RgbImage};

use super::patchmatch::HoleCounts;

/// An RGB image in `f32` (0..=255) with a flag per pixel saying whether it is known.
#[derive(Clone, Debug)]
pub(super) struct Plane {
    pub w: usize,
    pub h: usize,
    /// Interleaved RGB, row-major.
    pub rgb: Vec<f32>,
    /// `true` where the pixel is given (mask == 0), `false` in the hole.
    pub known: Vec<bool>,
}

impl Plane {
    /// Known pixels from `img`, hole where `mask > 0`; hole pixels start at 0 (never the
    /// input's values, which are the foreground being removed).
    pub fn from_image(img: &RgbImage, mask: &GrayImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let known: Vec<bool> = mask.as_raw().iter().map(|&m| m == 0).collect();
        let rgb = img
            .as_raw()
            .chunks_exact(3)
            .zip(&known)
            .flat_map(|(px, &k)| {
                let v = |c: u8| if k { f32::from(c) } else { 0.0 };
                [v(px[0]), v(px[1]), v(px[2])]
            })
            .collect();
        Plane { w, h, rgb, known }
    }

    /// Indices of the hole pixels, in scan order.
    pub fn holes(&self) -> Vec<usize> {
        (0..self.known.len()).filter(|&i| !self.known[i]).collect()
    }

    /// Half-size level (`ceil(w/2) × ceil(h/2)`): a pixel is known when any of its 2×2
    /// children is, with the mean of its known children as its value. Thin holes therefore
    /// vanish at coarse levels instead of swallowing them.
    pub fn downsample(&self) -> Plane {
        let (cw, ch) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut rgb = vec![0.0f32; cw * ch * 3];
        let mut known = vec![false; cw * ch];
        for cy in 0..ch {
            for cx in 0..cw {
                let mut sum = [0.0f32; 3];
                let mut n = 0u32;
                for y in (2 * cy)..(2 * cy + 2).min(self.h) {
                    for x in (2 * cx)..(2 * cx + 2).min(self.w) {
                        let i = y * self.w + x;
                        if self.known[i] {
                            for (s, v) in sum.iter_mut().zip(&self.rgb[3 * i..3 * i + 3]) {
                                *s += v;
                            }
                            n += 1;
                        }
                    }
                }
                if n > 0 {
                    let ci = cy * cw + cx;
                    known[ci] = true;
                    for (o, s) in rgb[3 * ci..3 * ci + 3].iter_mut().zip(sum) {
                        *o = s / n as f32;
                    }
                }
            }
        }
        Plane {
            w: cw,
            h: ch,
            rgb,
            known,
        }
    }

    /// Makes every known pixel within `d` pixels (a square) of a hole a hole too; keeps at
    /// least one known pixel.
    pub fn widen_holes(&mut self, d: usize) {
        if d == 0 {
            return;
        }
        let holes = HoleCounts::new(&self.known, self.w, self.h);
        let widened: Vec<bool> = (0..self.w * self.h)
            .map(|i| !holes.near(i % self.w, i / self.w, d))
            .collect();
        if widened.iter().any(|k| *k) {
            self.known = widened;
        }
    }

    /// Sets every hole pixel to the bilinear sample of `coarse` (the completed level below,
    /// half the size) at its position; known pixels are left alone.
    pub fn upsample_holes_from(&mut self, coarse: &Plane) {
        let rgb = &mut self.rgb;
        for_each_hole_upsampled(&self.known, self.w, self.h, coarse, |i, v| {
            rgb[3 * i..3 * i + 3].copy_from_slice(&v);
        });
    }
}

/// Chamfer (3-4) distance of every pixel of the `w × h` grid to the nearest pixel where
/// `avail` is set: 0 there, 3 per straight step and 4 per diagonal one (so `d / 3` is about
/// pixels); `u32::MAX / 2` everywhere when none is.
pub(super) fn chamfer(avail: &[bool], w: usize, h: usize) -> Vec<u32> {
    let mut dist: Vec<u32> = avail
        .iter()
        .map(|&a| if a { 0 } else { u32::MAX / 2 })
        .collect();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let mut d = dist[i];
            if x > 0 {
                d = d.min(dist[i - 1] + 3);
            }
            if y > 0 {
                d = d.min(dist[i - w] + 3);
                if x > 0 {
                    d = d.min(dist[i - w - 1] + 4);
                }
                if x + 1 < w {
                    d = d.min(dist[i - w + 1] + 4);
                }
            }
            dist[i] = d;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            let mut d = dist[i];
            if x + 1 < w {
                d = d.min(dist[i + 1] + 3);
            }
            if y + 1 < h {
                d = d.min(dist[i + w] + 3);
                if x + 1 < w {
                    d = d.min(dist[i + w + 1] + 4);
                }
                if x > 0 {
                    d = d.min(dist[i + w - 1] + 4);
                }
            }
            dist[i] = d;
        }
    }
    dist
}

/// Calls `f(i, rgb)` for every hole pixel `i` of the `w × h` level whose flags are `known`,
/// with the bilinear sample of `coarse` (a `ceil(w/2) × ceil(h/2)` level; all its pixels
/// are read, known or not) at that pixel's position.
pub(super) fn for_each_hole_upsampled(
    known: &[bool],
    w: usize,
    h: usize,
    coarse: &Plane,
    mut f: impl FnMut(usize, [f32; 3]),
) {
    let coord = |x: usize, n: usize| {
        let c = ((x as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, (n - 1) as f32);
        let i0 = c.floor() as usize;
        (i0, (i0 + 1).min(n - 1), c - i0 as f32)
    };
    let at = |x: usize, y: usize, c: usize| coarse.rgb[3 * (y * coarse.w + x) + c];
    for y in 0..h {
        let (y0, y1, fy) = coord(y, coarse.h);
        for x in 0..w {
            let i = y * w + x;
            if known[i] {
                continue;
            }
            let (x0, x1, fx) = coord(x, coarse.w);
            f(
                i,
                [0, 1, 2].map(|c| {
                    let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
                    let bottom = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
                    top * (1.0 - fy) + bottom * fy
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_averages_known_children_only() {
        // 3×2: hole at (0,0); odd width gives a 1-wide last column.
        let img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([(10 * (x + 3 * y)) as u8; 3]));
        let mut mask = GrayImage::new(3, 2);
        mask.put_pixel(0, 0, image::Luma([255]));
        let p = Plane::from_image(&img, &mask);
        assert_eq!(p.rgb[0], 0.0, "hole values are not copied from the input");
        let c = p.downsample();
        assert_eq!((c.w, c.h), (2, 1));
        assert!(c.known.iter().all(|&k| k));
        // Children (1,0)=10, (0,1)=30, (1,1)=40 → 80/3; column 2: (2,0)=20, (2,1)=50 → 35.
        assert!((c.rgb[0] - 80.0 / 3.0).abs() < 1e-4);
        assert!((c.rgb[3] - 35.0).abs() < 1e-4);
    }

    #[test]
    fn upsample_writes_holes_only() {
        let img = RgbImage::from_pixel(4, 4, image::Rgb([7, 7, 7]));
        let mut mask = GrayImage::new(4, 4);
        mask.put_pixel(1, 2, image::Luma([1]));
        let mut p = Plane::from_image(&img, &mask);
        let mut coarse = p.downsample();
        coarse.rgb.iter_mut().for_each(|v| *v = 100.0);
        p.upsample_holes_from(&coarse);
        for (i, k) in p.known.iter().enumerate() {
            let want = if *k { 7.0 } else { 100.0 };
            assert_eq!(p.rgb[3 * i], want, "pixel {i}");
        }
    }
}
