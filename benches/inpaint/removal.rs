//! Object removal against OpenCV's TELEA, side by side in one run (a part of
//! `cargo bench --bench inpaint`).
//!
//! Eight object-shaped holes — blobs (three overlapping ellipses) and thin diagonal brush
//! strokes — over the photos and textures in `tests/fixtures`, each filled the way the edit
//! API's `inpaint` op fills an opaque layer ([`inpaint_layer`] with the built-in filler), and
//! by `cv2.inpaint(…, 3, INPAINT_TELEA)` through `benches/inpaint/telea.py`. Scores inside the
//! hole, on the true pixels: L1 (mean |fill − truth| per channel, 0..255); structure, the L1
//! of both blurred with a Gaussian of σ = 4 px (does the fill continue the edges and shading
//! that enter the hole?); texture, the mean squared luma gradient of the fill over the truth's (1 =
//! as busy as the real thing, below 1 = blur). Then speed: a 140 px round brush and a 10%
//! square hole on a 1024² photo. `INPAINT_GRID=FILE.png` writes the before/after grid (truth,
//! the hole, ours, TELEA) the README shows.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::imageops::FilterType;
use image::{GrayImage, Luma, Rgb, RgbImage, RgbaImage};
use image_layered::engine::edit::inpaint_layer;
use image_layered::engine::inpaint::{patchmatch_inpaint, PatchMatchOptions};

/// A hole's shape, in pixels of its image.
#[derive(Clone, Copy)]
pub enum Shape {
    /// Three overlapping ellipses around `(cx, cy)`, about `r` across.
    Blob { cx: f64, cy: f64, r: f64 },
    /// A straight stroke of `width` from `a` to `b` with round ends.
    Stroke {
        a: (f64, f64),
        b: (f64, f64),
        width: f64,
    },
}

pub fn shape_mask(w: u32, h: u32, shape: Shape) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        let inside = match shape {
            Shape::Blob { cx, cy, r } => [
                (0.0, 0.0, 1.0, 0.7, 0.3),
                (0.45, -0.25, 0.6, 0.5, -0.6),
                (-0.35, 0.35, 0.55, 0.45, 1.1),
            ]
            .iter()
            .any(|&(dx, dy, rx, ry, angle): &(f64, f64, f64, f64, f64)| {
                let (px, py) = (x - (cx + dx * r), y - (cy + dy * r));
                let (s, c) = angle.sin_cos();
                let (u, v) = (px * c + py * s, -px * s + py * c);
                (u / (rx * r)).powi(2) + (v / (ry * r)).powi(2) <= 1.0
            }),
            Shape::Stroke { a, b, width } => {
                let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                let len2 = (dx * dx + dy * dy).max(1e-9);
                let t = (((x - a.0) * dx + (y - a.1) * dy) / len2).clamp(0.0, 1.0);
                let (qx, qy) = (a.0 + t * dx - x, a.1 + t * dy - y);
                (qx * qx + qy * qy).sqrt() <= width / 2.0
            }
        };
        Luma([if inside { 255 } else { 0 }])
    })
}

/// The benchmark's holes: (label, image under `tests/fixtures`, shape).
fn cases() -> Vec<(&'static str, &'static str, Shape)> {
    let stroke = |a, b, width| Shape::Stroke { a, b, width };
    let blob = |cx, cy, r| Shape::Blob { cx, cy, r };
    vec![
        (
            "brick, stroke",
            "textures/brick.png",
            stroke((60.0, 420.0), (450.0, 90.0), 16.0),
        ),
        (
            "grass, blob",
            "textures/grass.png",
            blob(256.0, 256.0, 60.0),
        ),
        (
            "gravel, blob",
            "textures/gravel.png",
            blob(300.0, 200.0, 55.0),
        ),
        (
            "astronaut, stroke",
            "photos/astronaut.png",
            stroke((100.0, 400.0), (420.0, 120.0), 14.0),
        ),
        (
            "camera, blob",
            "photos/camera.png",
            blob(390.0, 210.0, 45.0),
        ),
        (
            "rocket tower, blob",
            "photos/rocket.jpg",
            blob(188.0, 250.0, 40.0),
        ),
        (
            "cat fur, stroke",
            "photos/chelsea.png",
            stroke((120.0, 250.0), (330.0, 80.0), 14.0),
        ),
        (
            "saucer rim, blob",
            "photos/coffee.png",
            blob(455.0, 250.0, 42.0),
        ),
    ]
}

