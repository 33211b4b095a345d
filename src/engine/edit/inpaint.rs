//! Brush-and-fill on one layer: the pixels under a mask get new colour from a caller-supplied
//! filler (LaMa, or [`patchmatch_inpaint`](crate::engine::inpaint::patchmatch_inpaint)) and new
//! alpha that continues the layer's silhouette across the hole: where the alpha around the
//! hole holds both clear and solid pixels (an edge enters the hole, as a brush over a saucer's
//! rim does), the membrane fill of the alpha is cut at half and softened by a pixel, so the
//! edge crosses the hole as an edge; otherwise (all solid, all clear, or a uniformly
//! translucent layer) the membrane fill is kept as it is.
//!
//! Invariants: every pixel outside the mask comes back bit for bit; the colour under
//! transparent pixels (which is meaningless) never reaches the filler — before the filler runs,
//! it is replaced by a diffusion fill from the visible pixels, so a hole next to transparency
//! continues the visible colours instead of whatever junk (often black) sits under alpha 0;
//! and in a layer with transparency the filler works in the hole's surroundings with every
//! transparent pixel unknown, so its patches come from what the layer shows (a saucer's
//! glaze), never from that smooth made-up colour (which would come back as a flat smudge).

use image::{DynamicImage, GrayImage, Luma, RgbImage, RgbaImage};

use super::{check_size, EditError};
use crate::engine::inpaint::diffusion_fill;

/// Mask values above this mark the hole.
const HOLE: u8 = 127;
/// Least margin (px) around a hole in a layer with transparency that the fill draws from.
const SURROUNDINGS: u32 = 48;

/// The layer with the pixels where `mask > 127` filled: RGB from `fill(rgb, hole)` (the hole
/// passed as 0/255, RGB under transparent pixels pre-filled by diffusion as the module docs
/// say), alpha continuing the layer's silhouette (see the module docs) — so a stroke inside an
/// opaque object stays opaque, one over empty canvas stays empty, and one across an edge
/// continues the edge instead of fading it.
///
/// # Errors
/// `size_mismatch` if `mask`, or the image `fill` returns, is not the layer's size.
pub fn inpaint_layer(
    rgba: &RgbaImage,
    mask: &GrayImage,
    fill: &dyn Fn(&RgbImage, &GrayImage) -> RgbImage,
) -> Result<RgbaImage, EditError> {
    let size: [u32; 2] = rgba.dimensions().into();
    check_size("mask", mask.dimensions().into(), size)?;
    let (w, h) = rgba.dimensions();
    let hole = GrayImage::from_fn(w, h, |x, y| {
        Luma([if mask.get_pixel(x, y).0[0] > HOLE {
            255
        } else {
            0
        }])
    });
    if hole.pixels().all(|p| p.0[0] == 0) {
        return Ok(rgba.clone());
    }
    let mut rgb = RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        image::Rgb([p[0], p[1], p[2]])
    });
    // Unknown colour: the hole and every transparent pixel.
    let unknown = GrayImage::from_fn(w, h, |x, y| {
        let clear = rgba.get_pixel(x, y).0[3] == 0;
        Luma([if clear {
            255
        } else {
            hole.get_pixel(x, y).0[0]
        }])
    });
    let filled = if unknown == hole {
        let filled = fill(&rgb, &hole);
        check_size("fill output", filled.dimensions().into(), size)?;
        filled
    } else {
        rgb = diffusion_fill(&rgb, &unknown);
        match visible_surroundings(&hole, &unknown) {
            Some(b) => fill_within(&rgb, &unknown, b, fill)?,
            None => {
                let filled = fill(&rgb, &hole);
                check_size("fill output", filled.dimensions().into(), size)?;
                filled
            }
        }
    };
    // no known pixel borders a hole that covers the canvas: the membrane (the mean) decides
    let (lo, hi) = rim_alpha(rgba, &hole).unwrap_or((0, 1));
    let alpha = if lo == hi {
        // one alpha all around (an opaque layer, most often): the hole takes it
        RgbImage::from_pixel(w, h, image::Rgb([lo; 3]))
    } else {
        let alpha = RgbImage::from_fn(w, h, |x, y| {
            let a = rgba.get_pixel(x, y).0[3];
            image::Rgb([a, a, a])
        });
        let membrane = diffusion_fill(&alpha, &hole);
        if lo < 64 && hi > 191 {
            silhouette(rgba, &membrane, &hole)
        } else {
            membrane
        }
    };
    let mut out = rgba.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        if hole.get_pixel(x, y).0[0] > 0 {
            let c = filled.get_pixel(x, y).0;
            *p = image::Rgba([c[0], c[1], c[2], alpha.get_pixel(x, y).0[0]]);
        }
    }
    Ok(out)
}

