//! TIFF before decoding: the first image file directory (IFD) read by hand, so that the size,
//! the samples, the compression and the strips or tiles of the first page are known before
//! the `tiff` decoder allocates anything.
//!
//! Invariants: [`TiffLayout::read`] reads the 8-byte header and the first IFD only, both byte
//! orders, classic (32-bit) TIFF only; it allocates nothing and never reads outside `bytes`
//! (an IFD or a value array past the end is [`DecodeError::Truncated`]), and it refuses a tag
//! with far more values than it can use (the decoder would reserve memory for them all).
//! [`TiffLayout::check_memory`] refuses an image whose decoding buffers (the decoder's own,
//! at the file's bits per sample, plus our output) exceed `max_alloc`.
//! [`TiffLayout::check_data`] refuses, before decoding: a compression we do not read (we read
//! none, LZW, Deflate and PackBits); strips or tiles that run past the end of the file
//! ([`DecodeError::Truncated`]); and strips too short to hold the declared pixels even at the
//! compression's largest possible expansion (a bomb, or a cut file, also
//! [`DecodeError::Truncated`]).

use super::chunks::MAX_DEFLATE_RATIO;
use super::{DecodeError, DecodeLimits};

/// Most bytes one byte of LZW data can expand to: a 12-bit code names a string of at most
/// 4096 bytes. (GIF shares the bound.)
pub(super) const MAX_LZW_RATIO: u64 = 2731;
/// Most bytes one byte of PackBits can expand to: a 2-byte run repeats a byte 128 times.
const MAX_PACKBITS_RATIO: u64 = 64;
/// Slack for tiny images and odd framing in the compressed-size check.
const SLACK_BYTES: u64 = 4096;

const TAG_WIDTH: u16 = 256;
const TAG_HEIGHT: u16 = 257;
const TAG_BITS_PER_SAMPLE: u16 = 258;
const TAG_COMPRESSION: u16 = 259;
const TAG_PHOTOMETRIC: u16 = 262;
const TAG_STRIP_OFFSETS: u16 = 273;
const TAG_SAMPLES_PER_PIXEL: u16 = 277;
const TAG_STRIP_BYTE_COUNTS: u16 = 279;
const TAG_PLANAR_CONFIG: u16 = 284;
const TAG_TILE_OFFSETS: u16 = 324;
const TAG_TILE_BYTE_COUNTS: u16 = 325;

const PHOTOMETRIC_SEPARATED: u16 = 5;

/// One IFD entry's value: `count` values of a SHORT (2-byte) or LONG (4-byte) type at `at`.
#[derive(Clone, Copy, Debug)]
struct Field {
    width: usize,
    count: usize,
    at: usize,
}

/// What the first IFD says about the first page.
#[derive(Clone, Copy, Debug)]
pub(super) struct TiffLayout {
    big_endian: bool,
    pub width: u32,
    pub height: u32,
    bits_per_sample: u32,
    samples: u32,
    compression: u32,
    photometric: u32,
    planar: u32,
    offsets: Option<Field>,
    counts: Option<Field>,
}

