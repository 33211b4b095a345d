//! Replace a layer's content with another image: fit it into the layer's footprint (the
//! bounding box of its pixels with alpha > 0), cut it to the layer's shape or keep its own,
//! pull its colour statistics toward the original's, and soften its edge.
//!
//! Invariants: nothing is drawn outside the footprint's box; with `mask = Layer` nothing is
//! drawn where the layer was transparent; feathering only ever lowers alpha, so an interior
//! further than `feather` pixels from any edge keeps the alpha it had; transparent result
//! pixels are `[0, 0, 0, 0]`.

use image::RgbaImage;

use super::oklab::{oklab_to_srgb, srgb_to_oklab};
use super::resample::{box_blur, resample_into, AxisMap, Edge};
use super::{check_range, layer_bbox, EditError};

/// How the replacement is fitted into the footprint's box (as the op names it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scaled to fit inside, aspect kept, centred; the rest of the box stays transparent.
    Contain,
    /// Scaled to cover the box, aspect kept, centred; what overhangs is cropped.
    #[default]
    Cover,
    /// Scaled to the box exactly, aspect not kept.
    Stretch,
}

/// Where the result's alpha comes from (as the op names it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskSource {
    /// The replacement's alpha times the original layer's: the new content takes the old
    /// shape.
    #[default]
    Layer,
    /// The replacement's own alpha: its shape, inside the footprint's box.
    Image,
}

/// Knobs of [`replace`].
#[derive(Clone, Debug, PartialEq)]
pub struct ReplaceOptions {
    pub fit: Fit,
    pub mask: MaskSource,
    /// 0..=1: how far the replacement's OKLab mean and spread (per channel, alpha-weighted) move
    /// toward the original layer's; 0 leaves its colours alone, 1 matches them.
    pub harmonize: f32,
    /// 0..=64 pixels (rounded): how far in from the mask's edge alpha fades; 0 keeps the edge
    /// hard.
    pub feather: f32,
}

/// The layer's content replaced by `replacement` (any size) as `opts` says, on a transparent
/// canvas of the layer's size. Resampling is Catmull-Rom in premultiplied alpha, anti-aliased
/// when shrinking.
///
/// # Errors
/// `empty_layer` if the layer has no pixel with alpha > 0, `empty_image` if the replacement
/// has no pixels, `bad_parameter` for `harmonize` or `feather` out of range.
pub fn replace(
    layer: &RgbaImage,
    replacement: &RgbaImage,
    opts: &ReplaceOptions,
) -> Result<RgbaImage, EditError> {
    check_range("harmonize", opts.harmonize, 0.0..=1.0)?;
    check_range("feather", opts.feather, 0.0..=64.0)?;
    let bbox = layer_bbox(layer).ok_or(EditError::EmptyLayer)?;
    if replacement.width() == 0 || replacement.height() == 0 {
        return Err(EditError::EmptyImage {
            what: "replacement",
        });
    }
    let (xs, ys) = fit_maps(bbox, replacement.dimensions(), opts.fit);
    let mut out = RgbaImage::new(layer.width(), layer.height());
    resample_into(replacement, &xs, &ys, &mut out);
    if opts.mask == MaskSource::Layer {
        for (o, l) in out.pixels_mut().zip(layer.pixels()) {
            let a = (u32::from(o.0[3]) * u32::from(l.0[3]) + 127) / 255;
            o.0[3] = a as u8;
        }
    }
    if opts.harmonize > 0.0 {
        harmonize(&mut out, layer, opts.harmonize);
    }
    let radius = opts.feather.round() as usize;
    if radius > 0 {
        feather(&mut out, bbox, radius);
    }
    for p in out.pixels_mut().filter(|p| p.0[3] == 0) {
        p.0 = [0; 4];
    }
    Ok(out)
}

/// The axis maps that place a `src`-sized image into the box `[x, y, w, h]` as `fit` says.
fn fit_maps([bx, by, bw, bh]: [u32; 4], (sw, sh): (u32, u32), fit: Fit) -> (AxisMap, AxisMap) {
    let (kx, ky) = (f64::from(bw) / f64::from(sw), f64::from(bh) / f64::from(sh));
    let (sx, sy) = match fit {
        Fit::Contain => (kx.min(ky), kx.min(ky)),
        Fit::Cover => (kx.max(ky), kx.max(ky)),
        Fit::Stretch => (kx, ky),
    };
    // Centre the scaled image on the box; write only where it lands inside the box (at least
    // one pixel, however thin the scaled image).
    let axis = |start: u32, len: u32, src_len: u32, scale: f64| {
        let centre = f64::from(start) + f64::from(len) / 2.0;
        let offset = centre - scale * f64::from(src_len) / 2.0;
        let end = f64::from(start + len);
        let lo = offset.round().clamp(f64::from(start), end - 1.0) as u32;
        let hi = (offset + scale * f64::from(src_len))
            .round()
            .clamp(f64::from(lo) + 1.0, end) as u32;
        AxisMap {
            src: 0..src_len,
            dst: lo..hi,
            scale,
            offset,
            edge: Edge::Clamp,
        }
    };
    (axis(bx, bw, sw, sx), axis(by, bh, sh, sy))
}

