//! Checks a deserialized [`Config`] beyond its types: ranges, both-or-neither pairs, the log
//! filter. The first problem found is returned, naming the key and where its value came from.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::Path;

use super::error::ConfigError;
use super::load::Origins;
use super::Config;

impl Config {
    /// Checks every value; [`Config::load`] has already done this for a loaded config.
    /// Use it after changing a `Config` in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with(&Origins::default())
    }

    pub(super) fn validate_with(&self, origins: &Origins) -> Result<(), ConfigError> {
        let check = Checker { origins };
        let s = &self.server;
        check.not_empty("server.data_dir", &s.data_dir)?;
        check.range(
            "server.request_timeout_secs",
            s.request_timeout_secs,
            1..=3600,
        )?;
        check.range(
            "server.header_read_timeout_secs",
            s.header_read_timeout_secs,
            1..=300,
        )?;
        check.range("server.shutdown_grace_secs", s.shutdown_grace_secs, 1..=600)?;
        check.range("server.heavy_concurrency", s.heavy_concurrency, 1..=256)?;
        check.range("server.heavy_per_member", s.heavy_per_member, 1..=64)?;
        check.range("server.heavy_wait_secs", s.heavy_wait_secs, 1..=300)?;
        check.range("server.max_connections", s.max_connections, 1..=65_536)?;
        check.range("server.write_timeout_secs", s.write_timeout_secs, 1..=3600)?;
        check.range(
            "server.downloads_per_member",
            s.downloads_per_member,
            1..=256,
        )?;
        if let Err(reason) = s.trusted_proxies() {
            return Err(check.invalid(
                "server.trusted_proxies",
                format!("{:?}", s.trusted_proxies),
                format!("{reason}; list IP addresses separated by commas"),
            ));
        }

        let tls = &self.tls;
        match (
            tls.cert.as_os_str().is_empty(),
            tls.key.as_os_str().is_empty(),
        ) {
            (false, true) => return Err(check.unpaired("tls.cert", &tls.cert, "tls.key")),
            (true, false) => return Err(check.unpaired("tls.key", &tls.key, "tls.cert")),
            _ => {}
        }

        let st = &self.store;
        check.range("store.cache_capacity_mb", st.cache_capacity_mb, 16..=65_536)?;
        check.range("store.flush_every_ms", st.flush_every_ms, 1..=10_000)?;

        let up = &self.uploads;
        check.range(
            "uploads.max_bytes",
            up.max_bytes,
            1024..=4 * 1024 * 1024 * 1024,
        )?;
        check.range("uploads.max_pixels", up.max_pixels, 1..=1_000_000_000)?;
        check.range("uploads.max_side", up.max_side, 1..=65_535)?;
        check.range("uploads.decode_concurrency", up.decode_concurrency, 1..=64)?;
        check.range("uploads.slot_wait_secs", up.slot_wait_secs, 1..=300)?;
        check.range(
            "uploads.max_stack_bytes",
            up.max_stack_bytes,
            16 << 20..=64 << 30,
        )?;

        let jobs = &self.jobs;
        check.range("jobs.workers", jobs.workers, 1..=64)?;
        check.range("jobs.max_attempts", jobs.max_attempts, 1..=100)?;
        check.range("jobs.keep_days", jobs.keep_days, 1..=3650)?;
        check.range("jobs.memory_budget_mb", jobs.memory_budget_mb, 0..=1 << 24)?;
        check.range(
            "jobs.retry_backoff_ms",
            jobs.retry_backoff_ms,
            0..=3_600_000,
        )?;

        // retention.schedule was parsed during deserialization.
        let r = &self.retention;
        check.range("retention.temporary_hours", r.temporary_hours, 24..=72)?;
        check.range("retention.free_days", r.free_days, 1..=3650)?;
        check.range("retention.pro_days", r.pro_days, 1..=3650)?;
        check.range("retention.studio_days", r.studio_days, 1..=3650)?;
        check.range("retention.sweep_batch", r.sweep_batch, 1..=100_000)?;

        let auth = &self.auth;
        check.range(
            "auth.session_idle_minutes",
            auth.session_idle_minutes,
            1..=525_600,
        )?;
        check.range(
            "auth.session_absolute_hours",
            auth.session_absolute_hours,
            1..=8760,
        )?;
        check.range("auth.argon2_concurrency", auth.argon2_concurrency, 1..=64)?;
        check.range(
            "auth.login_failures_per_account",
            auth.login_failures_per_account,
            1..=1000,
        )?;
        check.range(
            "auth.login_failures_per_client",
            auth.login_failures_per_client,
            1..=100_000,
        )?;
        check.range(
            "auth.login_lockout_max_secs",
            auth.login_lockout_max_secs,
            1..=86_400,
        )?;

        let email = &self.bootstrap.admin_email;
        if !looks_like_email(email) {
            return Err(check.invalid(
                "bootstrap.admin_email",
                format!("{email:?}"),
                "is not an email address: expected name@host".into(),
            ));
        }

        check.range("accounts.min_age", self.accounts.min_age, 13..=120)?;
        let privacy = &self.privacy;
        check.range(
            "privacy.deletion_purge_days",
            privacy.deletion_purge_days,
            1..=30,
        )?;
        check.range("privacy.inactive_days", privacy.inactive_days, 2..=3650)?;
        check.range(
            "privacy.inactive_warning_days",
            privacy.inactive_warning_days,
            1..=privacy.inactive_days.saturating_sub(1).max(1),
        )?;
        check.range(
            "privacy.export_link_hours",
            privacy.export_link_hours,
            1..=720,
        )?;
        check.range("accounts.token_hours", self.accounts.token_hours, 1..=720)?;
        let mail = &self.mail;
        let from_address = mail
            .from
            .rsplit_once('<')
            .map_or(mail.from.as_str(), |(_, a)| a.trim_end_matches('>'));
        if !looks_like_email(from_address.trim()) {
            return Err(check.invalid(
                "mail.from",
                format!("{:?}", mail.from),
                "is not a sender: expected name@host or Name <name@host>".into(),
            ));
        }
        if !(mail.base_url.starts_with("http://") || mail.base_url.starts_with("https://")) {
            return Err(check.invalid(
                "mail.base_url",
                format!("{:?}", mail.base_url),
                "must start with http:// or https://".into(),
            ));
        }
        let smtp = mail.smtp_url.expose();
        if !(smtp.is_empty() || smtp.starts_with("smtp://") || smtp.starts_with("smtps://")) {
            return Err(check.invalid(
                "mail.smtp_url",
                "(secret)".into(),
                "must start with smtp:// or smtps://, or be empty to spool to <data_dir>/outbox"
                    .into(),
            ));
        }

        let inf = &self.inference;
        check.range("inference.intra_threads", inf.intra_threads, 0..=256)?;
        check.range("inference.concurrency", inf.concurrency, 1..=64)?;

        let level = &self.log.level;
        let filter_err = if level.trim().is_empty() {
            Some("is empty".to_owned())
        } else {
            tracing_subscriber::EnvFilter::try_new(level)
                .err()
                .map(|err| format!("is not a valid log filter ({err})"))
        };
        if let Some(reason) = filter_err {
            return Err(check.invalid(
                "log.level",
                format!("{level:?}"),
                format!("{reason}: expected e.g. \"info\" or \"info,image_layered=debug\""),
            ));
        }
        Ok(())
    }
}

