//! One typed [`Config`] for the whole studio, and the rules for building it.
//!
//! Layering, lowest to highest: built-in defaults < a TOML file (`--config F`, else
//! `/etc/image-layered/config.toml` only when it exists) < environment variables
//! `IMAGE_LAYERED__SECTION__KEY` < a few CLI flags ([`Overrides`]). Invariants:
//! - every section and key of every layer exists in the defaults, or loading fails naming it
//!   ([`ConfigError::UnknownKey`]); a layer never adds keys;
//! - a loaded `Config` has passed [`Config::validate`]: addresses, paths, ranges and the cron
//!   schedule are parsed and checked once, here, so callers never re-check them;
//! - secrets ([`Secret`], and any string key named `*password*`/`*secret*`/`*token*`) never
//!   appear in `Debug` output, error messages or [`Config::redacted_toml`].

mod error;
mod load;
mod validate;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

pub use error::{ConfigError, Source};
pub use load::{Overrides, DEFAULT_CONFIG_PATH, ENV_PREFIX};

/// The merged, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub store: StoreConfig,
    pub crypto: CryptoConfig,
    pub uploads: UploadsConfig,
    pub jobs: JobsConfig,
    pub retention: RetentionConfig,
    pub auth: AuthConfig,
    pub bootstrap: BootstrapConfig,
    pub accounts: AccountsConfig,
    pub mail: MailConfig,
    pub privacy: PrivacyConfig,
    pub plans: PlansConfig,
    pub costs: CostsConfig,
    pub billing: BillingConfig,
    pub payments: PaymentsConfig,
    pub models: ModelsConfig,
    pub inference: InferenceConfig,
    pub log: LogConfig,
}

/// `[server]`: the HTTP listener and the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub request_timeout_secs: u64,
    pub header_read_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    /// Serve the studio page's files from this folder instead of the copies built into the
    /// binary (empty = built in); for working on the page.
    pub web_dir: PathBuf,
    /// Reverse proxies trusted to say where a request came from: a comma-separated list of
    /// IP addresses (empty = none). From them only, `X-Forwarded-Proto: https` makes the
    /// session cookie `Secure` (`__Host-`) and the last `X-Forwarded-For` address is the
    /// client that login throttling counts.
    pub trusted_proxies: String,
    /// `/metrics` answers the loopback interface, and anyone else sending
    /// `Authorization: Bearer <metrics_token>` (empty = loopback only).
    pub metrics_token: Secret,
    /// Exports, edits, undo and redo running at once over the studio (`crate::http::admission`).
    pub heavy_concurrency: usize,
    /// ... and per member (past it: `429`).
    pub heavy_per_member: usize,
    /// How long such a request waits for a free place before `503 busy`, in seconds.
    pub heavy_wait_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A connection whose client has not taken a written byte for this long is closed, in
    /// seconds (a stalled download gives its place back).
    pub write_timeout_secs: u64,
    /// Downloads (originals, layers, thumbnails, exports) each member has in flight; past
    /// it: `429 too_many_downloads`.
    pub downloads_per_member: usize,
}

/// `[tls]`: certificate and key (PEM) paths; both empty = plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[store]`: sled tuning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub cache_capacity_mb: u64,
    pub flush_every_ms: u64,
}

/// `[crypto]`: where the master key (KEK) lives; empty = `<data_dir>/keys/master.key`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoConfig {
    pub master_key_file: PathBuf,
}

/// `[uploads]`: limits applied before and while decoding an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadsConfig {
    pub max_bytes: u64,
    pub max_pixels: u64,
    pub max_side: u32,
    pub decode_concurrency: usize,
    /// How long an upload or import waits for a decode slot before `503 busy`; the body is
    /// read only once it holds one, so at most `decode_concurrency` bodies are in memory.
    pub slot_wait_secs: u64,
    /// Most bytes an imported PSD or OpenRaster file may decode to (layers × canvas × 4),
    /// checked from its header before anything is allocated.
    pub max_stack_bytes: u64,
}

/// `[jobs]`: the background job runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    pub workers: usize,
    pub max_attempts: u32,
    pub retry_backoff_ms: u64,
    /// How long a job's record (its kind, op and result) is kept after it was queued, in
    /// days; a job still queued or running then is kept until it ends.
    pub keep_days: u64,
    /// Memory shared out among decompositions, cutouts and exports by their image size
    /// (see `jobs::memory`), in MiB; 0 = half of the machine's memory.
    pub memory_budget_mb: u64,
}

