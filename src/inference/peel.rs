//! The models behind the peel decomposition: ISNet for the matte, PP-OCRv4 for text lines,
//! the configured ONNX inpainter when there is one and the built-in PatchMatch otherwise.

use image::{GrayImage, RgbImage};

use super::Inference;
use crate::engine::decompose::{PeelModels, TextLine};
use crate::engine::inpaint::{patchmatch_inpaint, PatchMatchOptions};

/// Lowest recognition confidence for a text line to become a layer.
const MIN_TEXT_CONFIDENCE: f32 = 0.6;

impl PeelModels for Inference {
    fn matte(&self, img: &RgbImage) -> Result<Vec<f32>, String> {
        let seg = self.segmenter().map_err(|e| e.to_string())?;
        seg.matte_f32(img)
            .map(|(m, _, _)| m)
            .map_err(|e| e.to_string())
    }

    fn text_lines(&self, img: &RgbImage) -> Result<Vec<TextLine>, String> {
        let boxes = self
            .text_detector()
            .and_then(|d| d.detect(img))
            .map_err(|e| e.to_string())?;
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let texts = self
            .text_recognizer()
            .and_then(|r| r.recognize(img, &boxes))
            .map_err(|e| e.to_string())?;
        Ok(boxes
            .iter()
            .zip(texts)
            .filter(|(_, (text, conf))| *conf >= MIN_TEXT_CONFIDENCE && !text.trim().is_empty())
            .map(|(b, (text, conf))| TextLine {
                bbox: b.bbox,
                text,
                score: conf,
            })
            .collect())
    }

    fn inpaint(&self, img: &RgbImage, mask: &GrayImage) -> RgbImage {
        if let Ok(Some(model)) = self.inpainter() {
            match model.inpaint(img, mask) {
                Ok(out) => return out,
                Err(e) => tracing::warn!("ONNX inpainter failed, using PatchMatch: {e}"),
            }
        }
        patchmatch_inpaint(img, mask, &PatchMatchOptions::default())
    }
}
