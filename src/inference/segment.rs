//! Salient-object mattes: the ISNet [`Segmenter`], the [`MatteModel`] trait the
//! decomposition code is written against, and a deterministic [`FakeSegmenter`] for tests.
//!
//! ISNet pipeline (DESIGN.md, and `scripts/reference_matte.py`, the Python reference):
//! RGB → Pillow-exact bilinear resize to 1024×1024 (antialiased when shrinking, see
//! [`resize`](super::resize)) → `RGB/255 − 0.5`, NCHW, input `input` → output `output`
//! `[1,1,1024,1024]` → min–max normalised to 0..1 → Pillow bilinear (mode `"F"`) back to
//! the source size. A constant output (max = min) gives an all-zero matte.
//!
//! Invariants: mattes are at the source resolution, row-major, values in 0..=1; the `u8`
//! form is `round(alpha × 255)`. Pre- and post-processing are single passes over
//! preallocated buffers (a few ms at 1024², see the module's measurements in the report).

use std::sync::Arc;
use std::time::Instant;

use image::{GrayImage, RgbImage};
use ndarray::Array4;

use super::resize::{resize_plane_pil, resize_rgb8_pil};
use super::session::ModelSession;
use super::InferenceError;

/// ISNet's fixed input side.
pub const ISNET_SIZE: usize = 1024;
const MODEL: &str = "isnet";

/// Anything that produces a source-resolution alpha matte of the salient foreground.
pub trait MatteModel: Send + Sync {
    /// Alpha in 0..=1, row-major, with its width and height (those of `img`).
    fn matte_f32(&self, img: &RgbImage) -> Result<(Vec<f32>, u32, u32), InferenceError>;

    /// The matte as 8-bit grey, `round(alpha × 255)`.
    fn matte(&self, img: &RgbImage) -> Result<GrayImage, InferenceError> {
        let (alpha, w, h) = self.matte_f32(img)?;
        Ok(alpha_to_gray(&alpha, w, h))
    }
}

/// ISNet (DIS general use) on the cached session; cheap to clone.
#[derive(Clone)]
pub struct Segmenter {
    session: Arc<ModelSession>,
}

impl Segmenter {
    pub(crate) fn new(session: Arc<ModelSession>) -> Self {
        Self { session }
    }

    /// The matte of `img` as 8-bit grey at the source resolution.
    pub fn matte(&self, img: &RgbImage) -> Result<GrayImage, InferenceError> {
        MatteModel::matte(self, img)
    }

    /// The matte of `img` as `f32` alpha in 0..=1 at the source resolution.
    pub fn matte_f32(&self, img: &RgbImage) -> Result<(Vec<f32>, u32, u32), InferenceError> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return Err(InferenceError::BadInput("the image is empty".into()));
        }
        let t0 = Instant::now();
        let input = isnet_input(img);
        let t1 = Instant::now();
        let output = self.infer(&input)?;
        let t2 = Instant::now();
        let alpha = matte_from_output(&output, w, h);
        tracing::debug!(
            pre_ms = (t1 - t0).as_secs_f64() * 1e3,
            run_ms = (t2 - t1).as_secs_f64() * 1e3,
            post_ms = t2.elapsed().as_secs_f64() * 1e3,
            "isnet matte"
        );
        Ok((alpha, w as u32, h as u32))
    }

    /// One raw session run on a prepared `[1,3,1024,1024]` input, returning `output`
    /// `[1,1,1024,1024]` unnormalised (for benchmarks of the session alone).
    pub fn run_raw(&self, input: &Array4<f32>) -> Result<Array4<f32>, InferenceError> {
        let expected = [1, 3, ISNET_SIZE, ISNET_SIZE];
        if input.shape() != expected {
            return Err(InferenceError::BadInput(format!(
                "ISNet input must be {expected:?}, got {:?}",
                input.shape()
            )));
        }
        let data = match input.as_slice() {
            Some(slice) => self.infer(slice)?,
            None => self.infer(&input.iter().copied().collect::<Vec<f32>>())?,
        };
        Array4::from_shape_vec((1, 1, ISNET_SIZE, ISNET_SIZE), data)
            .map_err(|e| InferenceError::failed(MODEL, e))
    }

    /// Runs the session on a `[1,3,1024,1024]` NCHW buffer; returns the 1024² `output`.
    fn infer(&self, input: &[f32]) -> Result<Vec<f32>, InferenceError> {
        let shape = [1usize, 3, ISNET_SIZE, ISNET_SIZE];
        self.session.run(|session| {
            let failed = |e: ort::Error| InferenceError::failed(MODEL, e);
            let tensor = ort::value::TensorRef::from_array_view((shape, input)).map_err(failed)?;
            let options = ort::session::RunOptions::new()
                .map_err(failed)?
                .with_outputs(ort::session::OutputSelector::no_default().with("output"));
            let outputs = session
                .run_with_options(ort::inputs!["input" => tensor], &options)
                .map_err(failed)?;
            let value = outputs
                .get("output")
                .ok_or_else(|| InferenceError::failed(MODEL, "the model has no `output`"))?;
            let (out_shape, data) = value.try_extract_tensor::<f32>().map_err(failed)?;
            if data.len() != ISNET_SIZE * ISNET_SIZE {
                return Err(InferenceError::failed(
                    MODEL,
                    format!("unexpected output shape {out_shape:?}"),
                ));
            }
            Ok(data.to_vec())
        })
    }
}

