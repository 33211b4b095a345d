//! The bomb corpus: files built to make a reader spend far more memory or time than their
//! size — decompression, pixel and zip bombs (PNG, JPEG, WebP, TIFF, GIF, BMP), layer fan-out
//! and deep nesting in ORA, PSDs whose dimensions, channel, layer counts and RLE lengths lie —
//! and truncated copies of every real fixture and of the generated TIFF, BMP and GIF seeds.
//! Each must be refused with its typed error, within [`MAX_MILLIS`] (best of three runs,
//! scaled by `IMAGE_LAYERED_FUZZ_TIME_SCALE`) and [`MAX_PEAK`] bytes allocated at once, under
//! the production default limits.
//!
//! The peak bound, 64 MiB: refusing a file should cost what its headers cost, which the
//! readers cap well below that (the largest bounded read before a decision is `stack.xml`, at
//! most 16 MiB; decoder state and row buffers are kilobytes), while every bomb here asks for
//! at least 256 MiB if a limit is checked too late. Truncated fixtures are decoded up to the
//! cut, so they are bounded by their own (small) size.

use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat, RgbaImage};
use image_layered::engine::ora::{decode_ora_within, OraLimits};
use image_layered::engine::psd_read::{decode_psd, PsdLimits};
use image_layered::engine::{decode, DecodeLimits};

use crate::alloc::{measure, mib, serial};
use crate::forge::{self, PsdLayer, ZipEntry};
use crate::harness::time_scale;
use crate::seeds;

/// Refusal time limit per bomb, in milliseconds (best of three).
const MAX_MILLIS: u64 = 100;
/// Most bytes a refusal may allocate at once.
const MAX_PEAK: usize = 64 << 20;

/// What reads a bomb: the server's defaults (`uploads.*` and the readers' own).
#[derive(Clone, Copy, Debug)]
pub enum Reader {
    Image,
    Psd,
    Ora,
}

pub struct Bomb {
    pub name: String,
    pub reader: Reader,
    pub bytes: Vec<u8>,
}

fn bomb(name: impl Into<String>, reader: Reader, bytes: Vec<u8>) -> Bomb {
    Bomb {
        name: name.into(),
        reader,
        bytes,
    }
}

/// The limits the server applies by default (see `config::UploadsConfig::default`).
const MAX_PIXELS: u64 = 64_000_000;
const MAX_SIDE: u32 = 30_000;
const MAX_STACK_BYTES: u64 = 1 << 30;

/// Runs `reader` on `bytes`: `Err` with its code, or `Ok` with what was decoded.
pub fn read(reader: Reader, bytes: &[u8]) -> Result<String, String> {
    match reader {
        Reader::Image => decode(bytes, &DecodeLimits::default())
            .map(|d| format!("{}x{}", d.width, d.height))
            .map_err(|e| why(e.code(), &e)),
        Reader::Psd => {
            let limits = PsdLimits {
                max_pixels: MAX_PIXELS,
                max_stack_bytes: MAX_STACK_BYTES,
                ..PsdLimits::default()
            };
            decode_psd(bytes, &limits)
                .map(|(s, _)| format!("{} layers", s.layers.len()))
                .map_err(|e| why(e.code(), &e))
        }
        Reader::Ora => {
            let limits = OraLimits {
                max_pixels: MAX_PIXELS,
                max_side: MAX_SIDE,
                max_stack_bytes: MAX_STACK_BYTES,
            };
            decode_ora_within(bytes, &limits)
                .map(|(s, _)| format!("{} layers", s.layers.len()))
                .map_err(|e| why(e.code(), &e))
        }
    }
}

/// `code: message`, the message cut to fit a table row.
fn why(code: &str, e: &dyn std::fmt::Display) -> String {
    let msg: String = e.to_string().chars().take(70).collect();
    format!("{code}: {msg}")
}

