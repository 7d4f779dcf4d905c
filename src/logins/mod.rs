//! Failed-login alerting: auth events come in (HTTP ingest API with service JWTs, or a
//! Redis stream), are stored in batches, counted in sliding windows shared across replicas,
//! and raise alerts that are pushed through the outbox and managed from chat.
//!
//! - [`jwt`]: service tokens — verify (HS256, `exp`, `nbf`, `iss`, `aud`, `scope`) and issue.
//! - [`entry_proof`]: what a stream entry must carry (an HMAC or a token) to be ingested.
//! - [`keys`]: the ingest key ring (current and previous key, by `kid`); stream HMACs.
//! - [`store`]: batched inserts of events (UNNEST), duplicates by event id, retention.
//! - [`ingest`]: one validated batch → stored → handed to an [`Evaluate`] (the detector).
//! - [`stream`]: the Redis Streams consumer (signed entries only; consumer group, ack after
//!   commit, dead letters).
//! - [`windows`]: sliding-window state in Redis (one Lua call per batch) or in process.
//! - [`detect`]: the detector: windows → rule crossings → alerts (`detect/untrusted.rs`:
//!   states rebuilt where Redis's cannot be trusted).
//! - [`rule`]: rules as the detector runs them; events grouped by rule and window key.
//! - [`rebuild`]: windows rebuilt from the stored events when Redis's cannot be trusted.
//! - [`alerts`]: open/update/close alerts, silences, and their pushes to the outbox;
//!   `alert_groups`: concurrent batches' episodes recorded in one transaction at a time.
//! - `alert_record`: an episode joins (and merges) the alerts it touches, or opens one.
//! - `alert_view`: the alerts a batch may join, locked and read in one statement;
//!   `alert_counts`: the episodes counted on them, written in one statement;
//!   `known_accounts`: the accounts this process knows alerts have stored (not resent);
//!   `counts_behind`: episodes that only count on open alerts, recorded once per interval.
//! - [`alert_text`]: what a pushed alert says, and its edits in place as it counts on.
//! - [`escalation`]: alerts nobody acknowledged in time, pushed to the escalation chats.
//! - [`alert_admin`]: active alerts, details, acknowledging and silences (for commands).
//! - [`stats`], [`chart`]: what `/logins` shows, and its PNG chart.
//!
//! Invariant: events are committed before they are evaluated or acknowledged, and an
//! event stored once is evaluated once (duplicates are counted, never re-counted).

pub mod alert_admin;
mod alert_counts;
mod alert_groups;
mod alert_record;
pub mod alert_text;
mod alert_view;
pub mod alerts;
mod batch_keys;
pub mod chart;
mod counts_behind;
pub mod detect;
pub mod entry_proof;
pub mod escalation;
pub mod ingest;
pub mod jwt;
pub mod keys;
mod known_accounts;
pub mod rebuild;
pub mod rule;
pub mod stats;
pub mod store;
pub mod stream;
mod window_states;
pub mod windows;

use crate::domain::auth_event::AuthEvent;

/// Run `work` (tens of milliseconds of CPU for a batch of an attack from a few sources) off
/// the async worker where the runtime allows it: a worker busy with it would keep the
/// exchanges and statements of the other batches in flight waiting for a worker (one
/// exchange at a time holds the windows' turn, so the whole pipeline waited).
pub(crate) fn cpu_bound<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// What ingest hands newly stored events to, after they are committed: the detector in
/// `serve`, a recorder in tests. Only events stored for the first time are passed.
#[async_trait::async_trait]
pub trait Evaluate: Send + Sync {
    async fn evaluate(&self, events: &[AuthEvent]) -> anyhow::Result<()>;
}