/// Alpha-weighted mean and standard deviation of each OKLab channel over pixels with alpha > 0,
/// or `None` if there are none.
fn lab_stats(img: &RgbaImage) -> Option<[[f64; 2]; 3]> {
    let (mut sum, mut sq, mut weight) = ([0f64; 3], [0f64; 3], 0f64);
    for p in img.pixels().filter(|p| p.0[3] > 0) {
        let w = f64::from(p.0[3]);
        let lab = srgb_to_oklab([p.0[0], p.0[1], p.0[2]]);
        for c in 0..3 {
            let v = f64::from(lab[c]);
            sum[c] += w * v;
            sq[c] += w * v * v;
        }
        weight += w;
    }
    (weight > 0.0).then(|| {
        std::array::from_fn(|c| {
            let mean = sum[c] / weight;
            [mean, (sq[c] / weight - mean * mean).max(0.0).sqrt()]
        })
    })
}

/// Moves each OKLab channel's mean and spread of `img` a fraction `strength` of the way to
/// those of `reference` (Reinhard-style transfer). A flat channel keeps its (zero) spread.
fn harmonize(img: &mut RgbaImage, reference: &RgbaImage, strength: f32) {
    let (Some(from), Some(to)) = (lab_stats(img), lab_stats(reference)) else {
        return;
    };
    let k = f64::from(strength);
    let gain_offset: [[f32; 2]; 3] = std::array::from_fn(|c| {
        let [m0, s0] = from[c];
        let [m1, s1] = to[c];
        let (mean, spread) = (m0 + k * (m1 - m0), s0 + k * (s1 - s0));
        let gain = if s0 > 1e-4 { spread / s0 } else { 1.0 };
        [gain as f32, (mean - gain * m0) as f32]
    });
    for p in img.pixels_mut().filter(|p| p.0[3] > 0) {
        let lab = srgb_to_oklab([p.0[0], p.0[1], p.0[2]]);
        let lab: [f32; 3] = std::array::from_fn(|c| gain_offset[c][0] * lab[c] + gain_offset[c][1]);
        p.0[..3].copy_from_slice(&oklab_to_srgb(lab));
    }
}

