//! PP-OCRv4 text recognition: [`TextRecognizer`] reads the text of detected boxes.
//!
//! Follows `rapidocr_onnxruntime` 1.4.4 (`main.py`, `ch_ppocr_cls/`, `ch_ppocr_rec/`):
//! 1. each box's quad is sampled upright (perspective crop, bilinear, replicated border;
//!    rapidocr uses bicubic) at `max edge length` size; crops at least 1.5× taller than
//!    wide are turned 90° counter-clockwise (vertical text);
//! 2. the angle classifier (`ch_ppocr_mobile_v2.0_cls`, 3×48×192 input) turns a crop by
//!    180° when it says "180" with probability > 0.9;
//! 3. crops are sorted by aspect ratio and batched by 6; each batch's width is
//!    `48 × max(320/48, widest ratio)` (capped at [`MAX_REC_WIDTH`]), each crop is resized to
//!    height 48 keeping its aspect (OpenCV-style bilinear), BGR, `(x/255 − 0.5)/0.5`, and
//!    right-padded with zeros;
//! 4. CTC greedy decoding: arg-max per time step, repeats collapsed, blank (index 0)
//!    dropped; the confidence is the mean max-probability of the kept steps (0 when none).
//!    The alphabet is the model's custom metadata `character` split on newlines, with the
//!    blank prepended and a space appended, exactly as PaddleOCR and rapidocr build it.
//!
//! Results come back in the order of the boxes given; rapidocr additionally drops results
//! with confidence < 0.5, which is left to callers.

use std::sync::Arc;

use image::RgbImage;

use super::det::TextBox;
use super::resize::resize_rgb8_linear;
use super::session::ModelSession;
use super::warp::warp_quad_rgb8;
use super::InferenceError;

const REC_MODEL: &str = "ppocr-rec";
const CLS_MODEL: &str = "ppocr-cls";
const REC_HEIGHT: usize = 48;
const REC_MIN_WIDTH: usize = 320;
/// The widest recognition input (a 66:1 line); longer lines are squeezed to fit.
pub(crate) const MAX_REC_WIDTH: usize = 3200;
const CLS_HEIGHT: usize = 48;
const CLS_WIDTH: usize = 192;
const CLS_THRESH: f32 = 0.9;
const BATCH: usize = 6;

/// The PP-OCRv4 recogniser plus the text-angle classifier; cheap to clone.
#[derive(Clone)]
pub struct TextRecognizer {
    rec: Arc<ModelSession>,
    cls: Arc<ModelSession>,
    alphabet: Arc<Vec<String>>,
}

/// An upright crop of one text line (packed RGB).
#[derive(Debug, Clone, PartialEq)]
struct Crop {
    pixels: Vec<u8>,
    w: usize,
    h: usize,
}

impl Crop {
    fn ratio(&self) -> f64 {
        self.w as f64 / self.h as f64
    }

    fn rotated_180(&self) -> Crop {
        let mut pixels = Vec::with_capacity(self.pixels.len());
        for px in self.pixels.chunks_exact(3).rev() {
            pixels.extend_from_slice(px);
        }
        Crop { pixels, ..*self }
    }

    /// numpy's `rot90` (counter-clockwise): output (w', h') = (h, w).
    fn rotated_ccw(&self) -> Crop {
        let (w, h) = (self.w, self.h);
        let mut pixels = vec![0u8; w * h * 3];
        for oy in 0..w {
            for ox in 0..h {
                let (sx, sy) = (w - 1 - oy, ox);
                let (s, o) = ((sy * w + sx) * 3, (oy * h + ox) * 3);
                pixels[o..o + 3].copy_from_slice(&self.pixels[s..s + 3]);
            }
        }
        Crop { pixels, w: h, h: w }
    }
}

