//! "Export my data" (P11): a job writes one ZIP of everything the studio holds about a
//! member — profile, consents with their history, ledger, usage, jobs, every original with
//! its bytes, and every document's manifest, history and layer PNGs — in the shapes the API
//! shows (`crate::views`). The ZIP is streamed straight into an encrypted blob under the
//! member's data key (never whole in memory, never in plaintext on disk), recorded with its
//! expiry (`privacy.export_link_hours`) and downloadable by its owner only until the sweep
//! removes it. A crash mid-export leaves an orphan blob the start-up reconciler removes, and
//! the job runs again.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use super::{PrivacyError, PrivacyService};
use crate::audit::Actor;
use crate::blobs::DataKey;
use crate::clock::{rfc3339, unix};
use crate::ids::{ExportId, UserId};
use crate::jobs::{JobContext, JobFailure};
use crate::store::{ExportRecord, JobKind, JobRecord, JobState, StoreError, UserRecord};
use crate::views;

/// What the export job reports as its result.
fn result_json(rec: &ExportRecord) -> serde_json::Value {
    serde_json::json!({
        "export_id": rec.id,
        "download": format!("/api/v1/me/exports/{}", rec.id),
        "bytes": rec.bytes,
        "expires_at": rfc3339(rec.expires_at),
    })
}

/// Everything an export holds, read from the store before the ZIP is written.
struct Contents {
    profile: serde_json::Value,
    consents: serde_json::Value,
    jobs: Vec<JobRecord>,
    images: Vec<crate::store::ImageRecord>,
    documents: Vec<(crate::store::DocumentRecord, Vec<crate::store::LogEntry>)>,
}

impl Contents {
    fn items(&self) -> usize {
        self.images.len() + self.documents.len()
    }
}

