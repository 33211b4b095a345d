//! The chaos programme's load: a few clients, each owning a share of the images (and the
//! documents made from them), doing a random mix — uploads, palette decompositions, layer
//! ops, undo and redo, deletes of documents and images, reads — until the server dies under
//! them. Each client is sequential, so at most one of its requests is in flight at the kill;
//! it records every acknowledgement (a 2xx whose body was fully received) in its share of
//! the [`Ledger`], and marks the request it was cut off in as in flight.

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{json, Value};

use super::ledger::{AckedImage, AckedJob, DocModel, Fp, Ledger, Step};
use crate::support::*;

/// Live images a client keeps at most (beyond this, uploads turn into deletes).
const MAX_IMAGES: usize = 6;
/// Live documents a client keeps at most (beyond this, decompositions turn into edits).
const MAX_DOCS: usize = 4;

/// A fully received answer, or `Err` when the connection died (the server is gone).
async fn send(rb: RequestBuilder) -> Result<(StatusCode, Vec<u8>), Cut> {
    let resp = rb.send().await.map_err(|_| Cut)?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|_| Cut)?;
    Ok((status, body.to_vec()))
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// Overload answers: nothing was done, nothing acknowledged.
fn busy(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::SERVICE_UNAVAILABLE
}

/// One client of the chaos load.
pub struct Worker {
    pub c: Client,
    pub rng: Rng,
    pub share: Ledger,
    /// Names ops uniquely across cycles (`rename`).
    pub tag: String,
}

/// Why a worker stopped.
pub struct Cut;

impl Worker {
    /// Runs until the server dies (or `max_actions`), then gives the share back.
    pub async fn run(mut self, max_actions: usize) -> Ledger {
        for _ in 0..max_actions {
            if self.step().await.is_err() {
                break;
            }
        }
        self.share
    }

    fn surprise(&mut self, what: &str, status: StatusCode, body: &[u8]) {
        self.share.surprises.push(format!(
            "{what}: {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }

    fn pick<T: Clone>(&mut self, items: Vec<T>) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.below(items.len() as u64) as usize].clone())
    }

    async fn step(&mut self) -> Result<(), Cut> {
        let roll = self.rng.below(100);
        let images: Vec<String> = self.share.images.keys().cloned().collect();
        let docs: Vec<String> = self.share.docs.keys().cloned().collect();
        let (image, doc) = (self.pick(images.clone()), self.pick(docs.clone()));
        match (roll, image, doc) {
            (_, None, _) => self.upload().await,
            (0..=11, _, _) if images.len() < MAX_IMAGES => self.upload().await,
            (12..=15, Some(i), _) => self.delete_image(&i).await,
            (0..=27, Some(i), _) if docs.len() < MAX_DOCS => self.decompose(&i).await,
            (_, _, None) => self.adopt_documents().await,
            (0..=64, _, Some(d)) => self.edit(&d).await,
            (65..=82, _, Some(d)) => self.undo_redo(&d, roll.is_multiple_of(2)).await,
            (83..=87, _, Some(d)) => self.delete_doc(&d).await,
            (_, Some(i), _) => self.read_original(&i).await,
        }
    }

    async fn upload(&mut self) -> Result<(), Cut> {
        let (w, h) = (
            16 + self.rng.below(64) as u32,
            16 + self.rng.below(64) as u32,
        );
        let png = noisy_png(w, h, self.rng.next_u64());
        let (status, body) = send(
            self.c
                .post("/api/v1/images")
                .header("content-type", "image/png")
                .body(png.clone()),
        )
        .await?;
        if status == StatusCode::CREATED {
            let v = parse(&body);
            let id = v["id"].as_str().unwrap_or_default().to_string();
            if let Some(job) = v["thumbnail_job_id"].as_str() {
                self.share.jobs.insert(
                    job.to_string(),
                    AckedJob {
                        image: id.clone(),
                        kind: "thumbnail",
                        resolved: true,
                    },
                );
            }
            let sha256 = sha256_hex(&png);
            self.share
                .images
                .insert(id, AckedImage { bytes: png, sha256 });
            self.share.count("upload");
        } else if !busy(status) {
            self.surprise("upload", status, &body);
        }
        Ok(())
    }

