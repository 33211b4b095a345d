//! Background removal as pure image code: an image plus a matte (the salient object's alpha,
//! at the image's resolution) becomes an RGBA cutout whose colour channels are the source's.

use image::{GrayImage, RgbImage, RgbaImage};

/// Attaches `matte` as the alpha channel of `rgb`. Both must have the same size.
pub fn apply_matte(rgb: &RgbImage, matte: &GrayImage) -> Option<RgbaImage> {
    if rgb.dimensions() != matte.dimensions() {
        return None;
    }
    let (w, h) = rgb.dimensions();
    let mut out = Vec::with_capacity(w as usize * h as usize * 4);
    for (px, a) in rgb.as_raw().chunks_exact(3).zip(matte.as_raw()) {
        out.extend_from_slice(&[px[0], px[1], px[2], *a]);
    }
    RgbaImage::from_raw(w, h, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matte_becomes_alpha_and_colours_stay() {
        let rgb = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let matte = GrayImage::from_fn(3, 2, |x, _| image::Luma([x as u8 * 100]));
        let out = apply_matte(&rgb, &matte).unwrap();
        assert_eq!(out.get_pixel(2, 1).0, [2, 1, 7, 200]);
        assert!(apply_matte(&rgb, &GrayImage::new(2, 2)).is_none());
    }
}
