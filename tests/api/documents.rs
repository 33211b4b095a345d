//! Decomposition over HTTP: the decompose job stores a layered document whose layers download
//! as full-canvas PNGs and recompose the upload; the image moves to plan retention; another
//! member gets 404; deleting the image deletes its documents.

use image_layered::models::SilentProgress;
use reqwest::StatusCode;

use crate::support::*;

const DESIGN: &str = "tests/fixtures/eval/public-1-012/composite.png";

/// Decomposes the uploaded design and returns (document JSON, layers as RGBA images).
async fn decompose(
    c: &Client,
    id: &str,
    body: serde_json::Value,
) -> (serde_json::Value, Vec<image::RgbaImage>) {
    let r = c
        .post(&format!("/api/v1/images/{id}/decompose"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: serde_json::Value = r.json().await.unwrap();
    let job = c.wait_job(job["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert!(job["result"]["stages"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    let doc_id = job["result"]["document_id"].as_str().unwrap().to_string();
    let (s, doc) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
    assert_eq!(s, StatusCode::OK);
    let mut layers = Vec::new();
    for l in doc["layers"].as_array().unwrap() {
        let r = c.get(l["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        layers.push(
            image::load_from_memory(&r.bytes().await.unwrap())
                .unwrap()
                .to_rgba8(),
        );
    }
    (doc, layers)
}

fn recompose_psnr(layers: &[image::RgbaImage], truth: &image::RgbImage) -> f64 {
    let stack = image_layered::engine::LayerStack {
        width: truth.width(),
        height: truth.height(),
        layers: layers
            .iter()
            .map(|l| image_layered::engine::Layer {
                name: String::new(),
                kind: image_layered::engine::LayerKind::Object,
                origin: [0, 0],
                rgba: l.clone(),
                text: None,
            })
            .collect(),
    };
    stack.recon_psnr(truth)
}

#[tokio::test]
async fn palette_decomposition_makes_a_document_that_recomposes_the_upload() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let bytes = std::fs::read(DESIGN).unwrap();
    let truth = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let meta = c.upload(bytes).await;
    let id = meta["id"].as_str().unwrap();
    // bad requests are precise 400s
    for bad in [
        serde_json::json!({"layers": 11}),
        serde_json::json!({"mode": "magic"}),
        serde_json::json!({"layers": [1]}),
    ] {
        let r = c
            .post(&format!("/api/v1/images/{id}/decompose"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // peel needs the models, which this app has not loaded
    let r = c
        .post(&format!("/api/v1/images/{id}/decompose"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    let (doc, layers) =
        decompose(&c, id, serde_json::json!({"mode": "palette", "layers": 4})).await;
    assert_eq!(doc["layers"].as_array().unwrap().len(), 4);
    assert_eq!(doc["layers"][0]["kind"], "background");
    assert_eq!(
        (doc["width"].as_u64(), doc["height"].as_u64()),
        (Some(512), Some(512))
    );
    assert!(layers.iter().all(|l| l.dimensions() == (512, 512)));
    assert!(recompose_psnr(&layers, &truth) >= 45.0);
    // stored and held as boxes: each layer's pixels are exactly its bbox, placed there,
    // and the full-canvas PNG the route streams holds the same pixels
    let (_, me) = c.json("/api/v1/me").await;
    let owner = me["id"].as_str().unwrap().parse().unwrap();
    let doc_id = doc["id"].as_str().unwrap().parse().unwrap();
    let (stack, _) = t.app.documents.layers(owner, doc_id).unwrap();
    let mut boxed = 0;
    for ((held, served), json) in stack
        .layers
        .iter()
        .zip(&layers)
        .zip(doc["layers"].as_array().unwrap())
    {
        let bbox: Vec<u32> = serde_json::from_value(json["bbox"].clone()).unwrap();
        assert_eq!(held.rect().to_vec(), bbox, "{json}");
        assert_eq!(&held.to_canvas(512, 512), served);
        boxed += usize::from(bbox[2] * bbox[3] < 512 * 512);
    }
    assert!(
        boxed >= 1,
        "a colour of the design's objects is a small box"
    );
    let (_, meta) = c.json(&format!("/api/v1/images/{id}")).await;
    assert_eq!(meta["state"], "processed");

    // exports: flat images of the composite (no EXIF at all) and a ZIP of the layers
    let doc_id = doc["id"].as_str().unwrap();
    for (format, ctype) in [
        ("png", "image/png"),
        ("jpeg", "image/jpeg"),
        ("webp", "image/webp"),
        ("zip", "application/zip"),
    ] {
        let r = c
            .get(&format!(
                "/api/v1/documents/{doc_id}/export?format={format}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{format}");
        assert_eq!(r.headers()["content-type"], ctype);
        assert!(r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
        let bytes = r.bytes().await.unwrap();
        if format == "zip" {
            assert_eq!(&bytes[30..43], b"manifest.json");
            continue;
        }
        assert!(
            image_layered::engine::read_exif(&bytes).is_none(),
            "{format} carries EXIF"
        );
        let flat = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(flat.dimensions(), (512, 512));
        if format != "jpeg" {
            assert_eq!(flat, truth, "{format} is the exact composite");
        }
    }
    let r = c
        .get(&format!("/api/v1/documents/{doc_id}/export?format=tiff"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // another member: 404 on the document, its layers and its exports
    let b = t
        .member("b@example.com", image_layered::store::Plan::Free)
        .await;
    assert_eq!(
        b.json(&format!("/api/v1/documents/{doc_id}")).await.0,
        StatusCode::NOT_FOUND
    );
    let layer_url = doc["layers"][1]["url"].as_str().unwrap();
    assert_eq!(
        b.get(layer_url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let r = b
        .post(&format!("/api/v1/images/{id}/decompose"))
        .json(&serde_json::json!({"mode": "palette"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // deleting the image deletes the document and every layer file
    let r = c
        .delete(&format!("/api/v1/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.json(&format!("/api/v1/documents/{doc_id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(layer_url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert!(files_under(&t.dir.path().join("data/blobs")).is_empty());
}

#[tokio::test]
#[ignore = "needs the real models: IMAGE_LAYERED_TEST_MODELS (scripts/test)"]
async fn peel_decomposition_job_with_the_real_models() {
    let dir = std::env::var("IMAGE_LAYERED_TEST_MODELS")
        .expect("set IMAGE_LAYERED_TEST_MODELS (scripts/test does)");
    let t = spawn_app_with(&[
        ("IMAGE_LAYERED__MODELS__DIR", dir.as_str()),
        ("IMAGE_LAYERED__MODELS__AUTO_FETCH", "false"),
        ("IMAGE_LAYERED__INFERENCE__DEVICE", "cpu"),
    ])
    .await;
    let app = t.app.clone();
    tokio::task::spawn_blocking(move || app.load_models(&SilentProgress))
        .await
        .unwrap()
        .unwrap();
    let c = t.admin().await;
    let bytes = std::fs::read(DESIGN).unwrap();
    let truth = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let meta = c.upload(bytes).await;
    let id = meta["id"].as_str().unwrap();
    let (doc, layers) = decompose(&c, id, serde_json::json!({"layers": "auto"})).await;
    let kinds: Vec<&str> = doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "background");
    assert!(kinds.len() >= 3, "{kinds:?}");
    assert!(recompose_psnr(&layers, &truth) >= 45.0);
    // the design's "FREE" text line becomes a named text layer
    assert!(
        doc["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "text" && l["name"].as_str().unwrap().contains("FREE")),
        "{doc}"
    );

    // `split` decomposes one layer again (a job): the first object layer, from the top, that
    // has separable parts comes back as parts that rebuild it exactly; a layer with none is a
    // 422 `nothing_to_split` that leaves the document as it was
    let doc_id = doc["id"].as_str().unwrap();
    let n = layers.len();
    let mut split_one = false;
    for z in (1..n).rev() {
        let before = c.json(&format!("/api/v1/documents/{doc_id}")).await.1;
        let layer_id = before["layers"][z]["id"].as_str().unwrap().to_string();
        let r = c
            .post(&format!("/api/v1/documents/{doc_id}/ops"))
            .json(&serde_json::json!({"op": "split", "layer_id": layer_id, "revision": before["revision"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let job: serde_json::Value = r.json().await.unwrap();
        let job = c.wait_job(job["job_id"].as_str().unwrap()).await;
        let after = c.json(&format!("/api/v1/documents/{doc_id}")).await.1;
        if job["state"] == "failed" {
            assert_eq!(job["error"]["code"], "nothing_to_split", "{job}");
            assert_eq!(after["revision"], before["revision"]);
            continue;
        }
        assert_eq!(job["state"], "succeeded", "{job}");
        let k = after["layers"].as_array().unwrap().len() + 1 - n;
        assert!(k >= 2, "{after}");
        assert_eq!(
            after["layers"][z]["id"],
            layer_id.as_str(),
            "the first part keeps the id"
        );
        let original = &layers[z];
        let mut sum = vec![0u32; original.as_raw().len()];
        for part in &after["layers"].as_array().unwrap()[z..z + k] {
            let r = c.get(part["url"].as_str().unwrap()).send().await.unwrap();
            let img = image::load_from_memory(&r.bytes().await.unwrap())
                .unwrap()
                .to_rgba8();
            for (acc, v) in sum.iter_mut().zip(img.as_raw()) {
                *acc += *v as u32;
            }
        }
        assert!(
            sum.iter()
                .zip(original.as_raw())
                .all(|(a, b)| *a == *b as u32),
            "the parts of layer {z} do not rebuild it exactly"
        );
        split_one = true;
        break;
    }
    assert!(split_one, "no layer of the design could be split");
}

#[tokio::test]
#[ignore = "needs psd-tools, pyora (PyPI) and ImageMagick (scripts/test installs them)"]
async fn psd_and_ora_exports_open_in_independent_readers() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let bytes = std::fs::read(DESIGN).unwrap();
    let truth = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let meta = c.upload(bytes).await;
    let id = meta["id"].as_str().unwrap();
    let (doc, _) = decompose(&c, id, serde_json::json!({"mode": "palette", "layers": 4})).await;
    let doc_id = doc["id"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fetch = |format: &'static str| {
        let c = c.clone();
        let url = format!("/api/v1/documents/{doc_id}/export?format={format}");
        async move {
            let r = c.get(&url).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{format}");
            r.bytes().await.unwrap()
        }
    };
    // PSD, read by psd-tools: layer count, names, visibility, opacity, merged image
    let psd = dir.path().join("doc.psd");
    std::fs::write(&psd, fetch("psd").await).unwrap();
    let expect = serde_json::json!({
        "width": 512, "height": 512,
        "layers": doc["layers"].as_array().unwrap().iter().map(|l| serde_json::json!({
            "name": l["name"], "visible": true, "opacity": 255,
        })).collect::<Vec<_>>(),
        "merged": truth.rows().map(|row| row.map(|p| p.0.to_vec()).collect::<Vec<_>>()).collect::<Vec<_>>(),
    });
    let expect_path = dir.path().join("expect.json");
    std::fs::write(&expect_path, expect.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "tests/psd_check.py",
            psd.to_str().unwrap(),
            expect_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psd-tools check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // ImageMagick, a third reader: the merged image, then each layer with its name and bounds
    let out = std::process::Command::new("identify")
        .args(["-format", "%[label]|%w|%h|%X|%Y\n", psd.to_str().unwrap()])
        .output()
        .expect("ImageMagick's identify (scripts/test installs imagemagick)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(frames.len(), layers.len() + 1, "{frames:?}");
    for (frame, layer) in frames[1..].iter().zip(layers) {
        let b = &layer["bbox"];
        let want = format!(
            "{}|{}|{}|+{}|+{}",
            layer["name"].as_str().unwrap(),
            b[2],
            b[3],
            b[0],
            b[1]
        );
        assert_eq!(frame, &want, "ImageMagick reads the layer differently");
    }
    let merged = dir.path().join("merged.png");
    let out = std::process::Command::new("convert")
        .args([&format!("{}[0]", psd.display()), merged.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(image::open(&merged).unwrap().to_rgb8(), truth);
    // OpenRaster: the spec's rules, and pyora (a third-party OpenRaster library) reads it
    let ora = dir.path().join("doc.ora");
    std::fs::write(&ora, fetch("ora").await).unwrap();
    let out = std::process::Command::new("python3")
        .args(["tests/ora_check.py", ora.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ORA check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // and our own reader gets the same layers back
    let (stack, props) =
        image_layered::engine::ora::decode_ora(&std::fs::read(&ora).unwrap()).unwrap();
    assert_eq!(stack.layers.len(), doc["layers"].as_array().unwrap().len());
    assert!(props.iter().all(|p| p.visible && p.opacity == 1.0));
    assert_eq!(stack.composite(), truth);
}
