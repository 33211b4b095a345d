//! Decomposition quality, measured: `image-layered eval --dataset D` decomposes every
//! `D/<id>/composite.png`, scores the stack against `D/<id>/gt/*.png` exactly as
//! `shared/eval/score.py` does ([`score`](mod@score)), and reports per-design rows and a
//! summary ([`report`](mod@report)).
//!
//! Invariants: designs run in sorted id order, and every sub-directory of the dataset is one
//! row (as in score.py's `total`); anything that goes wrong with one design — unreadable
//! ground truth, a decomposer error or panic, a stack of the wrong size — becomes an error
//! row, never a crash of the run; only failing to list the dataset or to write predictions
//! to `--out` (disk trouble that would repeat for every design) aborts. Summary means are
//! over the scored rows only.

pub mod photos;
mod report;
mod score;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;

use crate::engine::export::{write_png_dir, ExportError};
use crate::engine::layers::LayerStack;

pub use self::report::{render_table, summarize, to_json};

/// One design's scores (see score.py for the definitions) and timings.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignScore {
    pub id: String,
    pub recon_psnr: f64,
    pub fg_iou: f64,
    pub fg_l1: f64,
    pub bg_l1: f64,
    /// |predicted − true layer count| (a whole number).
    pub count_err: f64,
    pub gt_layers: usize,
    pub pred_layers: usize,
    /// Wall-clock seconds of the decomposition (0 when it did not run).
    pub seconds: f64,
    /// Per-stage seconds as the decomposer reported them.
    pub stages: Vec<(String, f64)>,
    /// Why the design has no scores; the metric fields are 0 then.
    pub error: Option<String>,
}

impl DesignScore {
    fn from_metrics(id: &str, m: score::Metrics) -> Self {
        DesignScore {
            id: id.to_owned(),
            recon_psnr: m.recon_psnr,
            fg_iou: m.fg_iou,
            fg_l1: m.fg_l1,
            bg_l1: m.bg_l1,
            count_err: m.count_err as f64,
            gt_layers: m.gt_layers,
            pred_layers: m.pred_layers,
            seconds: 0.0,
            stages: Vec::new(),
            error: None,
        }
    }

    /// A row for a design that could not be scored.
    pub fn failed(id: &str, error: impl Into<String>) -> Self {
        DesignScore {
            id: id.to_owned(),
            recon_psnr: 0.0,
            fg_iou: 0.0,
            fg_l1: 0.0,
            bg_l1: 0.0,
            count_err: 0.0,
            gt_layers: 0,
            pred_layers: 0,
            seconds: 0.0,
            stages: Vec::new(),
            error: Some(error.into()),
        }
    }
}

/// Means over the scored designs (`None` when none was scored), as score.py's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub recon_psnr: Option<f64>,
    /// The worst design's `recon_psnr`.
    pub recon_psnr_min: Option<f64>,
    pub fg_iou: Option<f64>,
    pub fg_l1: Option<f64>,
    pub bg_l1: Option<f64>,
    pub count_err: Option<f64>,
    /// Designs with scores.
    pub scored: usize,
    /// All designs, error rows included.
    pub total: usize,
    /// Mean decomposition seconds of the scored designs.
    pub seconds_mean: Option<f64>,
}

/// Why scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot decode image: {source}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{}: invalid manifest: {source}", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The dataset is malformed (no ground truth, sizes that disagree).
    #[error("{0}")]
    Dataset(String),
    /// The prediction cannot be scored (no layers, wrong size, missing).
    #[error("{0}")]
    Prediction(String),
    #[error("decomposition failed: {0}")]
    Decompose(String),
    #[error(transparent)]
    Export(#[from] ExportError),
}

impl EvalError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            EvalError::Io { .. } => "eval_io",
            EvalError::Image { .. } => "eval_image",
            EvalError::Manifest { .. } => "eval_manifest",
            EvalError::Dataset(_) => "eval_dataset",
            EvalError::Prediction(_) => "eval_prediction",
            EvalError::Decompose(_) => "eval_decompose",
            EvalError::Export(e) => e.code(),
        }
    }
}

/// Scores an in-memory stack against `design_dir`'s `composite.png` and `gt/*.png`.
/// `seconds` and `stages` are left for the caller.
pub fn score_design(design_dir: &Path, pred: &LayerStack) -> Result<DesignScore, EvalError> {
    let truth = score::load_truth(design_dir)?;
    score_stack(&truth, &id_of(design_dir), pred)
}

