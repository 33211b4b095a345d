//! Rectification (P12): a member corrects their name at once; a new email address is
//! confirmed before it applies — the change is kept as `pending_email`, a link goes to the
//! new address, and only that link moves the account (and its sign-in) to it.
//!
//! Invariants: the email index and the row change together in one transaction; an address
//! another account uses is refused both when asked for and again when confirmed; a newer
//! request supersedes an older link; the audit log names the fields changed, never their
//! values.

use super::{validate_email, validate_name, AccountError, Auth, AuthError};
use crate::audit::{Actor, AuditLog};
use crate::store::{TokenKind, UserRecord};

/// A change as `PATCH /api/v1/me` takes it: the fields named change.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl Auth {
    /// Applies a name change and starts an email change (mailing a link to the new
    /// address); returns the member as they now stand.
    pub async fn update_profile(
        &self,
        user: &UserRecord,
        update: ProfileUpdate,
        audit: &AuditLog,
    ) -> Result<UserRecord, AuthError> {
        let mut user = self
            .store
            .get_user(user.id)?
            .ok_or(AuthError::NotFound("member"))?;
        let mut changed = Vec::new();
        if let Some(name) = &update.name {
            let name = validate_name(name).map_err(AuthError::InvalidName)?;
            if name != user.name {
                user.name = name;
                changed.push("name");
            }
        }
        let mut link = None;
        if let Some(email) = &update.email {
            let email =
                validate_email(email).map_err(|m| AuthError::Account(AccountError::Invalid(m)))?;
            if email.eq_ignore_ascii_case(&user.email) {
                if user.pending_email.take().is_some() {
                    changed.push("pending_email");
                }
            } else {
                if matches!(self.store.user_by_email(&email)?, Some(other) if other.id != user.id) {
                    return Err(AccountError::Conflict(
                        "another account uses that email address".into(),
                    )
                    .into());
                }
                let token = self.new_token(
                    TokenKind::EmailChange,
                    Some(&user),
                    None,
                    Some(&email),
                    self.token_secs(),
                )?;
                user.pending_email = Some(email.clone());
                changed.push("pending_email");
                link = Some((email, token));
            }
        }
        if changed.is_empty() {
            return Ok(user);
        }
        self.store.put_user(&user)?;
        if let Some((to, token)) = link {
            self.queue_verification(&to, &user.name, token)?;
        }
        audit.record(
            Actor::of(&user),
            "user.update",
            format!("user:{}", user.id),
            serde_json::json!({ "fields": changed }),
        )?;
        self.store.flush().await?;
        self.outbox.notify();
        Ok(user)
    }

    /// Uses an email-change link: the pending address becomes the member's email.
    pub(super) async fn confirm_email_change(&self, token: &str) -> Result<UserRecord, AuthError> {
        let rec = self.take_token(token, TokenKind::EmailChange)?;
        let (Some(id), Some(email)) = (rec.user_id, rec.email) else {
            return Err(AuthError::InvalidToken);
        };
        let user = self.store.get_user(id)?.ok_or(AuthError::InvalidToken)?;
        // a later request (or a cancel) superseded this link
        if user.pending_email.as_deref() != Some(email.as_str()) {
            return Err(AuthError::InvalidToken);
        }
        let user = self.store.change_email(id, &email).map_err(|e| match e {
            crate::store::StoreError::Conflict(m) => AuthError::Account(AccountError::Conflict(m)),
            other => other.into(),
        })?;
        self.store.flush().await?;
        Ok(user)
    }
}
