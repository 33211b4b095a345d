//! Accounts and authentication: creating members (argon2id password, fresh wrapped data key),
//! logging in to a session, API keys, and resolving a request's credentials to a
//! [`Principal`]. Sessions expire when idle and at an absolute age, both read from the
//! injected clock; only token hashes are stored. Hashing runs on blocking threads under a
//! concurrency cap, so a login burst cannot starve the server.

pub mod password;
pub mod tokens;

use std::sync::Arc;

use hyper::StatusCode;
use tokio::sync::Semaphore;

use crate::blobs::{DataKey, Keyring};
use crate::clock::{unix, SharedClock};
use crate::error::ApiError;
use crate::ids::{ApiKeyId, UserId};
use crate::store::{ApiKeyRecord, Plan, Role, SessionRecord, Store, UserRecord};

/// Session lifetime settings, from `[auth]`.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

/// Who is making a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRecord,
    /// The session's token hash, when authenticated by cookie (CSRF rules apply).
    pub session: Option<[u8; 32]>,
}

/// A validated email address (trimmed; compared case-insensitively by the store).
pub fn validate_email(email: &str) -> Result<String, String> {
    let e = email.trim();
    let ok = e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok {
        Ok(e.to_string())
    } else {
        Err(format!("{email:?} is not a valid email address"))
    }
}

pub fn validate_name(name: &str) -> Result<String, String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 {
        return Err("the name must be 1 to 100 characters".into());
    }
    Ok(n.to_string())
}

/// What `create_user` needs to know about the new member.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub plan: Plan,
    pub password: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Blob(#[from] crate::blobs::BlobError),
}

impl AccountError {
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Invalid(_) => "invalid_account",
            AccountError::Conflict(_) => "email_taken",
            AccountError::Store(e) => e.code(),
            AccountError::Blob(e) => e.code(),
        }
    }
}

/// Creates a member with a fresh data key wrapped by the current master key. Blocking
/// (argon2); the caller flushes the store.
pub fn create_user(
    store: &Store,
    keyring: &Keyring,
    now: i64,
    new: NewUser<'_>,
) -> Result<UserRecord, AccountError> {
    let email = validate_email(new.email).map_err(AccountError::Invalid)?;
    let name = validate_name(new.name).map_err(AccountError::Invalid)?;
    password::check_new_password(new.password).map_err(AccountError::Invalid)?;
    if store.user_by_email(&email)?.is_some() {
        return Err(AccountError::Conflict(format!(
            "a user with email {email} already exists"
        )));
    }
    let user = UserRecord {
        id: UserId::new(),
        email,
        name,
        role: new.role,
        plan: new.plan,
        password_hash: password::hash_password(new.password),
        created_at: now,
        last_active_at: now,
    };
    let wrapped = keyring.wrap(&DataKey::generate(), user.id);
    store.create_user(&user, &wrapped).map_err(|e| match e {
        crate::store::StoreError::Conflict(m) => AccountError::Conflict(m),
        other => AccountError::Store(other),
    })?;
    Ok(user)
}

