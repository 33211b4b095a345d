//! Tests of the PSD reader, on files built by hand with a small writer below, on our own
//! encoder's output and on psd-tools fixtures under `tests/fixtures/psd/`.

use super::pixels::mul;
use super::records::{pascal_name, MAC_ROMAN};
use super::rle::unpack_row;
use super::*;
use crate::engine::psd::encode_psd;
use image::Rgba;

// ---- A small PSD writer for hand-built files. ----

struct TestLayer {
    /// top, left, bottom, right
    rect: [i32; 4],
    /// Channel id and its data, compression code included.
    channels: Vec<(i16, Vec<u8>)>,
    opacity: u8,
    flags: u8,
    /// The layer mask data block's body.
    mask: Vec<u8>,
    pascal: Vec<u8>,
    blocks: Vec<([u8; 4], Vec<u8>)>,
    /// Raw bytes after the blocks.
    tail: Vec<u8>,
}

fn layer(rect: [i32; 4], name: &str, channels: Vec<(i16, Vec<u8>)>) -> TestLayer {
    TestLayer {
        rect,
        channels,
        opacity: 255,
        flags: 0,
        mask: vec![],
        pascal: name.as_bytes().to_vec(),
        blocks: vec![],
        tail: vec![],
    }
}

/// A group record: `kind` 1/2 = folder, 3 = divider.
fn section(kind: u32, name: &str) -> TestLayer {
    let mut l = layer([0; 4], name, vec![(-1, vec![0, 0]), (0, vec![0, 0])]);
    l.blocks.push((*b"lsct", kind.to_be_bytes().to_vec()));
    l
}

/// A tagged block, unpadded.
fn block(key: &[u8; 4], data: &[u8]) -> Vec<u8> {
    [b"8BIM", &key[..], &(data.len() as u32).to_be_bytes(), data].concat()
}

fn raw(data: &[u8]) -> Vec<u8> {
    [&[0, 0][..], data].concat()
}

/// RLE channel data: one literal packet per (at most 128-byte) chunk of each row.
fn rle(rows: &[Vec<u8>]) -> Vec<u8> {
    let packed: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| {
            r.chunks(128)
                .flat_map(|c| [&[c.len() as u8 - 1][..], c].concat())
                .collect()
        })
        .collect();
    let mut out = vec![0, 1];
    for p in &packed {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
    }
    out.extend(packed.concat());
    out
}

fn layer_info(layers: &[TestLayer]) -> Vec<u8> {
    let mut out = (layers.len() as i16).to_be_bytes().to_vec();
    for l in layers {
        for v in l.rect {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&(l.channels.len() as u16).to_be_bytes());
        for (id, data) in &l.channels {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        }
        out.extend_from_slice(b"8BIMnorm");
        out.extend_from_slice(&[l.opacity, 0, l.flags, 0]);
        let mut extra = (l.mask.len() as u32).to_be_bytes().to_vec();
        extra.extend_from_slice(&l.mask);
        extra.extend_from_slice(&[0; 4]); // blending ranges
        extra.push(l.pascal.len() as u8);
        extra.extend_from_slice(&l.pascal);
        while !extra.len().is_multiple_of(4) {
            extra.push(0);
        }
        for (key, data) in &l.blocks {
            extra.extend(block(key, data));
        }
        extra.extend_from_slice(&l.tail);
        out.extend_from_slice(&(extra.len() as u32).to_be_bytes());
        out.extend(extra);
    }
    for l in layers {
        for (_, data) in &l.channels {
            out.extend_from_slice(data);
        }
    }
    out
}

/// A whole file: header, empty colour data and resources, `lmi` as the layer and mask
/// section body, then the merged image data.
fn psd(w: u32, h: u32, mode: u16, channels: u16, lmi: &[u8], merged: &[u8]) -> Vec<u8> {
    let mut out = b"8BPS\0\x01\0\0\0\0\0\0".to_vec();
    out.extend_from_slice(&channels.to_be_bytes());
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&w.to_be_bytes());
    out.extend_from_slice(&8u16.to_be_bytes());
    out.extend_from_slice(&mode.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(lmi.len() as u32).to_be_bytes());
    out.extend_from_slice(lmi);
    out.extend_from_slice(merged);
    out
}