fn image_bombs() -> Vec<Bomb> {
    let small = DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, image::Rgba([1, 2, 3, 4])));
    let png = seeds::encode(&small, ImageFormat::Png);
    let jpeg = seeds::encode(&DynamicImage::ImageRgb8(small.to_rgb8()), ImageFormat::Jpeg);
    let webp = seeds::encode(&small, ImageFormat::WebP);
    let idat = forge::zlib_zeros(64 << 20);
    let mut out = vec![
        bomb("png_100000x100000", Reader::Image, {
            let mut p = png.clone();
            p[16..24].copy_from_slice(&[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]);
            let crc = crc32fast::hash(&p[12..29]);
            p[29..33].copy_from_slice(&crc.to_be_bytes());
            p
        }),
        // 64 MiB of zero rows in 64 KiB under a 16000×16000 header: refused from the header.
        bomb(
            "png_zlib_bomb_16000x16000",
            Reader::Image,
            forge::png(16_000, 16_000, 0, 8, &idat),
        ),
        // Inside the pixel limit, but the IDAT holds only a few bytes of a 512 MiB image.
        bomb(
            "png_8000x8000_rgba16_empty_idat",
            Reader::Image,
            forge::png(8000, 8000, 6, 16, &forge::zlib_zeros(16)),
        ),
        bomb(
            "jpeg_65000x65000",
            Reader::Image,
            forge::jpeg_redeclare(jpeg.clone(), 65_000, 65_000),
        ),
        bomb(
            "jpeg_30000x2200_no_scan",
            Reader::Image,
            forge::jpeg_redeclare(jpeg, 30_000, 2_200),
        ),
        bomb(
            "webp_vp8x_100000x100000",
            Reader::Image,
            forge::webp_vp8x(&webp, 100_000, 100_000),
        ),
    ];
    out.extend(tiff_gif_bmp_bombs(&idat));
    out
}

/// TIFF, GIF and BMP files declaring huge images, or whose data cannot hold what they
/// declare; `zeros` is a zlib stream of 64 MiB of zeros. The `_control`s must decode.
fn tiff_gif_bmp_bombs(zeros: &[u8]) -> Vec<Bomb> {
    let n = |v: &[u8]| v.len() as u32;
    let palette = [[0, 0, 0, 0], [255, 255, 255, 0]];
    let tiny = [0x80u8; 16];
    let tiff = |w, h, bits, samples, photometric, compression, strip: &[u8]| {
        forge::tiff(
            w,
            h,
            bits,
            samples,
            photometric,
            compression,
            strip,
            n(strip),
        )
    };
    let image = |name: &str, bytes| bomb(name, Reader::Image, bytes);
    vec![
        image(
            "tiff_100000x100000",
            tiff(100_000, 100_000, 8, 3, 2, 1, &tiny),
        ),
        // Inside the pixel limit (768 MiB with the decoder's own copy), 16 bytes of LZW.
        image(
            "tiff_8000x8000_rgb16_lzw_16_bytes",
            tiff(8000, 8000, 16, 3, 2, 5, &tiny),
        ),
        image(
            "tiff_8000x8000_cmyk16_packbits_16_bytes",
            tiff(8000, 8000, 16, 4, 5, 32773, &tiny),
        ),
        // A Deflate strip of 64 MiB of zeros under a 192 MiB image.
        image(
            "tiff_8000x8000_rgb_deflate_64_mib",
            tiff(8000, 8000, 8, 3, 2, 8, zeros),
        ),
        // The same strip under a 1×1 image: only 3 bytes are inflated.
        image(
            "tiff_1x1_deflate_strip_of_64_mib_control",
            tiff(1, 1, 8, 3, 2, 8, zeros),
        ),
        image(
            "tiff_strip_of_4_gib_declared",
            forge::tiff(64, 64, 8, 3, 2, 1, &tiny, u32::MAX),
        ),
        image(
            "gif_65535x65535",
            forge::gif((65_535, 65_535), (1, 1), forge::GIF_ONE_PIXEL),
        ),
        image(
            "gif_8000x8000_screen_one_pixel_frame",
            forge::gif((8000, 8000), (1, 1), forge::GIF_ONE_PIXEL),
        ),
        image(
            "gif_1x1_screen_16000x16000_frame",
            forge::gif((1, 1), (16_000, 16_000), forge::GIF_ONE_PIXEL),
        ),
        image(
            "gif_7000x7000_frame_of_2_bytes",
            forge::gif((7000, 7000), (7000, 7000), forge::GIF_ONE_PIXEL),
        ),
        image(
            "bmp_100000x100000",
            forge::bmp(100_000, 100_000, 24, 0, &[], &tiny),
        ),
        image(
            "bmp_8000x8000_no_rows",
            forge::bmp(8000, 8000, 24, 0, &[], &tiny),
        ),
        // RLE8 whose first instruction ends the bitmap.
        image(
            "bmp_8000x8000_rle8_end_of_bitmap",
            forge::bmp(8000, 8000, 8, 1, &palette, &[0, 1]),
        ),
    ]
}

