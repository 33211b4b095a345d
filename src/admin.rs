//! Member administration for admins: list and search members with their balance, change a
//! plan (moving their results' expiry, P2), adjust credits with a reason, suspend, delete
//! (as the member could, P5), usage statistics that never single out a small group (P10),
//! and the audit log. Every change is recorded in the audit log; nothing here reads a
//! member's pixels.

use std::collections::BTreeMap;

use crate::audit::{Actor, AuditLog};
use crate::billing::payments::Action;
use crate::billing::{Billing, BillingError};
use crate::clock::{rfc3339, unix, SharedClock};
use crate::ids::UserId;
use crate::images::ImageService;
use crate::privacy::{PrivacyService, Receipt};
use crate::store::{JobState, LedgerReason, Plan, Posting, Role, Store, StoreError, UserRecord};

/// What can go wrong; `crate::error` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Invalid(_) => "invalid_request",
            AdminError::NotFound(_) => "not_found",
            AdminError::Billing(e) => e.code(),
            AdminError::Image(e) => e.code(),
            AdminError::Mail(e) => e.code(),
            AdminError::Store(e) => e.code(),
        }
    }
}

/// A change as `PATCH /api/v1/admin/users/{id}` takes it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    #[serde(default)]
    pub plan: Option<Plan>,
    #[serde(default)]
    pub credits_delta: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub suspended: Option<bool>,
}

/// A member as the admin sees them: account data and balance, never content.
pub fn member_json(u: &UserRecord, credits: i64) -> serde_json::Value {
    serde_json::json!({
        "id": u.id, "email": u.email, "name": u.name, "role": u.role, "plan": u.plan,
        "credits": credits, "verified": u.verified, "suspended": u.suspended,
        "created_at": rfc3339(u.created_at), "last_active_at": rfc3339(u.last_active_at),
    })
}

/// Admin operations; cheap to clone.
#[derive(Clone)]
pub struct AdminService {
    store: Store,
    clock: SharedClock,
    audit: AuditLog,
    billing: Billing,
    images: ImageService,
    privacy: PrivacyService,
    min_group_size: u64,
}

impl AdminService {
    pub fn new(
        store: Store,
        clock: SharedClock,
        audit: AuditLog,
        billing: Billing,
        images: ImageService,
        privacy: PrivacyService,
        min_group_size: u64,
    ) -> Self {
        Self {
            store,
            clock,
            audit,
            billing,
            images,
            privacy,
            min_group_size,
        }
    }

    /// Members whose email or name contains `q` (case-insensitive), with their balance.
    pub fn members(&self, q: Option<&str>) -> Result<Vec<(UserRecord, i64)>, StoreError> {
        let q = q.map(str::to_lowercase).filter(|q| !q.trim().is_empty());
        let mut out = Vec::new();
        for u in self.store.list_users()? {
            let hit = q.as_deref().is_none_or(|q| {
                u.email.to_lowercase().contains(q) || u.name.to_lowercase().contains(q)
            });
            if hit {
                let balance = self.store.balance(u.id)?;
                out.push((u, balance));
            }
        }
        out.sort_by(|a, b| a.0.email.cmp(&b.0.email));
        Ok(out)
    }

    /// Applies an admin's change to a member (blocking; the caller flushes).
    pub fn update(
        &self,
        admin: &UserRecord,
        id: UserId,
        patch: &MemberPatch,
    ) -> Result<(UserRecord, i64), AdminError> {
        let mut user = self
            .store
            .get_user(id)?
            .ok_or(AdminError::NotFound("member"))?;
        if let Some(delta) = patch.credits_delta {
            let reason = patch.reason.as_deref().unwrap_or("");
            self.billing.adjust(admin, id, delta, reason)?;
        }
        if let Some(plan) = patch.plan {
            user = self.change_plan(Actor::of(admin), user, plan, patch.reason.as_deref())?;
        }
        if let Some(suspended) = patch.suspended.filter(|s| *s != user.suspended) {
            if suspended && id == admin.id {
                return Err(AdminError::Invalid(
                    "an admin cannot suspend themselves".into(),
                ));
            }
            user.suspended = suspended;
            self.store.put_user(&user)?;
            if suspended {
                self.store.delete_sessions_of(id, None)?;
            }
            self.audit.record(
                Actor::of(admin),
                if suspended {
                    "user.suspend"
                } else {
                    "user.unsuspend"
                },
                format!("user:{id}"),
                serde_json::json!({"reason": patch.reason}),
            )?;
        }
        let balance = self.store.balance(id)?;
        Ok((user, balance))
    }

    /// Sets a member's plan (a no-op when it is theirs already), moving the expiry of their
    /// processed results by the retention difference (P2); recorded in the audit log.
    pub fn change_plan(
        &self,
        actor: Actor,
        mut user: UserRecord,
        plan: Plan,
        reason: Option<&str>,
    ) -> Result<UserRecord, AdminError> {
        if user.plan == plan {
            return Ok(user);
        }
        let from = user.plan;
        user.plan = plan;
        self.store.put_user(&user)?;
        let moved = self.images.replan(user.id, from, plan)?;
        self.audit.record(
            actor,
            "user.plan",
            format!("user:{}", user.id),
            serde_json::json!({"from": from, "to": plan, "reason": reason,
                "expiries_moved": moved}),
        )?;
        Ok(user)
    }