/// A layer and mask section holding `info` and an empty global mask.
fn lmi(info: &[u8]) -> Vec<u8> {
    let mut out = (info.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(info);
    out.extend_from_slice(&[0; 4]);
    out
}

fn rgb_psd(w: u32, h: u32, layers: &[TestLayer]) -> Vec<u8> {
    let merged = raw(&vec![0; (w * h * 3) as usize]);
    psd(w, h, 3, 3, &lmi(&layer_info(layers)), &merged)
}

fn decode(bytes: &[u8]) -> Result<(LayerStack, Vec<LayerProps>)> {
    decode_psd(bytes, &PsdLimits::default())
}

fn names(stack: &LayerStack) -> Vec<&str> {
    stack.layers.iter().map(|l| l.name.as_str()).collect()
}

fn kinds(stack: &LayerStack) -> Vec<LayerKind> {
    stack.layers.iter().map(|l| l.kind).collect()
}

fn px(stack: &LayerStack, i: usize, x: u32, y: u32) -> [u8; 4] {
    stack.layers[i].rgba.get_pixel(x, y).0
}

// ---- Round trip through our own encoder. ----

fn sample_stack() -> (LayerStack, [LayerProps; 3]) {
    let (w, h) = (9, 7);
    let bg = RgbaImage::from_fn(w, h, |x, y| Rgba([(x * 25) as u8, (y * 30) as u8, 77, 255]));
    // Varied alpha, including alpha-0 pixels with colour inside and outside the bbox.
    let obj = RgbaImage::from_fn(w, h, |x, y| {
        let a = if (2..7).contains(&x) && (1..6).contains(&y) {
            ((x * 60 + y * 17) % 256) as u8
        } else {
            0
        };
        Rgba([200, (x * 20) as u8, (y * 9) as u8, a])
    });
    let mut text = RgbaImage::new(w, h);
    for x in 3..8 {
        text.put_pixel(x, 6, Rgba([255, 250, 245, 255]));
    }
    let layer = |name: &str, kind, rgba| Layer {
        name: name.into(),
        kind,
        origin: [0, 0],
        rgba,
        text: None,
    };
    let stack = LayerStack {
        width: w,
        height: h,
        layers: vec![
            layer("Background", LayerKind::Background, bg),
            layer("Object 1", LayerKind::Object, obj),
            layer("Text: Hello", LayerKind::Text, text),
        ],
    };
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
    (stack, props)
}

#[test]
fn round_trips_our_encoder() {
    let (stack, props) = sample_stack();
    let (back, got) = decode(&encode_psd(&stack, &props).unwrap()).unwrap();
    assert_eq!((back.width, back.height), (9, 7));
    assert_eq!(names(&back), ["Background", "Object 1", "Text: Hello"]);
    assert_eq!(
        kinds(&back),
        [LayerKind::Background, LayerKind::Object, LayerKind::Text]
    );
    assert!(back.layers.iter().all(|l| l.text.is_none()));
    for (orig, got) in stack.layers.iter().zip(&back.layers) {
        for (a, b) in orig.rgba.pixels().zip(got.rgba.pixels()) {
            assert_eq!(a.0[3], b.0[3], "alpha of {}", orig.name);
            if a.0[3] > 0 {
                assert_eq!(a, b, "pixel of {}", orig.name);
            }
        }
    }
    for (want, got) in props.iter().zip(&got) {
        assert!((want.opacity - got.opacity).abs() <= 1.0 / 255.0);
        assert_eq!(want.visible, got.visible);
    }
    // An empty layer (zero-size bounds) comes back empty.
    let mut empty = stack.clone();
    empty.layers[1].rgba = RgbaImage::new(9, 7);
    let (back, _) = decode(&encode_psd(&empty, &props).unwrap()).unwrap();
    assert_eq!(back.layers[1].rgba, RgbaImage::new(9, 7));
}

#[test]
fn reads_raw_layers_with_bounds_off_the_canvas() {
    // 3 rows x 5 columns starting one row above and two columns left of a 4x3 canvas.
    let (rows, cols) = (3usize, 5usize);
    let plane = |base: u8| -> Vec<u8> {
        (0..rows * cols)
            .map(|i| base + 10 * (i / cols) as u8 + (i % cols) as u8)
            .collect()
    };
    let mut a = layer(
        [-1, -2, 2, 3],
        "Caf\u{e9}",
        vec![
            (0, raw(&plane(0))),
            (1, raw(&plane(100))),
            (2, raw(&plane(200))),
            (-1, raw(&plane(50))),
            (-2, raw(&[9; 4])), // a mask channel without mask data: ignored
        ],
    );
    // Mac OS Roman, not UTF-8.
    a.pascal = b"Caf\x8e".to_vec();
    // RLE, no transparency channel, reaching past the bottom-right corner.
    let b = layer(
        [2, 2, 5, 6],
        "Past the edge",
        vec![
            (0, rle(&vec![vec![7; 4]; 3])),
            (1, rle(&vec![vec![8; 4]; 3])),
            (2, rle(&vec![vec![9; 4]; 3])),
        ],
    );
    let (stack, props) = decode(&rgb_psd(4, 3, &[a, b])).unwrap();
    assert_eq!(names(&stack), ["Café", "Past the edge"]);
    assert_eq!(kinds(&stack), [LayerKind::Object, LayerKind::Object]);
    assert_eq!(props, [LayerProps::default(); 2]);
    for y in 0..3 {
        for x in 0..4 {
            let (r, c) = (y + 1, x + 2);
            let want = if y < 2 && x < 3 {
                let v = (10 * r + c) as u8;
                [v, 100 + v, 200 + v, 50 + v]
            } else {
                [0; 4]
            };
            assert_eq!(px(&stack, 0, x, y), want, "layer 0 at {x},{y}");
            let want = if x >= 2 && y >= 2 {
                [7, 8, 9, 255]
            } else {
                [0; 4]
            };
            assert_eq!(px(&stack, 1, x, y), want, "layer 1 at {x},{y}");
        }
    }
}

#[test]
fn reads_grayscale() {
    let grey = layer(
        [0, 0, 2, 3],
        "Background",
        vec![(0, rle(&[vec![10, 20, 30], vec![40, 50, 60]]))],
    );
    let mut ink = layer(
        [1, 1, 2, 3],
        "Ink",
        vec![(-1, rle(&[vec![128, 0]])), (0, raw(&[200, 201]))],
    );
    ink.opacity = 51;
    ink.flags = 0x02;
    let bytes = psd(3, 2, 1, 1, &lmi(&layer_info(&[grey, ink])), &raw(&[0; 6]));
    let (stack, props) = decode(&bytes).unwrap();
    assert_eq!(kinds(&stack), [LayerKind::Background, LayerKind::Object]);
    assert_eq!(px(&stack, 0, 2, 1), [60, 60, 60, 255]);
    assert_eq!(px(&stack, 1, 1, 1), [200, 200, 200, 128]);
    assert_eq!(px(&stack, 1, 2, 1), [201, 201, 201, 0]);
    assert_eq!(px(&stack, 1, 0, 0), [0; 4]);
    assert!((props[1].opacity - 0.2).abs() < 1e-6);
    assert!(!props[1].visible && props[0].visible);
}

#[test]
fn reads_the_merged_image_when_there_are_no_layers() {
    let (w, h) = (3u32, 2u32);
    let planes: Vec<Vec<u8>> = (0..3u8)
        .map(|c| (0..6u8).map(|i| c * 50 + i).collect())
        .collect();
    let want = |x: u32, y: u32| {
        let i = (y * w + x) as u8;
        [i, 50 + i, 100 + i, 255]
    };
    // Raw, with an extra (ignored) alpha channel and an empty layer section.
    let mut data = vec![0, 0];
    data.extend(planes.concat());
    data.extend([0; 6]);
    let (stack, props) = decode(&psd(w, h, 3, 4, &[], &data)).unwrap();
    assert_eq!(names(&stack), ["Background"]);
    assert_eq!(kinds(&stack), [LayerKind::Background]);
    assert_eq!(props, [LayerProps::default()]);
    for (x, y, p) in stack.layers[0].rgba.enumerate_pixels() {
        assert_eq!(p.0, want(x, y));
    }
    // RLE, with a layer section whose layer info is empty.
    let rows: Vec<Vec<u8>> = planes
        .iter()
        .flat_map(|p| p.chunks(3))
        .map(<[u8]>::to_vec)
        .collect();
    let (stack, _) = decode(&psd(w, h, 3, 3, &lmi(&[]), &rle(&rows))).unwrap();
    for (x, y, p) in stack.layers[0].rgba.enumerate_pixels() {
        assert_eq!(p.0, want(x, y));
    }
    // Grayscale.
    let (stack, _) = decode(&psd(w, h, 1, 1, &[], &raw(&planes[0]))).unwrap();
    assert_eq!(px(&stack, 0, 2, 1), [5, 5, 5, 255]);
    // Missing merged data.
    let err = decode(&psd(w, h, 3, 3, &[], &raw(&planes[0]))).unwrap_err();
    assert_eq!(err.code(), "psd_truncated");
}

#[test]
fn flattens_groups() {
    let opaque = || vec![(0, raw(&[1])), (1, raw(&[2])), (2, raw(&[3]))];
    let mut group = section(1, "Group");
    group.opacity = 128;
    let mut hidden = section(2, "Hidden");
    hidden.flags = 0x02;
    let mut b = layer([0, 0, 1, 1], "B", opaque());
    b.flags = 0x02;
    // Bottom first: each divider sits below its folder's children, the folder above.
    let records = [
        layer([0, 0, 1, 1], "Background", opaque()),
        section(3, "</Layer group>"),
        layer([0, 0, 1, 1], "A", opaque()),
        b,
        group,
        section(3, "</Layer group>"),
        section(3, "</Layer group>"),
        layer([0, 0, 1, 1], "D", opaque()),
        section(1, "Inner"),
        layer([0, 0, 1, 1], "C", opaque()),
        hidden,
        layer([0, 0, 1, 1], "Top", opaque()),
    ];
    let (stack, props) = decode(&rgb_psd(1, 1, &records)).unwrap();
    assert_eq!(names(&stack), ["Background", "A", "B", "D", "C", "Top"]);
    let visible: Vec<bool> = props.iter().map(|p| p.visible).collect();
    assert_eq!(visible, [true, true, false, false, false, true]);
    assert!((props[1].opacity - 128.0 / 255.0).abs() < 1e-6);
    assert_eq!(props[5].opacity, 1.0);
    assert_eq!(px(&stack, 3, 0, 0), [1, 2, 3, 255]);
}

#[test]
fn reads_psd_tools_files() {
    // Written by psd-tools 1.26 (tests/fixtures/psd/gen_psdtools.py): groups, a hidden
    // group, a pixel mask, bounds off the canvas, a raw layer, a Mac-Roman-only name.
    let bytes = include_bytes!("../../../tests/fixtures/psd/psdtools_groups.psd");
    let (stack, props) = decode(bytes).unwrap();
    let want = [
        "Background",
        "Inside A",
        "Inside B",
        "Inside C",
        "Text: raw",
        "Ünïcødé ok",
    ];
    assert_eq!(names(&stack), want);
    let want = [
        LayerKind::Background,
        LayerKind::Object,
        LayerKind::Object,
        LayerKind::Object,
        LayerKind::Text,
        LayerKind::Object,
    ];
    assert_eq!(kinds(&stack), want);
    let visible: Vec<bool> = props.iter().map(|p| p.visible).collect();
    assert_eq!(visible, [true, true, false, false, true, true]);
    assert!((props[1].opacity - 128.0 / 255.0).abs() < 1e-6);
    assert!((props[5].opacity - 0.2).abs() < 1e-6);
    assert_eq!(px(&stack, 0, 7, 5), [210, 200, 100, 255]);
    // "Inside A": 4x3 at left -2, top -1; pixel (c, r) = (10+c, 20+r, 30, 100+40r+c).
    assert_eq!(px(&stack, 1, 0, 0), [12, 21, 30, 142]);
    assert_eq!(px(&stack, 1, 1, 1), [13, 22, 30, 183]);
    assert_eq!(px(&stack, 1, 2, 0), [0; 4]);
    // "Inside B" has a mask of zeros, which hides it.
    assert_eq!(px(&stack, 2, 3, 3), [200, 100, 50, 0]);
    // "Text: raw": 5x4 at left 5, top 4, transparent on its diagonal.
    assert_eq!(px(&stack, 4, 5, 4), [255, 0, 0, 0]);
    assert_eq!(px(&stack, 4, 7, 4), [255, 80, 0, 255]);
    assert_eq!(px(&stack, 4, 6, 5), [255, 40, 50, 0]);
    assert_eq!(px(&stack, 4, 4, 4), [0; 4]);
    assert_eq!(px(&stack, 5, 7, 0), [9, 8, 7, 255]);

    let bytes = include_bytes!("../../../tests/fixtures/psd/psdtools_gray.psd");
    let (stack, props) = decode(bytes).unwrap();
    assert_eq!(names(&stack), ["Background", "Ink"]);
    assert_eq!(kinds(&stack), [LayerKind::Background, LayerKind::Object]);
    assert_eq!(props, [LayerProps::default(); 2]);
    assert_eq!(px(&stack, 0, 2, 1), [50, 50, 50, 255]);
    assert_eq!(px(&stack, 1, 1, 1), [200, 200, 200, 128]);
    assert_eq!(px(&stack, 1, 2, 1), [201, 201, 201, 0]);
    assert_eq!(px(&stack, 1, 0, 0), [0; 4]);
}

/// Layer mask data: rectangle (top, left, bottom, right), default colour, flags, `rest`.
fn mask_data(rect: [i32; 4], default: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = rect.iter().flat_map(|v| v.to_be_bytes()).collect();
    out.extend([default, flags]);
    out.extend_from_slice(rest);
    out
}

/// Layer mask data over the whole 4x2 layer of [`masked`].
fn over_layer(default: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    mask_data([0, 0, 2, 4], default, flags, rest)
}

/// The real mask fields: flags, default colour, rectangle.
fn real_mask(flags: u8, default: u8, rect: [i32; 4]) -> Vec<u8> {
    let mut out = vec![flags, default];
    out.extend(rect.iter().flat_map(|v| v.to_be_bytes()));
    out
}

/// A 4x2 layer over a 4x2 canvas, alpha 255 in row 0 and 200 in row 1, with layer mask
/// data `mask` and the extra channels `masks`.
fn masked(mask: Vec<u8>, masks: Vec<(i16, Vec<u8>)>) -> TestLayer {
    let alpha = raw(&[255, 255, 255, 255, 200, 200, 200, 200]);
    let mut chans = vec![(0, raw(&[7; 8])), (-1, alpha)];
    chans.extend(masks);
    let mut l = layer([0, 0, 2, 4], "Masked", chans);
    l.mask = mask;
    l
}

/// The alpha of the only layer of a 4x2 file holding `l`, row by row.
fn alpha_of(l: TestLayer) -> Vec<u8> {
    let (stack, _) = decode(&rgb_psd(4, 2, &[l])).unwrap();
    stack.layers[0].rgba.pixels().map(|p| p.0[3]).collect()
}

const UNMASKED: [u8; 8] = [255, 255, 255, 255, 200, 200, 200, 200];

#[test]
fn applies_user_masks() {
    // Over the layer's rectangle, hiding its right half and half of one pixel.
    let half = || raw(&[255, 255, 0, 0, 255, 128, 0, 0]);
    let l = masked(over_layer(0, 0, &[0, 0]), vec![(-2, half())]);
    let (stack, _) = decode(&rgb_psd(4, 2, &[l])).unwrap();
    let alpha: Vec<u8> = stack.layers[0].rgba.pixels().map(|p| p.0[3]).collect();
    assert_eq!(alpha, [255, 255, 0, 0, 200, 100, 0, 0]);
    // Straight alpha: hidden pixels keep their colour.
    assert_eq!(px(&stack, 0, 3, 0), [7, 0, 0, 0]);
    assert_eq!(kinds(&stack), [LayerKind::Object]);
    // The same mask, disabled: no effect.
    let l = masked(over_layer(0, 0x02, &[0, 0]), vec![(-2, half())]);
    assert_eq!(alpha_of(l), UNMASKED);
    // The same mask marked relative to the layer: its rectangle is still the canvas's.
    let l = masked(over_layer(0, 0x01, &[0, 0]), vec![(-2, half())]);
    assert_eq!(alpha_of(l), [255, 255, 0, 0, 200, 100, 0, 0]);
    // A 1x1 RLE mask at (2, 1) with default colour 255: only that pixel is hidden.
    let small = |default| mask_data([1, 2, 2, 3], default, 0, &[]);
    let l = masked(small(255), vec![(-2, rle(&[vec![0]]))]);
    assert_eq!(alpha_of(l), [255, 255, 255, 255, 200, 200, 0, 200]);
    // The same with default colour 0 and a 255 pixel: only that pixel shows.
    let l = masked(small(0), vec![(-2, raw(&[255]))]);
    assert_eq!(alpha_of(l), [0, 0, 0, 0, 0, 0, 200, 0]);
    // A 4x8 mask at -1, -3 reaching past every edge: canvas (x, y) is mask (y + 1, x + 3).
    let vals: Vec<u8> = (0..4u8)
        .flat_map(|r| (0..8u8).map(move |c| 100 + 10 * r + c))
        .collect();
    let l = masked(mask_data([-1, -3, 3, 5], 0, 0, &[]), vec![(-2, raw(&vals))]);
    let row1 = [123, 124, 125, 126].map(|m| mul(200, m));
    let want = [[113, 114, 115, 116], row1].concat();
    assert_eq!(alpha_of(l), want);
    // Entirely off the canvas: the default colour everywhere.
    let off = |default| {
        let m = mask_data([100, -100, 101, -99], default, 0, &[]);
        alpha_of(masked(m, vec![(-2, raw(&[255]))]))
    };
    assert_eq!(off(0), [0; 8]);
    assert_eq!(off(255), UNMASKED);
    // The masks of a psd-tools file, as psd-tools composites them.
    let bytes = include_bytes!("../../../tests/fixtures/psd/psdtools_masks.psd");
    let (stack, props) = decode(bytes).unwrap();
    let want = [
        "Background",
        "From alpha",
        "Disabled",
        "Small white",
        "Off canvas",
        "Density",
    ];
    assert_eq!(names(&stack), want);
    assert_eq!(props, [LayerProps::default(); 6]);
    assert_eq!(kinds(&stack)[0], LayerKind::Background);
    let alphas: Vec<Vec<u8>> = stack
        .layers
        .iter()
        .map(|l| l.rgba.pixels().map(|p| p.0[3]).collect())
        .collect();
    let rows = |r: [[u8; 6]; 4]| r.concat();
    assert_eq!(alphas[0], [255; 24]);
    // An RGBA layer in an RGB file: psd-tools keeps its alpha in the mask only.
    let z = [0; 6];
    let want = rows([z, [0, 0, 100, 255, 0, 0], [0, 50, 150, 250, 0, 0], z]);
    assert_eq!(alphas[1], want);
    let two = [0, 0, 0, 0, 255, 255];
    assert_eq!(alphas[2], rows([two, two, z, z]));
    let four = [255, 255, 255, 255, 0, 0];
    assert_eq!(alphas[3], rows([four, [255, 255, 0, 255, 0, 0], four, z]));
    assert_eq!(alphas[4], rows([[110, 160, 0, 0, 0, 0], z, z, z]));
    assert_eq!(alphas[5], rows([z, z, z, [0, 0, 0, 127, 127, 0]]));
    assert_eq!(px(&stack, 1, 2, 1), [11, 20, 30, 100]);
}

#[test]
fn prefers_the_real_user_mask() {
    // A -2 mask rendered from other data hides everything; the -3 real user mask (1x2 at
    // the top left, default colour 255) hides only (1, 0).
    let chans = || vec![(-2, raw(&[0; 8])), (-3, raw(&[255, 0]))];
    let with_real = |flags, real_flags, params: &[u8]| {
        let real = [real_mask(real_flags, 255, [0, 0, 1, 2]), params.to_vec()].concat();
        masked(over_layer(0, flags, &real), chans())
    };
    let hides_one = [255, 0, 255, 255, 200, 200, 200, 200];
    assert_eq!(alpha_of(with_real(0x08, 0, &[])), hides_one);
    // Disabled in the flags or in the real flags.
    assert_eq!(alpha_of(with_real(0x0a, 0, &[])), UNMASKED);
    assert_eq!(alpha_of(with_real(0x08, 0x02, &[])), UNMASKED);
    // The mask parameters come after the real fields: density 128 over the real mask.
    let l = with_real(0x18, 0, &[0x01, 128, 0, 0]);
    assert_eq!(alpha_of(l), [255, 127, 255, 255, 200, 200, 200, 200]);
    // Without the real fields (20 bytes of mask data), the -2 mask applies.
    let l = masked(over_layer(0, 0, &[0, 0]), chans());
    assert_eq!(alpha_of(l), [0; 8]);
    // Real fields without a -3 channel are not read: the -2 mask keeps its rectangle.
    let real = real_mask(0, 255, [0, 0, 1, 2]);
    let top_row = raw(&[255, 255, 255, 255, 0, 0, 0, 0]);
    let l = masked(over_layer(0, 0, &real), vec![(-2, top_row)]);
    assert_eq!(alpha_of(l), [255, 255, 255, 255, 0, 0, 0, 0]);
}

#[test]
fn reads_mask_parameters_and_odd_mask_data() {
    let zeros = || vec![(-2, raw(&[0; 8]))];
    // User mask density 51 and a feather (not applied): 204/255 of the layer shows.
    let feather = 2.5f64.to_be_bytes();
    let params = [&[0x03, 51][..], &feather, &[0, 0]].concat();
    let l = masked(over_layer(0, 0x10, &params), zeros());
    let row1 = mul(200, 204);
    assert_eq!(alpha_of(l), [204, 204, 204, 204, row1, row1, row1, row1]);
    // Vector mask density and feather only: the user mask applies in full.
    let params = [&[0x0c, 51][..], &feather, &[0, 0]].concat();
    let l = masked(over_layer(0, 0x10, &params), zeros());
    assert_eq!(alpha_of(l), [0; 8]);
    // Parameters flagged but cut off: the mask applies in full.
    let l = masked(over_layer(0, 0x10, &[]), zeros());
    assert_eq!(alpha_of(l), [0; 8]);
    // Mask data too short to place the mask, or upside down: no mask.
    let l = masked(over_layer(0, 0, &[])[..17].to_vec(), zeros());
    assert_eq!(alpha_of(l), UNMASKED);
    let l = masked(mask_data([2, 0, 0, 4], 0, 0, &[0, 0]), zeros());
    assert_eq!(alpha_of(l), UNMASKED);
    let l = masked(mask_data([0, 4, 2, 0], 0, 0, &[0, 0]), zeros());
    assert_eq!(alpha_of(l), UNMASKED);
    // An empty rectangle over mask pixels: the layer's rectangle (as panotools writes).
    let half = raw(&[255, 255, 0, 0, 255, 128, 0, 0]);
    let l = masked(mask_data([0, 0, 0, 0], 0, 0, &[0, 0]), vec![(-2, half)]);
    assert_eq!(alpha_of(l), [255, 255, 0, 0, 200, 100, 0, 0]);
    // An empty rectangle and no pixels: the default colour everywhere.
    let empty = |default| {
        let m = mask_data([1, 1, 1, 1], default, 0, &[0, 0]);
        alpha_of(masked(m, vec![(-2, raw(&[]))]))
    };
    assert_eq!(empty(0), [0; 8]);
    assert_eq!(empty(255), UNMASKED);
    // A mask rectangle four million pixels wide in one RLE row: only the canvas is read.
    let packets = 32_767u32;
    let row: Vec<u8> = (0..packets).flat_map(|i| [0x81, i as u8]).collect();
    let chan = [&[0, 1][..], &(row.len() as u16).to_be_bytes(), &row].concat();
    let left = -(128 * 7 + 126);
    let rect = [1, left, 2, left + 128 * packets as i32];
    let l = masked(mask_data(rect, 255, 0, &[]), vec![(-2, chan)]);
    let row1 = [7, 7, 8, 8].map(|m| mul(200, m));
    assert_eq!(alpha_of(l), [[255; 4], row1].concat());
    // Mask pixels that a huge rectangle does not have, truncated or ZIP data: errors.
    let lim = PsdLimits::default();
    let huge = [i32::MIN, i32::MIN, i32::MAX, i32::MAX];
    for chan in [raw(&[1; 8]), rle(&[vec![1; 4]])] {
        let l = masked(mask_data(huge, 0, 0, &[]), vec![(-2, chan)]);
        assert_eq!(err_of(&rgb_psd(4, 2, &[l]), &lim).0, "psd_truncated");
    }
    let l = masked(over_layer(0, 0, &[]), vec![(-2, raw(&[1; 7]))]);
    assert_eq!(err_of(&rgb_psd(4, 2, &[l]), &lim).0, "psd_truncated");
    let l = masked(over_layer(0, 0, &[]), vec![(-2, vec![0, 2, 0x78])]);
    assert_eq!(err_of(&rgb_psd(4, 2, &[l]), &lim).0, "psd_unsupported");
    // A disabled mask's channel is not read at all.
    let l = masked(over_layer(0, 2, &[]), vec![(-2, raw(&[1; 7]))]);
    assert_eq!(alpha_of(l), UNMASKED);
}

#[test]
fn reads_names_type_layers_and_padded_blocks() {
    let mut luni = 4u32.to_be_bytes().to_vec();
    luni.extend("Ünï\0".encode_utf16().flat_map(u16::to_be_bytes));
    let bg = layer([0, 0, 1, 2], "Background", vec![(0, raw(&[5, 6]))]);
    let mut title = layer([0, 0, 1, 2], "ascii", vec![(-1, raw(&[255, 0]))]);
    // An odd-length block padded outside its length, then the name, then a type block.
    title.tail = b"8BIMshmd\0\0\0\x03\x01\x02\x03\0".to_vec();
    title.tail.extend(block(b"luni", &luni));
    title.tail.extend(block(b"TySh", &[]));
    let mut pascal = layer([0, 0, 1, 2], "Text 2", vec![(-1, raw(&[1, 1]))]);
    pascal.pascal = b"Text \x8e\xa5".to_vec(); // Mac OS Roman "Text é•"
    let plain = layer([0, 0, 1, 2], "Plain", vec![(-1, raw(&[1, 1]))]);
    let (stack, _) = decode(&rgb_psd(2, 1, &[bg, title, pascal, plain])).unwrap();
    assert_eq!(names(&stack), ["Background", "Ünï", "Text é•", "Plain"]);
    let want = [
        LayerKind::Background,
        LayerKind::Text,
        LayerKind::Text,
        LayerKind::Object,
    ];
    assert_eq!(kinds(&stack), want);
    assert_eq!(px(&stack, 0, 1, 0), [6, 0, 0, 255]);

    assert_eq!(MAC_ROMAN.chars().count(), 128);
    assert_eq!(pascal_name(b"a\x80\xd0\xff"), "aÄ–ˇ");
    assert_eq!(pascal_name("é".as_bytes()), "é");
    // Long names are cut to 255 characters.
    let mut long = layer([0, 0, 0, 0], "", vec![]);
    long.tail = block(
        b"luni",
        &[&300u32.to_be_bytes()[..], &[0, b'x'].repeat(300)].concat(),
    );
    let (stack, _) = decode(&rgb_psd(2, 1, &[long])).unwrap();
    assert_eq!(stack.layers[0].name, "x".repeat(255));
}

#[test]
fn reads_layers_from_a_global_layr_block() {
    let a = layer([0, 0, 1, 1], "In Layr", vec![(0, raw(&[42]))]);
    // Empty layer info, empty global mask info, then the blocks (4-byte aligned).
    let mut section = vec![0; 8];
    section.extend(block(b"Patt", &[1, 2]));
    section.extend([0, 0]);
    section.extend(block(b"Layr", &layer_info(&[a])));
    let (stack, _) = decode(&psd(1, 1, 3, 3, &section, &raw(&[0; 3]))).unwrap();
    assert_eq!(names(&stack), ["In Layr"]);
    assert_eq!(px(&stack, 0, 0, 0), [42, 0, 0, 255]);
    // Without the global mask info too.
    let mut section = vec![0; 4];
    section.extend(block(b"Lr16", &[]));
    let err = decode(&psd(1, 1, 3, 3, &section, &raw(&[0; 3]))).unwrap_err();
    assert_eq!(err.code(), "psd_unsupported");
    assert!(err.to_string().contains("8 bits per channel"), "{err}");
}

#[test]
fn unpacks_rle_rows_within_bounds() {
    // Literal [1 2 3], repeat 4 x 9, no-op, literal [5].
    let row = [2, 1, 2, 3, 0xfd, 9, 0x80, 0, 5];
    let mut out = [0; 8];
    unpack_row(&row, 8, 0, &mut out).unwrap();
    assert_eq!(out, [1, 2, 3, 9, 9, 9, 9, 5]);
    // Clipped to columns 2..6; trailing bytes after a complete row are ignored.
    let mut out = [0; 4];
    unpack_row(&[&row[..], &[0, 7]].concat(), 8, 2, &mut out).unwrap();
    assert_eq!(out, [3, 9, 9, 9]);
    let mut out = [0; 0];
    unpack_row(&row, 8, 8, &mut out).unwrap();
    // Too short, cut inside a literal, a repeat that runs past the row.
    let mut out = [0; 8];
    let err = unpack_row(&row[..6], 8, 0, &mut out).unwrap_err();
    assert_eq!(err.code(), "psd_truncated");
    let err = unpack_row(&[3, 1, 2], 8, 0, &mut out).unwrap_err();
    assert_eq!(err.code(), "psd_truncated");
    let err = unpack_row(&[0xf9, 1], 7, 0, &mut out[..7]).unwrap_err();
    assert_eq!(err.code(), "psd_invalid");
    let err = unpack_row(&[2, 1, 2, 3], 2, 0, &mut out[..2]).unwrap_err();
    assert_eq!(err.code(), "psd_invalid");
    // A truncated RLE layer channel is reported, not padded.
    let mut short = rle(&[vec![1; 4], vec![2; 4]]);
    short.pop();
    let l = layer([0, 0, 2, 4], "Short", vec![(0, short)]);
    let err = decode(&rgb_psd(4, 2, &[l])).unwrap_err();
    assert_eq!(err.code(), "psd_truncated");
}

fn header(version: u16, w: u32, h: u32, depth: u16, mode: u16) -> Vec<u8> {
    let mut out = b"8BPS".to_vec();
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&3u16.to_be_bytes());
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&w.to_be_bytes());
    out.extend_from_slice(&depth.to_be_bytes());
    out.extend_from_slice(&mode.to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out
}

