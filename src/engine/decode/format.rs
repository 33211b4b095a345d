//! The upload formats we accept and how they are recognised: by their magic bytes alone,
//! never by a content type or a file name.
//!
//! Invariants: [`sniff`] answers one of [`ImageFormatKind`] only for bytes that start with
//! that format's signature (for BMP, `BM` followed by a known header size, since two letters
//! alone also start ordinary text); a few bytes that are the beginning of a signature are an
//! upload cut short ([`DecodeError::Truncated`]); anything else is
//! [`DecodeError::Unsupported`]. BigTIFF, animated frames past the first and every other
//! format are not accepted.

use std::fmt;

use image::ImageFormat;
use serde::{Deserialize, Serialize};

use super::DecodeError;

pub(super) const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
const TIFF_LE_MAGIC: &[u8] = b"II*\0";
const TIFF_BE_MAGIC: &[u8] = b"MM\0*";
const GIF87_MAGIC: &[u8] = b"GIF87a";
const GIF89_MAGIC: &[u8] = b"GIF89a";
/// The sizes of the BMP info headers (core, info, V2–V5); the first four bytes after the
/// 14-byte file header.
const BMP_HEADER_SIZES: [u32; 6] = [12, 40, 52, 56, 108, 124];
/// File header plus the info header's size field: what a BMP needs to be recognised.
const BMP_SNIFF_LEN: usize = 18;

/// An image format we accept for upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormatKind {
    Png,
    Jpeg,
    Webp,
    Tiff,
    Bmp,
    Gif,
}

impl ImageFormatKind {
    /// Stable lowercase name, as in JSON: `png`, `jpeg`, `webp`, `tiff`, `bmp`, `gif`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Webp => "webp",
            Self::Tiff => "tiff",
            Self::Bmp => "bmp",
            Self::Gif => "gif",
        }
    }

    /// The media type to serve the original bytes with.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
            Self::Tiff => "image/tiff",
            Self::Bmp => "image/bmp",
            Self::Gif => "image/gif",
        }
    }

    /// The usual file extension, without the dot: `png`, `jpg`, `webp`, `tif`, `bmp`, `gif`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
            Self::Tiff => "tif",
            Self::Bmp => "bmp",
            Self::Gif => "gif",
        }
    }

    pub(super) fn image_format(self) -> ImageFormat {
        match self {
            Self::Png => ImageFormat::Png,
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Webp => ImageFormat::WebP,
            Self::Tiff => ImageFormat::Tiff,
            Self::Bmp => ImageFormat::Bmp,
            Self::Gif => ImageFormat::Gif,
        }
    }
}

impl fmt::Display for ImageFormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    if bytes.starts_with(TIFF_LE_MAGIC) || bytes.starts_with(TIFF_BE_MAGIC) {
        return Ok(ImageFormatKind::Tiff);
    }
    if bytes.starts_with(GIF87_MAGIC) || bytes.starts_with(GIF89_MAGIC) {
        return Ok(ImageFormatKind::Gif);
    }
    if is_bmp(bytes) {
        return Ok(ImageFormatKind::Bmp);
    }
    if is_cut_magic(bytes) {
        return Err(DecodeError::Truncated);
    }
    Err(DecodeError::Unsupported)
}

fn is_bmp(bytes: &[u8]) -> bool {
    bytes.len() >= BMP_SNIFF_LEN
        && bytes.starts_with(b"BM")
        && BMP_HEADER_SIZES.contains(&u32::from_le_bytes([
            bytes[14], bytes[15], bytes[16], bytes[17],
        ]))
}

/// A few bytes that are the start of one of our magic numbers: an upload cut short.
fn is_cut_magic(bytes: &[u8]) -> bool {
    if bytes.len() < 2 {
        return false;
    }
    let riff_prefix = bytes.len() < 12
        && b"RIFF".starts_with(&bytes[..bytes.len().min(4)])
        && (bytes.len() <= 8 || b"WEBP".starts_with(&bytes[8..]));
    // A BMP cut inside its file header: `BM`, then the reserved bytes (6..10) are zero.
    let bmp_prefix = bytes.len() < BMP_SNIFF_LEN
        && bytes.starts_with(b"BM")
        && bytes[bytes.len().min(6)..bytes.len().min(10)]
            .iter()
            .all(|&b| b == 0);
    [
        PNG_MAGIC,
        JPEG_MAGIC,
        TIFF_LE_MAGIC,
        TIFF_BE_MAGIC,
        GIF87_MAGIC,
        GIF89_MAGIC,
    ]
    .iter()
    .any(|magic| magic.starts_with(bytes))
        || riff_prefix
        || bmp_prefix
}