fn rle_rows(rows: u32, count: u16) -> Vec<u8> {
    let mut v = 1u16.to_be_bytes().to_vec();
    for _ in 0..rows {
        v.extend_from_slice(&count.to_be_bytes());
    }
    v
}

fn psd_bombs() -> Vec<Bomb> {
    let one = |w: i32, h: i32, data: Vec<u8>| PsdLayer {
        rect: [0, 0, h, w],
        channels: [-1i16, 0, 1, 2]
            .into_iter()
            .map(|id| (id, data.len() as u32, data.clone()))
            .collect(),
    };
    let tiny = one(1, 1, vec![0, 0, 7]);
    vec![
        bomb(
            "psd_30000x30000",
            Reader::Psd,
            forge::psd(30_000, 30_000, 3, 0, &[], &[0, 0]),
        ),
        bomb(
            "psd_65535_channels",
            Reader::Psd,
            forge::psd(8, 8, 65_535, 0, &[], &[0, 0]),
        ),
        bomb(
            "psd_layer_count_32767_no_records",
            Reader::Psd,
            forge::psd(8, 8, 3, 32_767, &[], &[0, 0]),
        ),
        bomb("psd_300_layers", Reader::Psd, {
            let layers: Vec<PsdLayer> = (0..300).map(|_| one(1, 1, vec![0, 0, 7])).collect();
            forge::psd(8, 8, 3, 300, &layers, &[0, 0])
        }),
        bomb("psd_5_layers_of_8000x8000", Reader::Psd, {
            let layers: Vec<PsdLayer> = (0..5).map(|_| one(1, 1, vec![0, 0, 7])).collect();
            forge::psd(8000, 8000, 3, 5, &layers, &[0, 0])
        }),
        bomb("psd_channel_length_4g", Reader::Psd, {
            let mut l = one(1, 1, vec![0, 0, 7]);
            l.channels[0].1 = u32::MAX;
            forge::psd(8, 8, 3, 1, &[l], &[0, 0])
        }),
        // One 8000×8000 layer whose RLE row counts promise 65535 bytes a row: 32 bytes given.
        bomb("psd_rle_counts_lie_8000x8000", Reader::Psd, {
            let mut data = rle_rows(8000, 0xFFFF);
            data.extend_from_slice(&[0x81; 30]);
            forge::psd(8000, 8000, 3, 1, &[one(8000, 8000, data)], &[0, 0])
        }),
        // Raw channels of an 8000×8000 layer, 4 bytes each.
        bomb("psd_raw_channels_short_8000x8000", Reader::Psd, {
            forge::psd(
                8000,
                8000,
                3,
                1,
                &[one(8000, 8000, vec![0, 0, 1, 2])],
                &[0, 0],
            )
        }),
        // No layers: the merged image is read, and its data is missing.
        bomb(
            "psd_merged_raw_missing_8000x8000",
            Reader::Psd,
            forge::psd(8000, 8000, 3, 0, &[], &[0, 0]),
        ),
        bomb("psd_merged_rle_lies_8000x8000", Reader::Psd, {
            let mut merged = rle_rows(3 * 8000, 0xFFFF);
            merged.extend_from_slice(&[0x81, 0]);
            forge::psd(8000, 8000, 3, 0, &[], &merged)
        }),
        bomb(
            "psd_tiny_layer_ok_control",
            Reader::Psd,
            forge::psd(1, 1, 3, 1, &[tiny], &[0, 0, 1, 2, 3]),
        ),
    ]
}

/// A deflated entry declaring `size` bytes uncompressed (and a CRC nobody checks first).
fn deflated<'a>(name: &'a str, data: &'a [u8], size: u32) -> ZipEntry<'a> {
    ZipEntry {
        name,
        method: 8,
        data,
        size,
        crc: 0,
    }
}

