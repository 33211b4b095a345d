//! The op vocabulary of `POST /api/v1/documents/{id}/ops`: parsing a request body into an
//! [`EditOp`] (unknown ops and fields refused) and checking its fields against the document
//! before any pixel work, each failure an `invalid_op` that names the field. Enumerated
//! fields (`fit`, `mask`, split's `layers`) are parsed into their types here, once.

use serde::Deserialize;

use super::DocumentError;
use crate::engine::decompose::LayerCount;
use crate::engine::edit::{Fit, MaskSource};
use crate::ids::{ImageId, JobId, LayerId};
use crate::store::{DocumentRecord, HistoryOp};

/// One edit, as `POST /api/v1/documents/{id}/ops` takes it (API.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum EditOp {
    Recolor {
        layer_id: LayerId,
        #[serde(default)]
        color: Option<String>,
        #[serde(default)]
        hue_shift: Option<f32>,
        #[serde(default)]
        saturation: Option<f32>,
        #[serde(default)]
        lightness: Option<f32>,
    },
    Replace {
        layer_id: LayerId,
        image_id: ImageId,
        #[serde(default)]
        fit: Fit,
        #[serde(default)]
        harmonize: Option<f32>,
        /// "layer" (the layer's alpha, default) or "image" (the replacement's own).
        #[serde(default)]
        mask: MaskSource,
        /// Edge softening in pixels (default 1.5).
        #[serde(default)]
        feather: Option<f32>,
    },
    Remove {
        layer_id: LayerId,
    },
    Inpaint {
        layer_id: LayerId,
        mask_image_id: ImageId,
    },
    Transform {
        layer_id: LayerId,
        #[serde(default)]
        dx: Option<i32>,
        #[serde(default)]
        dy: Option<i32>,
        #[serde(default)]
        scale: Option<f32>,
        #[serde(default)]
        opacity: Option<f32>,
        #[serde(default)]
        visible: Option<bool>,
    },
    Reorder {
        layer_id: LayerId,
        z: usize,
    },
    Rename {
        layer_id: LayerId,
        name: String,
    },
    Merge {
        layer_id: LayerId,
    },
    Split {
        layer_id: LayerId,
        /// "auto" (default) or the number of parts, 2..=10.
        #[serde(default)]
        layers: LayerCount,
    },
}

impl EditOp {
    pub fn name(&self) -> HistoryOp {
        match self {
            EditOp::Recolor { .. } => HistoryOp::Recolor,
            EditOp::Replace { .. } => HistoryOp::Replace,
            EditOp::Remove { .. } => HistoryOp::Remove,
            EditOp::Inpaint { .. } => HistoryOp::Inpaint,
            EditOp::Transform { .. } => HistoryOp::Transform,
            EditOp::Reorder { .. } => HistoryOp::Reorder,
            EditOp::Rename { .. } => HistoryOp::Rename,
            EditOp::Merge { .. } => HistoryOp::Merge,
            EditOp::Split { .. } => HistoryOp::Split,
        }
    }

    pub(super) fn layer_id(&self) -> LayerId {
        match self {
            EditOp::Recolor { layer_id, .. }
            | EditOp::Replace { layer_id, .. }
            | EditOp::Remove { layer_id }
            | EditOp::Inpaint { layer_id, .. }
            | EditOp::Transform { layer_id, .. }
            | EditOp::Reorder { layer_id, .. }
            | EditOp::Rename { layer_id, .. }
            | EditOp::Merge { layer_id }
            | EditOp::Split { layer_id, .. } => *layer_id,
        }
    }

    /// Bytes of the memory budget the op claims on a canvas of `pixels`: a split peels (as
    /// a decomposition does), a pixel op holds a layer or two and their encodings, and the
    /// ops that only change the layer list (remove, reorder, rename) hold no pixels.
    pub fn memory_bytes(&self, pixels: u64) -> u64 {
        use crate::jobs::memory::{decompose_bytes, document_bytes};
        match self {
            EditOp::Split { .. } => decompose_bytes(pixels),
            EditOp::Remove { .. } | EditOp::Reorder { .. } | EditOp::Rename { .. } => 0,
            _ => document_bytes(pixels, 2),
        }
    }

    /// Slow ops run as jobs (`202 {job_id}`); the rest answer at once.
    pub fn is_slow(&self) -> bool {
        matches!(self, EditOp::Inpaint { .. } | EditOp::Split { .. })
    }
}

/// A parsed request: the op, the revision the client saw (if it said), and the op as sent
/// (kept in the log and carried by a job).
#[derive(Debug, Clone)]
pub struct OpRequest {
    pub op: EditOp,
    pub revision: Option<u64>,
    pub raw: serde_json::Value,
    /// The job applying it, for slow ops (never taken from the request body).
    pub job: Option<JobId>,
}

impl OpRequest {
    /// Parses and checks the shape of an op body; `invalid_op` with a precise message
    /// otherwise.
    pub fn parse(value: serde_json::Value) -> Result<Self, DocumentError> {
        let serde_json::Value::Object(mut map) = value else {
            return Err(DocumentError::InvalidOp(
                "the body must be a JSON object like {\"op\":\"rename\",\"layer_id\":\"…\",\"name\":\"…\"}".into(),
            ));
        };
        let revision = match map.remove("revision") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or(DocumentError::InvalidRevision)?),
        };
        if !map.contains_key("op") {
            return Err(DocumentError::InvalidOp(
                "missing \"op\": one of recolor, replace, remove, inpaint, transform, reorder, rename, merge, split".into(),
            ));
        }
        let raw = serde_json::Value::Object(map);
        let op: EditOp = serde_json::from_value(raw.clone())
            .map_err(|e| DocumentError::InvalidOp(format!("invalid op: {e}")))?;
        Ok(OpRequest {
            op,
            revision,
            raw,
            job: None,
        })
    }
}

