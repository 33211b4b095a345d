//! Unit tests of TIFF uploads: every sample layout and compression we accept decodes to its
//! pixels (16 bits kept), both byte orders, CMYK converted to RGB, the first page only, and
//! cut files, bombs and unsupported compressions refused before decoding.

use std::io::Cursor;
use std::time::Instant;

use ::tiff::encoder::colortype::{self, ColorType};
use ::tiff::encoder::compression::DeflateLevel;
use ::tiff::encoder::{Compression, TiffEncoder, TiffValue};
use ::tiff::tags::Predictor;
use image::{ImageBuffer, Luma, Rgb, Rgba};

use super::*;

fn noise(n: usize, salt: u32) -> Vec<u32> {
    let mut s = 0x9E37_79B9u32 ^ salt;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        })
        .collect()
}

/// A TIFF written by the `tiff` crate (little-endian, the host's order).
pub(super) fn tiff_with<C: ColorType>(
    w: u32,
    h: u32,
    data: &[C::Inner],
    compression: Compression,
    predictor: Predictor,
) -> Vec<u8>
where
    [C::Inner]: TiffValue,
{
    let mut out = Cursor::new(Vec::new());
    TiffEncoder::new(&mut out)
        .unwrap()
        .with_compression(compression)
        .with_predictor(predictor)
        .write_image::<C>(w, h, data)
        .unwrap();
    out.into_inner()
}

const COMPRESSIONS: [(&str, Compression); 5] = [
    ("none", Compression::Uncompressed),
    ("lzw", Compression::Lzw),
    ("deflate", Compression::Deflate(DeflateLevel::Balanced)),
    ("packbits", Compression::Packbits),
    ("lzw+predictor", Compression::Lzw),
];

/// Decodes every compression of one sample layout and compares with `expected`.
fn check_layout<C: ColorType>(
    name: &str,
    w: u32,
    h: u32,
    data: &[C::Inner],
    expected: &DynamicImage,
) where
    [C::Inner]: TiffValue,
{
    for (i, (cname, compression)) in COMPRESSIONS.into_iter().enumerate() {
        let predictor = if i == 4 {
            Predictor::Horizontal
        } else {
            Predictor::None
        };
        let bytes = tiff_with::<C>(w, h, data, compression, predictor);
        let d = decode(&bytes, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{name} {cname}: {e}"));
        assert_eq!(d.format, ImageFormatKind::Tiff);
        assert_eq!((d.width, d.height), (w, h), "{name} {cname}");
        assert_eq!(&d.image, expected, "{name} {cname}");
    }
}

#[test]
fn every_sample_layout_and_compression_decodes_to_its_pixels() {
    let (w, h) = (13, 7);
    let n = (w * h) as usize;
    let v8 = |k: usize| -> Vec<u8> { noise(n * k, k as u32).iter().map(|v| *v as u8).collect() };
    let v16 = |k: usize| -> Vec<u16> {
        noise(n * k, 7 + k as u32)
            .iter()
            .map(|v| *v as u16)
            .collect()
    };

    let g8 = v8(1);
    let img = ImageBuffer::<Luma<u8>, _>::from_raw(w, h, g8.clone()).unwrap();
    check_layout::<colortype::Gray8>("grey8", w, h, &g8, &DynamicImage::ImageLuma8(img));
    let g16 = v16(1);
    let img = ImageBuffer::<Luma<u16>, _>::from_raw(w, h, g16.clone()).unwrap();
    check_layout::<colortype::Gray16>("grey16", w, h, &g16, &DynamicImage::ImageLuma16(img));
    let rgb8 = v8(3);
    let img = ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, rgb8.clone()).unwrap();
    check_layout::<colortype::RGB8>("rgb8", w, h, &rgb8, &DynamicImage::ImageRgb8(img));
    let rgb16 = v16(3);
    let img = ImageBuffer::<Rgb<u16>, _>::from_raw(w, h, rgb16.clone()).unwrap();
    check_layout::<colortype::RGB16>("rgb16", w, h, &rgb16, &DynamicImage::ImageRgb16(img));
    let rgba8 = v8(4);
    let img = ImageBuffer::<Rgba<u8>, _>::from_raw(w, h, rgba8.clone()).unwrap();
    check_layout::<colortype::RGBA8>("rgba8", w, h, &rgba8, &DynamicImage::ImageRgba8(img));
    let rgba16 = v16(4);
    let img = ImageBuffer::<Rgba<u16>, _>::from_raw(w, h, rgba16.clone()).unwrap();
    check_layout::<colortype::RGBA16>("rgba16", w, h, &rgba16, &DynamicImage::ImageRgba16(img));
}

