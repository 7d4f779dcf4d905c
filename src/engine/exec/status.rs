//! `/status`: versions, uptime, each component's reachability and the degraded modes.

use super::{Ctx, ExecResult, human_duration};
use crate::domain::Reply;
use crate::domain::html::escape;
use crate::engine::health::TelegramState;
use crate::outbox;
use crate::storage;
use std::time::Instant;

pub(super) async fn status(ctx: &Ctx<'_>) -> ExecResult {
    let engine = ctx.engine;
    let mut lines = vec![format!(
        "<b>opsguard {}</b> · up {}",
        env!("CARGO_PKG_VERSION"),
        human_duration(engine.health().uptime().as_secs())
    )];
    let mut degraded = Vec::new();

    let started = Instant::now();
    let pg: Result<String, sqlx::Error> = sqlx::query_scalar("SHOW server_version")
        .fetch_one(engine.pool())
        .await;
    match pg {
        Ok(version) => {
            let migrated = storage::migrations_applied(engine.pool())
                .await
                .unwrap_or(false);
            lines.push(format!(
                "✅ PostgreSQL {} ({} ms){}",
                escape(&version),
                started.elapsed().as_millis(),
                if migrated {
                    ""
                } else {
                    " — migrations pending"
                }
            ));
        }
        Err(e) => lines.push(format!("❌ PostgreSQL: {}", escape(&e.to_string()))),
    }

    match engine.redis().ping().await {
        Ok(rtt) => lines.push(format!("✅ Redis ({} ms)", rtt.as_millis())),
        Err(e) => {
            lines.push(format!("⚠️ Redis unreachable: {}", escape(&e)));
            degraded.push(
                "rate limits are per process (not shared by replicas), and so are flood limits",
            );
        }
    }

    lines.push(match engine.health().telegram() {
        TelegramState::NotConfigured => {
            "➖ Telegram: no token configured (console and HTTP only)".into()
        }
        TelegramState::Reachable { mode } => format!("✅ Telegram ({mode})"),
        TelegramState::Unreachable { error } => format!("❌ Telegram: {}", escape(&error)),
    });

    match outbox::store::stats(engine.pool()).await {
        Ok(stats) => lines.extend(outbox_lines(&stats)),
        Err(e) => lines.push(format!("❌ Outbox: {}", escape(&e.to_string()))),
    }

    for warning in engine.health().audit_warnings() {
        lines.push(format!("⚠️ Audit log: {}", escape(&warning)));
    }

    if !engine.authz().is_listening() {
        degraded.push("permission changes from other replicas apply only after the cache expires");
    }
    if degraded.is_empty() {
        lines.push("Degraded modes: none".into());
    } else {
        lines.push("<b>Degraded modes</b>".into());
        lines.extend(degraded.iter().map(|d| format!("• {d}")));
    }
    Ok(Reply::html(lines.join("\n")))
}

/// The outbox: what waits, for how long, and a warning when anything was dead-lettered.
fn outbox_lines(stats: &outbox::store::Stats) -> Vec<String> {
    let mut lines = vec![match stats.oldest_pending_secs {
        Some(age) => format!(
            "📤 Outbox: {} pending, oldest {}",
            stats.pending,
            human_duration(age.max(0.0) as u64)
        ),
        None => "📤 Outbox: 0 pending".to_string(),
    }];
    if stats.dead > 0 {
        lines.push(format!(
            "⚠️ Outbox: {} dead-lettered (failed too often; see the outbox table)",
            stats.dead
        ));
    }
    lines
}
