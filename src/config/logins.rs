//! Failed-login alerting settings (`[logins]`): the ingest API and its tokens, the Redis
//! stream consumer, detection rules, alert cool-down and chats, and event retention.

use crate::domain::auth_event::Cause;
use crate::domain::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LoginSettings {
    pub ingest: IngestSettings,
    pub stream: StreamSettings,
    /// Detection rules; the defaults are the platform's policy (see `config/default.toml`).
    pub rules: Vec<RuleSettings>,
    /// An alert may fire again for the same rule and key only after its key has been quiet
    /// this long; until then further matches update the open alert.
    pub cooldown_secs: u64,
    /// Networks whose failures never alert (an office NAT, a health checker): their events
    /// are stored and listed, never counted by a rule.
    pub ignore: Vec<ipnet::IpNet>,
    /// Chats alerts are pushed to (through the outbox). Empty: alerts are recorded and
    /// listed in `/alerts`, never pushed.
    pub alert_chats: Vec<i64>,
    /// An open alert nobody acknowledged (or silenced) this long after its page is pushed
    /// once more to `escalation_chats`.
    pub escalate_after_secs: u64,
    /// Chats unacknowledged alerts escalate to. Empty: no escalation.
    pub escalation_chats: Vec<i64>,
    /// How long a pushed alert's buttons work.
    pub button_ttl_secs: i64,
    /// A pushed alert that counts on is edited in place with its count, at most once per
    /// this many seconds (the latest count wins); 0: never edited.
    pub update_every_secs: u64,
    /// What a batch only counts on alerts already open is recorded once per this many ms
    /// by a background flusher, merged per alert, not in the batch's own transaction (an
    /// attack from a few sources counts on the same alerts with every batch). A page is
    /// never delayed; what `/alerts` shows may lag by this much. 0: with every batch.
    pub counts_every_ms: u64,
    /// Events older than this are deleted by `/prune_logins`.
    pub retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IngestSettings {
    /// HS256 key for service tokens (`OPSGUARD_INGEST_JWT_SECRET`), at least 32 bytes.
    /// Without it the ingest API answers 503 and `token issue` refuses.
    pub jwt_secret: Option<Secret>,
    /// The key before the last rotation (`OPSGUARD_INGEST_JWT_PREVIOUS_SECRET`): tokens and
    /// stream entries it signed are still accepted (chosen by `kid`), never issued.
    pub jwt_previous_secret: Option<Secret>,
    /// The required `iss` claim.
    pub issuer: String,
    pub max_events: usize,
    pub max_body_bytes: usize,
    /// An event dated further in the future than this is rejected.
    pub max_future_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StreamSettings {
    pub enabled: bool,
    /// The stream services `XADD` to (not prefixed: services write it by this name).
    pub key: String,
    /// Where entries that are not valid events are moved.
    pub dead_letter_key: String,
    pub group: String,
    /// Entries read per `XREADGROUP`.
    pub batch: usize,
    pub block_ms: u64,
    /// Entries another consumer has held unacknowledged this long are taken over.
    pub claim_idle_ms: u64,
    /// Deliveries of an entry PostgreSQL keeps refusing (an error answered by the server,
    /// not an outage) before it is dead-lettered with the reason.
    pub max_attempts: u32,
    /// Consumers (replicas that died) idle this long with nothing pending are removed from
    /// the group; what they held is claimed first (`claim_idle_ms`).
    pub dead_consumer_idle_ms: u64,
}

/// What a rule counts, within a sliding window of `window_secs`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Failures from one IP.
    Ip,
    /// Failures on one account.
    Account,
    /// Distinct accounts one IP failed on.
    Spray,
    /// Failures across everything.
    Surge,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RuleSettings {
    /// Unique; letters, digits, '-', '_'. Shown in alerts and used by `/silence`.
    pub name: String,
    pub kind: RuleKind,
    /// The rule fires when the count in the window reaches this ("more than 10" is 11).
    pub fire_at: u32,
    pub window_secs: u64,
    /// Only failures with this cause count (`unknown_user`, `bad_password`); none: all.
    #[serde(default)]
    pub reason: Option<Cause>,
    /// This rule's cool-down, instead of `[logins] cooldown_secs`.
    #[serde(default)]
    pub cooldown_secs: Option<u64>,
    /// An `account` rule's threshold for named accounts, instead of `fire_at` (a higher
    /// one for `root`, say).
    #[serde(default)]
    pub accounts: BTreeMap<String, u32>,
}

impl RuleSettings {
    /// How long a key must stay below the threshold before its alert closes and a new
    /// episode may page: the rule's cool-down, and never less than its window (a slow
    /// rule's events minutes apart are one attack, not one page each).
    pub fn gap_secs(&self, default_cooldown: u64) -> u64 {
        self.cooldown_secs
            .unwrap_or(default_cooldown)
            .max(self.window_secs)
    }
}

impl Default for LoginSettings {
    fn default() -> Self {
        let rule = |name: &str, kind, fire_at, window_secs| RuleSettings {
            name: name.into(),
            kind,
            fire_at,
            window_secs,
            reason: None,
            cooldown_secs: None,
            accounts: BTreeMap::new(),
        };
        LoginSettings {
            ingest: IngestSettings::default(),
            stream: StreamSettings::default(),
            rules: vec![
                rule("ip-failures", RuleKind::Ip, 11, 60),
                rule("ip-slow", RuleKind::Ip, 5, 600),
                rule("ip-long", RuleKind::Ip, 20, 86_400),
                RuleSettings {
                    cooldown_secs: Some(86_400),
                    ..rule("account-lockout", RuleKind::Account, 5, 900)
                },
                rule("password-spray", RuleKind::Spray, 20, 600),
                RuleSettings {
                    reason: Some(Cause::UnknownUser),
                    ..rule("user-enumeration", RuleKind::Spray, 10, 600)
                },
                rule("surge", RuleKind::Surge, 101, 60),
            ],
            cooldown_secs: 900,
            ignore: Vec::new(),
            escalate_after_secs: 900,
            escalation_chats: Vec::new(),
            alert_chats: Vec::new(),
            button_ttl_secs: 86_400,
            update_every_secs: 30,
            counts_every_ms: 1000,
            retention_days: 90,
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            jwt_secret: None,
            jwt_previous_secret: None,
            issuer: "opsguard-ingest".into(),
            max_events: 10_000,
            max_body_bytes: 5 * 1024 * 1024,
            max_future_secs: 300,
        }
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            enabled: false,
            key: "opsguard:auth-events".into(),
            dead_letter_key: "opsguard:auth-events:dead".into(),
            group: "opsguard".into(),
            batch: 1000,
            block_ms: 1000,
            claim_idle_ms: 30_000,
            max_attempts: 5,
            dead_consumer_idle_ms: 600_000,
        }
    }
}

impl IngestSettings {
    /// The current key, when one is set (an empty value counts as unset).
    pub fn current_key(&self) -> Option<&Secret> {
        self.jwt_secret.as_ref().filter(|s| !s.is_empty())
    }

    /// The previous key, when one is set.
    pub fn previous_key(&self) -> Option<&Secret> {
        self.jwt_previous_secret.as_ref().filter(|s| !s.is_empty())
    }

    /// Each key set is at least 32 bytes; a previous key needs a current one.
    pub fn validate(&self) -> Result<(), String> {
        let min = super::MIN_SECRET_LEN;
        let keys = [
            ("OPSGUARD_INGEST_JWT_SECRET", self.current_key()),
            ("OPSGUARD_INGEST_JWT_PREVIOUS_SECRET", self.previous_key()),
        ];
        for (name, key) in keys {
            if let Some(key) = key.filter(|k| k.expose().len() < min) {
                return Err(format!(
                    "{name} is {} bytes; an HS256 key must be at least {min} bytes \
                     (make one with `openssl rand -base64 32`)",
                    key.expose().len()
                ));
            }
        }
        if self.previous_key().is_some() && self.current_key().is_none() {
            return Err(
                "OPSGUARD_INGEST_JWT_PREVIOUS_SECRET is set without OPSGUARD_INGEST_JWT_SECRET"
                    .into(),
            );
        }
        Ok(())
    }
}

impl LoginSettings {
    /// Rule names are unique and well-formed, thresholds and windows positive.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for r in &self.rules {
            let ok = !r.name.is_empty()
                && r.name.len() <= 64
                && r.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(format!(
                    "rule name '{}' is not [A-Za-z0-9_-]{{1,64}}",
                    r.name
                ));
            }
            if !seen.insert(r.name.as_str()) {
                return Err(format!("rule '{}' is defined twice", r.name));
            }
            if r.fire_at == 0 || r.window_secs == 0 {
                return Err(format!(
                    "rule '{}': fire_at and window_secs must be > 0",
                    r.name
                ));
            }
            if !r.accounts.is_empty() && r.kind != RuleKind::Account {
                return Err(format!(
                    "rule '{}': accounts (per-account thresholds) need kind = \"account\"",
                    r.name
                ));
            }
            if let Some((name, _)) = r.accounts.iter().find(|(_, fire_at)| **fire_at == 0) {
                return Err(format!("rule '{}': accounts.{name} must be > 0", r.name));
            }
        }
        if self.stream.batch == 0 || self.ingest.max_events == 0 {
            return Err("stream.batch and ingest.max_events must be > 0".into());
        }
        if self.stream.max_attempts == 0 {
            return Err("stream.max_attempts must be at least 1".into());
        }
        // A live consumer reads at least every block_ms: only a dead one is idle longer.
        if self.stream.dead_consumer_idle_ms < 3 * self.stream.block_ms.max(1000) {
            return Err(
                "stream.dead_consumer_idle_ms must be at least 3 × block_ms (and 3000)".into(),
            );
        }
        Ok(())
    }
}
