//! GIF before decoding: the logical screen and the first frame, walked block by block, so that
//! a cut file and a tiny file declaring a huge picture are refused before the decoder fills a
//! screen-sized buffer. Only the first frame is ever decoded (the `image` decoder reads one
//! frame for a still image); later frames are not read at all.
//!
//! Invariants: [`check`] reads the header, the colour tables, the extension blocks before the
//! first frame and that frame's data sub-blocks, and allocates nothing. A file that ends
//! before the first frame's data does is [`DecodeError::Truncated`]; a file with no frame is
//! corrupt. The first frame must fit the pixel limits (the decoder buffers a frame of its own
//! size), its LZW data must be able to expand to its pixels (at most [`MAX_LZW_RATIO`] bytes
//! per byte), and that data must be able to account for the screen beyond its first
//! [`SCREEN_SLACK_PIXELS`]: a 100-byte file cannot make us fill a 64 MP screen.

use super::tiff::MAX_LZW_RATIO;
use super::{DecodeError, DecodeLimits};

/// Screen pixels a GIF may have whatever its frame data: a small first frame on a screen up
/// to this size is ordinary (4 MiB of RGBA).
const SCREEN_SLACK_PIXELS: u64 = 1 << 20;
/// Frame pixels the data check always allows (tiny frames, odd framing).
const SLACK_PIXELS: u64 = 4096;

/// The first frame of a GIF: where it lies and how many bytes of LZW data it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FirstFrame {
    pub screen: (u32, u32),
    pub frame: (u32, u32),
    pub data_bytes: u64,
}

/// The logical screen's width and height: the size of the decoded image.
pub(super) fn screen(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    Ok((u16_at(bytes, 6)?, u16_at(bytes, 8)?))
}

/// Walks to the end of the first frame's data; see the module invariants.
pub(super) fn first_frame(bytes: &[u8]) -> Result<FirstFrame, DecodeError> {
    let byte = |at: usize| bytes.get(at).copied().ok_or(DecodeError::Truncated);
    let u16_at = |at: usize| u16_at(bytes, at);
    let screen = screen(bytes)?;
    let mut at = 13 + colour_table_len(byte(10)?);
    loop {
        match byte(at)? {
            // Extension: a label, then sub-blocks.
            0x21 => at = skip_sub_blocks(bytes, at + 2)?.0,
            // Image descriptor: position, size, flags, local colour table, LZW code size.
            0x2C => {
                let frame = (u16_at(at + 5)?, u16_at(at + 7)?);
                let data = at + 10 + colour_table_len(byte(at + 9)?) + 1;
                let (_, data_bytes) = skip_sub_blocks(bytes, data)?;
                return Ok(FirstFrame {
                    screen,
                    frame,
                    data_bytes,
                });
            }
            0x3B => return Err(DecodeError::corrupt("the GIF has no image in it")),
            other => {
                return Err(DecodeError::corrupt(&format!(
                    "unknown GIF block 0x{other:02X} before the first image"
                )))
            }
        }
    }
}

/// Refuses a GIF whose first frame is cut, over the limits, or cannot fill its screen.
pub(super) fn check(bytes: &[u8], limits: &DecodeLimits) -> Result<(), DecodeError> {
    let f = first_frame(bytes)?;
    let (fw, fh) = f.frame;
    if fw > 0 && fh > 0 {
        limits.check(fw, fh)?;
    }
    let capacity = f.data_bytes.saturating_mul(MAX_LZW_RATIO);
    if u64::from(fw) * u64::from(fh) > capacity + SLACK_PIXELS {
        return Err(DecodeError::Truncated);
    }
    let (sw, sh) = f.screen;
    if u64::from(sw) * u64::from(sh) > capacity + SCREEN_SLACK_PIXELS {
        return Err(DecodeError::corrupt(&format!(
            "its first frame ({fw}×{fh}, {} bytes of data) cannot fill its {sw}×{sh} screen",
            f.data_bytes
        )));
    }
    Ok(())
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u32, DecodeError> {
    let b = bytes.get(at..at + 2).ok_or(DecodeError::Truncated)?;
    Ok(u32::from(u16::from_le_bytes([b[0], b[1]])))
}

/// Bytes of the colour table announced by a flags byte (bit 7 set: 3 × 2^(n+1) bytes).
fn colour_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 0x07) + 1)
    }
}

/// Skips the sub-blocks starting at `at`: the offset after their terminator and the bytes of
/// data they held.
fn skip_sub_blocks(bytes: &[u8], mut at: usize) -> Result<(usize, u64), DecodeError> {
    let mut data = 0u64;
    loop {
        let len = usize::from(*bytes.get(at).ok_or(DecodeError::Truncated)?);
        at += 1;
        if len == 0 {
            return Ok((at, data));
        }
        at += len;
        if at > bytes.len() {
            return Err(DecodeError::Truncated);
        }
        data += len as u64;
    }
}
