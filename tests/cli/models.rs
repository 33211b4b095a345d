//! The real models through the real binary: `cutout` end to end, `--device cuda` without a
//! GPU, a damaged model caught by `models verify`, and missing models named clearly. These
//! need `IMAGE_LAYERED_TEST_MODELS` (scripts/test fetches the models and sets it).

use std::path::Path;

use crate::support::*;

fn photo(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/photos")
        .join(name)
}

/// A models dir of symlinks to the installed files, so one can be replaced cheaply.
fn linked_models(into: &Path, skip: &[&str]) {
    let src = test_models();
    std::fs::create_dir_all(into.join("runtime")).unwrap();
    for rel in [
        ".installed.json",
        "isnet.onnx",
        "ppocr-det.onnx",
        "ppocr-rec.onnx",
        "ppocr-cls.onnx",
        "runtime/libonnxruntime.so.1.31.1",
    ] {
        if !skip.contains(&rel) {
            std::os::unix::fs::symlink(src.join(rel), into.join(rel)).unwrap();
        }
    }
}

#[test]
#[ignore = "needs the real models: IMAGE_LAYERED_TEST_MODELS (scripts/test)"]
fn cutout_writes_an_rgba_png_at_source_resolution_matching_the_reference() {
    let env = Env::new();
    let models = test_models();
    let out = env.root.path().join("cat.png");
    let input = photo("chelsea.png");
    let cutout = |extra: &[&str]| {
        let mut args = vec![
            "cutout",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ];
        args.extend_from_slice(extra);
        env.run_models(
            &args,
            &[("IMAGE_LAYERED__MODELS__DIR", models.to_str().unwrap())],
        )
    };
    let run = cutout(&[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(run.stdout.contains("451×300 RGBA"), "{}", run.describe());
    let cut = image::open(&out).unwrap();
    assert_eq!(cut.color(), image::ColorType::Rgba8);
    let cut = cut.to_rgba8();
    assert_eq!(cut.dimensions(), (451, 300));
    let src = image::open(photo("chelsea.png")).unwrap().to_rgb8();
    let reference = image::open(photo("chelsea.matte.png")).unwrap().to_luma8();
    let mut diff = 0u64;
    for ((c, s), r) in cut.pixels().zip(src.pixels()).zip(reference.pixels()) {
        assert_eq!(&c.0[..3], &s.0[..], "colours are the source's");
        diff += (c.0[3] as i64 - r.0[0] as i64).unsigned_abs();
    }
    let mean = diff as f64 / (451.0 * 300.0);
    assert!(
        mean < 1.0,
        "alpha differs from the Python reference by {mean:.3} levels on average"
    );
    // the cat is kept and the background cut away
    assert!(cut.get_pixel(200, 150).0[3] > 250);
    assert!(cut.get_pixel(440, 10).0[3] < 5);

    // timed in one process: load and warm-up apart from the median of the repeated runs
    let run = cutout(&["--repeat", "2"]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let timing: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(timing["provider"], "cpu", "{timing}");
    assert_eq!(timing["runs"], 2, "{timing}");
    for key in ["load_ms", "warmup_ms", "session_run_ms", "cutout_ms"] {
        assert!(timing[key].as_f64().unwrap() > 0.0, "{key}: {timing}");
    }
    assert_eq!(
        image::open(&out).unwrap().to_rgba8(),
        cut,
        "the same cutout"
    );
}

#[test]
#[ignore = "needs the real models: IMAGE_LAYERED_TEST_MODELS (scripts/test)"]
fn cuda_without_a_gpu_is_a_clear_error_not_a_cpu_fallback() {
    let env = Env::new();
    let models = test_models();
    let out = env.root.path().join("x.png");
    let coffee = photo("coffee.png");
    for (args, via) in [
        (vec!["--device", "cuda"], vec![]),
        (vec![], vec![("IMAGE_LAYERED__INFERENCE__DEVICE", "cuda")]),
    ] {
        let mut argv = vec![
            "cutout",
            coffee.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        argv.extend(args);
        let mut vars = vec![("IMAGE_LAYERED__MODELS__DIR", models.to_str().unwrap())];
        vars.extend(via);
        let run = env.run_with(&argv, &vars, None);
        assert_eq!(run.code, Some(1), "{}", run.describe());
        assert!(
            run.stderr.contains("CUDA was requested but cannot be used"),
            "{}",
            run.describe()
        );
        assert!(!out.exists());
    }
    // the server refuses to start too
    let run = env.run_with(
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            ("IMAGE_LAYERED__MODELS__DIR", models.to_str().unwrap()),
            ("IMAGE_LAYERED__INFERENCE__DEVICE", "cuda"),
        ],
        None,
    );
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.stderr.contains("CUDA"), "{}", run.describe());
}

#[test]
#[ignore = "needs the real models: IMAGE_LAYERED_TEST_MODELS (scripts/test)"]
fn a_damaged_model_fails_verify_and_missing_models_are_named() {
    let env = Env::new();
    let dir = env.root.path().join("models");
    linked_models(&dir, &["ppocr-cls.onnx"]);
    let mut bytes = std::fs::read(test_models().join("ppocr-cls.onnx")).unwrap();
    bytes[1000] ^= 0x40;
    std::fs::write(dir.join("ppocr-cls.onnx"), &bytes).unwrap();
    let vars = [("IMAGE_LAYERED__MODELS__DIR", dir.to_str().unwrap())];
    let run = env.run_with(&["models", "verify"], &vars, None);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.stdout.contains("mismatch"), "{}", run.describe());
    assert!(
        run.stderr.contains("do not match their pinned sha256"),
        "{}",
        run.describe()
    );

    // without the runtime, and with fetching off, a cutout names what is missing
    let bare = env.root.path().join("bare");
    linked_models(&bare, &["runtime/libonnxruntime.so.1.31.1"]);
    let out = env.root.path().join("y.png");
    let run = env.run_with(
        &[
            "cutout",
            photo("coffee.png").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[("IMAGE_LAYERED__MODELS__DIR", bare.to_str().unwrap())],
        None,
    );
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.stderr.contains("onnxruntime"), "{}", run.describe());
    assert!(
        run.stderr.contains("image-layered models fetch"),
        "{}",
        run.describe()
    );
}
