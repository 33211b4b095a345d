//! Cutout benchmark (`scripts/bench-cutout`, or `cargo bench --bench cutout` with
//! `IMAGE_LAYERED_TEST_MODELS` set), side by side in one run on the same 1024×1024 photo and
//! the same ISNet model, best of N each:
//! 1. raw ONNX Runtime `session.run` (the limit);
//! 2. our cutout end to end: PNG decode → preprocess → session → postprocess → RGBA → PNG
//!    encode;
//! 3. the Python reference pipeline (onnxruntime + PIL + numpy, `scripts/reference_matte.py`),
//!    end to end and its own `session.run`.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Instant;

use image::{DynamicImage, ImageFormat};
use image_layered::config::Device;
use image_layered::inference::{Inference, InferenceOptions, ModelFiles, ISNET_SIZE};

const RUNS: usize = 3;

fn best<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(f());
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    (best, last.expect("n > 0"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let models = std::env::var_os("IMAGE_LAYERED_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/test-models"));
    let files = ModelFiles::in_dir(&models);
    assert!(
        files.isnet.is_file(),
        "no models in {}: run `image-layered models fetch` (scripts/bench-cutout does)",
        models.display()
    );
    let inference = Inference::load(
        &files,
        &InferenceOptions {
            device: Device::Cpu,
            intra_threads: 0,
            concurrency: 1,
        },
    )
    .expect("runtime loads");
    let seg = inference.segmenter().expect("isnet loads");

    // A real photo at 1024×1024, as PNG bytes and as a file for the Python side.
    let photo = image::open(root.join("tests/fixtures/photos/coffee.png")).unwrap();
    let photo = photo.resize_exact(1024, 1024, image::imageops::FilterType::Lanczos3);
    let mut png = Cursor::new(Vec::new());
    photo.write_to(&mut png, ImageFormat::Png).unwrap();
    let png = png.into_inner();
    let tmp = tempfile::tempdir().unwrap();
    let photo_path = tmp.path().join("coffee-1024.png");
    std::fs::write(&photo_path, &png).unwrap();

    // warm-up (first run allocates the arena)
    let _ = seg.matte(&photo.to_rgb8()).unwrap();

    let input = ndarray::Array4::<f32>::from_elem((1, 3, ISNET_SIZE, ISNET_SIZE), 0.1);
    let (raw_ms, _) = best(RUNS, || seg.run_raw(&input).unwrap());

    let (e2e_ms, out_len) = best(RUNS, || {
        let img = image::load_from_memory(&png).unwrap();
        let rgba = image_layered::images::cutout::cutout(&inference, &img).unwrap();
        image_layered::engine::encode_png(&DynamicImage::ImageRgba8(rgba))
            .unwrap()
            .len()
    });
    let (matte_ms, _) = best(RUNS, || seg.matte(&photo.to_rgb8()).unwrap());

    println!("ISNet fp32 at 1024×1024 on CPU ({} runs each, best):", RUNS);
    println!("  raw session.run                         {raw_ms:8.0} ms");
    println!(
        "  ours: matte (pre + run + post)          {matte_ms:8.0} ms  = raw × {:.3} (pre/post +{:.1}%)",
        matte_ms / raw_ms,
        (matte_ms - raw_ms) / raw_ms * 100.0
    );
    println!(
        "  ours: cutout end to end                 {e2e_ms:8.0} ms  = raw × {:.3} (PNG decode + encode included; {out_len} bytes out)",
        e2e_ms / raw_ms
    );

    let script = root.join("scripts/reference_matte.py");
    let py = std::process::Command::new("python3")
        .arg(&script)
        .arg(&files.isnet)
        .arg(&photo_path)
        .args(["--bench", &RUNS.to_string()])
        .output();
    match py {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let num = |key: &str| -> Option<f64> {
                let i = text.find(key)? + key.len();
                text[i..].split_whitespace().next()?.parse().ok()
            };
            if let (Some(py_e2e), Some(py_run)) = (num("end-to-end "), num("session.run ")) {
                println!("  python: session.run                     {py_run:8.0} ms");
                println!(
                    "  python: cutout end to end (PIL + numpy) {py_e2e:8.0} ms  = raw × {:.3}",
                    py_e2e / raw_ms
                );
                println!(
                    "  ours end to end vs python end to end: {:.2}× the time ({:.0}% faster)",
                    e2e_ms / py_e2e,
                    (1.0 - e2e_ms / py_e2e) * 100.0
                );
            } else {
                println!("  python: unexpected output: {text}");
            }
        }
        Ok(o) => println!(
            "  python reference failed (pip install onnxruntime==1.31.1 numpy pillow): {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("  python3 not found: {e}"),
    }
}
