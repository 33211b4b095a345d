//! Byte-level forgers for hostile files: PNG chunks with fixed-up CRCs, patched JPEG and WebP
//! headers, foreign-format headers, a minimal PSD writer whose every count and length can lie,
//! and a raw ZIP writer whose declared sizes can lie. Deterministic, no randomness.

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

/// GIF, BMP and TIFF headers declaring huge images: formats we do not accept at all.
pub fn foreign_bombs() -> Vec<(&'static str, Vec<u8>)> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0, 0]);
    gif.extend_from_slice(&[0; 6]);
    gif.extend_from_slice(b",\0\0\0\0\xFF\xFF\xFF\xFF\0\x02\x02\x44\x01\0;");
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0x46, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 40, 0, 0, 0]);
    bmp.extend_from_slice(&100_000i32.to_le_bytes());
    bmp.extend_from_slice(&100_000i32.to_le_bytes());
    bmp.extend_from_slice(&[1, 0, 24, 0, 0, 0, 0, 0]);
    bmp.extend_from_slice(&[0; 20]);
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&2u16.to_le_bytes());
    for (tag, v) in [(256u16, 100_000u32), (257, 100_000)] {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&4u16.to_le_bytes()); // LONG
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&v.to_le_bytes());
    }
    tiff.extend_from_slice(&[0; 4]);
    vec![
        ("gif_65535x65535", gif),
        ("bmp_100000x100000", bmp),
        ("tiff_100000x100000", tiff),
    ]
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
