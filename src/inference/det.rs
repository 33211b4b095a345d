//! PP-OCRv4 text detection: [`TextDetector`] turns an RGB image into text-line boxes.
//!
//! Pre- and post-processing follow `rapidocr_onnxruntime` 1.4.4 (`config.yaml` and
//! `ch_ppocr_det/`), the pipeline the model ships with:
//! 1. images whose longer side exceeds 2000 px are first reduced to it, and very flat ones
//!    (height ≤ 30 px or wider than 8:1) get black bands above and below (letterbox);
//! 2. the shorter side is scaled up to 736 px when smaller (`limit_type: min`), both sides
//!    rounded to multiples of 32 (bilinear, OpenCV style);
//! 3. BGR channel order, `(x / 255 − 0.5) / 0.5`, NCHW, input `x`;
//! 4. DB post-processing of the probability map: threshold 0.3, 2×2 dilation, connected
//!    components, minimum-area rotated rectangle (drop if its short side < 3), box score =
//!    mean probability inside it (drop if < 0.5), unclip by `area × 1.6 / perimeter`
//!    (drop if the short side is then < 5), scale back to source pixels;
//! 5. boxes sorted top to bottom, then left to right within 10 px rows.
//!
//! Invariant: every returned box lies inside the source image and is at least 4 px on
//! each side.

use std::sync::Arc;

use image::RgbImage;

use super::geometry::{area_and_perimeter, components, convex_hull, in_filled_quad, min_area_rect};
use super::resize::resize_rgb8_linear;
use super::session::ModelSession;
use super::InferenceError;

const MODEL: &str = "ppocr-det";
const MAX_SIDE: usize = 2000;
const MIN_SIDE: usize = 30;
const LETTERBOX_MIN_HEIGHT: usize = 30;
const LETTERBOX_RATIO: f64 = 8.0;
const LIMIT_SIDE: usize = 736;
const THRESH: f32 = 0.3;
const BOX_THRESH: f64 = 0.5;
const UNCLIP_RATIO: f64 = 1.6;
const MIN_SIZE: f64 = 3.0;
const MAX_CANDIDATES: usize = 1000;

/// One detected text line.
#[derive(Debug, Clone, PartialEq)]
pub struct TextBox {
    /// Corners in source pixels: top-left, top-right, bottom-right, bottom-left.
    pub quad: [[f32; 2]; 4],
    /// Axis-aligned bounds of `quad` in source pixels: `[x, y, width, height]`.
    pub bbox: [u32; 4],
    /// Mean text probability inside the box, 0..1.
    pub score: f32,
}

/// The PP-OCRv4 detector; cheap to clone, shares one cached session.
#[derive(Clone)]
pub struct TextDetector {
    session: Arc<ModelSession>,
}

impl TextDetector {
    pub(crate) fn new(session: Arc<ModelSession>) -> Self {
        Self { session }
    }

    /// Text lines in `img`, in reading order.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<TextBox>, InferenceError> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return Err(InferenceError::BadInput("the image is empty".into()));
        }
        let plan = DetPlan::new(w, h);
        let input = plan.input_tensor(img.as_raw());
        let shape = [1usize, 3, plan.det_h, plan.det_w];
        let (map, mh, mw) = self.session.run(|session| {
            let tensor = ort::value::TensorRef::from_array_view((shape, input.as_slice()))
                .map_err(|e| InferenceError::failed(MODEL, e))?;
            let outputs = session
                .run(ort::inputs![tensor])
                .map_err(|e| InferenceError::failed(MODEL, e))?;
            let (out_shape, data) = outputs[0]
                .try_extract_tensor::<f32>()
                .map_err(|e| InferenceError::failed(MODEL, e))?;
            match **out_shape {
                [1, 1, mh, mw] if mh > 0 && mw > 0 && data.len() == (mh * mw) as usize => {
                    Ok((data.to_vec(), mh as usize, mw as usize))
                }
                _ => Err(InferenceError::failed(
                    MODEL,
                    format!("unexpected output shape {out_shape:?}"),
                )),
            }
        })?;
        let raw = db_boxes(&map, mw, mh, plan.work_w, plan.work_h);
        Ok(plan.to_source(raw))
    }
}

