//! Accounts and authentication: creating members (argon2id password, fresh wrapped data key),
//! logging in to a session, API keys, and resolving a request's credentials to a
//! [`Principal`]. Sessions expire when idle and at an absolute age, both read from the
//! injected clock; only token hashes are stored. Hashing runs on blocking threads under a
//! concurrency cap, so a login burst cannot starve the server. The first admin is made here
//! too ([`bootstrap_admin`]), when a studio starts with no members.

mod bootstrap;
pub mod password;
mod profile;
mod signup;
pub use bootstrap::{
    bootstrap_admin, forget_one_time_password, one_time_password_file, Bootstrapped,
};
pub use profile::ProfileUpdate;
pub use signup::SignUp;
pub mod throttle;
pub mod tokens;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::blobs::{DataKey, Keyring};
use crate::clock::{unix, SharedClock};
use crate::config::{AccountsConfig, Config};
use crate::ids::{ApiKeyId, UserId};
use crate::mail::Outbox;
use crate::store::{ApiKeyRecord, Plan, Role, SessionRecord, Store, StoreError, UserRecord};

/// What can go wrong signing in and with sessions and API keys; `crate::error` maps each to
/// an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("too many failed sign-ins; try again in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("this account is suspended; ask the studio's operator")]
    Suspended,
    #[error("confirm that you are at least {0} years old (age_confirmed: true) to sign up")]
    AgeRequired(u32),
    #[error("sign-up is closed on this studio; ask its operator for an account")]
    RegistrationClosed,
    #[error("sign-up on this studio is by invitation: send the invite you were given")]
    InviteRequired,
    #[error("this link is not valid: it was used already, it expired, or it was mistyped")]
    InvalidToken,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error("{0}")]
    InvalidPassword(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {message}")]
    Internal {
        context: &'static str,
        message: String,
    },
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::InvalidCredentials => "invalid_credentials",
            AuthError::RateLimited { .. } => "rate_limited",
            AuthError::WrongPassword => "wrong_password",
            AuthError::Suspended => "account_suspended",
            AuthError::AgeRequired(_) => "age_required",
            AuthError::RegistrationClosed => "registration_closed",
            AuthError::InviteRequired => "invite_required",
            AuthError::InvalidToken => "invalid_token",
            AuthError::Account(e) => e.code(),
            AuthError::Mail(e) => e.code(),
            AuthError::InvalidPassword(_) => "invalid_password",
            AuthError::InvalidName(_) => "invalid_name",
            AuthError::NotFound(_) => "not_found",
            AuthError::Store(e) => e.code(),
            AuthError::Internal { .. } => "internal_error",
        }
    }

    fn internal(context: &'static str, e: impl std::fmt::Display) -> Self {
        AuthError::Internal {
            context,
            message: e.to_string(),
        }
    }
}

/// Session lifetime settings, from `[auth]`.
#[derive(Debug, Clone)]
struct SessionPolicy {
    idle_secs: i64,
    absolute_secs: i64,
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
    #[error("{0}")]
    Internal(String),
}

impl AccountError {
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Invalid(_) => "invalid_account",
            AccountError::Conflict(_) => "email_taken",
            AccountError::Store(e) => e.code(),
            AccountError::Blob(e) => e.code(),
            AccountError::Internal(_) => "internal_error",
        }
    }
}

/// Creates a member (their email counted as confirmed: an operator made them) with a fresh
/// data key wrapped by the current master key. Blocking (argon2); the caller flushes the
/// store.
pub fn create_user(
    store: &Store,
    keyring: &Keyring,
    now: i64,
    new: NewUser<'_>,
) -> Result<UserRecord, AccountError> {
    insert_user(store, keyring, now, new, true)
}

/// [`create_user`], saying whether the email is confirmed already.
fn insert_user(
    store: &Store,
    keyring: &Keyring,
    now: i64,
    new: NewUser<'_>,
    verified: bool,
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
        verified,
        inactivity_warned_at: None,
        policy_accepted: 1,
        pending_email: None,
        must_change_password: false,
        suspended: false,
        payment_customer: None,
    };
    keyring
        .wrap_and(&DataKey::generate(), user.id, |wrapped| {
            store.create_user(&user, &wrapped)
        })
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(m) => AccountError::Conflict(m),
            other => AccountError::Store(other),
        })?;
    Ok(user)
}

