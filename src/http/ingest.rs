//! `POST /api/v1/auth-events`: 503 without a JWT secret; the Bearer token is verified
//! before the body is read (401, or 403 without `events:write`); bodies over
//! `max_body_bytes` or batches over `max_events` get 413, unparseable bodies 400, a batch
//! with no valid event 422 naming each bad index (nothing stored). Otherwise the valid
//! events are stored and the answer is 202 `{"accepted": n, "duplicates": d}`, plus, when
//! some events were rejected, `"rejected": r, "problems": [{"index", "problem"}…]`: a
//! shipper must not resend a 202 (the rejected events would be rejected again). Every refusal carries its reason in `error`.

use super::HttpState;
use crate::domain::auth_batch::{self, BatchError};
use crate::logins::jwt::{self, TokenError};
use crate::logins::keys::Keys;
use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use serde_json::{Value, json};

type Answer = (StatusCode, Json<Value>);

fn refuse(status: StatusCode, label: &'static str, body: Value) -> Answer {
    metrics::counter!("opsguard_ingest_rejections_total", "reason" => label).increment(1);
    tracing::info!(ingest.rejected = label, "ingest.batch_rejected");
    (status, Json(body))
}

pub async fn receive(State(state): State<HttpState>, request: Request<Body>) -> Answer {
    let ingestor = &state.ingest;
    let settings = ingestor.settings();
    let Some(keys) = Keys::of(settings) else {
        let error = "ingest is not configured: OPSGUARD_INGEST_JWT_SECRET is not set";
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            json!({ "error": error }),
        );
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let verified = match presented {
        None => Err(TokenError::Missing),
        Some(token) => jwt::verify(token, &keys, &settings.issuer),
    };
    let sender = match verified {
        Ok(sender) => sender,
        Err(e) => {
            let status = if e == TokenError::MissingScope {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            return refuse(status, e.label(), json!({ "error": e.to_string() }));
        }
    };
    let max = settings.max_body_bytes;
    let too_large = || {
        let error = format!("the body is larger than {max} bytes");
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            json!({ "error": error }),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return too_large();
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), max).await else {
        return too_large();
    };
    let parsed = match auth_batch::parse_batch(&body, chrono::Utc::now(), &ingestor.limits()) {
        Ok(parsed) => parsed,
        Err(e) => {
            let error = e.to_string();
            return match e {
                BatchError::TooMany { .. } => refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_many",
                    json!({ "error": error }),
                ),
                BatchError::Malformed(_) => refuse(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    json!({ "error": error }),
                ),
                BatchError::Empty => refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "empty",
                    json!({ "error": error, "problems": [] }),
                ),
                BatchError::Invalid(problems) => refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    json!({ "error": error, "problems": problems }),
                ),
            };
        }
    };
    let problems = parsed.problems;
    if !problems.is_empty() {
        metrics::counter!("opsguard_ingest_rejected_events_total").increment(problems.len() as u64);
        tracing::info!(
            ingest.rejected_events = problems.len(),
            "ingest.events_rejected"
        );
    }
    match ingestor.ingest(parsed.events, &sender).await {
        Ok(outcome) => {
            let mut answer = json!(outcome);
            if !problems.is_empty() {
                answer["rejected"] = json!(problems.len());
                answer["problems"] = json!(problems);
            }
            (StatusCode::ACCEPTED, Json(answer))
        }
        Err(e) => {
            tracing::error!(error = %e, "ingest.store_failed");
            metrics::counter!("opsguard_ingest_rejections_total", "reason" => "store_failed")
                .increment(1);
            let error = "the events could not be stored; retry later";
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": error })),
            )
        }
    }
}
