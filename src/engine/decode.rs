//! Upload decoding: sniff the format from magic bytes, read the dimensions from the header,
//! refuse oversized images before any pixel buffer exists, then decode through
//! `image::ImageReader` with explicit limits and return an upright image.
//!
//! Invariants:
//! - The format comes from the bytes only, never from a content type or a file name, and only
//!   PNG, JPEG and WebP are accepted.
//! - [`decode`] calls [`probe`] first: nothing is decoded unless the header's width, height and
//!   pixel count are within [`DecodeLimits`], and the decoder itself runs under the same side
//!   and allocation limits (the header can lie about later frames or chunks).
//! - A decoder panic never escapes: it becomes [`DecodeError::Corrupt`]. Callers still run
//!   decoding on blocking threads under a concurrency cap; this module does no scheduling.
//! - A cut-off JPEG is refused as [`DecodeError::Truncated`] even though the JPEG decoder
//!   (lenient mode) would paint the missing rows grey and succeed.
//! - A PNG whose IDAT chunks are too short to inflate to its declared pixels (deflate expands
//!   at most 1032:1) is refused as [`DecodeError::Truncated`] before the decoder allocates its
//!   output: a 70-byte file cannot make us commit a 64 MP buffer.
//! - WebP animations yield their first frame only.

use std::fmt;
use std::io::{Cursor, ErrorKind};
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};

use super::exif::{apply_orientation, read_exif, ExifInfo};

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
/// Longest decoder message kept in [`DecodeError::Corrupt`].
const MAX_DETAIL_CHARS: usize = 200;

/// An image format we accept for upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormatKind {
    Png,
    Jpeg,
    Webp,
}

impl ImageFormatKind {
    /// Stable lowercase name, as in JSON: `png`, `jpeg`, `webp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Webp => "webp",
        }
    }

    /// The media type to serve the original bytes with.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    /// The usual file extension, without the dot: `png`, `jpg`, `webp`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Png => ImageFormat::Png,
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Webp => ImageFormat::WebP,
        }
    }
}

impl fmt::Display for ImageFormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds on what an upload may make the decoder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most pixels (width × height) an image may have.
    pub max_pixels: u64,
    /// Longest side, in pixels.
    pub max_side: u32,
    /// Most bytes the decoder may allocate at once (output buffer included).
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: 64_000_000,
            max_side: 30_000,
            max_alloc: 1 << 30,
        }
    }
}

impl DecodeLimits {
    fn check(&self, width: u32, height: u32) -> Result<(), DecodeError> {
        if width == 0 || height == 0 {
            return Err(DecodeError::Corrupt(format!(
                "the header declares an empty {width}×{height} image"
            )));
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels || width > self.max_side || height > self.max_side {
            return Err(self.too_large(width, height));
        }
        Ok(())
    }

    fn too_large(&self, width: u32, height: u32) -> DecodeError {
        DecodeError::TooManyPixels {
            width,
            height,
            max_pixels: self.max_pixels,
            max_side: self.max_side,
        }
    }

    fn image_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.max_side);
        limits.max_image_height = Some(self.max_side);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

/// What the header says, before any pixel is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub format: ImageFormatKind,
    pub width: u32,
    pub height: u32,
}

/// A decoded upload, already rotated/flipped upright according to its EXIF orientation.
#[derive(Clone)]
pub struct Decoded {
    pub image: DynamicImage,
    pub format: ImageFormatKind,
    /// Width after the orientation was applied (what a viewer shows).
    pub width: u32,
    /// Height after the orientation was applied.
    pub height: u32,
    /// Width as stored in the file.
    pub source_width: u32,
    /// Height as stored in the file.
    pub source_height: u32,
    pub exif: Option<ExifInfo>,
}

impl fmt::Debug for Decoded {
    // Pixels stay out of Debug output: they are user content and would be huge.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoded")
            .field("format", &self.format)
            .field("color", &self.image.color())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("source_width", &self.source_width)
            .field("source_height", &self.source_height)
            .field("exif", &self.exif.is_some())
            .finish()
    }
}

/// Why an upload cannot be used as an image. Messages tell the user what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the upload is empty — choose a PNG, JPEG or WebP image and upload it again")]
    Empty,
    #[error(
        "this file is not a PNG, JPEG or WebP image — convert it to one of those formats \
         and upload it again"
    )]
    Unsupported,
    #[error("{}", too_large_message(*width, *height, *max_pixels, *max_side))]
    TooManyPixels {
        width: u32,
        height: u32,
        max_pixels: u64,
        max_side: u32,
    },
    #[error(
        "the image file is incomplete (it ends before its image data does) — upload the \
         complete file again"
    )]
    Truncated,
    #[error(
        "the image could not be decoded ({0}) — check that it opens in an image viewer, \
         save it again as PNG, JPEG or WebP and upload that"
    )]
    Corrupt(String),
}

impl DecodeError {
    /// Stable snake_case code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_upload",
            Self::Unsupported => "unsupported_media_type",
            Self::TooManyPixels { .. } => "image_too_large",
            Self::Truncated => "truncated_image",
            Self::Corrupt(_) => "undecodable_image",
        }
    }
}

