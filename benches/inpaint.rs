//! Background-completion benchmark (`cargo bench --bench inpaint`): quality and speed of the
//! built-in fillers, side by side in one run.
//!
//! Quality: each scikit-image texture in `tests/fixtures/textures/` (512×512, CC0) gets a
//! centred square hole of 10% of its area (162×162); the hole is filled by PatchMatch and by
//! diffusion and compared with the original pixels inside the hole: mean L1 (0..255 per
//! channel), and two texture statistics as ratios filled / true — the standard deviation of
//! the hole's pixels, and the mean absolute horizontal + vertical gradient. A blurry fill has
//! ratios far below 1. (A configured ONNX inpainting model would be a third column; none is
//! bundled, so it is skipped.)
//!
//! Speed: PatchMatch with default options, best of N, on photos from
//! `tests/fixtures/photos/`: 512×512 with a 10% hole, 800×800 with a 30% hole, and a
//! 600×400 photo with its own foreground matte as the hole (the decomposition's real case).
//!
//! Then object removal against OpenCV's TELEA ([`removal`]). `cargo bench --bench inpaint --
//! removal` runs only that part.

#[path = "inpaint/removal.rs"]
mod removal;

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::imageops::FilterType;
use image::{GrayImage, Luma, RgbImage};
use image_layered::engine::inpaint::{diffusion_fill, patchmatch_inpaint, PatchMatchOptions};

const RUNS: usize = 3;

fn best<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(f());
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    (best, last.expect("n > 0"))
}

/// A centred rectangle covering `fraction` of the image, same aspect as the image.
fn centred_hole(w: u32, h: u32, fraction: f64) -> GrayImage {
    let s = fraction.sqrt();
    let (hw, hh) = (
        (f64::from(w) * s).round() as u32,
        (f64::from(h) * s).round() as u32,
    );
    let (x0, y0) = ((w - hw) / 2, (h - hh) / 2);
    GrayImage::from_fn(w, h, |x, y| {
        let inside = (x0..x0 + hw).contains(&x) && (y0..y0 + hh).contains(&y);
        Luma([if inside { 255 } else { 0 }])
    })
}

/// What a fill scores inside the hole against the truth.
struct Scores {
    /// Mean |filled − truth| per channel, 0..255.
    l1: f64,
    /// Standard deviation of the hole's pixels, filled / truth.
    std_ratio: f64,
    /// Mean absolute horizontal + vertical difference inside the hole, filled / truth.
    grad_ratio: f64,
    /// Mean |local std (5×5) of filled − of truth| over the hole: where the texture is busy.
    local_std_l1: f64,
}

fn score(truth: &RgbImage, filled: &RgbImage, mask: &GrayImage) -> Scores {
    let (w, h) = truth.dimensions();
    let hole = |x: u32, y: u32| mask.get_pixel(x, y)[0] > 0;
    let luma = |img: &RgbImage, x: u32, y: u32| {
        let p = img.get_pixel(x, y);
        (f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2])) / 3.0
    };
    let local_std = |img: &RgbImage, x: u32, y: u32| {
        let (mut s, mut s2, mut n) = (0.0, 0.0, 0.0);
        for yy in y.saturating_sub(2)..(y + 3).min(h) {
            for xx in x.saturating_sub(2)..(x + 3).min(w) {
                let v = luma(img, xx, yy);
                (s, s2, n) = (s + v, s2 + v * v, n + 1.0);
            }
        }
        let m = s / n;
        (s2 / n - m * m).max(0.0).sqrt()
    };
    let stats = |img: &RgbImage| {
        let (mut s, mut s2, mut g, mut k, mut gk) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (x, y, px) in img.enumerate_pixels() {
            if !hole(x, y) {
                continue;
            }
            for c in 0..3 {
                let v = f64::from(px[c]);
                (s, s2, k) = (s + v, s2 + v * v, k + 1.0);
                for (nx, ny) in [(x + 1, y), (x, y + 1)] {
                    if nx < w && ny < h && hole(nx, ny) {
                        g += (v - f64::from(img.get_pixel(nx, ny)[c])).abs();
                        gk += 1.0;
                    }
                }
            }
        }
        let mean = s / k;
        ((s2 / k - mean * mean).max(0.0).sqrt(), g / gk)
    };
    let (mut l1, mut ls, mut n) = (0.0, 0.0, 0.0);
    for (x, y, m) in mask.enumerate_pixels() {
        if m[0] > 0 {
            let (a, b) = (truth.get_pixel(x, y), filled.get_pixel(x, y));
            for c in 0..3 {
                l1 += (f64::from(a[c]) - f64::from(b[c])).abs();
            }
            ls += (local_std(truth, x, y) - local_std(filled, x, y)).abs();
            n += 1.0;
        }
    }
    let ((ts, tg), (fs, fg)) = (stats(truth), stats(filled));
    Scores {
        l1: l1 / (3.0 * n),
        std_ratio: fs / ts,
        grad_ratio: fg / tg,
        local_std_l1: ls / n,
    }
}

