//! Delivering the outbox: a background sender takes every due message, builds it as an RFC
//! 5322 mail (lettre) and either hands it to the SMTP server of `mail.smtp_url` (implicit TLS
//! with `smtps://`, STARTTLS with `smtp://…?tls=required`) or, with no SMTP server
//! configured, writes it as `<data_dir>/outbox/<id>.eml` (mode 0600; temp file, fsync,
//! rename, so a reader never sees half a mail). A delivered message leaves the store; a
//! failure is retried after 5 s, 10 s, 20 s … (at most an hour apart) and marked failed
//! after [`MAX_ATTEMPTS`](super::MAX_ATTEMPTS); an address that cannot be parsed fails at once.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Outbox, MAX_ATTEMPTS};
use crate::clock::unix;
use crate::config::MailConfig;
use crate::store::{OutboxMessage, StoreError};

const IDLE_POLL: Duration = Duration::from_secs(1);
const FIRST_RETRY_SECS: i64 = 5;
const MAX_RETRY_SECS: i64 = 3600;

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    /// `.eml` files in this folder.
    Spool(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Transport {
    /// The transport `[mail]` names: SMTP when `smtp_url` is set, else the spool under the
    /// data dir. The error says what is wrong with the URL (never the URL: it may hold a
    /// password).
    pub fn from_config(config: &MailConfig, data_dir: &Path) -> Result<Transport, String> {
        let url = config.smtp_url.expose();
        if url.is_empty() {
            return Ok(Transport::Spool(data_dir.join("outbox")));
        }
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map(|b| Transport::Smtp(b.build()))
            .map_err(|e| format!("mail.smtp_url cannot be used: {e}"))
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Spool(dir) => format!("spool {}", dir.display()),
            Transport::Smtp(_) => "SMTP".into(),
        }
    }

    async fn deliver(&self, message: Message, id: &str) -> Result<(), String> {
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                // lettre's errors name the server, never the credentials
                format!("SMTP: {e}")
            }),
            Transport::Spool(dir) => {
                let (dir, id, bytes) = (dir.clone(), id.to_string(), message.formatted());
                tokio::task::spawn_blocking(move || spool(&dir, &id, &bytes))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("spool: {e}"))
            }
        }
    }
}

/// Writes one `.eml` file atomically, readable by its owner only.
fn spool(dir: &Path, id: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::blobs::restrict_dir(dir);
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, dir.join(format!("{id}.eml")))) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Why a message cannot be built: permanent (retrying cannot fix an address).
fn build(config: &MailConfig, m: &OutboxMessage) -> Result<Message, String> {
    let from: Mailbox = config.from.parse().map_err(|e| format!("mail.from: {e}"))?;
    let to: Mailbox = m.to.parse().map_err(|e| format!("recipient: {e}"))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(m.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| e.to_string())
}

impl Outbox {
    /// Delivers every message that is due; returns how many were delivered.
    pub async fn deliver_due(&self, transport: &Transport) -> Result<usize, StoreError> {
        let now = unix(self.clock.now());
        let mut delivered = 0;
        for mut m in self.store.outbox()? {
            if m.failed || m.next_attempt_at > now {
                continue;
            }
            let outcome = match build(&self.config, &m) {
                Ok(message) => transport
                    .deliver(message, &m.id.to_string())
                    .await
                    .map_err(|e| (e, false)),
                Err(e) => Err((e, true)),
            };
            match outcome {
                Ok(()) => {
                    self.store.delete_outbox(m.id)?;
                    delivered += 1;
                    tracing::info!(mail = %m.id, notice = %m.notice, "mail delivered");
                }
                Err((error, permanent)) => {
                    m.attempts += 1;
                    m.failed = permanent || m.attempts >= MAX_ATTEMPTS;
                    let backoff = FIRST_RETRY_SECS
                        .saturating_mul(1 << (m.attempts - 1).min(20))
                        .min(MAX_RETRY_SECS);
                    m.next_attempt_at = now + backoff;
                    tracing::warn!(mail = %m.id, attempt = m.attempts, failed = m.failed, "mail not delivered: {error}");
                    m.last_error = Some(error);
                    self.store.put_outbox(&m)?;
                }
            }
        }
        self.store.flush().await?;
        Ok(delivered)
    }
}

/// Runs the sender until `shutdown` turns true: delivers what is due whenever a message is
/// queued, and polls for retries.
pub fn spawn_sender(
    outbox: Outbox,
    transport: Transport,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = outbox.deliver_due(&transport).await {
                tracing::error!("outbox: {e}");
            }
            tokio::select! {
                _ = outbox.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    })
}
