//! The port against score.py itself: two designs copied from `shared/eval/public` into
//! `tests/fixtures/eval/`, three predictions rebuilt here in memory, and the numbers
//! score.py printed for the same predictions written as PNGs:
//!
//! ```text
//! python3 tests/fixtures/eval/make_predictions.py tests/fixtures/eval /tmp/pred
//! python3 ../shared/eval/score.py tests/fixtures/eval /tmp/pred/<method> --json
//! ```

use std::path::PathBuf;

use image::{DynamicImage, Rgba, RgbaImage};

use super::*;
use crate::engine::layers::{Layer, LayerKind};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

const IDS: [&str; 2] = ["public-1-012", "public-1-021"];

/// score.py's rows: (recon_psnr, fg_iou, fg_l1, bg_l1, count_err, gt_layers, pred_layers).
type Expected = (f64, f64, f64, f64, f64, usize, usize);

const ONE_LAYER: [Expected; 2] = [
    (
        99.0,
        0.0466123364018459,
        0.034023450726684876,
        0.448850200558624,
        5.0,
        6,
        1,
    ),
    (
        99.0,
        0.009707341452205882,
        0.021598289273247022,
        0.45050924356531946,
        2.0,
        3,
        1,
    ),
];
const GT: [Expected; 2] = [
    (77.8637135295994, 1.0, 0.0, 0.0, 0.0, 6, 6),
    (80.74137147820181, 1.0, 0.0, 0.0, 0.0, 3, 3),
];
const PERTURBED: [Expected; 2] = [
    (
        21.38305414914118,
        0.9413309698535685,
        0.08545125167993083,
        0.448850200558624,
        0.0,
        6,
        6,
    ),
    (
        21.672457059743813,
        0.550040383578555,
        0.31271930524760405,
        0.45050924356531946,
        0.0,
        3,
        3,
    ),
];

fn check(row: &DesignScore, want: &Expected) {
    assert_eq!(row.error, None, "{}", row.id);
    let got = [
        row.recon_psnr,
        row.fg_iou,
        row.fg_l1,
        row.bg_l1,
        row.count_err,
    ];
    let exp = [want.0, want.1, want.2, want.3, want.4];
    for (name, (g, e)) in ["recon_psnr", "fg_iou", "fg_l1", "bg_l1", "count_err"]
        .iter()
        .zip(got.iter().zip(exp))
    {
        assert!(
            (g - e).abs() < 1e-9,
            "{} {name}: {g} vs score.py {e}",
            row.id
        );
    }
    assert_eq!(
        (row.gt_layers, row.pred_layers),
        (want.5, want.6),
        "{}",
        row.id
    );
}

fn layer(rgba: RgbaImage, kind: LayerKind) -> Layer {
    Layer {
        name: kind.as_str().to_owned(),
        kind,
        origin: [0, 0],
        rgba,
        text: None,
    }
}

fn stack(layers: Vec<Layer>) -> LayerStack {
    let (width, height) = layers[0].rgba.dimensions();
    LayerStack {
        width,
        height,
        layers,
    }
}

fn one_layer(truth: &score::Truth) -> LayerStack {
    let comp = DynamicImage::ImageRgb8(truth.comp.clone()).to_rgba8();
    stack(vec![layer(comp, LayerKind::Background)])
}

fn gt(truth: &score::Truth) -> LayerStack {
    let mut layers = vec![layer(truth.gts[0].clone(), LayerKind::Background)];
    layers.extend(
        truth.gts[1..]
            .iter()
            .map(|g| layer(g.clone(), LayerKind::Object)),
    );
    stack(layers)
}

