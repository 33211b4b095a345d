//! Joining and getting back in: sign-up (closed, by invite, or open, behind an age gate),
//! email verification, password reset by mail, and the invites admins make.
//!
//! Invariants: a sign-up without `age_confirmed` is refused before anything is read or
//! written (not the email, not an audit entry: P14); every token is random, stored only as
//! its SHA-256, single-use (taken from the store by whoever uses it first) and expires
//! (`accounts.token_hours`; invites a week); a reset request answers the same for an
//! unknown email as for a known one; a reset ends every session of the member. Mail is
//! queued in the same flush as the change that causes it and delivered in the background.

use super::tokens::{random_token, sha256};
use super::{insert_user, set_password, AccountError, Auth, AuthError, NewUser};
use crate::audit::{Actor, AuditLog};
use crate::clock::unix;
use crate::config::Registration;
use crate::mail::Notice;
use crate::store::{Plan, Role, TokenKind, TokenRecord, UserRecord};

/// How long an invite stays valid.
const INVITE_SECS: i64 = 7 * 86_400;

/// A sign-up as `POST /api/v1/auth/register` takes it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    pub email: String,
    pub password: String,
    pub name: String,
    #[serde(default)]
    pub age_confirmed: bool,
    #[serde(default)]
    pub invite: Option<String>,
}

impl Auth {
    pub(super) fn new_token(
        &self,
        kind: TokenKind,
        user: Option<&UserRecord>,
        plan: Option<Plan>,
        email: Option<&str>,
        ttl: i64,
    ) -> Result<String, AuthError> {
        let token = random_token();
        let now = unix(self.clock.now());
        self.store.put_token(
            &sha256(&token),
            &TokenRecord {
                kind,
                user_id: user.map(|u| u.id),
                plan,
                email: email.map(str::to_string),
                created_at: now,
                expires_at: now + ttl,
            },
        )?;
        Ok(token)
    }

    pub(super) fn token_secs(&self) -> i64 {
        self.accounts.token_hours as i64 * 3600
    }

