//! The layer section's structure: where the layer info lives (in the section or a global
//! `Layr` block), the layer records, their additional-info (tagged) blocks, names, group
//! section dividers, fill opacity and user masks. Nothing here touches pixels: a record
//! only says where its channel data lies and how to place it. Every length is checked
//! before it is sliced; odd or short mask data means no mask rather than an error.

use super::cursor::Bytes;
use super::{invalid, PsdReadError, Result, MAX_CHANNELS};

/// Smallest layer record: bounds, channel count, blend signature and key, four flag bytes and
/// the extra-data length.
pub(super) const MIN_RECORD_BYTES: usize = 16 + 2 + 8 + 4 + 4;
/// Longest layer name kept (Photoshop's own limit).
const MAX_NAME_CHARS: usize = 255;

/// The layer info body (count, records, channel data) inside the layer and mask section, if
/// any. Writers at higher depths leave the section empty and put it in a global `Lr16` or
/// `Lr32` block; some put 8-bit layers in a `Layr` block.
pub(super) fn layer_info<'a>(lmi: &mut Bytes<'a>) -> Result<Option<Bytes<'a>>> {
    if lmi.buf.is_empty() {
        return Ok(None);
    }
    lmi.what = "layer info";
    let li = lmi.block()?;
    if !li.buf.is_empty() {
        return Ok(Some(li));
    }
    // Global layer mask info is optional: absent when a tagged block follows at once.
    if lmi.buf.len() >= 4 && !is_signature(&lmi.buf[..4]) && lmi.block().is_err() {
        return Ok(None);
    }
    for (key, data) in tagged_blocks(lmi.buf) {
        match &key {
            b"Layr" => return Ok(Some(Bytes::new(data, "layer info"))),
            b"Lr16" | b"Lr32" => {
                return Err(PsdReadError::Unsupported(
                    "16- and 32-bit layers are not supported: save as 8 bits per channel".into(),
                ))
            }
            _ => {}
        }
    }
    Ok(None)
}

fn is_signature(s: &[u8]) -> bool {
    s == b"8BIM" || s == b"8B64"
}

/// Additional-info blocks (signature, key, `u32` length, data) until the data ends or stops
/// looking like blocks. Writers pad blocks to 1, 2 or 4 bytes, inside the length or not, so up
/// to three bytes before a signature are skipped.
fn tagged_blocks(mut rest: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let skip = (0..4).find(|&k| rest.get(k..k + 4).is_some_and(is_signature))?;
        let b = &rest[skip..];
        let head = b.get(..12)?;
        let key = [head[4], head[5], head[6], head[7]];
        let len = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
        let data = b.get(12..12usize.checked_add(len)?)?;
        rest = &b[12 + len..];
        Some((key, data))
    })
}

/// What a layer record is in the group structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Pixels,
    /// An open or closed folder: the record above its children.
    Folder,
    /// The hidden divider below a folder's children.
    Divider,
}

pub(super) struct Record {
    pub(super) top: i32,
    pub(super) left: i32,
    pub(super) bottom: i32,
    pub(super) right: i32,
    /// Channel id and length of its data (compression code included).
    pub(super) channels: Vec<(i16, usize)>,
    pub(super) opacity: f32,
    pub(super) hidden: bool,
    pub(super) name: String,
    pub(super) section: Section,
    pub(super) type_tool: bool,
    /// The user mask to apply, if the layer has one that is enabled.
    pub(super) mask: Option<Mask>,
}

/// A layer's user mask: which channel holds it and how it covers the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mask {
    /// -2, or -3 for the real user mask.
    pub(super) channel: i16,
    /// Canvas rectangle of the channel's pixels: top, left, bottom, right.
    pub(super) rect: [i32; 4],
    /// The mask's value outside its rectangle.
    pub(super) default: u8,
    /// The user mask density: how much of the mask applies (255: all of it).
    pub(super) density: u8,
}

/// Layer mask flag: the mask is disabled.
const MASK_DISABLED: u8 = 0x02;
/// Layer mask flag: mask parameters follow the (real) mask fields.
const MASK_HAS_PARAMETERS: u8 = 0x10;
/// Mask parameter flag: a user mask density byte comes first.
const PARAM_USER_DENSITY: u8 = 0x01;
/// Bytes of a rectangle, default colour and flags (of the mask, or of the real mask).
const MASK_FIELDS_BYTES: usize = 16 + 1 + 1;

