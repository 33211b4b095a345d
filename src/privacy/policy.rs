//! Privacy policy versions (P16) and the `/privacy` page. A fresh install has version 1,
//! the built-in text, in effect. An admin publishes a new version with what changed; it
//! takes effect for existing members [`NOTICE_DAYS`] after publication, announced to each
//! by mail and shown in `/me` until they accept it; new members accept the latest at
//! sign-up. The page is rendered by minijinja from the configured numbers (retention,
//! inactivity, purge, age) and the version in effect, so it can never promise what the
//! code does not do.

use minijinja::Environment;

use super::{PrivacyError, PrivacyService};
use crate::audit::Actor;
use crate::clock::{rfc3339, unix};
use crate::mail::Notice;
use crate::store::{PolicyRecord, Role, StoreError, UserRecord};

/// Days between a version's publication and its effect for existing members.
pub const NOTICE_DAYS: i64 = 30;

/// The page's template, parsed once.
static PAGE: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template(
        "privacy.html",
        include_str!("../../web/templates/privacy.html"),
    )
    .expect("the built-in privacy page template parses");
    env
});

/// Which versions stand at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyState {
    /// The newest version in effect for existing members, and since when.
    pub current: u32,
    pub current_effective_at: i64,
    /// The newest version published (what new members accept).
    pub latest: u32,
    /// The newest published version not yet in effect, and when it will be.
    pub pending: Option<(u32, i64)>,
    pub published: Vec<PolicyRecord>,
}

impl PrivacyService {
    /// The versions as they stand now.
    pub fn policy_state(&self) -> Result<PolicyState, StoreError> {
        let now = unix(self.clock.now());
        let published = self.store().policies()?;
        let mut state = PolicyState {
            current: 1,
            current_effective_at: 0,
            latest: 1,
            pending: None,
            published,
        };
        for p in &state.published {
            state.latest = state.latest.max(p.version);
            if p.effective_at <= now {
                state.current = p.version;
                state.current_effective_at = p.effective_at;
            } else {
                state.pending = Some((p.version, p.effective_at));
            }
        }
        Ok(state)
    }

    /// Publishes version `version` (the next one) with what changed; mails every member
    /// (blocking; the caller flushes and wakes the outbox).
    pub fn publish_policy(
        &self,
        admin: &UserRecord,
        version: u32,
        body: &str,
    ) -> Result<PolicyRecord, PrivacyError> {
        if admin.role != Role::Admin {
            return Err(PrivacyError::NotFound("route"));
        }
        let state = self.policy_state()?;
        if version != state.latest + 1 {
            return Err(PrivacyError::Invalid(format!(
                "version must be {} (the next after {})",
                state.latest + 1,
                state.latest
            )));
        }
        let body = body.trim();
        if body.is_empty() || body.len() > 100_000 {
            return Err(PrivacyError::Invalid(
                "body must say what changes (1 to 100000 bytes)".into(),
            ));
        }
        let now = unix(self.clock.now());
        let rec = PolicyRecord {
            version,
            body: body.to_string(),
            published_at: now,
            effective_at: now + NOTICE_DAYS * 86_400,
        };
        self.store().put_policy(&rec)?;
        for member in self.store().list_users()? {
            self.outbox.queue(
                &member.email,
                &Notice::PolicyChange {
                    name: member.name.clone(),
                    version,
                    effective_at: rfc3339(rec.effective_at),
                    body: rec.body.clone(),
                },
            )?;
        }
        self.audit.record(
            Actor::of(admin),
            "policy.publish",
            format!("policy:{version}"),
            serde_json::json!({"effective_at": rfc3339(rec.effective_at)}),
        )?;
        Ok(rec)
    }

    /// Records that `user` accepted `version` (one that is published and not older than
    /// what they accepted). Blocking; the caller flushes.
    pub fn accept_policy(
        &self,
        user: &UserRecord,
        version: u32,
    ) -> Result<UserRecord, PrivacyError> {
        let state = self.policy_state()?;
        if version > state.latest || version < user.policy_accepted {
            return Err(PrivacyError::Invalid(format!(
                "version must be from {} to {}",
                user.policy_accepted, state.latest
            )));
        }
        let mut rec = self
            .store()
            .get_user(user.id)?
            .ok_or(PrivacyError::NotFound("member"))?;
        if rec.policy_accepted != version {
            rec.policy_accepted = version;
            self.store().put_user(&rec)?;
            self.audit.record(
                Actor::of(user),
                "policy.accept",
                format!("user:{}", user.id),
                serde_json::json!({"version": version}),
            )?;
        }
        Ok(rec)
    }

    /// `/me`'s `policy`: what the member accepted, what is in effect, and a newer version
    /// waiting for them.
    pub fn policy_of(&self, user: &UserRecord) -> Result<serde_json::Value, StoreError> {
        let state = self.policy_state()?;
        let pending = (state.latest > user.policy_accepted).then(|| {
            let effective_at = state
                .published
                .iter()
                .find(|p| p.version == state.latest)
                .map_or(0, |p| p.effective_at);
            serde_json::json!({"version": state.latest, "effective_at": rfc3339(effective_at)})
        });
        let mut v = serde_json::json!({"accepted": user.policy_accepted, "current": state.current});
        if let Some(p) = pending {
            v["pending"] = p;
        }
        Ok(v)
    }

    /// The `/privacy` page.
    pub fn privacy_page(&self, tls: bool) -> Result<String, PrivacyError> {
        let state = self.policy_state()?;
        let p = &self.page;
        let changes: Vec<_> = state
            .published
            .iter()
            .filter(|c| c.version <= state.current)
            .map(|c| {
                minijinja::context! {
                    version => c.version, effective_at => rfc3339(c.effective_at), body => c.body,
                }
            })
            .collect();
        let pending = state.pending.map(|(version, at)| {
            minijinja::context! { version => version, effective_at => rfc3339(at) }
        });
        PAGE.get_template("privacy.html")
            .and_then(|t| {
                t.render(minijinja::context! {
                    version => state.current,
                    effective_at => if state.current == 1 { "installation".to_string() } else { rfc3339(state.current_effective_at) },
                    pending => pending,
                    changes => changes,
                    tls => tls,
                    temporary_hours => p.temporary_hours,
                    free_days => p.free_days,
                    pro_days => p.pro_days,
                    studio_days => p.studio_days,
                    inactive_days => p.inactive_days,
                    inactive_warning_days => p.inactive_warning_days,
                    purge_days => p.purge_days,
                    min_age => p.min_age,
                })
            })
            .map_err(|e| PrivacyError::Page(e.to_string()))
    }
}
