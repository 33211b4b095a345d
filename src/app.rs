//! Builds the studio from a [`Config`] and a clock: opens the store (schema-checked), the
//! master key (checked against the store, so a wrong key fails at start-up), the blob
//! directory (reconciled against the metadata), the job queue (interrupted jobs re-queued),
//! and the services on top; then runs the HTTP server, the workers and the retention
//! scheduler until shutdown. Tests build it on port 0 with a temp data dir and a manual clock.

use std::collections::HashMap;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::auth::{Auth, SessionPolicy};
use crate::blobs::{BlobError, BlobStore, Keyring};
use crate::clock::{unix, SharedClock};
use crate::config::Config;
use crate::config::Device;
use crate::engine::DecodeLimits;
use crate::http::metrics::Metrics;
use crate::images::{CutoutJob, ImageService, InferenceSlot, RetentionPeriods, ThumbnailJob};
use crate::inference::{Inference, InferenceError, InferenceOptions, ModelFiles};
use crate::jobs::{JobHandler, JobQueue, JobsConfig};
use crate::models::{FetchProgress, ModelError, ModelStore};
use crate::retention::Sweeper;
use crate::store::{Store, StoreConfig, StoreError};

const KEK_CHECK: &str = "kek_check";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("master key {path}: {source}")]
    Keys { path: PathBuf, source: BlobError },
    #[error("the master key at {0} does not belong to this data dir (wrong key or wrong --data-dir); start with the key the store was created with")]
    WrongMasterKey(PathBuf),
    #[error("the data dir has accounts but its master key {0} is missing; restore the key file (without it the stored images cannot be read)")]
    MissingMasterKey(PathBuf),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("there is no image-layered store in {0}; check --data-dir (or start `serve` once to create one)")]
    NoStore(PathBuf),
    #[error(transparent)]
    Models(#[from] ModelError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
    #[error("TLS: {0}")]
    Tls(String),
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
            StartError::Keys { .. } | StartError::MissingMasterKey(_) => "master_key_unusable",
            StartError::WrongMasterKey(_) => "wrong_master_key",
            StartError::Blob(e) => e.code(),
            StartError::Tls(_) => "tls_config",
            StartError::NoStore(_) => "no_store",
            StartError::Models(e) => e.code(),
            StartError::Inference(e) => e.code(),
            StartError::DataDir { .. } => "data_dir",
        }
    }
}

/// Everything the handlers, jobs and commands share.
pub struct App {
    pub config: Config,
    pub clock: SharedClock,
    pub store: Store,
    pub blobs: Arc<BlobStore>,
    pub keyring: Arc<Keyring>,
    pub auth: Auth,
    pub images: ImageService,
    pub jobs: JobQueue,
    pub sweeper: Sweeper,
    pub metrics: Metrics,
    pub tls: bool,
    pub tls_acceptor: Option<TlsAcceptor>,
    /// Turns true when shutdown begins; long-lived responses (event streams) end on it.
    pub stopping: watch::Sender<bool>,
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
    Ok(Store::open(
        &dir.join("db"),
        &StoreConfig {
            cache_capacity_bytes: config.store.cache_capacity_bytes(),
            flush_every_ms: config.store.flush_every_ms,
        },
    )?)
}