/// The user mask to apply from a record's layer mask data, given its channel ids: `None` when
/// there is no mask, it is disabled, or its data is too short or upside down to place it.
fn read_mask(mut m: Bytes, channels: &[(i16, usize)]) -> Option<Mask> {
    let has = |id: i16| channels.iter().any(|&(c, _)| c == id);
    let rect = |m: &mut Bytes| Some([m.i32().ok()?, m.i32().ok()?, m.i32().ok()?, m.i32().ok()?]);
    let (main, default, flags) = (rect(&mut m)?, m.u8().ok()?, m.u8().ok()?);
    // The real flags, default colour and rectangle, present only with a -3 channel.
    let real = if has(-3) && m.buf.len() >= MASK_FIELDS_BYTES {
        let (flags, default) = (m.u8().ok()?, m.u8().ok()?);
        Some((rect(&mut m)?, default, flags))
    } else {
        None
    };
    let mut density = 255;
    if flags & MASK_HAS_PARAMETERS != 0 && m.u8().is_ok_and(|p| p & PARAM_USER_DENSITY != 0) {
        density = m.u8().unwrap_or(255);
    }
    let (channel, (rect, default, real_flags)) = match real {
        Some(real) => (-3, real),
        None if has(-2) => (-2, (main, default, 0)),
        None => return None,
    };
    let [top, left, bottom, right] = rect;
    if (flags | real_flags) & MASK_DISABLED != 0 || bottom < top || right < left {
        return None;
    }
    Some(Mask {
        channel,
        rect,
        default,
        density,
    })
}

pub(super) fn read_record(r: &mut Bytes) -> Result<Record> {
    let (top, left, bottom, right) = (r.i32()?, r.i32()?, r.i32()?, r.i32()?);
    if bottom < top || right < left {
        return Err(invalid(format!(
            "a layer has bounds {top},{left} to {bottom},{right}"
        )));
    }
    let n = r.u16()?;
    if n > MAX_CHANNELS {
        return Err(invalid(format!("a layer has {n} channels")));
    }
    let channels = (0..n)
        .map(|_| Ok((r.i16()?, r.u32()? as usize)))
        .collect::<Result<Vec<_>>>()?;
    if !is_signature(&r.array::<4>()?) {
        return Err(invalid("a layer record has no blend mode signature"));
    }
    r.take(4)?; // blend mode: everything is read as normal
    let opacity = r.u8()?;
    r.u8()?; // clipping: ignored
    let flags = r.u8()?;
    r.u8()?; // filler
    let mut extra = r.block()?;
    let mask = read_mask(extra.block()?, &channels);
    extra.block()?; // blending ranges
    let name_len = extra.u8()? as usize;
    let pascal = extra.take(name_len)?;

    let mut rec = Record {
        top,
        left,
        bottom,
        right,
        channels,
        opacity: opacity as f32 / 255.0,
        hidden: flags & 0x02 != 0,
        name: String::new(),
        section: Section::Pixels,
        type_tool: false,
        mask,
    };
    let mut unicode = None;
    // The Pascal name is padded to 4 bytes; `tagged_blocks` skips the padding.
    for (key, data) in tagged_blocks(extra.buf) {
        match &key {
            b"luni" => unicode = unicode_name(data),
            b"lsct" | b"lsdk" if data.len() >= 4 => {
                rec.section = match u32::from_be_bytes([data[0], data[1], data[2], data[3]]) {
                    1 | 2 => Section::Folder,
                    3 => Section::Divider,
                    _ => Section::Pixels,
                };
            }
            b"iOpa" if !data.is_empty() => rec.opacity *= data[0] as f32 / 255.0,
            b"TySh" | b"tySh" => rec.type_tool = true,
            _ => {}
        }
    }
    let name = unicode.unwrap_or_else(|| pascal_name(pascal));
    rec.name = name.chars().take(MAX_NAME_CHARS).collect();
    Ok(rec)
}

/// Mac OS Roman, bytes 0x80..=0xFF: the encoding psd-tools and Photoshop on the Mac use for
/// Pascal names.
pub(super) const MAC_ROMAN: &str =
    "ÄÅÇÉÑÖÜáàâäãåçéèêëíìîïñóòôöõúùûü†°¢£§•¶ß®©™´¨≠ÆØ∞±≤≥¥µ∂∑∏π∫ªºΩæø\
    ¿¡¬√ƒ≈∆«»…\u{a0}ÀÃÕŒœ–—“”‘’÷◊ÿŸ⁄€‹›ﬁﬂ‡·‚„‰ÂÊÁËÈÍÎÏÌÓÔ\u{f8ff}ÒÚÛÙıˆ˜¯˘˙˚¸˝˛ˇ";

/// A legacy Pascal name: UTF-8 when it is valid UTF-8, else Mac OS Roman.
pub(super) fn pascal_name(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes
            .iter()
            .map(|&b| match b.checked_sub(0x80) {
                None => b as char,
                Some(i) => MAC_ROMAN.chars().nth(i as usize).unwrap_or('\u{fffd}'),
            })
            .collect(),
    }
}

/// The name in a `luni` block (`u32` count of UTF-16BE units), without trailing NULs.
fn unicode_name(data: &[u8]) -> Option<String> {
    let count = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let units = data.get(4..4 + count.checked_mul(2)?)?;
    let units: Vec<u16> = units
        .chunks_exact(2)
        .map(|u| u16::from_be_bytes([u[0], u[1]]))
        .collect();
    Some(
        String::from_utf16_lossy(&units)
            .trim_end_matches('\0')
            .to_owned(),
    )
}
