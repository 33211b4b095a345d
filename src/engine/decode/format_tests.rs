//! Unit tests of GIF, BMP and CMYK JPEG uploads: pixels, the first GIF frame only, BMP layouts
//! (bottom-up, top-down, RLE8), and cut files and bombs refused before decoding.

use std::io::Cursor;

use image::codecs::gif::GifEncoder;
use image::{Delay, Frame, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use super::*;

/// A small image with few colours (GIF keeps them exactly) and a transparent corner.
fn few_colours(w: u32, h: u32, salt: u8) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| match (x + y + u32::from(salt)) % 4 {
        _ if x == 0 && y == 0 => Rgba([0, 0, 0, 0]),
        0 => Rgba([255, 0, 0, 255]),
        1 => Rgba([0, 200, 0, 255]),
        2 => Rgba([10, 20, 250, 255]),
        _ => Rgba([240, 240, 240, 255]),
    })
}

fn gif_of(frames: &[RgbaImage]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        for f in frames {
            let frame = Frame::from_parts(f.clone(), 0, 0, Delay::from_numer_denom_ms(100, 1));
            enc.encode_frame(frame).unwrap();
        }
    }
    out
}

/// A GIF by hand: a `screen`, a 2-colour global table, one `frame` at 0,0 with `lzw` as its
/// one data sub-block (min code size 2).
fn gif_by_hand(screen: (u16, u16), frame: (u16, u16), lzw: &[u8]) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend(screen.0.to_le_bytes());
    g.extend(screen.1.to_le_bytes());
    g.extend([0x80, 0, 0]); // global table of 2 colours
    g.extend([0, 0, 0, 255, 255, 255]);
    g.extend([0x2C, 0, 0, 0, 0]);
    g.extend(frame.0.to_le_bytes());
    g.extend(frame.1.to_le_bytes());
    g.extend([0, 2, lzw.len() as u8]);
    g.extend(lzw);
    g.extend([0, 0x3B]);
    g
}

/// Clear, index 0, end: one pixel of LZW data.
const ONE_PIXEL_LZW: &[u8] = &[0x44, 0x01];

#[test]
fn gif_decodes_its_first_frame_only() {
    let first = few_colours(9, 5, 0);
    let bytes = gif_of(&[first.clone(), few_colours(9, 5, 1)]);
    let d = decode(&bytes, &DecodeLimits::default()).unwrap();
    assert_eq!(d.format, ImageFormatKind::Gif);
    assert_eq!((d.width, d.height), (9, 5));
    assert_eq!(
        d.image.to_rgba8(),
        first,
        "the first frame, transparency kept"
    );

    let one = gif_by_hand((1, 1), (1, 1), ONE_PIXEL_LZW);
    let d = decode(&one, &DecodeLimits::default()).unwrap();
    assert_eq!(d.image.to_rgba8().as_raw(), &vec![0, 0, 0, 255]);
}

#[test]
fn a_cut_gif_is_truncated_up_to_the_end_of_its_first_frame() {
    let bytes = gif_of(&[few_colours(16, 16, 2), few_colours(16, 16, 3)]);
    // The first frame ends where a cut stops being refused; the second frame follows.
    let end = (2..=bytes.len())
        .find(|&cut| gif::first_frame(&bytes[..cut]).is_ok())
        .unwrap();
    assert!(end < bytes.len() - 20, "{end} of {}", bytes.len());
    for cut in 2..end {
        let err = decode(&bytes[..cut], &DecodeLimits::default()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated,
            "cut at {cut} of {}",
            bytes.len()
        );
    }
    // Past the first frame the rest of the animation is not needed.
    assert!(decode(&bytes[..end], &DecodeLimits::default()).is_ok());
}