/// How a source image becomes the detector's input, and how boxes map back.
#[derive(Debug, Clone, PartialEq)]
struct DetPlan {
    src_w: usize,
    src_h: usize,
    /// Size after the max/min-side rescale (before letterboxing).
    scaled_w: usize,
    scaled_h: usize,
    /// Letterbox band height added above and below.
    pad: usize,
    /// The image the boxes are first expressed in: scaled + letterboxed.
    work_w: usize,
    work_h: usize,
    /// The network input size (multiples of 32).
    det_w: usize,
    det_h: usize,
}

/// `int(round(int(side * ratio) / 32) * 32)` with Python's round-half-to-even, at least 32
/// (where rapidocr would fail on a zero size).
fn round32(side: usize, ratio: f64) -> usize {
    let scaled = (side as f64 * ratio) as usize;
    (((scaled as f64 / 32.0).round_ties_even() as usize) * 32).max(32)
}

impl DetPlan {
    fn new(w: usize, h: usize) -> Self {
        let (mut sw, mut sh) = (w, h);
        if w.max(h) > MAX_SIDE {
            let ratio = MAX_SIDE as f64 / w.max(h) as f64;
            (sw, sh) = (round32(w, ratio), round32(h, ratio));
        }
        if sw.min(sh) < MIN_SIDE {
            let ratio = MIN_SIDE as f64 / sw.min(sh) as f64;
            (sw, sh) = (round32(sw, ratio), round32(sh, ratio));
        }
        let pad = if sh <= LETTERBOX_MIN_HEIGHT || sw as f64 / sh as f64 > LETTERBOX_RATIO {
            let new_h = ((sw as f64 / LETTERBOX_RATIO) as usize).max(LETTERBOX_MIN_HEIGHT) * 2;
            new_h.abs_diff(sh) / 2
        } else {
            0
        };
        let (work_w, work_h) = (sw, sh + 2 * pad);
        let (det_w, det_h) = if work_w.min(work_h) < LIMIT_SIDE {
            let ratio = LIMIT_SIDE as f64 / work_w.min(work_h) as f64;
            (round32(work_w, ratio), round32(work_h, ratio))
        } else {
            (round32(work_w, 1.0), round32(work_h, 1.0))
        };
        Self {
            src_w: w,
            src_h: h,
            scaled_w: sw,
            scaled_h: sh,
            pad,
            work_w,
            work_h,
            det_w,
            det_h,
        }
    }

    /// The normalised BGR NCHW input for packed RGB `src`.
    fn input_tensor(&self, src: &[u8]) -> Vec<f32> {
        let scaled = resize_rgb8_linear(src, self.src_w, self.src_h, self.scaled_w, self.scaled_h);
        let mut work = vec![0u8; self.work_w * self.work_h * 3];
        let start = self.pad * self.work_w * 3;
        work[start..start + scaled.len()].copy_from_slice(&scaled);
        drop(scaled);
        let det = resize_rgb8_linear(&work, self.work_w, self.work_h, self.det_w, self.det_h);
        let lut: Vec<f32> = (0..=255u16)
            .map(|v| (v as f32 / 255.0 - 0.5) / 0.5)
            .collect();
        let plane = self.det_w * self.det_h;
        let mut out = vec![0.0f32; 3 * plane];
        let (b, rest) = out.split_at_mut(plane);
        let (g, r) = rest.split_at_mut(plane);
        for (i, px) in det.chunks_exact(3).enumerate() {
            r[i] = lut[px[0] as usize];
            g[i] = lut[px[1] as usize];
            b[i] = lut[px[2] as usize];
        }
        out
    }

