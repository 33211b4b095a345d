//! Right of access and portability (P11), black-box: "export my data" is a job whose ZIP
//! holds the profile, consents with their history, ledger, usage, jobs, every original with
//! its exact bytes and every document's manifest, history and layer PNGs. Only its owner can
//! download it, it is encrypted at rest like everything else, and the sweep removes it when
//! its link expires (`privacy.export_link_hours`).

use std::io::{Cursor, Read};

use image_layered::store::Plan;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

/// Every entry of a ZIP by name.
fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("a valid ZIP");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().unwrap().into_owned(), data)
        })
        .collect()
}

fn json_of(files: &std::collections::BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    serde_json::from_slice(files.get(name).unwrap_or_else(|| panic!("{name} missing")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Requests an export and waits for it; returns the finished job.
async fn export(c: &Client) -> Value {
    let r = c.post("/api/v1/me/export").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    let job = c.wait_job(body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "export");
    job
}

#[tokio::test]
async fn the_export_zip_holds_everything_the_studio_keeps_about_the_member() {
    let t = spawn_app().await;
    let a = t.member("ann@example.com", Plan::Pro).await;
    let b = t.member("bob@example.com", Plan::Free).await;
    let (s, _) = a
        .send_json(
            reqwest::Method::PUT,
            "/api/v1/me/consents",
            json!({"marketing": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (image_id, _, doc) = document(&a).await;
    let original = a
        .bytes(&format!("/api/v1/images/{image_id}/original"))
        .await
        .1;
    // bob's upload must not appear in ann's export
    let bobs = b.upload(noisy_png(40, 30, 9)).await;

    let job = export(&a).await;
    let download = job["result"]["download"].as_str().unwrap();
    assert!(download.starts_with("/api/v1/me/exports/"), "{job}");
    assert!(job["result"]["expires_at"].is_string());

    // bob cannot fetch it, nor can anyone signed out
    let r = b.get(download).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = t.client().get(download).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = a.get(download).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let zip = r.bytes().await.unwrap();
    assert_eq!(
        zip.len() as u64,
        job["result"]["bytes"].as_u64().unwrap(),
        "the size the job reported"
    );
    let files = unzip(&zip);

    let profile = json_of(&files, "profile.json");
    assert_eq!(profile["email"], "ann@example.com");
    assert_eq!(profile["plan"], "pro");
    let consents = json_of(&files, "consents.json");
    assert_eq!(consents["marketing"], true);
    assert_eq!(consents["training"], false);
    assert_eq!(consents["history"][0]["kind"], "marketing");
    assert!(json_of(&files, "ledger.json").is_array());
    let usage = json_of(&files, "usage.json");
    assert!(
        usage
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["kind"] == "decompose" && u["jobs"] == 1),
        "{usage}"
    );
    let jobs = json_of(&files, "jobs.json");
    let kinds: Vec<_> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"thumbnail") && kinds.contains(&"decompose"),
        "{kinds:?}"
    );

    // the original, byte for byte, and what the API says of it
    assert_eq!(files[&format!("images/{image_id}.png")], original);
    assert_eq!(
        json_of(&files, &format!("images/{image_id}.json"))["id"],
        image_id.as_str()
    );
    let bob_id = bobs["id"].as_str().unwrap();
    assert!(
        !files.keys().any(|k| k.contains(bob_id)),
        "another member's image leaked into the export"
    );

    // the document: its manifest with history, and every layer as a PNG of the canvas
    let doc_id = doc["id"].as_str().unwrap();
    let manifest = json_of(&files, &format!("documents/{doc_id}/manifest.json"));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), doc["layers"].as_array().unwrap().len());
    assert!(manifest["history"].is_array());
    for layer in layers {
        let file = format!("documents/{doc_id}/{}", layer["file"].as_str().unwrap());
        let png = image::load_from_memory(&files[&file]).expect("a layer PNG");
        assert_eq!((png.width(), png.height()), (96, 64), "{file}");
        // the exported layer is the one the API serves
        let (s, served) = a.bytes(layer["url"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(served, files[&file], "{file}");
    }

    // encrypted at rest: no file under the data dir holds the ZIP's plaintext
    let data = t.dir.path().join("data");
    assert_eq!(contains(&data, b"profile.json"), None);
    assert_eq!(contains(&data, b"consents.json"), None);

    // the export and the audit log agree
    let entries = t.app.audit.entries(0, 1000).unwrap();
    assert!(entries.iter().any(|e| e.action == "data.export"));
}

#[tokio::test]
async fn an_export_link_expires_and_the_sweep_removes_its_file() {
    let t = spawn_app_with(&[("IMAGE_LAYERED__PRIVACY__EXPORT_LINK_HOURS", "2")]).await;
    let a = t.member("ann@example.com", Plan::Free).await;
    let meta = a.upload(noisy_png(32, 32, 1)).await;
    a.wait_job(meta["thumbnail_job_id"].as_str().unwrap()).await;
    let blobs = t.dir.path().join("data/blobs");
    let before = files_under(&blobs).len();
    let job = export(&a).await;
    let download = job["result"]["download"].as_str().unwrap().to_string();
    assert_eq!(files_under(&blobs).len(), before + 1, "the ZIP is one blob");

    // a second request while none is running makes a second export
    let second = export(&a).await;
    assert_ne!(second["result"]["download"], job["result"]["download"]);
    assert_eq!(files_under(&blobs).len(), before + 2);

    t.advance_hours(1);
    assert_eq!(
        a.get(&download).send().await.unwrap().status(),
        StatusCode::OK
    );
    t.advance_hours(2);
    // expired: gone for the member at once, even before a sweep
    assert_eq!(
        a.get(&download).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert!(t.sweep().await >= 2);
    assert_eq!(
        files_under(&blobs).len(),
        before,
        "the sweep removed both ZIPs"
    );
}

#[tokio::test]
async fn a_malformed_or_unknown_export_id_is_404() {
    let t = spawn_app().await;
    let a = t.member("ann@example.com", Plan::Free).await;
    for path in [
        "/api/v1/me/exports/nope",
        "/api/v1/me/exports/01890000-0000-7000-8000-000000000000",
    ] {
        let r = a.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
