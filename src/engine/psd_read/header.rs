//! The file header: signature, version, channel count, canvas size, depth and colour mode.
//! Only 8-bit RGB or Grayscale version-1 files pass, with 1..=30000 px per side and within
//! [`PsdLimits::max_pixels`]; everything else is refused with a message saying how to re-save.

use super::cursor::Bytes;
use super::{invalid, PsdLimits, PsdReadError, Result, MAX_CHANNELS};

/// Largest width or height of a version-1 PSD.
const MAX_SIDE: u32 = 30_000;

pub(super) struct Header {
    pub(super) channels: u16,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) gray: bool,
}

pub(super) fn read_header(r: &mut Bytes, limits: &PsdLimits) -> Result<Header> {
    if &r.array::<4>()? != b"8BPS" {
        return Err(invalid("it does not start with the 8BPS signature"));
    }
    match r.u16()? {
        1 => {}
        2 => {
            return Err(PsdReadError::Unsupported(
                "large-document (PSB) files are not supported: save as a PSD (version 1) instead"
                    .into(),
            ))
        }
        v => return Err(invalid(format!("unknown version {v}"))),
    }
    r.take(6)?; // reserved
    let channels = r.u16()?;
    let height = r.u32()?;
    let width = r.u32()?;
    let depth = r.u16()?;
    let mode = r.u16()?;
    let gray = match mode {
        1 => true,
        3 => false,
        m => {
            let name = match m {
                0 => "Bitmap",
                2 => "Indexed-colour",
                4 => "CMYK",
                7 => "Multichannel",
                8 => "Duotone",
                9 => "Lab",
                _ => return Err(invalid(format!("unknown colour mode {m}"))),
            };
            return Err(PsdReadError::Unsupported(format!(
                "{name} PSDs are not supported: convert the image to RGB colour and save again"
            )));
        }
    };
    match depth {
        8 => {}
        1 | 16 | 32 => {
            return Err(PsdReadError::Unsupported(format!(
                "{depth}-bit PSDs are not supported: save as 8 bits per channel"
            )))
        }
        d => return Err(invalid(format!("unknown bit depth {d}"))),
    }
    let needed = if gray { 1 } else { 3 };
    if !(needed..=MAX_CHANNELS).contains(&channels) {
        return Err(invalid(format!("{channels} channels")));
    }
    if width == 0 || height == 0 {
        return Err(invalid(format!("an empty {width}x{height} canvas")));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(PsdReadError::TooLarge(format!(
            "the {width}x{height} canvas exceeds {MAX_SIDE} px per side: reduce the image size"
        )));
    }
    let pixels = width as u64 * height as u64;
    if pixels > limits.max_pixels {
        return Err(PsdReadError::TooLarge(format!(
            "the {width}x{height} canvas has more than {} pixels: reduce the image size",
            limits.max_pixels
        )));
    }
    Ok(Header {
        channels,
        width,
        height,
        gray,
    })
}
