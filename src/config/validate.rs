//! The rules loaded settings must keep. Start-up stops at the first broken one; `opsguard
//! config check` collects every one (`problems`), then goes further (`check_targets`).

use super::{ConfigError, Settings, audit, schedules};

impl Settings {
    /// The first broken rule, if any.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every broken rule, each on its own.
    pub fn problems(&self) -> Vec<ConfigError> {
        let invalid =
            |key: &'static str| move |problem: String| ConfigError::Invalid { key, problem };
        let mut out: Vec<ConfigError> = Vec::new();
        let mut push = |r: Result<(), ConfigError>| out.extend(r.err());
        if self.authz.cache_ttl_secs > 300 {
            push(Err(invalid("authz.cache_ttl_secs")("at most 300".into())));
        }
        if self.telegram.max_updates_in_work == 0 || self.authz.cache_max_users == 0 {
            push(Err(invalid(
                "telegram.max_updates_in_work / authz.cache_max_users",
            )("must be at least 1".into())));
        }
        if self.rate_limits.window_secs == 0 {
            push(Err(invalid("rate_limits.window_secs")(
                "must be positive".into(),
            )));
        }
        push(self.flood.validate().map_err(invalid("flood")));
        if self.outbox.batch_size == 0 || self.outbox.max_attempts < 1 {
            push(Err(invalid("outbox")(
                "batch_size and max_attempts must be at least 1".into(),
            )));
        }
        if self.http.metrics_cache_secs == 0 {
            // /metrics needs no credentials: every scrape must not become database queries.
            push(Err(invalid("http.metrics_cache_secs")(
                "at least 1 (anyone who reaches /metrics could otherwise load the database)".into(),
            )));
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            push(Err(invalid("http.listen")("expected host:port".into())));
        }
        let g = &self.gates;
        if g.totp_enrol_ttl_secs < 1
            || g.totp_enrol_ttl_secs * 1000 + g.sweep_interval_ms as i64 > 600_000
            || g.sweep_interval_ms == 0
        {
            push(Err(invalid("gates.totp_enrol_ttl_secs")(
                "an enrolment URI must be deleted within 10 minutes: totp_enrol_ttl_secs (at least 1) plus sweep_interval_ms (at least 1) must stay within 600 s".into(),
            )));
        }
        if g.totp_lockout_secs < 1 || g.totp_lockout_max_secs < g.totp_lockout_secs {
            push(Err(invalid("gates.totp_lockout_max_secs")(
                "totp_lockout_secs must be positive and totp_lockout_max_secs at least as long"
                    .into(),
            )));
        }
        let mut commands: Vec<&String> = self.gates.commands.keys().collect();
        commands.sort();
        for name in commands {
            if crate::domain::command::spec_by_name(name).is_none() {
                push(Err(invalid("gates.commands")(format!(
                    "unknown command '{name}'"
                ))));
            }
        }
        push(self.validate_secrets());
        push(audit::check_runtime_role(&self.database.runtime_role));
        out.extend(self.schedule_problems());
        out.extend(self.backups.validate().err().map(invalid("backups")));
        out.extend(self.logins.validate().err().map(invalid("logins")));
        out
    }

    /// The scheduler's settings, then each schedule on its own, then duplicate names.
    fn schedule_problems(&self) -> Vec<ConfigError> {
        if let Err(e) = schedules::validate(&self.scheduler, &[]) {
            return vec![e];
        }
        let all = self.all_schedules();
        let mut out: Vec<ConfigError> = all
            .iter()
            .filter_map(|s| schedules::validate(&self.scheduler, std::slice::from_ref(s)).err())
            .collect();
        if out.is_empty() {
            out.extend(schedules::validate(&self.scheduler, &all).err());
        }
        out
    }
}
