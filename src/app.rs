//! Builds the studio's services from a [`Config`] and a clock: opens the store
//! (schema-checked), the master key (checked against the store, so a wrong key fails at
//! start-up), the blob directory (reconciled against the metadata), the job queue
//! (interrupted jobs re-queued) and the services on top; and runs the background work — the
//! job workers and the retention scheduler — until shutdown. It knows nothing of HTTP:
//! `crate::http` serves an [`App`], and tests build one with a temp data dir and a manual
//! clock.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::AdminService;
use crate::audit::{Actor, AuditLog};
use crate::auth::{AccountError, Auth, Bootstrapped};
use crate::billing::Billing;
use crate::blobs::{open_keyring, restrict_dir, BlobError, BlobStore, Keyring, MasterKeyError};
use crate::clock::{unix, SharedClock};
use crate::config::{Config, Device};
use crate::documents::DocumentService;
use crate::images::{ImageService, InferenceSlot};
use crate::inference::{Inference, InferenceError, InferenceOptions, ModelFiles};
use crate::jobs::{JobContext, JobFailure, JobHandler, JobQueue};
use crate::mail::send::Transport;
use crate::mail::Outbox;
use crate::models::{FetchProgress, ModelError, ModelStore};
use crate::privacy::PrivacyService;
use crate::retention::Sweeper;
use crate::store::{JobKind, Store, StoreError};
use crate::vault::Vault;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("there is no image-layered store in {0}; check --data-dir (or start `serve` once to create one)")]
    NoStore(PathBuf),
    #[error(transparent)]
    Models(#[from] ModelError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
    #[error("{0}")]
    Mail(String),
    #[error("cannot create the data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StartError {
    pub fn code(&self) -> &'static str {
        match self {
            StartError::Store(e) => e.code(),
            StartError::MasterKey(e) => e.code(),
            StartError::Blob(e) => e.code(),
            StartError::NoStore(_) => "no_store",
            StartError::Models(e) => e.code(),
            StartError::Inference(e) => e.code(),
            StartError::Mail(_) => "mail_config",
            StartError::DataDir { .. } => "data_dir",
        }
    }
}

/// The studio's services, shared by the HTTP server, the job workers and the commands.
pub struct App {
    pub config: Config,
    pub clock: SharedClock,
    pub store: Store,
    pub blobs: Arc<BlobStore>,
    pub keyring: Arc<Keyring>,
    pub auth: Auth,
    pub images: ImageService,
    pub documents: DocumentService,
    pub jobs: JobQueue,
    pub sweeper: Sweeper,
    pub audit: AuditLog,
    pub outbox: Outbox,
    pub privacy: PrivacyService,
    pub billing: Billing,
    pub admin: AdminService,
    mail_transport: Transport,
    /// The inference service, once [`App::load_models`] has loaded it.
    pub inference: InferenceSlot,
    /// Why the models are not loaded (for `/readyz`), while they are not.
    pub models_note: std::sync::Mutex<String>,
}

/// Fails unless the data dir already holds a store (commands other than `serve` and
/// `user add` never create one, so a mistyped `--data-dir` is an error, not a new store).
pub fn require_store(config: &Config) -> Result<(), StartError> {
    let db = config.server.data_dir.join("db");
    if db.is_dir() {
        Ok(())
    } else {
        Err(StartError::NoStore(config.server.data_dir.clone()))
    }
}

/// Opens the store of a data dir (shared by `serve` and the store-using commands).
pub fn open_store(config: &Config) -> Result<Store, StartError> {
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
        path: dir.clone(),
        source,
    })?;
    restrict_dir(dir);
    Ok(Store::open(&dir.join("db"), &config.store)?)
}

/// The background work of a running studio, until [`Background::stop`].
pub struct Background {
    workers: Vec<JoinHandle<()>>,
    scheduler: JoinHandle<()>,
    grants: JoinHandle<()>,
    sender: JoinHandle<()>,
}

