//! Pixels: decodes layer channels (raw or PackBits) into full-canvas straight-alpha RGBA,
//! multiplies user masks into the alpha, and reads the merged image of a file without layers.
//! Only the part of a layer or mask rectangle that lies on the canvas is ever written, and a
//! mask is applied row by row, so memory stays at one canvas per layer whatever the bounds say.
//! Every channel's data is checked to hold what its rows need (raw size, or the sum of its RLE
//! row counts) before the canvas is allocated, so a file whose lengths lie is refused without
//! committing width × height × 4 bytes.

use image::RgbaImage;

use super::cursor::Bytes;
use super::header::Header;
use super::records::{Mask, Record};
use super::rle::unpack_row;
use super::{invalid, PsdReadError, Result};

/// Where a channel's rows and columns land on the canvas.
struct Placement {
    /// Rows and columns of the layer rectangle.
    rows: u64,
    cols: u64,
    /// The rectangle's rows `r0..r1` and columns `c0..c1` are on the canvas.
    r0: u64,
    r1: u64,
    c0: u64,
    c1: u64,
    /// Canvas position of the rectangle's row 0, column 0.
    top: i64,
    left: i64,
}

impl Placement {
    fn new(top: i64, left: i64, rows: u64, cols: u64, width: u32, height: u32) -> Self {
        let clip = |start: i64, len: u64, side: u32| {
            let lo = (-start).clamp(0, len as i64) as u64;
            let hi = (side as i64 - start).clamp(0, len as i64) as u64;
            (lo, hi.max(lo))
        };
        let (mut r0, mut r1) = clip(top, rows, height);
        let (mut c0, mut c1) = clip(left, cols, width);
        if r0 == r1 || c0 == c1 {
            // Entirely off the canvas: nothing to write, and no position to compute.
            (r0, r1, c0, c1) = (0, 0, 0, 0);
        }
        Self {
            rows,
            cols,
            r0,
            r1,
            c0,
            c1,
            top,
            left,
        }
    }
}

pub(super) fn decode_layer(
    rec: &Record,
    chans: &[(i16, &[u8])],
    header: &Header,
) -> Result<RgbaImage> {
    let (w, h) = (header.width, header.height);
    let rows = (rec.bottom as i64 - rec.top as i64) as u64;
    let cols = (rec.right as i64 - rec.left as i64) as u64;
    let at = Placement::new(rec.top as i64, rec.left as i64, rows, cols, w, h);
    // Lengths first, canvas second: a 64 KiB file of lying RLE counts made us allocate a
    // 244 MiB canvas before finding out (bomb corpus, `tests/fuzz`).
    for &(id, data) in chans {
        if components(id, header.gray).is_some() {
            check_channel(data, &at)?;
        }
    }
    let mask = rec.mask.as_ref().and_then(|mask| {
        let &(_, data) = chans.iter().find(|(id, _)| *id == mask.channel)?;
        Some((mask, data, mask_placement(mask, data, rec, w, h)))
    });
    if let Some((_, data, at)) = &mask {
        check_channel(data, at)?;
    }
    let mut rgba = RgbaImage::new(w, h);
    let buf: &mut [u8] = &mut rgba;
    let stride = w as usize * 4;
    // Writes the on-canvas part of rectangle row `r` to components `comps`.
    let mut put = |comps: &[usize], r: u64, src: &[u8]| {
        let y = (at.top + r as i64) as usize;
        let x = (at.left + at.c0 as i64) as usize;
        let row = &mut buf[y * stride + x * 4..][..src.len() * 4];
        for (px, &v) in row.chunks_exact_mut(4).zip(src) {
            for &c in comps {
                px[c] = v;
            }
        }
    };
    if !chans.iter().any(|(id, _)| *id == -1) {
        let opaque = vec![255; (at.c1 - at.c0) as usize];
        for r in at.r0..at.r1 {
            put(&[3], r, &opaque);
        }
    }
    for &(id, data) in chans {
        let Some(comps) = components(id, header.gray) else {
            continue;
        };
        decode_channel(data, &at, |r, src| put(comps, r, src))?;
    }
    if let Some((mask, data, at)) = mask {
        apply_mask(&mut rgba, mask, data, &at)?;
    }
    Ok(rgba)
}

