//! Tests of the whole module against the real ONNX Runtime and models.
//!
//! They are `#[ignore]`d so a plain `cargo test` skips them; run them with
//! `IMAGE_LAYERED_TEST_MODELS=DIR cargo test inference -- --include-ignored`, where `DIR`
//! holds `libonnxruntime.so.1.31.1` (from the `onnxruntime==1.31.1` wheel),
//! `isnet.onnx`, `ppocr-det.onnx`, `ppocr-rec.onnx` and `ppocr-cls.onnx` (DESIGN.md, "Models
//! and the ONNX runtime"). Without the variable they fail and say so. The tests here that
//! need no runtime (a missing library, `Send + Sync`) always run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use image::{GrayImage, RgbImage};

use super::onnx_proto::{encode, Dim, Graph, Initializer, Node, Value};
use super::segment::{isnet_input, matte_from_output};
use super::*;

const MODELS_ENV: &str = "IMAGE_LAYERED_TEST_MODELS";

fn models_dir() -> PathBuf {
    match std::env::var_os(MODELS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => panic!(
            "this test needs the real runtime and models: set {MODELS_ENV} to a directory \
             holding libonnxruntime.so.1.31.1, isnet.onnx, ppocr-det.onnx, ppocr-rec.onnx \
             and ppocr-cls.onnx (see src/inference/tests.rs)"
        ),
    }
}

fn files(dir: &Path) -> ModelFiles {
    ModelFiles::in_dir(dir)
}

/// One CPU inference handle shared by the tests of this process.
fn cpu() -> Arc<Inference> {
    static CPU: OnceLock<Arc<Inference>> = OnceLock::new();
    CPU.get_or_init(|| {
        let opts = InferenceOptions {
            device: Device::Cpu,
            intra_threads: 0,
            concurrency: 2,
        };
        Inference::load(&files(&models_dir()), &opts).expect("load the runtime")
    })
    .clone()
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn open_rgb(rel: &str) -> RgbImage {
    image::open(fixture(rel))
        .unwrap_or_else(|e| panic!("open {rel}: {e}"))
        .to_rgb8()
}

#[test]
fn a_missing_runtime_is_runtime_missing_and_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = files(dir.path());
    f.runtime_lib = dir.path().join("nope/libonnxruntime.so.1.31.1");
    let opts = InferenceOptions {
        device: Device::Cpu,
        intra_threads: 0,
        concurrency: 1,
    };
    let err = Inference::load(&f, &opts).expect_err("no runtime there");
    assert_eq!(err.code(), "runtime_missing");
    let text = err.to_string();
    assert!(text.contains("nope/libonnxruntime.so.1.31.1"), "{text}");
    assert!(text.contains("image-layered models fetch"), "{text}");
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Inference>();
    check::<Segmenter>();
    check::<TextDetector>();
    check::<TextRecognizer>();
    check::<Inpainter>();
    check::<FakeSegmenter>();
    check::<Arc<dyn MatteModel>>();
}

#[test]
#[ignore = "needs real models: set IMAGE_LAYERED_TEST_MODELS"]
fn isnet_matte_matches_the_python_reference() {
    let segmenter = cpu().segmenter().expect("isnet");
    for name in ["chelsea", "coffee"] {
        let img = open_rgb(&format!("photos/{name}.png"));
        let reference = image::open(fixture(&format!("photos/{name}.matte.png")))
            .expect("reference matte")
            .to_luma8();
        let (alpha, w, h) = segmenter.matte_f32(&img).expect("matte");
        assert_eq!((w, h), img.dimensions());
        assert_eq!(reference.dimensions(), (w, h));
        let (mut sum, mut max) = (0.0f64, 0.0f64);
        for (a, &r) in alpha.iter().zip(reference.as_raw()) {
            let d = (*a as f64 - r as f64 / 255.0).abs();
            sum += d;
            max = max.max(d);
        }
        let mean = sum / alpha.len() as f64;
        println!("isnet {name}: mean |Δ| = {mean:.5}, max |Δ| = {max:.5}");
        assert!(mean < 0.01 && max < 0.1, "{name}: mean {mean}, max {max}");
        // and the 8-bit form is the rounded float one
        let gray = segmenter.matte(&img).expect("matte u8");
        let off = gray
            .as_raw()
            .iter()
            .zip(reference.as_raw())
            .filter(|(a, b)| a.abs_diff(**b) > 2)
            .count();
        assert!(
            off * 100 < alpha.len(),
            "{name}: {off} pixels off by > 2 levels"
        );
    }
    assert!(cpu().loaded().contains(&"isnet"));
}

