//! Accounts in the store: users (with an email index), login sessions (keyed by token hash,
//! with an absolute-expiry TTL entry), API keys (secret hashes only) and each member's wrapped
//! data key. Deleting a user's wrapped key is the crypto-shred that makes their blobs
//! unreadable; it happens in the same transaction as the user row.

use sled::transaction::ConflictableTransactionError;

use super::codec::{decode, encode};
use super::records::{
    ApiKeyRecord, ConsentRecord, DeletionRecord, PolicyRecord, SessionRecord, TokenKind,
    TokenRecord, UserRecord,
};
use super::ttl::{clear_tx, set_tx, TtlKind};
use super::{Result, Store, StoreError};
use crate::blobs::WrappedKey;
use crate::ids::{ApiKeyId, UserId};

fn email_key(email: &str) -> Vec<u8> {
    email.trim().to_lowercase().into_bytes()
}

impl Store {
    /// Creates a user with their wrapped data key. Fails with `Conflict` if the email is taken.
    pub fn create_user(&self, user: &UserRecord, key: &WrappedKey) -> Result<()> {
        let ek = email_key(&user.email);
        self.atomically(
            (&self.users, &self.users_by_email, &self.data_keys),
            |(u, e, k)| {
                if e.get(&ek)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(format!(
                        "a user with email {} already exists",
                        user.email
                    )));
                }
                u.insert(user.id.as_bytes(), encode(user))?;
                e.insert(ek.clone(), user.id.as_bytes())?;
                k.insert(user.id.as_bytes(), encode(key))?;
                Ok(())
            },
        )?;
        Ok(())
    }

    pub fn get_user(&self, id: UserId) -> Result<Option<UserRecord>> {
        self.users
            .get(id.as_bytes())?
            .map(|v| decode("users", &v))
            .transpose()
    }

    pub fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        match self.users_by_email.get(email_key(email))? {
            Some(id) => match UserId::from_slice(&id) {
                Some(id) => self.get_user(id),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    pub fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.users
            .iter()
            .values()
            .map(|v| decode("users", &v?))
            .collect()
    }

    pub fn count_users(&self) -> usize {
        self.users.len()
    }

    /// Rewrites a user row (name, plan, activity); the email must not change here.
    pub fn put_user(&self, user: &UserRecord) -> Result<()> {
        self.users.insert(user.id.as_bytes(), encode(user))?;
        Ok(())
    }

    /// Replaces a member's email (index and row together), confirming it and clearing the
    /// pending change. `Conflict` if another member has that address.
    pub fn change_email(&self, id: UserId, email: &str) -> Result<UserRecord> {
        let new_key = email_key(email);
        let user = self.atomically((&self.users, &self.users_by_email), |(u, e)| {
            let Some(v) = u.get(id.as_bytes())? else {
                return Err(ConflictableTransactionError::Abort(
                    "no such member".to_string(),
                ));
            };
            let mut user: UserRecord = decode("users", &v)
                .map_err(|err| ConflictableTransactionError::Abort(err.to_string()))?;
            match e.get(&new_key)? {
                Some(owner) if owner.as_ref() != id.as_bytes() => {
                    return Err(ConflictableTransactionError::Abort(
                        "another account uses that email address".to_string(),
                    ));
                }
                _ => {}
            }
            e.remove(email_key(&user.email))?;
            e.insert(new_key.clone(), id.as_bytes())?;
            user.email = email.to_string();
            user.verified = true;
            user.pending_email = None;
            u.insert(id.as_bytes(), encode(&user))?;
            Ok(user)
        })?;
        Ok(user)
    }

    /// Removes the user row, the email index and the wrapped data key (crypto-shred), then
    /// every session and API key of theirs. Images are the caller's to delete first.
    pub fn delete_user(&self, id: UserId) -> Result<Option<UserRecord>> {
        let Some(user) = self.get_user(id)? else {
            return Ok(None);
        };
        let ek = email_key(&user.email);
        self.atomically(
            (&self.users, &self.users_by_email, &self.data_keys),
            |(u, e, k)| {
                u.remove(id.as_bytes())?;
                e.remove(ek.clone())?;
                k.remove(id.as_bytes())?;
                Ok::<_, ConflictableTransactionError<String>>(())
            },
        )?;
        self.delete_sessions_of(id, None)?;
        self.delete_tokens_of(id)?;
        self.consents.remove(id.as_bytes())?;
        for key in self.list_api_keys(id)? {
            self.api_keys.remove(key.id.as_bytes())?;
        }
        Ok(Some(user))
    }

    // ---- data keys -------------------------------------------------------------------

    pub fn data_key(&self, user: UserId) -> Result<Option<WrappedKey>> {
        self.data_keys
            .get(user.as_bytes())?
            .map(|v| decode("data_keys", &v))
            .transpose()
    }

    /// Re-wraps the stored data keys (master-key rotation): `rewrap` gets each member's
    /// wrapped key and returns its replacement, or `None` to leave it. A key is replaced
    /// only if it is still the bytes that were read, so a key deleted meanwhile is never
    /// written back. Returns how many were replaced.
    pub fn rewrap_data_keys(
        &self,
        mut rewrap: impl FnMut(UserId, &WrappedKey) -> Option<WrappedKey>,
    ) -> Result<usize> {
        let mut n = 0;
        for kv in self.data_keys.iter() {
            let (k, v) = kv?;
            let id = UserId::from_slice(&k).ok_or_else(|| StoreError::Corrupt {
                tree: "data_keys",
                reason: "bad user id".into(),
            })?;
            let old: WrappedKey = decode("data_keys", &v)?;
            if let Some(new) = rewrap(id, &old) {
                if self
                    .data_keys
                    .compare_and_swap(&k, Some(v), Some(encode(&new)))?
                    .is_ok()
                {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    // ---- sessions ----------------------------------------------------------------------

    /// Stores a session under its token hash with a TTL entry at its absolute expiry.
    pub fn put_session(&self, hash: &[u8; 32], rec: &SessionRecord, expires_at: i64) -> Result<()> {
        self.atomically(
            (&self.sessions, &self.ttl, &self.ttl_by_object),
            |(s, t, b)| {
                s.insert(&hash[..], encode(rec))?;
                set_tx(t, b, TtlKind::Session, hash, expires_at)
            },
        )?;
        Ok(())
    }

    pub fn get_session(&self, hash: &[u8]) -> Result<Option<SessionRecord>> {
        self.sessions
            .get(hash)?
            .map(|v| decode("sessions", &v))
            .transpose()
    }

    /// Updates `last_seen_at` without touching the TTL entry.
    pub fn touch_session(&self, hash: &[u8], rec: &SessionRecord) -> Result<()> {
        self.sessions.insert(hash, encode(rec))?;
        Ok(())
    }

    pub fn delete_session(&self, hash: &[u8]) -> Result<bool> {
        let existed = self.atomically(
            (&self.sessions, &self.ttl, &self.ttl_by_object),
            |(s, t, b)| {
                let existed = s.remove(hash)?.is_some();
                clear_tx(t, b, TtlKind::Session, hash)?;
                Ok(existed)
            },
        )?;
        Ok(existed)
    }

    /// Ends every session of `user` but `keep` (a token hash); returns how many ended.
    pub fn delete_sessions_of(&self, user: UserId, keep: Option<&[u8]>) -> Result<usize> {
        let mut doomed = Vec::new();
        for kv in self.sessions.iter() {
            let (k, v) = kv?;
            let rec: SessionRecord = decode("sessions", &v)?;
            if rec.user_id == user && keep != Some(&k[..]) {
                doomed.push(k);
            }
        }
        for k in &doomed {
            self.delete_session(k)?;
        }
        Ok(doomed.len())
    }

    // ---- deleted members awaiting their purge ------------------------------------------

    pub fn put_deletion(&self, rec: &DeletionRecord) -> Result<()> {
        self.deletions.insert(rec.user_id.as_bytes(), encode(rec))?;
        Ok(())
    }

    /// Every deleted member whose files are not purged yet, oldest first.
    pub fn deletions(&self) -> Result<Vec<DeletionRecord>> {
        let mut all: Vec<DeletionRecord> = self
            .deletions
            .iter()
            .values()
            .map(|v| decode("deletions", &v?))
            .collect::<Result<_>>()?;
        all.sort_by_key(|d| d.requested_at);
        Ok(all)
    }

    pub fn remove_deletion(&self, user: UserId) -> Result<()> {
        self.deletions.remove(user.as_bytes())?;
        Ok(())
    }

    // ---- privacy policy versions ------------------------------------------------------------

    pub fn put_policy(&self, p: &PolicyRecord) -> Result<()> {
        self.policies.insert(p.version.to_be_bytes(), encode(p))?;
        Ok(())
    }

    /// Every published version after 1, oldest first.
    pub fn policies(&self) -> Result<Vec<PolicyRecord>> {
        self.policies
            .iter()
            .values()
            .map(|v| decode("policies", &v?))
            .collect()
    }

    // ---- consents -------------------------------------------------------------------------

    /// The member's consents (all off when never set).
    pub fn consents(&self, user: UserId) -> Result<ConsentRecord> {
        Ok(self
            .consents
            .get(user.as_bytes())?
            .map(|v| decode("consents", &v))
            .transpose()?
            .unwrap_or_default())
    }

    pub fn put_consents(&self, user: UserId, rec: &ConsentRecord) -> Result<()> {
        self.consents.insert(user.as_bytes(), encode(rec))?;
        Ok(())
    }

    // ---- single-use tokens ----------------------------------------------------------------

    pub fn put_token(&self, hash: &[u8; 32], rec: &TokenRecord) -> Result<()> {
        self.tokens.insert(hash, encode(rec))?;
        Ok(())
    }

    pub fn get_token(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
        self.tokens
            .get(hash)?
            .map(|v| decode("tokens", &v))
            .transpose()
    }

    /// The invites not yet used or expired at `now`, soonest expiry first, each with the
    /// first 12 hex digits of its key (the `invite:<…>` its audit entry names).
    pub fn open_invites(&self, now: i64) -> Result<Vec<(String, TokenRecord)>> {
        let mut out = Vec::new();
        for kv in self.tokens.iter() {
            let (k, v) = kv?;
            let rec: TokenRecord = decode("tokens", &v)?;
            if rec.kind == TokenKind::Invite && rec.expires_at > now {
                out.push((hex::encode(&k[..k.len().min(6)]), rec));
            }
        }
        out.sort_by_key(|(_, r)| r.expires_at);
        Ok(out)
    }

    /// Removes every token of `user` (verification, reset and email-change links).
    pub fn delete_tokens_of(&self, user: UserId) -> Result<usize> {
        self.remove_tokens(|t| t.user_id == Some(user))
    }

    /// Removes every token that expired at or before `now`; returns how many.
    pub fn delete_expired_tokens(&self, now: i64) -> Result<usize> {
        self.remove_tokens(|t| t.expires_at <= now)
    }

    fn remove_tokens(&self, doomed: impl Fn(&TokenRecord) -> bool) -> Result<usize> {
        let mut n = 0;
        for kv in self.tokens.iter() {
            let (k, v) = kv?;
            let rec: TokenRecord = decode("tokens", &v)?;
            if doomed(&rec)
                && self
                    .tokens
                    .compare_and_swap(&k, Some(v), None::<&[u8]>)?
                    .is_ok()
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes a token and returns it: whoever takes it first is the only one to use it.
    pub fn take_token(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
        self.tokens
            .remove(hash)?
            .map(|v| decode("tokens", &v))
            .transpose()
    }

    // ---- API keys ----------------------------------------------------------------------

    pub fn put_api_key(&self, rec: &ApiKeyRecord) -> Result<()> {
        self.api_keys.insert(rec.id.as_bytes(), encode(rec))?;
        Ok(())
    }

    pub fn get_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        self.api_keys
            .get(id.as_bytes())?
            .map(|v| decode("api_keys", &v))
            .transpose()
    }

    pub fn list_api_keys(&self, user: UserId) -> Result<Vec<ApiKeyRecord>> {
        let mut out = Vec::new();
        for v in self.api_keys.iter().values() {
            let rec: ApiKeyRecord = decode("api_keys", &v?)?;
            if rec.user_id == user {
                out.push(rec);
            }
        }
        Ok(out)
    }

    pub fn delete_api_key(&self, id: ApiKeyId) -> Result<bool> {
        Ok(self.api_keys.remove(id.as_bytes())?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TokenKind;

    fn token(user: Option<UserId>, expires_at: i64) -> TokenRecord {
        TokenRecord {
            kind: TokenKind::PasswordReset,
            user_id: user,
            plan: None,
            email: None,
            created_at: 0,
            expires_at,
        }
    }

    #[test]
    fn rewrapping_never_brings_back_a_key_deleted_meanwhile() {
        let (_d, s) = crate::store::temp_store();
        let key = |generation, b| WrappedKey {
            generation,
            bytes: vec![b; 8],
        };
        let (ann, bob) = (UserId::new(), UserId::new());
        s.data_keys
            .insert(ann.as_bytes(), encode(&key(1, 1)))
            .unwrap();
        s.data_keys
            .insert(bob.as_bytes(), encode(&key(1, 2)))
            .unwrap();
        let n = s
            .rewrap_data_keys(|id, old| {
                // bob is deleted while the rotation works on his key
                if id == bob {
                    s.data_keys.remove(bob.as_bytes()).unwrap();
                }
                Some(key(2, old.bytes[0]))
            })
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(s.data_key(ann).unwrap(), Some(key(2, 1)));
        assert_eq!(s.data_key(bob).unwrap(), None);
    }

    #[test]
    fn expired_tokens_and_a_members_tokens_are_removed() {
        let (_d, s) = crate::store::temp_store();
        let (ann, bob) = (UserId::new(), UserId::new());
        s.put_token(&[1; 32], &token(Some(ann), 100)).unwrap();
        s.put_token(&[2; 32], &token(Some(bob), 100)).unwrap();
        s.put_token(&[3; 32], &token(Some(bob), 500)).unwrap();
        s.put_token(&[4; 32], &token(None, 50)).unwrap();
        assert_eq!(s.delete_expired_tokens(100).unwrap(), 3);
        assert!(s.get_token(&[3; 32]).unwrap().is_some());
        assert_eq!(s.delete_tokens_of(bob).unwrap(), 1);
        assert!(s.get_token(&[3; 32]).unwrap().is_none());
    }
}
