//! Tests of the palette decomposition end to end: synthetic designs, gradients, noise,
//! degenerate images and options.

use super::*;
use image::Rgb;

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 33) as f64) / (1u64 << 31) as f64
}

fn max_error(res: &PaletteResult, img: &RgbImage) -> u8 {
    let comp = res.stack.composite();
    assert_eq!(comp.dimensions(), img.dimensions());
    comp.as_raw()
        .iter()
        .zip(img.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0)
}

fn check_stack(res: &PaletteResult, img: &RgbImage) {
    assert_eq!(res.stack.layers.len(), res.palette.len());
    assert_eq!((res.stack.width, res.stack.height), img.dimensions());
    for (i, l) in res.stack.layers.iter().enumerate() {
        assert_eq!(l.rgba.dimensions(), img.dimensions());
        let kind = if i == 0 {
            LayerKind::Background
        } else {
            LayerKind::Object
        };
        assert_eq!(l.kind, kind);
        let [r, g, b] = res.palette[i];
        assert_eq!(l.name, format!("Colour {} #{r:02x}{g:02x}{b:02x}", i + 1));
    }
    assert!(res.stack.layers[0].rgba.pixels().all(|p| p.0[3] == 255));
    assert!(
        max_error(res, img) <= 1,
        "recomposition off by more than 1/255"
    );
}

const DESIGN: [[u8; 3]; 4] = [[245, 240, 228], [28, 45, 120], [210, 50, 45], [90, 170, 60]];

/// A flat design: background, a rectangle, a disc and a triangle, anti-aliased by 4×4
/// supersampling.
fn design() -> RgbImage {
    let inside = |s: usize, x: f64, y: f64| match s {
        1 => (12.0..70.0).contains(&x) && (8.0..40.0).contains(&y),
        2 => (x - 70.0).powi(2) + (y - 42.0).powi(2) < 18.0f64.powi(2),
        _ => y > 30.0 && x > 10.0 && x - 10.0 < (y - 30.0) * 1.3 && y < 62.0,
    };
    RgbImage::from_fn(112, 72, |px, py| {
        let mut acc = [0.0f64; 3];
        for sy in 0..4 {
            for sx in 0..4 {
                let (x, y) = (
                    px as f64 + (sx as f64 + 0.5) / 4.0,
                    py as f64 + (sy as f64 + 0.5) / 4.0,
                );
                let mut c = DESIGN[0];
                for (s, col) in DESIGN.iter().enumerate().skip(1) {
                    if inside(s, x, y) {
                        c = *col;
                    }
                }
                for ch in 0..3 {
                    acc[ch] += c[ch] as f64 / 16.0;
                }
            }
        }
        Rgb(acc.map(|v| v.round() as u8))
    })
}

#[test]
fn flat_design_recovers_its_four_colours() {
    let img = design();
    let res = palette_decompose(&img, &PaletteOptions::default()).unwrap();
    check_stack(&res, &img);
    assert_eq!(res.palette.len(), 4, "{:?}", res.palette);
    for want in DESIGN {
        let off = res
            .palette
            .iter()
            .map(|c| (0..3).map(|i| c[i].abs_diff(want[i])).max().unwrap_or(0))
            .min()
            .unwrap_or(255);
        assert!(off <= 4, "{want:?} not in {:?}", res.palette);
    }
    // The background is the largest area.
    assert!((0..3).all(|i| res.palette[0][i].abs_diff(DESIGN[0][i]) <= 4));
    // Where a layer is mostly opaque its colour stays within a few levels of the palette.
    for (l, layer) in res.stack.layers.iter().enumerate() {
        for p in layer.rgba.pixels().filter(|p| p.0[3] >= 128) {
            let dev = (0..3)
                .map(|i| p.0[i].abs_diff(res.palette[l][i]))
                .max()
                .unwrap_or(0);
            assert!(dev <= 6, "layer {l} deviates by {dev}");
        }
    }
    // A flat interior pixel of the disc is carried by its layer alone.
    let disc = res
        .palette
        .iter()
        .position(|c| c[0] > 150 && c[1] < 100)
        .unwrap();
    assert_eq!(res.stack.layers[disc].rgba.get_pixel(80, 50).0[3], 255);
    // Deterministic.
    assert_eq!(
        palette_decompose(&img, &PaletteOptions::default()).unwrap(),
        res
    );
    // Asking for more colours than the hull has gives the hull's vertices.
    let more = palette_decompose(
        &img,
        &PaletteOptions {
            k: Some(8),
            max_k: 10,
        },
    )
    .unwrap();
    assert!(more.palette.len() <= 8 && more.palette.len() >= 4);
    check_stack(&more, &img);
}

#[test]
fn gradient_recomposes() {
    let img = RgbImage::from_fn(64, 48, |x, y| {
        Rgb([(x * 4) as u8, (y * 5) as u8, (100 + x + y) as u8])
    });
    let res = palette_decompose(&img, &PaletteOptions::default()).unwrap();
    check_stack(&res, &img);
    assert!((2..=10).contains(&res.palette.len()));
    let flat = RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 77]));
    let res = palette_decompose(&flat, &PaletteOptions::default()).unwrap();
    check_stack(&res, &flat);
    assert_eq!(
        res.palette.len(),
        4,
        "a planar square has four corners: {:?}",
        res.palette
    );
}