    /// Maps boxes from work-image pixels to source pixels, filters tiny ones and sorts.
    fn to_source(&self, raw: Vec<([[f64; 2]; 4], f64)>) -> Vec<TextBox> {
        let sx = self.src_w as f64 / self.scaled_w as f64;
        let sy = self.src_h as f64 / self.scaled_h as f64;
        let (max_x, max_y) = (self.src_w as f64, self.src_h as f64);
        let mut boxes: Vec<TextBox> = raw
            .into_iter()
            .filter_map(|(quad, score)| {
                let q = quad.map(|[x, y]| {
                    [
                        (x * sx).clamp(0.0, max_x),
                        ((y - self.pad as f64) * sy).clamp(0.0, max_y),
                    ]
                });
                let q = order_clockwise(q);
                let dist = |a: [f64; 2], b: [f64; 2]| {
                    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
                };
                if dist(q[0], q[1]) <= 3.0 || dist(q[0], q[3]) <= 3.0 {
                    return None;
                }
                let x0 = q.iter().map(|p| p[0]).fold(f64::MAX, f64::min).floor();
                let y0 = q.iter().map(|p| p[1]).fold(f64::MAX, f64::min).floor();
                let x1 = q.iter().map(|p| p[0]).fold(f64::MIN, f64::max).ceil();
                let y1 = q.iter().map(|p| p[1]).fold(f64::MIN, f64::max).ceil();
                Some(TextBox {
                    quad: q.map(|[x, y]| [x as f32, y as f32]),
                    bbox: [x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32],
                    score: score as f32,
                })
            })
            .collect();
        sort_reading_order(&mut boxes);
        boxes
    }
}

/// imutils' `order_points_clockwise`: top-left, top-right, bottom-right, bottom-left.
fn order_clockwise(mut pts: [[f64; 2]; 4]) -> [[f64; 2]; 4] {
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (mut left, mut right) = ([pts[0], pts[1]], [pts[2], pts[3]]);
    left.sort_by(|a, b| a[1].total_cmp(&b[1]));
    right.sort_by(|a, b| a[1].total_cmp(&b[1]));
    [left[0], right[0], right[1], left[1]]
}

