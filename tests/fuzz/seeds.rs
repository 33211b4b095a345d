//! Seed files: the real fixtures of `tests/fixtures` (photos, CMYK JPEGs, PSDs, evaluation
//! designs, the upgrade fixture's blobs) and small files generated here with the `image` and
//! `tiff` crates, the forgers of `forge.rs` and our own ORA and PSD writers. Generated seeds
//! are tiny (a few dozen pixels) so a fuzz case costs microseconds to milliseconds;
//! everything is deterministic.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::gif::GifEncoder;
use image::{
    Delay, DynamicImage, Frame, GrayImage, ImageBuffer, ImageFormat, Luma, Rgb, RgbImage, Rgba,
    RgbaImage,
};
use image_layered::engine::ora::encode_ora;
use image_layered::engine::psd::encode_psd;
use image_layered::engine::{Layer, LayerKind, LayerProps, LayerStack};
use tiff::encoder::colortype::{self, ColorType};
use tiff::encoder::compression::DeflateLevel;
use tiff::encoder::{Compression, TiffEncoder, TiffValue};

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = fixture(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Every file under `dir` (recursively), sorted, whose name ends with one of `exts`.
pub fn files_with(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if exts.iter().any(|x| p.to_string_lossy().ends_with(x)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Pseudo-random but fixed pixels.
fn noise(w: u32, h: u32, salt: u32) -> RgbaImage {
    let mut s = 0x9E37_79B9u32 ^ salt;
    RgbaImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let v = s.to_le_bytes();
        Rgba([v[0] ^ x as u8, v[1] ^ y as u8, v[2], v[3] | 0x80])
    })
}

pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode a seed image");
    out.into_inner()
}

/// Small PNG, JPEG and WebP files of every colour type the encoders write.
pub fn generated_images() -> Vec<Vec<u8>> {
    let rgba = DynamicImage::ImageRgba8(noise(9, 7, 1));
    let rgb = DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(noise(16, 16, 2)).to_rgb8());
    let gray = DynamicImage::ImageLuma8(GrayImage::from_fn(5, 11, |x, y| Luma([(x * y) as u8])));
    let gray16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(4, 4, |x, y| Luma([(x * 4000 + y) as u16]));
    let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(24, 3, Rgb([10, 200, 30])));
    vec![
        encode(&rgba, ImageFormat::Png),
        encode(&rgb, ImageFormat::Png),
        encode(&gray, ImageFormat::Png),
        encode(&DynamicImage::ImageLuma16(gray16), ImageFormat::Png),
        encode(&flat, ImageFormat::Png),
        encode(&rgb, ImageFormat::Jpeg),
        encode(&gray, ImageFormat::Jpeg),
        encode(&flat, ImageFormat::Jpeg),
        encode(&rgba, ImageFormat::WebP),
        encode(&flat, ImageFormat::WebP),
        animated_gif(),
    ]
    .into_iter()
    .chain(tiff_bmp_gif_images().into_iter().map(|(_, bytes)| bytes))
    .collect()
}

/// A TIFF written by the `tiff` crate (little-endian, strips first, directory last).
fn tiff_of<C: ColorType>(w: u32, h: u32, data: &[C::Inner], compression: Compression) -> Vec<u8>
where
    [C::Inner]: TiffValue,
{
    let mut out = Cursor::new(Vec::new());
    TiffEncoder::new(&mut out)
        .expect("a TIFF encoder")
        .with_compression(compression)
        .write_image::<C>(w, h, data)
        .expect("write a seed TIFF");
    out.into_inner()
}

fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        for salt in [3, 4] {
            let frame =
                Frame::from_parts(noise(6, 5, salt), 0, 0, Delay::from_numer_denom_ms(50, 1));
            enc.encode_frame(frame).expect("write a seed GIF frame");
        }
    }
    out
}