impl TextRecognizer {
    /// Builds the recogniser; reads the alphabet from the model's metadata.
    pub(crate) fn new(
        rec: Arc<ModelSession>,
        cls: Arc<ModelSession>,
    ) -> Result<Self, InferenceError> {
        let character = rec.inspect(|session| {
            session
                .metadata()
                .ok()
                .and_then(|meta| meta.custom("character"))
        });
        let character = character.ok_or_else(|| {
            InferenceError::failed(REC_MODEL, "the model has no `character` metadata")
        })?;
        Ok(Self {
            rec,
            cls,
            alphabet: Arc::new(alphabet(&character)),
        })
    }

    /// The text and confidence (0..1) of each box, in the order given.
    pub fn recognize(
        &self,
        img: &RgbImage,
        boxes: &[TextBox],
    ) -> Result<Vec<(String, f32)>, InferenceError> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut crops: Vec<Crop> = boxes
            .iter()
            .map(|b| crop_box(img.as_raw(), w, h, &b.quad))
            .collect();
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        self.fix_upside_down(&mut crops)?;
        let mut order: Vec<usize> = (0..crops.len()).collect();
        order.sort_by(|&a, &b| crops[a].ratio().total_cmp(&crops[b].ratio()));
        let mut results = vec![(String::new(), 0.0f32); crops.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&Crop> = chunk.iter().map(|&i| &crops[i]).collect();
            let (input, width) = rec_batch(&batch);
            let shape = [batch.len(), 3, REC_HEIGHT, width];
            let (logits, steps, classes) = run_3d(&self.rec, REC_MODEL, shape, &input)?;
            if classes != self.alphabet.len() {
                return Err(InferenceError::failed(
                    REC_MODEL,
                    format!(
                        "{classes} output classes but an alphabet of {}",
                        self.alphabet.len()
                    ),
                ));
            }
            for (k, &i) in chunk.iter().enumerate() {
                let rows = &logits[k * steps * classes..(k + 1) * steps * classes];
                results[i] = ctc_decode(rows, classes, &self.alphabet);
            }
        }
        Ok(results)
    }

    /// Turns crops the angle classifier reads as upside down.
    fn fix_upside_down(&self, crops: &mut [Crop]) -> Result<(), InferenceError> {
        let indices: Vec<usize> = (0..crops.len()).collect();
        for chunk in indices.chunks(BATCH) {
            let mut input = vec![0.0f32; chunk.len() * 3 * CLS_HEIGHT * CLS_WIDTH];
            for (k, &i) in chunk.iter().enumerate() {
                let per = 3 * CLS_HEIGHT * CLS_WIDTH;
                fill_normalised(&crops[i], CLS_WIDTH, &mut input[k * per..(k + 1) * per]);
            }
            let shape = [chunk.len(), 3, CLS_HEIGHT, CLS_WIDTH];
            let probs = run_2d(&self.cls, CLS_MODEL, shape, &input)?;
            for (k, &i) in chunk.iter().enumerate() {
                let p = &probs[k * 2..k * 2 + 2];
                if p[1] > p[0] && p[1] > CLS_THRESH {
                    crops[i] = crops[i].rotated_180();
                }
            }
        }
        Ok(())
    }
}

/// PaddleOCR's alphabet: blank, the metadata's lines, then a space.
fn alphabet(character: &str) -> Vec<String> {
    let mut chars = vec![String::new()];
    chars.extend(character.lines().map(str::to_owned));
    chars.push(" ".to_owned());
    chars
}

/// The upright crop of a quad (rapidocr's `get_rotate_crop_image`).
fn crop_box(src: &[u8], w: usize, h: usize, quad: &[[f32; 2]; 4]) -> Crop {
    let dist = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let cw = dist(quad[0], quad[1]).max(dist(quad[2], quad[3])) as usize;
    let ch = dist(quad[0], quad[3]).max(dist(quad[1], quad[2])) as usize;
    let (cw, ch) = (cw.max(1), ch.max(1));
    let pixels = warp_quad_rgb8(src, w, h, *quad, cw, ch).unwrap_or_else(|| vec![0u8; cw * ch * 3]);
    let crop = Crop {
        pixels,
        w: cw,
        h: ch,
    };
    if ch as f64 / cw as f64 >= 1.5 {
        crop.rotated_ccw()
    } else {
        crop
    }
}