#[test]
fn photo_like_noise_with_six_colours_recomposes() {
    let mut s = 3u64;
    let img = RgbImage::from_fn(80, 60, |x, y| {
        let (fx, fy) = (x as f64 / 80.0, y as f64 / 60.0);
        let base = [
            128.0 + 100.0 * (fx * 6.0).sin() * fy,
            90.0 + 120.0 * (fy * 5.0 + fx).cos().abs(),
            60.0 + 150.0 * fx * (1.0 - fy),
        ];
        Rgb(base.map(|v| (v + (lcg(&mut s) - 0.5) * 40.0).round().clamp(0.0, 255.0) as u8))
    });
    let res = palette_decompose(
        &img,
        &PaletteOptions {
            k: Some(6),
            max_k: 10,
        },
    )
    .unwrap();
    check_stack(&res, &img);
    assert!((4..=6).contains(&res.palette.len()), "{:?}", res.palette);
    let auto = palette_decompose(&img, &PaletteOptions::default()).unwrap();
    check_stack(&auto, &img);
}

#[test]
fn tiny_and_single_colour_images() {
    let one = RgbImage::from_pixel(1, 1, Rgb([1, 2, 3]));
    let res = palette_decompose(&one, &PaletteOptions::default()).unwrap();
    assert_eq!(res.palette, vec![[1, 2, 3]]);
    check_stack(&res, &one);
    let flat = RgbImage::from_pixel(9, 7, Rgb([200, 10, 90]));
    let res = palette_decompose(
        &flat,
        &PaletteOptions {
            k: Some(5),
            max_k: 10,
        },
    )
    .unwrap();
    assert_eq!(res.palette, vec![[200, 10, 90]]);
    check_stack(&res, &flat);
    // k = 1 on a busy image: one layer that is the image.
    let res = palette_decompose(
        &design(),
        &PaletteOptions {
            k: Some(1),
            max_k: 10,
        },
    )
    .unwrap();
    assert_eq!(res.stack.layers.len(), 1);
    check_stack(&res, &design());
}

#[test]
fn two_colours_with_k_two() {
    let (a, b) = ([20u8, 30, 40], [220u8, 200, 180]);
    let img = RgbImage::from_fn(40, 30, |x, y| {
        let d = ((x as f64 - 20.0).powi(2) + (y as f64 - 15.0).powi(2)).sqrt();
        let t = (10.0 - d).clamp(0.0, 1.0);
        Rgb([0, 1, 2].map(|i| (a[i] as f64 * (1.0 - t) + b[i] as f64 * t).round() as u8))
    });
    for opts in [
        PaletteOptions {
            k: Some(2),
            max_k: 10,
        },
        PaletteOptions::default(),
    ] {
        let res = palette_decompose(&img, &opts).unwrap();
        assert_eq!(res.palette, vec![a, b]);
        check_stack(&res, &img);
    }
    let hard = RgbImage::from_fn(8, 8, |x, _| Rgb(if x < 3 { b } else { a }));
    let res = palette_decompose(
        &hard,
        &PaletteOptions {
            k: Some(2),
            max_k: 10,
        },
    )
    .unwrap();
    assert_eq!(res.palette, vec![a, b]);
    assert_eq!(
        res.stack.layers[1].rgba.get_pixel(0, 0).0,
        [b[0], b[1], b[2], 255]
    );
    assert_eq!(res.stack.layers[1].rgba.get_pixel(5, 0).0[3], 0);
    check_stack(&res, &hard);
}

#[test]
fn errors_have_codes() {
    let e = palette_decompose(&RgbImage::new(0, 5), &PaletteOptions::default()).unwrap_err();
    assert_eq!(e.code(), "empty_image");
    let img = RgbImage::new(2, 2);
    for opts in [
        PaletteOptions {
            k: Some(0),
            max_k: 10,
        },
        PaletteOptions {
            k: Some(99),
            max_k: 10,
        },
        PaletteOptions { k: None, max_k: 1 },
    ] {
        let e = palette_decompose(&img, &opts).unwrap_err();
        assert_eq!(e.code(), "invalid_palette_options");
    }
}

#[test]
fn every_colour_lies_in_the_simplified_hulls() {
    let img = design();
    let hist = Histogram::new(&img);
    let colours = hist.colours();
    let start = match hull::hull(&colours, 0.0) {
        Some(h) => h.vertices().iter().map(|&i| colours[i]).collect(),
        None => panic!("no hull"),
    };
    let sample = Sample::new(&colours, &hist.counts, SAMPLE_MAX);
    for rec in simplify::simplify(start, 4, &sample) {
        let g = Geometry::new(&rec, 0, simplify::FLOAT_EPS);
        for c in &colours {
            assert!(
                g.locate(*c).d2 <= 1e-12,
                "{c:?} outside a {}-hull",
                rec.len()
            );
        }
    }
}

#[test]
fn three_flat_colours_give_binary_layers() {
    let cols = [[250u8, 250, 250], [200, 30, 30], [30, 30, 200]];
    let img = RgbImage::from_fn(30, 20, |x, y| Rgb(cols[((x / 10 + y / 10) % 3) as usize]));
    let res = palette_decompose(&img, &PaletteOptions::default()).unwrap();
    check_stack(&res, &img);
    let mut got = res.palette.clone();
    got.sort_unstable();
    let mut want = cols.to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
    for (l, layer) in res.stack.layers.iter().enumerate() {
        for (x, y, p) in layer.rgba.enumerate_pixels() {
            let here = img.get_pixel(x, y).0 == res.palette[l];
            if l > 0 {
                assert_eq!(p.0[3], if here { 255 } else { 0 }, "layer {l} at {x},{y}");
            }
            if here {
                assert_eq!(&p.0[..3], &res.palette[l]);
            }
        }
    }
}