/// Lowers alpha near the mask's edges: `alpha' = min(alpha, blur(alpha))`. Only the box
/// (grown by the radius) is processed; beyond the canvas the edge value repeats, so a layer
/// cut by the frame does not fade at the frame.
fn feather(img: &mut RgbaImage, [bx, by, bw, bh]: [u32; 4], radius: usize) {
    let (w, h) = img.dimensions();
    let r = radius as u32;
    let (x0, y0) = (bx.saturating_sub(r), by.saturating_sub(r));
    let (x1, y1) = (
        (bx + bw).saturating_add(r).min(w),
        (by + bh).saturating_add(r).min(h),
    );
    let (rw, rh) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let mut plane: Vec<f32> = Vec::with_capacity(rw * rh);
    for y in y0..y1 {
        plane.extend((x0..x1).map(|x| f32::from(img.get_pixel(x, y).0[3])));
    }
    box_blur(
        &mut plane,
        rw,
        rh,
        radius,
        [x0 == 0, x1 == w, y0 == 0, y1 == h],
    );
    for (i, v) in plane.into_iter().enumerate() {
        let (x, y) = (x0 + (i % rw) as u32, y0 + (i / rw) as u32);
        let p = img.get_pixel_mut(x, y);
        p.0[3] = p.0[3].min(v.round().clamp(0.0, 255.0) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    const W: u32 = 64;
    const H: u32 = 64;
    /// The test layer's footprint: x 16..48, y 20..44 (32×24).
    const BOX: [u32; 4] = [16, 20, 32, 24];

    /// An opaque, slightly textured green rectangle at `BOX`, transparent garbage elsewhere.
    fn layer() -> RgbaImage {
        RgbaImage::from_fn(W, H, |x, y| {
            let inside = (16..48).contains(&x) && (20..44).contains(&y);
            if inside {
                Rgba([40 + (x % 5) as u8 * 6, 150 + (y % 7) as u8 * 5, 60, 255])
            } else {
                Rgba([255, 0, 255, 0])
            }
        })
    }

    /// A tall 10×40 opaque image, red rising left to right, blue rising top to bottom.
    fn tall() -> RgbaImage {
        RgbaImage::from_fn(10, 40, |x, y| Rgba([x as u8 * 25, 30, y as u8 * 6, 255]))
    }

    fn opts(fit: Fit, mask: MaskSource) -> ReplaceOptions {
        ReplaceOptions {
            fit,
            mask,
            harmonize: 0.0,
            feather: 0.0,
        }
    }

    fn in_box(x: u32, y: u32, [bx, by, bw, bh]: [u32; 4]) -> bool {
        (bx..bx + bw).contains(&x) && (by..by + bh).contains(&y)
    }

    #[test]
    fn cover_fills_the_footprint() {
        let out = replace(&layer(), &tall(), &opts(Fit::Cover, MaskSource::Layer)).unwrap();
        for (x, y, p) in out.enumerate_pixels() {
            assert_eq!(
                p.0[3],
                if in_box(x, y, BOX) { 255 } else { 0 },
                "({x}, {y})"
            );
        }
        // Cover of a tall image crops top and bottom: the box spans the full width of the
        // source (red from dark to bright) but only its middle rows (blue around mid-range).
        let (left, right) = (out.get_pixel(16, 32).0, out.get_pixel(47, 32).0);
        assert!(left[0] < 30 && right[0] > 200, "{left:?} {right:?}");
        let (top, bottom) = (out.get_pixel(32, 20).0[2], out.get_pixel(32, 43).0[2]);
        assert!(top > 60 && bottom < 180, "{top} {bottom}");
    }

    #[test]
    fn contain_keeps_aspect_and_letterboxes() {
        let out = replace(&layer(), &tall(), &opts(Fit::Contain, MaskSource::Layer)).unwrap();
        let [x, y, w, h] = layer_bbox(&out).unwrap();
        // 10×40 into 32×24: scale 0.6 → 6×24, centred in x.
        assert_eq!((y, h), (20, 24));
        assert!((5..=7).contains(&w), "{w}");
        assert!((2 * x + w).abs_diff(2 * 16 + 32) <= 1, "{x} {w}");
        for (px, py, p) in out.enumerate_pixels() {
            if !(x..x + w).contains(&px) || !(y..y + h).contains(&py) {
                assert_eq!(p.0, [0; 4]);
            } else {
                assert_eq!(p.0[3], 255);
            }
        }
    }

    #[test]
    fn stretch_maps_the_box_exactly() {
        let out = replace(&layer(), &tall(), &opts(Fit::Stretch, MaskSource::Image)).unwrap();
        assert_eq!(layer_bbox(&out), Some(BOX));
        assert!(out.pixels().all(|p| p.0[3] == 0 || p.0[3] == 255));
        let (tl, br) = (out.get_pixel(16, 20).0, out.get_pixel(47, 43).0);
        assert!(tl[0] < 20 && tl[2] < 10, "{tl:?}");
        assert!(br[0] > 210 && br[2] > 220, "{br:?}");
        // Same size as the box: a 1:1 copy.
        let same = RgbaImage::from_fn(32, 24, |x, y| Rgba([x as u8 * 7, y as u8 * 9, 3, 255]));
        let out = replace(&layer(), &same, &opts(Fit::Stretch, MaskSource::Image)).unwrap();
        for (x, y, p) in out
            .enumerate_pixels()
            .filter(|(x, y, _)| in_box(*x, *y, BOX))
        {
            assert_eq!(p, same.get_pixel(x - 16, y - 20));
        }
    }

    #[test]
    fn masks_follow_the_layer_or_the_image() {
        // A disc-shaped layer: corners of its box are transparent.
        let disc = RgbaImage::from_fn(W, H, |x, y| {
            let d2 = (x as i32 - 32).pow(2) + (y as i32 - 32).pow(2);
            Rgba([200, 10, 10, if d2 <= 12 * 12 { 255 } else { 0 }])
        });
        let cat = RgbaImage::from_fn(20, 20, |x, y| {
            Rgba([9, 99, 199, if (x / 5 + y / 5) % 2 == 0 { 255 } else { 0 }])
        });
        let out = replace(&disc, &cat, &opts(Fit::Cover, MaskSource::Layer)).unwrap();
        for (p, d) in out.pixels().zip(disc.pixels()) {
            if d.0[3] == 0 {
                assert_eq!(p.0, [0; 4]);
            }
        }
        let out = replace(&disc, &cat, &opts(Fit::Stretch, MaskSource::Image)).unwrap();
        // The checker's own transparent squares show and its opaque ones cover the box's
        // corners (the box is 25×25 at (20, 20): scale 1.25, squares 6.25 px).
        assert_eq!(out.get_pixel(20, 20).0[3], 255);
        assert_eq!(out.get_pixel(20 + 9, 20).0[3], 0);
        assert_eq!(out.get_pixel(20 + 16, 20).0[3], 255);
        assert_eq!(out.get_pixel(19, 20).0, [0; 4]);
    }

    #[test]
    fn harmonize_matches_mean_and_spread() {
        let src = layer();
        let want = lab_stats(&src).unwrap();
        let before = replace(&src, &tall(), &opts(Fit::Cover, MaskSource::Layer)).unwrap();
        let mut o = opts(Fit::Cover, MaskSource::Layer);
        o.harmonize = 1.0;
        let got = lab_stats(&replace(&src, &tall(), &o).unwrap()).unwrap();
        for c in 0..3 {
            assert!(
                (got[c][0] - want[c][0]).abs() < 0.01,
                "mean {c}: {got:?} {want:?}"
            );
            assert!(
                (got[c][1] - want[c][1]).abs() < 0.01,
                "std {c}: {got:?} {want:?}"
            );
        }
        o.harmonize = 0.5;
        let half = lab_stats(&replace(&src, &tall(), &o).unwrap()).unwrap();
        let orig = lab_stats(&before).unwrap();
        for c in 0..3 {
            let mid = 0.5 * (orig[c][0] + want[c][0]);
            assert!((half[c][0] - mid).abs() < 0.01, "half mean {c}: {half:?}");
        }
    }

    #[test]
    fn feather_softens_only_the_edge() {
        let hard = replace(&layer(), &tall(), &opts(Fit::Cover, MaskSource::Layer)).unwrap();
        assert!(hard.pixels().all(|p| p.0[3] == 0 || p.0[3] == 255));
        let mut o = opts(Fit::Cover, MaskSource::Layer);
        o.feather = 6.0;
        let soft = replace(&layer(), &tall(), &o).unwrap();
        let a = |x, y| soft.get_pixel(x, y).0[3];
        assert_eq!(a(32, 32), 255, "interior stays opaque");
        assert!(a(16, 32) < 200 && a(16, 32) > 50, "edge {}", a(16, 32));
        assert!(a(17, 32) > a(16, 32));
        for (p, q) in hard.pixels().zip(soft.pixels()) {
            assert!(q.0[3] <= p.0[3], "feathering never adds alpha");
        }
        // A layer touching the frame does not fade at the frame.
        let full = RgbaImage::from_pixel(24, 24, Rgba([1, 2, 3, 255]));
        let out = replace(&full, &tall(), &ReplaceOptions { feather: 8.0, ..o }).unwrap();
        assert!(out.pixels().all(|p| p.0[3] == 255));
    }

    #[test]
    fn rejects_bad_arguments() {
        let o = opts(Fit::Cover, MaskSource::Layer);
        let err = replace(&RgbaImage::new(8, 8), &tall(), &o).unwrap_err();
        assert_eq!(err.code(), "empty_layer");
        let err = replace(&layer(), &RgbaImage::new(0, 3), &o).unwrap_err();
        assert_eq!(err.code(), "empty_image");
        for (harmonize, feather) in [(1.5, 0.0), (f32::NAN, 0.0), (0.5, 65.0), (0.5, -1.0)] {
            let o = ReplaceOptions {
                harmonize,
                feather,
                ..o.clone()
            };
            assert_eq!(
                replace(&layer(), &tall(), &o).unwrap_err().code(),
                "bad_parameter"
            );
        }
        // Extreme aspect ratios stay cheap and in the box.
        let sliver = RgbaImage::from_pixel(1, 5000, Rgba([5, 5, 5, 255]));
        for fit in [Fit::Contain, Fit::Cover, Fit::Stretch] {
            let out = replace(&layer(), &sliver, &opts(fit, MaskSource::Image)).unwrap();
            let [x, y, w, h] = layer_bbox(&out).unwrap();
            assert!(
                in_box(x, y, BOX) && in_box(x + w - 1, y + h - 1, BOX),
                "{fit:?}"
            );
        }
    }
}