/// Scores the predicted PNGs in `pred_dir` (manifest order, else sorted `*.png`) against
/// `design_dir`, as score.py's `score_one`.
pub fn score_pred_dir(design_dir: &Path, pred_dir: &Path) -> Result<DesignScore, EvalError> {
    let truth = score::load_truth(design_dir)?;
    let preds = score::load_preds(pred_dir)?;
    let refs: Vec<_> = preds.iter().collect();
    Ok(DesignScore::from_metrics(
        &id_of(design_dir),
        score::score(&truth, &refs)?,
    ))
}

/// score.py as a whole: scores `pred_root/<id>/` for every design of `dataset`; a design
/// without a prediction directory, or whose prediction cannot be scored, is an error row.
pub fn score_predictions(
    dataset: &Path,
    pred_root: &Path,
) -> Result<(Vec<DesignScore>, Summary), EvalError> {
    let mut rows = Vec::new();
    for id in design_ids(dataset)? {
        let pred_dir = pred_root.join(&id);
        let row = if !pred_dir.is_dir() {
            DesignScore::failed(&id, "no prediction")
        } else {
            score_pred_dir(&dataset.join(&id), &pred_dir)
                .unwrap_or_else(|e| DesignScore::failed(&id, e.to_string()))
        };
        rows.push(row);
    }
    let summary = summarize(&rows);
    Ok((rows, summary))
}

/// Decomposes and scores every design of `dataset` in id order, writing each prediction to
/// `out/<id>/` (see [`write_png_dir`]) when `out` is given. `progress(index, total, id)` is
/// called before each design. `decompose` returns the stack and its per-stage seconds.
pub fn run<F>(
    dataset: &Path,
    out: Option<&Path>,
    mut decompose: F,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<(Vec<DesignScore>, Summary), EvalError>
where
    F: FnMut(&RgbImage) -> Result<(LayerStack, Vec<(String, f64)>), String>,
{
    let ids = design_ids(dataset)?;
    let mut rows = Vec::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        progress(index, ids.len(), id);
        let truth = match score::load_truth(&dataset.join(id)) {
            Ok(t) => t,
            Err(e) => {
                rows.push(DesignScore::failed(id, e.to_string()));
                continue;
            }
        };
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| decompose(&truth.comp)));
        let seconds = started.elapsed().as_secs_f64();
        let (stack, stages) = match result {
            Ok(Ok(done)) => done,
            Ok(Err(msg)) => {
                rows.push(timed(DesignScore::failed(id, msg), seconds, Vec::new()));
                continue;
            }
            Err(panic) => {
                let msg = format!("decomposer panicked: {}", panic_message(&*panic));
                rows.push(timed(DesignScore::failed(id, msg), seconds, Vec::new()));
                continue;
            }
        };
        let mut row = match score_stack(&truth, id, &stack) {
            Ok(row) => row,
            Err(e) => DesignScore::failed(id, e.to_string()),
        };
        if let Some(out) = out {
            match write_png_dir(&stack, &out.join(id)) {
                Ok(_) => {}
                Err(e @ ExportError::Io { .. }) => return Err(e.into()),
                Err(e) if row.error.is_none() => row = DesignScore::failed(id, e.to_string()),
                Err(_) => {}
            }
        }
        rows.push(timed(row, seconds, stages));
    }
    let summary = summarize(&rows);
    Ok((rows, summary))
}

fn score_stack(
    truth: &score::Truth,
    id: &str,
    pred: &LayerStack,
) -> Result<DesignScore, EvalError> {
    let canvases: Vec<_> = pred
        .layers
        .iter()
        .map(|l| l.to_canvas(pred.width, pred.height))
        .collect();
    let refs: Vec<_> = canvases.iter().collect();
    Ok(DesignScore::from_metrics(id, score::score(truth, &refs)?))
}

fn timed(mut row: DesignScore, seconds: f64, stages: Vec<(String, f64)>) -> DesignScore {
    row.seconds = seconds;
    row.stages = stages;
    row
}

/// The design ids of a dataset: its sub-directories, sorted (score.py's loop).
fn design_ids(dataset: &Path) -> Result<Vec<String>, EvalError> {
    let io = |source| EvalError::Io {
        path: dataset.to_path_buf(),
        source,
    };
    let mut ids = Vec::new();
    for entry in fs::read_dir(dataset).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.path().is_dir() {
            ids.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    ids.sort();
    Ok(ids)
}

fn id_of(design_dir: &Path) -> String {
    design_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

#[cfg(test)]
mod tests;
