//! Editing benchmark (`cargo bench --bench edit`): how long each document op takes on a
//! 1024×1024 document of five layers, side by side in one run:
//! - **service**: the op as `POST /documents/{id}/ops` runs it — decrypt and decode the layer,
//!   the pixel work, encode, encrypt and fsync the new layer blob, commit the revision and
//!   flush the store (what a member waits for, less ~1 ms of HTTP);
//! - **engine**: the pixel work alone on the same pixels (the floor);
//! - and their ratio, which is the price of durability and encryption.
//!
//! `split` and a model-backed `inpaint` run when `IMAGE_LAYERED_TEST_MODELS` names a models
//! dir (`scripts/test` makes one); without it `inpaint` uses the built-in PatchMatch.

use std::sync::Arc;
use std::time::Instant;

use image::{GrayImage, Luma, Rgba, RgbaImage};
use image_layered::app::App;
use image_layered::clock::{SharedClock, SystemClock};
use image_layered::config::{Config, Overrides};
use image_layered::documents::edit::OpRequest;
use image_layered::engine::{edit, Layer, LayerKind, LayerStack};
use image_layered::store::DocumentMode;
use serde_json::json;

const SIDE: u32 = 1024;
const REPS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A shaded disc with a soft edge (an "object" layer).
fn disc(cx: f32, cy: f32, r: f32, rgb: [u8; 3]) -> RgbaImage {
    RgbaImage::from_fn(SIDE, SIDE, |x, y| {
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        let a = ((r - d) / 2.0).clamp(0.0, 1.0);
        let shade = 0.6 + 0.4 * (1.0 - (y as f32 - (cy - r)) / (2.0 * r)).clamp(0.0, 1.0);
        let c = |v: u8| (v as f32 * shade) as u8;
        Rgba([c(rgb[0]), c(rgb[1]), c(rgb[2]), (a * 255.0) as u8])
    })
}

fn stack() -> LayerStack {
    let design = image::open("tests/fixtures/eval/public-1-012/composite.png")
        .expect("the design fixture")
        .resize_exact(SIDE, SIDE, image::imageops::FilterType::Triangle)
        .to_rgba8();
    let layer = |name: &str, kind, rgba| Layer {
        name: name.into(),
        kind,
        origin: [0, 0],
        rgba,
        text: None,
    };
    LayerStack {
        width: SIDE,
        height: SIDE,
        layers: vec![
            layer("Background", LayerKind::Background, design),
            layer(
                "Object 1",
                LayerKind::Object,
                disc(300.0, 320.0, 180.0, [200, 60, 40]),
            ),
            layer(
                "Object 2",
                LayerKind::Object,
                disc(700.0, 400.0, 220.0, [40, 120, 200]),
            ),
            layer(
                "Object 3",
                LayerKind::Object,
                disc(520.0, 760.0, 160.0, [60, 180, 90]),
            ),
            layer(
                "Object 4",
                LayerKind::Object,
                disc(820.0, 820.0, 120.0, [230, 200, 40]),
            ),
        ],
    }
}

fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut vars = vec![(
        "IMAGE_LAYERED__BOOTSTRAP__ADMIN_PASSWORD".to_string(),
        "bench password".to_string(),
    )];
    let models = std::env::var("IMAGE_LAYERED_TEST_MODELS").ok();
    if let Some(m) = &models {
        vars.push(("IMAGE_LAYERED__MODELS__DIR".into(), m.clone()));
    }
    vars.push(("IMAGE_LAYERED__MODELS__AUTO_FETCH".into(), "false".into()));
    let config = Config::load_from(
        &Overrides {
            config_path: None,
            data_dir: Some(dir.path().join("data")),
            listen: None,
        },
        vars,
    )
    .unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let app = App::open(config, clock).unwrap();
    rt.block_on(app.bootstrap_admin()).unwrap();
    if models.is_some() {
        app.load_models(&image_layered::models::SilentProgress)
            .unwrap();
    }
    let owner = app
        .store
        .user_by_email("admin@localhost")
        .unwrap()
        .unwrap()
        .id;
    let images = app.images.clone();
    let stack = stack();
    let composite = image::DynamicImage::ImageRgb8(stack.composite());
    let image = rt.block_on(images.upload(owner, png(&composite))).unwrap();
    let documents = app.documents.clone();
    let props = vec![image_layered::engine::LayerProps::default(); stack.layers.len()];
    let doc = documents
        .store_stack(
            owner,
            image.id,
            image_layered::ids::DocumentId::new(),
            DocumentMode::ImportOra,
            &stack,
            &props,
        )
        .unwrap();
    let photo = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(800, 600, |x, y| {
        image::Rgb([(x / 4) as u8, (y / 3) as u8, ((x + y) / 6) as u8])
    }));
    let photo_id = rt.block_on(images.upload(owner, png(&photo))).unwrap().id;
    let mut mask = GrayImage::new(SIDE, SIDE);
    for y in 250..390 {
        for x in 230..370 {
            mask.put_pixel(x, y, Luma([255]));
        }
    }
    let mask_id = rt
        .block_on(images.upload(owner, png(&image::DynamicImage::ImageLuma8(mask.clone()))))
        .unwrap()
        .id;

    let lid = |z: usize| documents.get(owner, doc.id).unwrap().layers[z].id;
    let l2 = stack.layers[2].rgba.clone();
    let l0 = stack.layers[0].rgba.clone();
    let photo_rgba = photo.to_rgba8();
    let inference = app.inference.get().cloned();
    let fill = |img: &image::RgbImage, m: &GrayImage| match &inference {
        Some(i) => image_layered::engine::decompose::PeelModels::inpaint(i.as_ref(), img, m),
        None => image_layered::engine::inpaint::patchmatch_inpaint(img, m, &Default::default()),
    };

    // (name, op body, the engine work alone or None for metadata-only ops)
    type Engine<'a> = Option<Box<dyn Fn() + 'a>>;
    let mut cases: Vec<(&str, serde_json::Value, Engine)> = vec![
        (
            "recolor #rrggbb",
            json!({"op": "recolor", "layer_id": lid(2), "color": "#e0407a"}),
            Some(Box::new(|| {
                edit::recolor(
                    &l2,
                    &edit::Recolor::Target {
                        rgb: [0xe0, 0x40, 0x7a],
                    },
                )
                .unwrap();
            })),
        ),
        (
            "recolor hue/sat/light",
            json!({"op": "recolor", "layer_id": lid(2), "hue_shift": 40, "saturation": 1.2, "lightness": 0.05}),
            Some(Box::new(|| {
                edit::recolor(
                    &l2,
                    &edit::Recolor::Shift {
                        hue_deg: 40.0,
                        saturation: 1.2,
                        lightness: 0.05,
                    },
                )
                .unwrap();
            })),
        ),
        (
            "replace cover",
            json!({"op": "replace", "layer_id": lid(2), "image_id": photo_id, "fit": "cover", "harmonize": 0.5}),
            Some(Box::new(|| {
                let opts = edit::ReplaceOptions {
                    fit: edit::Fit::Cover,
                    mask: edit::MaskSource::Layer,
                    harmonize: 0.5,
                    feather: 1.5,
                };
                edit::replace(&l2, &photo_rgba, &opts).unwrap();
            })),
        ),
        (
            "transform move",
            json!({"op": "transform", "layer_id": lid(2), "dx": 12, "dy": -8}),
            Some(Box::new(|| {
                edit::transform(&l2, 12, -8, 1.0).unwrap();
            })),
        ),
        (
            "transform scale 1.2",
            json!({"op": "transform", "layer_id": lid(2), "scale": 1.2}),
            Some(Box::new(|| {
                edit::transform(&l2, 0, 0, 1.2).unwrap();
            })),
        ),
        (
            "merge down",
            json!({"op": "merge", "layer_id": lid(3)}),
            Some(Box::new(|| {
                edit::merge_down(&l2, 1.0, &stack.layers[3].rgba, 1.0).unwrap();
            })),
        ),
        (
            "inpaint (brush)",
            json!({"op": "inpaint", "layer_id": lid(0), "mask_image_id": mask_id}),
            Some(Box::new(|| {
                edit::inpaint_layer(&l0, &mask, &fill).unwrap();
            })),
        ),
        (
            "visibility",
            json!({"op": "transform", "layer_id": lid(2), "visible": false}),
            None,
        ),
        (
            "opacity",
            json!({"op": "transform", "layer_id": lid(2), "opacity": 0.5}),
            None,
        ),
        (
            "rename",
            json!({"op": "rename", "layer_id": lid(2), "name": "Hero"}),
            None,
        ),
        (
            "reorder",
            json!({"op": "reorder", "layer_id": lid(1), "z": 4}),
            None,
        ),
        ("remove", json!({"op": "remove", "layer_id": lid(4)}), None),
    ];
    if inference.is_some() {
        cases.push((
            "split (models)",
            json!({"op": "split", "layer_id": lid(0), "layers": "auto"}),
            None,
        ));
    }

    println!(
        "document ops on a {SIDE}×{SIDE} document of {} layers (median of {REPS}; each op is undone before the next run)",
        stack.layers.len()
    );
    println!(
        "{:<24} {:>12} {:>12} {:>8}",
        "op", "service ms", "engine ms", "ratio"
    );
    let mut undo_times = Vec::new();
    let mut redo_times = Vec::new();
    for (name, body, engine) in &cases {
        let req = OpRequest::parse(body.clone()).unwrap();
        let reps = if name.starts_with("split") { 1 } else { REPS };
        let mut service = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            documents.edit_blocking(owner, doc.id, &req).unwrap();
            service.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            documents.step_blocking(owner, doc.id, false, None).unwrap();
            undo_times.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            documents.step_blocking(owner, doc.id, true, None).unwrap();
            redo_times.push(t.elapsed().as_secs_f64() * 1e3);
            documents.step_blocking(owner, doc.id, false, None).unwrap();
        }
        let service = median(service);
        match engine {
            Some(work) => {
                let mut e = Vec::new();
                for _ in 0..reps {
                    let t = Instant::now();
                    work();
                    e.push(t.elapsed().as_secs_f64() * 1e3);
                }
                let e = median(e);
                println!("{name:<24} {service:>12.1} {e:>12.1} {:>7.2}×", service / e);
            }
            None => println!("{name:<24} {service:>12.1} {:>12} {:>8}", "—", "—"),
        }
    }
    println!(
        "{:<24} {:>12.1} {:>12} {:>8}",
        "undo",
        median(undo_times),
        "—",
        "—"
    );
    println!(
        "{:<24} {:>12.1} {:>12} {:>8}",
        "redo",
        median(redo_times),
        "—",
        "—"
    );
}