/// Sets a member's password (blocking: argon2) and ends every session of theirs but
/// `keep`; the caller flushes. Used by `user set-password` and the member's own change.
pub fn set_password(
    store: &Store,
    user: UserId,
    password: &str,
    keep: Option<&[u8; 32]>,
) -> Result<(), AccountError> {
    password::check_new_password(password).map_err(AccountError::Invalid)?;
    let mut rec = store
        .get_user(user)?
        .ok_or_else(|| AccountError::Invalid(format!("no user with id {user}")))?;
    rec.password_hash = password::hash_password(password);
    rec.must_change_password = false;
    store.put_user(&rec)?;
    store.delete_sessions_of(user, keep.map(|k| &k[..]))?;
    Ok(())
}

/// Login, sessions and API keys over the store.
#[derive(Clone)]
pub struct Auth {
    store: Store,
    clock: SharedClock,
    policy: SessionPolicy,
    hashing: Arc<Semaphore>,
    throttle: Arc<throttle::LoginThrottle>,
    dummy_hash: Arc<str>,
    keyring: Arc<Keyring>,
    outbox: Outbox,
    accounts: AccountsConfig,
    data_dir: PathBuf,
}

impl Auth {
    pub fn new(
        store: Store,
        clock: SharedClock,
        keyring: Arc<Keyring>,
        outbox: Outbox,
        config: &Config,
    ) -> Self {
        let auth = &config.auth;
        Self {
            store,
            throttle: Arc::new(throttle::LoginThrottle::new(auth.into(), clock.clone())),
            clock,
            keyring,
            outbox,
            accounts: config.accounts.clone(),
            data_dir: config.server.data_dir.clone(),
            policy: SessionPolicy {
                idle_secs: auth.session_idle_minutes as i64 * 60,
                absolute_secs: auth.session_absolute_hours as i64 * 3600,
            },
            hashing: Arc::new(Semaphore::new(auth.argon2_concurrency.max(1))),
            dummy_hash: password::hash_password("dummy password for timing").into(),
        }
    }

    /// A place under the Argon2 concurrency cap (`auth.argon2_concurrency`): every password
    /// hash or check holds one, so a burst cannot take every blocking thread.
    async fn hashing_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AuthError> {
        self.hashing
            .acquire()
            .await
            .map_err(|e| AuthError::internal("semaphore", e))
    }

