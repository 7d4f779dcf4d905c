//! `POST /telegram/webhook`: an address past its wrong secrets for the minute gets 429
//! without a comparison (`throttle.rs`); otherwise the secret header is compared in
//! constant time before the body is read (401, counted against the address); bodies over
//! the limit get 413, malformed JSON 400; a JSON value that is not an object with an
//! `update_id` is answered 200, logged and counted (`not_an_update`); every update is answered 200 (`bot::receive`): past a flood limit it is
//! dropped before anything is written for it; a replayed `update_id` is dropped; one that
//! cannot be read is logged and counted; a command for another bot is ignored; an update
//! that will run is stored durably with its de-dup row (`bot::inbox`) before the 200, and
//! runs after it (or waits in the inbox while the replica is full); one that could neither
//! be stored nor run, or that the store refused while reachable, gets 503 and is not run,
//! so Telegram sends it again.

use super::HttpState;
use crate::bot::receive::{self, Received};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use std::net::SocketAddr;
use std::time::Instant;

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
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return reject("bad_json", StatusCode::BAD_REQUEST);
    };
    // Our own types (`bot::inbound`): any JSON object with an `update_id` is an update.
    // JSON that is not an update is answered 200 all the same (Telegram would resend it
    // for a day), logged and counted, and nothing is written for it.
    let Ok(update) = receive::read(&value) else {
        tracing::warn!(
            webhook.body_kind = json_kind(&value),
            "webhook.not_an_update"
        );
        metrics::counter!("opsguard_webhook_rejections_total", "reason" => "not_an_update")
            .increment(1);
        return (StatusCode::OK, "not an update");
    };
    match receive::take_in(telegram, update).await {
        Received::Dropped => {
            reject("flooding", StatusCode::OK);
            (StatusCode::OK, "dropped")
        }
        Received::Duplicate => {
            // Acknowledge, so Telegram stops retrying; do nothing else.
            reject("duplicate", StatusCode::OK);
            (StatusCode::OK, "duplicate")
        }
        Received::Ignored => {
            metrics::counter!("opsguard_webhook_ignored_total").increment(1);
            (StatusCode::OK, "ignored")
        }
        // Answered 200 all the same: Telegram would otherwise resend it for a day.
        Received::Unparsed => (StatusCode::OK, "unparsed"),
        Received::Accepted | Received::Waiting => {
            metrics::counter!("opsguard_webhook_accepted_total").increment(1);
            (StatusCode::OK, "ok")
        }
        // Not stored and no room to run it: Telegram sends it again later.
        Received::Busy => reject("busy", StatusCode::SERVICE_UNAVAILABLE),
        // The store refused it (not known down): not run unstored; Telegram sends it again.
        Received::Refused => reject("inbox_refused", StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// What kind of JSON value a body that is not an update was (logged, never its content).
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Object(_) => "object",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Null => "null",
    }
}
