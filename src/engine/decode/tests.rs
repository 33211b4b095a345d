//! Unit tests of the upload decoder for PNG, JPEG and WebP: sniffing, probing, limits,
//! truncation, bombs, panics and the PNG encoder.

use std::io::Cursor;
use std::time::Instant;

use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use super::chunks::jpeg_is_complete;
use super::error::megapixels;
use super::format::PNG_MAGIC;
use super::*;

fn noise_rgb(w: u32, h: u32) -> RgbImage {
    let mut state = 0x2545_F491_u32;
    RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let v = state.to_le_bytes();
        Rgb([v[0] ^ (x as u8), v[1] ^ (y as u8), v[2]])
    })
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(noise_rgb(w, h)), ImageFormat::Png)
}

fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(noise_rgb(w, h)), ImageFormat::Jpeg)
}

fn webp_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, y| Rgba([x as u8, y as u8, 7, 200]));
    encode(&DynamicImage::ImageRgba8(img), ImageFormat::WebP)
}

/// Rewrites the IHDR of a real PNG to declare `w`×`h` (CRC fixed up): a tiny file that
/// claims a huge image, like a zlib bomb.
fn redeclare_png(mut png: Vec<u8>, w: u32, h: u32) -> Vec<u8> {
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn zeros_png(w: u32, h: u32) -> Vec<u8> {
    encode(
        &DynamicImage::ImageLuma8(image::GrayImage::new(w, h)),
        ImageFormat::Png,
    )
}

#[test]
fn sniff_recognises_each_format_by_magic() {
    assert_eq!(sniff(&png_bytes(4, 4)), Ok(ImageFormatKind::Png));
    assert_eq!(sniff(&jpeg_bytes(4, 4)), Ok(ImageFormatKind::Jpeg));
    assert_eq!(sniff(&webp_bytes(4, 4)), Ok(ImageFormatKind::Webp));
    assert_eq!(sniff(b""), Err(DecodeError::Empty));
    assert_eq!(sniff(b"GIF89a\x01\x00\x01\x00"), Ok(ImageFormatKind::Gif));
    assert_eq!(sniff(b"GIF87a\x01\x00\x01\x00"), Ok(ImageFormatKind::Gif));
    assert_eq!(sniff(b"II*\0\x08\0\0\0"), Ok(ImageFormatKind::Tiff));
    assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Ok(ImageFormatKind::Tiff));
    let bmp = b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0";
    assert_eq!(sniff(bmp), Ok(ImageFormatKind::Bmp));
    // `BM` alone is not enough: text starts with it too.
    assert_eq!(
        sniff(b"BMW owners' manual, chapter 1"),
        Err(DecodeError::Unsupported)
    );
    // BigTIFF is not accepted.
    assert_eq!(sniff(b"II+\0\x08\0\0\0"), Err(DecodeError::Unsupported));
    assert_eq!(sniff(b"GIF8"), Err(DecodeError::Truncated));
    assert_eq!(sniff(b"MM\0"), Err(DecodeError::Truncated));
    assert_eq!(sniff(&bmp[..10]), Err(DecodeError::Truncated));
    assert_eq!(
        sniff(b"RIFF\x10\x00\x00\x00WAVEfmt "),
        Err(DecodeError::Unsupported)
    );
    assert_eq!(sniff(b"<svg xmlns="), Err(DecodeError::Unsupported));
    assert_eq!(sniff(&PNG_MAGIC[..5]), Err(DecodeError::Truncated));
    assert_eq!(sniff(b"RIFF\x10\x00"), Err(DecodeError::Truncated));
}

#[test]
fn format_names_and_json() {
    assert_eq!(ImageFormatKind::Jpeg.as_str(), "jpeg");
    assert_eq!(ImageFormatKind::Webp.mime(), "image/webp");
    assert_eq!(
        serde_json::to_string(&ImageFormatKind::Png).unwrap(),
        "\"png\""
    );
    let back: ImageFormatKind = serde_json::from_str("\"webp\"").unwrap();
    assert_eq!(back, ImageFormatKind::Webp);
}