impl TiffLayout {
    /// Reads the header and the first IFD.
    pub fn read(bytes: &[u8]) -> Result<Self, DecodeError> {
        let big_endian = bytes.starts_with(b"MM");
        let mut layout = Self {
            big_endian,
            width: 0,
            height: 0,
            bits_per_sample: 1,
            samples: 1,
            compression: 1,
            photometric: 0,
            planar: 1,
            offsets: None,
            counts: None,
        };
        let ifd = layout.u32_at(bytes, 4)? as usize;
        if ifd < 8 {
            return Err(DecodeError::corrupt(
                "its first directory offset is invalid",
            ));
        }
        let entries = usize::from(layout.u16_at(bytes, ifd)?);
        let (mut strips, mut strip_counts, mut tiles, mut tile_counts) = (None, None, None, None);
        for i in 0..entries {
            let entry = ifd + 2 + 12 * i;
            let tag = layout.u16_at(bytes, entry)?;
            layout.check_entry(bytes, entry, tag)?;
            let Some(field) = layout.field(bytes, entry)? else {
                continue; // a type we do not need (rationals, ASCII, ...)
            };
            // Only the scalar tags need their first value (an empty array is refused there).
            let first = layout.value(bytes, field, 0);
            match tag {
                TAG_WIDTH => layout.width = first?,
                TAG_HEIGHT => layout.height = first?,
                TAG_BITS_PER_SAMPLE => layout.bits_per_sample = first?,
                TAG_COMPRESSION => layout.compression = first?,
                TAG_PHOTOMETRIC => layout.photometric = first?,
                TAG_SAMPLES_PER_PIXEL => layout.samples = first?,
                TAG_PLANAR_CONFIG => layout.planar = first?,
                TAG_STRIP_OFFSETS => strips = Some(field),
                TAG_STRIP_BYTE_COUNTS => strip_counts = Some(field),
                TAG_TILE_OFFSETS => tiles = Some(field),
                TAG_TILE_BYTE_COUNTS => tile_counts = Some(field),
                _ => {}
            }
        }
        (layout.offsets, layout.counts) = match (strips, strip_counts, tiles, tile_counts) {
            (Some(o), Some(c), None, None) | (None, None, Some(o), Some(c)) => (Some(o), Some(c)),
            _ => (None, None),
        };
        Ok(layout)
    }

    /// Bytes of the first page as the decoder holds it, bit-packed rows rounded up to bytes.
    /// Saturating: the sample count and bits come from the file unchecked.
    fn raw_bytes(&self) -> u64 {
        let (w, h) = (u64::from(self.width), u64::from(self.height));
        let bits = u64::from(self.bits_per_sample);
        let samples = u64::from(self.samples.max(1));
        let (planes, row_bits) = if self.planar == 2 {
            (samples, w.saturating_mul(bits))
        } else {
            (1, w.saturating_mul(samples).saturating_mul(bits))
        };
        planes
            .saturating_mul(h)
            .saturating_mul(row_bits.div_ceil(8))
    }

    /// Refuses an image whose decoder buffer plus our output exceed `limits.max_alloc`: the
    /// `tiff` decoder fills a buffer at the file's own bits per sample, which is then converted
    /// into the output image (CMYK into RGB, 1-bit grey into 8-bit).
    pub fn check_memory(&self, limits: &DecodeLimits) -> Result<(), DecodeError> {
        let pixels = u64::from(self.width) * u64::from(self.height);
        let raw = self.raw_bytes();
        let sample_bytes = u64::from(self.bits_per_sample.div_ceil(8));
        let channels = if self.photometric == u32::from(PHOTOMETRIC_SEPARATED) {
            3
        } else {
            u64::from(self.samples.max(1))
        };
        let output = pixels.saturating_mul(channels).saturating_mul(sample_bytes);
        limits.check_alloc(self.width, self.height, raw.saturating_add(output))
    }

