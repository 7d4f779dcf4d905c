//! Integration tests: the real application, real PostgreSQL and Redis, a fake Bot API.

mod fake_telegram;
mod helpers;
mod webhook;