/// L1, structure and texture of `fill` against `truth` inside `mask`.
pub fn scores(truth: &RgbImage, fill: &RgbImage, mask: &GrayImage) -> [f64; 3] {
    let hole: Vec<usize> = mask
        .as_raw()
        .iter()
        .enumerate()
        .filter(|(_, m)| **m > 0)
        .map(|(i, _)| i)
        .collect();
    let l1 = |a: &RgbImage, b: &RgbImage| {
        let (a, b) = (a.as_raw(), b.as_raw());
        let sum: f64 = hole
            .iter()
            .flat_map(|i| (0..3).map(move |c| i * 3 + c))
            .map(|k| (f64::from(a[k]) - f64::from(b[k])).abs())
            .sum();
        sum / (3 * hole.len()) as f64
    };
    let energy = |img: &RgbImage| {
        let (w, h) = img.dimensions();
        let luma = |x: u32, y: u32| {
            let p = img.get_pixel(x.min(w - 1), y.min(h - 1));
            0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
        };
        let sum: f64 = hole
            .iter()
            .map(|&i| {
                let (x, y) = ((i % w as usize) as u32, (i / w as usize) as u32);
                let v = luma(x, y);
                (luma(x + 1, y) - v).powi(2) + (luma(x, y + 1) - v).powi(2)
            })
            .sum();
        sum / hole.len() as f64
    };
    let blur = |img: &RgbImage| image::imageops::blur(img, 4.0);
    [
        l1(truth, fill),
        l1(&blur(truth), &blur(fill)),
        energy(fill) / energy(truth).max(1e-9),
    ]
}

/// Ours, as the edit API fills an opaque layer without an ONNX inpainter.
fn ours(img: &RgbImage, mask: &GrayImage) -> RgbImage {
    let out = fill_layer(&opaque_layer(img), mask);
    image::DynamicImage::ImageRgba8(out).to_rgb8()
}

/// `img` as an opaque layer.
fn opaque_layer(img: &RgbImage) -> RgbaImage {
    image::DynamicImage::ImageRgb8(img.clone()).to_rgba8()
}

/// The edit API's fill of `layer` under `mask`, with the built-in filler.
fn fill_layer(layer: &RgbaImage, mask: &GrayImage) -> RgbaImage {
    let opts = PatchMatchOptions::default();
    inpaint_layer(layer, mask, &|i, m| patchmatch_inpaint(i, m, &opts)).expect("sizes match")
}