#[test]
fn sixteen_bit_samples_are_kept_and_convert_to_eight_bits_by_rounding() {
    let data: Vec<u16> = vec![0, 128, 129, 257, 32_767, 65_535];
    let bytes = tiff_with::<colortype::RGB16>(2, 1, &data, Compression::Lzw, Predictor::None);
    let d = decode(&bytes, &DecodeLimits::default()).unwrap();
    let DynamicImage::ImageRgb16(img) = &d.image else {
        panic!(
            "a 16-bit TIFF decodes to 16 bits, not {:?}",
            d.image.color()
        );
    };
    assert_eq!(img.as_raw(), &data);
    // What decomposition sees: round(v × 255 / 65535).
    assert_eq!(d.image.to_rgb8().as_raw(), &vec![0, 0, 1, 1, 127, 255]);
}

/// A one-strip TIFF in either byte order: header, the IFD, the bits-per-sample array, then
/// `data`, whose strip byte count is `data.len()` unless `declared` says otherwise.
pub(super) struct HandTiff<'a> {
    pub big_endian: bool,
    pub size: (u32, u32),
    pub bits: u16,
    pub samples: u16,
    pub photometric: u16,
    pub compression: u16,
    pub data: &'a [u8],
    pub declared: Option<u32>,
}

impl HandTiff<'_> {
    pub fn bytes(&self) -> Vec<u8> {
        let be = self.big_endian;
        let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let entries = 10u32;
        let bps_at = 8 + 2 + 12 * entries + 4;
        let data_at = bps_at + 2 * u32::from(self.samples);
        let mut out = if be {
            b"MM\0*".to_vec()
        } else {
            b"II*\0".to_vec()
        };
        out.extend(u32b(8));
        out.extend(u16b(entries as u16));
        let mut entry = |tag: u16, ty: u16, count: u32, value: [u8; 4]| {
            out.extend(u16b(tag));
            out.extend(u16b(ty));
            out.extend(u32b(count));
            out.extend(value);
        };
        let short = |v: u16| {
            let b = u16b(v);
            [b[0], b[1], 0, 0]
        };
        let bps = if self.samples <= 2 {
            let b = u16b(self.bits);
            let mut v = [b[0], b[1], 0, 0];
            if self.samples == 2 {
                v[2..].copy_from_slice(&b);
            }
            v
        } else {
            u32b(bps_at)
        };
        entry(256, 4, 1, u32b(self.size.0));
        entry(257, 4, 1, u32b(self.size.1));
        entry(258, 3, u32::from(self.samples), bps);
        entry(259, 3, 1, short(self.compression));
        entry(262, 3, 1, short(self.photometric));
        entry(273, 4, 1, u32b(data_at));
        entry(277, 3, 1, short(self.samples));
        entry(278, 4, 1, u32b(self.size.1));
        let len = self.declared.unwrap_or(self.data.len() as u32);
        entry(279, 4, 1, u32b(len));
        entry(284, 3, 1, short(1));
        out.extend([0; 4]);
        for _ in 0..self.samples {
            out.extend(u16b(self.bits));
        }
        out.extend_from_slice(self.data);
        out
    }
}

fn rgb_by_hand(big_endian: bool, bits: u16, data: &[u8]) -> Vec<u8> {
    HandTiff {
        big_endian,
        size: (2, 2),
        bits,
        samples: 3,
        photometric: 2,
        compression: 1,
        data,
        declared: None,
    }
    .bytes()
}

#[test]
fn one_bit_grey_tiffs_decode_to_eight_bits() {
    fn hand(bits: u16, samples: u16, data: &[u8]) -> Vec<u8> {
        HandTiff {
            big_endian: true,
            size: (8, 2),
            bits,
            samples,
            photometric: 1, // black is zero
            compression: 1,
            data,
            declared: None,
        }
        .bytes()
    }
    let d = decode(&hand(1, 1, &[0b1010_0000, 0xFF]), &DecodeLimits::default());
    let grey = d.unwrap().image.to_luma8();
    assert_eq!(&grey.as_raw()[..4], &[255, 0, 255, 0]);
    assert!(grey.as_raw()[8..].iter().all(|&v| v == 255));
}

