//! Texture features for the exemplar fill (Newson et al. 2014): per pixel the luma's
//! absolute gradient in x and in y, averaged over 3×3, compared in patch distances beside
//! the colour. An average of gradient magnitudes does not cancel as an average of colours
//! does, so a search steered by them keeps choosing textured patches (fur, grass, gravel)
//! where the colour estimate of the hole has washed out into a smooth one.
//!
//! The features are a pyramid of their own ([`Features`]), one plane per level, measured on
//! that level's known pixels and completed in the hole as colour is: at the coarsest level
//! by the same coherence transport that completes the colour there (so they follow the
//! structure: a smooth glaze beside a textured table keeps its side of the rim), at finer
//! levels from the coarser level's voted features, never lower than what the level's own
//! estimate shows. Measuring them on the hole's first estimate instead, as the fill did
//! before, gives it the estimate's smoothness: on a thin stroke through fur the search then
//! settled on smooth, pale patches (the removal bench's texture ratio 0.43 on the cat).
//!
//! Invariants: feature planes have the size and hole of their colour level; values are
//! per-pixel luma steps (0..=255) before [`TEXTURE_GAIN`]; only hole values are written
//! after construction.

use super::plane::Plane;

/// Scale of the texture features against colour in the patch distance (their `u8` values
/// are the luma step times this). Measured with the features measured on the estimate: the
/// removal bench's texture ratio median was 0.44 at 1, 0.58 at 3, 0.74–0.77 at 6, 0.72 at
/// 8, 0.62 at 10.
const TEXTURE_GAIN: f32 = 6.0;

/// The texture features of every level of a fill's pyramid (finest first).
pub(super) struct Features {
    levels: Vec<Plane>,
}

impl Features {
    /// The features measured on the known pixels of each of `levels`; their holes are
    /// still to be completed ([`Features::coarsest_mut`], then [`Features::level`]).
    pub fn new(levels: &[Plane]) -> Self {
        Features {
            levels: levels.iter().map(measure).collect(),
        }
    }

    /// The coarsest level's features, to be completed along with the coarsest colour.
    pub fn coarsest_mut(&mut self) -> Option<&mut Plane> {
        self.levels.last_mut()
    }

    /// The features of level `li` as the patch search compares them (two `u8` per pixel,
    /// scaled by [`TEXTURE_GAIN`]), once its hole is completed: from the coarser level's
    /// (already solved) features, upsampled, or what the current colour estimate `level`
    /// shows, whichever is higher.
    pub fn level(&mut self, li: usize, level: &Plane) -> Vec<u8> {
        let (fine, coarser) = self.levels.split_at_mut(li + 1);
        let f = &mut fine[li];
        if let Some(coarse) = coarser.first() {
            f.upsample_holes_from(coarse);
        }
        for i in (0..f.known.len()).filter(|&i| !f.known[i]) {
            let shown = shown_at(level, i);
            for (c, v) in shown.into_iter().enumerate() {
                f.rgb[3 * i + c] = f.rgb[3 * i + c].max(v);
            }
        }
        f.rgb
            .chunks_exact(3)
            .flat_map(|v| [v[0], v[1]].map(|g| super::to_u8(TEXTURE_GAIN * g)))
            .collect()
    }

    /// Keeps the voted `values` (as [`Features::level`] gave them) of level `li`'s hole for
    /// the next finer level.
    pub fn store(&mut self, li: usize, values: &[u8]) {
        let f = &mut self.levels[li];
        for i in (0..f.known.len()).filter(|&i| !f.known[i]) {
            f.rgb[3 * i] = f32::from(values[2 * i]) / TEXTURE_GAIN;
            f.rgb[3 * i + 1] = f32::from(values[2 * i + 1]) / TEXTURE_GAIN;
        }
    }
}

/// The features that the values of `plane` show at pixel `i`, known or not: the luma's
/// absolute step in x and in y (central, one-sided at the image's border), averaged over the
/// 3×3 around it.
fn shown_at(plane: &Plane, i: usize) -> [f32; 2] {
    let (w, h) = (plane.w, plane.h);
    let luma = |x: usize, y: usize| {
        let p = &plane.rgb[3 * (y * w + x)..3 * (y * w + x) + 3];
        0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
    };
    // the step across (x, y) along one axis, given its neighbours' coordinates
    let step = |lo: (usize, usize), hi: (usize, usize), span: usize| {
        (luma(hi.0, hi.1) - luma(lo.0, lo.1)).abs() / span.max(1) as f32
    };
    let (x, y) = (i % w, i / w);
    let (mut sum, mut n) = ([0.0f32; 2], 0.0f32);
    for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
        for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
            let (x0, x1) = (xx.saturating_sub(1), (xx + 1).min(w - 1));
            let (y0, y1) = (yy.saturating_sub(1), (yy + 1).min(h - 1));
            sum[0] += step((x0, yy), (x1, yy), x1 - x0);
            sum[1] += step((xx, y0), (xx, y1), y1 - y0);
            n += 1.0;
        }
    }
    sum.map(|s| s / n)
}