struct Checker<'a> {
    origins: &'a Origins,
}

impl Checker<'_> {
    fn invalid(&self, key: &str, value: String, reason: String) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            value,
            origin: self.origins.get(key),
            reason,
        }
    }

    fn range<T: PartialOrd + Display>(
        &self,
        key: &str,
        value: T,
        allowed: RangeInclusive<T>,
    ) -> Result<(), ConfigError> {
        if allowed.contains(&value) {
            return Ok(());
        }
        Err(self.invalid(
            key,
            value.to_string(),
            format!(
                "is out of range: allowed {}..={}",
                allowed.start(),
                allowed.end()
            ),
        ))
    }

    fn not_empty(&self, key: &str, path: &Path) -> Result<(), ConfigError> {
        if !path.as_os_str().is_empty() {
            return Ok(());
        }
        Err(self.invalid(key, "\"\"".into(), "must not be empty".into()))
    }

    fn unpaired(&self, key: &str, path: &Path, missing: &str) -> ConfigError {
        self.invalid(
            key,
            format!("{:?}", path.display().to_string()),
            format!("is set but {missing} is empty: set both or neither"),
        )
    }
}

fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, host)) => {
            !local.is_empty()
                && !host.is_empty()
                && !host.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(change: impl FnOnce(&mut Config)) -> String {
        let mut config = Config::default();
        change(&mut config);
        config
            .validate()
            .expect_err("should be invalid")
            .to_string()
    }

    #[test]
    fn ranges_are_enforced() {
        assert_eq!(
            err_of(|c| c.retention.temporary_hours = 80),
            "retention.temporary_hours = 80 is out of range: allowed 24..=72"
        );
        assert_eq!(
            err_of(|c| c.jobs.workers = 0),
            "jobs.workers = 0 is out of range: allowed 1..=64"
        );
        assert!(err_of(|c| c.retention.studio_days = 3651).starts_with("retention.studio_days"));
        assert!(err_of(|c| c.server.data_dir = "".into()).starts_with("server.data_dir"));
    }

    #[test]
    fn tls_needs_both_or_neither() {
        let msg = err_of(|c| c.tls.cert = "/etc/tls/cert.pem".into());
        assert!(msg.starts_with("tls.cert = \"/etc/tls/cert.pem\""), "{msg}");
        assert!(msg.contains("tls.key is empty"), "{msg}");
        let msg = err_of(|c| c.tls.key = "/etc/tls/key.pem".into());
        assert!(msg.starts_with("tls.key"), "{msg}");

        let mut config = Config::default();
        config.tls.cert = "/c.pem".into();
        config.tls.key = "/k.pem".into();
        config.validate().expect("both set is fine");
        assert!(config.tls.paths().is_some());
    }

    #[test]
    fn email_and_log_level_are_checked() {
        assert!(err_of(|c| c.bootstrap.admin_email = "admin".into())
            .starts_with("bootstrap.admin_email = \"admin\""));
        assert!(err_of(|c| c.log.level = "info,=[".into()).starts_with("log.level"));
        assert!(err_of(|c| c.log.level = " ".into()).starts_with("log.level"));
        let mut config = Config::default();
        config.log.level = "warn,image_layered=debug".into();
        config.validate().expect("a directive list is fine");
    }
}