    /// Checks credentials and opens a session. Returns the cookie token (shown once). A
    /// locked-out account or client (`client`: the request's address, when known) is refused
    /// before any hashing.
    pub async fn login(
        &self,
        email: &str,
        pw: &str,
        client: Option<IpAddr>,
    ) -> Result<(String, UserRecord), AuthError> {
        if let Err(retry_after) = self.throttle.attempt(email, client) {
            return Err(AuthError::RateLimited { retry_after });
        }
        if email.len() > 254 || pw.len() > password::MAX_PASSWORD_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        let user = self.store.user_by_email(email)?;
        let phc = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let pw = pw.to_string();
        let _permit = self.hashing_permit().await?;
        let ok = tokio::task::spawn_blocking(move || password::verify_password(&pw, &phc))
            .await
            .map_err(|e| AuthError::internal("password check", e))?;
        let Some(mut user) = user.filter(|_| ok) else {
            return Err(AuthError::InvalidCredentials);
        };
        if user.suspended {
            return Err(AuthError::Suspended);
        }
        self.throttle.succeeded(email, client);
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
    pub fn from_session(&self, token: &str) -> Result<Option<Principal>, AuthError> {
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
        let Some(user) = self.store.get_user(rec.user_id)?.filter(|u| !u.suspended) else {
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
    pub fn from_api_key(&self, key: &str) -> Result<Option<Principal>, AuthError> {
        let Some((id, secret)) = tokens::parse_api_key(key) else {
            return Ok(None);
        };
        let Some(mut rec) = self.store.get_api_key(id)? else {
            return Ok(None);
        };
        if !tokens::secret_matches(secret, &rec.secret_hash) {
            return Ok(None);
        }
        let Some(user) = self.store.get_user(rec.user_id)?.filter(|u| !u.suspended) else {
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

    fn touch_user(&self, mut user: UserRecord, now: i64) -> Result<(), AuthError> {
        user.last_active_at = now;
        self.store.put_user(&user)?;
        Ok(())
    }

    /// Ends every session of the member (this one too); API keys stay. Returns how many.
    pub async fn logout_all(&self, user: UserId) -> Result<usize, AuthError> {
        let store = self.store.clone();
        let n = tokio::task::spawn_blocking(move || store.delete_sessions_of(user, None))
            .await
            .map_err(|e| AuthError::internal("logout", e))??;
        self.store.flush().await?;
        Ok(n)
    }

    /// Changes the member's password after checking the current one (as
    /// [`confirm_password`](Self::confirm_password) does: throttled, under the hashing cap),
    /// and ends every other session; `keep` (the session making the change, if any) stays
    /// signed in.
    pub async fn change_password(
        &self,
        user: UserId,
        keep: Option<[u8; 32]>,
        current: &str,
        new: &str,
    ) -> Result<(), AuthError> {
        password::check_new_password(new).map_err(AuthError::InvalidPassword)?;
        self.confirm_password(user, current).await?;
        let _permit = self.hashing_permit().await?;
        let (store, new) = (self.store.clone(), new.to_string());
        tokio::task::spawn_blocking(move || {
            set_password(&store, user, &new, keep.as_ref()).map_err(|e| match e {
                AccountError::Store(e) => AuthError::Store(e),
                other => AuthError::internal("password change", other),
            })
        })
        .await
        .map_err(|e| AuthError::internal("password change", e))??;
        self.store.flush().await?;
        forget_one_time_password(&self.store, &self.data_dir)?;
        Ok(())
    }

    /// Checks the member's current password before a change that needs it said again: under
    /// the hashing cap and the account's login throttle, like a sign-in (a stolen session
    /// cannot be used to guess the password faster than the sign-in page allows).
    pub async fn confirm_password(&self, user: UserId, pw: &str) -> Result<(), AuthError> {
        let rec = self
            .store
            .get_user(user)?
            .ok_or(AuthError::NotFound("member"))?;
        if let Err(retry_after) = self.throttle.attempt(&rec.email, None) {
            return Err(AuthError::RateLimited { retry_after });
        }
        if pw.len() > password::MAX_PASSWORD_BYTES {
            return Err(AuthError::WrongPassword);
        }
        let _permit = self.hashing_permit().await?;
        let pw = pw.to_string();
        let ok =
            tokio::task::spawn_blocking(move || password::verify_password(&pw, &rec.password_hash))
                .await
                .map_err(|e| AuthError::internal("password check", e))?;
        if ok {
            self.throttle.succeeded(&rec.email, None);
            Ok(())
        } else {
            Err(AuthError::WrongPassword)
        }
    }

    pub async fn logout(&self, session: &[u8; 32]) -> Result<(), AuthError> {
        self.store.delete_session(session)?;
        self.store.flush().await?;
        Ok(())
    }

    /// Creates an API key; the returned string is the only time the secret is visible.
    pub async fn create_api_key(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<(ApiKeyRecord, String), AuthError> {
        let name = validate_name(name).map_err(AuthError::InvalidName)?;
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

    /// The member's API keys (blocking).
    pub fn list_api_keys(&self, user: UserId) -> Result<Vec<ApiKeyRecord>, AuthError> {
        Ok(self.store.list_api_keys(user)?)
    }

    /// Revokes one of the member's API keys; another member's is `NotFound`.
    pub async fn delete_api_key(&self, user: UserId, id: ApiKeyId) -> Result<(), AuthError> {
        match self.store.get_api_key(id)? {
            Some(k) if k.user_id == user => {
                self.store.delete_api_key(id)?;
                self.store.flush().await?;
                Ok(())
            }
            _ => Err(AuthError::NotFound("API key")),
        }
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