/// TELEA on each (image, mask): the fills and the best of `runs` times in ms; `None` when
/// OpenCV cannot be had (it is installed through pip on first use).
fn telea(cases: &[(RgbImage, GrayImage)], runs: usize) -> Option<Vec<(RgbImage, f64)>> {
    let has_cv2 = || {
        Command::new("python3")
            .args(["-c", "import cv2"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has_cv2() {
        eprintln!(
            "installing OpenCV for the TELEA reference \
             (python3 -m pip install opencv-python-headless)"
        );
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "opencv-python-headless"])
            .status();
        if !has_cv2() {
            return None;
        }
    }
    let dir = tempfile::tempdir().ok()?;
    let mut args = vec![
        "benches/inpaint/telea.py".to_owned(),
        "3".into(),
        runs.to_string(),
    ];
    for (i, (img, mask)) in cases.iter().enumerate() {
        let p = |s: &str| dir.path().join(format!("{i}.{s}.png"));
        img.save(p("in")).ok()?;
        mask.save(p("mask")).ok()?;
        for s in ["in", "mask", "out"] {
            args.push(p(s).to_string_lossy().into_owned());
        }
    }
    let run = Command::new("python3")
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !run.status.success() {
        eprintln!("telea.py: {}", String::from_utf8_lossy(&run.stderr));
        return None;
    }
    let times: Vec<f64> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    (0..cases.len())
        .map(|i| {
            let out = image::open(dir.path().join(format!("{i}.out.png"))).ok()?;
            Some((out.to_rgb8(), *times.get(i)?))
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(root: &Path, runs: usize) {
    let cases: Vec<(&str, RgbImage, GrayImage)> = cases()
        .into_iter()
        .map(|(label, file, shape)| {
            let img = image::open(root.join("tests/fixtures").join(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .to_rgb8();
            let mask = shape_mask(img.width(), img.height(), shape);
            (label, img, mask)
        })
        .collect();
    let pairs: Vec<(RgbImage, GrayImage)> = cases
        .iter()
        .map(|(_, i, m)| (i.clone(), m.clone()))
        .collect();
    let reference = telea(&pairs, runs);
    println!();
    println!("Object removal (the edit API's fill of an opaque layer) against OpenCV's TELEA:");
    println!("  L1 and structure (L1 after a σ = 4 px blur) inside the hole, 0..255 per channel;");
    println!("  texture = gradient energy of the fill / of the truth (1 = as busy, < 1 = blur).");
    println!(
        "{:<19} {:>5} | {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6}",
        "hole", "area", "L1", "struct", "tex", "ms", "L1", "struct", "tex", "ms"
    );
    println!("{:<26}   ours{:>31}", "", "TELEA");
    let mut ours_all = Vec::new();
    let mut ref_all = Vec::new();
    let mut grid = Vec::new();
    for (i, (label, img, mask)) in cases.iter().enumerate() {
        let area = mask.pixels().filter(|p| p[0] > 0).count() as f64 / mask.len() as f64;
        let (ms, fill) = super::best(runs, || ours(img, mask));
        let s = scores(img, &fill, mask);
        let unchanged = fill
            .pixels()
            .zip(img.pixels())
            .zip(mask.pixels())
            .all(|((a, b), m)| m[0] > 0 || a == b);
        assert!(unchanged, "{label}: a pixel outside the hole changed");
        ours_all.push(s);
        let theirs = reference.as_ref().map(|r| {
            let t = scores(img, &r[i].0, mask);
            ref_all.push(t);
            (t, r[i].1)
        });
        let theirs_cols = theirs.map_or_else(
            || format!("{:>6} {:>6} {:>6} {:>6}", "-", "-", "-", "-"),
            |(t, ms)| format!("{:>6.1} {:>6.1} {:>6.2} {:>6.0}", t[0], t[1], t[2], ms),
        );
        println!(
            "{label:<19} {:>4.1}% | {:>6.1} {:>6.1} {:>6.2} {:>6.0} | {theirs_cols}",
            area * 100.0,
            s[0],
            s[1],
            s[2],
            ms
        );
        grid.push([
            img.clone(),
            marked(img, mask),
            fill,
            reference
                .as_ref()
                .map_or_else(|| img.clone(), |r| r[i].0.clone()),
        ]);
    }
    let mean = |v: &[[f64; 3]], k: usize| v.iter().map(|s| s[k]).sum::<f64>() / v.len() as f64;
    let mut tex: Vec<f64> = ours_all.iter().map(|s| s[2]).collect();
    let worst = tex.iter().copied().fold(f64::MAX, f64::min);
    print!(
        "mean / median        ours: L1 {:.1}, structure {:.1}, texture median {:.2} (worst {:.2})",
        mean(&ours_all, 0),
        mean(&ours_all, 1),
        median(&mut tex),
        worst
    );
    if !ref_all.is_empty() {
        let mut rt: Vec<f64> = ref_all.iter().map(|s| s[2]).collect();
        print!(
            "; TELEA: L1 {:.1}, structure {:.1}, texture median {:.2}; ours / TELEA: L1 {:.2}, \
             structure {:.2}",
            mean(&ref_all, 0),
            mean(&ref_all, 1),
            median(&mut rt),
            mean(&ours_all, 0) / mean(&ref_all, 0),
            mean(&ours_all, 1) / mean(&ref_all, 1)
        );
    }
    println!();
    if let Some(path) = std::env::var_os("INPAINT_GRID") {
        let shapes: Vec<Shape> = self::cases().iter().map(|c| c.2).collect();
        save_grid(&grid, &shapes, &PathBuf::from(path));
    }
    speed(root, runs);
}

/// The image with the hole shown in magenta.
fn marked(img: &RgbImage, mask: &GrayImage) -> RgbImage {
    let mut out = img.clone();
    for (p, m) in out.pixels_mut().zip(mask.pixels()) {
        if m[0] > 0 {
            *p = Rgb([255, 0, 255]);
        }
    }
    out
}

/// One row per hole: truth, the hole, ours, TELEA, each cropped around the hole.
fn save_grid(rows: &[[RgbImage; 4]], shapes: &[Shape], path: &Path) {
    const CELL: u32 = 160;
    let mut out =
        RgbImage::from_pixel(CELL * 4 + 15, (CELL + 5) * rows.len() as u32, Rgb([255; 3]));
    for (r, (row, shape)) in rows.iter().zip(shapes).enumerate() {
        let (w, h) = row[0].dimensions();
        let (cx, cy, half) = match *shape {
            Shape::Blob { cx, cy, r } => (cx, cy, r * 1.6),
            Shape::Stroke { a, b, .. } => (
                (a.0 + b.0) / 2.0,
                (a.1 + b.1) / 2.0,
                ((b.0 - a.0).abs().max((b.1 - a.1).abs()) / 2.0 + 20.0).min(90.0),
            ),
        };
        let side = (2.0 * half).min(f64::from(w.min(h))) as u32;
        let x0 = (cx - f64::from(side) / 2.0).clamp(0.0, f64::from(w - side)) as u32;
        let y0 = (cy - f64::from(side) / 2.0).clamp(0.0, f64::from(h - side)) as u32;
        for (c, img) in row.iter().enumerate() {
            let crop = image::imageops::crop_imm(img, x0, y0, side, side).to_image();
            let cell = image::imageops::resize(&crop, CELL, CELL, FilterType::CatmullRom);
            image::imageops::replace(
                &mut out,
                &cell,
                i64::from(c as u32 * (CELL + 5)),
                i64::from(r as u32 * (CELL + 5)),
            );
        }
    }
    out.save(path).expect("write the grid");
    println!("grid written to {}", path.display());
}

/// The speed targets: a 140 px round brush and a 10% square hole on a 1024² photo.
fn speed(root: &Path, runs: usize) {
    let photo = image::open(root.join("tests/fixtures/photos/astronaut.png"))
        .expect("astronaut")
        .to_rgb8();
    let img = image::imageops::resize(&photo, 1024, 1024, FilterType::Triangle);
    let brush = shape_mask(
        1024,
        1024,
        Shape::Stroke {
            a: (600.0, 400.0),
            b: (600.0, 400.0),
            width: 140.0,
        },
    );
    let square = super::centred_hole(1024, 1024, 0.10);
    let holes = [("140 px brush, 1024²", brush), ("10% hole, 1024²", square)];
    let pairs: Vec<_> = holes
        .iter()
        .map(|(_, m)| (img.clone(), m.clone()))
        .collect();
    let reference = telea(&pairs, runs);
    println!();
    println!("Fill speed (best of {runs}; TELEA with 2 threads):");
    for (i, (label, mask)) in holes.iter().enumerate() {
        // timed as the edit API runs it: on the decoded layer
        let layer = opaque_layer(&img);
        let (ms, _) = super::best(runs, || fill_layer(&layer, mask));
        let theirs = reference
            .as_ref()
            .map_or_else(|| "-".to_owned(), |r| format!("{:.0} ms", r[i].1));
        println!("  {label:<22} ours {ms:>6.0} ms   TELEA {theirs}");
    }
}
