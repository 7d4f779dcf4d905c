//! opsguard — a Telegram ops agent whose every command is permission-checked and audited.
//!
//! # Codemap
//! - [`domain`]: pure types and rules — ids, actors, the `Command` enum with each command's
//!   permission and risk class, replies, audit entries and their hash chain, HTML escaping.
//! - [`engine`]: the one pipeline. `Engine::handle(Request) -> Option<Reply>` runs
//!   parse → identify → chat allow-list → authorize → rate-limit → gates (confirm, TOTP
//!   step-up, two-person approval) → audit attempt → execute → audit outcome.
//! - [`storage`]: the PostgreSQL pool, migrations and the engine's own tables.
//! - [`audit`]: the audit log's tamper evidence — keys derived from the master key (HMAC
//!   chain, Ed25519 checkpoints), signed checkpoints outside the database, full verification,
//!   and the owner / runtime role split.
//! - [`redis_link`]: the shared Redis connection and whether it works (degraded mode).
//! - [`checks`]: security checks (`Check` trait, concurrent runner with per-target timeouts,
//!   the registry of built-in checks, stored reports, summaries, JSON and SARIF documents);
//!   they reach only targets from `[checks]`, never an address typed in chat.
//! - [`secrets`]: secret rotation — the vault (AES-256-GCM under the master key), managed
//!   secrets and their kinds, sinks, and the step-by-step rotation runner.
//! - [`logins`]: failed-login alerting — ingest (HTTP with service JWTs; a Redis stream of
//!   entries signed under the ingest key, off by default),
//!   batched storage, sliding-window detection shared through Redis, alerts via the outbox.
//! - [`backups`]: `pg_dump` → zstd → age → SHA-256 → storage (a directory or S3), a job queue
//!   any replica works, a catalogue with row counts, restore tests and retention.
//! - transports — [`bot`] (Telegram: updates read into our own types in `bot::inbound` and
//!   taken in by `bot::receive` for the webhook and polling alike; teloxide for outbound
//!   calls; replies paced with the outbox's limits, menus), [`console`] (a REPL
//!   on stdin), [`http`] (webhook route, auth-event ingest, health, readiness, metrics), [`scheduler`]
//!   (cron schedules run through the pipeline as the `scheduler` actor, claimed once per
//!   fire time across replicas, reports queued in the [`outbox`]).
//! - [`jwt_crypto`]: the only JWT algorithms opsguard signs and verifies (HS256, EdDSA), as
//!   `jsonwebtoken`'s crypto provider; no RSA or ECDSA code is linked.
//! - [`config`], [`telemetry`], [`startup`], `main.rs` (the CLI) — wiring.
//!
//! # Invariants
//! - Transports never call a command's code: `Engine::handle` is the only road to it.
//! - `domain` imports no axum, teloxide, sqlx or redis.
//! - The audit attempt row is written before a command runs; if it cannot be, nothing runs.
//! - No audit key is stored in the database; the runtime role never writes audit rows except
//!   through the append functions.
//! - Identity is the numeric Telegram user id; strangers get at most one neutral line an hour.
//! - Floods are limited before anything is written ([`engine::flood`]): past a limit an update
//!   writes and sends nothing, and is only counted in one aggregate audit row per window.
//! - Secrets (`domain::secret::Secret`) print as fingerprints; user text is HTML-escaped.
//! - Button callback data is an opaque id of a single-use, user-bound, expiring pending action.
//! - No update with an `update_id` goes unanswered: unknown fields, entity types and update
//!   kinds are skipped unread; an unreadable update (or a panic taking one in) is answered
//!   200, logged once and counted (`opsguard_webhook_unparsed_total`).
#![forbid(unsafe_code)]

pub mod audit;
pub mod backups;
pub mod bot;
pub mod checks;
pub mod config;
pub mod console;
pub mod domain;
pub mod engine;
pub mod http;
pub mod jwt_crypto;
pub mod logins;
pub mod outbox;
pub mod redis_link;
pub mod scheduler;
pub mod secrets;
pub mod startup;
pub mod storage;
pub mod telemetry;
