//! The metrics of `score.py`, ported so that they give the same numbers for the same files:
//! recomposition PSNR over black, soft IoU of foreground alpha with the best predicted
//! layer, alpha-weighted RGB L1 on those matches, background-completion L1 where the true
//! foreground hid the background, and the layer-count error.
//!
//! Invariants: images load as `PIL.Image.convert("RGBA")` / `("RGB")` do for 8-bit PNGs (all
//! of the dataset and everything [`export`](crate::engine::export) writes; 16-bit PNGs are
//! rounded here where PIL truncates); a pixel value `v` means `v / 255.0` in `f64`. The
//! recomposition runs in `f64` with score.py's exact operation order; the other sums are
//! exact integer sums divided once, which agrees with numpy's float sums to ~1e-12.

use std::fs;
use std::path::{Path, PathBuf};

use image::{RgbImage, RgbaImage};

use super::EvalError;

/// score.py's message for a stack it cannot score.
pub(crate) const WRONG_SIZE: &str = "missing layers or wrong size";

/// One design's ground truth: the flat input and its layers back to front.
pub(crate) struct Truth {
    pub(crate) comp: RgbImage,
    pub(crate) gts: Vec<RgbaImage>,
}

/// The per-design numbers, before timing is attached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metrics {
    pub(crate) recon_psnr: f64,
    pub(crate) fg_iou: f64,
    pub(crate) fg_l1: f64,
    pub(crate) bg_l1: f64,
    pub(crate) count_err: usize,
    pub(crate) gt_layers: usize,
    pub(crate) pred_layers: usize,
}

/// Loads `composite.png` and `gt/*.png` (sorted by file name) of a design.
pub(crate) fn load_truth(design_dir: &Path) -> Result<Truth, EvalError> {
    let comp = load_image(&design_dir.join("composite.png"))?.to_rgb8();
    let gt_dir = design_dir.join("gt");
    let gts = sorted_names(&gt_dir)?
        .into_iter()
        .map(|name| Ok(load_image(&gt_dir.join(name))?.to_rgba8()))
        .collect::<Result<Vec<_>, EvalError>>()?;
    if gts.is_empty() {
        return Err(EvalError::Dataset(format!(
            "{}: no ground-truth layers",
            gt_dir.display()
        )));
    }
    if let Some(g) = gts.iter().find(|g| g.dimensions() != comp.dimensions()) {
        let (w, h) = g.dimensions();
        return Err(EvalError::Dataset(format!(
            "{}: a ground-truth layer is {w}x{h}, the composite {}x{}",
            gt_dir.display(),
            comp.width(),
            comp.height()
        )));
    }
    Ok(Truth { comp, gts })
}