#[cfg(unix)]
fn restrict_dir(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict_dir(_dir: &std::path::Path) {}

/// Opens the master key for `store`: created with the store, verified against it afterwards.
/// An interrupted rotation is completed here.
pub fn open_keyring(config: &Config, store: &Store) -> Result<Keyring, StartError> {
    let path = config.master_key_path();
    let keys_err = |source| StartError::Keys {
        path: path.clone(),
        source,
    };
    let check = store.meta_get(KEK_CHECK)?;
    let fresh = check.is_none() && store.count_users() == 0;
    if !fresh && !path.exists() {
        return Err(StartError::MissingMasterKey(path));
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
        restrict_dir(parent);
    }
    let mut keyring = Keyring::open(&path, fresh).map_err(keys_err)?;
    match check {
        Some(v) if v.len() > 4 => {
            let generation = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            match keyring.verify_check(generation, &v[4..]) {
                Ok(()) => {}
                Err(BlobError::WrongMasterKey | BlobError::UnknownGeneration(_)) => {
                    return Err(StartError::WrongMasterKey(path))
                }
                Err(e) => return Err(keys_err(e)),
            }
        }
        _ => write_check(store, &keyring)?,
    }
    if keyring.pending_rotation() {
        tracing::warn!("completing an interrupted master key rotation");
        rotate_keys(store, &mut keyring).map_err(keys_err)?;
    }
    Ok(keyring)
}

fn write_check(store: &Store, keyring: &Keyring) -> Result<(), StoreError> {
    let (generation, bytes) = keyring.check_value();
    let mut v = generation.to_be_bytes().to_vec();
    v.extend_from_slice(&bytes);
    store.meta_set(KEK_CHECK, &v)?;
    store.flush_blocking()
}

/// Re-wraps every live data key under a new master-key generation, then retires the old key
/// file. Crash-safe: the new key file is durable before any data key uses it, and the old one
/// is only replaced after every re-wrapped key is flushed. Returns (old, new, keys re-wrapped).
pub fn rotate_keys(store: &Store, keyring: &mut Keyring) -> Result<(u32, u32, usize), BlobError> {
    let store_err = |e: StoreError| BlobError::Io(std::io::Error::other(e.to_string()));
    let old = keyring.current_generation();
    let new = keyring.begin_rotation()?;
    let old = if old == new { new - 1 } else { old };
    let keys = store.all_data_keys().map_err(store_err)?;
    let mut rewrapped = Vec::with_capacity(keys.len());
    for (owner, wrapped) in &keys {
        let dk = keyring.unwrap(wrapped, *owner)?;
        rewrapped.push((*owner, keyring.wrap(&dk, *owner)));
    }
    store.replace_data_keys(&rewrapped).map_err(store_err)?;
    write_check(store, keyring).map_err(store_err)?;
    store.flush_blocking().map_err(store_err)?;
    keyring.finish_rotation()?;
    Ok((old, new, rewrapped.len()))
}

impl App {
    /// Opens everything; nothing is served yet.
    pub fn open(config: Config, clock: SharedClock) -> Result<Arc<App>, StartError> {
        let store = open_store(&config)?;
        let keyring = Arc::new(open_keyring(&config, &store)?);
        let blobs = Arc::new(BlobStore::open(&config.server.data_dir.join("blobs"))?);
        let tls_acceptor = match config.tls.paths() {
            Some((cert, key)) => Some(crate::http::load_tls(cert, key).map_err(StartError::Tls)?),
            None => None,
        };
        reconcile(&store, &blobs)?;
        let jobs = JobQueue::new(
            store.clone(),
            clock.clone(),
            JobsConfig {
                workers: config.jobs.workers,
                max_attempts: config.jobs.max_attempts,
                retry_backoff_ms: config.jobs.retry_backoff_ms,
            },
        );
        jobs.recover()?;
        let r = &config.retention;
        let periods = RetentionPeriods {
            temporary_secs: r.temporary_hours as i64 * 3600,
            free_secs: r.free_days as i64 * 86400,
            pro_secs: r.pro_days as i64 * 86400,
            studio_secs: r.studio_days as i64 * 86400,
        };
        let u = &config.uploads;
        let inference = InferenceSlot::default();
        let images = ImageService::new(
            store.clone(),
            blobs.clone(),
            keyring.clone(),
            clock.clone(),
            jobs.clone(),
            DecodeLimits {
                max_pixels: u.max_pixels,
                max_side: u.max_side,
                ..DecodeLimits::default()
            },
            periods,
            u.decode_concurrency,
            inference.clone(),
        );
        let auth = Auth::new(
            store.clone(),
            clock.clone(),
            SessionPolicy {
                idle_secs: config.auth.session_idle_minutes as i64 * 60,
                absolute_secs: config.auth.session_absolute_hours as i64 * 3600,
            },
            config.auth.argon2_concurrency,
        );
        let sweeper = Sweeper::new(store.clone(), images.clone(), r.sweep_batch);
        Ok(Arc::new(App {
            tls: tls_acceptor.is_some(),
            tls_acceptor,
            config,
            clock,
            store,
            blobs,
            keyring,
            auth,
            images,
            jobs,
            sweeper,
            metrics: Metrics::default(),
            stopping: watch::channel(false).0,
            inference,
            models_note: std::sync::Mutex::new("not loaded yet".into()),
        }))
    }

    /// The job handlers by kind.
    pub fn handlers(&self) -> crate::jobs::Handlers {
        let mut h: HashMap<&'static str, Arc<dyn JobHandler>> = HashMap::new();
        h.insert("thumbnail", Arc::new(ThumbnailJob(self.images.clone())));
        h.insert("cutout", Arc::new(CutoutJob(self.images.clone())));
        h.insert(
            "decompose",
            Arc::new(crate::images::decompose::DecomposeJob(self.images.clone())),
        );
        h.insert(
            "edit",
            Arc::new(crate::images::edit::EditJob(self.images.clone())),
        );
        Arc::new(h)
    }

    /// Runs workers, the retention scheduler and the HTTP server until `shutdown` is true;
    /// then drains requests and lets workers finish their current job.
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let workers = crate::jobs::spawn_workers(&self.jobs, self.handlers(), shutdown.clone());
        let scheduler = crate::retention::spawn_scheduler(
            self.sweeper.clone(),
            self.config.retention.schedule.clone(),
            self.clock.clone(),
            shutdown.clone(),
        );
        let mut signal = shutdown.clone();
        let app = self.clone();
        tokio::spawn(async move {
            while !*signal.borrow() {
                if signal.changed().await.is_err() {
                    break;
                }
            }
            app.stopping.send_replace(true);
        });
        crate::http::serve(self.clone(), listener, shutdown).await;
        // Workers finish their current job within the grace period; a job still running after
        // it is abandoned here and runs again at the next start (running is memory-only).
        let grace = self.config.server.shutdown_grace();
        let drained = tokio::time::timeout(grace, async {
            for w in workers {
                let _ = w.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("a job was still running at the end of the grace period; it will run again at the next start");
        }
        let _ = scheduler.await;
        if let Err(e) = self.store.flush().await {
            tracing::error!("final flush failed: {e}");
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
    let store = ModelStore::new(cfg.models_dir(), cfg.cache_dir());
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

/// Removes blob files that no metadata points at (an upload interrupted before its commit)
/// and reports metadata whose file is missing — never silently.
pub fn reconcile(store: &Store, blobs: &BlobStore) -> Result<(), StartError> {
    let temps = blobs.remove_stale_temps()?;
    let mut known = HashSet::new();
    for img in store.all_images()? {
        known.extend(img.blobs());
    }
    for doc in store.all_documents()? {
        known.extend(doc.blobs());
    }
    let on_disk = blobs.list()?;
    let present: HashSet<_> = on_disk.iter().map(|(_, b)| *b).collect();
    let mut orphans = 0;
    for (owner, blob) in &on_disk {
        if !known.contains(blob) {
            blobs.delete(*owner, *blob)?;
            orphans += 1;
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