#[test]
fn both_byte_orders_decode_the_same() {
    let px8: Vec<u8> = (0..12).map(|i| i * 20).collect();
    let le = decode(&rgb_by_hand(false, 8, &px8), &DecodeLimits::default()).unwrap();
    let be = decode(&rgb_by_hand(true, 8, &px8), &DecodeLimits::default()).unwrap();
    assert_eq!(le.image.to_rgb8().as_raw(), &px8);
    assert_eq!(be.image, le.image);

    let px16: Vec<u16> = (0..12).map(|i| i * 5000 + 7).collect();
    let le16: Vec<u8> = px16.iter().flat_map(|v| v.to_le_bytes()).collect();
    let be16: Vec<u8> = px16.iter().flat_map(|v| v.to_be_bytes()).collect();
    let le = decode(&rgb_by_hand(false, 16, &le16), &DecodeLimits::default()).unwrap();
    let be = decode(&rgb_by_hand(true, 16, &be16), &DecodeLimits::default()).unwrap();
    let DynamicImage::ImageRgb16(img) = &be.image else {
        panic!("{:?}", be.image.color());
    };
    assert_eq!(img.as_raw(), &px16);
    assert_eq!(be.image, le.image);
}

#[test]
fn cmyk_tiffs_come_out_in_rgb() {
    // White, cyan, magenta, yellow, black, half cyan, and 50% black over yellow.
    let cmyk: Vec<u8> = vec![
        0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 128, 0, 0, 0, 0, 0,
        255, 128,
    ];
    let rgb: Vec<u8> = vec![
        255, 255, 255, 0, 255, 255, 255, 0, 255, 255, 255, 0, 0, 0, 0, 127, 255, 255, 126, 126, 0,
    ];
    for (name, compression) in COMPRESSIONS {
        let bytes = tiff_with::<colortype::CMYK8>(7, 1, &cmyk, compression, Predictor::None);
        let d = decode(&bytes, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.image.to_rgb8().as_raw(), &rgb, "{name}");
    }
    let cmyk16: Vec<u16> = cmyk.iter().map(|&v| u16::from(v) * 257).collect();
    let bytes = tiff_with::<colortype::CMYK16>(7, 1, &cmyk16, Compression::Lzw, Predictor::None);
    let d = decode(&bytes, &DecodeLimits::default()).unwrap();
    assert!(
        matches!(d.image, DynamicImage::ImageRgb16(_)),
        "{:?}",
        d.image.color()
    );
    let back = d.image.to_rgb8();
    for (got, want) in back.as_raw().iter().zip(&rgb) {
        assert!(got.abs_diff(*want) <= 1, "{:?} vs {rgb:?}", back.as_raw());
    }
    // Big-endian CMYK written by hand.
    let be = HandTiff {
        big_endian: true,
        size: (7, 1),
        bits: 8,
        samples: 4,
        photometric: 5,
        compression: 1,
        data: &cmyk,
        declared: None,
    };
    let d = decode(&be.bytes(), &DecodeLimits::default()).unwrap();
    assert_eq!(d.image.to_rgb8().as_raw(), &rgb);
}

#[test]
fn only_the_first_page_is_decoded() {
    let mut out = Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut out).unwrap();
        enc.write_image::<colortype::Gray8>(3, 2, &[9; 6]).unwrap();
        enc.write_image::<colortype::RGB8>(40, 30, &[200; 3600])
            .unwrap();
    }
    let d = decode(out.get_ref(), &DecodeLimits::default()).unwrap();
    assert_eq!((d.width, d.height), (3, 2));
    assert_eq!(
        d.image,
        DynamicImage::ImageLuma8(image::GrayImage::from_pixel(3, 2, Luma([9])))
    );
}

#[test]
fn a_cut_tiff_is_truncated_wherever_it_is_cut() {
    // The `tiff` crate writes the strips first and the directory last.
    let data: Vec<u8> = noise(16 * 16 * 3, 3).iter().map(|v| *v as u8).collect();
    let bytes = tiff_with::<colortype::RGB8>(16, 16, &data, Compression::Lzw, Predictor::None);
    // Ours puts the directory first: a cut loses strip data.
    let hand = rgb_by_hand(false, 8, &data[..12]);
    for file in [bytes, hand] {
        for cut in 2..file.len() {
            let err = decode(&file[..cut], &DecodeLimits::default()).unwrap_err();
            assert_eq!(
                err,
                DecodeError::Truncated,
                "cut at {cut} of {}",
                file.len()
            );
        }
        assert!(decode(&file, &DecodeLimits::default()).is_ok());
    }
}