    /// A live token of `kind`, taken (so nobody can use it again), or `InvalidToken`.
    pub(super) fn take_token(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<TokenRecord, AuthError> {
        let hash = sha256(token);
        let rec = match self.store.get_token(&hash)? {
            Some(rec) if rec.kind == kind => rec,
            _ => return Err(AuthError::InvalidToken),
        };
        let Some(rec) = self.store.take_token(&hash)?.filter(|r| r == &rec) else {
            return Err(AuthError::InvalidToken);
        };
        if rec.expires_at <= unix(self.clock.now()) {
            return Err(AuthError::InvalidToken);
        }
        Ok(rec)
    }

    /// Creates an account from a sign-up that passed the age gate and queues its
    /// verification mail (blocking: argon2). The member starts unverified, on the invite's
    /// plan or free.
    fn register_blocking(&self, s: &SignUp) -> Result<UserRecord, AuthError> {
        let invite = match self.accounts.registration {
            Registration::Closed => return Err(AuthError::RegistrationClosed),
            Registration::Open => None,
            Registration::Invite => {
                let token = s.invite.as_deref().ok_or(AuthError::InviteRequired)?;
                match self.store.get_token(&sha256(token))? {
                    Some(rec)
                        if rec.kind == TokenKind::Invite
                            && rec.expires_at > unix(self.clock.now()) =>
                    {
                        Some(token)
                    }
                    _ => return Err(AuthError::InviteRequired),
                }
            }
        };
        // the invite is taken first (two sign-ups cannot share it) and given back if the
        // account cannot be made (a taken email, a weak password), so a typo does not burn it
        let taken = match invite {
            Some(token) => Some((
                token,
                self.take_token(token, TokenKind::Invite)
                    .map_err(|_| AuthError::InviteRequired)?,
            )),
            None => None,
        };
        let plan = taken
            .as_ref()
            .and_then(|(_, rec)| rec.plan)
            .unwrap_or(Plan::Free);
        let made = insert_user(
            &self.store,
            &self.keyring,
            unix(self.clock.now()),
            NewUser {
                email: &s.email,
                name: &s.name,
                role: Role::Member,
                plan,
                password: &s.password,
            },
            false,
        );
        let mut user = match made {
            Ok(user) => user,
            Err(e) => {
                if let Some((token, rec)) = taken {
                    self.store.put_token(&sha256(token), &rec)?;
                }
                return Err(e.into());
            }
        };
        // a new member accepts the newest policy version as they sign up (P16)
        let latest = self.store.policies()?.iter().map(|p| p.version).max();
        if let Some(latest) = latest {
            user.policy_accepted = latest;
            self.store.put_user(&user)?;
        }
        self.send_verification(&user)?;
        Ok(user)
    }

    /// Queues a verification mail for `user`'s address (blocking; the caller flushes).
    fn send_verification(&self, user: &UserRecord) -> Result<(), AuthError> {
        let token = self.new_token(
            TokenKind::VerifyEmail,
            Some(user),
            None,
            None,
            self.token_secs(),
        )?;
        self.queue_verification(&user.email, &user.name, token)
    }

    /// Queues the mail carrying a verification link to `to` (blocking; the caller flushes).
    pub(super) fn queue_verification(
        &self,
        to: &str,
        name: &str,
        token: String,
    ) -> Result<(), AuthError> {
        self.outbox.queue(
            to,
            &Notice::VerifyEmail {
                name: name.to_string(),
                token,
            },
        )?;
        Ok(())
    }

    /// Signs a member up; see [`register_blocking`](Self::register_blocking).
    pub async fn register(&self, s: SignUp) -> Result<UserRecord, AuthError> {
        if !s.age_confirmed {
            // nothing of the request is looked at or kept
            return Err(AuthError::AgeRequired(self.accounts.min_age));
        }
        let _permit = self.hashing_permit().await?;
        let this = self.clone();
        let user = tokio::task::spawn_blocking(move || this.register_blocking(&s))
            .await
            .map_err(|e| AuthError::internal("sign-up", e))??;
        self.store.flush().await?;
        self.outbox.notify();
        Ok(user)
    }

    /// Confirms the address a verification link was sent to: a new member's, or the new
    /// address of an email change (which takes effect now).
    pub async fn verify_email(&self, token: &str) -> Result<UserRecord, AuthError> {
        if let Some(TokenRecord {
            kind: TokenKind::EmailChange,
            ..
        }) = self.store.get_token(&sha256(token))?
        {
            return self.confirm_email_change(token).await;
        }
        let rec = self.take_token(token, TokenKind::VerifyEmail)?;
        let mut user = rec
            .user_id
            .and_then(|id| self.store.get_user(id).transpose())
            .transpose()?
            .ok_or(AuthError::InvalidToken)?;
        user.verified = true;
        self.store.put_user(&user)?;
        self.store.flush().await?;
        Ok(user)
    }

    /// Mails a reset link when `email` belongs to a member; the same `Ok` either way, so
    /// the answer tells nobody which addresses have accounts.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), AuthError> {
        let Some(user) = self.store.user_by_email(email)? else {
            return Ok(());
        };
        let token = self.new_token(
            TokenKind::PasswordReset,
            Some(&user),
            None,
            None,
            self.token_secs(),
        )?;
        self.outbox.queue(
            &user.email,
            &Notice::PasswordReset {
                name: user.name.clone(),
                token,
            },
        )?;
        self.store.flush().await?;
        self.outbox.notify();
        Ok(())
    }

    /// Sets a new password with a reset link; every session of the member ends.
    pub async fn confirm_password_reset(&self, token: &str, new: &str) -> Result<(), AuthError> {
        super::password::check_new_password(new).map_err(AuthError::InvalidPassword)?;
        let rec = self.take_token(token, TokenKind::PasswordReset)?;
        let user = rec.user_id.ok_or(AuthError::InvalidToken)?;
        let _permit = self.hashing_permit().await?;
        let (store, new) = (self.store.clone(), new.to_string());
        tokio::task::spawn_blocking(move || set_password(&store, user, &new, None))
            .await
            .map_err(|e| AuthError::internal("password reset", e))?
            .map_err(|e| match e {
                AccountError::Invalid(_) => AuthError::InvalidToken,
                other => AuthError::Account(other),
            })?;
        self.store.flush().await?;
        Ok(())
    }

    /// An admin's invite (single-use, valid a week) to sign up on `plan`; returns the token.
    pub async fn create_invite(
        &self,
        admin: &UserRecord,
        plan: Plan,
        audit: &AuditLog,
    ) -> Result<String, AuthError> {
        if admin.role != Role::Admin {
            return Err(AuthError::NotFound("route"));
        }
        let token = self.new_token(TokenKind::Invite, None, Some(plan), None, INVITE_SECS)?;
        audit.record(
            Actor::of(admin),
            "invite.create",
            format!("invite:{}", &hex::encode(sha256(&token))[..12]),
            serde_json::json!({"plan": plan}),
        )?;
        self.store.flush().await?;
        Ok(token)
    }
}