fn ora_bombs() -> Vec<Bomb> {
    let tiny_png = forge::png(1, 1, 6, 8, &forge::zlib_zeros(5));
    let fanout: Vec<&str> = vec!["data/0.png"; 5000];
    // An 8000×8000 1-bit grey PNG: 7.6 MiB of rows in about 8 KiB.
    let bit_png = forge::png(8000, 8000, 0, 1, &forge::zlib_zeros(8000 * 1001));
    let gigabytes = forge::deflate_zeros_repeated(240); // 3.75 GiB inflated
    let lying = forge::deflate_zeros_repeated(4); // 64 MiB inflated
    let xml1 = forge::stack_xml(64, 64, &["data/0.png"], 1);
    vec![
        bomb("ora_5000_layers_one_png_1000x1000", Reader::Ora, {
            forge::ora(
                &forge::stack_xml(1000, 1000, &fanout, 1),
                &[("data/0.png", &tiny_png)],
            )
        }),
        bomb("ora_5000_layers_one_8000x8000_png_on_1x1", Reader::Ora, {
            forge::ora(
                &forge::stack_xml(1, 1, &fanout, 1),
                &[("data/0.png", &bit_png)],
            )
        }),
        // A layer PNG inside the pixel limit whose IDAT is a few bytes: 512 MiB if decoded.
        bomb("ora_layer_png_8000x8000_rgba16_empty_idat", Reader::Ora, {
            let png = forge::png(8000, 8000, 6, 16, &forge::zlib_zeros(16));
            forge::ora(
                &forge::stack_xml(1, 1, &["data/0.png"], 1),
                &[("data/0.png", &png)],
            )
        }),
        bomb("ora_layer_png_30000x30000_on_1x1", Reader::Ora, {
            let png = forge::png(30_000, 30_000, 0, 1, &forge::zlib_zeros(16));
            forge::ora(
                &forge::stack_xml(1, 1, &["data/0.png"], 1),
                &[("data/0.png", &png)],
            )
        }),
        // A 1×1 PNG header followed by 64 MiB of zeros, its entry declaring 100 bytes.
        bomb("ora_layer_png_entry_inflates_past_declared", Reader::Ora, {
            let mut png = forge::png(1, 1, 6, 8, &forge::zlib_zeros(5));
            png.truncate(33);
            png.extend(std::iter::repeat_n(0u8, 64 << 20));
            let mut e = vec![
                ZipEntry::stored("mimetype", b"image/openraster"),
                ZipEntry::stored("stack.xml", &xml1),
            ];
            let data = forge::deflate(&png);
            e.push(deflated("data/0.png", &data, 100));
            forge::zip(&e)
        }),
        bomb("ora_canvas_100000x100000", Reader::Ora, {
            forge::ora(
                &forge::stack_xml(100_000, 100_000, &["data/0.png"], 1),
                &[("data/0.png", &tiny_png)],
            )
        }),
        bomb("ora_stack_nested_100000_deep", Reader::Ora, {
            forge::ora(
                &forge::stack_xml(64, 64, &["data/missing.png"], 100_000),
                &[],
            )
        }),
        bomb("ora_zip_entry_3_75_gib_declared", Reader::Ora, {
            let mut e = vec![
                ZipEntry::stored("mimetype", b"image/openraster"),
                ZipEntry::stored("stack.xml", &xml1),
            ];
            e.push(deflated("data/0.png", &gigabytes, 240 << 24));
            forge::zip(&e)
        }),
        bomb("ora_zip_entry_64_mib_declared_100", Reader::Ora, {
            let mut e = vec![
                ZipEntry::stored("mimetype", b"image/openraster"),
                ZipEntry::stored("stack.xml", &xml1),
            ];
            e.push(deflated("data/0.png", &lying, 100));
            forge::zip(&e)
        }),
        bomb("ora_zip_entry_64_mib_honest", Reader::Ora, {
            let mut e = vec![
                ZipEntry::stored("mimetype", b"image/openraster"),
                ZipEntry::stored("stack.xml", &xml1),
            ];
            e.push(deflated("data/0.png", &lying, 64 << 20));
            forge::zip(&e)
        }),
        bomb("ora_stack_xml_3_75_gib", Reader::Ora, {
            forge::zip(&[
                ZipEntry::stored("mimetype", b"image/openraster"),
                deflated("stack.xml", &gigabytes, 240 << 24),
            ])
        }),
    ]
}

