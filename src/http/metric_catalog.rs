//! Every metric opsguard exposes on `/metrics`, in one table: name, type, help, and the
//! label sets that exist from the start. The counters and histograms recorded through the
//! `metrics` facade are described and set to zero at start-up (`register`), so Prometheus
//! sees every series — and `rate()` has a baseline — before the first event. The gauges of
//! `state_metrics` and `process_metrics` are rendered from the same table at each scrape.
//!
//! A new `metrics::counter!` / `gauge!` / `histogram!` belongs here too: a test compares
//! the names recorded in `src/` with what a fresh `/metrics` shows.

use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family.
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// The label name and its values known from the start (one zero series each); none:
    /// one series without labels.
    pub labels: (&'static str, &'static [&'static str]),
}

const NONE: (&str, &[&str]) = ("", &[]);

pub const fn family(name: &'static str, kind: Kind, help: &'static str) -> Family {
    Family {
        name,
        kind,
        help,
        labels: NONE,
    }
}

const fn labelled(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    label: &'static str,
    values: &'static [&'static str],
) -> Family {
    Family {
        name,
        kind,
        help,
        labels: (label, values),
    }
}

use Kind::{Counter, Gauge, Histogram};

/// Reasons `POST /telegram/webhook` turns an update away (`http/webhook.rs`).
pub const WEBHOOK_REJECTIONS: &[&str] = &[
    "throttled",
    "bad_secret",
    "too_large",
    "bad_json",
    "not_an_update",
    "flooding",
    "duplicate",
    "busy",
];

/// Reasons `POST /api/v1/auth-events` refuses a batch (`http/ingest.rs`, the JWT checks).
pub const INGEST_REJECTIONS: &[&str] = &[
    "not_configured",
    "too_large",
    "too_many",
    "malformed",
    "empty",
    "invalid",
    "store_failed",
    "missing",
    "algorithm",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "invalid_claim",
    "missing_claim",
    "missing_scope",
    "unknown_kid",
    "wrong_audience",
    "wrong_issuer",
];