#[test]
fn tiff_bombs_are_refused_from_the_directory() {
    let limits = DecodeLimits::default();
    let tiny = |size: (u32, u32), bits: u16, samples: u16, compression: u16, data: &[u8]| {
        HandTiff {
            big_endian: false,
            size,
            bits,
            samples,
            photometric: if samples == 4 { 5 } else { 2 },
            compression,
            data,
            declared: None,
        }
        .bytes()
    };
    let start = Instant::now();
    // Over the pixel limit: refused with the declared size.
    let err = decode(&tiny((100_000, 100_000), 8, 3, 1, &[0; 16]), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::TooManyPixels {
                width: 100_000,
                height: 100_000,
                ..
            }
        ),
        "{err:?}"
    );
    // 8000×8000 RGB16 (384 MiB) from a 16-byte LZW strip, or a Deflate or PackBits one.
    for compression in [5, 8, 32946, 32773] {
        let err = decode(
            &tiny((8000, 8000), 16, 3, compression, &[0x80; 16]),
            &limits,
        );
        assert_eq!(
            err.unwrap_err(),
            DecodeError::Truncated,
            "compression {compression}"
        );
    }
    // A strip declared longer than the file.
    let mut lying = tiny((4, 4), 8, 3, 1, &[0; 48]);
    lying[8 + 2 + 12 * 8 + 8..][..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode(&lying, &limits).unwrap_err(), DecodeError::Truncated);
    // Within the pixel limit, the decoder's buffer at 16 bits plus ours exceed `max_alloc`.
    let small = DecodeLimits {
        max_alloc: 64 << 20,
        ..limits
    };
    let err = decode(&tiny((4000, 4000), 16, 4, 1, &[0; 16]), &small).unwrap_err();
    assert!(
        matches!(err, DecodeError::TooManyPixels { width: 4000, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("more memory"), "{err}");
    assert!(
        start.elapsed().as_millis() < 500,
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn unsupported_tiff_compressions_say_which() {
    for (code, name) in [(7u16, "JPEG"), (4, "CCITT fax"), (50000, "Zstandard")] {
        let bytes = HandTiff {
            big_endian: false,
            size: (2, 2),
            bits: 8,
            samples: 3,
            photometric: 2,
            compression: code,
            data: &[0; 12],
            declared: None,
        }
        .bytes();
        let err = decode(&bytes, &DecodeLimits::default()).unwrap_err();
        assert_eq!(err.code(), "undecodable_image", "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("compression {code} ({name})")),
            "{msg}"
        );
        assert!(
            msg.contains("LZW, Deflate (ZIP), PackBits or no compression"),
            "{msg}"
        );
    }
}

#[test]
fn a_tag_with_more_values_than_it_can_use_is_refused_before_the_decoder() {
    let limits = DecodeLimits::default();
    // Found by fuzzing: 7.9 million predictor values past the end of a 445-byte file.
    let fuzzed = include_bytes!(
        "../../../tests/fixtures/fuzz/decode/tiff-predictor-with-7929856-values.tif"
    );
    assert_eq!(decode(fuzzed, &limits).unwrap_err(), DecodeError::Truncated);
    // The same inside the file: 20000 values for the planar configuration (entry 9).
    let strip = vec![0u8; 40_000];
    let mut bytes = HandTiff {
        big_endian: false,
        size: (100, 100),
        bits: 8,
        samples: 4,
        photometric: 5,
        compression: 1,
        data: &strip,
        declared: None,
    }
    .bytes();
    let entry = 8 + 2 + 12 * 9;
    bytes[entry + 4..entry + 8].copy_from_slice(&20_000u32.to_le_bytes());
    bytes[entry + 8..entry + 12].copy_from_slice(&100u32.to_le_bytes());
    let err = decode(&bytes, &limits).unwrap_err();
    assert_eq!(err.code(), "undecodable_image");
    assert!(
        err.to_string().contains("TIFF tag 284 has 20000 values"),
        "{err}"
    );
}

#[test]
fn absurd_sample_counts_and_bits_are_refused_without_overflow() {
    for (bits, samples) in [(u16::MAX, u16::MAX), (64, 4096), (0, 3), (8, 0)] {
        let bytes = HandTiff {
            big_endian: false,
            size: (30_000, 2000),
            bits,
            samples: samples.min(8),
            photometric: 2,
            compression: 1,
            data: &[0; 64],
            declared: None,
        }
        .bytes();
        // Patch samples per pixel (entry 6) to the absurd value.
        let mut bytes = bytes;
        let entry = 8 + 2 + 12 * 6;
        bytes[entry + 8..entry + 10].copy_from_slice(&samples.to_le_bytes());
        assert!(decode(&bytes, &DecodeLimits::default()).is_err());
    }
}
