//! Plans and credits: what each kind of job costs ([`Pricing`], used by the job queue to
//! reserve a job's cost in the same transaction that queues it), the per-plan limits, the
//! monthly grants, admin adjustments and plan changes ([`Billing`]).
//!
//! Invariants: the balance is the sum of the member's ledger entries (the store writes both
//! in one transaction); a job's cost is reserved when it is queued, charged when it succeeds
//! and refunded when it fails or is cancelled, exactly once; admins are charged nothing
//! unless `billing.charge_admins` (their jobs are still in the ledger, at zero); a monthly
//! grant is made once per member and period, keyed by the period, so restarts, a second run
//! and clock jumps grant nothing more.

pub mod grants;
pub mod payments;

use crate::audit::{Actor, AuditLog};
use crate::clock::{unix, SharedClock};
use crate::config::{BillingConfig, Config, CostsConfig, PlanLimits, PlansConfig};
use crate::ids::UserId;
use crate::store::{
    JobKind, LedgerEntry, LedgerReason, Plan, Posting, Role, Store, StoreError, UserRecord,
};

/// Why a billing request failed; `crate::error` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("this job costs {cost} credits and the balance is {balance}; buy credits or wait for the monthly grant")]
    InsufficientCredits { cost: u64, balance: i64 },
    #[error("{0}")]
    Invalid(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BillingError {
    pub fn code(&self) -> &'static str {
        match self {
            BillingError::InsufficientCredits { .. } => "insufficient_credits",
            BillingError::Invalid(_) => "invalid_request",
            BillingError::NotFound(_) => "not_found",
            BillingError::Store(e) => e.code(),
        }
    }
}

/// Costs and plan limits, from the configuration.
#[derive(Debug, Clone)]
pub struct Pricing {
    costs: CostsConfig,
    plans: PlansConfig,
    charge_admins: bool,
    upload_max_pixels: u64,
}

impl Pricing {
    pub fn new(config: &Config) -> Self {
        Self {
            costs: config.costs.clone(),
            plans: config.plans.clone(),
            charge_admins: config.billing.charge_admins,
            upload_max_pixels: config.uploads.max_pixels,
        }
    }

    /// The list price of a kind of job; `None` for free kinds (thumbnails, data exports,
    /// quick edits run as jobs).
    pub fn list_price(&self, kind: &JobKind) -> Option<u64> {
        match kind {
            JobKind::Cutout { .. } => Some(self.costs.cutout),
            JobKind::Decompose { .. } => Some(self.costs.decompose),
            JobKind::Edit { op, .. } => match op.get("op").and_then(|o| o.as_str()) {
                Some("split") => Some(self.costs.split),
                Some("inpaint") => Some(self.costs.inpaint),
                _ => None,
            },
            JobKind::Thumbnail { .. } | JobKind::Export => None,
        }
    }

    /// What `user` pays for a job of `kind` (admins nothing, unless configured).
    pub fn cost(&self, user: &UserRecord, kind: &JobKind) -> Option<u64> {
        let price = self.list_price(kind)?;
        Some(if user.role == Role::Admin && !self.charge_admins {
            0
        } else {
            price
        })
    }

    pub fn limits(&self, plan: Plan) -> &PlanLimits {
        match plan {
            Plan::Free => &self.plans.free,
            Plan::Pro => &self.plans.pro,
            Plan::Studio => &self.plans.studio,
        }
    }

    /// The largest upload `plan` allows, in pixels.
    pub fn max_pixels(&self, plan: Plan) -> u64 {
        match self.limits(plan).max_pixels {
            0 => self.upload_max_pixels,
            n => n.min(self.upload_max_pixels),
        }
    }
}

/// Ledger views, grants, adjustments and plan changes; cheap to clone.
#[derive(Clone)]
pub struct Billing {
    store: Store,
    clock: SharedClock,
    audit: AuditLog,
    pricing: Pricing,
    config: BillingConfig,
}

impl Billing {
    pub fn new(store: Store, clock: SharedClock, audit: AuditLog, config: &Config) -> Self {
        Self {
            store,
            clock,
            audit,
            pricing: Pricing::new(config),
            config: config.billing.clone(),
        }
    }

    pub fn pricing(&self) -> &Pricing {
        &self.pricing
    }

    pub fn grant_schedule(&self) -> &cron::Schedule {
        &self.config.grant_schedule
    }

    fn now(&self) -> i64 {
        unix(self.clock.now())
    }

    /// The member's balance (blocking).
    pub fn balance(&self, user: UserId) -> Result<i64, StoreError> {
        self.store.balance(user)
    }

    /// The member's balance and ledger, newest first (blocking).
    pub fn ledger(&self, user: UserId) -> Result<(i64, Vec<LedgerEntry>), StoreError> {
        let mut entries = self.store.ledger_of(user)?;
        entries.reverse();
        Ok((self.store.balance(user)?, entries))
    }

    /// An admin's correction of a member's credits, with their reason (blocking; the caller
    /// flushes). A debit may not take the balance below zero.
    pub fn adjust(
        &self,
        admin: &UserRecord,
        user: UserId,
        delta: i64,
        reason: &str,
    ) -> Result<LedgerEntry, BillingError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(BillingError::Invalid(
                "a credit adjustment needs a reason (1 to 500 characters)".into(),
            ));
        }
        if delta == 0 {
            return Err(BillingError::Invalid("credits_delta must not be 0".into()));
        }
        self.store
            .get_user(user)?
            .ok_or(BillingError::NotFound("member"))?;
        let entry = self
            .store
            .post(
                &Posting {
                    user,
                    delta,
                    reason: LedgerReason::Adjustment,
                    job_id: None,
                    note: Some(reason),
                    at: self.now(),
                },
                Some(0),
            )
            .map_err(|e| match e {
                StoreError::Conflict(_) => BillingError::InsufficientCredits {
                    cost: delta.unsigned_abs(),
                    balance: self.store.balance(user).unwrap_or(0),
                },
                other => other.into(),
            })?;
        self.audit.record(
            Actor::of(admin),
            "credits.adjust",
            format!("user:{user}"),
            serde_json::json!({"delta": delta, "reason": reason, "balance": entry.balance}),
        )?;
        Ok(entry)
    }
}