/// Resizes `crop` to height 48 keeping its aspect within `width`, writes it BGR-planar and
/// normalised into `out` (`3 × 48 × width`, pre-zeroed: the padding).
fn fill_normalised(crop: &Crop, width: usize, out: &mut [f32]) {
    let target_w = ((REC_HEIGHT as f64 * crop.ratio()).ceil() as usize).clamp(1, width);
    let resized = resize_rgb8_linear(&crop.pixels, crop.w, crop.h, target_w, REC_HEIGHT);
    let plane = REC_HEIGHT * width;
    for y in 0..REC_HEIGHT {
        for x in 0..target_w {
            let px = &resized[(y * target_w + x) * 3..(y * target_w + x) * 3 + 3];
            let at = y * width + x;
            out[at] = (px[2] as f32 / 255.0 - 0.5) / 0.5;
            out[plane + at] = (px[1] as f32 / 255.0 - 0.5) / 0.5;
            out[2 * plane + at] = (px[0] as f32 / 255.0 - 0.5) / 0.5;
        }
    }
}

/// One recognition batch: the NCHW input and its width.
fn rec_batch(batch: &[&Crop]) -> (Vec<f32>, usize) {
    let max_ratio = batch
        .iter()
        .map(|c| c.ratio())
        .fold(REC_MIN_WIDTH as f64 / REC_HEIGHT as f64, f64::max);
    let width = ((REC_HEIGHT as f64 * max_ratio) as usize).clamp(REC_MIN_WIDTH, MAX_REC_WIDTH);
    let per = 3 * REC_HEIGHT * width;
    let mut input = vec![0.0f32; batch.len() * per];
    for (k, crop) in batch.iter().enumerate() {
        fill_normalised(crop, width, &mut input[k * per..(k + 1) * per]);
    }
    (input, width)
}

