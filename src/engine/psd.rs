//! Photoshop (.psd) export: encodes a [`LayerStack`] as an 8-bit RGB PSD (version 1) with one
//! named raster layer per stack layer, each carrying its opacity and visibility, plus the merged
//! image that viewers without layer support show.
//!
//! Invariants: the output follows the Adobe "Photoshop File Formats" layout — header, empty
//! colour mode data, empty image resources, layer and mask information, merged image data —
//! in big-endian byte order. Layers are written bottom first (the stack's back-to-front order,
//! which is also PSD's). Every channel, layer and merged, is PackBits-compressed (RLE,
//! compression code 1) with a `u16` byte count per row. A layer's bounds are its [`Layer::bbox`] (zero-size
//! bounds for an empty layer) and its pixels are straight (not premultiplied) RGBA. The merged
//! image is the stack composited "over" black honouring each layer's opacity and visibility,
//! so with every layer visible at full opacity it equals [`LayerStack::composite`]. Names are
//! stored twice: an ASCII-folded Pascal string (at most 255 bytes) and the full name as a
//! UTF-16BE `luni` block, which readers prefer. Encoding is pure: it touches only its
//! arguments and never panics on valid-size input.

use super::layers::{Layer, LayerProps, LayerStack};

/// Largest width or height a version-1 PSD may have.
const MAX_SIDE: u32 = 30_000;

/// Why a stack could not be written as a PSD.
#[derive(Debug, thiserror::Error)]
pub enum PsdError {
    #[error("{props} layer settings given for {layers} layers")]
    PropsMismatch { layers: usize, props: usize },
    #[error(
        "layer {index} ({}x{} at {},{}) does not fit the {width}x{height} canvas",
        rect[2], rect[3], rect[0], rect[1]
    )]
    LayerSize {
        index: usize,
        /// The layer's `[x, y, w, h]`.
        rect: [u32; 4],
        width: u32,
        height: u32,
    },
    #[error("canvas {width}x{height} is outside the PSD limits (1..={MAX_SIDE} per side)")]
    CanvasSize { width: u32, height: u32 },
    #[error("{0} layers is more than a PSD can hold")]
    TooManyLayers(usize),
    #[error("the layers need more than 4 GiB, beyond what a PSD can hold")]
    TooLarge,
    #[error("opacity of layer {index} is not a number in 0..=1")]
    Opacity { index: usize },
}

impl PsdError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        "psd_encode"
    }
}

/// Encodes the stack (back to front) as an 8-bit RGB PSD: one named layer per layer with its
/// opacity and visibility, PackBits-compressed channels, layer bounds = the layer's bbox, and
/// the merged image in the image data section.
pub fn encode_psd(stack: &LayerStack, props: &[LayerProps]) -> Result<Vec<u8>, PsdError> {
    validate(stack, props)?;
    let (w, h) = (stack.width, stack.height);
    let mut out = Vec::new();

    // File header.
    out.extend_from_slice(b"8BPS");
    put_u16(&mut out, 1); // version
    out.extend_from_slice(&[0; 6]); // reserved
    put_u16(&mut out, 3); // channels
    put_u32(&mut out, h);
    put_u32(&mut out, w);
    put_u16(&mut out, 8); // depth
    put_u16(&mut out, 3); // colour mode: RGB
    put_u32(&mut out, 0); // colour mode data
    put_u32(&mut out, 0); // image resources

    // Layer and mask information.
    let mut layer_info = layer_info(stack, props)?;
    if layer_info.len() % 2 == 1 {
        layer_info.push(0);
    }
    let mut lmi = Vec::with_capacity(layer_info.len() + 8);
    put_u32(&mut lmi, len32(layer_info.len())?);
    lmi.extend_from_slice(&layer_info);
    put_u32(&mut lmi, 0); // global layer mask info
    put_u32(&mut out, len32(lmi.len())?);
    out.extend_from_slice(&lmi);

    // Merged image data: all rows of R, then G, then B.
    let merged = merged_rgb(stack, props);
    let planes: Vec<Vec<Vec<u8>>> = (0..3)
        .map(|c| {
            merged
                .chunks_exact(w as usize * 3)
                .map(|row| packbits(&row.iter().skip(c).step_by(3).copied().collect::<Vec<_>>()))
                .collect()
        })
        .collect();
    put_u16(&mut out, 1);
    for row in planes.iter().flatten() {
        put_u16(&mut out, row.len() as u16);
    }
    for row in planes.iter().flatten() {
        out.extend_from_slice(row);
    }
    Ok(out)
}

