//! The HTTP surface on `OPSGUARD_LISTEN`: the Telegram webhook (webhook mode only), the
//! auth-event ingest API, the JWKS of the signing keys, `/healthz`, `/readyz` and `/metrics`.

pub mod healthcheck;
mod ingest;
pub mod metric_catalog;
mod ops;
mod process_metrics;
pub mod state_metrics;
pub mod telemetry_metrics;
pub mod throttle;
mod webhook;

use crate::bot::Telegram;
use crate::domain::secret::Secret;
use crate::engine::Engine;
use crate::logins::ingest::Ingestor;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use std::sync::Arc;

#[derive(Clone)]
pub struct HttpState {
    pub engine: Engine,
    /// Present in webhook mode: the bot, and the secret Telegram must send.
    pub webhook: Option<(Telegram, Secret)>,
    /// Wrong webhook secrets per source address.
    pub throttle: Arc<throttle::Throttle>,
    pub max_body_bytes: usize,
    /// Stores posted auth events; the route reads its own limits from it.
    pub ingest: Arc<Ingestor>,
    /// The state gauges of `/metrics`, read from the database at most once per interval.
    pub gauges: Arc<state_metrics::StateMetrics>,
}

/// The public keys of the managed JWT signing keys.
async fn jwks(State(state): State<HttpState>) -> axum::response::Response {
    crate::secrets::jwks::response(state.engine.pool()).await
}

pub fn router(state: HttpState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/auth-events", post(ingest::receive))
        .route("/.well-known/jwks.json", get(jwks));
    if state.webhook.is_some() {
        router = router.route("/telegram/webhook", post(webhook::receive));
    }
    router.with_state(state)
}
