//! The store: the only code that touches sled. It holds metadata only (never image bytes —
//! large sled values are not fsynced, RELIABILITY.md sled#1077), in typed trees with
//! big-endian keys, behind typed methods grouped by resource (`users` with tokens, consents,
//! deletions and policy versions; `images`, `documents`, `jobs` with the credit `ledger`,
//! `exports`, `ttl`, `audit`, `outbox`).
//! Invariants: the on-disk schema version is checked at open (a newer one refuses to open);
//! changes spanning several trees run in one sled transaction; callers `flush()` before
//! telling a client a write is done; sled's cache and flush interval are set explicitly.

mod audit;
mod codec;
mod documents;
pub mod dump;
mod exports;
mod idempotency;
mod images;
mod jobs;
mod ledger;
mod migrate;
mod outbox;
mod records;
mod sealing;
mod ttl;
mod users;

use std::path::{Path, PathBuf};

use crate::config::StoreConfig;

pub use audit::AuditHead;
pub use exports::export_key;
pub use idempotency::IdempotencyRecord;
pub use ledger::{Posting, ReserveError};
pub use records::{
    ApiKeyRecord, AuditEntry, ConsentChange, ConsentKind, ConsentRecord, DeletionRecord, DocState,
    DocumentMode, DocumentRecord, ExportRecord, HistoryOp, ImageRecord, ImageState, JobError,
    JobKind, JobRecord, JobState, LayerRecord, LedgerEntry, LedgerReason, LogEntry, OutboxMessage,
    Plan, PolicyRecord, Role, SessionRecord, TokenKind, TokenRecord, UserRecord,
};
pub use ttl::{TtlEntry, TtlKind};

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {0} is in use by another image-layered process (is `serve` running?); stop it and try again")]
    Locked(PathBuf),
    #[error("the store at {path} has schema version {found}, newer than this build supports ({supported}); upgrade image-layered")]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in tree {tree}: {reason}")]
    Corrupt { tree: &'static str, reason: String },
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Locked(_) => "store_locked",
            StoreError::SchemaTooNew { .. } => "store_schema_too_new",
            StoreError::Sled(_) => "store_error",
            StoreError::Corrupt { .. } => "store_corrupt",
            StoreError::Conflict(_) => "conflict",
        }
    }
}