fn validate(stack: &LayerStack, props: &[LayerProps]) -> Result<(), PsdError> {
    let (width, height) = (stack.width, stack.height);
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(PsdError::CanvasSize { width, height });
    }
    if props.len() != stack.layers.len() {
        return Err(PsdError::PropsMismatch {
            layers: stack.layers.len(),
            props: props.len(),
        });
    }
    if stack.layers.len() > i16::MAX as usize {
        return Err(PsdError::TooManyLayers(stack.layers.len()));
    }
    for (index, (layer, p)) in stack.layers.iter().zip(props).enumerate() {
        if !layer.fits(width, height) {
            return Err(PsdError::LayerSize {
                index,
                rect: layer.rect(),
                width,
                height,
            });
        }
        if !(0.0..=1.0).contains(&p.opacity) {
            return Err(PsdError::Opacity { index });
        }
    }
    Ok(())
}

/// The layer info section body (without its length): count, records, channel image data.
fn layer_info(stack: &LayerStack, props: &[LayerProps]) -> Result<Vec<u8>, PsdError> {
    let mut records = Vec::new();
    let mut data = Vec::new();
    for (layer, p) in stack.layers.iter().zip(props) {
        let [x, y, bw, bh] = layer.bbox();
        let channels = layer_channels(layer, [x, y, bw, bh]);
        for v in [y, x, y + bh, x + bw] {
            put_u32(&mut records, v);
        }
        put_u16(&mut records, 4);
        for (id, ch) in [-1i16, 0, 1, 2].into_iter().zip(&channels) {
            records.extend_from_slice(&id.to_be_bytes());
            put_u32(&mut records, len32(ch.len())?);
            data.extend_from_slice(ch);
        }
        records.extend_from_slice(b"8BIMnorm");
        records.push((p.opacity * 255.0).round() as u8);
        records.push(0); // clipping: base
        records.push(if p.visible { 0 } else { 0x02 });
        records.push(0); // filler
        let extra = extra_data(&layer.name)?;
        put_u32(&mut records, len32(extra.len())?);
        records.extend_from_slice(&extra);
    }
    let mut out = Vec::with_capacity(2 + records.len() + data.len());
    put_u16(&mut out, stack.layers.len() as u16);
    out.extend_from_slice(&records);
    out.extend_from_slice(&data);
    Ok(out)
}

/// Channel image data (compression code included) for alpha, R, G, B within `bbox`.
fn layer_channels(layer: &Layer, [x, y, bw, bh]: [u32; 4]) -> [Vec<u8>; 4] {
    // Source component per channel id -1, 0, 1, 2.
    [3usize, 0, 1, 2].map(|comp| {
        let rows: Vec<Vec<u8>> = (y..y + bh)
            .map(|yy| {
                let row: Vec<u8> = (x..x + bw).map(|xx| layer.pixel(xx, yy).0[comp]).collect();
                packbits(&row)
            })
            .collect();
        let mut ch = Vec::new();
        put_u16(&mut ch, 1);
        for r in &rows {
            put_u16(&mut ch, r.len() as u16);
        }
        for r in &rows {
            ch.extend_from_slice(r);
        }
        ch
    })
}

/// Layer mask data, blending ranges, padded Pascal name and the `luni` block.
fn extra_data(name: &str) -> Result<Vec<u8>, PsdError> {
    let mut out = Vec::new();
    put_u32(&mut out, 0); // layer mask data
    put_u32(&mut out, 0); // blending ranges
    let pascal = ascii_fold(name);
    out.push(pascal.len() as u8);
    out.extend_from_slice(&pascal);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    let units: Vec<u16> = name.encode_utf16().collect();
    let mut luni = Vec::with_capacity(4 + units.len() * 2);
    put_u32(&mut luni, len32(units.len())?);
    for u in units {
        luni.extend_from_slice(&u.to_be_bytes());
    }
    while luni.len() % 4 != 0 {
        luni.push(0);
    }
    out.extend_from_slice(b"8BIMluni");
    put_u32(&mut out, len32(luni.len())?);
    out.extend_from_slice(&luni);
    Ok(out)
}

