//! Upgrades keep data: the real binary opens each data dir written by an earlier release
//! (`tests/fixtures/upgrade/schema-N`, made by `scripts/make-upgrade-fixture` with that
//! release's binary) and reads everything back — the admin's password, an API key, the
//! original's exact bytes, the thumbnail, the decompose job, the document's layers pixel for
//! pixel, and its undo/redo history, which still steps.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upgrade");

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// (name, sha256 of the layer PNG) for each layer of a document, back to front.
async fn layers(c: &Client, doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for l in doc["layers"].as_array().expect("layers") {
        let (status, png) = c.bytes(l["url"].as_str().expect("url")).await;
        assert_eq!(status, 200, "layer {l}");
        out.push((l["name"].as_str().unwrap().to_string(), sha256_hex(&png)));
    }
    out
}

fn expected_layers(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .expect("expected layers")
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap().to_string();
            (s("name"), s("sha256"))
        })
        .collect()
}

#[tokio::test]
async fn a_data_dir_from_schema_1_reads_back_whole() {
    reads_back_whole("schema-1").await;
}

#[tokio::test]
async fn a_data_dir_from_schema_2_reads_back_whole() {
    reads_back_whole("schema-2").await;
}

/// Layers stored as full-canvas PNGs (before layers were kept as their boxes).
#[tokio::test]
async fn a_data_dir_from_the_previous_release_reads_back_whole() {
    reads_back_whole("schema-3").await;
}

async fn reads_back_whole(name: &str) {
    let fixture = Path::new(FIXTURES).join(name);
    let want: Value =
        serde_json::from_slice(&std::fs::read(fixture.join("expected.json")).expect("expected"))
            .expect("expected.json");
    let env = Env::new();
    copy_dir(&fixture.join("data"), &env.data);
    {
        use std::os::unix::fs::PermissionsExt;
        // git does not keep modes; an operator restoring a backup sets the key's back
        std::fs::set_permissions(env.master_key(), std::fs::Permissions::from_mode(0o600))
            .expect("chmod master key");
    }
    let opts = ServerOpts {
        // no sweep during the test, whatever today's date says about the fixture's expiry
        env: vec![(
            "IMAGE_LAYERED__RETENTION__SCHEDULE".into(),
            "0 0 0 1 1 * 2099".into(),
        )],
        ..Default::default()
    };
    let server = Server::start_with(&env, opts).await;
    let admin = &want["admin"];
    let c = server
        .client
        .login(
            admin["email"].as_str().unwrap(),
            admin["password"].as_str().unwrap(),
        )
        .await;

    // the API key made by the old release still authenticates
    let keyed = server.with_key(want["api_key"].as_str().unwrap());
    let (status, me) = keyed.json("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], admin["email"]);

    // the original, byte for byte, and its thumbnail
    let image = &want["image"];
    let id = image["id"].as_str().unwrap();
    let (status, original) = c.bytes(&format!("/api/v1/images/{id}/original")).await;
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&original), image["sha256"].as_str().unwrap());
    assert_eq!(original.len() as u64, image["bytes"].as_u64().unwrap());
    // its recorded hash, sealed by the schema 2 migration, reads back the same
    let (status, meta) = c.json(&format!("/api/v1/images/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(meta["sha256"], image["sha256"]);
    let (status, thumb) = c.bytes(&format!("/api/v1/images/{id}/thumbnail")).await;
    assert_eq!(status, 200);
    assert_eq!(dimensions(&thumb), (64, 48));

    // the job that made the document
    let job = &want["job"];
    let (status, j) = c
        .json(&format!("/api/v1/jobs/{}", job["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["state"], "succeeded");
    assert_eq!(j["kind"], job["kind"]);

    // the document: its layers pixel for pixel, and its history
    let d = &want["document"];
    let doc_id = d["id"].as_str().unwrap();
    assert_eq!(j["result"]["document_id"], doc_id);
    let (status, doc) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
    assert_eq!(status, 200, "{doc}");
    for k in ["revision", "mode", "undo_op", "redo_op"] {
        assert_eq!(doc[k], d[k], "{k}");
    }
    assert_eq!(layers(&c, &doc).await, expected_layers(&d["layers"]));
    let step = |path: &'static str| {
        let c = c.clone();
        async move {
            let r = c
                .post(&format!("/api/v1/documents/{doc_id}/{path}"))
                .send()
                .await
                .expect("step");
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.expect("document")
        }
    };
    let redone = step("redo").await;
    assert_eq!(redone["revision"], d["revision"].as_u64().unwrap() + 1);
    assert_eq!(layers(&c, &redone).await, expected_layers(&d["after_redo"]));
    let undone = step("undo").await;
    assert_eq!(layers(&c, &undone).await, expected_layers(&d["layers"]));
    let first = step("undo").await;
    assert_eq!(
        first["can_undo"], false,
        "back at the decomposition: {first}"
    );
    assert_eq!(first["undo_op"], Value::Null);
    assert_eq!(first["redo_op"], "recolor");
    let first_layers = layers(&c, &first).await;

    // the store was migrated to the current schema, and a restart finds nothing to do
    let mut server = server;
    server.stop().await;
    let store = image_layered::store::Store::open(
        &env.data.join("db"),
        &image_layered::config::StoreConfig::default(),
    )
    .expect("open the migrated store");
    assert_eq!(
        store.schema_version().unwrap(),
        image_layered::store::SCHEMA_VERSION
    );
    // the previous release's job records had no expiry: the first start gave each one
    assert_eq!(store.expire_unexpiring_jobs(1).unwrap(), 0);
    drop(store);
    let mut server = server.restart(&env).await;
    let c = server
        .client
        .login(
            admin["email"].as_str().unwrap(),
            admin["password"].as_str().unwrap(),
        )
        .await;
    let (_, doc) = c.json(&format!("/api/v1/documents/{doc_id}")).await;
    assert_eq!(layers(&c, &doc).await, first_layers);
    assert_eq!(doc["redo_op"], "recolor");
    server.stop().await;
}