/// The predicted layer files of `pred_dir`, back to front, chosen as score.py's `pred_files`:
/// the `file` of every object in `manifest.json`'s `layers` when they are all non-empty
/// strings, else every `*.png` (case-insensitive) in file-name order.
pub(crate) fn pred_files(pred_dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let man = pred_dir.join("manifest.json");
    if man.exists() {
        let bytes = fs::read(&man).map_err(|source| EvalError::Io {
            path: man.clone(),
            source,
        })?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| EvalError::Manifest {
                path: man.clone(),
                source,
            })?;
        let files: Vec<Option<&str>> = json
            .get("layers")
            .and_then(|l| l.as_array())
            .map(|layers| {
                layers
                    .iter()
                    .filter(|l| l.is_object())
                    .map(|l| l.get("file").and_then(|f| f.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        if !files.is_empty() && files.iter().all(|f| f.is_some_and(|f| !f.is_empty())) {
            return Ok(files
                .into_iter()
                .flatten()
                .map(|f| pred_dir.join(f))
                .collect());
        }
    }
    Ok(sorted_names(pred_dir)?
        .into_iter()
        .filter(|n| n.to_lowercase().ends_with(".png"))
        .map(|n| pred_dir.join(n))
        .collect())
}

/// Loads the predicted layers of `pred_dir` as RGBA, back to front.
pub(crate) fn load_preds(pred_dir: &Path) -> Result<Vec<RgbaImage>, EvalError> {
    pred_files(pred_dir)?
        .iter()
        .map(|p| Ok(load_image(p)?.to_rgba8()))
        .collect()
}

/// Scores predicted layers (back to front) against a design's truth, as `score_one` does.
pub(crate) fn score(truth: &Truth, preds: &[&RgbaImage]) -> Result<Metrics, EvalError> {
    let (w, h) = truth.comp.dimensions();
    if preds.is_empty() || preds.iter().any(|p| p.dimensions() != (w, h)) {
        return Err(EvalError::Prediction(WRONG_SIZE.to_owned()));
    }
    let recon_psnr = recon_psnr(&truth.comp, preds);

    let cands = if preds.len() > 1 { &preds[1..] } else { preds };
    let (mut ious, mut l1s) = (Vec::new(), Vec::new());
    for g in &truth.gts[1..] {
        let (mut best, mut best_l1) = (0.0, 1.0);
        for p in cands {
            let m = match_sums(g, p);
            let iou = if m.max == 0 {
                1.0
            } else {
                m.min as f64 / m.max as f64
            };
            if iou > best {
                best = iou;
                // sum(|g - p| * w) / max(1e-9, 3 * sum(w)) with every value over 255.
                best_l1 = if m.min == 0 {
                    0.0
                } else {
                    m.weighted_diff as f64 / (765.0 * m.min as f64)
                };
            }
        }
        ious.push(best);
        l1s.push(best_l1);
    }

    Ok(Metrics {
        recon_psnr,
        fg_iou: if ious.is_empty() { 1.0 } else { mean(&ious) },
        fg_l1: if l1s.is_empty() { 0.0 } else { mean(&l1s) },
        bg_l1: bg_l1(&truth.gts, preds[0]),
        count_err: preds.len().abs_diff(truth.gts.len()),
        gt_layers: truth.gts.len(),
        pred_layers: preds.len(),
    })
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Decodes an image file by its content, as PIL's `Image.open` does.
fn load_image(path: &Path) -> Result<image::DynamicImage, EvalError> {
    let image_err = |source| EvalError::Image {
        path: path.to_path_buf(),
        source,
    };
    image::ImageReader::open(path)
        .map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .decode()
        .map_err(image_err)
}

/// Entry names of `dir` in code-point order (Python's `sorted(os.listdir(d))`).
fn sorted_names(dir: &Path) -> Result<Vec<String>, EvalError> {
    let io = |source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        names.push(
            entry
                .map_err(io)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    Ok(names)
}

/// `v / 255.0` for every byte value, as numpy computes it.
fn unit_table() -> [f64; 256] {
    std::array::from_fn(|v| v as f64 / 255.0)
}

/// PSNR (dB, capped at 99) of the stack composited over black in `f64` against `comp`.
fn recon_psnr(comp: &RgbImage, preds: &[&RgbaImage]) -> f64 {
    let u = unit_table();
    let layers: Vec<&[u8]> = preds.iter().map(|p| p.as_raw().as_slice()).collect();
    let mut sq = 0.0f64;
    for (i, want) in comp.as_raw().chunks_exact(3).enumerate() {
        let mut out = [0.0f64; 3];
        for l in &layers {
            let px = &l[i * 4..i * 4 + 4];
            let a = u[px[3] as usize];
            for c in 0..3 {
                // score.py: out = l[..., :3] * a + out * (1 - a), in this order.
                out[c] = u[px[c] as usize] * a + out[c] * (1.0 - a);
            }
        }
        for c in 0..3 {
            let d = out[c] - u[want[c] as usize];
            sq += d * d;
        }
    }
    let mse = sq / comp.as_raw().len().max(1) as f64;
    if mse == 0.0 {
        99.0
    } else {
        (10.0 * (1.0 / mse).log10()).min(99.0)
    }
}

/// Integer sums (in units of 1/255) for one ground-truth / predicted layer pair.
struct MatchSums {
    /// Σ min(alpha_g, alpha_p): the IoU numerator and the L1 weight.
    min: u64,
    /// Σ max(alpha_g, alpha_p).
    max: u64,
    /// Σ over pixels and channels of |g - p| · min(alpha_g, alpha_p).
    weighted_diff: u64,
}

fn match_sums(g: &RgbaImage, p: &RgbaImage) -> MatchSums {
    let mut s = MatchSums {
        min: 0,
        max: 0,
        weighted_diff: 0,
    };
    for (g, p) in g.as_raw().chunks_exact(4).zip(p.as_raw().chunks_exact(4)) {
        let (ga, pa) = (g[3], p[3]);
        let w = ga.min(pa) as u64;
        s.min += w;
        s.max += ga.max(pa) as u64;
        if w > 0 {
            let d: u64 = (0..3).map(|c| g[c].abs_diff(p[c]) as u64).sum();
            s.weighted_diff += d * w;
        }
    }
    s
}

/// Mean RGB L1 of the bottom predicted layer against the true background over the pixels
/// where any true foreground layer has alpha > 0.5 (0 when there are none).
fn bg_l1(gts: &[RgbaImage], bottom: &RgbaImage) -> f64 {
    let n = bottom.as_raw().len() / 4;
    let mut hidden = vec![false; n];
    for g in &gts[1..] {
        for (h, px) in hidden.iter_mut().zip(g.as_raw().chunks_exact(4)) {
            // a / 255 > 0.5 exactly when a >= 128.
            *h |= px[3] >= 128;
        }
    }
    let (mut sum, mut count) = (0u64, 0u64);
    let pairs = bottom
        .as_raw()
        .chunks_exact(4)
        .zip(gts[0].as_raw().chunks_exact(4));
    for ((p, g), h) in pairs.zip(&hidden) {
        if *h {
            count += 1;
            sum += (0..3).map(|c| p[c].abs_diff(g[c]) as u64).sum::<u64>();
        }
    }
    if count == 0 {
        0.0
    } else {
        sum as f64 / (765.0 * count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, Rgba};

    fn truth() -> Truth {
        let comp = RgbImage::from_pixel(4, 2, Rgb([0, 0, 0]));
        let bg = RgbaImage::from_pixel(4, 2, Rgba([0, 0, 0, 255]));
        let mut fg = RgbaImage::new(4, 2);
        fg.put_pixel(0, 0, Rgba([255, 0, 0, 255]));
        fg.put_pixel(1, 0, Rgba([255, 0, 0, 128]));
        fg.put_pixel(2, 0, Rgba([255, 0, 0, 127]));
        Truth {
            comp,
            gts: vec![bg, fg],
        }
    }

    #[test]
    fn soft_iou_l1_and_hidden_mask() {
        let t = truth();
        let bottom = RgbaImage::from_pixel(4, 2, Rgba([51, 0, 0, 255]));
        let mut p = RgbaImage::new(4, 2);
        p.put_pixel(0, 0, Rgba([0, 0, 0, 255]));
        p.put_pixel(3, 1, Rgba([255, 0, 0, 100]));
        let m = score(&t, &[&bottom, &p]).unwrap();
        // min: 255; max: 255 + 128 + 127 + 100.
        assert!((m.fg_iou - 255.0 / 610.0).abs() < 1e-15);
        // |255 - 0| on one channel, weight 255, over 3 · 255 weight.
        assert!((m.fg_l1 - 1.0 / 3.0).abs() < 1e-15);
        // Hidden: pixels 0 and 1 (alpha 255, 128), not 2 (127); error 51 on one channel.
        assert!((m.bg_l1 - 51.0 / 765.0).abs() < 1e-15);
        assert_eq!((m.count_err, m.gt_layers, m.pred_layers), (0, 2, 2));
        assert!(m.recon_psnr < 99.0);
    }

    #[test]
    fn single_layer_is_its_own_candidate_and_wrong_sizes_fail() {
        let t = truth();
        let flat = RgbaImage::from_pixel(4, 2, Rgba([0, 0, 0, 255]));
        let m = score(&t, &[&flat]).unwrap();
        assert_eq!(m.recon_psnr, 99.0);
        assert!((m.fg_iou - 510.0 / 2040.0).abs() < 1e-15);
        assert_eq!(m.count_err, 1);
        let small = RgbaImage::new(2, 2);
        assert_eq!(score(&t, &[&small]).unwrap_err().code(), "eval_prediction");
        assert_eq!(score(&t, &[]).unwrap_err().code(), "eval_prediction");
    }

    #[test]
    fn recon_matches_float_over() {
        let comp = RgbImage::from_pixel(1, 1, Rgb([100, 100, 100]));
        let bg = RgbaImage::from_pixel(1, 1, Rgba([200, 200, 200, 255]));
        let top = RgbaImage::from_pixel(1, 1, Rgba([0, 0, 0, 128]));
        let t = Truth {
            comp,
            gts: vec![bg.clone()],
        };
        let got = score(&t, &[&bg, &top]).unwrap().recon_psnr;
        let a = 128.0 / 255.0;
        let out = 200.0 / 255.0 * (1.0 - a);
        let d: f64 = out - 100.0 / 255.0;
        assert_eq!(got, 10.0 * (1.0 / (d * d)).log10());
    }
}
