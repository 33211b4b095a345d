//! Whether the data of a PNG, JPEG or WebP upload can be complete, judged from its chunk and
//! marker structure without decoding: the cheap checks that refuse a cut-off file, or a tiny
//! file declaring a huge image, before the decoder allocates its output.
//!
//! Invariants: each check reads only the bytes it is given and allocates nothing; a structure
//! it cannot walk answers in the decoder's favour (the decoder judges), except where the walk
//! proves the file shorter than its own headers say.

use super::format::PNG_MAGIC;

/// Most bytes one byte of deflate data can inflate to (a 258-byte match in 2 bits), rounded
/// up; zlib framing and block headers only lower the real ratio.
pub(super) const MAX_DEFLATE_RATIO: u64 = 1032;

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
pub(super) fn riff_is_complete(bytes: &[u8]) -> bool {
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
pub(super) fn jpeg_is_complete(bytes: &[u8]) -> bool {
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
