//! The HTTP surface on `OPSGUARD_LISTEN`: the Telegram webhook (webhook mode only),
//! `/healthz`, `/readyz` and `/metrics`.

mod ops;
pub mod telemetry_metrics;
mod webhook;

use crate::bot::Telegram;
use crate::domain::secret::Secret;
use crate::engine::Engine;
use axum::Router;
use axum::routing::{get, post};

#[derive(Clone)]
pub struct HttpState {
    pub engine: Engine,
    /// Present in webhook mode: the bot, and the secret Telegram must send.
    pub webhook: Option<(Telegram, Secret)>,
    pub max_body_bytes: usize,
}

pub fn router(state: HttpState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    if state.webhook.is_some() {
        router = router.route("/telegram/webhook", post(webhook::receive));
    }
    router.with_state(state)
}