/// Recorded through the `metrics` facade where the event happens.
#[rustfmt::skip]
pub const EVENTS: &[Family] = &[
    labelled("opsguard_commands_total", Counter,
        "Requests through the pipeline, by command and decision (allowed, denied, refused, pending).",
        "decision", &["allowed", "denied", "refused", "pending"]),
    family("opsguard_pipeline_seconds", Histogram,
        "Time from a request entering the pipeline to its reply."),
    labelled("opsguard_audit_write_failures_total", Counter,
        "Audit rows that could not be written; at the attempt the command was refused (fail closed).",
        "phase", &["attempt", "outcome"]),
    labelled("opsguard_flood_dropped_total", Counter,
        "Updates dropped by the flood limits before anything was written, by limit.",
        "limit", &["user", "sender", "chat", "strangers", "refused"]),
    labelled("opsguard_webhook_rejections_total", Counter,
        "Webhook calls turned away, by reason.", "reason", WEBHOOK_REJECTIONS),
    family("opsguard_webhook_accepted_total", Counter, "Webhook updates accepted for running."),
    family("opsguard_inbox_store_failures_total", Counter,
        "Updates that could not be stored in the inbox before the 200 (run unstored)."),
    labelled("opsguard_inbox_taken_up_total", Counter,
        "Stored updates taken up by the inbox taker (waited for room, or their lease ran out), by what it found.",
        "state", &["never_started", "interrupted", "finished", "given_up", "waited"]),
    family("opsguard_inbox_waiting_total", Counter,
        "Updates stored waiting in the inbox because this replica had max_updates_in_work in work."),
    family("opsguard_updates_in_work", Gauge,
        "Updates being run on this replica now (at most [telegram] max_updates_in_work)."),
    family("opsguard_updates_in_work_peak", Gauge,
        "The most updates in work at once on this replica since it started."),
    labelled("opsguard_menus_total", Counter,
        "Command menu refreshes: sent to Telegram (it changed) or unchanged (nothing sent).",
        "result", &["sent", "unchanged"]),
    family("opsguard_replies_queued_total", Counter,
        "Direct replies handed to the outbox because Telegram made them wait too long."),
    family("opsguard_database_down_total", Counter,
        "Times PostgreSQL was found unreachable (requests are then refused at once until a probe reaches it)."),
    family("opsguard_outbox_dead_letters_total", Counter,
        "Pushes the outbox gave up on after max_attempts (each logged at ERROR; admins warned)."),
    family("opsguard_telegram_retry_after_total", Counter,
        "429 answers to direct replies, each waited out before retrying."),
    family("opsguard_webhook_ignored_total", Counter,
        "Webhook updates read but carrying nothing to run (reactions, polls, edits, bots...)."),
    labelled("opsguard_webhook_unparsed_total", Counter,
        "Updates (webhook or polling) that could not be read, answered 200 and logged, by update kind (unknown: a kind no known Bot API version has; none: no kind). A message counted here may be a command that did not run.",
        "kind", crate::bot::inbound::KIND_LABELS),
    labelled("opsguard_updates_ignored_total", Counter,
        "Updates not run, by reason (other_bot: a command addressed to another bot).",
        "reason", &["other_bot"]),
    family("opsguard_telegram_send_failures_total", Counter,
        "Direct replies Telegram did not accept."),
    family("opsguard_telegram_poll_failures_total", Counter,
        "getUpdates calls that failed (long-polling mode)."),
    family("opsguard_outbox_sent_total", Counter, "Outbox rows delivered to Telegram."),
    family("opsguard_outbox_failures_total", Counter,
        "Outbox delivery attempts that failed (retried, or dead-lettered past the limit)."),
    labelled("opsguard_ingest_rejections_total", Counter,
        "Auth-event batches refused by the ingest API, by reason.", "reason", INGEST_REJECTIONS),
    family("opsguard_ingest_rejected_events_total", Counter,
        "Events of accepted batches rejected one by one (the rest of the batch was stored)."),
    family("opsguard_auth_events_stored_total", Counter,
        "Auth events stored (ingest API and Redis stream)."),
    family("opsguard_auth_events_duplicates_total", Counter,
        "Auth events received again and not stored twice."),
    family("opsguard_auth_evaluation_failures_total", Counter,
        "Batches of stored auth events the detector could not evaluate."),
    family("opsguard_login_windows_rebuilt_total", Counter,
        "Detection window states rebuilt from the stored events (Redis unreachable, restarted, or too slow)."),
    family("opsguard_login_window_exchanges_timed_out_total", Counter,
        "Failed-login window exchanges given up after redis.bulk_timeout_ms (their keys rebuilt)."),
    family("opsguard_login_window_states_held_used_total", Counter,
        "Window states this replica held from its last exchange, so Redis did not send them."),
    family("opsguard_auth_stream_claimed_total", Counter,
        "Stream entries claimed from a consumer that stopped before acknowledging them."),
    family("opsguard_auth_stream_dead_letters_total", Counter,
        "Stream entries moved to the dead-letter stream."),
    family("opsguard_auth_stream_unauthenticated_total", Counter,
        "Stream entries dead-lettered because their sender could not be authenticated."),
    family("opsguard_auth_stream_refused_total", Counter,
        "Stream entries dead-lettered because PostgreSQL refused them max_attempts times."),
    family("opsguard_auth_stream_consumers_removed_total", Counter,
        "Consumers of dead replicas removed from the stream's consumer group."),
];

/// What this build is: always 1, labelled with the version and the commit.
pub const BUILD_INFO: Family = family(
    "opsguard_build_info",
    Gauge,
    "The running build: version and git commit (\"unknown\" when built outside git).",
);

