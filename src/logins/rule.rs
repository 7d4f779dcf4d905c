//! A detection rule as the detector runs it (from `config::logins`), and the grouping of
//! events by rule and window key, shared by detection and the rebuild from stored events.

use crate::config::{LoginSettings, RuleKind};
use crate::domain::auth_event::{AuthEvent, Cause};
use crate::domain::detection::{Counting, EventKey, Window};
use std::collections::HashMap;

pub struct Rule {
    pub name: String,
    pub kind: RuleKind,
    pub counting: Counting,
    pub window: Window,
    pub window_secs: u64,
    /// Only failures with this cause count.
    pub cause: Option<Cause>,
    /// Exceeding events this far apart are separate episodes (ms).
    pub gap_ms: i64,
    /// How many of a key's newest events its window state keeps.
    pub keep: u32,
    /// Thresholds of named accounts (an `account` rule's overrides).
    pub accounts: HashMap<String, u32>,
}

impl Rule {
    /// The rules of `settings`, in order.
    pub fn all_of(settings: &LoginSettings) -> Vec<Rule> {
        settings
            .rules
            .iter()
            .map(|r| Rule {
                name: r.name.clone(),
                kind: r.kind,
                counting: match r.kind {
                    RuleKind::Ip => Counting::FailuresByIp,
                    RuleKind::Account => Counting::FailuresByAccount,
                    RuleKind::Spray => Counting::AccountsByIp,
                    RuleKind::Surge => Counting::AllFailures,
                },
                window: Window {
                    fire_at: r.fire_at,
                    length_ms: (r.window_secs as i64).saturating_mul(1000),
                },
                window_secs: r.window_secs,
                cause: r.reason,
                gap_ms: (r.gap_secs(settings.cooldown_secs) as i64).saturating_mul(1000),
                keep: keep_for(r.accounts.values().fold(r.fire_at, |a, &b| a.max(b))),
                accounts: r.accounts.clone().into_iter().collect(),
            })
            .collect()
    }

    /// The window of `key`: the rule's, or an account's own threshold.
    pub fn window_of(&self, key: &EventKey<'_>) -> Window {
        match key.account().and_then(|a| self.accounts.get(a)) {
            Some(&fire_at) => Window {
                fire_at,
                ..self.window
            },
            None => self.window,
        }
    }

    /// A window entry of `event` at `t`: its time, and the account a distinct-account
    /// window counts ("" for event counting).
    pub fn entry<'e>(&self, event: &'e AuthEvent, t: i64) -> (i64, &'e str) {
        if self.counting.counts_accounts() {
            (t, account_of(event))
        } else {
            (t, "")
        }
    }
}

/// Entries a key's window state keeps: enough for the events of two windows and the
/// lateness at any rate below this, and never fewer than the threshold needs.
fn keep_for(fire_at: u32) -> u32 {
    fire_at.saturating_mul(4).max(256)
}

/// The account a distinct-account window counts (`key_of` keys only events with one).
pub fn account_of(event: &AuthEvent) -> &str {
    event.account.as_deref().unwrap_or_default()
}

/// Events grouped by (rule index, window key): the indexes of the events each counts, in
/// order. Events from an ignored network, and those a rule's cause excludes, count nowhere.
pub fn by_key<'e>(
    rules: &[Rule],
    ignore: &[ipnet::IpNet],
    events: &'e [AuthEvent],
) -> HashMap<(usize, EventKey<'e>), Vec<usize>> {
    let mut by_key: HashMap<(usize, EventKey<'_>), Vec<usize>> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        let ip = event.source.ip();
        if ip.is_some_and(|ip| ignore.iter().any(|net| net.contains(&ip))) {
            continue;
        }
        for (r, rule) in rules.iter().enumerate() {
            if rule.cause.is_some_and(|c| event.cause() != Some(c)) {
                continue;
            }
            if let Some(key) = rule.counting.key_of(event) {
                by_key.entry((r, key)).or_default().push(i);
            }
        }
    }
    by_key
}
