//! Merge a layer into the one below it: Porter-Duff "over" in straight alpha, with each
//! layer's opacity folded into its alpha first, so the merged layer (at opacity 1) composites
//! exactly as the pair did.
//!
//! Invariant: where the result is fully transparent its colour is `[0, 0, 0]`.

use image::RgbaImage;

use super::{check_range, check_size, EditError};

/// `upper` (at `upper_opacity`) over `lower` (at `lower_opacity`), one layer meant to be shown
/// at opacity 1. Opacities are in 0..=1; the images must have the same size.
pub fn merge_down(
    lower: &RgbaImage,
    lower_opacity: f32,
    upper: &RgbaImage,
    upper_opacity: f32,
) -> Result<RgbaImage, EditError> {
    check_size(
        "upper layer",
        upper.dimensions().into(),
        lower.dimensions().into(),
    )?;
    check_range("lower opacity", lower_opacity, 0.0..=1.0)?;
    check_range("upper opacity", upper_opacity, 0.0..=1.0)?;
    let mut out = RgbaImage::new(lower.width(), lower.height());
    for ((o, l), u) in out.pixels_mut().zip(lower.pixels()).zip(upper.pixels()) {
        let al = f32::from(l.0[3]) / 255.0 * lower_opacity;
        let au = f32::from(u.0[3]) / 255.0 * upper_opacity;
        let ao = au + al * (1.0 - au);
        let alpha = (ao * 255.0).round() as u8;
        if alpha == 0 {
            continue;
        }
        let (wu, wl) = (au / ao, al * (1.0 - au) / ao);
        for c in 0..3 {
            let v = f32::from(u.0[c]) * wu + f32::from(l.0[c]) * wl;
            o.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
        o.0[3] = alpha;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    fn noise(w: u32, h: u32, seed: u32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            let v = (x * 73 + y * 151 + seed * 31).wrapping_mul(2_654_435_761);
            Rgba(v.to_le_bytes())
        })
    }

    #[test]
    fn opaque_upper_wins() {
        let lower = noise(16, 8, 1);
        let upper = RgbaImage::from_fn(16, 8, |x, y| Rgba([x as u8, y as u8, 200, 255]));
        assert_eq!(merge_down(&lower, 0.7, &upper, 1.0).unwrap(), upper);
    }

    #[test]
    fn transparent_upper_leaves_lower_times_opacity() {
        let lower = noise(16, 8, 2);
        let upper = noise(16, 8, 3);
        let out = merge_down(&lower, 1.0, &upper, 0.0).unwrap();
        for (l, o) in lower.pixels().zip(out.pixels()) {
            if l.0[3] > 0 {
                assert_eq!(l, o);
            } else {
                assert_eq!(o.0, [0; 4]);
            }
        }
        let out = merge_down(&lower, 0.5, &RgbaImage::new(16, 8), 1.0).unwrap();
        for (l, o) in lower.pixels().zip(out.pixels()) {
            let want = (f32::from(l.0[3]) * 0.5).round() as u8;
            assert_eq!(o.0[3], want);
            if want > 0 {
                assert_eq!(o.0[..3], l.0[..3]);
            }
        }
    }

    #[test]
    fn half_alpha_by_hand() {
        let lower = RgbaImage::from_pixel(1, 2, Rgba([0, 0, 255, 255]));
        let mut upper = RgbaImage::from_pixel(1, 2, Rgba([255, 0, 0, 128]));
        let out = merge_down(&lower, 1.0, &upper, 1.0).unwrap();
        // a_u = 128/255; colour = 255 a_u red + 255 (1 - a_u) blue.
        assert_eq!(out.get_pixel(0, 0).0, [128, 0, 127, 255]);
        // Both half transparent: a = a_u + a_l (1 - a_u) = 0.7520 → 192;
        // red = 255 a_u / a = 170.2, blue = 255 a_l (1 - a_u) / a = 84.8.
        let lower = RgbaImage::from_pixel(1, 2, Rgba([0, 0, 255, 128]));
        assert_eq!(
            merge_down(&lower, 1.0, &upper, 1.0)
                .unwrap()
                .get_pixel(0, 1)
                .0,
            [170, 0, 85, 192]
        );
        // Opacity counts like alpha: opaque upper at opacity 128/255 is the first case.
        upper.put_pixel(0, 0, Rgba([255, 0, 0, 255]));
        let lower = RgbaImage::from_pixel(1, 2, Rgba([0, 0, 255, 255]));
        let out = merge_down(&lower, 1.0, &upper, 128.0 / 255.0).unwrap();
        assert_eq!(out.get_pixel(0, 0).0, [128, 0, 127, 255]);
    }

    #[test]
    fn rejects_bad_arguments() {
        let a = RgbaImage::new(4, 4);
        let b = RgbaImage::new(4, 5);
        assert_eq!(
            merge_down(&a, 1.0, &b, 1.0).unwrap_err().code(),
            "size_mismatch"
        );
        assert_eq!(
            merge_down(&a, 1.5, &a, 1.0).unwrap_err().code(),
            "bad_parameter"
        );
        assert_eq!(
            merge_down(&a, 1.0, &a, f32::NAN).unwrap_err().code(),
            "bad_parameter"
        );
        let empty = RgbaImage::new(0, 0);
        assert_eq!(merge_down(&empty, 1.0, &empty, 1.0).unwrap(), empty);
    }
}