fn err_of(bytes: &[u8], limits: &PsdLimits) -> (&'static str, String) {
    let err = decode_psd(bytes, limits).unwrap_err();
    (err.code(), err.to_string())
}

#[test]
fn rejects_what_it_cannot_read() {
    let lim = PsdLimits::default();
    let cases: [(Vec<u8>, &str, &str); 10] = [
        (header(2, 4, 4, 8, 3), "psd_unsupported", "save as a PSD"),
        (
            header(1, 4, 4, 16, 3),
            "psd_unsupported",
            "save as 8 bits per channel",
        ),
        (
            header(1, 4, 4, 32, 3),
            "psd_unsupported",
            "save as 8 bits per channel",
        ),
        (
            header(1, 4, 4, 8, 4),
            "psd_unsupported",
            "CMYK PSDs are not supported",
        ),
        (header(1, 4, 4, 1, 0), "psd_unsupported", "Bitmap"),
        (header(3, 4, 4, 8, 3), "psd_invalid", "version 3"),
        (header(1, 0, 4, 8, 3), "psd_invalid", "empty"),
        (header(1, 4, 4, 8, 5), "psd_invalid", "colour mode 5"),
        (b"\x89PNG\r\n\x1a\n".to_vec(), "psd_invalid", "8BPS"),
        (b"8BP".to_vec(), "psd_truncated", "header"),
    ];
    for (bytes, code, text) in cases {
        let (got, msg) = err_of(&bytes, &lim);
        assert_eq!(got, code, "{msg}");
        assert!(msg.contains(text), "{msg:?} lacks {text:?}");
    }
    // ZIP, in a layer and in the merged image.
    let zip = layer([0, 0, 1, 1], "Zip", vec![(0, vec![0, 2, 0x78, 0x9c])]);
    let (code, msg) = err_of(&rgb_psd(1, 1, &[zip]), &lim);
    assert_eq!(code, "psd_unsupported");
    assert!(msg.contains("RLE or no compression"), "{msg}");
    let (code, _) = err_of(&psd(1, 1, 3, 3, &[], &[0, 3, 0, 0]), &lim);
    assert_eq!(code, "psd_unsupported");
    // A record with its bounds upside down.
    let bad = layer([5, 0, 1, 1], "Upside down", vec![]);
    assert_eq!(err_of(&rgb_psd(1, 1, &[bad]), &lim).0, "psd_invalid");
}