pub(super) fn invalid(field: &str, msg: impl std::fmt::Display) -> DocumentError {
    DocumentError::InvalidOp(format!("{field}: {msg}"))
}

pub(super) fn parse_hex(s: &str) -> Option<[u8; 3]> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 || !h.is_ascii() {
        return None;
    }
    let b = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
    Some([b(0)?, b(2)?, b(4)?])
}

/// Field checks that need the document but no pixels.
pub(super) fn validate(
    doc: &DocumentRecord,
    index: usize,
    op: &EditOp,
) -> Result<(), DocumentError> {
    let finite = |name: &str, v: Option<f32>| match v {
        Some(x) if !x.is_finite() => Err(invalid(name, "must be a finite number")),
        _ => Ok(()),
    };
    match op {
        EditOp::Recolor {
            color,
            hue_shift,
            saturation,
            lightness,
            ..
        } => {
            let shift = hue_shift.is_some() || saturation.is_some() || lightness.is_some();
            match (color, shift) {
                (Some(_), true) => {
                    return Err(invalid(
                        "recolor",
                        "give either color or hue_shift/saturation/lightness, not both",
                    ))
                }
                (None, false) => {
                    return Err(invalid(
                        "recolor",
                        "give color (\"#rrggbb\") or any of hue_shift, saturation, lightness",
                    ))
                }
                (Some(c), false) if parse_hex(c).is_none() => {
                    return Err(invalid("color", format!("{c:?} is not \"#rrggbb\"")))
                }
                _ => {}
            }
            finite("hue_shift", *hue_shift)?;
            finite("saturation", *saturation)?;
            finite("lightness", *lightness)?;
            if saturation.is_some_and(|s| !(0.0..=10.0).contains(&s)) {
                return Err(invalid("saturation", "must be a factor in 0..=10"));
            }
            if lightness.is_some_and(|l| !(-1.0..=1.0).contains(&l)) {
                return Err(invalid("lightness", "must be a delta in -1..=1"));
            }
        }
        EditOp::Replace {
            harmonize, feather, ..
        } => {
            finite("harmonize", *harmonize)?;
            finite("feather", *feather)?;
            if harmonize.is_some_and(|h| !(0.0..=1.0).contains(&h)) {
                return Err(invalid("harmonize", "must be in 0..=1"));
            }
            if feather.is_some_and(|f| !(0.0..=64.0).contains(&f)) {
                return Err(invalid("feather", "must be 0..=64 pixels"));
            }
        }
        EditOp::Remove { .. } if doc.layers.len() == 1 => {
            return Err(invalid(
                "layer_id",
                "the only layer of a document cannot be removed",
            ));
        }
        EditOp::Transform {
            dx,
            dy,
            scale,
            opacity,
            visible,
            ..
        } => {
            if dx.is_none()
                && dy.is_none()
                && scale.is_none()
                && opacity.is_none()
                && visible.is_none()
            {
                return Err(invalid(
                    "transform",
                    "give at least one of dx, dy, scale, opacity, visible",
                ));
            }
            finite("scale", *scale)?;
            finite("opacity", *opacity)?;
            if scale.is_some_and(|s| !(0.05..=20.0).contains(&s)) {
                return Err(invalid("scale", "must be in 0.05..=20"));
            }
            if opacity.is_some_and(|o| !(0.0..=1.0).contains(&o)) {
                return Err(invalid("opacity", "must be in 0..=1"));
            }
            let limit = 2 * doc.width.max(doc.height) as i64;
            if [dx, dy]
                .iter()
                .any(|d| d.is_some_and(|d| (d as i64).abs() > limit))
            {
                return Err(invalid("dx/dy", format!("must be within ±{limit} pixels")));
            }
        }
        EditOp::Reorder { z, .. } if *z >= doc.layers.len() => {
            return Err(invalid(
                "z",
                format!("must be 0..={} (0 is the back)", doc.layers.len() - 1),
            ));
        }
        EditOp::Rename { name, .. } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(invalid("name", "must be 1..=200 printable characters"));
            }
        }
        EditOp::Merge { .. } if index == 0 => {
            return Err(invalid(
                "layer_id",
                "the bottom layer has no layer below to merge into",
            ));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_claim_memory_by_what_they_hold() {
        let op = |v: serde_json::Value| OpRequest::parse(v).unwrap().op;
        let layer = "00000000-0000-0000-0000-000000000001";
        let rename = op(serde_json::json!({"op": "rename", "layer_id": layer, "name": "x"}));
        let recolor =
            op(serde_json::json!({"op": "recolor", "layer_id": layer, "color": "#ff0000"}));
        let split = op(serde_json::json!({"op": "split", "layer_id": layer}));
        let px = 24_000_000;
        assert_eq!(rename.memory_bytes(px), 0);
        assert!(recolor.memory_bytes(px) > 0);
        assert!(split.memory_bytes(px) > recolor.memory_bytes(px));
    }
}