/// Where the merged image data of a PSD starts (after the three length-prefixed sections).
fn psd_merged_offset(psd: &[u8]) -> usize {
    let mut at = 26;
    for _ in 0..3 {
        let len = u32::from_be_bytes(psd[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + len;
    }
    at
}

/// Every real fixture of a format we read, cut at a third, a half and two thirds.
fn truncated_fixtures() -> Vec<Bomb> {
    let mut out = Vec::new();
    let dirs = ["photos", "eval", "ocr", "textures", "psd"];
    for dir in dirs {
        for p in seeds::files_with(&seeds::fixture(dir), &[".png", ".jpg", ".psd"]) {
            let bytes = std::fs::read(&p).unwrap();
            let is_psd = p.extension().is_some_and(|e| e == "psd");
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            for (num, den) in [(1, 3), (1, 2), (2, 3)] {
                let cut = bytes.len() * num / den;
                // A PSD cut inside its merged image still has every layer: that reads, by design.
                if is_psd && cut >= psd_merged_offset(&bytes) {
                    continue;
                }
                let reader = if is_psd { Reader::Psd } else { Reader::Image };
                out.push(bomb(
                    format!("cut_{num}of{den}_{name}"),
                    reader,
                    bytes[..cut].to_vec(),
                ));
            }
        }
    }
    // Generated TIFF, BMP and GIF files (single page and frame: every cut loses pixels).
    for (name, bytes) in seeds::tiff_bmp_gif_images() {
        for (num, den) in [(1, 3), (1, 2), (2, 3)] {
            let cut = bytes.len() * num / den;
            out.push(bomb(
                format!("cut_{num}of{den}_{name}"),
                Reader::Image,
                bytes[..cut].to_vec(),
            ));
        }
    }
    for (i, ora) in seeds::oras().into_iter().enumerate() {
        for cut in [ora.len() / 3, ora.len() / 2, ora.len() - 1] {
            out.push(bomb(
                format!("cut_{cut}_seed{i}.ora"),
                Reader::Ora,
                ora[..cut].to_vec(),
            ));
        }
    }
    out
}

/// Every bomb, in a fixed order.
pub fn corpus() -> Vec<Bomb> {
    let mut all = image_bombs();
    all.extend(psd_bombs());
    all.extend(ora_bombs());
    all.extend(truncated_fixtures());
    all
}

#[test]
fn every_bomb_is_refused_quickly_within_bounded_memory() {
    let _serial = serial();
    let limit = Duration::from_millis(MAX_MILLIS).mul_f64(time_scale());
    let mut failures = Vec::new();
    let mut table = String::new();
    for b in corpus() {
        let mut best = Duration::MAX;
        let mut peak = 0;
        let mut verdict = Ok(String::new());
        for _ in 0..3 {
            let start = Instant::now();
            let (v, p) = measure(|| read(b.reader, &b.bytes));
            best = best.min(start.elapsed());
            peak = peak.max(p);
            verdict = v;
            if best <= limit && peak <= MAX_PEAK {
                break;
            }
        }
        let control = b.name.ends_with("_control");
        let outcome = match &verdict {
            Err(code) => code.clone(),
            Ok(what) => format!("ACCEPTED ({what})"),
        };
        table.push_str(&format!(
            "{:<48} {:>9} B {:>8.1?} {:>10} {}\n",
            b.name,
            b.bytes.len(),
            best,
            mib(peak),
            outcome
        ));
        if verdict.is_ok() != control || best > limit || peak > MAX_PEAK {
            failures.push(format!(
                "{}: {outcome} in {best:?}, peak {}",
                b.name,
                mib(peak)
            ));
        }
    }
    println!("bomb                                                  size     best       peak outcome\n{table}");
    assert!(
        failures.is_empty(),
        "bombs not refused within {limit:?} and {}:\n  {}\n{table}",
        mib(MAX_PEAK),
        failures.join("\n  ")
    );
}