#[test]
fn probe_reads_header_of_a_huge_declared_png_quickly() {
    let bytes = redeclare_png(png_bytes(8, 8), 100_000, 100_000);
    assert!(bytes.len() < 1024);
    let start = Instant::now();
    let err = probe(&bytes, &DecodeLimits::default()).unwrap_err();
    let took = start.elapsed();
    assert!(took.as_millis() < 50, "probe took {took:?}");
    assert_eq!(
        err,
        DecodeError::TooManyPixels {
            width: 100_000,
            height: 100_000,
            max_pixels: 64_000_000,
            max_side: 30_000
        }
    );
    assert_eq!(err.code(), "image_too_large");
    assert_eq!(
        err.to_string(),
        "the image is 100000×100000 = 10000 MP; the limit is 64 MP — resize it and upload again"
    );
    // decode refuses it the same way, before allocating anything.
    assert_eq!(decode(&bytes, &DecodeLimits::default()).unwrap_err(), err);
}

#[test]
fn probe_reports_dimensions() {
    let p = probe(&jpeg_bytes(33, 17), &DecodeLimits::default()).unwrap();
    assert_eq!(
        (p.format, p.width, p.height),
        (ImageFormatKind::Jpeg, 33, 17)
    );
    let p = probe(&webp_bytes(5, 9), &DecodeLimits::default()).unwrap();
    assert_eq!((p.format, p.width, p.height), (ImageFormatKind::Webp, 5, 9));
}

#[test]
fn zlib_bomb_is_refused_from_its_header() {
    let bomb = redeclare_png(zeros_png(256, 256), 12_000, 12_000);
    assert!(bomb.len() < 4096, "bomb is {} bytes", bomb.len());
    let err = decode(&bomb, &DecodeLimits::default()).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::TooManyPixels {
            width: 12_000,
            height: 12_000,
            ..
        }
    ));
    assert!(
        err.to_string().contains("= 144 MP; the limit is 64 MP"),
        "{err}"
    );

    let limits = DecodeLimits {
        max_pixels: 32_000_000,
        ..DecodeLimits::default()
    };
    let bomb = redeclare_png(zeros_png(256, 256), 8_000, 8_000);
    let err = decode(&bomb, &limits).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::TooManyPixels {
            width: 8_000,
            height: 8_000,
            ..
        }
    ));
    assert!(
        err.to_string().contains("= 64 MP; the limit is 32 MP"),
        "{err}"
    );
    // Under the default 64 MP it passes the header check but its data runs out.
    let err = decode(&bomb, &DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(err, DecodeError::Truncated | DecodeError::Corrupt(_)),
        "{err:?}"
    );
}

#[test]
fn png_whose_idat_cannot_hold_its_pixels_is_refused_before_allocating() {
    // 8000×8000 grey (64 MiB decoded) with an IDAT of a few bytes: inside the pixel
    // limit, refused from the chunk sizes.
    let bomb = redeclare_png(zeros_png(4, 4), 8000, 8000);
    assert!(!png_data_suffices(&bomb));
    let err = decode(&bomb, &DecodeLimits::default()).unwrap_err();
    assert_eq!(err, DecodeError::Truncated);
    // Real images pass, however well they compress.
    assert!(png_data_suffices(&zeros_png(2000, 2000)));
    assert!(png_data_suffices(&png_bytes(64, 64)));
}