/// Printable ASCII form of `name` for the legacy Pascal name: common Latin letters lose their
/// marks, anything else becomes `_`; cut to 255 bytes.
fn ascii_fold(name: &str) -> Vec<u8> {
    const FOLDS: [(&str, u8); 19] = [
        ("àáâãäå", b'a'),
        ("ÀÁÂÃÄÅ", b'A'),
        ("èéêë", b'e'),
        ("ÈÉÊË", b'E'),
        ("ìíîï", b'i'),
        ("ÌÍÎÏ", b'I'),
        ("òóôõöø", b'o'),
        ("ÒÓÔÕÖØ", b'O'),
        ("ùúûü", b'u'),
        ("ÙÚÛÜ", b'U'),
        ("ç", b'c'),
        ("Ç", b'C'),
        ("ñ", b'n'),
        ("Ñ", b'N'),
        ("ýÿ", b'y'),
        ("Ý", b'Y'),
        ("ß", b's'),
        ("\u{2018}\u{2019}", b'\''),
        ("\u{201c}\u{201d}", b'"'),
    ];
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c as u8
            } else {
                FOLDS
                    .iter()
                    .find(|(set, _)| set.contains(c))
                    .map_or(b'_', |(_, to)| *to)
            }
        })
        .take(255)
        .collect()
}