/// `[retention]`: when the sweep runs and how long objects live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Parsed at load (`cron` syntax with seconds: `sec min hour dom month dow [year]`).
    #[serde(with = "cron_schedule")]
    pub schedule: cron::Schedule,
    pub temporary_hours: u64,
    pub free_days: u64,
    pub pro_days: u64,
    pub studio_days: u64,
    pub sweep_batch: usize,
}

/// `[auth]`: sessions and password hashing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub session_idle_minutes: u64,
    pub session_absolute_hours: u64,
    pub argon2_concurrency: usize,
    /// Failed sign-ins to one account before each further one locks it out for a while.
    pub login_failures_per_account: u32,
    /// Failed sign-ins from one client address before it is locked out the same way.
    pub login_failures_per_client: u32,
    /// The longest lockout: each failure past the allowance doubles it, up to this.
    pub login_lockout_max_secs: u64,
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Only operators add members (`user add`).
    Closed,
    /// Anyone holding an invite an admin made.
    Invite,
    /// Anyone.
    Open,
}

/// `[accounts]`: sign-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    pub registration: Registration,
    /// The age a new member confirms they have reached (P14).
    pub min_age: u32,
    /// How long a verification or password-reset link stays valid.
    pub token_hours: u64,
}

/// `[privacy]`: what the privacy promises leave to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// A deleted account's files are purged within this many days (P5).
    pub deletion_purge_days: u64,
    /// Free accounts without a sign-in or API use for this many days are deleted (P4).
    pub inactive_days: u64,
    /// The warning mail goes out this many days before.
    pub inactive_warning_days: u64,
    /// A data export's download link is valid this long, then the export is removed (P11).
    pub export_link_hours: u64,
    /// Usage statistics never show a group of fewer members than this (P10).
    pub min_group_size: u64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            deletion_purge_days: 30,
            inactive_days: 30,
            inactive_warning_days: 7,
            export_link_hours: 72,
            min_group_size: 5,
        }
    }
}

/// What one plan allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// Credits granted at the start of each monthly period (the first at sign-up).
    pub monthly_credits: u64,
    /// The largest upload in pixels (0 = `uploads.max_pixels`; the smaller applies).
    pub max_pixels: u64,
    /// Jobs a member may have queued or running at once.
    pub max_queued_jobs: u64,
    /// Bytes of originals a member may keep stored.
    pub max_stored_bytes: u64,
}

/// `[plans.free]`, `[plans.pro]`, `[plans.studio]`: credits and limits per plan (retention
/// stays in `retention.*_days`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlansConfig {
    pub free: PlanLimits,
    pub pro: PlanLimits,
    pub studio: PlanLimits,
}

impl Default for PlansConfig {
    fn default() -> Self {
        let plan = |monthly_credits, max_queued_jobs, gib: u64| PlanLimits {
            monthly_credits,
            max_pixels: 0,
            max_queued_jobs,
            max_stored_bytes: gib << 30,
        };
        Self {
            free: plan(50, 4, 1),
            pro: plan(500, 16, 20),
            studio: plan(2000, 64, 100),
        }
    }
}

/// `[costs]`: credits per job of each kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostsConfig {
    pub cutout: u64,
    pub decompose: u64,
    pub split: u64,
    pub inpaint: u64,
}

impl Default for CostsConfig {
    fn default() -> Self {
        Self {
            cutout: 1,
            decompose: 5,
            split: 2,
            inpaint: 1,
        }
    }
}

/// `[billing]`: who pays and when credits are granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingConfig {
    /// Charge admins for their jobs too (off: their jobs are in the ledger at zero cost).
    pub charge_admins: bool,
    /// When the monthly grants are checked (`cron` with seconds); each member is granted at
    /// the start of their own period, once.
    #[serde(with = "cron_schedule")]
    pub grant_schedule: cron::Schedule,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            charge_admins: false,
            grant_schedule: "0 5 * * * *".parse().expect("the default schedule parses"),
        }
    }
}

/// `[payments]`: the hosted checkout provider's webhook.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    /// The signing secret of the webhook endpoint (empty = webhooks refused).
    pub webhook_secret: Secret,
}

/// `[mail]`: the outbox's delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// `smtps://user:pass@host:465` (implicit TLS), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtp://host:25`; empty = write each message as a `.eml` file under
    /// `<data_dir>/outbox/`.
    pub smtp_url: Secret,
    /// The sender, e.g. `Studio <studio@example.com>`.
    pub from: String,
    /// The studio's address as members reach it; links in mails start with it.
    pub base_url: String,
}

/// `[bootstrap]`: the first admin account, created on first start with no users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    pub admin_email: String,
    /// Empty = generate a one-time password and print it.
    pub admin_password: Secret,
}