/// make_predictions.py's `perturbed`.
fn perturbed(truth: &score::Truth) -> LayerStack {
    let mut s = one_layer(truth);
    let mut fg: Vec<RgbaImage> = truth.gts[1..].to_vec();
    let src = fg[0].clone();
    fg[0] = RgbaImage::from_fn(src.width(), src.height(), |x, y| {
        if x >= 7 && y >= 4 {
            *src.get_pixel(x - 7, y - 4)
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    if fg.len() > 1 {
        if let Some(last) = fg.last_mut() {
            for p in last.pixels_mut() {
                for c in 0..3 {
                    p.0[c] = 255 - p.0[c];
                }
            }
        }
    }
    s.layers
        .extend(fg.into_iter().map(|g| layer(g, LayerKind::Object)));
    s
}

#[test]
fn in_memory_scores_match_score_py() {
    for (i, id) in IDS.iter().enumerate() {
        let dir = fixtures().join(id);
        let truth = score::load_truth(&dir).unwrap();
        check(
            &score_design(&dir, &one_layer(&truth)).unwrap(),
            &ONE_LAYER[i],
        );
        check(&score_design(&dir, &gt(&truth)).unwrap(), &GT[i]);
        check(
            &score_design(&dir, &perturbed(&truth)).unwrap(),
            &PERTURBED[i],
        );
    }
}

#[test]
fn exported_dirs_score_like_score_py() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for id in IDS {
        let truth = score::load_truth(&fixtures().join(id)).unwrap();
        write_png_dir(&perturbed(&truth), &root.join("manifest").join(id)).unwrap();
        // Without a manifest the files are taken in name order.
        let plain = root.join("plain").join(id);
        write_png_dir(&gt(&truth), &plain).unwrap();
        fs::remove_file(plain.join("manifest.json")).unwrap();
    }
    let (rows, summary) = score_predictions(&fixtures(), &root.join("manifest")).unwrap();
    for (row, want) in rows.iter().zip(&PERTURBED) {
        check(row, want);
    }
    assert!((summary.fg_iou.unwrap() - 0.7456856767160618).abs() < 1e-9);
    assert!((summary.recon_psnr_min.unwrap() - 21.38305414914118).abs() < 1e-9);
    let (rows, summary) = score_predictions(&fixtures(), &root.join("plain")).unwrap();
    for (row, want) in rows.iter().zip(&GT) {
        check(row, want);
    }
    assert_eq!((summary.scored, summary.total), (2, 2));
    // A design without a prediction is an error row, as in score.py.
    let (rows, summary) = score_predictions(&fixtures(), &root.join("none")).unwrap();
    assert_eq!(rows[0].error.as_deref(), Some("no prediction"));
    assert_eq!(
        (summary.scored, summary.total, summary.fg_iou),
        (0, 2, None)
    );
}

#[test]
fn run_decomposes_scores_and_writes_predictions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut seen = Vec::new();
    let (rows, summary) = run(
        &fixtures(),
        Some(&out),
        |img| {
            let comp = DynamicImage::ImageRgb8(img.clone()).to_rgba8();
            let s = stack(vec![layer(comp, LayerKind::Background)]);
            Ok((s, vec![("copy".to_owned(), 0.5)]))
        },
        |i, n, id| seen.push(format!("{i}/{n} {id}")),
    )
    .unwrap();
    assert_eq!(seen, ["0/2 public-1-012", "1/2 public-1-021"]);
    for (row, want) in rows.iter().zip(&ONE_LAYER) {
        check(row, want);
        assert!(row.seconds > 0.0);
        assert_eq!(row.stages, [("copy".to_owned(), 0.5)]);
    }
    assert!((summary.count_err.unwrap() - 3.5).abs() < 1e-12);
    assert!((summary.fg_l1.unwrap() - 0.02781086999996595).abs() < 1e-9);
    // The written predictions score the same from disk.
    let (again, _) = score_predictions(&fixtures(), &out).unwrap();
    for (row, want) in again.iter().zip(&ONE_LAYER) {
        check(row, want);
    }
}

#[test]
fn failed_decompositions_are_error_rows() {
    let mut calls = 0;
    let (rows, summary) = run(
        &fixtures(),
        None,
        |img| {
            calls += 1;
            match calls {
                1 => Err("model missing".to_owned()),
                _ => {
                    // A stack of the wrong size cannot be scored.
                    let small = RgbaImage::new(img.width() / 2, img.height());
                    Ok((stack(vec![layer(small, LayerKind::Background)]), Vec::new()))
                }
            }
        },
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(rows[0].error.as_deref(), Some("model missing"));
    assert_eq!(rows[1].error.as_deref(), Some(score::WRONG_SIZE));
    assert_eq!((summary.scored, summary.total), (0, 2));
    assert!(render_table(&rows, &summary).contains("public-1-012 model missing"));

    let (rows, _) = run(&fixtures(), None, |_| panic!("boom"), |_, _, _| {}).unwrap();
    assert_eq!(rows[1].error.as_deref(), Some("decomposer panicked: boom"));
}

#[test]
fn broken_datasets_and_predictions_report_codes() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(
        score_predictions(&tmp.path().join("missing"), tmp.path())
            .unwrap_err()
            .code(),
        "eval_io"
    );
    let design = tmp.path().join("d");
    fs::create_dir_all(design.join("gt")).unwrap();
    fs::copy(
        fixtures().join("public-1-021/composite.png"),
        design.join("composite.png"),
    )
    .unwrap();
    let truth_err = score_design(
        &design,
        &stack(vec![layer(RgbaImage::new(1, 1), LayerKind::Background)]),
    );
    assert_eq!(truth_err.unwrap_err().code(), "eval_dataset");
    let pred = tmp.path().join("p");
    fs::create_dir_all(&pred).unwrap();
    fs::write(pred.join("manifest.json"), b"{not json").unwrap();
    assert_eq!(
        score_pred_dir(&fixtures().join("public-1-021"), &pred)
            .unwrap_err()
            .code(),
        "eval_manifest"
    );
}