impl MatteModel for Segmenter {
    fn matte_f32(&self, img: &RgbImage) -> Result<(Vec<f32>, u32, u32), InferenceError> {
        Segmenter::matte_f32(self, img)
    }
}

/// The ISNet input for `img`: 1024² NCHW, `RGB/255 − 0.5`.
pub fn isnet_input(img: &RgbImage) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let resized;
    let pixels: &[u8] = if w == ISNET_SIZE && h == ISNET_SIZE {
        img.as_raw()
    } else {
        resized = resize_rgb8_pil(img.as_raw(), w, h, ISNET_SIZE, ISNET_SIZE);
        &resized
    };
    let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0 - 0.5);
    let plane = ISNET_SIZE * ISNET_SIZE;
    let mut out = vec![0.0f32; 3 * plane];
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in pixels.chunks_exact(3).take(plane).enumerate() {
        r[i] = lut[px[0] as usize];
        g[i] = lut[px[1] as usize];
        b[i] = lut[px[2] as usize];
    }
    out
}

/// Min–max normalises the 1024² output and resizes it to `w × h`.
pub(crate) fn matte_from_output(output: &[f32], w: usize, h: usize) -> Vec<f32> {
    let (lo, hi) = output
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let normalised: Vec<f32> = if hi > lo {
        let range = hi - lo;
        output.iter().map(|&v| (v - lo) / range).collect()
    } else {
        vec![0.0; output.len()]
    };
    let mut alpha = resize_plane_pil(&normalised, ISNET_SIZE, ISNET_SIZE, w, h);
    alpha.iter_mut().for_each(|a| *a = a.clamp(0.0, 1.0));
    alpha
}

