//! PackBits (the RLE of PSD channel data): unpacks one row into exactly its declared width,
//! keeping only a requested column window, so a row never writes past its buffer.

use super::{invalid, PsdReadError, Result};

/// Unpacks one PackBits row of exactly `width` bytes, keeping bytes `skip..skip + out.len()`
/// in `out`. A packet that would run past `width` is invalid; input that ends first is
/// truncated; bytes after a complete row are ignored.
pub(super) fn unpack_row(mut src: &[u8], width: u64, skip: u64, out: &mut [u8]) -> Result<()> {
    const SHORT: PsdReadError = PsdReadError::Truncated("RLE row");
    let end = skip + out.len() as u64;
    let mut x = 0u64;
    while x < width {
        let (&n, rest) = src.split_first().ok_or(SHORT)?;
        src = rest;
        let n = n as i8;
        if n == -128 {
            continue; // no-op packet
        }
        let literal = n >= 0;
        let len = if literal {
            n as u64 + 1
        } else {
            (1 - n as i64) as u64
        };
        if x + len > width {
            return Err(invalid("an RLE row is longer than its layer"));
        }
        // The part of this packet that lands in `out`, if any.
        let (lo, hi) = (x.max(skip), (x + len).min(end));
        let keep = (lo < hi).then(|| (lo - skip) as usize..(hi - skip) as usize);
        if literal {
            let bytes = src.get(..len as usize).ok_or(SHORT)?;
            if let Some(keep) = keep {
                out[keep].copy_from_slice(&bytes[(lo - x) as usize..(hi - x) as usize]);
            }
            src = &src[len as usize..];
        } else {
            let (&v, rest) = src.split_first().ok_or(SHORT)?;
            src = rest;
            if let Some(keep) = keep {
                out[keep].fill(v);
            }
        }
        x += len;
    }
    Ok(())
}