/// Read from the database, Redis and the pool at scrape time (`state_metrics`).
#[rustfmt::skip]
pub const STATE: &[Family] = &[
    family("opsguard_outbox_pending", Gauge, "Outbox rows waiting to be delivered."),
    family("opsguard_outbox_dead", Gauge,
        "Outbox rows dead-lettered (failed too often; kept for an operator to look at)."),
    family("opsguard_outbox_oldest_pending_age_seconds", Gauge,
        "Age of the oldest outbox row waiting (0 when none waits)."),
    family("opsguard_backup_last_good_timestamp_seconds", Gauge,
        "When the newest verified-good backup of a target finished (0: none)."),
    family("opsguard_backup_restore_test_success", Gauge,
        "1 when the latest restore test of a target passed, 0 when it failed or none ran."),
    family("opsguard_backup_restore_test_timestamp_seconds", Gauge,
        "When the latest restore test of a target finished (0: none)."),
    family("opsguard_secret_age_seconds", Gauge,
        "Age of a managed secret's current version (-1: no version in the vault yet)."),
    family("opsguard_secret_last_rotation_failed", Gauge,
        "1 when a secret's latest rotation failed or was rolled back."),
    family("opsguard_login_alerts_open", Gauge, "Open failed-login alerts, by rule."),
    family("opsguard_check_findings", Gauge,
        "Findings of the newest security check run (what /findings shows), by severity."),
    family("opsguard_check_last_run_timestamp_seconds", Gauge,
        "When the newest security check run finished (0: none)."),
    family("opsguard_redis_degraded", Gauge,
        "1 while Redis is unreachable (per-process limits, de-duplication in PostgreSQL)."),
    family("opsguard_db_pool_connections", Gauge,
        "PostgreSQL pool connections, by state (in_use, idle)."),
    family("opsguard_db_pool_max_connections", Gauge, "Size limit of the PostgreSQL pool."),
    family("opsguard_state_refresh_success", Gauge,
        "1 when the last read of the gauges above from PostgreSQL succeeded (0: values are stale)."),
];

/// Severities of a check finding, worst first.
pub const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "info"];

/// The commit this binary was built from (`build.rs` sets `OPSGUARD_COMMIT`).
pub const COMMIT: &str = match option_env!("OPSGUARD_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// Describe every facade metric and create its zero series; set `opsguard_build_info`.
pub fn register() {
    for f in EVENTS {
        match f.kind {
            Counter => metrics::describe_counter!(f.name, f.help),
            Gauge => metrics::describe_gauge!(f.name, f.help),
            Histogram => metrics::describe_histogram!(f.name, f.help),
        }
        let (label, values) = f.labels;
        let sets: Vec<Vec<metrics::Label>> = if values.is_empty() {
            vec![Vec::new()]
        } else {
            let mut extra = Vec::new();
            if f.name == "opsguard_commands_total" {
                // The command label has no fixed list: /help stands for every command.
                extra.push(metrics::Label::new("command", "help"));
            }
            values
                .iter()
                .map(|v| {
                    let mut set = extra.clone();
                    set.push(metrics::Label::new(label, *v));
                    set
                })
                .collect()
        };
        for set in sets {
            match f.kind {
                Counter => metrics::counter!(f.name, set).increment(0),
                Gauge => metrics::gauge!(f.name, set).set(0.0),
                // Registered: rendered with empty buckets until the first sample.
                Histogram => {
                    let _ = metrics::histogram!(f.name, set);
                }
            }
        }
    }
    metrics::describe_gauge!(BUILD_INFO.name, BUILD_INFO.help);
    metrics::gauge!(BUILD_INFO.name, "version" => env!("CARGO_PKG_VERSION"), "commit" => COMMIT)
        .set(1.0);
}

/// Append one family: `# HELP`, `# TYPE` and its samples (labels as (name, value) pairs).
pub fn write_family(out: &mut String, family: &Family, samples: &[(Vec<(&str, String)>, f64)]) {
    let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
    for (labels, value) in samples {
        out.push_str(family.name);
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(out, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(out, " {}", format_value(*value));
    }
    out.push('\n');
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        (if v > 0.0 { "+Inf" } else { "-Inf" }).into()
    } else {
        v.to_string()
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    escape_help(text).replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = String::new();
        let f = family("x_total", Kind::Counter, "a \\ b\nc");
        write_family(&mut out, &f, &[(vec![("k", "q\"\\\n".into())], 1.0)]);
        assert_eq!(
            out,
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{k=\"q\\\"\\\\\\n\"} 1\n\n"
        );
    }
}
