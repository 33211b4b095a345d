//! Decomposition of natural photos, measured without ground truth: for each photo, how many
//! layers came out, how well the best object layer matches the cutout matte of the same
//! image (IoU of alpha > 0.5 with matte > 0.5: the subject found), and how many object layers
//! are phantoms — an object layer whose opaque pixels (alpha > 0.5) lie at least half inside
//! a larger object layer's footprint (typically a smear lifted out of the fill under the
//! real object). Beside the best single layer, the IoU of all object layers together with
//! the matte says whether a scene of several salient things (a launch pad's towers) was
//! found but kept apart. Text layers are counted too: the photos hold no lettering, so a text
//! layer is texture misread (wood grain read as "8"). `eval --photos DIR` runs every
//! `.png`/`.jpg` in DIR in name order.

use std::path::Path;
use std::time::Instant;

use image::RgbImage;

use crate::engine::layers::{LayerKind, LayerStack};

/// One photo's measures.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoScore {
    pub id: String,
    pub layers: usize,
    /// IoU of the best object layer with the cutout matte (0 without an object layer).
    pub subject_iou: f64,
    /// IoU of every object layer together with the cutout matte.
    pub objects_iou: f64,
    pub phantoms: usize,
    /// Text layers (a photo of the set has none to find).
    pub texts: usize,
    pub seconds: f64,
    pub error: Option<String>,
}

/// Opaque footprint of an RGBA layer (alpha > 0.5).
fn footprint(rgba: &image::RgbaImage) -> Vec<bool> {
    rgba.pixels().map(|p| p[3] > 127).collect()
}

fn iou(a: &[bool], b: &[bool]) -> f64 {
    let (mut inter, mut union) = (0usize, 0usize);
    for (x, y) in a.iter().zip(b) {
        inter += usize::from(*x && *y);
        union += usize::from(*x || *y);
    }
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

/// (best object IoU with `matte`, all objects' IoU with it, phantom layers) of a stack.
pub fn photo_metrics(stack: &LayerStack, matte: &[f32]) -> (f64, f64, usize) {
    let subject: Vec<bool> = matte.iter().map(|m| *m > 0.5).collect();
    let objects: Vec<Vec<bool>> = stack
        .layers
        .iter()
        .filter(|l| l.kind == LayerKind::Object)
        .map(|l| footprint(&l.to_canvas(stack.width, stack.height)))
        .collect();
    let best = objects.iter().map(|o| iou(o, &subject)).fold(0.0, f64::max);
    let mut union = vec![false; subject.len()];
    for o in &objects {
        for (u, v) in union.iter_mut().zip(o) {
            *u |= *v;
        }
    }
    let together = if objects.is_empty() {
        0.0
    } else {
        iou(&union, &subject)
    };
    let area = |o: &Vec<bool>| o.iter().filter(|v| **v).count();
    let phantoms = objects
        .iter()
        .filter(|o| {
            let mine = area(o);
            mine > 0
                && objects.iter().any(|big| {
                    area(big) > mine
                        && o.iter().zip(big).filter(|(a, b)| **a && **b).count() * 2 >= mine
                })
        })
        .count();
    (best, together, phantoms)
}

/// Runs every photo of `dir` through `decompose`, scoring it against `matte` of the same
/// image; a photo that fails is a row with its error.
pub fn run_photos<D, M>(
    dir: &Path,
    mut decompose: D,
    mut matte: M,
    mut on_start: impl FnMut(usize, usize, &str),
) -> std::io::Result<Vec<PhotoScore>>
where
    D: FnMut(&RgbImage) -> Result<LayerStack, String>,
    M: FnMut(&RgbImage) -> Result<Vec<f32>, String>,
{
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase());
            name.is_some_and(|n| {
                (n.ends_with(".png") || n.ends_with(".jpg") || n.ends_with(".jpeg"))
                    && !n.contains(".matte.")
            })
        })
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        on_start(i, files.len(), &id);
        let started = Instant::now();
        let row = image::open(path)
            .map_err(|e| e.to_string())
            .map(|img| img.to_rgb8())
            .and_then(|img| Ok((decompose(&img)?, matte(&img)?)))
            .map(|(stack, matte)| {
                let (subject_iou, objects_iou, phantoms) = photo_metrics(&stack, &matte);
                PhotoScore {
                    id: id.clone(),
                    layers: stack.layers.len(),
                    subject_iou,
                    objects_iou,
                    phantoms,
                    texts: stack
                        .layers
                        .iter()
                        .filter(|l| l.kind == LayerKind::Text)
                        .count(),
                    seconds: started.elapsed().as_secs_f64(),
                    error: None,
                }
            });
        rows.push(row.unwrap_or_else(|e| PhotoScore {
            id,
            layers: 0,
            subject_iou: 0.0,
            objects_iou: 0.0,
            phantoms: 0,
            texts: 0,
            seconds: 0.0,
            error: Some(e),
        }));
    }
    Ok(rows)
}