/// Runs a model whose output is `[N, T, C]`; returns the data, `T` and `C`.
fn run_3d(
    model: &ModelSession,
    name: &'static str,
    shape: [usize; 4],
    input: &[f32],
) -> Result<(Vec<f32>, usize, usize), InferenceError> {
    model.run(|session| {
        let failed = |e: ort::Error| InferenceError::failed(name, e);
        let tensor = ort::value::TensorRef::from_array_view((shape, input)).map_err(failed)?;
        let outputs = session.run(ort::inputs![tensor]).map_err(failed)?;
        let (out_shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(failed)?;
        match **out_shape {
            [n, t, c] if n as usize == shape[0] && t > 0 && c > 0 => {
                Ok((data.to_vec(), t as usize, c as usize))
            }
            _ => Err(InferenceError::failed(
                name,
                format!("unexpected output shape {out_shape:?}"),
            )),
        }
    })
}

/// Runs the angle classifier: `[N, 2]` probabilities.
fn run_2d(
    model: &ModelSession,
    name: &'static str,
    shape: [usize; 4],
    input: &[f32],
) -> Result<Vec<f32>, InferenceError> {
    model.run(|session| {
        let failed = |e: ort::Error| InferenceError::failed(name, e);
        let tensor = ort::value::TensorRef::from_array_view((shape, input)).map_err(failed)?;
        let outputs = session.run(ort::inputs![tensor]).map_err(failed)?;
        let (out_shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(failed)?;
        match **out_shape {
            [n, 2] if n as usize == shape[0] => Ok(data.to_vec()),
            _ => Err(InferenceError::failed(
                name,
                format!("unexpected output shape {out_shape:?}"),
            )),
        }
    })
}

/// CTC greedy decoding of `T × classes` probabilities (row-major).
pub(crate) fn ctc_decode(probs: &[f32], classes: usize, alphabet: &[String]) -> (String, f32) {
    let mut text = String::new();
    let (mut sum, mut kept) = (0.0f64, 0usize);
    let mut prev = usize::MAX;
    for row in probs.chunks_exact(classes) {
        let (idx, p) =
            row.iter().enumerate().fold(
                (0usize, f32::MIN),
                |best, (i, &v)| if v > best.1 { (i, v) } else { best },
            );
        if idx != 0 && idx != prev {
            if let Some(ch) = alphabet.get(idx) {
                text.push_str(ch);
            }
            sum += p as f64;
            kept += 1;
        }
        prev = idx;
    }
    let confidence = if kept == 0 {
        0.0
    } else {
        (sum / kept as f64) as f32
    };
    (text, confidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_alphabet() -> Vec<String> {
        alphabet("a\nb\nc")
    }

    /// Rows of one-hot-ish probabilities for the given class indices.
    fn logits(indices: &[usize], classes: usize, p: f32) -> Vec<f32> {
        let mut out = vec![(1.0 - p) / (classes - 1) as f32; indices.len() * classes];
        for (t, &i) in indices.iter().enumerate() {
            out[t * classes + i] = p;
        }
        out
    }

    #[test]
    fn alphabet_has_blank_first_and_space_last() {
        let a = test_alphabet();
        assert_eq!(a, vec!["", "a", "b", "c", " "]);
    }

    #[test]
    fn ctc_collapses_repeats_and_drops_blanks() {
        let a = test_alphabet();
        // a a _ a b b _ _ c ␠ → "aab c"
        let idx = [1, 1, 0, 1, 2, 2, 0, 0, 3, 4];
        let (text, conf) = ctc_decode(&logits(&idx, 5, 0.9), 5, &a);
        assert_eq!(text, "aabc ");
        assert!((conf - 0.9).abs() < 1e-6);
        let (text, conf) = ctc_decode(&logits(&[0, 0, 0], 5, 0.8), 5, &a);
        assert_eq!((text.as_str(), conf), ("", 0.0));
    }

    #[test]
    fn ctc_confidence_is_the_mean_of_kept_steps() {
        let a = test_alphabet();
        let mut probs = logits(&[1, 2], 5, 0.6);
        probs[5 + 2] = 1.0; // the 'b' step is certain
        let (text, conf) = ctc_decode(&probs, 5, &a);
        assert_eq!(text, "ab");
        assert!((conf - 0.8).abs() < 1e-6, "{conf}");
    }

    #[test]
    fn crops_turn_tall_boxes_and_rotate() {
        let (w, h) = (10usize, 20usize);
        let src: Vec<u8> = (0..w * h).flat_map(|i| [i as u8, 0, 0]).collect();
        // A 4 × 10 box: taller than 1.5 × wide → turned counter-clockwise to 10 × 4.
        let quad = [[2.0, 3.0], [6.0, 3.0], [6.0, 13.0], [2.0, 13.0]];
        let crop = crop_box(&src, w, h, &quad);
        assert_eq!((crop.w, crop.h), (10, 4));
        // After a CCW turn the top-left shows the source's top-right corner (5, 3).
        assert_eq!(crop.pixels[0], (3 * w + 5) as u8);
        let back = crop.rotated_180().rotated_180();
        assert_eq!(back, crop);
    }

    #[test]
    fn batches_pad_to_the_widest_ratio() {
        let narrow = Crop {
            pixels: vec![255; 20 * 10 * 3],
            w: 20,
            h: 10,
        };
        let wide = Crop {
            pixels: vec![0; 100 * 10 * 3],
            w: 100,
            h: 10,
        };
        let (input, width) = rec_batch(&[&narrow, &wide]);
        assert_eq!(width, 480); // 48 × 10
        assert_eq!(input.len(), 2 * 3 * 48 * 480);
        // narrow: 96 px of white (1.0) then zero padding
        assert_eq!(input[95], 1.0);
        assert_eq!(input[96], 0.0);
        // wide: all black (−1.0) across the full width
        let per = 3 * 48 * 480;
        assert_eq!(input[per + 479], -1.0);
        // a very long line is capped
        let long = Crop {
            pixels: vec![0; 1000 * 10 * 3],
            w: 1000,
            h: 10,
        };
        assert_eq!(rec_batch(&[&long]).1, MAX_REC_WIDTH);
    }
}