/// `round(alpha × 255)` as a grey image.
pub(crate) fn alpha_to_gray(alpha: &[f32], w: u32, h: u32) -> GrayImage {
    let bytes: Vec<u8> = alpha
        .iter()
        .map(|&a| (a.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    GrayImage::from_raw(w, h, bytes).unwrap_or_else(|| GrayImage::new(w, h))
}

/// A deterministic stand-in for ISNet: a centred ellipse with a soft edge.
///
/// Alpha is `clamp(0.5 + (1 − r) · min(rx, ry) / feather, 0, 1)`, where `r` is the pixel
/// centre's normalised elliptical radius and `rx = radius_x · width` (likewise `ry`): 1
/// inside, 0 outside, a ramp about `2 · feather` px wide across the edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FakeSegmenter {
    /// Semi-axis as a fraction of the width.
    pub radius_x: f32,
    /// Semi-axis as a fraction of the height.
    pub radius_y: f32,
    /// Half-width of the soft edge in pixels (> 0).
    pub feather: f32,
}

impl Default for FakeSegmenter {
    fn default() -> Self {
        Self {
            radius_x: 0.3,
            radius_y: 0.3,
            feather: 2.0,
        }
    }
}

impl MatteModel for FakeSegmenter {
    fn matte_f32(&self, img: &RgbImage) -> Result<(Vec<f32>, u32, u32), InferenceError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(InferenceError::BadInput("the image is empty".into()));
        }
        let rx = (self.radius_x * w as f32).max(1e-3);
        let ry = (self.radius_y * h as f32).max(1e-3);
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        let feather = self.feather.max(1e-3);
        let mut alpha = Vec::with_capacity(w as usize * h as usize);
        for y in 0..h {
            let dy = (y as f32 + 0.5 - cy) / ry;
            for x in 0..w {
                let dx = (x as f32 + 0.5 - cx) / rx;
                let r = (dx * dx + dy * dy).sqrt();
                alpha.push((0.5 + (1.0 - r) * rx.min(ry) / feather).clamp(0.0, 1.0));
            }
        }
        Ok((alpha, w, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_nchw_rgb_minus_half() {
        let mut img = RgbImage::new(1024, 1024);
        img.put_pixel(0, 0, image::Rgb([255, 0, 51]));
        img.put_pixel(1023, 1023, image::Rgb([0, 255, 0]));
        let t = isnet_input(&img);
        let plane = 1024 * 1024;
        assert_eq!(t.len(), 3 * plane);
        assert_eq!(
            (t[0], t[plane], t[2 * plane]),
            (0.5, -0.5, 51.0 / 255.0 - 0.5)
        );
        assert_eq!(t[2 * plane - 1], 0.5);
        assert_eq!(t[plane - 1], -0.5);
    }

    #[test]
    fn input_resizes_other_sizes() {
        let img = RgbImage::from_pixel(300, 200, image::Rgb([255, 255, 255]));
        let t = isnet_input(&img);
        assert_eq!(t.len(), 3 * 1024 * 1024);
        assert!(t.iter().all(|&v| v == 0.5));
    }

    #[test]
    fn output_is_min_max_normalised_and_resized() {
        let mut out = vec![2.0f32; 1024 * 1024];
        for v in out.iter_mut().take(1024 * 512) {
            *v = -1.0; // top half low
        }
        let alpha = matte_from_output(&out, 100, 50);
        assert_eq!(alpha.len(), 5000);
        assert_eq!(alpha[0], 0.0);
        assert_eq!(alpha[4999], 1.0);
        assert!(alpha.iter().all(|a| (0.0..=1.0).contains(a)));
        // a constant map gives zeros, not NaN
        assert!(matte_from_output(&vec![0.3; 1024 * 1024], 3, 2)
            .iter()
            .all(|&a| a == 0.0));
    }

    #[test]
    fn gray_rounds() {
        let g = alpha_to_gray(&[0.0, 0.5, 1.0, 0.002], 2, 2);
        assert_eq!(g.as_raw(), &vec![0, 128, 255, 1]);
    }

    #[test]
    fn fake_matte_is_a_centred_soft_ellipse() {
        let img = RgbImage::new(200, 100);
        let fake = FakeSegmenter::default();
        let (alpha, w, h) = fake.matte_f32(&img).expect("fake");
        assert_eq!((w, h, alpha.len()), (200, 100, 20_000));
        assert_eq!(alpha[50 * 200 + 100], 1.0); // centre
        assert_eq!(alpha[0], 0.0); // corner

        // Semi-axes 60 × 30 px: a ramp around x = 100 ± 60 on the centre row.
        let edge = alpha[50 * 200 + 160];
        assert!(edge > 0.2 && edge < 0.8, "{edge}");
        let gray = fake.matte(&img).expect("fake");
        assert_eq!(gray.dimensions(), (200, 100));
        assert_eq!(fake.matte_f32(&img).expect("again").0, alpha); // deterministic
        assert!(fake.matte_f32(&RgbImage::new(0, 5)).is_err());
    }
}
