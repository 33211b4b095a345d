//! Thumbnails: shrink an image to fit a square box and encode it as PNG.
//!
//! Invariants: the aspect ratio is kept (each side rounded, never below 1 pixel); images are
//! never enlarged; transparency is kept (RGBA output when the source has alpha, RGB
//! otherwise) and resampled premultiplied, so transparent pixels' hidden colours do not bleed
//! into visible edges. Large reductions first average areas down to twice the target size,
//! then finish with a Catmull-Rom filter, which keeps big images fast and small ones sharp.

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Pixel, RgbImage, RgbaImage};

use super::decode::{encode_png, EncodeError};

/// Filter of the final resampling pass.
const FILTER: FilterType = FilterType::CatmullRom;

/// `img` shrunk to fit within `max_side`×`max_side`, PNG-encoded.
pub fn thumbnail_png(img: &DynamicImage, max_side: u32) -> Result<Vec<u8>, EncodeError> {
    encode_png(&thumbnail(img, max_side))
}

/// `img` shrunk to fit within `max_side`×`max_side` (8-bit RGB, or RGBA if it has alpha).
pub fn thumbnail(img: &DynamicImage, max_side: u32) -> DynamicImage {
    let (w, h) = fit_within(img.width(), img.height(), max_side);
    let resized = (w, h) != (img.width(), img.height());
    if img.color().has_alpha() {
        let mut rgba = img.to_rgba8();
        if !resized {
            return DynamicImage::ImageRgba8(rgba);
        }
        premultiply(&mut rgba);
        let mut out = downscale(&rgba, w, h);
        unpremultiply(&mut out);
        DynamicImage::ImageRgba8(out)
    } else {
        let converted;
        let rgb: &RgbImage = match img.as_rgb8() {
            Some(rgb) => rgb,
            None => {
                converted = img.to_rgb8();
                &converted
            }
        };
        DynamicImage::ImageRgb8(if resized {
            downscale(rgb, w, h)
        } else {
            rgb.clone()
        })
    }
}

/// The size of a `width`×`height` image scaled to fit within `max_side` (never enlarged).
pub fn fit_within(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let max_side = max_side.max(1);
    let long = width.max(height);
    if long <= max_side {
        return (width, height);
    }
    let scale = f64::from(max_side) / f64::from(long);
    let side = |s: u32| ((f64::from(s) * scale).round() as u32).clamp(1, max_side);
    (side(width), side(height))
}

fn downscale<P>(src: &ImageBuffer<P, Vec<u8>>, w: u32, h: u32) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    if src.width() >= 4 * w && src.height() >= 4 * h {
        let mid = imageops::thumbnail(src, 2 * w, 2 * h);
        imageops::resize(&mid, w, h, FILTER)
    } else {
        imageops::resize(src, w, h, FILTER)
    }
}

fn premultiply(img: &mut RgbaImage) {
    for px in img.pixels_mut() {
        let a = u32::from(px[3]);
        for c in &mut px.0[..3] {
            *c = ((u32::from(*c) * a + 127) / 255) as u8;
        }
    }
}

fn unpremultiply(img: &mut RgbaImage) {
    for px in img.pixels_mut() {
        let a = u32::from(px[3]);
        if a == 0 {
            px.0 = [0; 4];
            continue;
        }
        for c in &mut px.0[..3] {
            *c = ((u32::from(*c) * 255 + a / 2) / a).min(255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ColorType, ImageFormat, Rgb, Rgba};

    fn png_info(bytes: &[u8]) -> (u32, u32, ColorType) {
        let img = image::load_from_memory_with_format(bytes, ImageFormat::Png).unwrap();
        (img.width(), img.height(), img.color())
    }

    #[test]
    fn fits_within_box_keeping_aspect() {
        assert_eq!(fit_within(400, 100, 64), (64, 16));
        assert_eq!(fit_within(50, 300, 64), (11, 64));
        assert_eq!(fit_within(64, 64, 64), (64, 64));
        assert_eq!(fit_within(30, 20, 64), (30, 20), "never upscaled");
        assert_eq!(
            fit_within(10_000, 1, 100),
            (100, 1),
            "never below one pixel"
        );
        assert_eq!(fit_within(5, 5, 0), (1, 1));
    }

    #[test]
    fn png_thumbnail_has_fitted_size_and_keeps_alpha() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(400, 100, Rgba([9, 8, 7, 100])));
        let png = thumbnail_png(&img, 64).unwrap();
        assert_eq!(png_info(&png), (64, 16, ColorType::Rgba8));
        let back = image::load_from_memory(&png).unwrap().to_rgba8();
        assert!(back.pixels().all(|p| p[3] == 100));

        let rgb = DynamicImage::ImageRgb8(RgbImage::from_pixel(50, 300, Rgb([1, 2, 3])));
        assert_eq!(
            png_info(&thumbnail_png(&rgb, 64).unwrap()),
            (11, 64, ColorType::Rgb8)
        );

        let small = DynamicImage::ImageLuma8(image::GrayImage::new(30, 20));
        assert_eq!(
            png_info(&thumbnail_png(&small, 64).unwrap()),
            (30, 20, ColorType::Rgb8)
        );
    }

    #[test]
    fn transparent_colour_does_not_bleed() {
        // Left half: fully transparent *green*; right half: opaque blue.
        let img = RgbaImage::from_fn(64, 64, |x, _| {
            if x < 32 {
                Rgba([0, 255, 0, 0])
            } else {
                Rgba([0, 0, 255, 255])
            }
        });
        let out = thumbnail(&DynamicImage::ImageRgba8(img), 8).to_rgba8();
        for px in out.pixels().filter(|p| p[3] > 0) {
            assert!(px[1] < 8, "green leaked into a visible pixel: {px:?}");
        }
        assert!(
            out.pixels().any(|p| p[3] > 0 && p[3] < 255),
            "edge is partly transparent"
        );
    }

    #[test]
    fn large_reduction_is_smooth_and_exact_in_size() {
        // Alternating black/white columns average to grey rather than aliasing.
        let img = RgbImage::from_fn(1200, 900, |x, _| {
            if x % 2 == 0 {
                Rgb([0; 3])
            } else {
                Rgb([255; 3])
            }
        });
        let out = thumbnail(&DynamicImage::ImageRgb8(img), 100).to_rgb8();
        assert_eq!(out.dimensions(), (100, 75));
        for px in out.pixels() {
            assert!((100..=155).contains(&px[0]), "aliased: {px:?}");
        }
    }
}
