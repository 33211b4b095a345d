//! The outbox: every notice to a member (email verification, password reset, …) is rendered
//! from a minijinja template under `web/templates/mail/` (compiled into the binary) and
//! queued durably in the store with the change that caused it; a sender in the background
//! ([`send`]) delivers it — by SMTP when `mail.smtp_url` is set, else as a `.eml` file under
//! `<data_dir>/outbox/` — retrying failures with backoff. No request ever waits for delivery.
//!
//! A template's first line is `Subject: …`, then a blank line, then the plain-text body. A
//! delivered message is removed from the store, so no copy of a mail (nor of the link it
//! carried) stays behind; one that failed [`MAX_ATTEMPTS`] times is kept, marked failed, for
//! `image-layered outbox list`.

pub mod send;

use std::sync::Arc;

use minijinja::Environment;
use tokio::sync::Notify;

use crate::clock::{unix, SharedClock};
use crate::config::MailConfig;
use crate::ids::MailId;
use crate::store::{OutboxMessage, Store, StoreError};

/// Deliveries tried before a message is marked failed.
pub const MAX_ATTEMPTS: u32 = 10;

/// The notices and their templates (name, source).
const TEMPLATES: &[(&str, &str)] = &[
    (
        "verify_email",
        include_str!("../../web/templates/mail/verify_email.txt"),
    ),
    (
        "password_reset",
        include_str!("../../web/templates/mail/password_reset.txt"),
    ),
    (
        "deletion_receipt",
        include_str!("../../web/templates/mail/deletion_receipt.txt"),
    ),
    (
        "inactivity_warning",
        include_str!("../../web/templates/mail/inactivity_warning.txt"),
    ),
    (
        "policy_change",
        include_str!("../../web/templates/mail/policy_change.txt"),
    ),
];

/// A notice to compose.
#[derive(Debug, Clone)]
pub enum Notice {
    /// Confirm an address (a new account's, or a changed one).
    VerifyEmail { name: String, token: String },
    /// Choose a new password.
    PasswordReset { name: String, token: String },
    /// The receipt of an account deletion (P5); times in RFC 3339.
    DeletionReceipt {
        name: String,
        receipt_id: String,
        requested_at: String,
        purge_by: String,
    },
    /// An idle free account will be deleted (P4); dates in RFC 3339.
    InactivityWarning {
        name: String,
        last_active: String,
        delete_on: String,
        inactive_days: u64,
    },
    /// A new privacy policy version (P16).
    PolicyChange {
        name: String,
        version: u32,
        effective_at: String,
        body: String,
    },
}

impl Notice {
    fn template(&self) -> &'static str {
        match self {
            Notice::VerifyEmail { .. } => "verify_email",
            Notice::PasswordReset { .. } => "password_reset",
            Notice::DeletionReceipt { .. } => "deletion_receipt",
            Notice::InactivityWarning { .. } => "inactivity_warning",
            Notice::PolicyChange { .. } => "policy_change",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("mail template {0}: {1}")]
    Template(&'static str, String),
}

impl MailError {
    pub fn code(&self) -> &'static str {
        match self {
            MailError::Store(e) => e.code(),
            MailError::Template(..) => "mail_template",
        }
    }
}