#[test]
fn gif_bombs_are_refused_before_decoding() {
    let limits = DecodeLimits::default();
    // A huge screen: refused from the header.
    let err = decode(
        &gif_by_hand((65_535, 65_535), (1, 1), ONE_PIXEL_LZW),
        &limits,
    );
    assert!(
        matches!(err, Err(DecodeError::TooManyPixels { width: 65_535, .. })),
        "{err:?}"
    );
    // A 64 MP screen painted by one pixel of data.
    let err = decode(&gif_by_hand((8000, 8000), (1, 1), ONE_PIXEL_LZW), &limits).unwrap_err();
    assert_eq!(err.code(), "undecodable_image");
    assert!(
        err.to_string().contains("cannot fill its 8000×8000 screen"),
        "{err}"
    );
    // A frame the size of the screen whose data is two bytes.
    let err = decode(
        &gif_by_hand((4000, 4000), (4000, 4000), ONE_PIXEL_LZW),
        &limits,
    );
    assert_eq!(err.unwrap_err(), DecodeError::Truncated);
    // A 1×1 screen with a 16000×16000 frame: the decoder would buffer the frame.
    let err = decode(
        &gif_by_hand((1, 1), (16_000, 16_000), ONE_PIXEL_LZW),
        &limits,
    );
    assert!(
        matches!(err, Err(DecodeError::TooManyPixels { width: 16_000, .. })),
        "{err:?}"
    );
    // No frame at all.
    let err = decode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", &limits).unwrap_err();
    assert!(err.to_string().contains("no image"), "{err}");
}