/// The stack composited "over" black with each layer's opacity and visibility, as RGB bytes.
/// Uses the same arithmetic as [`LayerStack::composite`] so the two agree at full opacity.
fn merged_rgb(stack: &LayerStack, props: &[LayerProps]) -> Vec<u8> {
    let n = stack.width as usize * stack.height as usize;
    let mut acc = vec![0f32; n * 3];
    for (layer, p) in stack.layers.iter().zip(props) {
        if !p.visible {
            continue;
        }
        for (i, px) in layer.canvas_pixels(stack.width) {
            let a = px[3] as f32 / 255.0 * p.opacity;
            if a == 0.0 {
                continue;
            }
            for c in 0..3 {
                let v = &mut acc[i * 3 + c];
                *v = px[c] as f32 / 255.0 * a + *v * (1.0 - a);
            }
        }
    }
    acc.iter()
        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// PackBits (Apple RLE): runs of 3+ equal bytes become repeat packets, the rest literals.
fn packbits(row: &[u8]) -> Vec<u8> {
    let n = row.len();
    let mut out = Vec::with_capacity(n + n / 128 + 1);
    let mut i = 0;
    while i < n {
        let mut run = 1;
        while i + run < n && run < 128 && row[i + run] == row[i] {
            run += 1;
        }
        if run >= 3 {
            out.push((257 - run) as u8);
            out.push(row[i]);
            i += run;
            continue;
        }
        let start = i;
        while i < n && i - start < 128 {
            if i + 2 < n && row[i] == row[i + 1] && row[i] == row[i + 2] {
                break;
            }
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&row[start..i]);
    }
    out
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A section length as PSD's `u32`; longer sections need the PSB format, which we don't write.
fn len32(n: usize) -> Result<u32, PsdError> {
    u32::try_from(n).map_err(|_| PsdError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::layers::LayerKind;
    use image::{Rgba, RgbaImage};

    fn unpackbits(mut data: &[u8], want: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < want {
            let n = data[0] as i8;
            if n >= 0 {
                let len = n as usize + 1;
                out.extend_from_slice(&data[1..1 + len]);
                data = &data[1 + len..];
            } else if n != -128 {
                out.extend(std::iter::repeat_n(data[1], (1 - n as isize) as usize));
                data = &data[2..];
            } else {
                data = &data[1..];
            }
        }
        assert!(data.is_empty(), "trailing packbits bytes");
        out
    }

    #[test]
    fn packbits_round_trips() {
        let mut noisy: Vec<u8> = (0..700u32).map(|i| (i * 7919 % 251) as u8).collect();
        noisy.extend(std::iter::repeat_n(9, 300));
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![1],
            vec![1, 1],
            vec![1, 1, 1],
            vec![1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5],
            vec![0; 129],
            (0..=255).collect(),
            noisy,
        ];
        for row in cases {
            let packed = packbits(&row);
            assert_eq!(unpackbits(&packed, row.len()), row);
            assert!(packed.len() <= row.len() + row.len().div_ceil(128));
        }
        assert_eq!(packbits(&[7; 10]), vec![(257 - 10) as u8, 7]);
    }

    struct Reader<'a>(&'a [u8]);
    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            a
        }
        fn u8(&mut self) -> u8 {
            self.take(1)[0]
        }
        fn u16(&mut self) -> u16 {
            u16::from_be_bytes(self.take(2).try_into().unwrap())
        }
        fn u32(&mut self) -> u32 {
            u32::from_be_bytes(self.take(4).try_into().unwrap())
        }
    }

    struct Parsed {
        width: u32,
        height: u32,
        names: Vec<String>,
        pascal: Vec<String>,
        opacity: Vec<u8>,
        flags: Vec<u8>,
        rects: Vec<[u32; 4]>,
        /// Per layer: channel (id, packed data incl. compression code).
        channels: Vec<Vec<(i16, Vec<u8>)>>,
        merged: Vec<u8>,
    }

    fn parse(bytes: &[u8]) -> Parsed {
        let mut r = Reader(bytes);
        assert_eq!(r.take(4), b"8BPS");
        assert_eq!(r.u16(), 1);
        r.take(6);
        assert_eq!(r.u16(), 3);
        let height = r.u32();
        let width = r.u32();
        assert_eq!((r.u16(), r.u16()), (8, 3));
        assert_eq!(r.u32(), 0);
        assert_eq!(r.u32(), 0);
        let lmi_len = r.u32() as usize;
        let mut lmi = Reader(r.take(lmi_len));
        let li_len = lmi.u32() as usize;
        let mut li = Reader(lmi.take(li_len));
        assert_eq!(lmi.u32(), 0, "global mask info");
        assert!(lmi.0.is_empty());
        let count = li.u16() as usize;
        let mut p = Parsed {
            width,
            height,
            names: vec![],
            pascal: vec![],
            opacity: vec![],
            flags: vec![],
            rects: vec![],
            channels: vec![],
            merged: vec![],
        };
        let mut lens = Vec::new();
        for _ in 0..count {
            p.rects.push([li.u32(), li.u32(), li.u32(), li.u32()]);
            let nch = li.u16();
            let chans: Vec<(i16, usize)> = (0..nch)
                .map(|_| (li.u16() as i16, li.u32() as usize))
                .collect();
            lens.push(chans);
            assert_eq!(li.take(8), b"8BIMnorm");
            p.opacity.push(li.u8());
            assert_eq!(li.u8(), 0);
            p.flags.push(li.u8());
            li.u8();
            let extra_len = li.u32() as usize;
            let mut ex = Reader(li.take(extra_len));
            assert_eq!((ex.u32(), ex.u32()), (0, 0));
            let n = ex.u8() as usize;
            p.pascal
                .push(String::from_utf8(ex.take(n).to_vec()).unwrap());
            ex.take((4 - (n + 1) % 4) % 4);
            assert_eq!(ex.take(8), b"8BIMluni");
            let len = ex.u32() as usize;
            let mut lu = Reader(ex.take(len));
            let chars = lu.u32() as usize;
            let units: Vec<u16> = (0..chars).map(|_| lu.u16()).collect();
            p.names.push(String::from_utf16(&units).unwrap());
            assert!(ex.0.is_empty());
        }
        for chans in lens {
            p.channels.push(
                chans
                    .into_iter()
                    .map(|(id, len)| (id, li.take(len).to_vec()))
                    .collect(),
            );
        }
        assert!(li.0.len() <= 1, "layer info padding");
        assert_eq!(r.u16(), 1);
        let rows = height as usize * 3;
        let counts: Vec<usize> = (0..rows).map(|_| r.u16() as usize).collect();
        let mut planes = Vec::new();
        for c in counts {
            planes.extend(unpackbits(r.take(c), width as usize));
        }
        assert!(r.0.is_empty());
        let n = (width * height) as usize;
        p.merged = (0..n)
            .flat_map(|i| [planes[i], planes[n + i], planes[2 * n + i]])
            .collect();
        p
    }

    /// Unpacks one RLE layer channel of `h` rows of `w` bytes.
    fn channel_pixels(ch: &[u8], w: usize, h: usize) -> Vec<u8> {
        let mut r = Reader(ch);
        assert_eq!(r.u16(), 1);
        let counts: Vec<usize> = (0..h).map(|_| r.u16() as usize).collect();
        let mut out = Vec::new();
        for c in counts {
            out.extend(unpackbits(r.take(c), w));
        }
        assert!(r.0.is_empty());
        out
    }

    pub(super) fn sample_stack() -> LayerStack {
        let (w, h) = (6, 5);
        let bg = RgbaImage::from_fn(w, h, |x, y| Rgba([(x * 40) as u8, (y * 50) as u8, 90, 255]));
        let mut obj = RgbaImage::new(w, h);
        for (x, y) in [(1, 1), (2, 1), (3, 2), (2, 3)] {
            obj.put_pixel(x, y, Rgba([200, 10 * x as u8, 30, 128 + 20 * y as u8]));
        }
        let mut text = RgbaImage::new(w, h);
        text.put_pixel(5, 4, Rgba([255, 255, 255, 255]));
        let layer = |name: &str, kind, rgba| Layer {
            name: name.into(),
            kind,
            origin: [0, 0],
            rgba,
            text: None,
        };
        LayerStack {
            width: w,
            height: h,
            layers: vec![
                layer("Background", LayerKind::Background, bg),
                layer("Object 1", LayerKind::Object, obj),
                // held as its box (one pixel), as documents hold layers
                layer("Texte: Café", LayerKind::Text, text).cropped(),
            ],
        }
    }

    #[test]
    fn encodes_layers_names_props_and_merged() {
        let stack = sample_stack();
        let props = [
            LayerProps::default(),
            LayerProps {
                opacity: 0.5,
                visible: true,
            },
            LayerProps {
                opacity: 1.0,
                visible: false,
            },
        ];
        let p = parse(&encode_psd(&stack, &props).unwrap());
        assert_eq!((p.width, p.height), (6, 5));
        assert_eq!(p.names, ["Background", "Object 1", "Texte: Café"]);
        assert_eq!(p.pascal, ["Background", "Object 1", "Texte: Cafe"]);
        assert_eq!(p.opacity, [255, 128, 255]);
        assert_eq!(p.flags.iter().map(|f| f & 2).collect::<Vec<_>>(), [0, 0, 2]);
        // top, left, bottom, right
        assert_eq!(p.rects, [[0, 0, 5, 6], [1, 1, 4, 4], [4, 5, 5, 6]]);

        let obj = &stack.layers[1].rgba;
        let chans = &p.channels[1];
        assert_eq!(chans.iter().map(|c| c.0).collect::<Vec<_>>(), [-1, 0, 1, 2]);
        for (k, comp) in [3usize, 0, 1, 2].into_iter().enumerate() {
            let got = channel_pixels(&chans[k].1, 3, 3);
            let want: Vec<u8> = (1..4)
                .flat_map(|y| (1..4).map(move |x| obj.get_pixel(x, y).0[comp]))
                .collect();
            assert_eq!(got, want, "channel {}", chans[k].0);
        }

        // Merged: hidden text layer left out, object at half opacity.
        let mut expect = stack.clone();
        expect.layers.pop();
        for px in expect.layers[1].rgba.pixels_mut() {
            px.0[3] = (px.0[3] as f32 * 0.5).round() as u8;
        }
        let want = expect.composite();
        let diff = p
            .merged
            .iter()
            .zip(want.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(diff <= 1, "merged differs by {diff}");
        assert_eq!(p.merged.len(), want.as_raw().len());
    }

    #[test]
    fn full_opacity_merged_equals_composite_and_empty_layer_is_zero_size() {
        let mut stack = sample_stack();
        stack.layers[2].origin = [0, 0];
        stack.layers[2].rgba = RgbaImage::new(6, 5);
        let props = [LayerProps::default(); 3];
        let p = parse(&encode_psd(&stack, &props).unwrap());
        assert_eq!(p.merged, stack.composite().into_raw());
        assert_eq!(p.rects[2], [0, 0, 0, 0]);
        assert!(p.channels[2].iter().all(|(_, d)| d == &[0, 1]));
    }

    #[test]
    fn rejects_bad_input() {
        let stack = sample_stack();
        let err = encode_psd(&stack, &[LayerProps::default(); 2]).unwrap_err();
        assert!(matches!(err, PsdError::PropsMismatch { .. }));
        assert_eq!(err.code(), "psd_encode");
        let mut bad = stack.clone();
        bad.layers[1].origin = [4, 3];
        bad.layers[1].rgba = RgbaImage::new(3, 3);
        let err = encode_psd(&bad, &[LayerProps::default(); 3]).unwrap_err();
        assert!(matches!(err, PsdError::LayerSize { index: 1, .. }));
        let nan = LayerProps {
            opacity: f32::NAN,
            visible: true,
        };
        let err = encode_psd(&stack, &[nan; 3]).unwrap_err();
        assert!(matches!(err, PsdError::Opacity { index: 0 }));
        assert_eq!(ascii_fold("Ünïcødé ✓"), b"Unicode _");
    }
}
