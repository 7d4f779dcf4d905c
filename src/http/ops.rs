//! Operations endpoints: liveness, readiness (PostgreSQL reachable and migrated; "degraded"
//! when no chat works), metrics.

use super::HttpState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, String) {
    let latch = state.engine.db_latch();
    if latch.is_down() {
        // Known down (`storage::latch`): answered at once, the probe finds it back.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "postgresql unreachable\n".into(),
        );
    }
    match crate::storage::migrations_applied(state.engine.pool()).await {
        Ok(true) => {
            // Serving, but no chat works: every recent push failed (`health::Deliveries`).
            let mut body = match state.engine.health().deliveries().degraded() {
                Some(why) => format!("degraded\nwarning: telegram: {why}\n"),
                None => "ready\n".to_string(),
            };
            for warning in state.engine.health().audit_warnings() {
                body.push_str(&format!("warning: audit log: {warning}\n"));
            }
            (StatusCode::OK, body)
        }
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "migrations pending\n".into(),
        ),
        Err(e) => {
            latch.observe(&e);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "postgresql unreachable\n".into(),
            )
        }
    }
}

pub async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        super::telemetry_metrics::render(&state.gauges).await,
    )
}