#[test]
#[ignore = "needs real models: set IMAGE_LAYERED_TEST_MODELS"]
fn isnet_pre_and_post_processing_cost_little_next_to_the_session() {
    let segmenter = cpu().segmenter().expect("isnet");
    let img = image::imageops::resize(
        &open_rgb("photos/astronaut.png"),
        1024,
        1024,
        image::imageops::FilterType::Triangle,
    );
    let t = Instant::now();
    let input = isnet_input(&img);
    let pre = t.elapsed();
    let array = ndarray::Array4::from_shape_vec((1, 3, 1024, 1024), input).expect("shape");
    // The first run of a session pays one-off allocations; time the best of two after it.
    let mut raw = segmenter.run_raw(&array).expect("warm-up run");
    let mut run = std::time::Duration::MAX;
    for _ in 0..2 {
        let t = Instant::now();
        raw = segmenter.run_raw(&array).expect("raw run");
        run = run.min(t.elapsed());
    }
    assert_eq!(raw.shape(), &[1, 1, 1024, 1024]);
    let output = raw.into_raw_vec_and_offset().0;
    let t = Instant::now();
    let alpha = matte_from_output(&output, 1024, 1024);
    let post = t.elapsed();
    assert_eq!(alpha.len(), 1024 * 1024);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "isnet 1024²: session.run {:.0} ms (best of 2), pre {:.1} ms, post {:.1} ms",
        ms(run),
        ms(pre),
        ms(post)
    );
    // The budget (≤ 10% of the session run) is for optimised builds; unoptimised test builds
    // of this crate get a looser bound that still catches a per-pixel allocation.
    let budget = if cfg!(debug_assertions) { 0.25 } else { 0.1 };
    assert!(
        (pre + post).as_secs_f64() < budget * run.as_secs_f64(),
        "pre + post must stay under {budget} of the session run"
    );
    if !cfg!(debug_assertions) {
        // The same at a 12-megapixel source.
        let big = image::imageops::resize(&img, 4000, 3000, image::imageops::FilterType::Nearest);
        let t = Instant::now();
        let _ = isnet_input(&big);
        let big_pre = t.elapsed();
        let t = Instant::now();
        let _ = matte_from_output(&output, 4000, 3000);
        let big_post = t.elapsed();
        println!(
            "isnet 4000×3000: pre {:.1} ms, post {:.1} ms",
            ms(big_pre),
            ms(big_post)
        );
        assert!((big_pre + big_post).as_secs_f64() < 0.1 * run.as_secs_f64());
    }
}

#[test]
#[ignore = "needs real models: set IMAGE_LAYERED_TEST_MODELS"]
fn ocr_detects_and_reads_the_rendered_fixture() {
    let inference = cpu();
    let img = open_rgb("ocr/two-lines.png");
    let detector = inference.text_detector().expect("det");
    let recognizer = inference.text_recognizer().expect("rec");
    let t = Instant::now();
    let boxes = detector.detect(&img).expect("detect");
    let det = t.elapsed();
    assert_eq!(boxes.len(), 2, "{boxes:?}");
    let t = Instant::now();
    let texts = recognizer.recognize(&img, &boxes).expect("recognize");
    let rec = t.elapsed();
    println!(
        "ocr two-lines.png: detect {:.0} ms, recognize {:.0} ms; {boxes:?} {texts:?}",
        det.as_secs_f64() * 1e3,
        rec.as_secs_f64() * 1e3
    );
    assert_eq!(texts[0].0, "SALE 50% OFF");
    assert_eq!(texts[1].0, "image-layered");
    assert!(texts.iter().all(|(_, conf)| *conf > 0.9), "{texts:?}");
    // The boxes sit where the text was drawn (see tests/fixtures/ocr/make_fixture.py).
    let [x, y, w, h] = boxes[0].bbox;
    assert!(
        x < 60 && y < 60 && x + w > 480 && y + h > 85,
        "{:?}",
        boxes[0]
    );
    let [x, y, w, h] = boxes[1].bbox;
    assert!(
        x < 60 && (140..170).contains(&y) && x + w > 380 && h < 70,
        "{:?}",
        boxes[1]
    );
    // Upside down, the angle classifier turns the crops back: the same boxes in the image
    // turned 180°, with corners named as the detector would name them there.
    let flipped = image::imageops::rotate180(&img);
    let (w, h) = (img.width() as f32 - 1.0, img.height() as f32 - 1.0);
    let turned: Vec<TextBox> = boxes
        .iter()
        .map(|b| {
            let r = |[x, y]: [f32; 2]| [w - x, h - y];
            TextBox {
                quad: [r(b.quad[2]), r(b.quad[3]), r(b.quad[0]), r(b.quad[1])],
                ..b.clone()
            }
        })
        .collect();
    let again = recognizer
        .recognize(&flipped, &turned)
        .expect("read flipped");
    let read: Vec<&str> = again.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(read, ["SALE 50% OFF", "image-layered"], "{again:?}");
    assert!(recognizer.recognize(&img, &[]).expect("none").is_empty());
}