fn too_large_message(width: u32, height: u32, max_pixels: u64, max_side: u32) -> String {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        format!(
            "the image is {width}×{height} = {} MP; the limit is {} MP — resize it and upload \
             again",
            megapixels(pixels),
            megapixels(max_pixels)
        )
    } else if width > max_side || height > max_side {
        format!(
            "the image is {width}×{height}; no side may be longer than {max_side} pixels — \
             resize it and upload again"
        )
    } else {
        format!(
            "the image is {width}×{height} but needs more memory to decode than allowed — \
             resize it or save it with 8 bits per channel, and upload again"
        )
    }
}

/// `144`, `10000`, `0.5`: whole megapixels from 10 MP up, one decimal below.
fn megapixels(pixels: u64) -> String {
    if pixels.is_multiple_of(1_000_000) || pixels >= 10_000_000 {
        format!("{}", (pixels + 500_000) / 1_000_000)
    } else {
        format!("{:.1}", pixels as f64 / 1e6)
    }
}

/// Why an image could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("could not encode the image as PNG: {0}")]
    Png(String),
}

impl EncodeError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Png(_) => "image_encode_failed",
        }
    }
}

/// The format of `bytes`, from their magic number alone.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormatKind, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.starts_with(PNG_MAGIC) {
        return Ok(ImageFormatKind::Png);
    }
    if bytes.starts_with(JPEG_MAGIC) {
        return Ok(ImageFormatKind::Jpeg);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(ImageFormatKind::Webp);
    }
    if is_cut_magic(bytes) {
        return Err(DecodeError::Truncated);
    }
    Err(DecodeError::Unsupported)
}

/// A few bytes that are the start of one of our magic numbers: an upload cut short.
fn is_cut_magic(bytes: &[u8]) -> bool {
    if bytes.len() < 2 {
        return false;
    }
    let riff_prefix = bytes.len() < 12
        && b"RIFF".starts_with(&bytes[..bytes.len().min(4)])
        && (bytes.len() <= 8 || b"WEBP".starts_with(&bytes[8..]));
    PNG_MAGIC.starts_with(bytes) || JPEG_MAGIC.starts_with(bytes) || riff_prefix
}

/// Format and dimensions from the header only; refuses images over `limits`.
///
/// Costs a header parse, however large the declared image (a JPEG is copied once).
pub fn probe(bytes: &[u8], limits: &DecodeLimits) -> Result<Probe, DecodeError> {
    let format = sniff(bytes)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    // No dimension limits here: we check them ourselves to report the declared size.
    let mut header_limits = Limits::default();
    header_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(header_limits);
    let (width, height) = guard_panics(|| {
        reader
            .into_dimensions()
            .map_err(|e| map_image_error(e, None, limits))
    })?;
    limits.check(width, height)?;
    Ok(Probe {
        format,
        width,
        height,
    })
}

/// Decodes an upload within `limits` and applies its EXIF orientation.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    let probe = probe(bytes, limits)?;
    let complete = match probe.format {
        ImageFormatKind::Png => png_data_suffices(bytes),
        ImageFormatKind::Jpeg => jpeg_is_complete(bytes),
        ImageFormatKind::Webp => riff_is_complete(bytes),
    };
    if !complete {
        return Err(DecodeError::Truncated);
    }
    let dims = (probe.width, probe.height);
    let image = guard_panics(|| {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), probe.format.image_format());
        reader.limits(limits.image_limits());
        reader
            .decode()
            .map_err(|e| map_image_error(e, Some(dims), limits))
    })?;
    if (image.width(), image.height()) != dims {
        return Err(DecodeError::Corrupt(format!(
            "the header says {}×{} but the data is {}×{}",
            dims.0,
            dims.1,
            image.width(),
            image.height()
        )));
    }
    // EXIF is optional metadata: a parser panic loses it, never the upload.
    let exif = catch_unwind(|| read_exif(bytes)).ok().flatten();
    let image = match exif.as_ref().and_then(|e| e.orientation) {
        Some(orientation) => apply_orientation(image, orientation),
        None => image,
    };
    Ok(Decoded {
        format: probe.format,
        width: image.width(),
        height: image.height(),
        source_width: probe.width,
        source_height: probe.height,
        exif,
        image,
    })
}

/// Encodes `img` as PNG, keeping its channels and bit depth (float images become 16-bit).
pub fn encode_png(img: &DynamicImage) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    let encoder = PngEncoder::new(&mut out);
    let written = match img {
        DynamicImage::ImageRgb32F(_) => {
            DynamicImage::ImageRgb16(img.to_rgb16()).write_with_encoder(encoder)
        }
        DynamicImage::ImageRgba32F(_) => {
            DynamicImage::ImageRgba16(img.to_rgba16()).write_with_encoder(encoder)
        }
        _ => img.write_with_encoder(encoder),
    };
    written.map_err(|e| EncodeError::Png(e.to_string()))?;
    Ok(out)
}

