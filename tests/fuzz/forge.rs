//! Byte-level forgers for hostile files: PNG chunks with fixed-up CRCs, patched JPEG and WebP
//! headers, minimal TIFF, GIF and BMP writers whose sizes and lengths can lie, a minimal PSD
//! writer whose every count and length can lie, and a raw ZIP writer whose declared sizes can
//! lie. Deterministic, no randomness.

use std::io::Write;

use flate2::write::{DeflateEncoder, ZlibEncoder};
use flate2::{Compress, Compression, FlushCompress};

/// A PNG chunk: length, type, data, CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

/// A PNG of `w`×`h` (colour type, bit depth) whose IDAT is `idat`, verbatim.
pub fn png(w: u32, h: u32, color: u8, depth: u8, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", idat));
    out.extend(png_chunk(b"IEND", b""));
    out
}

/// A zlib stream of `n` zero bytes (what a blank image's rows filter to).
pub fn zlib_zeros(n: usize) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    let block = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(block.len());
        z.write_all(&block[..k]).unwrap();
        left -= k;
    }
    z.finish().unwrap()
}

/// A raw deflate stream that inflates to `16 MiB × repeats` zero bytes, built by repeating
/// one sync-flushed (non-final) segment: gigabytes for a few hundred KB, in milliseconds.
pub fn deflate_zeros_repeated(repeats: usize) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let input = vec![0u8; 16 << 20];
    let mut seg = Vec::with_capacity(64 << 10);
    c.compress_vec(&input, &mut seg, FlushCompress::Sync)
        .unwrap();
    assert_eq!(
        c.total_in(),
        input.len() as u64,
        "one call compresses the segment"
    );
    let mut out = Vec::with_capacity(seg.len() * repeats + 2);
    for _ in 0..repeats {
        out.extend_from_slice(&seg);
    }
    out.extend_from_slice(&[0x03, 0x00]); // a final, empty, fixed-Huffman block
    out
}

/// Raw deflate of `data`.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut d = DeflateEncoder::new(Vec::new(), Compression::best());
    d.write_all(data).unwrap();
    d.finish().unwrap()
}

