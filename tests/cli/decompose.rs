//! `decompose` and `eval` through the real binary: layer files and manifest back to front,
//! ZIP output, exact recomposition, bad inputs with clear errors, and the evaluation table.

use std::path::{Path, PathBuf};

use crate::support::*;

fn design(id: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eval")
        .join(id)
        .join("composite.png")
}

/// `eval ARGS --json` with the real models, parsed.
fn eval_json(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    all.push("--json");
    let run = env.run_models(&all, vars);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    serde_json::from_str(&run.stdout).unwrap()
}

/// Composites the layer files listed in `manifest.json` over black; PSNR against `truth`.
fn psnr_of_dir(dir: &Path, truth: &image::RgbImage) -> f64 {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let (w, h) = truth.dimensions();
    let mut acc = vec![0f64; (w * h * 3) as usize];
    for l in manifest["layers"].as_array().unwrap() {
        let img = image::open(dir.join(l["file"].as_str().unwrap()))
            .unwrap()
            .to_rgba8();
        assert_eq!(img.dimensions(), (w, h), "layers are full canvas");
        for (i, p) in img.pixels().enumerate() {
            let a = p.0[3] as f64 / 255.0;
            for c in 0..3 {
                acc[i * 3 + c] = p.0[c] as f64 / 255.0 * a + acc[i * 3 + c] * (1.0 - a);
            }
        }
    }
    let mse = acc
        .iter()
        .zip(truth.as_raw())
        .map(|(a, t)| (a - *t as f64 / 255.0).powi(2))
        .sum::<f64>()
        / acc.len() as f64;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

#[test]
fn palette_decompose_writes_layers_and_a_manifest_that_recompose_the_input() {
    let env = Env::new();
    let out = env.root.path().join("layers");
    let input = design("public-1-012");
    let run = env.run(&[
        "decompose",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--mode",
        "palette",
        "--verbose",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(
        run.stdout.contains("palette"),
        "per-stage timings: {}",
        run.describe()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert!(layers.len() >= 2);
    assert_eq!(layers[0]["file"], "00_background.png");
    assert_eq!(layers[0]["kind"], "background");
    for (z, l) in layers.iter().enumerate() {
        assert_eq!(l["z"], z);
        assert!(l["file"].as_str().unwrap().starts_with(&format!("{z:02}_")));
        assert!(out.join(l["file"].as_str().unwrap()).is_file());
    }
    assert_eq!(
        (manifest["width"].as_u64(), manifest["height"].as_u64()),
        (Some(512), Some(512))
    );
    let truth = image::open(&input).unwrap().to_rgb8();
    assert!(psnr_of_dir(&out, &truth) >= 45.0);

    // the same as one ZIP, manifest first
    let zip_path = env.root.path().join("layers.zip");
    let run = env.run(&[
        "decompose",
        input.to_str().unwrap(),
        "-o",
        zip_path.to_str().unwrap(),
        "--mode",
        "palette",
        "--format",
        "zip",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let bytes = std::fs::read(&zip_path).unwrap();
    let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
    assert_eq!(&bytes[30..30 + name_len], b"manifest.json");

    // and as layered files that our own readers open back into the same layers
    for format in ["psd", "ora"] {
        let path = env.root.path().join(format!("layers.{format}"));
        let run = env.run(&[
            "decompose",
            input.to_str().unwrap(),
            "-o",
            path.to_str().unwrap(),
            "--mode",
            "palette",
            "--format",
            format,
        ]);
        assert_eq!(run.code, Some(0), "{}", run.describe());
        let bytes = std::fs::read(&path).unwrap();
        let stack = if format == "psd" {
            image_layered::engine::psd_read::decode_psd(&bytes, &Default::default())
                .unwrap()
                .0
        } else {
            image_layered::engine::ora::decode_ora(&bytes).unwrap().0
        };
        assert_eq!(
            stack.layers.len(),
            manifest["layers"].as_array().unwrap().len()
        );
        assert!(stack.recon_psnr(&truth) >= 45.0, "{format}");
    }
}

#[test]
fn decompose_rejects_bad_arguments_and_inputs_clearly() {
    let env = Env::new();
    let input = design("public-1-012");
    let out = env.root.path().join("o");
    let run = env.run(&[
        "decompose",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--layers",
        "11",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    assert!(run.stderr.contains("2 to 10"), "{}", run.describe());
    let not_image = env.root.path().join("x.png");
    std::fs::write(&not_image, b"not an image").unwrap();
    let run = env.run(&[
        "decompose",
        not_image.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--mode",
        "palette",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    // a fully transparent image is a sane one-layer result
    let clear = env.root.path().join("clear.png");
    image::RgbaImage::new(64, 48).save(&clear).unwrap();
    let run = env.run(&[
        "decompose",
        clear.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--mode",
        "palette",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(run.stdout.contains("1 layers"), "{}", run.describe());
}

#[test]
fn eval_scores_a_dataset_with_the_palette_pipeline() {
    let env = Env::new();
    let dataset = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval");
    let run = env.run(&[
        "eval",
        "--dataset",
        dataset.to_str().unwrap(),
        "--mode",
        "palette",
        "--json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["summary"]["scored"], 2);
    assert!(v["summary"]["recon_psnr_min"].as_f64().unwrap() >= 45.0);
}

#[test]
#[ignore = "needs the real models: IMAGE_LAYERED_TEST_MODELS (scripts/test)"]
fn peel_decompose_and_eval_with_the_real_models() {
    let env = Env::new();
    let models = test_models();
    let vars = [("IMAGE_LAYERED__MODELS__DIR", models.to_str().unwrap())];
    let out = env.root.path().join("peel");
    let input = design("public-1-012");
    let run = env.run_models(
        &[
            "decompose",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--verbose",
        ],
        &vars,
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());
    for stage in ["ocr", "segment", "inpaint", "colours"] {
        assert!(
            run.stdout.contains(stage),
            "timing of {stage}: {}",
            run.describe()
        );
    }
    let truth = image::open(&input).unwrap().to_rgb8();
    assert!(psnr_of_dir(&out, &truth) >= 45.0);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "text" && l["text"] == "FREE"),
        "{manifest}"
    );

    // too small, too wide: clear errors
    let tiny = env.root.path().join("tiny.png");
    image::RgbImage::new(1, 1).save(&tiny).unwrap();
    let run = env.run_with(
        &[
            "decompose",
            tiny.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &vars,
        None,
    );
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.stderr.contains("at least 8×8"), "{}", run.describe());
    let strip = env.root.path().join("strip.png");
    image::RgbImage::new(20_000, 16).save(&strip).unwrap();
    let run = env.run_with(
        &[
            "decompose",
            strip.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &vars,
        None,
    );
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.stderr.contains("16384"), "{}", run.describe());

    // eval with the peel pipeline on two designs
    let dataset = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval");
    let v = eval_json(&env, &["--dataset", dataset.to_str().unwrap()], &vars);
    assert!(
        v["summary"]["recon_psnr_min"].as_f64().unwrap() >= 45.0,
        "{v}"
    );
    assert!(v["summary"]["fg_iou"].as_f64().unwrap() > 0.5, "{v}");
}

#[test]
#[ignore = "needs the real models: IMAGE_LAYERED_TEST_MODELS (scripts/test)"]
fn eval_photos_finds_a_frame_filling_subject_and_lifts_no_phantom() {
    let env = Env::new();
    let models = test_models();
    let vars = [("IMAGE_LAYERED__MODELS__DIR", models.to_str().unwrap())];
    // the pet that fills 74% of the frame, the cup whose fill used to be lifted twice, and a
    // launch pad whose rocket and towers are separate in the matte (one subject layer)
    let photos = env.root.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos");
    for name in ["chelsea.png", "coffee.png", "rocket.jpg"] {
        std::fs::copy(fixtures.join(name), photos.join(name)).unwrap();
    }
    // and the cup at camera size (3000×2000): analysed on a working copy, finished at full
    // size, with the same layers
    let cup = image::open(fixtures.join("coffee.png")).unwrap().to_rgb8();
    image::imageops::resize(&cup, 3000, 2000, image::imageops::FilterType::Triangle)
        .save(photos.join("coffee-6mp.jpg"))
        .unwrap();
    let v = eval_json(&env, &["--photos", photos.to_str().unwrap()], &vars);
    let rows = v["photos"].as_array().expect("photo rows");
    assert_eq!(rows.len(), 4, "{v}");
    for r in rows {
        assert!(r["layers"].as_u64().unwrap() >= 2, "{r}");
        assert!(r["subject_iou"].as_f64().unwrap() >= 0.8, "{r}");
        assert_eq!(r["phantoms"], 0, "{r}");
        assert_eq!(r["texts"], 0, "texture read as text: {r}");
    }
    let layers = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap()["layers"].clone();
    assert_eq!(layers("coffee-6mp.jpg"), layers("coffee.png"), "{v}");
}

#[test]
#[ignore = "needs the real models: IMAGE_LAYERED_TEST_MODELS (scripts/test)"]
fn peel_parts_touching_shapes_and_lifts_a_framed_photo_whole() {
    let env = Env::new();
    let models = test_models();
    let vars = [("IMAGE_LAYERED__MODELS__DIR", models.to_str().unwrap())];
    // public-1-023: a rounded rectangle, a star and a framed photo that touch (ISNet gives
    // them one matte) and a text line; public-1-008: a framed photo of which ISNet mattes
    // only the cup
    let dataset = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval-parts");
    let v = eval_json(&env, &["--dataset", dataset.to_str().unwrap()], &vars);
    let designs = v["designs"].as_object().expect("design rows");
    let touching = &designs["public-1-023"];
    assert_eq!(touching["pred_layers"], 5, "{touching}");
    assert!(touching["fg_iou"].as_f64().unwrap() >= 0.7, "{touching}");
    let framed = &designs["public-1-008"];
    assert_eq!(framed["pred_layers"], 2, "{framed}");
    assert!(framed["fg_iou"].as_f64().unwrap() >= 0.95, "{framed}");
    assert!(
        v["summary"]["recon_psnr_min"].as_f64().unwrap() >= 45.0,
        "{v}"
    );
}