/// `[models]`: where the ONNX Runtime and the models are installed, and where fetched
/// packages are cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Empty = `<data_dir>/models`.
    pub dir: PathBuf,
    /// Empty = `$XDG_CACHE_HOME/image-layered`, else `~/.cache/image-layered`.
    pub cache_dir: PathBuf,
    /// `serve` fetches what is missing on first start.
    pub auto_fetch: bool,
    /// Fetch the CUDA build of the runtime (`onnxruntime-gpu`) instead of the CPU one.
    pub gpu: bool,
    /// Where the CUDA and cuDNN libraries of the GPU build come from.
    pub cuda_libraries: CudaLibraries,
}

/// `models.cuda_libraries`: fetched with the GPU runtime (the pinned `nvidia-*` wheels, about
/// 1 GB) or left to the system (a CUDA installation, or a Python environment's `nvidia-*`
/// packages on `LD_LIBRARY_PATH`), where the dynamic loader finds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CudaLibraries {
    #[default]
    Fetched,
    System,
}

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CUDA when the runtime and a GPU are there, else CPU (the choice is logged).
    #[default]
    Auto,
    Cpu,
    /// CUDA or a start-up error naming the cause; never a silent CPU fallback.
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            other => Err(format!("unknown device {other:?}: use auto, cpu or cuda")),
        }
    }
}

/// `[inference]`: execution provider, threads and concurrency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceConfig {
    pub device: Device,
    /// Intra-op threads per session; 0 = ONNX Runtime's default (one per physical core).
    pub intra_threads: usize,
    /// Inferences running at once per device.
    pub concurrency: usize,
}

/// `[log]`: a `tracing_subscriber::EnvFilter` directive string, checked at load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
}

/// A secret string: `Debug` never shows it, and its memory is zeroed on drop.
///
/// It serializes as the real value (needed for the internal merge round trip); printing
/// goes through [`Config::redacted_toml`], which redacts it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value; use only where the secret is consumed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(\"\")")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// What [`Config::redacted_toml`] shows instead of a non-empty secret.
pub const REDACTED: &str = "<redacted>";

/// Whether a key holds a secret by its name (`*password*`, `*secret*`, `*token*`).
pub(crate) fn is_secret_key(key: &str) -> bool {
    let key = key.rsplit('.').next().unwrap_or(key);
    ["password", "secret", "token"]
        .iter()
        .any(|word| key.contains(word))
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            request_timeout_secs: 60,
            header_read_timeout_secs: 10,
            shutdown_grace_secs: 30,
            web_dir: PathBuf::new(),
            trusted_proxies: String::new(),
            metrics_token: Secret::default(),
            heavy_concurrency: 4,
            heavy_per_member: 2,
            heavy_wait_secs: 10,
            max_connections: 1024,
            write_timeout_secs: 30,
            downloads_per_member: 8,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_capacity_mb: 128,
            flush_every_ms: 200,
        }
    }
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            max_pixels: 64_000_000,
            max_side: 30_000,
            decode_concurrency: 2,
            slot_wait_secs: 10,
            max_stack_bytes: 1 << 30,
        }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            max_attempts: 3,
            retry_backoff_ms: 500,
            keep_days: 30,
            memory_budget_mb: 0,
        }
    }
}

/// The default sweep schedule: every hour, on the hour.
const DEFAULT_SCHEDULE: &str = "0 0 * * * *";

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            schedule: DEFAULT_SCHEDULE
                .parse()
                .expect("the built-in cron schedule parses"),
            temporary_hours: 48,
            free_days: 30,
            pro_days: 60,
            studio_days: 90,
            sweep_batch: 500,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_idle_minutes: 720,
            session_absolute_hours: 168,
            argon2_concurrency: 2,
            login_failures_per_account: 5,
            login_failures_per_client: 20,
            login_lockout_max_secs: 900,
        }
    }
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            registration: Registration::Invite,
            min_age: 13,
            token_hours: 24,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: Secret::default(),
            from: "image-layered <noreply@localhost>".into(),
            base_url: "http://127.0.0.1:8080".into(),
        }
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            admin_email: "admin@localhost".into(),
            admin_password: Secret::default(),
        }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            cache_dir: PathBuf::new(),
            auto_fetch: true,
            gpu: false,
            cuda_libraries: CudaLibraries::Fetched,
        }
    }
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            device: Device::Auto,
            intra_threads: 0,
            concurrency: 1,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

impl Config {
    /// The models directory: `models.dir`, or `<data_dir>/models`.
    pub fn models_dir(&self) -> PathBuf {
        if self.models.dir.as_os_str().is_empty() {
            self.server.data_dir.join("models")
        } else {
            self.models.dir.clone()
        }
    }

