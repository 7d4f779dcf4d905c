//! Integration tests: the real application, real PostgreSQL and Redis, a fake Bot API.

mod audit;
mod backups;
mod checks;
mod checks_targets;
mod detection;
mod failures;
mod fake_telegram;
mod floods;
mod gates;
mod hardening;
mod helpers;
mod ingest;
mod logins;
mod outbox;
mod permissions;
mod process;
mod replicas;
mod scheduler;
mod secrets;
mod secrets_jwt;
mod secrets_pg;
mod secrets_redis;
mod secrets_webhook;
mod telegram_modes;
mod webhook;