/// Queues notices and wakes the sender; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    clock: SharedClock,
    config: Arc<MailConfig>,
    /// How many hours the links in mails stay valid (`accounts.token_hours`).
    token_hours: u64,
    templates: Arc<Environment<'static>>,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(store: Store, clock: SharedClock, config: &MailConfig, token_hours: u64) -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("the built-in mail templates parse");
        }
        Self {
            store,
            clock,
            config: Arc::new(config.clone()),
            token_hours,
            templates: Arc::new(env),
            wake: Arc::new(Notify::new()),
        }
    }

    /// A link into the studio page carrying `token`.
    fn link(&self, path: &str, token: &str) -> String {
        format!(
            "{}{path}?token={token}",
            self.config.base_url.trim_end_matches('/')
        )
    }

    /// Renders a notice to `to`: (subject, body).
    pub fn compose(&self, to: &str, notice: &Notice) -> Result<(String, String), MailError> {
        let name = notice.template();
        let base = minijinja::context! {
            studio => "image-layered",
            email => to,
            hours => self.token_hours,
        };
        let ctx = match notice {
            Notice::VerifyEmail { name, token } => minijinja::context! {
                name => name, link => self.link("/verify", token), ..base
            },
            Notice::PasswordReset { name, token } => minijinja::context! {
                name => name, link => self.link("/reset", token), ..base
            },
            Notice::DeletionReceipt {
                name,
                receipt_id,
                requested_at,
                purge_by,
            } => minijinja::context! {
                name => name, receipt_id => receipt_id, requested_at => requested_at,
                purge_by => purge_by, ..base
            },
            Notice::InactivityWarning {
                name,
                last_active,
                delete_on,
                inactive_days,
            } => minijinja::context! {
                name => name, last_active => last_active, delete_on => delete_on,
                inactive_days => inactive_days, ..base
            },
            Notice::PolicyChange {
                name,
                version,
                effective_at,
                body,
            } => minijinja::context! {
                name => name, version => version, effective_at => effective_at, body => body,
                link => format!("{}/privacy", self.config.base_url.trim_end_matches('/')),
                ..base
            },
        };
        let text = self
            .templates
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| MailError::Template(name, e.to_string()))?;
        let (head, body) = text
            .split_once("\n\n")
            .ok_or_else(|| MailError::Template(name, "no blank line after the subject".into()))?;
        let subject = head.strip_prefix("Subject: ").ok_or_else(|| {
            MailError::Template(name, "the first line is not `Subject: …`".into())
        })?;
        Ok((
            subject.trim().to_string(),
            body.trim_end().to_string() + "\n",
        ))
    }

    /// Queues a notice (blocking; the caller flushes with the change that caused it, then
    /// calls [`notify`](Self::notify)).
    pub fn queue(&self, to: &str, notice: &Notice) -> Result<MailId, MailError> {
        let (subject, body) = self.compose(to, notice)?;
        let now = unix(self.clock.now());
        let m = OutboxMessage {
            id: MailId::new(),
            to: to.to_string(),
            notice: notice.template().to_string(),
            subject,
            body,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            failed: false,
        };
        self.store.put_outbox(&m)?;
        Ok(m.id)
    }

    /// Wakes the sender (after the queued message is flushed).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// The queue, oldest first: waiting and failed messages.
    pub fn list(&self) -> Result<Vec<OutboxMessage>, StoreError> {
        self.store.outbox()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn outbox() -> (tempfile::TempDir, Outbox) {
        let (dir, store) = crate::store::temp_store();
        let clock = ManualClock::new(time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(1));
        let config = MailConfig {
            base_url: "https://studio.example/".into(),
            ..MailConfig::default()
        };
        (dir, Outbox::new(store, Arc::new(clock), &config, 24))
    }

    #[test]
    fn notices_render_from_their_templates_with_a_link() {
        let (_d, o) = outbox();
        let (subject, body) = o
            .compose(
                "ann@example.com",
                &Notice::VerifyEmail {
                    name: "Ann".into(),
                    token: "t0k3n".into(),
                },
            )
            .unwrap();
        assert_eq!(subject, "Confirm your email address for image-layered");
        assert!(body.starts_with("Hello Ann,"), "{body}");
        assert!(
            body.contains("https://studio.example/verify?token=t0k3n"),
            "{body}"
        );
        assert!(body.contains("expires in 24 hours"), "{body}");
        let (subject, body) = o
            .compose(
                "ann@example.com",
                &Notice::PasswordReset {
                    name: "Ann <b>".into(),
                    token: "r".into(),
                },
            )
            .unwrap();
        assert!(subject.contains("Reset"), "{subject}");
        // plain text: nothing is HTML-escaped
        assert!(body.contains("Hello Ann <b>,"), "{body}");
        assert!(body.contains("/reset?token=r"), "{body}");
    }

    #[test]
    fn queued_messages_are_listed_in_order() {
        let (_d, o) = outbox();
        for token in ["a", "b"] {
            o.queue(
                "x@y.z",
                &Notice::PasswordReset {
                    name: "X".into(),
                    token: token.into(),
                },
            )
            .unwrap();
        }
        let list = o.list().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].body.contains("token=a") && list[1].body.contains("token=b"));
        assert!(list
            .iter()
            .all(|m| m.notice == "password_reset" && !m.failed));
    }
}