fn bmp_by_hand(
    w: i32,
    h: i32,
    bits: u16,
    compression: u32,
    palette: &[[u8; 4]],
    data: &[u8],
) -> Vec<u8> {
    let offset = 14 + 40 + 4 * palette.len() as u32;
    let mut b = b"BM".to_vec();
    b.extend((offset + data.len() as u32).to_le_bytes());
    b.extend([0; 4]);
    b.extend(offset.to_le_bytes());
    b.extend(40u32.to_le_bytes());
    b.extend(w.to_le_bytes());
    b.extend(h.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(bits.to_le_bytes());
    b.extend(compression.to_le_bytes());
    b.extend((data.len() as u32).to_le_bytes());
    b.extend([0; 8]);
    b.extend((palette.len() as u32).to_le_bytes());
    b.extend([0; 4]);
    for c in palette {
        b.extend(c);
    }
    b.extend(data);
    b
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

#[test]
fn bmp_layouts_decode_to_their_pixels() {
    let limits = DecodeLimits::default();
    let rgba = few_colours(7, 3, 1);
    let rgb = DynamicImage::ImageRgba8(rgba.clone()).to_rgb8();
    let d = decode(
        &encode(&DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Bmp),
        &limits,
    );
    let d = d.unwrap();
    assert_eq!((d.format, d.width, d.height), (ImageFormatKind::Bmp, 7, 3));
    assert_eq!(d.image.to_rgb8(), rgb);
    let d = decode(
        &encode(&DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Bmp),
        &limits,
    );
    assert_eq!(d.unwrap().image.to_rgba8(), rgba);
    let grey = DynamicImage::ImageRgb8(rgb.clone()).to_luma8();
    let d = decode(
        &encode(&DynamicImage::ImageLuma8(grey.clone()), ImageFormat::Bmp),
        &limits,
    );
    assert_eq!(d.unwrap().image.to_luma8(), grey);

    // 24-bit top-down (negative height), rows padded to 4 bytes: 2×2, BGR.
    let data = [0, 0, 255, 0, 255, 0, 0, 0, 255, 0, 0, 255, 255, 255, 0, 0];
    let d = decode(&bmp_by_hand(2, -2, 24, 0, &[], &data), &limits).unwrap();
    let want = RgbImage::from_vec(2, 2, vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    assert_eq!(d.image.to_rgb8(), want.unwrap());

    // RLE8, bottom-up: row 0 (the bottom) is 3 × colour 1 and 1 × colour 0.
    let palette = [[0, 0, 0, 0], [0, 0, 255, 0]];
    let rle = [3, 1, 1, 0, 0, 0, 4, 0, 0, 1];
    let d = decode(&bmp_by_hand(4, 2, 8, 1, &palette, &rle), &limits).unwrap();
    let rows = d.image.to_rgb8();
    assert_eq!(rows.get_pixel(0, 1), &Rgb([255, 0, 0]));
    assert_eq!(rows.get_pixel(3, 1), &Rgb([0, 0, 0]));
    assert_eq!(rows.get_pixel(0, 0), &Rgb([0, 0, 0]));
}

#[test]
fn a_cut_bmp_is_truncated_wherever_it_is_cut() {
    // 8 pixels of RGB a row: no padding, so every byte counts.
    let rgb = DynamicImage::ImageRgba8(few_colours(8, 4, 2)).to_rgb8();
    let bytes = encode(&DynamicImage::ImageRgb8(rgb), ImageFormat::Bmp);
    for cut in 2..bytes.len() {
        let err = decode(&bytes[..cut], &DecodeLimits::default()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated,
            "cut at {cut} of {}",
            bytes.len()
        );
    }
}

#[test]
fn bmp_bombs_are_refused_before_decoding() {
    let limits = DecodeLimits::default();
    let err = decode(
        &bmp_by_hand(100_000, 100_000, 24, 0, &[], &[0; 16]),
        &limits,
    );
    assert!(
        matches!(err, Err(DecodeError::TooManyPixels { width: 100_000, .. })),
        "{err:?}"
    );
    // 8000×8000 (192 MiB decoded): no rows, or RLE that ends the bitmap at once.
    let err = decode(&bmp_by_hand(8000, 8000, 24, 0, &[], &[0; 16]), &limits);
    assert_eq!(err.unwrap_err(), DecodeError::Truncated);
    let palette = [[0, 0, 0, 0], [0, 0, 255, 0]];
    let err = decode(&bmp_by_hand(8000, 8000, 8, 1, &palette, &[0, 1]), &limits);
    assert_eq!(err.unwrap_err(), DecodeError::Truncated);
}

/// 64×16: red, green, blue and white squares, made with ImageMagick (Adobe YCCK) and Pillow
/// (Adobe CMYK, inverted as Photoshop writes it).
const CMYK_JPEGS: [&[u8]; 2] = [
    include_bytes!("../../../tests/fixtures/fuzz/decode/cmyk-adobe-ycck.jpg"),
    include_bytes!("../../../tests/fixtures/fuzz/decode/cmyk-adobe-inverted.jpg"),
];

#[test]
fn cmyk_jpegs_come_out_in_rgb() {
    for (i, bytes) in CMYK_JPEGS.iter().enumerate() {
        let d = decode(bytes, &DecodeLimits::default()).unwrap();
        assert_eq!(
            (d.format, d.width, d.height),
            (ImageFormatKind::Jpeg, 64, 16)
        );
        let rgb = d.image.to_rgb8();
        let want = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
        for (k, want) in want.iter().enumerate() {
            let got = rgb.get_pixel(16 * k as u32 + 8, 8).0;
            let off = got
                .iter()
                .zip(want)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(off <= 16, "jpeg {i} square {k}: {got:?}, want {want:?}");
        }
        let cut = &bytes[..bytes.len() - 10];
        assert_eq!(
            decode(cut, &DecodeLimits::default()).unwrap_err(),
            DecodeError::Truncated
        );
    }
}

#[test]
fn the_allocation_limit_applies_to_bmp_and_gif() {
    // 64×64 RGBA needs 16 KiB: over a 4 KiB `max_alloc`, inside every other limit.
    let limits = DecodeLimits {
        max_alloc: 4096,
        ..DecodeLimits::default()
    };
    let img = DynamicImage::ImageRgba8(few_colours(64, 64, 3));
    for format in [ImageFormat::Bmp, ImageFormat::Gif] {
        let err = decode(&encode(&img, format), &limits).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::TooManyPixels {
                    width: 64,
                    height: 64,
                    ..
                }
            ),
            "{format:?}: {err:?}"
        );
        assert!(err.to_string().contains("more memory"), "{err}");
        assert!(decode(&encode(&img, format), &DecodeLimits::default()).is_ok());
    }
}