    /// Applies a verified payment event once (blocking; the caller flushes). Returns
    /// whether it changed anything (`false`: seen before, unknown member, or ignored).
    pub fn apply_payment(&self, event_id: &str, action: &Action) -> Result<bool, AdminError> {
        if self.store.payment_event_seen(event_id)? {
            return Ok(false);
        }
        let now = unix(self.clock.now());
        let nothing = |store: &Store, user: UserId| {
            store.apply_payment_event(
                event_id,
                now,
                &Posting {
                    user,
                    delta: 0,
                    reason: LedgerReason::Purchase,
                    job_id: None,
                    note: None,
                    at: now,
                },
            )
        };
        let member = |user_id: &str| -> Result<Option<UserRecord>, StoreError> {
            match user_id.parse::<UserId>() {
                Ok(id) => self.store.get_user(id),
                Err(_) => Ok(None),
            }
        };
        match action {
            Action::Ignored => {
                nothing(&self.store, UserId(uuid::Uuid::nil()))?;
                Ok(false)
            }
            Action::Checkout {
                user_id,
                credits,
                plan,
                customer,
            } => {
                let Some(mut user) = member(user_id)? else {
                    tracing::warn!(
                        event = event_id,
                        "payment event for an unknown member; ignored"
                    );
                    nothing(&self.store, UserId(uuid::Uuid::nil()))?;
                    return Ok(false);
                };
                if let Some(customer) = customer.as_ref().filter(|c| c.len() <= 255) {
                    user.payment_customer = Some(customer.clone());
                    self.store.put_user(&user)?;
                }
                if let Some(plan) = plan {
                    match plan.parse::<Plan>() {
                        Ok(plan) => {
                            user = self.change_plan(Actor::Payments, user, plan, Some(event_id))?;
                        }
                        Err(e) => {
                            tracing::warn!(event = event_id, "{e}; the plan is left as it is")
                        }
                    }
                }
                let note = format!("payment {event_id}");
                let applied = self.store.apply_payment_event(
                    event_id,
                    now,
                    &Posting {
                        user: user.id,
                        delta: credits.unwrap_or(0),
                        reason: LedgerReason::Purchase,
                        job_id: None,
                        note: Some(&note),
                        at: now,
                    },
                )?;
                if applied {
                    self.audit.record(
                        Actor::Payments,
                        "payment.checkout",
                        format!("user:{}", user.id),
                        serde_json::json!({"event": event_id, "credits": credits, "plan": plan}),
                    )?;
                }
                Ok(applied)
            }
            Action::SubscriptionEnded { user_id } => {
                let Some(user) = member(user_id)? else {
                    nothing(&self.store, UserId(uuid::Uuid::nil()))?;
                    return Ok(false);
                };
                let id = user.id;
                self.change_plan(Actor::Payments, user, Plan::Free, Some(event_id))?;
                let applied = nothing(&self.store, id)?;
                if applied {
                    self.audit.record(
                        Actor::Payments,
                        "payment.subscription_ended",
                        format!("user:{id}"),
                        serde_json::json!({"event": event_id}),
                    )?;
                }
                Ok(applied)
            }
        }
    }

    /// Deletes a member as P5 does (receipt mailed, purge by the sweep); blocking, the caller
    /// flushes and wakes the outbox.
    pub fn delete(&self, admin: &UserRecord, id: UserId) -> Result<Receipt, AdminError> {
        if id == admin.id {
            return Err(AdminError::Invalid(
                "an admin cannot delete their own account here; use DELETE /api/v1/me".into(),
            ));
        }
        let user = self
            .store
            .get_user(id)?
            .ok_or(AdminError::NotFound("member"))?;
        Ok(self
            .privacy
            .delete_account_as(&user, Actor::of(admin), "admin.user.delete")?)
    }

    /// Usage by plan and day: members with jobs, jobs, credits charged. A group of fewer
    /// than `privacy.min_group_size` members is merged into `plan: "other"` for its day, and
    /// an "other" still too small is left out, so no small group is ever shown (P10).
    pub fn stats(&self) -> Result<serde_json::Value, StoreError> {
        let plans: BTreeMap<UserId, (Plan, Role)> = self
            .store
            .list_users()?
            .into_iter()
            .map(|u| (u.id, (u.plan, u.role)))
            .collect();
        #[derive(Default)]
        struct Group {
            members: std::collections::BTreeSet<UserId>,
            jobs: u64,
            credits: u64,
        }
        let mut groups: BTreeMap<(String, &'static str), Group> = BTreeMap::new();
        for job in self.store.all_jobs()? {
            let Some((plan, _)) = plans.get(&job.owner) else {
                continue;
            };
            let day: String = rfc3339(job.created_at).chars().take(10).collect();
            let g = groups.entry((day, plan.as_str())).or_default();
            g.members.insert(job.owner);
            g.jobs += 1;
            if job.state == JobState::Succeeded {
                g.credits += job.reserved.unwrap_or(0);
            }
        }
        let min = self.min_group_size.max(1) as usize;
        let mut shown = Vec::new();
        let mut other: BTreeMap<String, Group> = BTreeMap::new();
        for ((day, plan), g) in groups {
            if g.members.len() >= min {
                shown.push(serde_json::json!({"plan": plan, "day": day,
                    "members": g.members.len(), "jobs": g.jobs, "credits": g.credits}));
            } else {
                let o = other.entry(day).or_default();
                o.members.extend(g.members);
                o.jobs += g.jobs;
                o.credits += g.credits;
            }
        }
        for (day, g) in other {
            if g.members.len() >= min {
                shown.push(serde_json::json!({"plan": "other", "day": day,
                    "members": g.members.len(), "jobs": g.jobs, "credits": g.credits}));
            }
        }
        Ok(
            serde_json::json!({"min_group_size": self.min_group_size, "groups": shown,
            "as_of": rfc3339(unix(self.clock.now()))}),
        )
    }
}