/// Named, single-page and single-frame TIFF (each compression we read, 8 and 16 bits, grey,
/// RGB, RGBA and CMYK, both byte orders), BMP (24 and 32 bits, grey, RLE8) and GIF seeds:
/// small enough that every cut of them is cheap to refuse.
pub fn tiff_bmp_gif_images() -> Vec<(String, Vec<u8>)> {
    let rgba = noise(7, 5, 11);
    let bytes =
        |k: usize| -> Vec<u8> { rgba.as_raw().iter().copied().cycle().take(35 * k).collect() };
    let words =
        |k: usize| -> Vec<u16> { bytes(k).iter().map(|&b| u16::from(b) * 257 + 3).collect() };
    let mut out = Vec::new();
    for (name, compression) in [
        ("none", Compression::Uncompressed),
        ("lzw", Compression::Lzw),
        ("deflate", Compression::Deflate(DeflateLevel::Fast)),
        ("packbits", Compression::Packbits),
    ] {
        let t = |s: &str| format!("{s}-{name}.tif");
        out.push((
            t("rgb8"),
            tiff_of::<colortype::RGB8>(7, 5, &bytes(3), compression),
        ));
        out.push((
            t("rgb16"),
            tiff_of::<colortype::RGB16>(7, 5, &words(3), compression),
        ));
        out.push((
            t("cmyk8"),
            tiff_of::<colortype::CMYK8>(7, 5, &bytes(4), compression),
        ));
    }
    out.push((
        "rgba8.tif".into(),
        tiff_of::<colortype::RGBA8>(7, 5, &bytes(4), Compression::Lzw),
    ));
    out.push((
        "rgba16.tif".into(),
        tiff_of::<colortype::RGBA16>(7, 5, &words(4), Compression::Uncompressed),
    ));
    out.push((
        "grey8.tif".into(),
        tiff_of::<colortype::Gray8>(7, 5, &bytes(1), Compression::Packbits),
    ));
    out.push((
        "grey16.tif".into(),
        tiff_of::<colortype::Gray16>(7, 5, &words(1), Compression::Lzw),
    ));
    out.push((
        "cmyk16.tif".into(),
        tiff_of::<colortype::CMYK16>(7, 5, &words(4), Compression::Deflate(DeflateLevel::Fast)),
    ));
    let be = |bits: u16, samples: u16, photometric: u16| crate::forge::TiffLayout {
        big_endian: true,
        size: (7, 5),
        bits,
        samples,
        photometric,
        compression: 1,
    };
    let be16: Vec<u8> = words(3).iter().flat_map(|v| v.to_be_bytes()).collect();
    out.push((
        "rgb16-big-endian.tif".into(),
        be(16, 3, 2).write(&be16, be16.len() as u32),
    ));
    out.push((
        "cmyk8-big-endian.tif".into(),
        be(8, 4, 5).write(&bytes(4), 140),
    ));

    let rgb = DynamicImage::ImageRgba8(rgba.clone()).to_rgb8();
    out.push((
        "rgb24.bmp".into(),
        encode(&DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Bmp),
    ));
    out.push((
        "rgba32.bmp".into(),
        encode(&DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Bmp),
    ));
    let grey = DynamicImage::ImageRgb8(rgb).to_luma8();
    out.push((
        "grey8.bmp".into(),
        encode(&DynamicImage::ImageLuma8(grey), ImageFormat::Bmp),
    ));
    // RLE8, 4×2: a run of 3, end of line, a run of 4, end of bitmap.
    let palette = [[0, 0, 0, 0], [0, 0, 255, 0], [0, 255, 0, 0]];
    let rle = [3, 1, 0, 0, 4, 2, 0, 1];
    out.push((
        "rle8.bmp".into(),
        crate::forge::bmp(4, 2, 8, 1, &palette, &rle),
    ));

    let mut few = rgba.clone();
    for (i, px) in few.pixels_mut().enumerate() {
        *px = [
            Rgba([255, 0, 0, 255]),
            Rgba([0, 0, 255, 255]),
            Rgba([0, 0, 0, 0]),
        ][i % 3];
    }
    out.push((
        "still.gif".into(),
        encode(&DynamicImage::ImageRgba8(few), ImageFormat::Gif),
    ));
    out.push((
        "one-pixel.gif".into(),
        crate::forge::gif((1, 1), (1, 1), crate::forge::GIF_ONE_PIXEL),
    ));
    out
}