/// Jobs per day and kind: `[{day, kind, jobs, succeeded}]`, oldest first.
fn usage_json(jobs: &[JobRecord]) -> serde_json::Value {
    let mut days: BTreeMap<(String, &'static str), (u64, u64)> = BTreeMap::new();
    for j in jobs {
        let day = rfc3339(j.created_at).chars().take(10).collect::<String>();
        let e = days.entry((day, j.kind.name())).or_default();
        e.0 += 1;
        if j.state == JobState::Succeeded {
            e.1 += 1;
        }
    }
    days.into_iter()
        .map(|((day, kind), (jobs, succeeded))| {
            serde_json::json!({"day": day, "kind": kind, "jobs": jobs, "succeeded": succeeded})
        })
        .collect()
}

const README: &str = "\
This archive holds everything this image-layered studio keeps about your account.

profile.json    your account: email, name, plan, dates, policy version accepted, API keys
                (names and dates only; the secrets are never stored)
consents.json   your consents and every change to them
ledger.json     your credit ledger
usage.json      jobs you ran, per day and kind
jobs.json       your processing history
images/         each upload as you sent it (<id>.<format>) and what we know of it (<id>.json)
documents/      each layered document: manifest.json (layers, history) and one PNG per layer
";

impl PrivacyService {
    /// Queues an export of the member's data; a member's export already queued or running
    /// is returned instead of a second one.
    pub async fn request_export(&self, user: &UserRecord) -> Result<JobRecord, PrivacyError> {
        let pending = self
            .store()
            .jobs_of(user.id)?
            .into_iter()
            .find(|j| j.kind == JobKind::Export && !j.state.is_final());
        if let Some(job) = pending {
            return Ok(job);
        }
        let job = self.jobs.new_job(user.id, JobKind::Export);
        self.jobs.enqueue(&job).await?;
        Ok(job)
    }

    /// The member's export and a decrypting reader over its ZIP; another member's, or one
    /// whose link expired, is `NotFound`.
    pub fn open_export(
        &self,
        owner: UserId,
        id: ExportId,
    ) -> Result<(ExportRecord, Box<dyn Read + Send>), PrivacyError> {
        let rec = self
            .store()
            .get_export(owner, id)?
            .filter(|r| r.expires_at > unix(self.clock.now()))
            .ok_or(PrivacyError::NotFound("export"))?;
        let reader = self.vault.open_reader(owner, rec.blob)?;
        Ok((rec, reader))
    }

    /// Removes an export by its key (`owner ‖ id`, as the TTL index holds it): the record
    /// (flushed), then its file. `None` if it was already gone.
    pub async fn remove_export(&self, key: &[u8]) -> Result<Option<ExportRecord>, StoreError> {
        let Some(rec) = self.store().delete_export_key(key)? else {
            return Ok(None);
        };
        self.store().flush().await?;
        if let Err(e) = self.vault.unlink(rec.owner, vec![rec.blob]).await {
            tracing::warn!(export = %rec.id, "could not remove an export's file: {e}");
        }
        Ok(Some(rec))
    }

    /// Runs an export job (blocking): reads what the member has, streams the ZIP into an
    /// encrypted blob, records it, and answers with the download link.
    pub fn run_export(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure> {
        let (owner, job_id) = (ctx.job().owner, ctx.job().id);
        if let Some(done) = self
            .store()
            .exports_of(owner)
            .map_err(internal)?
            .into_iter()
            .find(|e| e.job_id == job_id)
        {
            // the job ran to its end before a crash: answer as it did
            return Ok(result_json(&done));
        }
        let user = self
            .store()
            .get_user(owner)
            .map_err(internal)?
            .ok_or_else(|| JobFailure::abort("not_found", "the account is gone"))?;
        let contents = self.contents(&user).map_err(internal)?;
        let key = self
            .vault
            .data_key(owner)
            .map_err(|e| JobFailure::abort(e.code(), "the account's data key is gone"))?;
        let blob = crate::ids::BlobId::new();
        let cancelled = AtomicBool::new(false);
        let bytes = self
            .vault
            .blobs
            .put_with(
                &key,
                self.vault.keyring.current_generation(),
                owner,
                blob,
                |w| self.write_zip(w, &contents, &key, owner, ctx, &cancelled),
            )
            .map_err(|e| {
                if cancelled.load(Ordering::Relaxed) {
                    JobFailure::Cancelled
                } else {
                    JobFailure::Retry(format!("writing the export: {e}"))
                }
            })?;
        let now = unix(self.clock.now());
        let rec = ExportRecord {
            id: ExportId::new(),
            owner,
            job_id,
            blob,
            bytes,
            created_at: now,
            expires_at: now + 3600 * self.config.export_link_hours as i64,
        };
        let stored = self.store().insert_export(&rec).and_then(|()| {
            self.audit.record(
                Actor::of(&user),
                "data.export",
                format!("export:{}", rec.id),
                serde_json::json!({"bytes": bytes, "images": contents.images.len(),
                    "documents": contents.documents.len()}),
            )?;
            self.store().flush_blocking()
        });
        if let Err(e) = stored {
            self.vault.unlink_blocking(owner, [blob]);
            return Err(internal(e));
        }
        tracing::info!(member = %owner, export = %rec.id, bytes, "data export ready");
        Ok(result_json(&rec))
    }

    /// Reads what the export holds (blocking).
    fn contents(&self, user: &UserRecord) -> Result<Contents, StoreError> {
        let store = self.store();
        let keys = store.list_api_keys(user.id)?;
        let mut profile = views::me_json(user);
        profile["created_at"] = rfc3339(user.created_at).into();
        profile["last_active_at"] = rfc3339(user.last_active_at).into();
        profile["policy_accepted"] = user.policy_accepted.into();
        profile["api_keys"] = keys
            .iter()
            .map(|k| {
                serde_json::json!({"id": k.id, "name": k.name, "created_at": rfc3339(k.created_at),
                    "last_used_at": k.last_used_at.map(rfc3339)})
            })
            .collect();
        let images = store.list_images(user.id)?;
        let mut documents = Vec::new();
        for img in &images {
            for doc in store.documents_of_image(img.id)? {
                if doc.owner == user.id {
                    let log = store.document_log(doc.id, doc.owner)?;
                    documents.push((doc, log));
                }
            }
        }
        Ok(Contents {
            profile,
            consents: views::consents_json(&store.consents(user.id)?),
            jobs: store.jobs_of(user.id)?,
            images,
            documents,
        })
    }

    /// Writes the ZIP into `w`, reporting progress per image and document and stopping
    /// (with `cancelled` set) when the job is cancelled.
    fn write_zip(
        &self,
        w: &mut dyn Write,
        c: &Contents,
        key: &DataKey,
        owner: UserId,
        ctx: &mut JobContext,
        cancelled: &AtomicBool,
    ) -> io::Result<()> {
        let mut zip = zip::ZipWriter::new_stream(w);
        let text = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(0o600);
        // originals and layers are compressed already
        let stored = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(true)
            .unix_permissions(0o600);
        let put_json = |zip: &mut zip::ZipWriter<_>, name: &str, v: &serde_json::Value| {
            zip.start_file(name, text).map_err(io::Error::other)?;
            serde_json::to_writer_pretty(&mut *zip, v).map_err(io::Error::other)
        };
        zip.start_file("README.txt", text)
            .map_err(io::Error::other)?;
        zip.write_all(README.as_bytes())?;
        put_json(&mut zip, "profile.json", &c.profile)?;
        put_json(&mut zip, "consents.json", &c.consents)?;
        // credits are not metered yet: the ledger is empty until billing exists
        put_json(&mut zip, "ledger.json", &serde_json::json!([]))?;
        put_json(&mut zip, "usage.json", &usage_json(&c.jobs))?;
        let jobs: Vec<_> = c.jobs.iter().rev().map(views::job_json).collect();
        put_json(&mut zip, "jobs.json", &jobs.into())?;
        let total = c.items().max(1) as f32;
        let mut done = 0.0;
        let mut step = |ctx: &mut JobContext| -> io::Result<()> {
            if ctx.check_cancelled().is_err() {
                cancelled.store(true, Ordering::Relaxed);
                return Err(io::Error::other("cancelled"));
            }
            done += 1.0;
            ctx.progress(done / total);
            Ok(())
        };
        for img in &c.images {
            put_json(
                &mut zip,
                &format!("images/{}.json", img.id),
                &views::image_json(img),
            )?;
            zip.start_file(format!("images/{}.{}", img.id, img.format.as_str()), stored)
                .map_err(io::Error::other)?;
            let mut src = self
                .vault
                .blobs
                .open_reader(key, owner, img.original_blob)
                .map_err(io::Error::other)?;
            io::copy(&mut src, &mut zip)?;
            step(ctx)?;
        }
        for (doc, log) in &c.documents {
            let dir = format!("documents/{}", doc.id);
            let mut manifest = views::document_json(doc);
            let files: Vec<String> = doc
                .layers
                .iter()
                .enumerate()
                .map(|(z, l)| format!("{z:02}_{}.png", l.id))
                .collect();
            if let Some(layers) = manifest["layers"].as_array_mut() {
                for (l, f) in layers.iter_mut().zip(&files) {
                    l["file"] = f.clone().into();
                }
            }
            manifest["history"] = log
                .iter()
                .map(|e| {
                    serde_json::json!({"revision": e.revision, "action": e.action, "op": e.op,
                        "at": rfc3339(e.at)})
                })
                .collect();
            put_json(&mut zip, &format!("{dir}/manifest.json"), &manifest)?;
            for (layer, file) in doc.layers.iter().zip(&files) {
                zip.start_file(format!("{dir}/{file}"), stored)
                    .map_err(io::Error::other)?;
                let mut src = crate::documents::canvas_png(&self.vault, key, doc, layer)
                    .map_err(io::Error::other)?;
                io::copy(&mut src, &mut zip)?;
            }
            step(ctx)?;
        }
        zip.finish().map_err(io::Error::other)?;
        Ok(())
    }
}

fn internal(e: impl std::fmt::Display) -> JobFailure {
    JobFailure::Retry(e.to_string())
}
