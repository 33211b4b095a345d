//! Inactivity (P4): a free member with no sign-in or API use for `privacy.inactive_days` is
//! deleted by the sweep exactly as if they had deleted the account themselves (P5), after a
//! warning mail `privacy.inactive_warning_days` before. Admins and paid plans are never
//! deleted for inactivity.
//!
//! The warning is remembered on the member (`inactivity_warned_at`); activity after it makes
//! it void, so an account is only deleted when a warning was sent after its last activity
//! and at least the warning period ago — a sweep that runs late warns first and deletes a
//! warning period later, never without notice.

use super::PrivacyService;
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::ids::UserId;
use crate::mail::{MailError, Notice};
use crate::store::{Plan, Role, UserRecord};

const DAY: i64 = 86_400;

/// What inactivity calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InactivityStep {
    Warn,
    Delete,
}

/// One member's step, as the sweep reports it.
#[derive(Debug, Clone)]
pub struct InactivityItem {
    pub step: InactivityStep,
    pub user: UserId,
    pub last_active_at: i64,
}

impl PrivacyService {
    fn step_for(&self, u: &UserRecord, as_of: i64) -> Option<InactivityStep> {
        if u.role != Role::Member || u.plan != Plan::Free {
            return None;
        }
        let idle = as_of - u.last_active_at;
        let limit = self.config.inactive_days as i64 * DAY;
        let notice = self.config.inactive_warning_days as i64 * DAY;
        match u.inactivity_warned_at.filter(|w| *w >= u.last_active_at) {
            None if idle >= limit - notice => Some(InactivityStep::Warn),
            Some(warned) if idle >= limit && as_of - warned >= notice => {
                Some(InactivityStep::Delete)
            }
            _ => None,
        }
    }

    /// The warnings and deletions due at `as_of` (blocking).
    pub fn inactivity_due(&self, as_of: i64) -> Result<Vec<InactivityItem>, MailError> {
        Ok(self
            .store()
            .list_users()?
            .iter()
            .filter_map(|u| {
                self.step_for(u, as_of).map(|step| InactivityItem {
                    step,
                    user: u.id,
                    last_active_at: u.last_active_at,
                })
            })
            .collect())
    }

    /// Sends the warnings and deletes the accounts due at `as_of` (blocking; the caller
    /// flushes, wakes the outbox, and purges the deleted members' files).
    pub fn apply_inactivity(&self, as_of: i64) -> Result<Vec<InactivityItem>, MailError> {
        let due = self.inactivity_due(as_of)?;
        let limit = self.config.inactive_days as i64 * DAY;
        let notice = self.config.inactive_warning_days as i64 * DAY;
        for item in &due {
            let Some(mut user) = self.store().get_user(item.user)? else {
                continue;
            };
            match item.step {
                InactivityStep::Warn => {
                    let delete_on = (user.last_active_at + limit).max(as_of + notice);
                    self.outbox.queue(
                        &user.email,
                        &Notice::InactivityWarning {
                            name: user.name.clone(),
                            last_active: rfc3339(user.last_active_at),
                            delete_on: rfc3339(delete_on),
                            inactive_days: self.config.inactive_days,
                        },
                    )?;
                    user.inactivity_warned_at = Some(as_of);
                    self.store().put_user(&user)?;
                    self.audit.record(
                        Actor::Sweep,
                        "inactivity.warn",
                        format!("user:{}", user.id),
                        serde_json::json!({"delete_on": rfc3339(delete_on)}),
                    )?;
                }
                InactivityStep::Delete => {
                    self.delete_account_as(&user, Actor::Sweep, "user.delete_inactive")?;
                }
            }
        }
        Ok(due)
    }
}
