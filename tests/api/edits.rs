//! Editing documents over HTTP: every op makes a revision that undo and redo step through;
//! only the targeted layer's pixels change; bad ops are precise 400s; a stale revision is 409
//! and concurrent edits serialise; history survives the start-up reconciler; another member
//! gets 404.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

const DESIGN: &str = "tests/fixtures/eval/public-1-012/composite.png";

/// Uploads the design and decomposes it with the palette pipeline (no models needed).
async fn document(c: &Client, layers: usize) -> Value {
    let meta = c.upload(std::fs::read(DESIGN).unwrap()).await;
    decompose_palette(c, meta["id"].as_str().unwrap(), layers)
        .await
        .1
}

async fn op(c: &Client, doc: &Value, body: Value) -> (StatusCode, Value) {
    let r = c
        .post(&format!(
            "/api/v1/documents/{}/ops",
            doc["id"].as_str().unwrap()
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn step(c: &Client, doc: &Value, what: &str) -> (StatusCode, Value) {
    let r = c
        .post(&format!(
            "/api/v1/documents/{}/{what}",
            doc["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

/// Each layer's PNG bytes, back to front.
async fn pixels(c: &Client, doc: &Value) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for l in doc["layers"].as_array().unwrap() {
        let r = c.get(l["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        out.push(r.bytes().await.unwrap().to_vec());
    }
    out
}

fn layer_id(doc: &Value, z: usize) -> String {
    doc["layers"][z]["id"].as_str().unwrap().to_string()
}

fn rgba(png: &[u8]) -> image::RgbaImage {
    image::load_from_memory(png).unwrap().to_rgba8()
}

/// Alpha-weighted mean colour of a layer, in OKLab.
fn mean_oklab(img: &image::RgbaImage) -> [f64; 3] {
    let (mut s, mut n) = ([0.0; 3], 0.0);
    for p in img.pixels() {
        let a = p.0[3] as f64 / 255.0;
        let lab = image_layered::engine::edit::srgb_to_oklab([p.0[0], p.0[1], p.0[2]]);
        for (acc, v) in s.iter_mut().zip(lab) {
            *acc += v as f64 * a;
        }
        n += a;
    }
    s.map(|v| v / n.max(1e-9))
}

#[tokio::test]
async fn ops_make_revisions_that_undo_and_redo_step_through() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let doc = document(&c, 4).await;
    assert_eq!(doc["revision"], 1);
    assert_eq!(doc["can_undo"], false);
    let before = pixels(&c, &doc).await;
    let target = layer_id(&doc, 2);

    // recolour one layer: its mean moves to the target colour, every other layer is untouched
    let (s, d2) = op(
        &c,
        &doc,
        json!({"op": "recolor", "layer_id": target, "color": "#1e90ff", "revision": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d2}");
    assert_eq!(d2["revision"], 2);
    assert_eq!(d2["can_undo"], true);
    assert_eq!(d2["undo_op"], "recolor");
    assert_eq!(
        layer_id(&d2, 2),
        target,
        "a layer keeps its id through edits"
    );
    let after = pixels(&c, &d2).await;
    for z in [0, 1, 3] {
        assert_eq!(before[z], after[z], "layer {z} changed");
    }
    assert_ne!(before[2], after[2]);
    let m = mean_oklab(&rgba(&after[2]));
    let want = image_layered::engine::edit::srgb_to_oklab([0x1e, 0x90, 0xff]);
    let de = (0..3)
        .map(|i| (m[i] - want[i] as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        de < 0.03,
        "mean after recolour {m:?} is ΔE {de} from {want:?}"
    );
    let alpha = |png: &[u8]| rgba(png).pixels().map(|p| p.0[3]).collect::<Vec<_>>();
    assert_eq!(alpha(&before[2]), alpha(&after[2]), "recolour keeps alpha");

    // a stale revision is refused, and nothing changes
    let (s, e) = op(
        &c,
        &doc,
        json!({"op": "rename", "layer_id": target, "name": "x", "revision": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "stale_revision");

    // metadata ops
    let (s, d3) = op(
        &c,
        &doc,
        json!({"op": "transform", "layer_id": target, "visible": false, "opacity": 0.5}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d3}");
    assert_eq!(d3["layers"][2]["visible"], false);
    assert_eq!(d3["layers"][2]["opacity"], 0.5);
    let (s, d4) = op(
        &c,
        &doc,
        json!({"op": "rename", "layer_id": target, "name": "  Sky blue  "}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d4["layers"][2]["name"], "Sky blue");
    let (s, d5) = op(
        &c,
        &doc,
        json!({"op": "reorder", "layer_id": target, "z": 3}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(layer_id(&d5, 3), target);
    assert_eq!(d5["revision"], 5);

    // undo back to the start, state by state; redo forward again
    let (s, u) = step(&c, &doc, "undo").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(layer_id(&u, 2), target);
    assert_eq!(u["layers"][2]["name"], "Sky blue");
    assert_eq!(u["can_redo"], true);
    assert_eq!(u["redo_op"], "reorder");
    for _ in 0..3 {
        assert_eq!(step(&c, &doc, "undo").await.0, StatusCode::OK);
    }
    let (_, start) = c
        .json(&format!(
            "/api/v1/documents/{}",
            doc["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(start["revision"], 9, "undo and redo are revisions too");
    assert_eq!(start["can_undo"], false);
    assert_eq!(pixels(&c, &start).await, before, "undo restores the pixels");
    let (s, e) = step(&c, &doc, "undo").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "nothing_to_undo");
    let (s, r1) = step(&c, &doc, "redo").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(pixels(&c, &r1).await, after, "redo restores the recolour");

    // a new op drops the redo branch
    let (s, d) = op(&c, &doc, json!({"op": "remove", "layer_id": target})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["layers"].as_array().unwrap().len(), 3);
    assert_eq!(d["can_redo"], false);

    // the history survives the start-up reconciler (it must count every state's blobs)
    image_layered::app::reconcile(&t.app.store, &t.app.blobs).unwrap();
    let (s, u) = step(&c, &doc, "undo").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(pixels(&c, &u).await, after);

    // another member sees nothing and can change nothing
    let b = t
        .member("b@example.com", image_layered::store::Plan::Free)
        .await;
    assert_eq!(
        op(&b, &doc, json!({"op": "remove", "layer_id": target}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(step(&b, &doc, "undo").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_ops_are_precise_400s_and_change_nothing() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let doc = document(&c, 3).await;
    let l1 = layer_id(&doc, 1);
    let l0 = layer_id(&doc, 0);
    let bad = [
        json!({"layer_id": l1}),
        json!({"op": "paint", "layer_id": l1}),
        json!({"op": "rename", "layer_id": l1}),
        json!({"op": "rename", "layer_id": l1, "name": "  "}),
        json!({"op": "rename", "layer_id": l1, "name": "x", "colour": "red"}),
        json!({"op": "recolor", "layer_id": l1}),
        json!({"op": "recolor", "layer_id": l1, "color": "blue"}),
        json!({"op": "recolor", "layer_id": l1, "color": "#00ff00", "hue_shift": 30}),
        json!({"op": "recolor", "layer_id": l1, "saturation": -1}),
        json!({"op": "transform", "layer_id": l1}),
        json!({"op": "transform", "layer_id": l1, "opacity": 2}),
        json!({"op": "transform", "layer_id": l1, "scale": 0}),
        json!({"op": "transform", "layer_id": l1, "dx": 1.5}),
        json!({"op": "reorder", "layer_id": l1, "z": 3}),
        json!({"op": "merge", "layer_id": l0}),
        json!({"op": "split", "layer_id": l1, "layers": 40}),
        json!({"op": "replace", "layer_id": l1, "image_id": doc["image_id"], "fit": "fill"}),
        json!({"op": "replace", "layer_id": l1, "image_id": doc["image_id"], "harmonize": 3}),
        json!({"op": "rename", "layer_id": l1, "name": "x", "revision": "one"}),
        json!([1, 2]),
    ];
    for body in bad {
        let (s, e) = op(&c, &doc, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {e}");
        assert!(e["error"]["message"].as_str().unwrap().len() > 10, "{e}");
    }
    let r = c
        .post(&format!(
            "/api/v1/documents/{}/ops",
            doc["id"].as_str().unwrap()
        ))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // unknown layer or image: 404
    let ghost = "0190f7a0-0000-7000-8000-000000000000";
    assert_eq!(
        op(&c, &doc, json!({"op": "remove", "layer_id": ghost}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        op(
            &c,
            &doc,
            json!({"op": "replace", "layer_id": l1, "image_id": ghost})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (_, now) = c
        .json(&format!(
            "/api/v1/documents/{}",
            doc["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(now["revision"], 1, "no bad op made a revision");
}

#[tokio::test]
async fn concurrent_edits_serialise_and_stale_ones_get_409() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let doc = document(&c, 3).await;
    let l1 = layer_id(&doc, 1);
    // eight edits all based on revision 1: exactly one lands
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (c, doc, l1) = (c.clone(), doc.clone(), l1.clone());
        tasks.push(tokio::spawn(async move {
            op(
                &c,
                &doc,
                json!({"op": "transform", "layer_id": l1, "dx": i + 1, "revision": 1}),
            )
            .await
            .0
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(
        codes.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|s| **s == StatusCode::CONFLICT).count(),
        7
    );
    // eight edits without a revision: all land, one after another
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (c, doc, l1) = (c.clone(), doc.clone(), l1.clone());
        tasks.push(tokio::spawn(async move {
            op(
                &c,
                &doc,
                json!({"op": "rename", "layer_id": l1, "name": format!("n{i}")}),
            )
            .await
            .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let (_, now) = c
        .json(&format!(
            "/api/v1/documents/{}",
            doc["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(now["revision"], 10);
}

#[tokio::test]
async fn replace_merge_transform_and_inpaint_change_only_their_layers() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let doc = document(&c, 4).await;
    let before = pixels(&c, &doc).await;
    let l2 = layer_id(&doc, 2);

    // replace layer 2 with a noisy picture, fitted to cover its footprint
    let pic = c.upload(noisy_png(200, 120, 7)).await;
    let (s, d) = op(
        &c,
        &doc,
        json!({"op": "replace", "layer_id": l2, "image_id": pic["id"], "fit": "cover", "harmonize": 0.5}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let after = pixels(&c, &d).await;
    assert_eq!(&before[..2], &after[..2]);
    assert_eq!(before[3], after[3]);
    let (old, new) = (rgba(&before[2]), rgba(&after[2]));
    let outside = old
        .pixels()
        .zip(new.pixels())
        .filter(|(o, n)| o.0[3] == 0 && n.0[3] != 0)
        .count();
    assert_eq!(
        outside, 0,
        "the replacement stays inside the layer's footprint"
    );
    assert_ne!(old, new);

    // move a layer 10 px right: its bbox moves with it
    let (s, d) = op(
        &c,
        &doc,
        json!({"op": "transform", "layer_id": l2, "dx": 10}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let (b0, b1) = (&before_bbox(&doc, 2), &d["layers"][2]["bbox"]);
    assert!(
        b1[0].as_u64().unwrap() >= b0[0].as_u64().unwrap() + 9,
        "{b0} → {b1}"
    );

    // merge layer 3 down into layer 2: one layer fewer, the composite unchanged
    let flat = |c: Client, id: String| async move {
        let r = c
            .get(&format!("/api/v1/documents/{id}/export?format=png"))
            .send()
            .await
            .unwrap();
        image::load_from_memory(&r.bytes().await.unwrap())
            .unwrap()
            .to_rgb8()
    };
    let doc_id = doc["id"].as_str().unwrap().to_string();
    let composite = flat(c.clone(), doc_id.clone()).await;
    let (s, d) = op(
        &c,
        &doc,
        json!({"op": "merge", "layer_id": layer_id(&doc, 3)}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["layers"].as_array().unwrap().len(), 3);
    let merged = flat(c.clone(), doc_id.clone()).await;
    let diff = composite
        .pixels()
        .zip(merged.pixels())
        .map(|(a, b)| {
            (0..3)
                .map(|i| a.0[i].abs_diff(b.0[i]) as u32)
                .max()
                .unwrap()
        })
        .max()
        .unwrap();
    assert!(diff <= 2, "merging changed the composite by {diff}");

    // inpaint is slow: 202 and a job; the brushed region of the background changes, the rest not
    let mut mask = image::GrayImage::new(512, 512);
    for y in 100..160 {
        for x in 100..160 {
            mask.put_pixel(x, y, image::Luma([255]));
        }
    }
    let mut mask_png = Vec::new();
    image::DynamicImage::ImageLuma8(mask)
        .write_to(
            &mut std::io::Cursor::new(&mut mask_png),
            image::ImageFormat::Png,
        )
        .unwrap();
    let mask_meta = c.upload(mask_png).await;
    let l0 = layer_id(&doc, 0);
    let (s, j) = op(
        &c,
        &doc,
        json!({"op": "inpaint", "layer_id": l0, "mask_image_id": mask_meta["id"]}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    let job = c.wait_job(j["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let (_, d) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
    assert_eq!(d["undo_op"], "inpaint");
    // a job re-run after a crash (its edit landed, its success was not recorded) applies
    // nothing twice: the log knows the job
    let owner = t.app.store.user_by_email(ADMIN_EMAIL).unwrap().unwrap().id;
    let mut again = image_layered::documents::edit::OpRequest::parse(
        json!({"op": "inpaint", "layer_id": l0, "mask_image_id": mask_meta["id"]}),
    )
    .unwrap();
    again.job = Some(j["job_id"].as_str().unwrap().parse().unwrap());
    let documents = t.app.documents.clone();
    let id = doc_id.parse().unwrap();
    let rerun = tokio::task::spawn_blocking(move || documents.edit_blocking(owner, id, &again))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rerun.revision, d["revision"].as_u64().unwrap());
    let bg_before = rgba(&before[0]);
    let bg_after = rgba(&pixels(&c, &d).await[0]);
    for (x, y, p) in bg_after.enumerate_pixels() {
        let inside = (100..160).contains(&x) && (100..160).contains(&y);
        if !inside {
            assert_eq!(p, bg_before.get_pixel(x, y), "({x},{y}) outside the mask");
        }
    }
    // a mask that marks nothing fails the job clearly and makes no revision
    let mut black = Vec::new();
    image::DynamicImage::ImageLuma8(image::GrayImage::new(64, 64))
        .write_to(
            &mut std::io::Cursor::new(&mut black),
            image::ImageFormat::Png,
        )
        .unwrap();
    let black = c.upload(black).await;
    let (s, j) = op(
        &c,
        &doc,
        json!({"op": "inpaint", "layer_id": l0, "mask_image_id": black["id"]}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let job = c.wait_job(j["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["error"]["code"], "invalid_op", "{job}");
    let (_, same) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
    assert_eq!(same["revision"], d["revision"]);
    // someone else's mask image is 404
    let b = t
        .member("b@example.com", image_layered::store::Plan::Free)
        .await;
    let their = b.upload(noisy_png(64, 64, 1)).await;
    assert_eq!(
        op(
            &c,
            &doc,
            json!({"op": "inpaint", "layer_id": l0, "mask_image_id": their["id"]})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

fn before_bbox(doc: &Value, z: usize) -> Value {
    doc["layers"][z]["bbox"].clone()
}

async fn import(c: &Client, bytes: Vec<u8>, ctype: &str) -> (StatusCode, Value) {
    let r = c
        .post("/api/v1/documents")
        .header("content-type", ctype)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

#[tokio::test]
async fn psd_and_ora_exports_import_back_as_the_same_document() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let doc = document(&c, 4).await;
    let l2 = layer_id(&doc, 2);
    let (s, doc) = op(
        &c,
        &doc,
        json!({"op": "transform", "layer_id": l2, "visible": false}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, doc) = op(
        &c,
        &doc,
        json!({"op": "transform", "layer_id": layer_id(&doc, 1), "opacity": 0.6}),
    )
    .await;
    let originals: Vec<_> = pixels(&c, &doc).await.iter().map(|p| rgba(p)).collect();
    let doc_id = doc["id"].as_str().unwrap();
    for (format, ctype) in [
        ("psd", "image/vnd.adobe.photoshop"),
        ("ora", "image/openraster"),
    ] {
        let r = c
            .get(&format!(
                "/api/v1/documents/{doc_id}/export?format={format}"
            ))
            .send()
            .await
            .unwrap();
        let bytes = r.bytes().await.unwrap().to_vec();
        let (s, imported) = import(&c, bytes.clone(), ctype).await;
        assert_eq!(s, StatusCode::CREATED, "{format}: {imported}");
        assert_eq!(imported["layers"].as_array().unwrap().len(), 4);
        assert_eq!(imported["mode"], format!("import-{format}"));
        for z in 0..4 {
            let (a, b) = (&doc["layers"][z], &imported["layers"][z]);
            assert_eq!(a["name"], b["name"], "{format} z{z}");
            assert_eq!(a["visible"], b["visible"], "{format} z{z}");
            let (oa, ob) = (
                a["opacity"].as_f64().unwrap(),
                b["opacity"].as_f64().unwrap(),
            );
            assert!((oa - ob).abs() < 0.01, "{format} z{z}: {oa} vs {ob}");
        }
        let back = pixels(&c, &imported).await;
        for (z, (orig, png)) in originals.iter().zip(&back).enumerate() {
            let got = rgba(png);
            let same = orig
                .pixels()
                .zip(got.pixels())
                .all(|(a, b)| a.0[3] == b.0[3] && (a.0[3] == 0 || a.0 == b.0));
            assert!(
                same,
                "{format}: layer {z} pixels differ after the round trip"
            );
        }
        // the imported document is editable like any other
        let (s, _) = op(
            &c,
            &imported,
            json!({"op": "rename", "layer_id": layer_id(&imported, 0), "name": "Paper"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        // damaged files are precise errors, and the studio stays up
        let (s, e) = import(&c, bytes[..bytes.len() / 3].to_vec(), ctype).await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{format} truncated: {e}"
        );
    }
    // a PSD written by psd-tools (groups, a hidden group, a mask, a raw layer)
    let fixture = std::fs::read("tests/fixtures/psd/psdtools_groups.psd").unwrap();
    let (s, d) = import(&c, fixture.clone(), "application/octet-stream").await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert!(d["layers"].as_array().unwrap().len() >= 2);
    // imports share the decode slots with uploads: five at once all land (no deadlock)
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (c, f) = (c.clone(), fixture.clone());
        tasks.push(tokio::spawn(async move {
            import(&c, f, "application/octet-stream").await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    // not a layered file
    let (s, e) = import(&c, noisy_png(32, 32, 1), "image/png").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{e}");
    let (s, _) = import(
        &c,
        b"8BPS\0\x01garbage".to_vec(),
        "image/vnd.adobe.photoshop",
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = import(&c, b"hello".to_vec(), "text/plain").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // the member's documents, newest first: the edited one and its eight imports
    let (s, list) = c.json("/api/v1/documents").await;
    assert_eq!(s, StatusCode::OK);
    let list = list["documents"].as_array().unwrap();
    assert_eq!(list.len(), 9);
    assert_eq!(list[8]["id"], doc["id"]);
    assert_eq!(list[8]["layers"], 4);
    // nothing another member can see
    let b = t
        .member("b@example.com", image_layered::store::Plan::Free)
        .await;
    assert_eq!(
        b.json(&format!("/api/v1/documents/{doc_id}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, theirs) = b.json("/api/v1/documents").await;
    assert_eq!(theirs["documents"].as_array().unwrap().len(), 0);
}

/// Every layer's PNG bytes plus the metadata that describes the state (names, visibility,
/// opacity, order).
async fn snapshot(c: &Client, doc_id: &str) -> (Value, Vec<Vec<u8>>) {
    let (_, d) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
    let meta: Vec<Value> = d["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json!([l["id"], l["name"], l["visible"], l["opacity"], l["bbox"]]))
        .collect();
    let px = pixels(c, &d).await;
    (Value::Array(meta), px)
}

#[tokio::test]
async fn a_random_edit_session_undoes_to_the_start_and_redoes_to_the_end_exactly() {
    let t = spawn_app().await;
    let c = t.admin().await;
    let doc = document(&c, 5).await;
    let doc_id = doc["id"].as_str().unwrap().to_string();
    let start = snapshot(&c, &doc_id).await;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut landed = 0;
    for _ in 0..30 {
        let (_, d) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
        let n = d["layers"].as_array().unwrap().len() as u64;
        let layer = layer_id(&d, rnd(n) as usize);
        let body = match rnd(8) {
            0 => json!({"op": "recolor", "layer_id": layer, "hue_shift": rnd(360) as f64}),
            1 => {
                json!({"op": "transform", "layer_id": layer, "dx": rnd(21) as i64 - 10, "dy": rnd(21) as i64 - 10})
            }
            2 => {
                json!({"op": "transform", "layer_id": layer, "visible": rnd(2) == 0, "opacity": rnd(11) as f64 / 10.0})
            }
            3 => json!({"op": "rename", "layer_id": layer, "name": format!("layer {}", rnd(100))}),
            4 => json!({"op": "reorder", "layer_id": layer, "z": rnd(n)}),
            5 => json!({"op": "merge", "layer_id": layer}),
            6 => json!({"op": "remove", "layer_id": layer}),
            _ => {
                json!({"op": "transform", "layer_id": layer, "scale": 0.5 + rnd(10) as f64 / 10.0})
            }
        };
        let (s, e) = op(&c, &d, body.clone()).await;
        match s {
            StatusCode::OK => landed += 1,
            // merging the bottom layer or removing the last one are refused, and change nothing
            StatusCode::BAD_REQUEST => {}
            other => panic!("{body} → {other} {e}"),
        }
    }
    assert!(landed >= 20, "only {landed} of 30 ops landed");
    let end = snapshot(&c, &doc_id).await;
    for _ in 0..landed {
        let (s, e) = step(&c, &doc, "undo").await;
        assert_eq!(s, StatusCode::OK, "{e}");
    }
    assert_eq!(step(&c, &doc, "undo").await.0, StatusCode::CONFLICT);
    assert!(
        snapshot(&c, &doc_id).await == start,
        "undoing everything is not the start"
    );
    for _ in 0..landed {
        assert_eq!(step(&c, &doc, "redo").await.0, StatusCode::OK);
    }
    assert_eq!(step(&c, &doc, "redo").await.0, StatusCode::CONFLICT);
    assert!(
        snapshot(&c, &doc_id).await == end,
        "redoing everything is not the end"
    );
    // and nothing but the states' own blobs is on disk: delete the image, nothing remains
    let r = c
        .delete(&format!(
            "/api/v1/images/{}",
            doc["image_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(files_under(&t.dir.path().join("data/blobs")).is_empty());
}

#[tokio::test]
async fn a_layered_file_that_would_decode_past_the_stack_budget_is_refused_up_front() {
    use std::io::Write;
    let t = spawn_app().await;
    let c = t.admin().await;
    // a few hundred bytes: 20 layers naming one 2x2 PNG on a 4096x4096 canvas (1280 MiB)
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(image::RgbaImage::new(2, 2))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let layers = "<layer src='data/a.png'/>".repeat(20);
    let xml = format!("<image w='4096' h='4096'><stack>{layers}</stack></image>");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, data) in [
        ("mimetype", &b"image/openraster"[..]),
        ("stack.xml", xml.as_bytes()),
        ("data/a.png", &png),
    ] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(data).unwrap();
    }
    let bomb = zip.finish().unwrap().into_inner();
    assert!(bomb.len() < 4096);
    let (s, body) = import(&c, bomb, "application/zip").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("uploads.max_stack_bytes"), "{msg}");
    assert!(c.images().await.is_empty(), "nothing was stored");
}
