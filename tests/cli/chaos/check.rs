//! The chaos programme's invariant checker, run against the restarted server: jobs settle
//! (none stays queued or running past a deadline); every acknowledged upload is listed with
//! its sha256 and downloads byte for byte, and every image the server lists is whole;
//! acknowledged deletes answer 404; every acknowledged document is at its acknowledged
//! revision (or one past it, when the step in flight at the kill landed) and its undo
//! history walks back through the acknowledged states, each layer PNG identical to what was
//! read when the state was acknowledged, then redo walks forward again; every document the
//! server lists was made by a job it lists. Deletes in flight at the kill may have happened
//! or not; the checker learns which and updates the [`Ledger`]. It returns violations, never
//! panics on one, so the caller can quote them with the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::ledger::{AckedImage, DocModel, Fp, Ledger, Step};
use crate::support::*;

/// Longest wait for every job to end after a restart.
pub const SETTLE: Duration = Duration::from_secs(90);

type Violations = Vec<String>;

/// Polls the job list until nothing is queued or running; returns the jobs by id.
pub async fn settle_jobs(c: &Client, v: &mut Violations) -> BTreeMap<String, Value> {
    let started = Instant::now();
    loop {
        let (status, list) = c.json("/api/v1/jobs").await;
        assert_eq!(status, StatusCode::OK, "list jobs: {list}");
        let jobs: BTreeMap<String, Value> = list["jobs"]
            .as_array()
            .expect("jobs array")
            .iter()
            .map(|j| (j["id"].as_str().unwrap_or_default().to_string(), j.clone()))
            .collect();
        let open: Vec<&Value> = jobs
            .values()
            .filter(|j| !is_final(j["state"].as_str().unwrap_or_default()))
            .collect();
        if open.is_empty() {
            return jobs;
        }
        if started.elapsed() > SETTLE {
            v.push(format!(
                "jobs not ended {SETTLE:?} after the restart: {open:?}"
            ));
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks the restarted server against `ledger` (updating it with what in-flight requests
/// turned out to do). `depth` bounds the undo walk of each document.
pub async fn check_server(c: &Client, ledger: &mut Ledger, depth: usize) -> Violations {
    let mut v = Violations::new();
    let jobs = settle_jobs(c, &mut v).await;

    // deletes in flight at the kill: learn whether they happened
    for (id, img) in std::mem::take(&mut ledger.maybe_deleted_images) {
        match c.json(&format!("/api/v1/images/{id}")).await.0 {
            StatusCode::NOT_FOUND => ledger.image_deleted(&id),
            StatusCode::OK => {
                ledger.images.insert(id, img);
            }
            s => v.push(format!("image {id} (delete in flight): {s}")),
        }
    }
    for (id, doc) in std::mem::take(&mut ledger.maybe_deleted_docs) {
        match c.json(&format!("/api/v1/documents/{id}")).await.0 {
            StatusCode::NOT_FOUND => ledger.doc_deleted(&id),
            StatusCode::OK => {
                ledger.docs.insert(id, doc);
            }
            s => v.push(format!("document {id} (delete in flight): {s}")),
        }
    }

    check_images(c, ledger, &mut v).await;
    check_jobs(ledger, &jobs, &mut v);
    check_documents(c, ledger, &jobs, depth, &mut v).await;
    v
}

async fn check_images(c: &Client, ledger: &mut Ledger, v: &mut Violations) {
    let listed = c.images().await;
    for (id, img) in &ledger.images {
        let Some(meta) = listed.get(id) else {
            v.push(format!("acknowledged upload {id} is missing"));
            continue;
        };
        if meta["sha256"] != img.sha256.as_str() {
            v.push(format!(
                "image {id}: sha256 {} in the metadata",
                meta["sha256"]
            ));
        }
        let (s, bytes) = c.bytes(&format!("/api/v1/images/{id}/original")).await;
        if s != StatusCode::OK || bytes != img.bytes {
            v.push(format!(
                "acknowledged upload {id}: original {s}, {} bytes, differs from the upload",
                bytes.len()
            ));
        }
    }
    for id in &ledger.deleted_images {
        let (s, _) = c.json(&format!("/api/v1/images/{id}")).await;
        if listed.contains_key(id) || s != StatusCode::NOT_FOUND {
            v.push(format!("deleted image {id} is back ({s})"));
        }
    }
    for (id, meta) in &listed {
        // every image is whole and, with its jobs settled, has its thumbnail
        if meta["thumbnail_url"].is_null() {
            v.push(format!(
                "image {id} has no thumbnail after its job settled: {meta}"
            ));
        } else {
            let (s, png) = c.bytes(&format!("/api/v1/images/{id}/thumbnail")).await;
            if s != StatusCode::OK || image::load_from_memory(&png).is_err() {
                v.push(format!("image {id}: thumbnail {s}, not a decodable image"));
            }
        }
        if ledger.images.contains_key(id) {
            continue;
        }
        // an upload whose answer the kill cut off, which landed: whole, and tracked from now
        let (s, bytes) = c.bytes(&format!("/api/v1/images/{id}/original")).await;
        let sha256 = sha256_hex(&bytes);
        if s != StatusCode::OK || meta["sha256"] != sha256.as_str() {
            v.push(format!(
                "unacknowledged image {id}: original {s}, sha256 differs"
            ));
            continue;
        }
        ledger
            .images
            .insert(id.clone(), AckedImage { bytes, sha256 });
    }
}

fn check_jobs(ledger: &mut Ledger, jobs: &BTreeMap<String, Value>, v: &mut Violations) {
    let mut gone = Vec::new();
    for (id, job) in &ledger.jobs {
        let image_deleted = ledger.deleted_images.contains(&job.image);
        match jobs.get(id) {
            None if image_deleted => gone.push(id.clone()),
            None => v.push(format!("acknowledged {} job {id} is gone", job.kind)),
            Some(j) if !image_deleted && j["state"] != "succeeded" => v.push(format!(
                "{} job {id} on a live image ended {}: {j}",
                job.kind, j["state"]
            )),
            Some(_) => {}
        }
    }
    for id in gone {
        ledger.jobs.remove(&id);
    }
}

async fn check_documents(
    c: &Client,
    ledger: &mut Ledger,
    jobs: &BTreeMap<String, Value>,
    depth: usize,
    v: &mut Violations,
) {
    let (s, list) = c.json("/api/v1/documents").await;
    assert_eq!(s, StatusCode::OK, "list documents: {list}");
    let listed: BTreeMap<String, Value> = list["documents"]
        .as_array()
        .expect("documents array")
        .iter()
        .map(|d| (d["id"].as_str().unwrap_or_default().to_string(), d.clone()))
        .collect();
    for id in &ledger.deleted_docs {
        let (s, _) = c.json(&format!("/api/v1/documents/{id}")).await;
        if listed.contains_key(id) || s != StatusCode::NOT_FOUND {
            v.push(format!("deleted document {id} is back ({s})"));
        }
    }
    let ids: Vec<String> = ledger.docs.keys().cloned().collect();
    for id in ids {
        if !listed.contains_key(&id) {
            v.push(format!("acknowledged document {id} is not listed"));
        }
        let model = ledger.docs.get_mut(&id).expect("doc");
        if let Err(e) = verify_document(c, &id, model, depth).await {
            v.push(format!("document {id}: {e}"));
        }
    }
    // every listed document was made by exactly one job the server lists
    let mut made_by: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for (jid, j) in jobs {
        if let Some(d) = j["result"]["document_id"].as_str() {
            made_by.entry(d.to_string()).or_default().push(jid);
        }
    }
    let known: BTreeSet<&String> = ledger.docs.keys().collect();
    let mut adopt = Vec::new();
    for (id, d) in &listed {
        if !made_by.contains_key(id) {
            v.push(format!(
                "document {id} was made by no job (a re-run's duplicate?): {d}"
            ));
        }
        if !known.contains(id) {
            adopt.push((
                id.clone(),
                d["image_id"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    for (id, image) in adopt {
        // made by a job whose answer or adoption the kill cut off: never edited
        let (s, doc) = c.json(&format!("/api/v1/documents/{id}")).await;
        if s != StatusCode::OK || doc["can_undo"] != false || doc["can_redo"] != false {
            v.push(format!("unadopted document {id}: {s} {doc}"));
            continue;
        }
        let mut model = DocModel::fresh(&image, &doc);
        if let Err(e) = expect_state(c, &doc, &mut model.current).await {
            v.push(format!("document {id}: {e}"));
        }
        ledger.docs.insert(id, model);
    }
    for job in ledger.jobs.values_mut() {
        job.resolved = true;
    }
}

/// Compares the server's `doc` with the model's state: the layers' JSON and each layer's
/// PNG bytes (filled in when the state's pixels were never read).
async fn expect_state(c: &Client, doc: &Value, fp: &mut Fp) -> Result<(), String> {
    if doc["layers"] != fp.layers {
        return Err(format!(
            "revision {} has layers {}, expected {}",
            doc["revision"], doc["layers"], fp.layers
        ));
    }
    let mut pixels = Vec::new();
    for l in doc["layers"].as_array().into_iter().flatten() {
        let url = l["url"].as_str().unwrap_or_default();
        let (s, png) = c.bytes(url).await;
        if s != StatusCode::OK || image::load_from_memory(&png).is_err() {
            return Err(format!(
                "revision {}: layer {url} is {s}, not a PNG",
                doc["revision"]
            ));
        }
        pixels.push(sha256_hex(&png));
    }
    match &fp.pixels {
        Some(p) if *p != pixels => Err(format!(
            "revision {}: layer pixels differ from the acknowledged state",
            doc["revision"]
        )),
        Some(_) => Ok(()),
        None => {
            fp.pixels = Some(pixels);
            Ok(())
        }
    }
}

/// One undo or redo, checked against the state the model says it restores.
async fn step(c: &Client, id: &str, model: &mut DocModel, step: Step) -> Result<(), String> {
    let word = if step == Step::Undo { "undo" } else { "redo" };
    let resp = c
        .post(&format!("/api/v1/documents/{id}/{word}"))
        .send()
        .await
        .expect("undo/redo request");
    let s = resp.status();
    let doc: Value = resp.json().await.unwrap_or(Value::Null);
    if s != StatusCode::OK {
        return Err(format!("{word} at revision {}: {s} {doc}", model.revision));
    }
    let revision = doc["revision"].as_u64().unwrap_or_default();
    if revision != model.revision + 1 {
        return Err(format!(
            "{word} made revision {revision} after {}",
            model.revision
        ));
    }
    model.apply(step, revision, None);
    expect_state(c, &doc, &mut model.current).await?;
    flags(&doc, model)
}

fn flags(doc: &Value, model: &DocModel) -> Result<(), String> {
    if doc["can_undo"] != !model.undo.is_empty() || doc["can_redo"] != !model.redo.is_empty() {
        return Err(format!(
            "revision {}: can_undo {} can_redo {}, but {} undo and {} redo states were acknowledged",
            doc["revision"],
            doc["can_undo"],
            doc["can_redo"],
            model.undo.len(),
            model.redo.len()
        ));
    }
    Ok(())
}

/// The document is at its acknowledged revision (or the step in flight landed), and up to
/// `depth` undo steps restore the acknowledged states; redo then walks back up (and through
/// up to `depth` redo states, undone again), leaving the history as it was.
async fn verify_document(
    c: &Client,
    id: &str,
    model: &mut DocModel,
    depth: usize,
) -> Result<(), String> {
    let (s, doc) = c.json(&format!("/api/v1/documents/{id}")).await;
    if s != StatusCode::OK {
        return Err(format!(
            "acknowledged at revision {}, now {s}",
            model.revision
        ));
    }
    let revision = doc["revision"].as_u64().unwrap_or_default();
    match model.in_flight.take() {
        Some(step) if revision == model.revision + 1 => {
            model.apply(step, revision, (step == Step::Op).then(|| Fp::of(&doc)))
        }
        _ if revision == model.revision => {}
        in_flight => {
            return Err(format!(
                "revision {revision} after the restart, {} acknowledged (in flight: {in_flight:?})",
                model.revision
            ))
        }
    }
    expect_state(c, &doc, &mut model.current).await?;
    flags(&doc, model)?;
    let down = depth.min(model.undo.len());
    for _ in 0..down {
        step(c, id, model, Step::Undo).await?;
    }
    for _ in 0..down {
        step(c, id, model, Step::Redo).await?;
    }
    let up = depth.min(model.redo.len());
    for _ in 0..up {
        step(c, id, model, Step::Redo).await?;
    }
    for _ in 0..up {
        step(c, id, model, Step::Undo).await?;
    }
    Ok(())
}
