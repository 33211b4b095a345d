//! Monthly grants: each member's periods start on their sign-up day, month after month
//! (clamped to the month's last day); the plan's `monthly_credits` are granted once per
//! period — at sign-up for the first, then by the scheduler (`billing.grant_schedule`) for
//! every period it finds ungranted. The store keys each grant by its period, so running
//! twice, restarting or moving the clock back grants nothing more.

use time::{Date, Month, OffsetDateTime};
use tokio::sync::watch;

use super::{Billing, Pricing};
use crate::clock::{unix, SharedClock};
use crate::store::{LedgerEntry, LedgerReason, Posting, Store, StoreError, UserRecord};

/// Months between `start` and `now`, counting a month once its day (clamped to the month's
/// length) and time of day are reached: the index of the period `now` falls in.
pub fn period_index(start: i64, now: i64) -> u32 {
    let (Ok(s), Ok(n)) = (
        OffsetDateTime::from_unix_timestamp(start),
        OffsetDateTime::from_unix_timestamp(now),
    ) else {
        return 0;
    };
    if n <= s {
        return 0;
    }
    let mut months = (n.year() - s.year()) * 12 + (n.month() as i32 - s.month() as i32);
    if months > 0 && period_start(s, months as u32) > n {
        months -= 1;
    }
    months.max(0) as u32
}

/// When period `k` begins for a member who signed up at `s`.
fn period_start(s: OffsetDateTime, k: u32) -> OffsetDateTime {
    let total = s.month() as i32 - 1 + k as i32;
    let year = s.year() + total.div_euclid(12);
    let month = Month::try_from((total.rem_euclid(12) + 1) as u8).expect("1..=12");
    let day = s.day().min(month.length(year));
    let date = Date::from_calendar_date(year, month, day).expect("a clamped day is valid");
    s.replace_date(date)
}

/// Grants `user` their plan's credits for the period `now` falls in, unless already granted
/// (blocking; the caller flushes). Earlier missed periods are not back-filled: credits are
/// for the month they are granted in. The job queue calls this before a reservation, so a
/// member's first period is granted by their first use even before the scheduler runs.
pub fn grant_current(
    store: &Store,
    pricing: &Pricing,
    user: &UserRecord,
    now: i64,
) -> Result<Option<LedgerEntry>, StoreError> {
    let period = period_index(user.created_at, now);
    let credits = pricing.limits(user.plan).monthly_credits;
    let note = format!("{} plan, period {}", user.plan.as_str(), period + 1);
    store.grant(
        &Posting {
            user: user.id,
            delta: credits as i64,
            reason: LedgerReason::Grant,
            job_id: None,
            note: Some(&note),
            at: now,
        },
        period,
    )
}

impl Billing {
    /// [`grant_current`] for one member.
    pub fn grant_current(
        &self,
        user: &UserRecord,
        now: i64,
    ) -> Result<Option<LedgerEntry>, StoreError> {
        grant_current(&self.store, &self.pricing, user, now)
    }

    /// Grants every member whose current period has no grant yet; returns how many were
    /// granted (blocking; flushes).
    pub fn run_grants(&self, now: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for user in self.store.list_users()? {
            if self.grant_current(&user, now)?.is_some() {
                n += 1;
            }
        }
        if n > 0 {
            self.store.flush_blocking()?;
            tracing::info!(members = n, "monthly credits granted");
        }
        Ok(n)
    }
}

/// Runs [`Billing::run_grants`] at start and then on `billing.grant_schedule` until
/// `shutdown` turns true.
pub fn spawn_grants(
    billing: Billing,
    clock: SharedClock,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let b = billing.clone();
            let now = unix(clock.now());
            match tokio::task::spawn_blocking(move || b.run_grants(now)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("monthly grants failed: {e}"),
                Err(e) => tracing::error!("monthly grants task failed: {e}"),
            }
            let now = clock.now();
            let Some(next) = crate::retention::next_after(billing.grant_schedule(), now) else {
                return;
            };
            let wait = std::time::Duration::try_from((next - now).max(time::Duration::ZERO))
                .unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn at(t: OffsetDateTime) -> i64 {
        t.unix_timestamp()
    }

    #[test]
    fn periods_start_on_the_sign_up_day_clamped_to_short_months() {
        let s = at(datetime!(2026-01-31 10:00 UTC));
        assert_eq!(period_index(s, s), 0);
        assert_eq!(period_index(s, at(datetime!(2026-02-27 23:00 UTC))), 0);
        // February has 28 days: its period starts on the 28th
        assert_eq!(period_index(s, at(datetime!(2026-02-28 10:00 UTC))), 1);
        assert_eq!(period_index(s, at(datetime!(2026-03-31 09:59 UTC))), 1);
        assert_eq!(period_index(s, at(datetime!(2026-03-31 10:00 UTC))), 2);
        assert_eq!(period_index(s, at(datetime!(2027-01-31 10:00 UTC))), 12);
        // a clock before sign-up is period 0, never negative
        assert_eq!(period_index(s, at(datetime!(2025-12-01 00:00 UTC))), 0);
    }
}