    /// The package cache: `models.cache_dir`, else `$XDG_CACHE_HOME/image-layered`, else
    /// `~/.cache/image-layered`, else `<data_dir>/cache`.
    pub fn cache_dir(&self) -> PathBuf {
        if !self.models.cache_dir.as_os_str().is_empty() {
            return self.models.cache_dir.clone();
        }
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        env("XDG_CACHE_HOME")
            .or_else(|| env("HOME").map(|h| h.join(".cache")))
            .map(|c| c.join("image-layered"))
            .unwrap_or_else(|| self.server.data_dir.join("cache"))
    }

    /// The master key file: `crypto.master_key_file`, or `<data_dir>/keys/master.key`.
    pub fn master_key_path(&self) -> PathBuf {
        if self.crypto.master_key_file.as_os_str().is_empty() {
            self.server.data_dir.join("keys").join("master.key")
        } else {
            self.crypto.master_key_file.clone()
        }
    }

    /// The merged configuration as TOML, every non-empty secret shown as `"<redacted>"`.
    pub fn redacted_toml(&self) -> String {
        let mut table = match toml::Table::try_from(self) {
            Ok(table) => table,
            Err(err) => return format!("# configuration cannot be shown as TOML: {err}\n"),
        };
        for (_, section) in table.iter_mut() {
            if let toml::Value::Table(section) = section {
                for (key, value) in section.iter_mut() {
                    let secret_set = matches!(value, toml::Value::String(s) if !s.is_empty());
                    if secret_set && is_secret_key(key) {
                        *value = toml::Value::String(REDACTED.into());
                    }
                }
            }
        }
        // Back through the struct so the output keeps the documented section and key order.
        let rendered = match table.clone().try_into::<Config>() {
            Ok(redacted) => toml::to_string(&redacted),
            Err(_) => toml::to_string(&table),
        };
        rendered.unwrap_or_else(|err| format!("# configuration cannot be shown as TOML: {err}\n"))
    }
}

impl ServerConfig {
    /// `trusted_proxies` parsed (checked at load, so a bad entry never gets here).
    pub fn trusted_proxies(&self) -> Result<Vec<std::net::IpAddr>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().map_err(|_| format!("{p:?} is not an IP address")))
            .collect()
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs)
    }
}

impl TlsConfig {
    /// `(cert, key)` when TLS is configured (validation guarantees both or neither).
    pub fn paths(&self) -> Option<(&Path, &Path)> {
        if self.cert.as_os_str().is_empty() || self.key.as_os_str().is_empty() {
            None
        } else {
            Some((&self.cert, &self.key))
        }
    }
}

impl StoreConfig {
    pub fn cache_capacity_bytes(&self) -> u64 {
        self.cache_capacity_mb.saturating_mul(1024 * 1024)
    }

    pub fn flush_every(&self) -> Duration {
        Duration::from_millis(self.flush_every_ms)
    }
}

impl JobsConfig {
    pub fn retry_backoff(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_ms)
    }
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

impl RetentionConfig {
    /// How long an anonymous / temporary object lives.
    pub fn temporary_ttl(&self) -> Duration {
        Duration::from_secs(self.temporary_hours.saturating_mul(HOUR))
    }

    pub fn free_ttl(&self) -> Duration {
        Duration::from_secs(self.free_days.saturating_mul(DAY))
    }

    pub fn pro_ttl(&self) -> Duration {
        Duration::from_secs(self.pro_days.saturating_mul(DAY))
    }

    pub fn studio_ttl(&self) -> Duration {
        Duration::from_secs(self.studio_days.saturating_mul(DAY))
    }
}

impl AuthConfig {
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_minutes.saturating_mul(60))
    }

    pub fn session_absolute(&self) -> Duration {
        Duration::from_secs(self.session_absolute_hours.saturating_mul(HOUR))
    }
}

/// `cron::Schedule` as its source string (the crate's `serde` feature is not enabled).
mod cron_schedule {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        schedule: &cron::Schedule,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(schedule.source())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<cron::Schedule, D::Error> {
        let source = String::deserialize(deserializer)?;
        let fields = source.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(serde::de::Error::custom(format!("{fields} fields given")));
        }
        source.parse().map_err(|err: cron::error::Error| {
            // The crate echoes the expression and a caret before its message; keep the message.
            let text = err.to_string();
            let message = text.rsplit_once('^').map_or(text.as_str(), |(_, m)| m);
            serde::de::Error::custom(message.split_whitespace().collect::<Vec<_>>().join(" "))
        })
    }
}
