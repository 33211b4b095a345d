//! The records of members and their account: the member, sessions, API keys, single-use
//! tokens, consents with their history, published policy versions and deletion tombstones.

use serde::{Deserialize, Serialize};

use crate::ids::{ApiKeyId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

/// A member's plan; it sets how long processed results are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Pro,
    Studio,
}

impl std::str::FromStr for Plan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "free" => Ok(Plan::Free),
            "pro" => Ok(Plan::Pro),
            "studio" => Ok(Plan::Studio),
            other => Err(format!("unknown plan {other:?}: use free, pro or studio")),
        }
    }
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Studio => "studio",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub plan: Plan,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: i64,
    pub last_active_at: i64,
    /// Whether the member confirmed their email address (members made by an operator, and
    /// every member from before sign-up existed, count as confirmed).
    #[serde(default = "confirmed")]
    pub verified: bool,
    /// When the member was last warned that inactivity will delete their account (a
    /// warning from before their last activity no longer counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_warned_at: Option<i64>,
    /// The privacy policy version the member accepted (members from before versions were
    /// kept accepted version 1, the only one there was).
    #[serde(default = "first_policy")]
    pub policy_accepted: u32,
    /// A new address the member asked for, applied once its verification link is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_email: Option<String>,
    /// Signed in with a generated one-time password: nothing but a password change is
    /// allowed until a new one is set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_change_password: bool,
    /// Suspended by an admin: no sign-in, no session, no API key works until lifted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
    /// The payment provider's customer id (no card data is ever stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_customer: Option<String>,
}

fn first_policy() -> u32 {
    1
}

/// A published privacy policy version after the built-in version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub version: u32,
    /// What changed, as the admin wrote it (plain text).
    pub body: String,
    pub published_at: i64,
    /// When it takes effect for members who joined before it (new members accept it at once).
    pub effective_at: i64,
}

fn confirmed() -> bool {
    true
}

/// The purposes a member can consent to (P9, P12); every one is off until they turn it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentKind {
    /// Their images may be used to train models.
    Training,
    /// Their usage may be counted in (aggregated) analytics.
    Analytics,
    /// They may be mailed about the studio's news.
    Marketing,
}

/// One change of a consent, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChange {
    pub kind: ConsentKind,
    pub value: bool,
    pub at: i64,
    /// The privacy policy version in force when it changed.
    pub policy_version: u32,
}

/// A member's consents: the current values and every change, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub training: bool,
    pub analytics: bool,
    pub marketing: bool,
    pub history: Vec<ConsentChange>,
}

impl ConsentRecord {
    pub fn get(&self, kind: ConsentKind) -> bool {
        match kind {
            ConsentKind::Training => self.training,
            ConsentKind::Analytics => self.analytics,
            ConsentKind::Marketing => self.marketing,
        }
    }

    fn slot(&mut self, kind: ConsentKind) -> &mut bool {
        match kind {
            ConsentKind::Training => &mut self.training,
            ConsentKind::Analytics => &mut self.analytics,
            ConsentKind::Marketing => &mut self.marketing,
        }
    }

    /// Sets a consent; a change (not a repeat) is appended to the history. Returns whether
    /// it changed.
    pub fn set(&mut self, kind: ConsentKind, value: bool, at: i64, policy_version: u32) -> bool {
        if self.get(kind) == value {
            return false;
        }
        *self.slot(kind) = value;
        self.history.push(ConsentChange {
            kind,
            value,
            at,
            policy_version,
        });
        true
    }
}

/// A member who deleted their account and whose files the sweep has yet to purge (their
/// key is already gone). No email, name or content: only what the purge needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRecord {
    pub user_id: UserId,
    pub receipt_id: String,
    pub requested_at: i64,
    pub purge_by: i64,
}

/// What a single-use token stored by its hash lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Confirm the member's email address.
    VerifyEmail,
    /// Set a new password.
    PasswordReset,
    /// Sign up while registration is by invite.
    Invite,
    /// Confirm a new address before it replaces the member's email (rectification, P12).
    EmailChange,
}

/// A single-use token; the key is the SHA-256 of the token, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub kind: TokenKind,
    /// The member it is for (verification, reset).
    pub user_id: Option<UserId>,
    /// The plan an invite grants.
    pub plan: Option<Plan>,
    /// The new address an email change confirms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A login session; the key is the SHA-256 of the cookie token, never the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user_id: UserId,
    pub created_at: i64,
    pub last_seen_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    /// Hex SHA-256 of the secret part of the key.
    pub secret_hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}