#[test]
#[ignore = "needs real models: set IMAGE_LAYERED_TEST_MODELS"]
fn cuda_fails_with_a_cause_where_it_cannot_run() {
    let dir = models_dir();
    let opts = InferenceOptions {
        device: Device::Cuda,
        intra_threads: 0,
        concurrency: 1,
    };
    let cpu_build = !dir.join("libonnxruntime_providers_cuda.so").exists();
    match Inference::load(&files(&dir), &opts) {
        Ok(inference) => {
            assert!(!cpu_build, "CUDA cannot load from the CPU build");
            assert_eq!(inference.provider(), "cuda");
        }
        Err(err) => {
            assert_eq!(err.code(), "cuda_unavailable", "{err}");
            let text = err.to_string();
            println!("{text}");
            assert!(text.starts_with("CUDA was requested but cannot be used: "));
            if cpu_build {
                assert!(text.contains("CPU build"), "{text}");
                assert!(text.contains("models fetch --gpu"), "{text}");
            }
        }
    }
    // Auto on the same machine falls back to the CPU only when CUDA does not work.
    let auto = Inference::load(
        &files(&dir),
        &InferenceOptions {
            device: Device::Auto,
            ..opts
        },
    )
    .expect("auto always loads");
    if cpu_build {
        assert_eq!(auto.provider(), "cpu");
    }
}

#[test]
#[ignore = "needs real models: set IMAGE_LAYERED_TEST_MODELS"]
fn missing_models_fail_to_load_and_are_retried() {
    let dir = models_dir();
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut f = files(&dir);
    f.isnet = scratch.path().join("isnet.onnx");
    let opts = InferenceOptions {
        device: Device::Cpu,
        intra_threads: 1,
        concurrency: 1,
    };
    let inference = Inference::load(&f, &opts).expect("runtime");
    let err = inference.segmenter().err().expect("no model");
    assert_eq!(err.code(), "model_load_failed");
    assert!(err.to_string().contains("models fetch"), "{err}");
    assert!(inference.loaded().is_empty());
    assert!(inference.inpainter().expect("none configured").is_none());
    // A file that is not a model.
    std::fs::write(&f.isnet, b"not onnx").expect("write");
    assert_eq!(
        inference.segmenter().err().expect("bad model").code(),
        "model_load_failed"
    );
    assert!(inference.loaded().is_empty());
}

/// `output = image · (1 − mask) + 0.5 · mask`: fills holes with mid grey; any size, or
/// only `side × side` when given.
fn grey_fill_model(side: Option<i64>) -> Vec<u8> {
    let dims = |c: i64| {
        let (h, w) = match side {
            Some(n) => (Dim::Fixed(n), Dim::Fixed(n)),
            None => (Dim::Named("h"), Dim::Named("w")),
        };
        vec![Dim::Fixed(1), Dim::Fixed(c), h, w]
    };
    encode(&Graph {
        nodes: vec![
            Node {
                op: "Sub",
                inputs: vec!["one", "mask"],
                outputs: vec!["keep"],
            },
            Node {
                op: "Mul",
                inputs: vec!["image", "keep"],
                outputs: vec!["kept"],
            },
            Node {
                op: "Mul",
                inputs: vec!["mask", "half"],
                outputs: vec!["fill"],
            },
            Node {
                op: "Add",
                inputs: vec!["kept", "fill"],
                outputs: vec!["output"],
            },
        ],
        inputs: vec![
            Value {
                name: "image",
                dims: dims(3),
            },
            Value {
                name: "mask",
                dims: dims(1),
            },
        ],
        outputs: vec![Value {
            name: "output",
            dims: dims(3),
        }],
        initializers: vec![
            Initializer {
                name: "one",
                dims: vec![],
                data: vec![1.0],
            },
            Initializer {
                name: "half",
                dims: vec![],
                data: vec![0.5],
            },
        ],
    })
}