/// The features of `plane` as a plane of their own (the first two channels; the third is
/// 0), with its hole: at a known pixel, the luma's absolute step in x and in y between known
/// pixels (central where both neighbours are known, one-sided where one is), averaged over
/// the 3×3 around it.
pub(super) fn measure(plane: &Plane) -> Plane {
    let (w, h, known) = (plane.w, plane.h, &plane.known);
    let luma: Vec<f32> = plane
        .rgb
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
        .collect();
    // per pixel and axis: the step and 1, or 0 and 0 where there is none
    let step = |i: usize, before: Option<usize>, after: Option<usize>| -> (f32, f32) {
        let usable = |j: Option<usize>| j.filter(|&j| known[j]);
        match (usable(before), usable(after)) {
            (Some(b), Some(a)) => ((luma[a] - luma[b]).abs() / 2.0, 1.0),
            (Some(b), None) => ((luma[i] - luma[b]).abs(), 1.0),
            (None, Some(a)) => ((luma[a] - luma[i]).abs(), 1.0),
            (None, None) => (0.0, 0.0),
        }
    };
    // [x step, its count, y step, its count]
    let mut grad = vec![[0.0f32; 4]; w * h];
    for (y, x) in (0..h).flat_map(|y| (0..w).map(move |x| (y, x))) {
        let i = y * w + x;
        if !known[i] {
            continue;
        }
        let inside = x > 0 && y > 0 && x + 1 < w && y + 1 < h;
        grad[i] = if inside && known[i - 1] && known[i + 1] && known[i - w] && known[i + w] {
            // the common case: central steps
            let gx = (luma[i + 1] - luma[i - 1]).abs() / 2.0;
            [gx, 1.0, (luma[i + w] - luma[i - w]).abs() / 2.0, 1.0]
        } else {
            let (gx, nx) = step(i, (x > 0).then(|| i - 1), (x + 1 < w).then(|| i + 1));
            let (gy, ny) = step(i, (y > 0).then(|| i - w), (y + 1 < h).then(|| i + w));
            [gx, nx, gy, ny]
        };
    }
    // 3×3 sums, separably: along rows, then along columns
    let mut rows = vec![[0.0f32; 4]; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f32; 4];
            for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                let g = &grad[y * w + xx];
                (0..4).for_each(|k| acc[k] += g[k]);
            }
            rows[y * w + x] = acc;
        }
    }
    let mut rgb = vec![0.0f32; 3 * w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if !known[i] {
                continue;
            }
            let mut acc = [0.0f32; 4];
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                let r = &rows[yy * w + x];
                (0..4).for_each(|k| acc[k] += r[k]);
            }
            rgb[3 * i] = if acc[1] > 0.0 { acc[0] / acc[1] } else { 0.0 };
            rgb[3 * i + 1] = if acc[3] > 0.0 { acc[2] / acc[3] } else { 0.0 };
        }
    }
    Plane {
        w,
        h,
        rgb,
        known: known.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> (f32, bool)) -> Plane {
        let (mut rgb, mut known) = (Vec::new(), Vec::new());
        for y in 0..h {
            for x in 0..w {
                let (v, k) = f(x, y);
                rgb.extend([v; 3]);
                known.push(k);
            }
        }
        Plane { w, h, rgb, known }
    }

    #[test]
    fn a_ramp_measures_its_step_up_to_the_hole_and_the_border() {
        // a ramp of 10 per pixel in x, with a hole two columns wide below the first row
        let ramp = plane(8, 6, |x, y| {
            (10.0 * x as f32, !(3..5).contains(&x) || y == 0)
        });
        let f = measure(&ramp);
        for (i, k) in f.known.iter().enumerate() {
            assert_eq!(*k, ramp.known[i], "the features' hole is the colour's");
            if *k {
                assert!(
                    (f.rgb[3 * i] - 10.0).abs() < 1e-3,
                    "x step at {i}: {}",
                    f.rgb[3 * i]
                );
                assert!(f.rgb[3 * i + 1].abs() < 1e-3, "no y step at {i}");
            } else {
                assert_eq!(f.rgb[3 * i], 0.0);
            }
        }
    }

    #[test]
    fn a_hole_takes_the_higher_of_its_coarser_features_and_its_estimate() {
        // a 4×4 level whose middle is a hole, over a 2×2 coarser level
        let fine = plane(4, 4, |x, y| {
            (0.0, !((1..3).contains(&x) && (1..3).contains(&y)))
        });
        let mut coarse = fine.downsample();
        coarse.known.fill(false);
        let mut features = Features::new(&[fine.clone(), coarse]);
        let c = features.coarsest_mut().expect("two levels");
        c.rgb.iter_mut().for_each(|v| *v = 5.0);
        let got = features.level(0, &fine);
        let middle = 4 + 1;
        // the flat estimate shows nothing; the coarser level's 5 comes through
        assert_eq!(got[2 * middle], super::super::to_u8(5.0 * TEXTURE_GAIN));
        // a busier estimate wins where it is higher
        let mut busy = fine.clone();
        for x in 0..4 {
            for y in 0..4 {
                let v = if (x + y) % 2 == 0 { 200.0 } else { 0.0 };
                busy.rgb[3 * (y * 4 + x)..3 * (y * 4 + x) + 3].fill(v);
            }
        }
        let got = features.level(0, &busy);
        assert!(got[2 * middle] > super::super::to_u8(5.0 * TEXTURE_GAIN));
        // known pixels keep their measured features
        assert_eq!(got[0], 0);
    }

    #[test]
    fn a_thin_stroke_across_a_cats_face_is_filled_with_fur_not_smooth_ground() {
        // The removal bench's hardest stroke: 14 px across the cat's fur, beside the smooth,
        // pale, out-of-focus background. With the features measured on the hole's smooth first
        // estimate, the search settled on pale, smooth patches there (gradient energy 0.43 of
        // the truth's, the fill bluer than the fur); with them completed from the fur around
        // the stroke (and the seam blended) it is 0.53.
        use super::super::{patchmatch_inpaint, PatchMatchOptions};
        use image::{GrayImage, Luma, RgbImage};
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/photos/chelsea.png");
        let img = image::open(&path).expect("the cat").to_rgb8();
        let (w, h) = img.dimensions();
        let ((ax, ay), (bx, by)) = ((120.0, 250.0), (330.0, 80.0));
        let mask = GrayImage::from_fn(w, h, |x, y| {
            let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let (dx, dy) = (bx - ax, by - ay);
            let t = (((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
            let near = (ax + t * dx - x).hypot(ay + t * dy - y) <= 7.0;
            Luma([if near { 255 } else { 0 }])
        });
        let out = patchmatch_inpaint(&img, &mask, &PatchMatchOptions::default());
        let energy = |im: &RgbImage| {
            let luma = |x: u32, y: u32| {
                let p = im.get_pixel(x.min(w - 1), y.min(h - 1));
                0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
            };
            let (mut sum, mut n) = (0.0, 0.0);
            for (x, y, m) in mask.enumerate_pixels() {
                if m[0] > 0 {
                    let v = luma(x, y);
                    sum += (luma(x + 1, y) - v).powi(2) + (luma(x, y + 1) - v).powi(2);
                    n += 1.0;
                }
            }
            sum / n
        };
        let ratio = energy(&out) / energy(&img);
        assert!(
            ratio >= 0.5,
            "the stroke is smoothed: gradient energy {ratio:.2} of the truth's"
        );
    }

    #[test]
    fn the_middle_of_a_large_hole_is_filled_from_the_image() {
        // 160 px deep: the votes' confidence there is 2.5^-160, which underflowed to a
        // weight of 0; the vote came out black and matched the black block (the seam blend
        // may take a pixel a little below the darkest of the ground)
        use super::super::{patchmatch_inpaint, PatchMatchOptions};
        use image::{GrayImage, Luma, Rgb, RgbImage};
        let mut rng = super::super::patchmatch::Rng::new(3);
        // noisy ground, and a black block in a corner for a black estimate to match
        let img = RgbImage::from_fn(480, 480, |x, y| {
            let n = rng.below(60) as u8;
            if x < 40 && y < 40 {
                Rgb([n / 8; 3])
            } else {
                Rgb([100 + n, 90 + n, 80 + n])
            }
        });
        let mask = GrayImage::from_fn(480, 480, |x, y| {
            let inside = (80..400).contains(&x) && (80..400).contains(&y);
            Luma([if inside { 255 } else { 0 }])
        });
        let out = patchmatch_inpaint(&img, &mask, &PatchMatchOptions::default());
        let darkest = out
            .pixels()
            .zip(mask.pixels())
            .filter(|(_, m)| m[0] > 0)
            .map(|(p, _)| p[2])
            .min();
        assert!(
            darkest >= Some(40),
            "a hole pixel came out dark: blue {darkest:?}"
        );
    }
}