/// Real image files small enough to fuzz quickly (the big photos serve the bomb corpus).
pub fn real_images() -> Vec<Vec<u8>> {
    let mut out = vec![
        read("fuzz/decode/cmyk-adobe-ycck.jpg"),
        read("fuzz/decode/cmyk-adobe-inverted.jpg"),
        read("photos/gps.jpg"),
        read("photos/coffee.matte.png"),
        read("ocr/two-lines.png"),
    ];
    for p in files_with(&fixture("eval"), &[".png"]) {
        if std::fs::metadata(&p).is_ok_and(|m| m.len() <= 8 * 1024) {
            out.push(std::fs::read(p).expect("read an eval image"));
        }
    }
    out
}

/// A stack of `n` small layers with names, kinds, a text and mixed props.
pub fn small_stack(w: u32, h: u32, n: usize) -> (LayerStack, Vec<LayerProps>) {
    let layers = (0..n)
        .map(|i| {
            let mut rgba = noise(w, h, i as u32);
            if i > 0 {
                // Upper layers are partly transparent, as real objects are.
                for (x, _, px) in rgba.enumerate_pixels_mut() {
                    if x % 3 == 0 {
                        px.0[3] = 0;
                    }
                }
            }
            Layer {
                name: format!("layer {i} «ü»"),
                kind: match i {
                    0 => LayerKind::Background,
                    2 => LayerKind::Text,
                    _ => LayerKind::Object,
                },
                origin: [0, 0],
                rgba,
                text: (i == 2).then(|| "Hello".to_string()),
            }
        })
        .collect();
    let props = (0..n)
        .map(|i| LayerProps {
            opacity: 1.0 - i as f32 * 0.2,
            visible: i != 1,
        })
        .collect();
    let stack = LayerStack {
        width: w,
        height: h,
        layers,
    };
    (stack, props)
}

/// PSDs: the psd-tools fixtures and a few written by our own writer.
pub fn psds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = files_with(&fixture("psd"), &[".psd"])
        .into_iter()
        .map(|p| std::fs::read(p).expect("read a PSD fixture"))
        .collect();
    for (w, h, n) in [(4, 3, 1), (8, 6, 3), (1, 1, 2)] {
        let (stack, props) = small_stack(w, h, n);
        out.push(encode_psd(&stack, &props).expect("write a seed PSD"));
    }
    out
}

/// ORAs written by our own writer, small enough that a case stays fast, and one as other
/// producers write them (nested stacks, offsets, no kinds, hidden and translucent layers).
pub fn oras() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [(4, 3, 1), (6, 5, 3), (1, 1, 2)]
        .into_iter()
        .map(|(w, h, n)| {
            let (stack, props) = small_stack(w, h, n);
            encode_ora(&stack, &props).expect("write a seed ORA")
        })
        .collect();
    let a = encode(&DynamicImage::ImageRgba8(noise(3, 2, 7)), ImageFormat::Png);
    let b = encode(&DynamicImage::ImageRgba8(noise(5, 5, 8)), ImageFormat::Png);
    let xml = "<?xml version='1.0' encoding='UTF-8'?><!-- krita --><image w='4' h='4'>\
        <stack name='root'><layer src='data/a.png' x='-1' y='2' opacity='0.5' name='A &amp; b'/>\
        <stack visibility='hidden'><layer src='data/b.png' x='1.0' y='0' visibility='hidden'/>\
        </stack></stack></image>";
    out.push(crate::forge::ora(
        xml.as_bytes(),
        &[("data/a.png", &a), ("data/b.png", &b)],
    ));
    out
}