    async fn decompose(&mut self, image: &str) -> Result<(), Cut> {
        let layers = 2 + self.rng.below(3);
        let (status, body) = send(
            self.c
                .post(&format!("/api/v1/images/{image}/decompose"))
                .json(&json!({"mode": "palette", "layers": layers})),
        )
        .await?;
        if status == StatusCode::ACCEPTED {
            let job = parse(&body)["job_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.share.jobs.insert(
                job,
                AckedJob {
                    image: image.to_string(),
                    kind: "decompose",
                    resolved: false,
                },
            );
            self.share.count("decompose");
        } else if !busy(status) {
            self.surprise("decompose", status, &body);
        }
        Ok(())
    }

    /// Looks at this client's unresolved decompose jobs and adopts the finished ones'
    /// documents.
    async fn adopt_documents(&mut self) -> Result<(), Cut> {
        let pending: Vec<(String, String)> = self
            .share
            .jobs
            .iter()
            .filter(|(_, j)| !j.resolved && !self.share.deleted_images.contains(&j.image))
            .map(|(id, j)| (id.clone(), j.image.clone()))
            .collect();
        for (job, image) in pending {
            let (status, body) = send(self.c.get(&format!("/api/v1/jobs/{job}"))).await?;
            let j = parse(&body);
            if status != StatusCode::OK {
                self.surprise("job", status, &body);
                continue;
            }
            match j["state"].as_str().unwrap_or_default() {
                "succeeded" => {
                    let doc_id = j["result"]["document_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let (status, body) =
                        send(self.c.get(&format!("/api/v1/documents/{doc_id}"))).await?;
                    if status != StatusCode::OK {
                        self.surprise("the document of a decompose job", status, &body);
                        continue;
                    }
                    let doc = parse(&body);
                    self.share.jobs.get_mut(&job).expect("job").resolved = true;
                    self.share
                        .docs
                        .insert(doc_id.clone(), DocModel::fresh(&image, &doc));
                    let pixels = self.pixels(&doc).await?;
                    if let Some(d) = self.share.docs.get_mut(&doc_id) {
                        d.current.pixels = Some(pixels);
                    }
                }
                "failed" | "cancelled" => {
                    self.share.jobs.get_mut(&job).expect("job").resolved = true;
                    self.surprise("decompose job", status, j.to_string().as_bytes());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The sha256 of each layer PNG of `doc`, back to front.
    pub async fn pixels(&mut self, doc: &Value) -> Result<Vec<String>, Cut> {
        let mut out = Vec::new();
        for l in doc["layers"].as_array().into_iter().flatten() {
            let url = l["url"].as_str().unwrap_or_default();
            let (status, body) = send(self.c.get(url)).await?;
            if status != StatusCode::OK {
                self.surprise("layer PNG", status, &body);
            }
            out.push(sha256_hex(&body));
        }
        Ok(out)
    }

    fn random_op(&mut self, doc: &str) -> Option<Value> {
        let layers = self.share.docs[doc].current.layers.clone();
        let layers = layers.as_array().cloned().unwrap_or_default();
        let n = layers.len();
        if n == 0 {
            return None;
        }
        let z = self.rng.below(n as u64) as usize;
        let layer = layers[z]["id"].clone();
        let signed = |r: &mut Rng| r.below(9) as i64 - 4;
        Some(match self.rng.below(8) {
            0 => {
                json!({"op": "transform", "layer_id": layer, "dx": signed(&mut self.rng), "dy": signed(&mut self.rng)})
            }
            1 => {
                json!({"op": "transform", "layer_id": layer, "opacity": (30 + self.rng.below(71)) as f64 / 100.0})
            }
            2 => json!({"op": "transform", "layer_id": layer, "visible": self.rng.below(2) == 0}),
            3 => {
                json!({"op": "rename", "layer_id": layer, "name": format!("{}-{}", self.tag, self.rng.below(1000))})
            }
            4 => json!({"op": "reorder", "layer_id": layer, "z": self.rng.below(n as u64)}),
            5 if n >= 3 && z >= 1 => json!({"op": "merge", "layer_id": layer}),
            6 if n >= 3 => json!({"op": "remove", "layer_id": layer}),
            _ => json!({"op": "recolor", "layer_id": layer, "hue_shift": 10 + self.rng.below(170)}),
        })
    }

    async fn edit(&mut self, doc: &str) -> Result<(), Cut> {
        let Some(op) = self.random_op(doc) else {
            self.surprise("a document without layers", StatusCode::OK, doc.as_bytes());
            return Ok(());
        };
        self.share.docs.get_mut(doc).expect("doc").in_flight = Some(Step::Op);
        let (status, body) = send(
            self.c
                .post(&format!("/api/v1/documents/{doc}/ops"))
                .json(&op),
        )
        .await?;
        let model = self.share.docs.get_mut(doc).expect("doc");
        if status != StatusCode::OK {
            model.in_flight = None;
            if !busy(status) {
                self.surprise(&format!("op {op}"), status, &body);
            }
            return Ok(());
        }
        let v = parse(&body);
        let revision = v["revision"].as_u64().unwrap_or_default();
        let expected = model.revision + 1;
        model.apply(Step::Op, revision, Some(Fp::of(&v)));
        if revision != expected {
            self.surprise(
                &format!("op answered revision {revision}, not {expected}"),
                status,
                &body,
            );
        }
        self.share.count("op");
        let pixels = self.pixels(&v).await?;
        if let Some(d) = self.share.docs.get_mut(doc) {
            if d.revision == revision {
                d.current.pixels = Some(pixels);
            }
        }
        Ok(())
    }

    async fn undo_redo(&mut self, doc: &str, redo: bool) -> Result<(), Cut> {
        let model = &self.share.docs[doc];
        let step = match (redo, model.undo.is_empty(), model.redo.is_empty()) {
            (true, _, false) => Step::Redo,
            (_, false, _) => Step::Undo,
            _ => return self.edit(doc).await,
        };
        let expected = match step {
            Step::Undo => model.undo.last(),
            _ => model.redo.last(),
        }
        .expect("a state to step to")
        .layers
        .clone();
        let word = if step == Step::Redo { "redo" } else { "undo" };
        self.share.docs.get_mut(doc).expect("doc").in_flight = Some(step);
        let (status, body) = send(self.c.post(&format!("/api/v1/documents/{doc}/{word}"))).await?;
        let model = self.share.docs.get_mut(doc).expect("doc");
        if status != StatusCode::OK {
            model.in_flight = None;
            if !busy(status) {
                self.surprise(word, status, &body);
            }
            return Ok(());
        }
        let v = parse(&body);
        let revision = v["revision"].as_u64().unwrap_or_default();
        model.apply(step, revision, None);
        if v["layers"] != expected {
            self.surprise(
                &format!("{word} restored another state than {expected}"),
                status,
                &body,
            );
        }
        self.share.count(word);
        Ok(())
    }

    async fn delete_doc(&mut self, doc: &str) -> Result<(), Cut> {
        let model = self.share.docs.remove(doc).expect("doc");
        self.share.maybe_deleted_docs.insert(doc.to_string(), model);
        let (status, body) = send(self.c.delete(&format!("/api/v1/documents/{doc}"))).await?;
        if status == StatusCode::NO_CONTENT {
            self.share.doc_deleted(doc);
            self.share.count("delete document");
        } else {
            let model = self.share.maybe_deleted_docs.remove(doc).expect("doc");
            self.share.docs.insert(doc.to_string(), model);
            if !busy(status) {
                self.surprise("delete document", status, &body);
            }
        }
        Ok(())
    }

    async fn delete_image(&mut self, image: &str) -> Result<(), Cut> {
        let img = self.share.images.remove(image).expect("image");
        self.share
            .maybe_deleted_images
            .insert(image.to_string(), img);
        let docs: Vec<String> = self
            .share
            .docs
            .iter()
            .filter(|(_, d)| d.image == image)
            .map(|(k, _)| k.clone())
            .collect();
        for d in &docs {
            let m = self.share.docs.remove(d).expect("doc");
            self.share.maybe_deleted_docs.insert(d.clone(), m);
        }
        let (status, body) = send(self.c.delete(&format!("/api/v1/images/{image}"))).await?;
        if status == StatusCode::NO_CONTENT {
            self.share.image_deleted(image);
            self.share.count("delete image");
        } else {
            let img = self
                .share
                .maybe_deleted_images
                .remove(image)
                .expect("image");
            self.share.images.insert(image.to_string(), img);
            for d in docs {
                let m = self.share.maybe_deleted_docs.remove(&d).expect("doc");
                self.share.docs.insert(d, m);
            }
            if !busy(status) {
                self.surprise("delete image", status, &body);
            }
        }
        Ok(())
    }

    async fn read_original(&mut self, image: &str) -> Result<(), Cut> {
        let (status, body) = send(self.c.get(&format!("/api/v1/images/{image}/original"))).await?;
        if status != StatusCode::OK {
            self.surprise("original", status, &body);
        } else if body != self.share.images[image].bytes {
            self.surprise("original differs from the upload", status, b"");
        }
        self.share.count("read");
        Ok(())
    }
}