impl<E: std::fmt::Display> From<sled::transaction::TransactionError<E>> for StoreError {
    fn from(e: sled::transaction::TransactionError<E>) -> Self {
        match e {
            sled::transaction::TransactionError::Storage(s) => StoreError::Sled(s),
            sled::transaction::TransactionError::Abort(a) => StoreError::Conflict(a.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The metadata store. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    meta: sled::Tree,
    users: sled::Tree,
    users_by_email: sled::Tree,
    sessions: sled::Tree,
    api_keys: sled::Tree,
    data_keys: sled::Tree,
    images: sled::Tree,
    images_by_owner: sled::Tree,
    jobs: sled::Tree,
    jobs_queued: sled::Tree,
    ttl: sled::Tree,
    ttl_by_object: sled::Tree,
    documents: sled::Tree,
    documents_by_image: sled::Tree,
    document_log: sled::Tree,
    document_states: sled::Tree,
    audit: sled::Tree,
    outbox: sled::Tree,
    tokens: sled::Tree,
    consents: sled::Tree,
    deletions: sled::Tree,
    policies: sled::Tree,
    exports: sled::Tree,
    ledger: sled::Tree,
    balances: sled::Tree,
    grants: sled::Tree,
    payment_events: sled::Tree,
    idempotency: sled::Tree,
    /// Flushes share it, transactions take it alone (see [`Store::atomically`]).
    gate: std::sync::Arc<std::sync::RwLock<()>>,
    /// The master keyring, once attached: it opens members' sealed fields.
    keyring: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<crate::blobs::Keyring>>>,
}

pub(crate) const SCHEMA_KEY: &[u8] = b"schema_version";

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path, cfg: &StoreConfig) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cfg.cache_capacity_bytes())
            .flush_every_ms(Some(cfg.flush_every_ms))
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("could not acquire lock") =>
                {
                    StoreError::Locked(dir.to_path_buf())
                }
                other => StoreError::Sled(other),
            })?;
        let t = |name: &str| db.open_tree(name);
        let store = Store {
            path: dir.to_path_buf(),
            meta: t("meta")?,
            users: t("users")?,
            users_by_email: t("users_by_email")?,
            sessions: t("sessions")?,
            api_keys: t("api_keys")?,
            data_keys: t("data_keys")?,
            images: t("images")?,
            images_by_owner: t("images_by_owner")?,
            jobs: t("jobs")?,
            jobs_queued: t("jobs_queued")?,
            ttl: t("ttl")?,
            ttl_by_object: t("ttl_by_object")?,
            documents: t("documents")?,
            documents_by_image: t("documents_by_image")?,
            document_log: t("document_log")?,
            document_states: t("document_states")?,
            audit: t("audit")?,
            outbox: t("outbox")?,
            tokens: t("tokens")?,
            consents: t("consents")?,
            deletions: t("deletions")?,
            policies: t("policies")?,
            exports: t("exports")?,
            ledger: t("ledger")?,
            balances: t("balances")?,
            grants: t("grants")?,
            payment_events: t("payment_events")?,
            idempotency: t("idempotency")?,
            keyring: Default::default(),
            gate: Default::default(),
            db,
        };
        store.check_schema()?;
        Ok(store)
    }

    fn check_schema(&self) -> Result<()> {
        match self.meta.get(SCHEMA_KEY)? {
            None => {
                self.meta
                    .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                self.db.flush()?;
                Ok(())
            }
            Some(v) => {
                let found = codec::u32_from(&v).ok_or_else(|| StoreError::Corrupt {
                    tree: "meta",
                    reason: "schema version is not 4 bytes".into(),
                })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew {
                        path: self.path.clone(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Ok(())
            }
        }
    }

    /// Makes every write so far durable. Await this before acknowledging a write.
    pub async fn flush(&self) -> Result<()> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.flush_blocking())
            .await
            .map_err(|e| StoreError::Sled(sled::Error::ReportableBug(e.to_string())))?
    }

    /// Blocking flush, for the command line and blocking threads.
    pub fn flush_blocking(&self) -> Result<()> {
        let _gate = self.gate.read().unwrap_or_else(|e| e.into_inner());
        self.db.flush()?;
        Ok(())
    }

    /// Runs a sled transaction over `trees`, never while a flush is waiting. (sled's flush
    /// holds its global read lock while it waits for the log to be written, and a
    /// transaction's commit queues for the write lock, which stops the log writer from
    /// taking the read lock it needs: flushes and commits on different threads deadlock.
    /// Our own gate lets flushes run together and commits one at a time, never both.)
    pub(crate) fn atomically<T, F, A, E>(
        &self,
        trees: T,
        f: F,
    ) -> std::result::Result<A, sled::transaction::TransactionError<E>>
    where
        T: sled::Transactional<E>,
        F: Fn(&T::View) -> sled::transaction::ConflictableTransactionResult<A, E>,
    {
        let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
        trees.transaction(f)
    }

    /// Decodes every value of `tree`; a value that does not decode is logged (tree and key,
    /// never its content) and counted instead of failing the scan. Storage errors still fail.
    fn readable<T>(
        &self,
        tree: &sled::Tree,
        name: &str,
        decode: impl Fn(&[u8]) -> Result<T>,
    ) -> Result<(Vec<T>, usize)> {
        let (mut ok, mut bad) = (Vec::new(), 0);
        for kv in tree.iter() {
            let (k, v) = kv?;
            match decode(&v) {
                Ok(rec) => ok.push(rec),
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!(tree = name, key = %hex::encode(&k), "unreadable record: {e}");
                    bad += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok((ok, bad))
    }

    /// Bytes sled uses on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// A small opaque value in the meta tree (the master key check value, for one).
    pub fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    pub fn meta_set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.meta.insert(key.as_bytes(), value)?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db"), &StoreConfig::default()).expect("open");
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_schema_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let s = Store::open(&path, &StoreConfig::default()).unwrap();
            s.meta.insert(SCHEMA_KEY, &99u32.to_be_bytes()).unwrap();
            s.flush_blocking().unwrap();
        }
        let err = Store::open(&path, &StoreConfig::default()).err().unwrap();
        assert_eq!(err.code(), "store_schema_too_new");
        assert!(err.to_string().contains("99"));
    }
}