/// The rows as a table, with a last line that says whether every photo met the targets (at
/// least two layers, the subject at IoU ≥ 0.8, no phantom, no text layer).
pub fn render_photos(rows: &[PhotoScore]) -> String {
    let mut out = format!(
        "{:<28} {:>6} {:>11} {:>11} {:>8} {:>5} {:>7}\n",
        "photo", "layers", "subject_iou", "objects_iou", "phantoms", "texts", "secs"
    );
    for r in rows {
        match &r.error {
            Some(e) => out.push_str(&format!("{:<28} error: {e}\n", r.id)),
            None => out.push_str(&format!(
                "{:<28} {:>6} {:>11.3} {:>11.3} {:>8} {:>5} {:>7.1}\n",
                r.id, r.layers, r.subject_iou, r.objects_iou, r.phantoms, r.texts, r.seconds
            )),
        }
    }
    let good = rows
        .iter()
        .filter(|r| {
            r.error.is_none()
                && r.layers >= 2
                && r.subject_iou >= 0.8
                && r.phantoms == 0
                && r.texts == 0
        })
        .count();
    out.push_str(&format!(
        "photos meeting the targets (>= 2 layers, subject IoU >= 0.8, no phantom, no text): {good} of {}\n",
        rows.len()
    ));
    out
}

pub fn photos_json(rows: &[PhotoScore]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "layers": r.layers, "subject_iou": r.subject_iou,
                    "objects_iou": r.objects_iou, "phantoms": r.phantoms, "texts": r.texts,
                    "seconds": r.seconds, "error": r.error,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::layers::Layer;

    fn layer(kind: LayerKind, w: u32, h: u32, inside: impl Fn(u32, u32) -> bool) -> Layer {
        Layer {
            name: "l".into(),
            kind,
            origin: [0, 0],
            rgba: image::RgbaImage::from_fn(w, h, |x, y| {
                image::Rgba([0, 0, 0, if inside(x, y) { 255 } else { 0 }])
            }),
            text: None,
        }
    }

    #[test]
    fn the_subject_and_phantoms_are_measured() {
        let (w, h) = (20, 20);
        let matte: Vec<f32> = (0..w * h)
            .map(|i| if (i % w) < 10 { 1.0 } else { 0.0 })
            .collect();
        let stack = LayerStack {
            width: w,
            height: h,
            layers: vec![
                layer(LayerKind::Background, w, h, |_, _| true),
                // the subject: the left half, exactly
                layer(LayerKind::Object, w, h, |x, _| x < 10),
                // a smear inside the subject's footprint: a phantom
                layer(LayerKind::Object, w, h, |x, y| x < 4 && y < 4),
                // a separate small object: not one
                layer(LayerKind::Object, w, h, |x, y| x > 15 && y > 15),
            ],
        };
        let (best, together, phantoms) = photo_metrics(&stack, &matte);
        assert!((best - 1.0).abs() < 1e-9);
        // the 16 pixels of the right-hand object are outside the matte
        assert!((together - 200.0 / 216.0).abs() < 1e-9, "{together}");
        assert_eq!(phantoms, 1);
        let table = render_photos(&[PhotoScore {
            id: "p.png".into(),
            layers: 4,
            subject_iou: best,
            objects_iou: together,
            phantoms,
            texts: 0,
            seconds: 1.0,
            error: None,
        }]);
        assert!(table.contains("0 of 1"), "{table}");
        // without the phantom it meets the targets, unless texture was read as text
        let clean = PhotoScore {
            id: "p.png".into(),
            layers: 2,
            subject_iou: best,
            objects_iou: together,
            phantoms: 0,
            texts: 0,
            seconds: 1.0,
            error: None,
        };
        assert!(render_photos(std::slice::from_ref(&clean)).contains("1 of 1"));
        let misread = PhotoScore { texts: 1, ..clean };
        assert!(render_photos(&[misread]).contains("0 of 1"));
    }
}
