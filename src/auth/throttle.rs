//! Login throttling (P17): repeated failed sign-ins to one account, or from one client
//! address, are answered `rate_limited` with a wait — decided before any password is hashed,
//! so neither guessing nor a flood can make the server spend Argon2 time on them.
//!
//! Each account and each client has an allowance of failures; from it on, every further
//! failure locks that key out for 1 s, 2 s, 4 s, … up to `auth.login_lockout_max_secs`. An
//! attempt counts as a failure from the moment it is let through, so a burst of concurrent
//! attempts is throttled before any of them is hashed; a successful sign-in then clears the
//! account and takes its own attempt off the client's count (only that one: a valid account
//! must not launder a client that is guessing others). Keys are HMAC-SHA256 of the address (or the lower-cased
//! email) under a random salt that is replaced every day (by the injected clock), which
//! also forgets every entry: no raw address or email is held, and nothing here is ever
//! written to the store, the log or the audit log. Memory is bounded: entries past their
//! lockout and idle for a day are dropped, and the table never holds more than
//! [`MAX_ENTRIES`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::clock::{unix, SharedClock};
use crate::config::AuthConfig;

/// Most keys held at once; past it the oldest entries are dropped first.
pub const MAX_ENTRIES: usize = 100_000;
const DAY: i64 = 86_400;

type Key = [u8; 32];

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    blocked_until: i64,
    last: i64,
}

struct State {
    day: i64,
    salt: [u8; 32],
    entries: HashMap<Key, Entry>,
}

/// Failures allowed and the longest lockout, from `[auth]`.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub per_account: u32,
    pub per_client: u32,
    pub max_lockout_secs: i64,
}

impl From<&AuthConfig> for ThrottlePolicy {
    fn from(c: &AuthConfig) -> Self {
        Self {
            per_account: c.login_failures_per_account,
            per_client: c.login_failures_per_client,
            max_lockout_secs: c.login_lockout_max_secs as i64,
        }
    }
}

/// The failure counts of accounts and clients.
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    clock: SharedClock,
    state: Mutex<State>,
}

fn fresh_salt() -> [u8; 32] {
    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    salt
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy, clock: SharedClock) -> Self {
        let day = unix(clock.now()).div_euclid(DAY);
        Self {
            policy,
            clock,
            state: Mutex::new(State {
                day,
                salt: fresh_salt(),
                entries: HashMap::new(),
            }),
        }
    }

    /// The state for `now`, with the salt (and every entry) replaced on a new day.
    fn state(&self, now: i64) -> std::sync::MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let day = now.div_euclid(DAY);
        if day != st.day {
            st.day = day;
            st.salt = fresh_salt();
            st.entries.clear();
        }
        st
    }

    fn keys(salt: &[u8; 32], email: &str, client: Option<IpAddr>) -> (Key, Option<Key>) {
        let mac = |kind: &[u8], value: &[u8]| -> Key {
            let mut m = Hmac::<Sha256>::new_from_slice(salt).expect("any key length");
            m.update(kind);
            m.update(value);
            m.finalize().into_bytes().into()
        };
        let account = mac(b"account\0", email.trim().to_lowercase().as_bytes());
        let client = client.map(|ip| mac(b"client\0", ip.to_string().as_bytes()));
        (account, client)
    }

    /// A sign-in attempt: `Err(seconds)` while the account or the client is locked out
    /// (nothing is counted then); otherwise the attempt is counted as a failure against both
    /// until [`succeeded`](Self::succeeded) says otherwise — so a burst of concurrent attempts
    /// is throttled before any of them has been hashed.
    pub fn attempt(&self, email: &str, client: Option<IpAddr>) -> Result<(), u64> {
        let now = unix(self.clock.now());
        let mut st = self.state(now);
        let (account, client) = Self::keys(&st.salt, email, client);
        let wait = [Some(account), client]
            .into_iter()
            .flatten()
            .filter_map(|k| st.entries.get(&k))
            .map(|e| e.blocked_until - now)
            .max()
            .unwrap_or(0);
        if wait > 0 {
            return Err(wait as u64);
        }
        let max = self.policy.max_lockout_secs;
        let mut count = |key: Key, allowance: u32| {
            let e = st.entries.entry(key).or_insert(Entry {
                failures: 0,
                blocked_until: 0,
                last: now,
            });
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            if e.failures >= allowance {
                let doublings = (e.failures - allowance).min(30);
                e.blocked_until = now + (1i64 << doublings).min(max);
            }
        };
        count(account, self.policy.per_account);
        if let Some(client) = client {
            count(client, self.policy.per_client);
        }
        if st.entries.len() > MAX_ENTRIES {
            prune(&mut st.entries, now);
        }
        Ok(())
    }

    /// The attempt succeeded: the account starts over, and the client's count loses this
    /// attempt only (one valid account must not launder a client guessing others).
    pub fn succeeded(&self, email: &str, client: Option<IpAddr>) {
        let now = unix(self.clock.now());
        let mut st = self.state(now);
        let (account, client) = Self::keys(&st.salt, email, client);
        st.entries.remove(&account);
        if let Some(e) = client.and_then(|k| st.entries.get_mut(&k)) {
            e.failures = e.failures.saturating_sub(1);
            if e.failures < self.policy.per_client {
                e.blocked_until = 0;
            }
        }
    }

    /// How many keys are held.
    pub fn tracked(&self) -> usize {
        self.state(unix(self.clock.now())).entries.len()
    }
}

