//! `opsguard config check`: the effective configuration (every secret as a fingerprint or a
//! key id) and a summary on stdout; on stderr each problem (every one, not the first) and
//! warning; exit 1 when there is a problem. Also the rule on guessable secrets (`validate_secrets`).

use super::{ConfigError, Settings};
use crate::domain::secret::Secret;
use std::fmt::Write as _;

fn shown(secret: Option<&Secret>) -> String {
    secret
        .filter(|s| !s.is_empty())
        .map_or_else(|| "not set".into(), |s| s.to_string())
}

/// `opsguard config check`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCmd {
    /// Load the settings as `serve` would and print them; exits non-zero on a problem.
    Check,
}

impl ConfigCmd {
    /// Load the settings from the process environment, check them, print: the exit code.
    pub async fn run(&self) -> std::process::ExitCode {
        let env: std::collections::HashMap<String, String> = std::env::vars().collect();
        let ConfigCmd::Check = self;
        let (settings, tree) = match Settings::read_effective(&env) {
            Ok(read) => read,
            Err(e) => {
                for line in e.to_string().lines() {
                    eprintln!("problem: {line}");
                }
                eprintln!("configuration NOT OK: it cannot be read");
                return std::process::ExitCode::FAILURE;
            }
        };
        let mut problems: Vec<String> = settings.problems().iter().map(|p| p.to_string()).collect();
        problems.extend(settings.target_problems());
        println!("# The effective configuration; secrets as sha256 fingerprints.");
        println!(
            "{}",
            toml::to_string(&super::effective::masked(&tree)).unwrap_or_default()
        );
        print!("{}", settings.summary());
        for warning in settings.pg_dump_warnings().await {
            eprintln!("warning: {warning}");
        }
        for problem in &problems {
            eprintln!("problem: {problem}");
        }
        if problems.is_empty() {
            println!("configuration OK");
            std::process::ExitCode::SUCCESS
        } else {
            eprintln!("configuration NOT OK: {} problem(s)", problems.len());
            std::process::ExitCode::FAILURE
        }
    }
}

/// The shortest webhook secret and ingest key accepted (characters, bytes).
pub const MIN_SECRET_LEN: usize = 32;

impl Settings {
    /// Refuse secrets that can be guessed: a webhook secret under 32 characters (or outside
    /// Telegram's alphabet), an ingest key under 32 bytes. Also run by `Application::build`,
    /// since settings built in code skip `load_with`.
    pub fn validate_secrets(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.telegram.webhook_secret {
            let value = secret.expose();
            let alphabet = value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !(MIN_SECRET_LEN..=256).contains(&value.len()) || !alphabet {
                return Err(ConfigError::Invalid {
                    key: "OPSGUARD_WEBHOOK_SECRET",
                    problem: format!(
                        "must be {MIN_SECRET_LEN}-256 characters of A-Z, a-z, 0-9, _ and - \
                         (Telegram's rule; this one has {} characters{}); \
                         make one with `openssl rand -hex 32`",
                        value.chars().count(),
                        if alphabet {
                            ""
                        } else {
                            ", some outside that set"
                        }
                    ),
                });
            }
        }
        self.logins
            .ingest
            .validate()
            .map_err(|problem| ConfigError::Invalid {
                key: "OPSGUARD_INGEST_JWT_SECRET",
                problem,
            })?;
        if self.logins.stream.enabled && self.logins.ingest.current_key().is_none() {
            return Err(ConfigError::Invalid {
                key: "logins.stream.enabled",
                problem: "the stream needs OPSGUARD_INGEST_JWT_SECRET: every entry must be \
                          signed with it (README: Failed-login alerts)"
                    .into(),
            });
        }
        Ok(())
    }

    /// The few lines `config check` prints after the effective configuration.
    pub fn summary(&self) -> String {
        let ingest = &self.logins.ingest;
        let telegram = match (self.token(), self.webhook_secret()) {
            (None, _) => "not configured (no OPSGUARD_TELEGRAM_TOKEN)".to_string(),
            (Some(t), Some(w)) => format!("webhook mode, token {t}, webhook secret {w}"),
            (Some(t), None) => format!("long polling, token {t}"),
        };
        let kid = |k: Option<&Secret>| {
            k.map_or_else(
                || "not set".into(),
                |k| format!("kid {}", crate::logins::keys::Keys::kid(k)),
            )
        };
        let stream = if self.logins.stream.enabled {
            format!("on ({}; entries must be signed)", self.logins.stream.key)
        } else {
            "off".into()
        };
        let mut out = String::new();
        let lines = [
            ("listen", self.http.listen.clone()),
            ("database", shown(Some(&self.database.url))),
            ("redis", shown(Some(&self.redis.url))),
            ("telegram", telegram),
            ("ingest key", kid(ingest.current_key())),
            ("previous ingest key", kid(ingest.previous_key())),
            ("stream ingest", stream),
            ("master key", shown(self.master_key.as_ref())),
            ("schedules", self.all_schedules().len().to_string()),
            ("managed secrets", self.secrets.len().to_string()),
            ("backup targets", self.backups.targets.len().to_string()),
        ];
        for (name, value) in lines {
            let _ = writeln!(out, "{name:<20} {value}");
        }
        out
    }
}
