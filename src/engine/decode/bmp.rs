//! BMP before decoding: the file and info headers read by hand, so that a pixel array shorter
//! than its rows (a cut file) and a tiny run-length-encoded file declaring a huge image are
//! refused before the decoder allocates its output.
//!
//! Invariants: [`check`] reads the first 34 bytes at most and allocates nothing. Uncompressed
//! and bit-field BMPs must hold every row (the last row's padding may be missing):
//! otherwise [`DecodeError::Truncated`]. RLE4/RLE8 data must be able to cover the pixels at
//! the encoding's best ratio ([`MAX_RLE_RATIO`] pixels per byte) beyond [`SLACK_PIXELS`]:
//! an RLE file that skips most of a large image with "end of bitmap" is refused as well.
//! Other compressions (embedded JPEG or PNG) are left to the decoder, which refuses them.

use super::DecodeError;

/// Most pixels one byte of RLE data can stand for: a 2-byte run paints 255 pixels.
const MAX_RLE_RATIO: u64 = 128;
/// Pixels an RLE BMP may have whatever its data.
const SLACK_PIXELS: u64 = 1 << 16;
/// Size of the core (OS/2 1.x) info header, whose sizes are 16-bit.
const CORE_HEADER: u32 = 12;

/// Width and height as the info header declares them (a negative height is top-down), read
/// before the decoder so that an oversized image is refused with its declared size.
pub(super) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    let (width, height, _, _) = header(bytes)?;
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok((clamp(width), clamp(height)))
}

/// Refuses a BMP whose pixel data cannot be complete; see the module invariants.
pub(super) fn check(bytes: &[u8]) -> Result<(), DecodeError> {
    let data_offset = u64::from(u32_at(bytes, 10)?);
    let (width, height, bits, compression) = header(bytes)?;
    let len = bytes.len() as u64;
    match compression {
        // Uncompressed and bit fields: rows padded to 4 bytes.
        0 | 3 => {
            let row = width.saturating_mul(bits).div_ceil(8);
            let stride = row.div_ceil(4).saturating_mul(4);
            let need = stride
                .saturating_mul(height.saturating_sub(1))
                .saturating_add(data_offset.saturating_add(row));
            if height > 0 && len < need {
                return Err(DecodeError::Truncated);
            }
        }
        // RLE8, RLE4.
        1 | 2 => {
            let data = len.saturating_sub(data_offset);
            if width.saturating_mul(height) > data.saturating_mul(MAX_RLE_RATIO) + SLACK_PIXELS {
                return Err(DecodeError::Truncated);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Width, height, bits per pixel and compression from the info header.
fn header(bytes: &[u8]) -> Result<(u64, u64, u64, u32), DecodeError> {
    let u16_at = |at: usize| -> Result<u64, DecodeError> {
        let b = bytes.get(at..at + 2).ok_or(DecodeError::Truncated)?;
        Ok(u64::from(u16::from_le_bytes([b[0], b[1]])))
    };
    Ok(if u32_at(bytes, 14)? == CORE_HEADER {
        (u16_at(18)?, u16_at(20)?, u16_at(24)?, 0)
    } else {
        // A negative width is refused by the decoder.
        let w = u64::from((u32_at(bytes, 18)? as i32).max(0).unsigned_abs());
        // A negative height is a top-down image of that many rows.
        let h = u64::from((u32_at(bytes, 22)? as i32).unsigned_abs());
        (w, h, u16_at(28)?, u32_at(bytes, 30)?)
    })
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, DecodeError> {
    let b = bytes.get(at..at + 4).ok_or(DecodeError::Truncated)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