/// Drops entries no longer locked out and idle for a day; if that is not enough, the
/// oldest until the table is back to three quarters of its bound.
fn prune(entries: &mut HashMap<Key, Entry>, now: i64) {
    entries.retain(|_, e| e.blocked_until > now || now - e.last < DAY);
    if entries.len() > MAX_ENTRIES {
        let mut by_age: Vec<_> = entries.iter().map(|(k, e)| (e.last, *k)).collect();
        by_age.sort_unstable();
        for (_, k) in by_age.iter().take(entries.len() - MAX_ENTRIES * 3 / 4) {
            entries.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use std::sync::Arc;

    fn throttle() -> (ManualClock, LoginThrottle) {
        let clock = ManualClock::new(time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(100));
        let policy = ThrottlePolicy {
            per_account: 3,
            per_client: 5,
            max_lockout_secs: 8,
        };
        (clock.clone(), LoginThrottle::new(policy, Arc::new(clock)))
    }

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)));

    #[test]
    fn an_account_locks_out_for_longer_each_time_up_to_the_limit() {
        let (clock, t) = throttle();
        assert_eq!(t.attempt("a@b.c", None), Ok(()));
        assert_eq!(t.attempt("a@b.c", None), Ok(()));
        assert_eq!(t.attempt("A@B.C", None), Ok(())); // the third, whatever the case
        assert_eq!(t.attempt("a@b.c", None), Err(1));
        let mut waits = Vec::new();
        for _ in 0..6 {
            let wait = t.attempt("a@b.c", None).unwrap_err();
            waits.push(wait);
            clock.advance(time::Duration::seconds(wait as i64));
            assert_eq!(t.attempt("a@b.c", None), Ok(()));
        }
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        // another account is not affected; a success starts the account over
        assert_eq!(t.attempt("other@b.c", None), Ok(()));
        clock.advance(time::Duration::seconds(8));
        assert_eq!(t.attempt("a@b.c", None), Ok(()));
        t.succeeded("a@b.c", None);
        assert_eq!(t.attempt("a@b.c", None), Ok(()));
    }

    #[test]
    fn a_client_guessing_many_accounts_is_locked_out_for_all_of_them() {
        let (clock, t) = throttle();
        for i in 0..5 {
            assert_eq!(t.attempt(&format!("user{i}@b.c"), IP), Ok(()));
        }
        assert_eq!(t.attempt("someone.new@b.c", IP), Err(1));
        // the same accounts from elsewhere are fine
        assert_eq!(t.attempt("someone.new@b.c", None), Ok(()));
        // one success does not clear the client
        clock.advance(time::Duration::seconds(1));
        assert_eq!(t.attempt("valid@b.c", IP), Ok(()));
        t.succeeded("valid@b.c", IP);
        assert_eq!(t.attempt("user9@b.c", IP), Err(2));
    }

    #[test]
    fn successes_from_one_client_are_never_throttled() {
        let (_, t) = throttle();
        for _ in 0..50 {
            assert_eq!(t.attempt("a@b.c", IP), Ok(()));
            t.succeeded("a@b.c", IP);
        }
    }

    #[test]
    fn a_new_day_forgets_everything_under_a_new_salt() {
        let (clock, t) = throttle();
        for _ in 0..3 {
            t.attempt("a@b.c", IP).unwrap();
        }
        let before = t.state(unix(clock.now())).salt;
        assert!(t.attempt("a@b.c", IP).is_err());
        clock.advance(time::Duration::days(1));
        assert_eq!(t.tracked(), 0);
        assert_eq!(t.attempt("a@b.c", IP), Ok(()));
        assert_ne!(t.state(unix(clock.now())).salt, before);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut entries = HashMap::new();
        for i in 0..(MAX_ENTRIES + 10) {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_be_bytes());
            entries.insert(
                k,
                Entry {
                    failures: 1,
                    blocked_until: 0,
                    last: (i / 2) as i64,
                },
            );
        }
        // none idle for a day: the oldest go
        prune(&mut entries, 50_010);
        assert_eq!(entries.len(), MAX_ENTRIES * 3 / 4);
        assert!(entries.values().all(|e| e.last >= 12_502));
        // a day later every one of them is idle
        prune(&mut entries, 50_010 + DAY);
        assert!(entries.is_empty());
    }
}