#[test]
fn long_side_and_allocation_limits_are_enforced() {
    let limits = DecodeLimits {
        max_side: 100,
        ..DecodeLimits::default()
    };
    let err = decode(&png_bytes(101, 2), &limits).unwrap_err();
    assert!(
        err.to_string()
            .contains("no side may be longer than 100 pixels"),
        "{err}"
    );

    // The decoder's own allocation limit is wired: 64×64 RGB needs 12 KiB.
    let limits = DecodeLimits {
        max_alloc: 4096,
        ..DecodeLimits::default()
    };
    let err = decode(&png_bytes(64, 64), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::TooManyPixels {
                width: 64,
                height: 64,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("more memory"), "{err}");
}

#[test]
fn empty_random_and_foreign_formats_are_refused() {
    let limits = DecodeLimits::default();
    let err = decode(b"", &limits).unwrap_err();
    assert_eq!(err.code(), "empty_upload");

    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let err = decode(&random, &limits).unwrap_err();
    assert_eq!(err.code(), "unsupported_media_type");

    for foreign in [
        &b"II+\0\x08\0\0\0\x10\0\x04\0\0\0\0\0"[..],
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
        b"<?xml version=\"1.0\"?><svg/>",
    ] {
        assert_eq!(
            decode(foreign, &limits).unwrap_err(),
            DecodeError::Unsupported
        );
    }
}

#[test]
fn truncated_png_is_a_client_error() {
    let png = png_bytes(64, 64);
    for cut in [png.len() / 2, png.len() - 20, 20] {
        let err = decode(&png[..cut], &DecodeLimits::default()).unwrap_err();
        assert_eq!(err, DecodeError::Truncated, "cut {cut}");
    }
}

#[test]
fn truncated_jpeg_is_refused_not_painted_grey() {
    let jpeg = jpeg_bytes(64, 64);
    // The JPEG decoder alone would return Ok with grey rows for all but the shortest cut.
    for cut in [jpeg.len() / 2, jpeg.len() - 2, 20, 3] {
        let err = decode(&jpeg[..cut], &DecodeLimits::default()).unwrap_err();
        assert_eq!(err, DecodeError::Truncated, "cut {cut}");
        assert_eq!(err.code(), "truncated_image");
    }
    assert!(jpeg_is_complete(&jpeg));
    assert!(!jpeg_is_complete(&jpeg[..jpeg.len() - 1]));
}

#[test]
fn end_marker_of_an_embedded_thumbnail_does_not_hide_a_cut() {
    let thumb = jpeg_bytes(8, 8);
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend(((2 + thumb.len()) as u16).to_be_bytes());
    app1.extend(&thumb);
    let main = jpeg_bytes(64, 64);
    let mut jpeg = main[..2].to_vec();
    jpeg.extend(app1);
    jpeg.extend(&main[2..]);
    assert!(decode(&jpeg, &DecodeLimits::default()).is_ok());
    let cut = &jpeg[..jpeg.len() - 100];
    assert_eq!(
        decode(cut, &DecodeLimits::default()).unwrap_err(),
        DecodeError::Truncated
    );
}

#[test]
fn truncated_webp_is_a_client_error() {
    let webp = webp_bytes(64, 64);
    for cut in [webp.len() / 2, webp.len() - 1, 20] {
        let err = decode(&webp[..cut], &DecodeLimits::default()).unwrap_err();
        assert_eq!(err, DecodeError::Truncated, "cut {cut}");
    }
}

#[test]
fn decodes_each_format() {
    let limits = DecodeLimits::default();
    let png = decode(&png_bytes(31, 7), &limits).unwrap();
    assert_eq!(
        (png.format, png.width, png.height),
        (ImageFormatKind::Png, 31, 7)
    );
    assert_eq!(png.image, DynamicImage::ImageRgb8(noise_rgb(31, 7)));

    let jpeg = decode(&jpeg_bytes(40, 24), &limits).unwrap();
    assert_eq!(
        (jpeg.format, jpeg.width, jpeg.height),
        (ImageFormatKind::Jpeg, 40, 24)
    );
    assert_eq!((jpeg.source_width, jpeg.source_height), (40, 24));
    assert!(jpeg.exif.is_none());

    let webp = decode(&webp_bytes(12, 5), &limits).unwrap();
    assert_eq!(
        (webp.format, webp.width, webp.height),
        (ImageFormatKind::Webp, 12, 5)
    );
    let px = webp.image.to_rgba8().get_pixel(3, 4).0;
    assert_eq!(px, [3, 4, 7, 200], "lossless WebP keeps pixels and alpha");
}

#[test]
fn encode_png_round_trips() {
    let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(9, 4, |x, y| {
        Rgba([x as u8, y as u8, 1, 128])
    }));
    let bytes = encode_png(&img).unwrap();
    let back = decode(&bytes, &DecodeLimits::default()).unwrap();
    assert_eq!(back.image, img);
    let float = DynamicImage::ImageRgba32F(img.to_rgba32f());
    let back = decode(&encode_png(&float).unwrap(), &DecodeLimits::default()).unwrap();
    assert_eq!(back.image.to_rgba8(), img.to_rgba8());
}

#[test]
fn panics_become_corrupt() {
    let err = guard_panics::<()>(|| panic!("decoder bug")).unwrap_err();
    assert_eq!(err.code(), "undecodable_image");
}

#[test]
fn megapixel_formatting() {
    assert_eq!(megapixels(64_000_000), "64");
    assert_eq!(megapixels(144_000_000), "144");
    assert_eq!(megapixels(12_345_678), "12");
    assert_eq!(megapixels(2_500_000), "2.5");
}