fn inpainter_for(model: Vec<u8>) -> (Arc<Inference>, Inpainter, tempfile::TempDir) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("grey-fill.onnx");
    std::fs::write(&path, model).expect("write model");
    let mut f = files(&models_dir());
    f.inpaint = Some(path);
    let opts = InferenceOptions {
        device: Device::Cpu,
        intra_threads: 1,
        concurrency: 1,
    };
    let inference = Inference::load(&f, &opts).expect("runtime");
    let inpainter = inference.inpainter().expect("load").expect("configured");
    (inference, inpainter, scratch)
}

#[test]
#[ignore = "needs real models: set IMAGE_LAYERED_TEST_MODELS"]
fn inpainter_runs_an_image_and_mask_model() {
    let (inference, inpainter, _dir) = inpainter_for(grey_fill_model(None));
    assert_eq!(inference.loaded(), vec!["inpaint"]);
    // 13 × 10: padded to 16 × 16 inside, cropped back.
    let img = RgbImage::from_fn(13, 10, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 200]));
    let mut mask = GrayImage::new(13, 10);
    for (x, y) in [(0, 0), (12, 9), (5, 5)] {
        mask.put_pixel(x, y, image::Luma([255]));
    }
    let out = inpainter.inpaint(&img, &mask).expect("inpaint");
    for (x, y, px) in out.enumerate_pixels() {
        if mask.get_pixel(x, y)[0] != 0 {
            assert_eq!(px.0, [128, 128, 128], "hole at {x},{y}");
        } else {
            assert_eq!(px, img.get_pixel(x, y));
        }
    }
    let err = inpainter
        .inpaint(&img, &GrayImage::new(3, 3))
        .expect_err("size mismatch");
    assert_eq!(err.code(), "bad_input");
    assert_eq!(
        inpainter
            .inpaint(&img, &GrayImage::new(13, 10))
            .expect("no hole"),
        img
    );
}

#[test]
#[ignore = "needs real models: set IMAGE_LAYERED_TEST_MODELS"]
fn inpainter_resizes_for_a_fixed_size_model() {
    let (_inference, inpainter, _dir) = inpainter_for(grey_fill_model(Some(32)));
    let img = RgbImage::from_pixel(50, 40, image::Rgb([10, 200, 30]));
    let mut mask = GrayImage::new(50, 40);
    for y in 10..30 {
        for x in 15..35 {
            mask.put_pixel(x, y, image::Luma([255]));
        }
    }
    let out = inpainter.inpaint(&img, &mask).expect("inpaint");
    assert_eq!(out.get_pixel(25, 20).0, [128, 128, 128]); // inside the hole
    assert_eq!(out.get_pixel(2, 2), img.get_pixel(2, 2)); // outside: untouched
    assert_eq!(out.get_pixel(49, 39), img.get_pixel(49, 39));
}

#[test]
#[ignore = "needs real models: set IMAGE_LAYERED_TEST_MODELS"]
fn the_probe_model_runs_on_the_cpu() {
    let env = runtime::environment(&files(&models_dir()).runtime_lib).expect("runtime");
    let mut session = ort::session::Session::builder(&env)
        .expect("builder")
        .commit_from_memory(&onnx_proto::probe_model())
        .expect("probe model loads");
    let input = [-2.0f32];
    let tensor = ort::value::TensorRef::from_array_view(([1usize], &input[..])).expect("tensor");
    let outputs = session.run(ort::inputs![tensor]).expect("run");
    let (_, y) = outputs[0].try_extract_tensor::<f32>().expect("f32");
    assert_eq!(y, &[0.0]);
}
