//! What an upload may make the decoder do ([`DecodeLimits`]) and why it was refused
//! ([`DecodeError`], one stable code each), with the translation of the `image` crate's errors
//! into ours.
//!
//! Invariants: every refusal message tells the user what to do next and leaks no decoder
//! internals beyond a short, control-character-free detail ([`MAX_DETAIL_CHARS`]); an image
//! over a limit is always [`DecodeError::TooManyPixels`] with its declared size, whichever
//! limit (pixels, side, memory) it broke.

use std::io::ErrorKind;

use image::{ImageError, Limits};

/// Longest decoder message kept in [`DecodeError::Corrupt`].
const MAX_DETAIL_CHARS: usize = 200;

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
    pub(super) fn check(&self, width: u32, height: u32) -> Result<(), DecodeError> {
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

    /// Refuses a `width`×`height` image whose decoding needs `bytes` at once.
    pub(super) fn check_alloc(
        &self,
        width: u32,
        height: u32,
        bytes: u64,
    ) -> Result<(), DecodeError> {
        if bytes > self.max_alloc {
            return Err(self.too_large(width, height));
        }
        Ok(())
    }

    pub(super) fn too_large(&self, width: u32, height: u32) -> DecodeError {
        DecodeError::TooManyPixels {
            width,
            height,
            max_pixels: self.max_pixels,
            max_side: self.max_side,
        }
    }

    pub(super) fn image_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.max_side);
        limits.max_image_height = Some(self.max_side);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

/// Why an upload cannot be used as an image. Messages tell the user what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "the upload is empty — choose a PNG, JPEG, WebP, TIFF, BMP or GIF image and upload it \
         again"
    )]
    Empty,
    #[error(
        "this file is not a PNG, JPEG, WebP, TIFF, BMP or GIF image — convert it to one of \
         those formats and upload it again"
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

    /// [`DecodeError::Corrupt`] with `text` cut to a short, printable detail.
    pub(super) fn corrupt(text: &str) -> Self {
        Self::Corrupt(detail(text))
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
pub(super) fn megapixels(pixels: u64) -> String {
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

/// Our error for one of the `image` crate's; `dims` is the declared size once known.
pub(super) fn map_image_error(
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
            DecodeError::corrupt(&format!("it uses a feature we cannot decode: {e}"))
        }
        other => {
            let text = other.to_string();
            if looks_truncated(&text) {
                DecodeError::Truncated
            } else {
                DecodeError::corrupt(&text)
            }
        }
    }
}

/// Decoders that wrap their I/O report a short read in prose rather than as `UnexpectedEof`
/// (the GIF decoder says "image truncated" when a frame's data ends early).
fn looks_truncated(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "unexpected eof",
        "unexpected end of",
        "end of file",
        "not enough bytes",
        "image truncated",
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