/// The box the fill of a layer with transparency works in: the hole's box grown by its own
/// size (at least [`SURROUNDINGS`] px) on each side, clipped to the canvas; `None` when no
/// visible pixel lies in it.
fn visible_surroundings(hole: &GrayImage, unknown: &GrayImage) -> Option<[u32; 4]> {
    let (w, h) = hole.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in hole.enumerate_pixels() {
        if p[0] > 0 {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
        }
    }
    let grow = (x1 - x0).max(y1 - y0).max(SURROUNDINGS);
    let b = [
        x0.saturating_sub(grow),
        y0.saturating_sub(grow),
        (x1 + grow).min(w),
        (y1 + grow).min(h),
    ];
    let visible = (b[1]..b[3]).any(|y| (b[0]..b[2]).any(|x| unknown.get_pixel(x, y)[0] == 0));
    visible.then_some(b)
}

/// Fills `unknown` (the hole and the layer's transparent pixels) inside box `b` only, so the
/// filler takes its patches from the layer's visible pixels, never from the made-up colour
/// under its transparency; returns `rgb` with the box's fill pasted in.
fn fill_within(
    rgb: &RgbImage,
    unknown: &GrayImage,
    [x0, y0, x1, y1]: [u32; 4],
    fill: &dyn Fn(&RgbImage, &GrayImage) -> RgbImage,
) -> Result<RgbImage, EditError> {
    let (bw, bh) = (x1 - x0, y1 - y0);
    let crop_rgb = image::imageops::crop_imm(rgb, x0, y0, bw, bh).to_image();
    let crop_mask = image::imageops::crop_imm(unknown, x0, y0, bw, bh).to_image();
    let filled = fill(&crop_rgb, &crop_mask);
    check_size("fill output", filled.dimensions().into(), [bw, bh])?;
    let mut out = rgb.clone();
    image::imageops::replace(&mut out, &filled, i64::from(x0), i64::from(y0));
    Ok(out)
}

/// The least and greatest alpha of the known pixels next to the hole (4-neighbours); `None`
/// when there are none.
fn rim_alpha(rgba: &RgbaImage, hole: &GrayImage) -> Option<(u8, u8)> {
    let (w, h) = rgba.dimensions();
    let in_hole = |x: u32, y: u32| hole.get_pixel(x, y)[0] > 0;
    let (mut lo, mut hi) = (u8::MAX, u8::MIN);
    for (x, y, p) in rgba.enumerate_pixels() {
        let rim = !in_hole(x, y)
            && [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)]
                .iter()
                .any(|&(dx, dy)| {
                    let (nx, ny) = (i64::from(x) + dx, i64::from(y) + dy);
                    nx >= 0
                        && ny >= 0
                        && nx < i64::from(w)
                        && ny < i64::from(h)
                        && in_hole(nx as u32, ny as u32)
                });
        if rim {
            (lo, hi) = (lo.min(p[3]), hi.max(p[3]));
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// Alpha under the hole, where its rim holds both clear (< 64) and solid (> 191) pixels:
/// `membrane` (the diffusion fill of the layer's alpha, grey) cut at half and softened by a
/// 3×3 mean, so an edge that enters the hole crosses it as an edge.
fn silhouette(rgba: &RgbaImage, membrane: &RgbImage, hole: &GrayImage) -> RgbImage {
    let (w, h) = rgba.dimensions();
    let in_hole = |x: u32, y: u32| hole.get_pixel(x, y)[0] > 0;
    // the cut: solid where the membrane is at least half, the known alpha elsewhere
    let cut = |x: u32, y: u32| -> f32 {
        if in_hole(x, y) {
            if membrane.get_pixel(x, y)[0] >= 128 {
                255.0
            } else {
                0.0
            }
        } else {
            f32::from(rgba.get_pixel(x, y)[3])
        }
    };
    let mut out = membrane.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        if !in_hole(x, y) {
            continue;
        }
        let (mut sum, mut n) = (0.0f32, 0.0f32);
        for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                (sum, n) = (sum + cut(nx, ny), n + 1.0);
            }
        }
        let a = (sum / n).round() as u8;
        *p = image::Rgb([a, a, a]);
    }
    out
}