/// The reference "plausible but unaligned" fill: the hole gets a verbatim copy of the
/// same-size block of real texture just right of it (or left, if it does not fit). Any
/// texture synthesis that is not aligned with the hidden truth scores about this L1.
fn block_copy(truth: &RgbImage, mask: &GrayImage) -> RgbImage {
    let xs = mask.enumerate_pixels().filter(|p| p.2[0] > 0).map(|p| p.0);
    let (x0, x1) = (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0));
    let side = x1 - x0 + 1;
    let shift = if x1 + side < truth.width() {
        side as i64
    } else {
        -(side as i64)
    };
    let mut out = truth.clone();
    for (x, y, m) in mask.enumerate_pixels() {
        if m[0] > 0 {
            out.put_pixel(x, y, *truth.get_pixel((i64::from(x) + shift) as u32, y));
        }
    }
    out
}

fn load_rgb(path: &Path) -> RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if std::env::args().any(|a| a == "removal") {
        removal::run(&root, RUNS);
        return;
    }
    let opts = PatchMatchOptions::default();

    println!("Background completion quality: 10% centred square hole, scored inside the hole.");
    println!("  L1: mean |filled − truth| per channel (0..255); std, grad: filled / truth (1 = as");
    println!("  busy as the real texture); lstd: mean |local 5×5 std filled − truth| (0..255).");
    println!("  block copy = the real texture block next to the hole pasted in: the L1 that any");
    println!("  plausible fill not aligned with the hidden truth scores.");
    println!(
        "{:<8} {:<11} {:>7} {:>6} {:>6} {:>6} {:>8}",
        "texture", "method", "L1", "std", "grad", "lstd", "ms"
    );
    for name in ["brick", "grass", "gravel"] {
        let truth = load_rgb(&root.join(format!("tests/fixtures/textures/{name}.png")));
        let mask = centred_hole(truth.width(), truth.height(), 0.10);
        let (pm_ms, pm) = best(RUNS, || patchmatch_inpaint(&truth, &mask, &opts));
        let (df_ms, df) = best(RUNS, || diffusion_fill(&truth, &mask));
        let bc = block_copy(&truth, &mask);
        for (method, img, ms) in [
            ("patchmatch", &pm, Some(pm_ms)),
            ("diffusion", &df, Some(df_ms)),
            ("block copy", &bc, None),
        ] {
            let s = score(&truth, img, &mask);
            let ms = ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0}"));
            println!(
                "{name:<8} {method:<11} {:>7.2} {:>6.2} {:>6.2} {:>6.2} {ms:>8}",
                s.l1, s.std_ratio, s.grad_ratio, s.local_std_l1
            );
        }
        if let Some(dir) = std::env::var_os("INPAINT_BENCH_OUT") {
            let dir = PathBuf::from(dir);
            pm.save(dir.join(format!("{name}.patchmatch.png"))).unwrap();
            df.save(dir.join(format!("{name}.diffusion.png"))).unwrap();
        }
    }

    println!();
    println!("PatchMatch speed (default options, best of {RUNS}):");
    let astronaut = load_rgb(&root.join("tests/fixtures/photos/astronaut.png"));
    let coffee = load_rgb(&root.join("tests/fixtures/photos/coffee.png"));
    let coffee800 = image::imageops::resize(&coffee, 800, 800, FilterType::Triangle);
    let matte = image::open(root.join("tests/fixtures/photos/coffee.matte.png"))
        .expect("coffee matte")
        .to_luma8();
    let cases = [
        (
            "astronaut 512×512, 10% hole",
            astronaut.clone(),
            centred_hole(512, 512, 0.10),
        ),
        (
            "coffee 800×800, 30% hole",
            coffee800,
            centred_hole(800, 800, 0.30),
        ),
        ("coffee 600×400, its matte as hole", coffee, matte),
    ];
    for (i, (label, img, mask)) in cases.into_iter().enumerate() {
        let frac = mask.pixels().filter(|p| p[0] > 0).count() as f64 / mask.len() as f64;
        let (ms, out) = best(RUNS, || patchmatch_inpaint(&img, &mask, &opts));
        if let Some(dir) = std::env::var_os("INPAINT_BENCH_OUT") {
            out.save(PathBuf::from(dir).join(format!("speed{i}.png")))
                .unwrap();
        }
        let (dms, _) = best(RUNS, || diffusion_fill(&img, &mask));
        println!(
            "  {label:<36} hole {:>4.1}%  patchmatch {ms:>7.0} ms   diffusion {dms:>5.0} ms",
            frac * 100.0
        );
    }
    removal::run(&root, RUNS);
}
