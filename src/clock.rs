//! The injectable clock. Every expiry, retention and timeout decision reads a [`Clock`], never
//! the system time directly, so tests can jump 49 hours or 31 days without sleeping.

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// A source of "now".
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// Shared handle to whichever clock the app runs on.
pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to (tests, `sweep --as-of`).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, t: OffsetDateTime) {
        *self.0.lock().expect("clock lock") = t;
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("clock lock");
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock lock")
    }
}

/// Unix seconds, the unit of every persisted timestamp.
pub fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Unix seconds as RFC 3339 (UTC), the form every timestamp takes in the API and the CLI;
/// empty for a time outside what RFC 3339 can write.
pub fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(c.now(), OffsetDateTime::UNIX_EPOCH);
        c.advance(Duration::hours(49));
        assert_eq!(unix(c.now()), 49 * 3600);
        assert_eq!(rfc3339(49 * 3600), "1970-01-03T01:00:00Z");
    }
}