/// Runs decoder code, turning a panic into [`DecodeError::Corrupt`].
fn guard_panics<T>(f: impl FnOnce() -> Result<T, DecodeError>) -> Result<T, DecodeError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::warn!("image decoder panicked on an upload; refused as undecodable");
        Err(DecodeError::Corrupt(
            "the decoder failed on malformed data".to_owned(),
        ))
    })
}

fn map_image_error(
    err: ImageError,
    dims: Option<(u32, u32)>,
    limits: &DecodeLimits,
) -> DecodeError {
    match err {
        ImageError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => DecodeError::Truncated,
        ImageError::Limits(_) => match dims {
            Some((width, height)) => limits.too_large(width, height),
            None => DecodeError::Corrupt("its headers need more memory than allowed".to_owned()),
        },
        ImageError::Unsupported(e) => {
            DecodeError::Corrupt(detail(&format!("it uses a feature we cannot decode: {e}")))
        }
        other => {
            let text = other.to_string();
            if looks_truncated(&text) {
                DecodeError::Truncated
            } else {
                DecodeError::Corrupt(detail(&text))
            }
        }
    }
}

/// Decoders that wrap their I/O report a short read in prose rather than as `UnexpectedEof`.
fn looks_truncated(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "unexpected eof",
        "unexpected end of",
        "end of file",
        "not enough bytes",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

fn detail(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DETAIL_CHARS)
        .collect();
    if text.chars().count() > MAX_DETAIL_CHARS {
        out.push('…');
    }
    out
}

/// Most bytes one byte of deflate data can inflate to (a 258-byte match in 2 bits), rounded
/// up; zlib framing and block headers only lower the real ratio.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Whether a PNG's IDAT chunks could hold its pixels: the bits its IHDR declares (filter
/// bytes and interlacing only add to them) must not exceed what the IDAT bytes can inflate
/// to. Checked before decoding because the decoder allocates the whole image first: a tiny
/// file declaring a 64 MP, 16-bit image would otherwise commit 512 MiB before failing (bomb
/// corpus, `tests/fuzz`). A chunk walk that goes wrong answers `true`: the decoder judges.
pub(crate) fn png_data_suffices(bytes: &[u8]) -> bool {
    let mut at = PNG_MAGIC.len();
    let mut declared_bits = None;
    let mut idat = 0u64;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let data = at + 8;
        match &head[4..8] {
            b"IHDR" => {
                let Some(h) = bytes.get(data..data + 10) else {
                    return true;
                };
                let w = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
                let hh = u64::from(u32::from_be_bytes([h[4], h[5], h[6], h[7]]));
                let channels = match h[9] {
                    0 | 3 => 1,
                    2 => 3,
                    4 => 2,
                    6 => 4,
                    _ => return true,
                };
                declared_bits = Some(w * hh * channels * u64::from(h[8]));
            }
            b"IDAT" => idat += len as u64,
            b"IEND" => break,
            _ => {}
        }
        at = data.saturating_add(len).saturating_add(4);
    }
    match declared_bits {
        // A few KiB of slack for the smallest images and odd framing.
        Some(bits) => bits / 8 <= idat.saturating_mul(MAX_DEFLATE_RATIO) + 4096,
        None => true,
    }
}

/// Whether a RIFF (WebP) file is at least as long as its header says.
fn riff_is_complete(bytes: &[u8]) -> bool {
    let Some(size) = bytes.get(4..8) else {
        return false;
    };
    let declared = u64::from(u32::from_le_bytes([size[0], size[1], size[2], size[3]]));
    bytes.len() as u64 >= declared + 8
}

/// Whether a JPEG's scan data is followed by its end-of-image marker.
///
/// Walks the marker segments to the first start-of-scan, then looks for `FF D9` after it:
/// entropy-coded data stuffs every `FF` byte, so that pair can only be the end marker there.
/// (Searching the whole file would be fooled by the EXIF thumbnail's own end marker.) If the
/// segments cannot be walked, any `FF D9` after the SOI counts, and the decoder judges the rest.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const EOI: &[u8] = &[0xFF, 0xD9];
    let has_eoi = |from: usize| {
        bytes
            .get(from..)
            .is_some_and(|tail| tail.windows(2).any(|w| w == EOI))
    };
    let mut i = 2;
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            return has_eoi(2);
        }
        match bytes[i + 1] {
            0xFF => i += 1,                // fill byte
            0x01 | 0xD0..=0xD7 => i += 2,  // standalone markers
            0xD9 => return true,           // EOI before any scan: the decoder will say
            0xDA => return has_eoi(i + 2), // SOS
            _ => {
                let Some(len) = bytes.get(i + 2..i + 4) else {
                    return false;
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                if len < 2 {
                    return has_eoi(2);
                }
                i += 2 + len;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};
    use std::time::Instant;

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
        assert_eq!(
            sniff(b"GIF89a\x01\x00\x01\x00"),
            Err(DecodeError::Unsupported)
        );
        assert_eq!(
            sniff(b"BM\x3a\x00\x00\x00\x00\x00"),
            Err(DecodeError::Unsupported)
        );
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
            &b"GIF89a\x10\x00\x10\x00\x80\x00\x00"[..],
            b"BM\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00",
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
}