/// The RGBA components channel `id` writes, or `None` for a channel we do not draw.
fn components(id: i16, gray: bool) -> Option<&'static [usize]> {
    Some(match (id, gray) {
        (-1, _) => &[3],
        (0, true) => &[0, 1, 2],
        (0, false) => &[0],
        (1, false) => &[1],
        (2, false) => &[2],
        _ => return None,
    })
}

/// Where a mask channel's rows land: its rectangle, or the layer's for mask pixels with an
/// empty rectangle (panotools means the layer's).
fn mask_placement(mask: &Mask, data: &[u8], rec: &Record, w: u32, h: u32) -> Placement {
    let [mut top, mut left, mut bottom, mut right] = mask.rect;
    if (top == bottom || left == right) && data.len() > 2 {
        (top, left, bottom, right) = (rec.top, rec.left, rec.bottom, rec.right);
    }
    let rows = (bottom as i64 - top as i64) as u64;
    let cols = (right as i64 - left as i64) as u64;
    Placement::new(top as i64, left as i64, rows, cols, w, h)
}

/// Fails exactly when [`decode_channel`] would for want of data (raw rows, RLE row counts or
/// the bytes they count), without decoding: what is checked before a canvas is allocated.
fn check_channel(data: &[u8], at: &Placement) -> Result<()> {
    let mut r = Bytes::new(data, "layer channel data");
    if at.rows == 0 || at.cols == 0 {
        return Ok(());
    }
    let need = match r.u16()? {
        0 => at.rows.saturating_mul(at.cols),
        1 => {
            let counts = r.take(at.rows.saturating_mul(2).try_into().unwrap_or(usize::MAX))?;
            counts
                .chunks_exact(2)
                .take(at.r1 as usize)
                .map(|n| u64::from(u16::from_be_bytes([n[0], n[1]])))
                .sum()
        }
        _ => 0, // decode_channel names the compression
    };
    if need > r.buf.len() as u64 {
        return Err(PsdReadError::Truncated("layer channel data"));
    }
    Ok(())
}

/// `a × b / 255`, rounded.
pub(super) fn mul(a: u8, b: u8) -> u8 {
    ((a as u32 * b as u32 + 127) / 255) as u8
}

/// Multiplies the layer's alpha by the mask (its channel `data`) scaled by its density: the
/// default colour outside the mask rectangle, the channel's rows inside it, decoded row by row.
fn apply_mask(rgba: &mut RgbaImage, mask: &Mask, data: &[u8], at: &Placement) -> Result<()> {
    let w = rgba.width();
    // Density d keeps d/255 of the mask: m' = m·d/255 + (255 − d).
    let scale: [u8; 256] =
        std::array::from_fn(|m| mul(m as u8, mask.density) + (255 - mask.density));
    let stride = w as usize * 4;
    let buf: &mut [u8] = rgba;
    let outside = scale[mask.default as usize];
    if outside != 255 {
        // The on-canvas part of the rectangle, in canvas rows and columns.
        let ys = at.top + at.r0 as i64..at.top + at.r1 as i64;
        let xs = at.left + at.c0 as i64..at.left + at.c1 as i64;
        for (y, row) in buf.chunks_exact_mut(stride).enumerate() {
            let inside_row = ys.contains(&(y as i64));
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                if !(inside_row && xs.contains(&(x as i64))) {
                    px[3] = mul(px[3], outside);
                }
            }
        }
    }
    decode_channel(data, at, |r, src| {
        let y = (at.top + r as i64) as usize;
        let x = (at.left + at.c0 as i64) as usize;
        let row = &mut buf[y * stride + x * 4..][..src.len() * 4];
        for (px, &m) in row.chunks_exact_mut(4).zip(src) {
            px[3] = mul(px[3], scale[m as usize]);
        }
    })
}