/// Login, sessions and API keys over the store.
pub struct Auth {
    store: Store,
    clock: SharedClock,
    policy: SessionPolicy,
    hashing: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl Auth {
    pub fn new(
        store: Store,
        clock: SharedClock,
        policy: SessionPolicy,
        concurrency: usize,
    ) -> Self {
        Self {
            store,
            clock,
            policy,
            hashing: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: password::hash_password("dummy password for timing").into(),
        }
    }

    /// Checks credentials and opens a session. Returns the cookie token (shown once).
    pub async fn login(&self, email: &str, pw: &str) -> Result<(String, UserRecord), ApiError> {
        let bad = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the email or password is wrong",
            )
        };
        if email.len() > 254 || pw.len() > password::MAX_PASSWORD_BYTES {
            return Err(bad());
        }
        let user = self.store.user_by_email(email)?;
        let phc = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let pw = pw.to_string();
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| ApiError::internal("semaphore", e))?;
        let ok = tokio::task::spawn_blocking(move || password::verify_password(&pw, &phc)).await?;
        let Some(mut user) = user.filter(|_| ok) else {
            return Err(bad());
        };
        let now = unix(self.clock.now());
        let token = tokens::random_token();
        let rec = SessionRecord {
            user_id: user.id,
            created_at: now,
            last_seen_at: now,
        };
        self.store.put_session(
            &tokens::sha256(&token),
            &rec,
            now + self.policy.absolute_secs,
        )?;
        user.last_active_at = now;
        self.store.put_user(&user)?;
        self.store.flush().await?;
        Ok((token, user))
    }

    /// Resolves a session cookie; expired sessions are removed and rejected.
    pub fn from_session(&self, token: &str) -> Result<Option<Principal>, ApiError> {
        let hash = tokens::sha256(token);
        let Some(mut rec) = self.store.get_session(&hash)? else {
            return Ok(None);
        };
        let now = unix(self.clock.now());
        if now - rec.last_seen_at > self.policy.idle_secs
            || now - rec.created_at > self.policy.absolute_secs
        {
            self.store.delete_session(&hash)?;
            return Ok(None);
        }
        let Some(user) = self.store.get_user(rec.user_id)? else {
            self.store.delete_session(&hash)?;
            return Ok(None);
        };
        if now - rec.last_seen_at >= 60 {
            rec.last_seen_at = now;
            self.store.touch_session(&hash, &rec)?;
            self.touch_user(user.clone(), now)?;
        }
        Ok(Some(Principal {
            user,
            session: Some(hash),
        }))
    }

    /// Resolves an API key (`il_<id>_<secret>`).
    pub fn from_api_key(&self, key: &str) -> Result<Option<Principal>, ApiError> {
        let Some((id, secret)) = tokens::parse_api_key(key) else {
            return Ok(None);
        };
        let Some(mut rec) = self.store.get_api_key(id)? else {
            return Ok(None);
        };
        if !tokens::secret_matches(secret, &rec.secret_hash) {
            return Ok(None);
        }
        let Some(user) = self.store.get_user(rec.user_id)? else {
            return Ok(None);
        };
        let now = unix(self.clock.now());
        if rec.last_used_at.is_none_or(|t| now - t >= 60) {
            rec.last_used_at = Some(now);
            self.store.put_api_key(&rec)?;
            self.touch_user(user.clone(), now)?;
        }
        Ok(Some(Principal {
            user,
            session: None,
        }))
    }

    fn touch_user(&self, mut user: UserRecord, now: i64) -> Result<(), ApiError> {
        user.last_active_at = now;
        self.store.put_user(&user)?;
        Ok(())
    }

    pub async fn logout(&self, session: &[u8; 32]) -> Result<(), ApiError> {
        self.store.delete_session(session)?;
        self.store.flush().await?;
        Ok(())
    }

    /// Creates an API key; the returned string is the only time the secret is visible.
    pub async fn create_api_key(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<(ApiKeyRecord, String), ApiError> {
        let name = validate_name(name).map_err(|m| ApiError::bad_request("invalid_name", m))?;
        let id = ApiKeyId::new();
        let (key, secret_hash) = tokens::new_api_key(id);
        let rec = ApiKeyRecord {
            id,
            user_id: user,
            name,
            secret_hash,
            created_at: unix(self.clock.now()),
            last_used_at: None,
        };
        self.store.put_api_key(&rec)?;
        self.store.flush().await?;
        Ok((rec, key))
    }

    pub fn session_cookie_max_age(&self) -> i64 {
        self.policy.absolute_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_names_are_validated() {
        assert_eq!(validate_email(" a@b.c ").unwrap(), "a@b.c");
        for bad in ["", "a", "a@", "@b", "a b@c", "a@b@c"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert!(validate_name("  ").is_err());
        assert_eq!(validate_name(" Ann ").unwrap(), "Ann");
    }
}