#[test]
fn rejects_oversize_input() {
    let lim = PsdLimits::default();
    let (code, msg) = err_of(&header(1, 30_001, 10, 8, 3), &lim);
    assert_eq!(code, "psd_too_large");
    assert!(msg.contains("30000"), "{msg}");
    let small = PsdLimits {
        max_pixels: 999_999,
        ..lim
    };
    assert_eq!(
        err_of(&header(1, 1000, 1000, 8, 3), &small).0,
        "psd_too_large"
    );
    // Too many layers, and too many bytes of layers; neither allocates the layers.
    let (stack, props) = sample_stack();
    let bytes = encode_psd(&stack, &props).unwrap();
    let two = PsdLimits {
        max_layers: 2,
        ..lim
    };
    assert_eq!(err_of(&bytes, &two).0, "psd_too_large");
    let tight = PsdLimits {
        max_stack_bytes: 3 * 9 * 7 * 4 - 1,
        ..lim
    };
    assert_eq!(err_of(&bytes, &tight).0, "psd_too_large");
    let exact = PsdLimits {
        max_stack_bytes: 3 * 9 * 7 * 4,
        max_layers: 3,
        max_pixels: 63,
    };
    assert!(decode_psd(&bytes, &exact).is_ok());
    // A huge declared channel length or layer count fails cleanly.
    let mut huge = rgb_psd(2, 2, &[layer([0, 0, 2, 2], "L", vec![(0, raw(&[1; 4]))])]);
    let at = 26 + 8 + 4 + 4 + 2 + 16 + 2 + 2;
    huge[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(err_of(&huge, &lim).0, "psd_truncated");
    huge[at - 22..at - 20].copy_from_slice(&0x7fffu16.to_be_bytes());
    assert_eq!(err_of(&huge, &lim).0, "psd_truncated");
    // A layer four million pixels wide in one 64 KiB RLE row: only the canvas is kept.
    let packets = 32_767u32;
    let row: Vec<u8> = (0..packets).flat_map(|i| [0x81, i as u8]).collect();
    let chan = [&[0, 1][..], &(row.len() as u16).to_be_bytes(), &row].concat();
    let left = -(128 * 7 + 126);
    let wide = layer(
        [0, left, 1, left + 128 * packets as i32],
        "Wide",
        vec![(0, chan)],
    );
    let (stack, _) = decode(&rgb_psd(4, 1, &[wide])).unwrap();
    let reds: Vec<u8> = (0..4).map(|x| px(&stack, 0, x, 0)[0]).collect();
    assert_eq!(reds, [7, 7, 8, 8]);
}

/// xorshift64*: a fixed-seed generator for the fuzz test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn never_panics_on_truncated_or_corrupted_files() {
    let (stack, props) = sample_stack();
    let ours = encode_psd(&stack, &props).unwrap();
    let files = [
        ours,
        include_bytes!("../../../tests/fixtures/psd/psdtools_groups.psd").to_vec(),
        include_bytes!("../../../tests/fixtures/psd/psdtools_gray.psd").to_vec(),
        include_bytes!("../../../tests/fixtures/psd/psdtools_masks.psd").to_vec(),
    ];
    let lim = PsdLimits {
        max_pixels: 1 << 16,
        max_layers: 16,
        max_stack_bytes: 8 << 20,
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = [0usize; 2];
    for file in &files {
        // Every prefix that cuts the layer section short is an error; later cuts only
        // lose the merged image, which a file with layers does not need.
        let mut layers_end = 26;
        for _ in 0..3 {
            let len = &file[layers_end..layers_end + 4];
            layers_end += 4 + u32::from_be_bytes(len.try_into().unwrap()) as usize;
        }
        for cut in 0..file.len() {
            let got = decode_psd(&file[..cut], &lim);
            assert_eq!(got.is_ok(), cut >= layers_end, "cut at {cut}");
        }
        for _ in 0..3000 {
            let mut bad = file.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() % bad.len() as u64) as usize;
                bad[i] ^= 1 << (rng.next() % 8);
            }
            outcomes[decode_psd(&bad, &lim).is_ok() as usize] += 1;
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}
