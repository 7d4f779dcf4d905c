//! `POST /telegram/webhook`: an address past its wrong secrets for the minute gets 429
//! without a comparison (`throttle.rs`); otherwise the secret header is compared in
//! constant time before the body is read (401, counted against the address); bodies over
//! the limit get 413, malformed JSON 400; an update past a flood limit is acknowledged and
//! dropped before anything is written for it; a replayed `update_id` is acknowledged and
//! dropped; a command for another bot is acknowledged and ignored; an update that will run
//! is stored durably with its de-dup row (`bot::inbox`) before the 200, and runs after it.

use super::HttpState;
use crate::bot::inbox::{self, Taken};
use crate::bot::{dedup, flood};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use std::net::SocketAddr;
use std::time::Instant;
use teloxide::types::Update;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

fn reject(reason: &'static str, status: StatusCode) -> (StatusCode, &'static str) {
    metrics::counter!("opsguard_webhook_rejections_total", "reason" => reason).increment(1);
    tracing::info!(webhook.rejected = reason, "webhook.rejected");
    (status, reason)
}

pub async fn receive(
    State(state): State<HttpState>,
    request: Request<Body>,
) -> (StatusCode, &'static str) {
    let Some((telegram, secret)) = &state.webhook else {
        return (StatusCode::NOT_FOUND, "not found");
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let source = state.throttle.source(peer, forwarded);
    let now = Instant::now();
    if state.throttle.blocked(source, now) {
        return reject("throttled", StatusCode::TOO_MANY_REQUESTS);
    }
    let presented = request
        .headers()
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !secret.matches(presented) {
        state.throttle.failed(source, now);
        return reject("bad_secret", StatusCode::UNAUTHORIZED);
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes) {
        return reject("too_large", StatusCode::PAYLOAD_TOO_LARGE);
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), state.max_body_bytes).await else {
        return reject("too_large", StatusCode::PAYLOAD_TOO_LARGE);
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return reject("bad_json", StatusCode::BAD_REQUEST);
    }
    // From the bytes, not from a `Value`: teloxide's update deserializer needs the former.
    let update: Update = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(_) => return reject("not_an_update", StatusCode::BAD_REQUEST),
    };
    // Before anything is written for it: past a flood limit it is acknowledged and dropped.
    if !flood::admit(&state.engine, &update).await {
        reject("flooding", StatusCode::OK);
        return (StatusCode::OK, "dropped");
    }
    let Some(incoming) = telegram.translate(&update).await else {
        // Nothing to run: only its de-dup row, so a retry is told apart as before.
        if !dedup::first_sight(&state.engine, i64::from(update.id.0)).await {
            reject("duplicate", StatusCode::OK);
            return (StatusCode::OK, "duplicate");
        }
        metrics::counter!("opsguard_webhook_ignored_total").increment(1);
        return (StatusCode::OK, "ignored");
    };
    // Stored with its de-dup row before the 200: from here on it is run or reported.
    let lease = match inbox::take(telegram, i64::from(update.id.0), &incoming).await {
        Taken::Stored(lease) => Some(lease),
        Taken::Unstored => None,
        Taken::Duplicate => {
            // Acknowledge, so Telegram stops retrying; do nothing else.
            reject("duplicate", StatusCode::OK);
            return (StatusCode::OK, "duplicate");
        }
    };
    metrics::counter!("opsguard_webhook_accepted_total").increment(1);
    telegram.dispatch(incoming, lease);
    (StatusCode::OK, "ok")
}
