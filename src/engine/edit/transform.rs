//! Move and scale a layer on its canvas: scale about the centre of the layer's bounding box,
//! then translate. The canvas keeps its size and whatever leaves it is clipped.
//!
//! Invariants: scale 1 is an exact integer pixel shift (bit for bit, vacated pixels
//! transparent); any other scale is resampled in premultiplied alpha (Catmull-Rom, widened when
//! shrinking), so colour under transparent pixels never darkens or tints the edges.

use image::RgbaImage;

use super::resample::{resample_into, AxisMap, Edge};
use super::{check_range, layer_bbox, EditError};

/// Smallest and largest accepted `scale`.
const SCALE_RANGE: std::ops::RangeInclusive<f32> = 0.05..=20.0;

/// The layer scaled by `scale` (0.05..=20) about the centre of its bounding box (pixels with
/// alpha > 0), then moved by `dx`, `dy` pixels (right and down), on a canvas of the same size.
/// Parts moved off the canvas are lost. A fully transparent layer comes back unchanged.
pub fn transform(rgba: &RgbaImage, dx: i32, dy: i32, scale: f32) -> Result<RgbaImage, EditError> {
    check_range("scale", scale, SCALE_RANGE)?;
    let (w, h) = rgba.dimensions();
    let Some([bx, by, bw, bh]) = layer_bbox(rgba) else {
        return Ok(rgba.clone());
    };
    if scale == 1.0 {
        return Ok(shift(rgba, dx, dy));
    }
    let s = f64::from(scale);
    // Forward map per axis: X = c + s (x - c) + d, i.e. X = s x + (c (1 - s) + d).
    let axis = |start: u32, len: u32, d: i32, canvas: u32| {
        let c = f64::from(start) + f64::from(len) / 2.0;
        AxisMap {
            src: start..start + len,
            dst: 0..canvas,
            scale: s,
            offset: c * (1.0 - s) + f64::from(d),
            edge: Edge::Transparent,
        }
    };
    let mut out = RgbaImage::new(w, h);
    resample_into(rgba, &axis(bx, bw, dx, w), &axis(by, bh, dy, h), &mut out);
    Ok(out)
}

/// `rgba` moved by whole pixels; vacated pixels are `[0, 0, 0, 0]`.
fn shift(rgba: &RgbaImage, dx: i32, dy: i32) -> RgbaImage {
    let (w, h) = rgba.dimensions();
    let mut out = RgbaImage::new(w, h);
    // Destination columns/rows that have a source: 0 <= x - d < len.
    let span = |d: i32, len: u32| {
        let lo = i64::from(d).clamp(0, i64::from(len));
        let hi = (i64::from(len) + i64::from(d)).clamp(0, i64::from(len));
        (lo as u32, hi as u32)
    };
    let ((x0, x1), (y0, y1)) = (span(dx, w), span(dy, h));
    if x0 >= x1 {
        return out;
    }
    for y in y0..y1 {
        let sy = (i64::from(y) - i64::from(dy)) as u32;
        let sx0 = (i64::from(x0) - i64::from(dx)) as u32;
        let src =
            &rgba.as_raw()[4 * (sy * w + sx0) as usize..4 * (sy * w + sx0 + x1 - x0) as usize];
        let at = 4 * (y * w + x0) as usize;
        out.as_mut()[at..at + src.len()].copy_from_slice(src);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    /// A white disc of radius `r` at (`cx`, `cy`) with an anti-aliased edge, on transparent
    /// black.
    fn disc(w: u32, h: u32, cx: f32, cy: f32, r: f32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
            let a = ((r - d + 0.5).clamp(0.0, 1.0) * 255.0).round() as u8;
            if a == 0 {
                Rgba([0; 4])
            } else {
                Rgba([255, 255, 255, a])
            }
        })
    }

    #[test]
    fn unit_scale_is_an_exact_shift() {
        let img = RgbaImage::from_fn(16, 12, |x, y| Rgba([x as u8, y as u8, 9, 255]));
        let out = transform(&img, 3, -2, 1.0).unwrap();
        for (x, y, p) in out.enumerate_pixels() {
            let (sx, sy) = (x as i32 - 3, y as i32 + 2);
            if (0..16).contains(&sx) && (0..12).contains(&sy) {
                assert_eq!(p, img.get_pixel(sx as u32, sy as u32));
            } else {
                assert_eq!(p.0, [0; 4]);
            }
        }
        assert_eq!(transform(&img, 0, 0, 1.0).unwrap(), img);
    }

    #[test]
    fn off_canvas_gives_an_empty_layer() {
        let img = disc(32, 32, 16.0, 16.0, 6.0);
        for (dx, dy, s) in [
            (40, 0, 1.0),
            (0, -100, 1.0),
            (i32::MAX, i32::MIN, 1.0),
            (64, 0, 2.0),
        ] {
            let out = transform(&img, dx, dy, s).unwrap();
            assert_eq!(layer_bbox(&out), None, "{dx} {dy} {s}");
            assert_eq!(out.dimensions(), (32, 32));
        }
    }

    #[test]
    fn scale_two_doubles_the_box_about_its_centre() {
        let img = disc(64, 64, 32.0, 32.0, 8.0);
        let [x, y, w, h] = layer_bbox(&img).unwrap();
        let out = transform(&img, 0, 0, 2.0).unwrap();
        let [x2, y2, w2, h2] = layer_bbox(&out).unwrap();
        assert!(
            (2 * w).abs_diff(w2) <= 2 && (2 * h).abs_diff(h2) <= 2,
            "{w}->{w2}"
        );
        // Same centre (within a pixel).
        assert!((2 * x + w).abs_diff(2 * x2 + w2) <= 2 && (2 * y + h).abs_diff(2 * y2 + h2) <= 2);
        let half = transform(&img, 5, 0, 0.5).unwrap();
        let [hx, _, hw, _] = layer_bbox(&half).unwrap();
        assert!(hw.abs_diff(w / 2) <= 2, "{hw}");
        assert!((2 * hx + hw).abs_diff(2 * x + w + 10) <= 2);
    }

    #[test]
    fn no_dark_fringe_in_premultiplied_resampling() {
        let img = disc(64, 64, 30.3, 33.7, 10.0);
        for s in [0.3, 0.77, 1.5, 3.3] {
            let out = transform(&img, 2, -1, s).unwrap();
            let mut soft = 0;
            for p in out.pixels().filter(|p| p.0[3] > 0) {
                assert!(p.0[..3].iter().all(|&c| c >= 254), "scale {s}: {p:?}");
                soft += usize::from(p.0[3] < 255);
            }
            assert!(soft > 0, "the edge should stay anti-aliased");
        }
    }

    #[test]
    fn rejects_bad_scale_and_survives_tiny_canvases() {
        let img = disc(8, 8, 4.0, 4.0, 2.0);
        for s in [0.0, 0.01, 21.0, f32::NAN, -1.0] {
            assert_eq!(
                transform(&img, 0, 0, s).unwrap_err().code(),
                "bad_parameter"
            );
        }
        let empty = RgbaImage::new(0, 0);
        assert_eq!(transform(&empty, 3, 3, 2.0).unwrap(), empty);
        let one = RgbaImage::from_pixel(1, 1, Rgba([1, 2, 3, 255]));
        assert_eq!(
            transform(&one, 0, 0, 20.0).unwrap().get_pixel(0, 0).0[3],
            255
        );
        assert_eq!(transform(&one, 0, 0, 0.05).unwrap().dimensions(), (1, 1));
    }
}
