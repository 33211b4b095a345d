//! Upload decoding: sniff the format from magic bytes, read the dimensions from the header,
//! refuse oversized images before any pixel buffer exists, then decode through
//! `image::ImageReader` with explicit limits and return an upright image.
//!
//! Formats (`format.rs`): PNG, JPEG (including CMYK and YCCK JPEGs, converted to RGB by the
//! JPEG decoder), WebP (first frame of an animation), TIFF (first page; classic TIFF in
//! either byte order; 1-, 8- and 16-bit grey, 8- and 16-bit RGB, RGBA and CMYK, and what
//! else the `image` crate maps (grey + alpha with its extra-sample tag, 32-bit float RGB);
//! uncompressed, LZW, Deflate or PackBits, with or without the horizontal predictor), BMP
//! (1–32 bits, bit fields, RLE4/RLE8) and GIF (first frame only). CMYK TIFFs become RGB as
//! R = (255 − C)(1 − K/255), G and B likewise, without a colour profile. Palette and YCbCr
//! TIFFs, JPEG-compressed TIFFs and BigTIFF are refused.
//!
//! Invariants:
//! - The format comes from the bytes only, never from a content type or a file name.
//! - [`decode`] calls [`probe`] first: nothing is decoded unless the header's width, height and
//!   pixel count are within [`DecodeLimits`] (for TIFF, BMP and GIF read by our own header
//!   readers first, so an oversized image is refused with its declared size, and for TIFF the
//!   decoder's buffer at the file's bits per sample is counted against `max_alloc` too); the
//!   decoder itself runs under the same side and allocation limits (the header can lie about
//!   later frames or chunks).
//! - A decoder panic never escapes: it becomes [`DecodeError::Corrupt`]. Callers still run
//!   decoding on blocking threads under a concurrency cap; this module does no scheduling.
//! - Before decoding, the data must be able to hold the declared pixels (`chunks.rs`,
//!   `tiff.rs`, `bmp.rs`, `gif.rs`): a cut JPEG (which the lenient JPEG decoder would paint grey),
//!   a PNG whose IDAT, a TIFF whose strips or a GIF whose first frame cannot expand to the
//!   declared size even at the compression's best ratio, strips or rows past the end of the
//!   file, are refused as [`DecodeError::Truncated`] before the decoder allocates its output:
//!   a 70-byte file cannot make us commit a 64 MP buffer.
//!
//! Bit depth: [`Decoded::image`] keeps what the file holds — 16-bit PNG and TIFF decode to
//! `L16`/`La16`/`Rgb16`/`Rgba16`, float TIFF to `Rgb32F`/`Rgba32F` — and [`encode_png`] keeps
//! 16 bits. Decomposition, cutouts and edits work in 8-bit RGB(A): they convert with
//! `to_rgb8`/`to_rgba8`, which maps each 16-bit sample v to round(v × 255 / 65535) (that is,
//! (v + 128) / 257), each float sample to round(clamp(f, 0, 1) × 255), and grey to equal R, G
//! and B; `to_rgb8` drops alpha without compositing. So layers, PSD, ORA and flat exports are
//! 8 bits per channel whatever the upload; the original file is stored unchanged.

mod bmp;
mod chunks;
mod error;
mod format;
mod gif;
mod tiff;

use std::fmt;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageReader, Limits};

use self::error::map_image_error;
use self::tiff::TiffLayout;
use super::exif::{apply_orientation, read_exif, ExifInfo};

pub(crate) use self::chunks::png_data_suffices;
pub use self::error::{DecodeError, DecodeLimits, EncodeError};
pub use self::format::{sniff, ImageFormatKind};

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

/// Format and dimensions from the header only; refuses images over `limits`.
///
/// Costs a header parse, however large the declared image (a JPEG is copied once).
pub fn probe(bytes: &[u8], limits: &DecodeLimits) -> Result<Probe, DecodeError> {
    let format = sniff(bytes)?;
    // Our own header readers first: they report an oversized image with its declared size
    // where the decoders would refuse it with a message of their own, or parse further.
    // They index into hostile bytes, so a bug there is caught like a decoder's.
    let tiff = guard_panics(|| own_header(format, bytes, limits))?;
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
    if let Some(layout) = tiff {
        layout.check_memory(limits)?;
    }
    Ok(Probe {
        format,
        width,
        height,
    })
}

/// Reads the header of the formats whose dimensions we read ourselves, and refuses an
/// oversized image; for TIFF returns its first directory.
fn own_header(
    format: ImageFormatKind,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<TiffLayout>, DecodeError> {
    match format {
        ImageFormatKind::Tiff => {
            let layout = TiffLayout::read(bytes)?;
            limits.check(layout.width, layout.height)?;
            Ok(Some(layout))
        }
        ImageFormatKind::Bmp => {
            let (w, h) = bmp::dimensions(bytes)?;
            limits.check(w, h).map(|()| None)
        }
        ImageFormatKind::Gif => {
            let (w, h) = gif::screen(bytes)?;
            limits.check(w, h)?;
            // The decoder reads ahead to the first frame: say what is wrong before it does.
            gif::first_frame(bytes).map(|_| None)
        }
        ImageFormatKind::Png | ImageFormatKind::Jpeg | ImageFormatKind::Webp => Ok(None),
    }
}

/// Refuses data that cannot hold the pixels `probe` found (see the module invariants).
fn check_data(
    format: ImageFormatKind,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<(), DecodeError> {
    let complete = match format {
        ImageFormatKind::Png => png_data_suffices(bytes),
        ImageFormatKind::Jpeg => chunks::jpeg_is_complete(bytes),
        ImageFormatKind::Webp => chunks::riff_is_complete(bytes),
        ImageFormatKind::Tiff => return TiffLayout::read(bytes)?.check_data(bytes),
        ImageFormatKind::Bmp => return bmp::check(bytes),
        ImageFormatKind::Gif => return gif::check(bytes, limits),
    };
    if complete {
        Ok(())
    } else {
        Err(DecodeError::Truncated)
    }
}

/// Decodes an upload within `limits` and applies its EXIF orientation.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    let probe = probe(bytes, limits)?;
    guard_panics(|| check_data(probe.format, bytes, limits))?;
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod format_tests;

#[cfg(test)]
mod tiff_tests;