impl Background {
    /// Lets each worker finish its current job within `grace` (a job still running after it
    /// is abandoned here; it is persisted as running and runs again at the next start), and
    /// stops the scheduler. Call after the shutdown signal turned true.
    pub async fn stop(self, app: &App) {
        let grace = app.config.server.shutdown_grace();
        let drained = tokio::time::timeout(grace, async {
            for w in self.workers {
                let _ = w.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("a job was still running at the end of the grace period; it will run again at the next start");
        }
        let _ = self.scheduler.await;
        let _ = self.grants.await;
        let _ = self.sender.await;
        if let Err(e) = app.store.flush().await {
            tracing::error!("final flush failed: {e}");
        }
    }
}

/// Runs each job by its kind (a `match`: a kind without a handler does not compile).
struct JobDispatch {
    images: ImageService,
    documents: DocumentService,
    privacy: PrivacyService,
}

impl JobHandler for JobDispatch {
    fn run(&self, ctx: &mut JobContext) -> Result<serde_json::Value, JobFailure> {
        match ctx.job().kind.clone() {
            JobKind::Thumbnail { image_id } => self.images.run_thumbnail(ctx, image_id),
            JobKind::Cutout { image_id } => self.images.run_cutout(ctx, image_id),
            JobKind::Decompose {
                image_id,
                layers,
                mode,
            } => self.documents.run_decompose(ctx, image_id, layers, mode),
            JobKind::Edit { document_id, op } => self.documents.run_edit(ctx, document_id, op),
            JobKind::Export => self.privacy.run_export(ctx),
        }
    }
}

impl App {
    /// Opens everything; nothing runs yet.
    pub fn open(config: Config, clock: SharedClock) -> Result<Arc<App>, StartError> {
        let store = open_store(&config)?;
        let keyring = Arc::new(open_keyring(&config, &store)?);
        store.attach_keyring(keyring.clone());
        store.migrate()?;
        let blobs = Arc::new(BlobStore::open(&config.server.data_dir.join("blobs"))?);
        reconcile(&store, &blobs)?;
        let audit = AuditLog::new(store.clone(), clock.clone());
        let mail_transport = Transport::from_config(&config.mail, &config.server.data_dir)
            .map_err(StartError::Mail)?;
        let outbox = Outbox::new(
            store.clone(),
            clock.clone(),
            &config.mail,
            config.accounts.token_hours,
        );
        let jobs = JobQueue::new(
            store.clone(),
            clock.clone(),
            config.jobs.clone(),
            audit.clone(),
            crate::billing::Pricing::new(&config),
        );
        jobs.recover()?;
        let given = store.expire_unexpiring_jobs(jobs.keep_secs())?;
        if given > 0 {
            tracing::info!(jobs = given, "gave job records without an expiry one");
        }
        let vault = Vault::new(store.clone(), blobs.clone(), keyring.clone());
        let inference = InferenceSlot::default();
        let images = ImageService::new(
            vault.clone(),
            clock.clone(),
            jobs.clone(),
            inference.clone(),
            audit.clone(),
            &config,
        );
        let privacy = PrivacyService::new(
            vault.clone(),
            jobs.clone(),
            clock.clone(),
            audit.clone(),
            outbox.clone(),
            &config,
        );
        let documents = DocumentService::new(
            vault.clone(),
            images.clone(),
            clock.clone(),
            jobs.clone(),
            audit.clone(),
        );
        let auth = Auth::new(
            store.clone(),
            clock.clone(),
            keyring.clone(),
            outbox.clone(),
            &config,
        );
        let sweeper = Sweeper::new(
            &vault,
            images.clone(),
            documents.clone(),
            privacy.clone(),
            audit.clone(),
            config.retention.sweep_batch,
        );
        let billing = Billing::new(store.clone(), clock.clone(), audit.clone(), &config);
        let admin = AdminService::new(
            store.clone(),
            clock.clone(),
            audit.clone(),
            billing.clone(),
            images.clone(),
            privacy.clone(),
            config.privacy.min_group_size,
        );
        Ok(Arc::new(App {
            config,
            clock,
            store,
            blobs,
            keyring,
            auth,
            images,
            documents,
            jobs,
            sweeper,
            audit,
            outbox,
            privacy,
            billing,
            admin,
            mail_transport,
            inference,
            models_note: std::sync::Mutex::new("not loaded yet".into()),
        }))
    }

    /// Creates the first admin when there are no members (see [`crate::auth::bootstrap_admin`]),
    /// recorded in the audit log.
    pub async fn bootstrap_admin(&self) -> Result<Option<Bootstrapped>, AccountError> {
        let made = crate::auth::bootstrap_admin(
            &self.store,
            &self.keyring,
            &self.config.bootstrap,
            &self.config.server.data_dir,
            self.now(),
        )
        .await?;
        if let Some(admin) = &made {
            self.audit.record(
                Actor::Cli,
                "user.create",
                format!("user:{}", admin.user.id),
                serde_json::json!({"role": "admin", "bootstrap": true}),
            )?;
            self.store.flush().await?;
        }
        Ok(made)
    }

    /// Starts the job workers and the retention scheduler; they stop when `shutdown` turns
    /// true ([`Background::stop`] waits for them).
    pub fn start_background(&self, shutdown: watch::Receiver<bool>) -> Background {
        crate::jobs::memory::configure(self.config.jobs.memory_budget_mb);
        let dispatch: crate::jobs::SharedHandler = Arc::new(JobDispatch {
            images: self.images.clone(),
            documents: self.documents.clone(),
            privacy: self.privacy.clone(),
        });
        let workers = crate::jobs::spawn_workers(&self.jobs, dispatch, shutdown.clone());
        let scheduler = crate::retention::spawn_scheduler(
            self.sweeper.clone(),
            self.config.retention.schedule.clone(),
            self.clock.clone(),
            shutdown.clone(),
        );
        let grants = crate::billing::grants::spawn_grants(
            self.billing.clone(),
            self.clock.clone(),
            shutdown.clone(),
        );
        let sender = crate::mail::send::spawn_sender(
            self.outbox.clone(),
            self.mail_transport.clone(),
            shutdown,
        );
        Background {
            workers,
            scheduler,
            grants,
            sender,
        }
    }

    /// Loads the models (see [`load_inference`]) for the server. Models that are missing with
    /// fetching off leave the studio up but not ready (`/readyz` says why); any other failure —
    /// a failed fetch, `inference.device = "cuda"` without a usable GPU — is an error.
    pub fn load_models(&self, progress: &dyn FetchProgress) -> Result<(), StartError> {
        match load_inference(&self.config, progress) {
            Ok(inference) => {
                let _ = self.inference.set(inference);
                Ok(())
            }
            Err(StartError::Models(e @ ModelError::Missing { .. }))
                if self.config.inference.device != Device::Cuda =>
            {
                tracing::warn!("{e}");
                *self.models_note.lock().expect("lock") = e.to_string();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Unix seconds now, by the app's clock.
    pub fn now(&self) -> i64 {
        unix(self.clock.now())
    }
}

/// Finds (or, when `models.auto_fetch` allows, fetches) the runtime and models, loads them
/// on the configured device and opens their sessions. Blocking.
pub fn load_inference(
    cfg: &Config,
    progress: &dyn FetchProgress,
) -> Result<Arc<Inference>, StartError> {
    let store = ModelStore::new(cfg.models_dir(), cfg.cache_dir())
        .with_system_cuda(cfg.models.cuda_libraries == crate::config::CudaLibraries::System);
    let installed = match store.installed(cfg.models.gpu) {
        Ok(m) => m,
        Err(ModelError::Missing { .. }) if cfg.models.auto_fetch => {
            tracing::info!(dir = %store.dir().display(), "fetching the runtime and models");
            store.fetch(cfg.models.gpu, progress)?
        }
        Err(e) => return Err(e.into()),
    };
    let inference = Inference::load(
        &ModelFiles::from(&installed),
        &InferenceOptions::from(&cfg.inference),
    )?;
    inference.segmenter()?;
    inference.text_detector()?;
    inference.text_recognizer()?;
    tracing::info!(provider = inference.provider(), models = ?inference.loaded(), "models loaded");
    Ok(inference)
}

/// Removes documents whose image is gone (an image delete interrupted half-way) and blob files
/// that no metadata points at (an upload interrupted before its commit), and reports
/// metadata whose file is missing — never silently.
pub fn reconcile(store: &Store, blobs: &BlobStore) -> Result<(), StartError> {
    let temps = blobs.remove_stale_temps()?;
    let mut known = HashSet::new();
    let (images, bad_images) = store.readable_images()?;
    let image_ids: HashSet<_> = images.iter().map(|i| i.id).collect();
    for img in images {
        known.extend(img.blobs());
    }
    let (documents, bad_documents) = store.readable_documents()?;
    let mut strays = 0;
    for doc in documents {
        if bad_images == 0 && !image_ids.contains(&doc.image_id) {
            // a crash inside an image delete (or a decomposition racing one) left a document
            // whose image is gone: it goes, and its blobs with the orphans below
            tracing::warn!(document = %doc.id, image = %doc.image_id, "reconciler: removing a document whose image is gone");
            store.delete_document(doc.id)?;
            strays += 1;
            continue;
        }
        known.extend(doc.blobs());
    }
    if strays > 0 {
        // durable before any of their blob files is unlinked
        store.flush_blocking()?;
    }
    let (exports, bad_exports) = store.readable_exports()?;
    for export in exports {
        known.insert(export.blob);
    }
    let unreadable = bad_images + bad_documents + bad_exports;
    let on_disk = blobs.list()?;
    let present: HashSet<_> = on_disk.iter().map(|(_, b)| *b).collect();
    let mut orphans = 0;
    if unreadable > 0 {
        // what an unreadable record points at is unknown: no file may go as an orphan
        tracing::error!(
            records = unreadable,
            "reconciler: some records cannot be read (logged above); no blob file is removed \
             as an orphan until they are repaired or deleted"
        );
    } else {
        for (owner, blob) in &on_disk {
            if !known.contains(blob) {
                blobs.delete(*owner, *blob)?;
                orphans += 1;
            }
        }
    }
    let missing: Vec<_> = known.difference(&present).collect();
    for b in &missing {
        tracing::error!(blob = %b, "reconciler: metadata points at a missing blob file");
    }
    if temps + orphans > 0 || !missing.is_empty() {
        tracing::warn!(
            temp_files = temps,
            orphans,
            missing = missing.len(),
            "reconciler: cleaned the blob directory"
        );
    }
    Ok(())
}