/// rapidocr's `sorted_boxes`: by top-left (y, x), then boxes whose tops are within 10 px
/// are ordered left to right.
fn sort_reading_order(boxes: &mut [TextBox]) {
    boxes.sort_by(|a, b| {
        (a.quad[0][1], a.quad[0][0])
            .partial_cmp(&(b.quad[0][1], b.quad[0][0]))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for i in 0..boxes.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            if (boxes[j + 1].quad[0][1] - boxes[j].quad[0][1]).abs() < 10.0
                && boxes[j + 1].quad[0][0] < boxes[j].quad[0][0]
            {
                boxes.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

/// DB post-processing of a `mw × mh` probability map: boxes (corners TL, TR, BR, BL) in the
/// coordinates of a `dest_w × dest_h` image, with their scores.
pub(crate) fn db_boxes(
    pred: &[f32],
    mw: usize,
    mh: usize,
    dest_w: usize,
    dest_h: usize,
) -> Vec<([[f64; 2]; 4], f64)> {
    if mw == 0 || mh == 0 || pred.len() < mw * mh {
        return Vec::new();
    }
    // Threshold, then OpenCV's dilate with a 2×2 kernel (anchor at its centre (1, 1)): a
    // pixel is set when it or its left, upper or upper-left neighbour is above threshold.
    let above: Vec<bool> = pred[..mw * mh].iter().map(|&p| p > THRESH).collect();
    let mut bitmap = vec![0u8; mw * mh];
    for y in 0..mh {
        for x in 0..mw {
            let set = above[y * mw + x]
                || (x > 0 && above[y * mw + x - 1])
                || (y > 0 && above[(y - 1) * mw + x])
                || (x > 0 && y > 0 && above[(y - 1) * mw + x - 1]);
            bitmap[y * mw + x] = set as u8;
        }
    }
    let mut out = Vec::new();
    for comp in components(&bitmap, mw, mh).into_iter().take(MAX_CANDIDATES) {
        let rect = min_area_rect(&convex_hull(&comp.points));
        if rect.short_side() < MIN_SIZE {
            continue;
        }
        let corners = rect.corners();
        let score = box_score_fast(pred, mw, mh, &corners);
        if score < BOX_THRESH {
            continue;
        }
        let (area, perimeter) = area_and_perimeter(&corners);
        if perimeter <= 0.0 {
            continue;
        }
        // pyclipper offsets the corners truncated to integers; so do we, then grow the
        // rectangle of those by the offset (the min-area rectangle of a rounded offset).
        let truncated: Vec<[i32; 2]> = corners.iter().map(|p| [p[0] as i32, p[1] as i32]).collect();
        let base = min_area_rect(&convex_hull(&truncated));
        let grown = base.grown(area * UNCLIP_RATIO / perimeter);
        if grown.short_side() < MIN_SIZE + 2.0 {
            continue;
        }
        let quad = grown.corners().map(|[x, y]| {
            [
                (x / mw as f64 * dest_w as f64)
                    .round()
                    .clamp(0.0, dest_w as f64),
                (y / mh as f64 * dest_h as f64)
                    .round()
                    .clamp(0.0, dest_h as f64),
            ]
        });
        out.push((quad, score));
    }
    out
}

/// PP-OCR's `box_score_fast`: the mean of `pred` over the pixels of the quad's filled
/// polygon (corners truncated to integers, as `fillPoly` gets them).
fn box_score_fast(pred: &[f32], mw: usize, mh: usize, quad: &[[f64; 2]; 4]) -> f64 {
    let clamp = |v: f64, hi: usize| (v as i64).clamp(0, hi as i64 - 1) as usize;
    let xmin = clamp(
        quad.iter().map(|p| p[0]).fold(f64::MAX, f64::min).floor(),
        mw,
    );
    let xmax = clamp(
        quad.iter().map(|p| p[0]).fold(f64::MIN, f64::max).ceil(),
        mw,
    );
    let ymin = clamp(
        quad.iter().map(|p| p[1]).fold(f64::MAX, f64::min).floor(),
        mh,
    );
    let ymax = clamp(
        quad.iter().map(|p| p[1]).fold(f64::MIN, f64::max).ceil(),
        mh,
    );
    let int_quad = quad.map(|[x, y]| [(x - xmin as f64).trunc(), (y - ymin as f64).trunc()]);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in ymin..=ymax {
        for x in xmin..=xmax {
            if in_filled_quad(&int_quad, [(x - xmin) as f64, (y - ymin) as f64]) {
                sum += pred[y * mw + x] as f64;
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probability map with two filled text-like blobs and one speck of noise.
    fn synthetic_map() -> (Vec<f32>, usize, usize) {
        let (w, h) = (200usize, 100usize);
        let mut map = vec![0.02f32; w * h];
        let mut fill = |x0: usize, y0: usize, x1: usize, y1: usize, p: f32| {
            for y in y0..y1 {
                for x in x0..x1 {
                    map[y * w + x] = p;
                }
            }
        };
        fill(20, 10, 120, 30, 0.9); // line 1
        fill(30, 60, 180, 80, 0.8); // line 2
        fill(150, 10, 152, 12, 0.95); // 2×2 speck: below min size
        fill(150, 40, 190, 50, 0.35); // above thresh but low mean score
        (map, w, h)
    }

    #[test]
    fn db_finds_the_two_lines_and_unclips_them() {
        let (map, w, h) = synthetic_map();
        let boxes = db_boxes(&map, w, h, w * 2, h * 2);
        assert_eq!(boxes.len(), 2, "{boxes:?}");
        let (quad, score) = &boxes[0];
        // The dilated box also covers one row and column of background (0.02).
        let expect = (2000.0 * 0.9 + 121.0 * 0.02) / 2121.0;
        assert!((score - expect).abs() < 1e-4, "{score}");
        // Blob pixels 20..=119 × 10..=29, dilated by one to 20..=120 × 10..=30: 100 × 20.
        // Unclip distance = 2000 · 1.6 / 240 = 13.33; doubled coordinates.
        let d = 2000.0 * 1.6 / 240.0;
        // (The top edge, 10 − 13.3 < 0, is clamped to the image.)
        let expect_tl = [((20.0 - d) * 2.0f64).round(), 0.0];
        let expect_br = [
            ((120.0 + d) * 2.0f64).round(),
            ((30.0 + d) * 2.0f64).round(),
        ];
        assert_eq!(quad[0], expect_tl, "{quad:?}");
        assert_eq!(quad[2], expect_br, "{quad:?}");
        let expect = (3000.0 * 0.8 + 171.0 * 0.02) / 3171.0;
        assert!((boxes[1].1 - expect).abs() < 1e-4, "{}", boxes[1].1);
    }

    #[test]
    fn db_on_an_empty_map_finds_nothing() {
        assert!(db_boxes(&vec![0.1; 64 * 64], 64, 64, 64, 64).is_empty());
        assert!(db_boxes(&[], 0, 0, 10, 10).is_empty());
    }

    #[test]
    fn db_finds_a_rotated_line_as_a_rotated_box() {
        let (w, h) = (160usize, 160usize);
        let mut map = vec![0.0f32; w * h];
        for t in 0..100 {
            for k in 0..12 {
                let (x, y) = (20 + t + k, 20 + t);
                map[y * w + x] = 0.9;
            }
        }
        let boxes = db_boxes(&map, w, h, w, h);
        assert_eq!(boxes.len(), 1);
        let q = boxes[0].0;
        // A 45° box: its top-left and top-right corners differ in both x and y.
        assert!((q[1][1] - q[0][1]).abs() > 50.0, "{q:?}");
    }

    #[test]
    fn plan_follows_rapidocr_sizes() {
        // 720×260: min side 260 < 736 → ratio 2.83 → 2038×736 → 2048×736.
        let p = DetPlan::new(720, 260);
        assert_eq!((p.det_w, p.det_h, p.pad), (2048, 736, 0));
        // 4000×3000: reduced to 2000×1500 → round(62.5) = 62 (half to even) → 1984×1504,
        // then kept (min side ≥ 736).
        let p = DetPlan::new(4000, 3000);
        assert_eq!((p.scaled_w, p.scaled_h), (1984, 1504));
        assert_eq!((p.det_w, p.det_h), (1984, 1504));
        // Degenerate strips still give a valid input size.
        let p = DetPlan::new(5000, 3);
        assert!(
            p.det_w >= 32 && p.det_h >= 32 && p.det_h.is_multiple_of(32),
            "{p:?}"
        );
        // A flat banner 900×40 is letterboxed: new_h = max(112, 30)·2 = 224 → pad 92.
        let p = DetPlan::new(900, 40);
        assert_eq!((p.pad, p.work_h), (92, 224));
        assert_eq!(p.det_h % 32, 0);
        assert_eq!(p.det_w % 32, 0);
    }

    #[test]
    fn input_tensor_is_bgr_and_normalised() {
        let p = DetPlan {
            src_w: 2,
            src_h: 1,
            scaled_w: 2,
            scaled_h: 1,
            pad: 0,
            work_w: 2,
            work_h: 1,
            det_w: 2,
            det_h: 1,
        };
        let t = p.input_tensor(&[255, 0, 0, 0, 0, 255]);
        // planes B, G, R
        assert_eq!(t, vec![-1.0, 1.0, -1.0, -1.0, 1.0, -1.0]);
    }

    #[test]
    fn to_source_maps_filters_and_sorts() {
        let p = DetPlan::new(720, 260);
        let quad = |x0: f64, y0: f64, x1: f64, y1: f64| [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
        let raw = vec![
            (quad(300.0, 104.0, 400.0, 140.0), 0.9), // right, 4 px lower: same row
            (quad(10.0, 100.0, 200.0, 140.0), 0.8),  // left
            (quad(10.0, 10.0, 12.0, 40.0), 0.9),     // 2 px wide: dropped
            (quad(10.0, 0.0, 700.0, 30.0), 0.7),     // top line
        ];
        let boxes = p.to_source(raw);
        assert_eq!(boxes.len(), 3);
        assert_eq!(boxes[0].bbox, [10, 0, 690, 30]);
        assert_eq!(boxes[1].bbox, [10, 100, 190, 40]);
        assert_eq!(boxes[2].bbox, [300, 104, 100, 36]);
    }
}