    /// Refuses a compression we do not read, chunks past the end of the file, and chunks
    /// that cannot hold the declared pixels (see the module invariants).
    pub fn check_data(&self, bytes: &[u8]) -> Result<(), DecodeError> {
        let ratio = match self.compression {
            1 => 1,
            5 => MAX_LZW_RATIO,
            8 | 32946 => MAX_DEFLATE_RATIO,
            32773 => MAX_PACKBITS_RATIO,
            other => {
                return Err(DecodeError::corrupt(&format!(
                    "it uses TIFF compression {other} ({}); we read TIFFs saved with LZW, \
                     Deflate (ZIP), PackBits or no compression",
                    compression_name(other)
                )))
            }
        };
        let (Some(offsets), Some(counts)) = (self.offsets, self.counts) else {
            return Err(DecodeError::corrupt(
                "its first page has no complete list of strips or tiles",
            ));
        };
        if offsets.count != counts.count || counts.count == 0 {
            return Err(DecodeError::corrupt(
                "its strip or tile offsets and sizes do not match",
            ));
        }
        let mut data = 0u64;
        for i in 0..counts.count {
            let start = u64::from(self.value(bytes, offsets, i)?);
            let len = u64::from(self.value(bytes, counts, i)?);
            if start.saturating_add(len) > bytes.len() as u64 {
                return Err(DecodeError::Truncated);
            }
            data = data.saturating_add(len);
        }
        let slack = if ratio == 1 { 0 } else { SLACK_BYTES };
        if self.raw_bytes() > data.saturating_mul(ratio).saturating_add(slack) {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }

    /// Refuses an entry whose values lie past the end of the file, or that has far more
    /// values than its tag can use: the `tiff` decoder reserves 32 bytes per value of the
    /// tags it reads before reading them (a 445-byte file found by fuzzing declared 7.9
    /// million predictor values, and made it reserve 242 MiB).
    fn check_entry(&self, bytes: &[u8], entry: usize, tag: u16) -> Result<(), DecodeError> {
        let type_size: u64 = match self.u16_at(bytes, entry + 2)? {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 | 16..=18 => 8,
            _ => return Ok(()), // a type nobody reads
        };
        let count = self.u32_at(bytes, entry + 4)?;
        let size = u64::from(count) * type_size;
        if size > 4 && u64::from(self.u32_at(bytes, entry + 8)?) + size > bytes.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        if count > max_values(tag) {
            return Err(DecodeError::corrupt(&format!(
                "its TIFF tag {tag} has {count} values"
            )));
        }
        Ok(())
    }

    /// The value field of the entry at `entry`, if it is of a type we read.
    fn field(&self, bytes: &[u8], entry: usize) -> Result<Option<Field>, DecodeError> {
        let width = match self.u16_at(bytes, entry + 2)? {
            3 => 2, // SHORT
            4 => 4, // LONG
            _ => return Ok(None),
        };
        let count = self.u32_at(bytes, entry + 4)? as usize;
        let size = count.saturating_mul(width);
        let at = if size <= 4 {
            entry + 8
        } else {
            self.u32_at(bytes, entry + 8)? as usize
        };
        if at.saturating_add(size) > bytes.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(Some(Field { width, count, at }))
    }

    /// Value `i` of `field` (in bounds: [`Self::field`] checked the whole array).
    fn value(&self, bytes: &[u8], field: Field, i: usize) -> Result<u32, DecodeError> {
        if i >= field.count {
            return Err(DecodeError::corrupt("a required TIFF tag has no value"));
        }
        let at = field.at + i * field.width;
        match field.width {
            2 => self.u16_at(bytes, at).map(u32::from),
            _ => self.u32_at(bytes, at),
        }
    }

    fn u16_at(&self, bytes: &[u8], at: usize) -> Result<u16, DecodeError> {
        let b: [u8; 2] = bytes
            .get(at..at.saturating_add(2))
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::Truncated)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32_at(&self, bytes: &[u8], at: usize) -> Result<u32, DecodeError> {
        let b: [u8; 4] = bytes
            .get(at..at.saturating_add(4))
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::Truncated)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
}

/// Most values a tag the decoders read may have: a few for the scalars, one per sample for the
/// per-sample tags, one per strip or tile (at most a million) for the chunk lists.
fn max_values(tag: u16) -> u32 {
    match tag {
        // Width, height, compression, photometric, samples, rows per strip, planar
        // configuration, predictor, subfile type, orientation, EXIF and GPS directories.
        TAG_WIDTH
        | TAG_HEIGHT
        | TAG_COMPRESSION
        | TAG_PHOTOMETRIC
        | TAG_SAMPLES_PER_PIXEL
        | 278
        | TAG_PLANAR_CONFIG
        | 317
        | 254
        | 274
        | 34665
        | 34853 => 16,
        // YCbCr subsampling.
        530 => 16,
        // Bits per sample, extra samples, sample format, sub-directories.
        TAG_BITS_PER_SAMPLE | 338 | 339 | 330 => 1024,
        // JPEG tables.
        347 => 1 << 16,
        TAG_STRIP_OFFSETS | TAG_STRIP_BYTE_COUNTS | TAG_TILE_OFFSETS | TAG_TILE_BYTE_COUNTS => {
            1 << 20
        }
        _ => u32::MAX,
    }
}

fn compression_name(code: u32) -> &'static str {
    match code {
        2..=4 => "CCITT fax",
        6 | 7 => "JPEG",
        34712 => "JPEG 2000",
        34925 => "LZMA",
        50000 => "Zstandard",
        50001 => "WebP",
        _ => "unknown",
    }
}
