//! Per-layer editing: the pixel operations behind `POST /documents/{id}/ops` — recolour
//! ([`recolor`], in OKLab, shading kept), replace ([`replace`]: fit an uploaded image into the
//! layer's footprint, harmonise its colour, feather its edge), move and scale ([`transform`]),
//! merge into the layer below ([`merge_down`]) and brush-and-fill ([`inpaint_layer`]).
//!
//! Every image here is a full-canvas RGBA layer with straight (not premultiplied) alpha, and
//! every operation produces exactly one such layer, the size of its input canvas: the caller
//! swaps it into the stack and logs the op; the other layers are never touched. The functions
//! are pure and deterministic (no I/O, no clock, no randomness, single-threaded), and they do
//! not panic on any input size, empty canvases included: bad arguments come back as an
//! [`EditError`] with a stable [`code`](EditError::code).

mod inpaint;
mod merge;
mod oklab;
mod recolor;
mod replace;
mod resample;
mod transform;

use image::RgbaImage;

pub use self::inpaint::{inpaint_layer, mask_from_image};
pub use self::merge::merge_down;
pub use self::oklab::{oklab_to_srgb, srgb_to_oklab};
pub use self::recolor::{recolor, Recolor};
pub use self::replace::{replace, Fit, MaskSource, ReplaceOptions};
pub use self::transform::transform;

/// Why an edit was refused. Every variant is the caller's fault (a `400`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    /// Two images that must share the canvas size do not.
    #[error("{what} is {}x{}, expected {}x{}", actual[0], actual[1], expected[0], expected[1])]
    SizeMismatch {
        /// Which input (or callback output) has the wrong size.
        what: &'static str,
        /// `[width, height]` it should have.
        expected: [u32; 2],
        /// `[width, height]` it has.
        actual: [u32; 2],
    },
    /// A numeric parameter is out of range or not finite.
    #[error("invalid {name}: {message}")]
    BadParameter {
        /// The parameter's name as the API spells it.
        name: &'static str,
        /// What is wrong with it, including the value received.
        message: String,
    },
    /// The layer has no pixel with alpha > 0, so it has no footprint to work in.
    #[error("the layer is empty (fully transparent)")]
    EmptyLayer,
    /// An input image that must hold pixels has none (0 wide or 0 high).
    #[error("{what} has no pixels")]
    EmptyImage {
        /// Which input.
        what: &'static str,
    },
}

impl EditError {
    /// The stable snake_case code of this error for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SizeMismatch { .. } => "size_mismatch",
            Self::BadParameter { .. } => "bad_parameter",
            Self::EmptyLayer => "empty_layer",
            Self::EmptyImage { .. } => "empty_image",
        }
    }
}

/// `[x, y, w, h]` of the pixels with alpha > 0, or `None` for a fully transparent (or 0×0)
/// layer. Same box as [`Layer::bbox`](crate::engine::layers::Layer::bbox).
pub fn layer_bbox(rgba: &RgbaImage) -> Option<[u32; 4]> {
    crate::engine::layers::alpha_box(rgba)
}

/// Checks that `img` has the canvas size `expected`.
fn check_size(what: &'static str, img: [u32; 2], expected: [u32; 2]) -> Result<(), EditError> {
    if img == expected {
        Ok(())
    } else {
        Err(EditError::SizeMismatch {
            what,
            expected,
            actual: img,
        })
    }
}

/// Checks that `value` is finite and within `range`.
fn check_range(
    name: &'static str,
    value: f32,
    range: std::ops::RangeInclusive<f32>,
) -> Result<(), EditError> {
    if value.is_finite() && range.contains(&value) {
        Ok(())
    } else {
        Err(EditError::BadParameter {
            name,
            message: format!(
                "must be a number in {}..={} (got {value})",
                range.start(),
                range.end()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    #[test]
    fn bbox_matches_layer_bbox_and_handles_empty() {
        let mut img = RgbaImage::new(5, 4);
        assert_eq!(layer_bbox(&img), None);
        assert_eq!(layer_bbox(&RgbaImage::new(0, 0)), None);
        img.put_pixel(1, 2, Rgba([1, 2, 3, 1]));
        img.put_pixel(3, 3, Rgba([1, 2, 3, 200]));
        assert_eq!(layer_bbox(&img), Some([1, 2, 3, 2]));
    }

    #[test]
    fn codes_are_stable() {
        let e = EditError::SizeMismatch {
            what: "mask",
            expected: [2, 2],
            actual: [3, 1],
        };
        assert_eq!(e.code(), "size_mismatch");
        assert_eq!(e.to_string(), "mask is 3x1, expected 2x2");
        assert_eq!(EditError::EmptyLayer.code(), "empty_layer");
        assert_eq!(EditError::EmptyImage { what: "x" }.code(), "empty_image");
        let bad = check_range("scale", f32::NAN, 0.0..=1.0).unwrap_err();
        assert_eq!(bad.code(), "bad_parameter");
        assert!(check_range("scale", 1.0, 0.0..=1.0).is_ok());
        assert!(check_range("scale", f32::INFINITY, 0.0..=f32::MAX).is_err());
    }
}