/// Decodes one layer channel (compression code first) and hands each on-canvas row's
/// on-canvas columns to `put` with the row's index in the layer rectangle.
fn decode_channel(data: &[u8], at: &Placement, mut put: impl FnMut(u64, &[u8])) -> Result<()> {
    let mut r = Bytes::new(data, "layer channel data");
    if at.rows == 0 || at.cols == 0 {
        return Ok(());
    }
    match r.u16()? {
        0 => {
            let need = at.rows.saturating_mul(at.cols);
            if need > r.buf.len() as u64 {
                return Err(PsdReadError::Truncated("layer channel data"));
            }
            for row in at.r0..at.r1 {
                let start = (row * at.cols + at.c0) as usize;
                put(row, &r.buf[start..start + (at.c1 - at.c0) as usize]);
            }
            Ok(())
        }
        1 => {
            let counts = r.take(at.rows.saturating_mul(2).try_into().unwrap_or(usize::MAX))?;
            let mut out = vec![0; (at.c1 - at.c0) as usize];
            let mut pos = 0usize;
            for (row, n) in counts.chunks_exact(2).enumerate() {
                let row = row as u64;
                if row >= at.r1 {
                    break;
                }
                let n = u16::from_be_bytes([n[0], n[1]]) as usize;
                let src = r
                    .buf
                    .get(pos..pos + n)
                    .ok_or(PsdReadError::Truncated("layer channel data"))?;
                pos += n;
                if row >= at.r0 {
                    unpack_row(src, at.cols, at.c0, &mut out)?;
                    put(row, &out);
                }
            }
            Ok(())
        }
        2 | 3 => Err(zip_unsupported()),
        c => Err(invalid(format!("unknown compression {c}"))),
    }
}

fn zip_unsupported() -> PsdReadError {
    PsdReadError::Unsupported(
        "ZIP-compressed PSD image data is not supported: save the PSD with RLE or no compression"
            .into(),
    )
}

/// The merged image as an opaque RGBA canvas (first three channels, or the grey one).
pub(super) fn read_merged(data: &[u8], header: &Header) -> Result<RgbaImage> {
    let (w, h) = (header.width, header.height);
    let planes: &[&[usize]] = if header.gray {
        &[&[0, 1, 2]]
    } else {
        &[&[0], &[1], &[2]]
    };
    check_merged(data, header, planes.len())?;
    let mut rgba = RgbaImage::from_pixel(w, h, image::Rgba([0, 0, 0, 255]));
    let mut r = Bytes::new(data, "merged image data");
    let row_len = w as usize;
    let buf: &mut [u8] = &mut rgba;
    let mut put = |comps: &[usize], y: usize, src: &[u8]| {
        for (px, &v) in buf[y * row_len * 4..][..row_len * 4]
            .chunks_exact_mut(4)
            .zip(src)
        {
            for &c in comps {
                px[c] = v;
            }
        }
    };
    match r.u16()? {
        0 => {
            for comps in planes {
                let plane = r.take(row_len * h as usize)?;
                for (y, src) in plane.chunks_exact(row_len).enumerate() {
                    put(comps, y, src);
                }
            }
        }
        1 => {
            let counts = r.take(header.channels as usize * h as usize * 2)?;
            let mut counts = counts
                .chunks_exact(2)
                .map(|n| u16::from_be_bytes([n[0], n[1]]) as usize);
            let mut out = vec![0; row_len];
            let mut pos = 0usize;
            for comps in planes {
                for y in 0..h as usize {
                    let n = counts.next().unwrap_or(0);
                    let src = r
                        .buf
                        .get(pos..pos + n)
                        .ok_or(PsdReadError::Truncated("merged image data"))?;
                    pos += n;
                    unpack_row(src, w as u64, 0, &mut out)?;
                    put(comps, y, &out);
                }
            }
        }
        2 | 3 => return Err(zip_unsupported()),
        c => return Err(invalid(format!("unknown compression {c}"))),
    }
    Ok(rgba)
}

/// Fails when the merged image data cannot hold the rows of its first `planes` channels (raw,
/// or by the sum of their RLE row counts), before [`read_merged`] fills a canvas: a 50-byte
/// file declaring 8000×8000 made us fill 244 MiB first (bomb corpus, `tests/fuzz`).
fn check_merged(data: &[u8], header: &Header, planes: usize) -> Result<()> {
    let mut r = Bytes::new(data, "merged image data");
    let (w, h) = (header.width as u64, header.height as u64);
    let need = match r.u16()? {
        0 => planes as u64 * w * h,
        1 => {
            let counts = r.take(header.channels as usize * h as usize * 2)?;
            counts
                .chunks_exact(2)
                .take(planes * h as usize)
                .map(|n| u64::from(u16::from_be_bytes([n[0], n[1]])))
                .sum()
        }
        _ => 0, // read_merged names the compression
    };
    if need > r.buf.len() as u64 {
        return Err(PsdReadError::Truncated("merged image data"));
    }
    Ok(())
}