/// Rewrites the first SOFn segment of a JPEG to declare `w`×`h`.
pub fn jpeg_redeclare(mut jpeg: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
    let at = (2..jpeg.len() - 9)
        .find(|&i| jpeg[i] == 0xFF && matches!(jpeg[i + 1], 0xC0..=0xC2))
        .expect("a SOF marker");
    jpeg[at + 5..at + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[at + 7..at + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

/// A WebP whose VP8X canvas is `w`×`h` (24-bit fields) over a real image's chunks.
pub fn webp_vp8x(webp: &[u8], w: u32, h: u32) -> Vec<u8> {
    let mut vp8x = vec![0u8; 4]; // no flags + reserved
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X");
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&vp8x);
    body.extend_from_slice(&webp[12..]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// A one-page, one-strip little-endian TIFF with its directory first: `w`×`h`, `samples` of
/// `bits` each, `photometric` and `compression` as given, `strip` as the strip data and
/// `declared` as its byte count (which may lie).
#[allow(clippy::too_many_arguments)]
pub fn tiff(
    w: u32,
    h: u32,
    bits: u16,
    samples: u16,
    photometric: u16,
    compression: u16,
    strip: &[u8],
    declared: u32,
) -> Vec<u8> {
    let layout = TiffLayout {
        big_endian: false,
        size: (w, h),
        bits,
        samples,
        photometric,
        compression,
    };
    layout.write(strip, declared)
}

/// The directory of a [`tiff`]; `big_endian` writes `MM` files.
pub struct TiffLayout {
    pub big_endian: bool,
    pub size: (u32, u32),
    pub bits: u16,
    pub samples: u16,
    pub photometric: u16,
    pub compression: u16,
}

impl TiffLayout {
    /// The file, with `strip` (16-bit samples already in the file's byte order) declared as
    /// `declared` bytes long.
    pub fn write(&self, strip: &[u8], declared: u32) -> Vec<u8> {
        const ENTRIES: u32 = 9;
        let be = self.big_endian;
        let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        // SHORT values sit in the first bytes of the 4-byte value field, in either order.
        let shorts = |a: u16, b: u16| {
            let (a, b) = (u16b(a), u16b(b));
            [a[0], a[1], b[0], b[1]]
        };
        let bps_at = 8 + 2 + 12 * ENTRIES + 4;
        let data_at = bps_at + 2 * u32::from(self.samples);
        let (w, h) = self.size;
        let bits = match self.samples {
            1 => shorts(self.bits, 0),
            2 => shorts(self.bits, self.bits),
            _ => u32b(bps_at),
        };
        let entries: [(u16, u16, u32, [u8; 4]); ENTRIES as usize] = [
            (256, 4, 1, u32b(w)),
            (257, 4, 1, u32b(h)),
            (258, 3, u32::from(self.samples), bits),
            (259, 3, 1, shorts(self.compression, 0)),
            (262, 3, 1, shorts(self.photometric, 0)),
            (273, 4, 1, u32b(data_at)),
            (277, 3, 1, shorts(self.samples, 0)),
            (278, 4, 1, u32b(h)),
            (279, 4, 1, u32b(declared)),
        ];
        let mut out = if be {
            b"MM\0*".to_vec()
        } else {
            b"II*\0".to_vec()
        };
        out.extend_from_slice(&u32b(8));
        out.extend_from_slice(&u16b(ENTRIES as u16));
        for (tag, ty, count, value) in entries {
            out.extend_from_slice(&u16b(tag));
            out.extend_from_slice(&u16b(ty));
            out.extend_from_slice(&u32b(count));
            out.extend_from_slice(&value);
        }
        out.extend_from_slice(&[0; 4]);
        for _ in 0..self.samples {
            out.extend_from_slice(&u16b(self.bits));
        }
        out.extend_from_slice(strip);
        out
    }
}

/// A GIF89a with a `screen`, a 2-colour global table and one `frame` at 0,0 whose LZW data
/// (minimum code size 2) is `lzw`, in 255-byte sub-blocks.
pub fn gif(screen: (u16, u16), frame: (u16, u16), lzw: &[u8]) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&screen.0.to_le_bytes());
    g.extend_from_slice(&screen.1.to_le_bytes());
    g.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    g.extend_from_slice(&[0x2C, 0, 0, 0, 0]);
    g.extend_from_slice(&frame.0.to_le_bytes());
    g.extend_from_slice(&frame.1.to_le_bytes());
    g.extend_from_slice(&[0, 2]);
    for block in lzw.chunks(255) {
        g.push(block.len() as u8);
        g.extend_from_slice(block);
    }
    g.extend_from_slice(&[0, 0x3B]);
    g
}

/// One pixel of GIF LZW data (clear, index 0, end) at minimum code size 2.
pub const GIF_ONE_PIXEL: &[u8] = &[0x44, 0x01];

/// A BMP with a 40-byte info header: `w`×`h` (negative: top-down), `bits` per pixel,
/// `compression` (0 none, 1 RLE8, 2 RLE4), a `palette` of BGRA entries and `data` as pixels.
pub fn bmp(
    w: i32,
    h: i32,
    bits: u16,
    compression: u32,
    palette: &[[u8; 4]],
    data: &[u8],
) -> Vec<u8> {
    let offset = 14 + 40 + 4 * palette.len() as u32;
    let mut b = b"BM".to_vec();
    b.extend_from_slice(&(offset + data.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(&compression.to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&(palette.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    for c in palette {
        b.extend_from_slice(c);
    }
    b.extend_from_slice(data);
    b
}

/// One layer record of [`psd`]: bounds (top, left, bottom, right) and its channels as
/// `(id, declared length, data)`; the declared length may lie about the data.
pub struct PsdLayer {
    pub rect: [i32; 4],
    pub channels: Vec<(i16, u32, Vec<u8>)>,
}

/// An 8-bit RGB PSD, `channels` declared in the header, with `layers` (count as declared,
/// which may exceed the records given) and `merged` as the image data section.
pub fn psd(
    w: u32,
    h: u32,
    channels: u16,
    count: i16,
    layers: &[PsdLayer],
    merged: &[u8],
) -> Vec<u8> {
    let mut out = b"8BPS\0\x01\0\0\0\0\0\0".to_vec();
    out.extend_from_slice(&channels.to_be_bytes());
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&w.to_be_bytes());
    out.extend_from_slice(&8u16.to_be_bytes());
    out.extend_from_slice(&3u16.to_be_bytes());
    out.extend_from_slice(&[0; 8]); // colour mode data, image resources
    let mut info = count.to_be_bytes().to_vec();
    for l in layers {
        for v in l.rect {
            info.extend_from_slice(&v.to_be_bytes());
        }
        info.extend_from_slice(&(l.channels.len() as u16).to_be_bytes());
        for (id, len, _) in &l.channels {
            info.extend_from_slice(&id.to_be_bytes());
            info.extend_from_slice(&len.to_be_bytes());
        }
        info.extend_from_slice(b"8BIMnorm\xFF\0\0\0");
        let extra = [0, 0, 0, 0, 0, 0, 0, 0, 3, b'b', b'o', b'm'];
        info.extend_from_slice(&(extra.len() as u32).to_be_bytes());
        info.extend_from_slice(&extra);
    }
    for l in layers {
        for (_, _, data) in &l.channels {
            info.extend_from_slice(data);
        }
    }
    let mut lmi = (info.len() as u32).to_be_bytes().to_vec();
    lmi.extend(info);
    lmi.extend_from_slice(&[0; 4]); // global layer mask info
    out.extend_from_slice(&(lmi.len() as u32).to_be_bytes());
    out.extend(lmi);
    out.extend_from_slice(merged);
    out
}

/// One entry of [`zip`]: name, method (0 stored, 8 deflated), data as stored, and the
/// uncompressed size and CRC to declare.
pub struct ZipEntry<'a> {
    pub name: &'a str,
    pub method: u16,
    pub data: &'a [u8],
    pub size: u32,
    pub crc: u32,
}

impl<'a> ZipEntry<'a> {
    /// A stored entry that tells the truth.
    pub fn stored(name: &'a str, data: &'a [u8]) -> Self {
        Self {
            name,
            method: 0,
            data,
            size: data.len() as u32,
            crc: crc32fast::hash(data),
        }
    }
}

/// A ZIP archive with exactly the headers given: sizes and CRCs are declared, not computed.
pub fn zip(entries: &[ZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&e.method.to_le_bytes());
            v.extend_from_slice(&[0, 0, 0x21, 0]); // time, date (1980-01-01)
            v.extend_from_slice(&e.crc.to_le_bytes());
            v.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            v.extend_from_slice(&e.size.to_le_bytes());
            v.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(b"PK\x03\x04");
        common(&mut out);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(e.data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&[0; 4]); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// `stack.xml` for a `w`×`h` canvas listing `layers` (src) top first, inside `depth` nested
/// `<stack>` elements.
pub fn stack_xml(w: u32, h: u32, layers: &[&str], depth: usize) -> Vec<u8> {
    let mut xml = format!("<?xml version=\"1.0\"?><image version=\"0.0.3\" w=\"{w}\" h=\"{h}\">");
    xml.push_str(&"<stack>".repeat(depth.max(1)));
    for src in layers {
        xml.push_str(&format!("<layer name=\"l\" src=\"{src}\"/>"));
    }
    xml.push_str(&"</stack>".repeat(depth.max(1)));
    xml.push_str("</image>");
    xml.into_bytes()
}

/// An ORA of `stack.xml` and `files`, all stored, sizes honest.
pub fn ora(xml: &[u8], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut entries = vec![
        ZipEntry::stored("mimetype", b"image/openraster"),
        ZipEntry::stored("stack.xml", xml),
    ];
    entries.extend(files.iter().map(|(n, d)| ZipEntry::stored(n, d)));
    zip(&entries)
}