/// An uploaded mask as a binary 0/255 hole mask of `width × height`: each pixel's luminance
/// times its alpha (so grey, RGB and RGBA masks all work, white = fill), thresholded at half,
/// then resized by nearest neighbour to the canvas. An empty image gives an empty mask.
pub fn mask_from_image(img: &DynamicImage, width: u32, height: u32) -> GrayImage {
    let la = img.to_luma_alpha8();
    let (iw, ih) = la.dimensions();
    if iw == 0 || ih == 0 {
        return GrayImage::new(width, height);
    }
    // Source index of the pixel whose centre is nearest output pixel `i`'s centre.
    let near = |i: u32, out: u32, src: u32| {
        ((u64::from(i) * 2 + 1) * u64::from(src) / (2 * u64::from(out))) as u32
    };
    GrayImage::from_fn(width, height, |x, y| {
        let p = la.get_pixel(near(x, width, iw), near(y, height, ih)).0;
        let v = u32::from(p[0]) * u32::from(p[1]);
        Luma([if v > u32::from(HOLE) * 255 { 255 } else { 0 }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    fn diffusion(img: &RgbImage, mask: &GrayImage) -> RgbImage {
        diffusion_fill(img, mask)
    }

    fn square_mask(w: u32, h: u32, x0: u32, y0: u32, side: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let inside = (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y);
            Luma([if inside { 200 } else { 100 }])
        })
    }

    #[test]
    fn opaque_layer_hole_is_filled_and_the_rest_kept() {
        // A smooth gradient with a junk square where the hole will be.
        let layer = RgbaImage::from_fn(64, 64, |x, y| {
            let junk = (24..40).contains(&x) && (24..40).contains(&y);
            if junk {
                Rgba([255, 0, 255, 255])
            } else {
                Rgba([x as u8 * 3, y as u8 * 2, 100, 255])
            }
        });
        let mask = square_mask(64, 64, 22, 22, 20);
        let out = inpaint_layer(&layer, &mask, &diffusion).unwrap();
        for (x, y, p) in out.enumerate_pixels() {
            let q = layer.get_pixel(x, y);
            if mask.get_pixel(x, y).0[0] <= HOLE {
                assert_eq!(p, q);
            } else {
                let want = [x as u8 * 3, y as u8 * 2, 100, 255];
                let close = p.0.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 6);
                assert!(close, "({x}, {y}): {p:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn object_alpha_stays_opaque_and_transparent_colour_is_ignored() {
        // An opaque red disc whose transparent surroundings carry green junk.
        let layer = RgbaImage::from_fn(64, 64, |x, y| {
            let d2 = (x as i32 - 32).pow(2) + (y as i32 - 32).pow(2);
            if d2 <= 20 * 20 {
                Rgba([210, 30, 20, 255])
            } else {
                Rgba([0, 255, 0, 0])
            }
        });
        // A stroke inside the disc, and one across its edge.
        let inner = square_mask(64, 64, 26, 26, 10);
        let out = inpaint_layer(&layer, &inner, &diffusion).unwrap();
        for (x, y, p) in out.enumerate_pixels() {
            if inner.get_pixel(x, y).0[0] > HOLE {
                assert!(p.0[3] >= 250, "({x}, {y}) {p:?}");
                assert_eq!(p.0[..3], [210, 30, 20]);
            } else {
                assert_eq!(p, layer.get_pixel(x, y));
            }
        }
        let edge = square_mask(64, 64, 46, 26, 12);
        let out = inpaint_layer(&layer, &edge, &diffusion).unwrap();
        for (x, y, p) in out.enumerate_pixels() {
            if edge.get_pixel(x, y).0[0] > HOLE {
                assert!(p.0[1] < 60, "green junk leaked at ({x}, {y}): {p:?}");
            }
        }
        assert!(
            out.get_pixel(47, 32).0[3] > 128,
            "near the disc: mostly opaque"
        );
        assert!(
            out.get_pixel(57, 27).0[3] < 128,
            "far from it: mostly clear"
        );
    }

    #[test]
    fn a_hole_across_the_silhouette_continues_the_edge_instead_of_fading() {
        // An opaque disc of radius 20 (a saucer) on clear canvas; the brush covers a square
        // across its rim, half inside, half outside.
        let inside = |x: u32, y: u32| {
            let (dx, dy) = (f64::from(x) - 32.0, f64::from(y) - 32.0);
            dx * dx + dy * dy <= 400.0
        };
        let layer = RgbaImage::from_fn(64, 64, |x, y| {
            Rgba(if inside(x, y) {
                [180, 40, 20, 255]
            } else {
                [0; 4]
            })
        });
        let mask = square_mask(64, 64, 44, 22, 18);
        let out = inpaint_layer(&layer, &mask, &diffusion).unwrap();
        let (mut wrong, mut soft) = (0, 0);
        for (x, y, p) in out.enumerate_pixels() {
            if mask.get_pixel(x, y)[0] <= HOLE {
                assert_eq!(p, layer.get_pixel(x, y));
                continue;
            }
            let a = p[3];
            // near the true rim (within 2 px) either side is fine
            let (dx, dy) = (f64::from(x) - 32.0, f64::from(y) - 32.0);
            let r = (dx * dx + dy * dy).sqrt();
            if (r - 20.0).abs() > 2.0 {
                wrong += usize::from((a >= 128) != inside(x, y));
            }
            soft += usize::from(a > 10 && a < 245);
        }
        assert_eq!(wrong, 0, "the rim is continued across the hole");
        // a fade would leave most of the hole's pixels translucent; an edge, a thin band
        assert!(soft < 60, "{soft} translucent pixels in a 324-pixel hole");
        // inside an opaque object, a hole stays opaque (as before)
        let inner = square_mask(64, 64, 26, 26, 8);
        let out = inpaint_layer(&layer, &inner, &diffusion).unwrap();
        assert!(out
            .pixels()
            .zip(inner.pixels())
            .all(|(p, m)| m[0] <= HOLE || p[3] == 255));
    }

    #[test]
    fn empty_mask_and_bad_sizes() {
        let layer = RgbaImage::from_pixel(8, 8, Rgba([1, 2, 3, 4]));
        let none = GrayImage::from_pixel(8, 8, Luma([127]));
        assert_eq!(inpaint_layer(&layer, &none, &diffusion).unwrap(), layer);
        let small = GrayImage::new(8, 7);
        let err = inpaint_layer(&layer, &small, &diffusion).unwrap_err();
        assert_eq!(err.code(), "size_mismatch");
        let full = GrayImage::from_pixel(8, 8, Luma([255]));
        let shrink = |_: &RgbImage, _: &GrayImage| RgbImage::new(4, 4);
        let err = inpaint_layer(&layer, &full, &shrink).unwrap_err();
        assert_eq!(err.code(), "size_mismatch");
        let empty = RgbaImage::new(0, 0);
        assert_eq!(
            inpaint_layer(&empty, &GrayImage::new(0, 0), &diffusion).unwrap(),
            empty
        );
    }

    #[test]
    fn masks_from_any_upload() {
        let rgba = RgbaImage::from_fn(2, 2, |x, y| match (x, y) {
            (0, 0) => Rgba([255, 255, 255, 255]),
            (1, 0) => Rgba([255, 255, 255, 128]),
            (0, 1) => Rgba([255, 255, 255, 100]),
            _ => Rgba([100, 100, 100, 255]),
        });
        let m = mask_from_image(&DynamicImage::ImageRgba8(rgba), 4, 4);
        let want = [
            [255, 255, 255, 255],
            [255, 255, 255, 255],
            [0, 0, 0, 0],
            [0, 0, 0, 0],
        ];
        for (y, row) in want.iter().enumerate() {
            let got: Vec<u8> = (0..4).map(|x| m.get_pixel(x, y as u32).0[0]).collect();
            assert_eq!(got, row, "row {y}");
        }
        let grey = GrayImage::from_fn(3, 1, |x, _| Luma([[0, 200, 255][x as usize]]));
        let m = mask_from_image(&DynamicImage::ImageLuma8(grey), 3, 1);
        assert_eq!(m.as_raw(), &[0, 255, 255]);
        let rgb = RgbImage::from_pixel(5, 5, image::Rgb([255, 0, 0]));
        let m = mask_from_image(&DynamicImage::ImageRgb8(rgb), 2, 2);
        assert!(
            m.pixels().all(|p| p.0[0] == 0),
            "pure red is darker than half"
        );
        let m = mask_from_image(&DynamicImage::new_luma8(0, 0), 3, 2);
        assert_eq!(m.dimensions(), (3, 2));
        assert_eq!(
            mask_from_image(&DynamicImage::new_luma8(4, 4), 0, 0).dimensions(),
            (0, 0)
        );
    }
}
