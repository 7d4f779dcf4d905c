//! `/logins [window]`: failures and successes, the failure rate, the top IPs and accounts,
//! the active alerts, and a PNG chart of failures per minute with the alert thresholds.
//! `/prune_logins`: deletes events older than the retention period (scheduled daily).

use super::{Ctx, ExecError, ExecResult};
use crate::config::RuleKind;
use crate::domain::Reply;
use crate::domain::command::LoginWindow;
use crate::domain::html::escape;
use crate::logins::chart::{self, ChartData, Threshold};
use crate::logins::{alert_admin, stats};
use chrono::Utc;

pub(super) async fn logins(ctx: &Ctx<'_>, window: LoginWindow) -> ExecResult {
    let (pool, settings) = (ctx.engine.pool(), &ctx.engine.settings().logins);
    let until = Utc::now();
    let since = until - window.duration();
    let (found, active) = tokio::try_join!(
        stats::gather(pool, since, window.bucket()),
        alert_admin::active(pool, settings.cooldown_secs, 5),
    )?;
    let attempts = found.failures + found.locked + found.successes;
    let mut text = format!(
        "<b>🔐 Logins, last {}</b>\n{} failed · {} locked · {} succeeded · failure rate {:.1}%\n",
        window.label(),
        found.failures,
        found.locked,
        found.successes,
        found.failure_rate() * 100.0
    );
    if attempts == 0 {
        text.push_str("No auth events in this window.\n");
    }
    let list = |title: &str, rows: &[(String, i64)]| -> String {
        if rows.is_empty() {
            return String::new();
        }
        let mut s = format!("\n<b>{title}</b>\n");
        for (name, n) in rows {
            let name: String = name.chars().take(64).collect();
            s.push_str(&format!("{n:>6}  <code>{}</code>\n", escape(&name)));
        }
        s
    };
    text.push_str(&list("Top IPs by failures", &found.top_ips));
    text.push_str(&list("Top accounts by failures", &found.top_accounts));
    text.push_str(&format!("\n<b>Active alerts:</b> {}\n", active.len()));
    for a in &active {
        text.push_str(&format!(
            "#{} {} · <code>{}</code> · {} failures\n",
            a.id,
            escape(&a.rule),
            escape(&short(&a.key)),
            a.count
        ));
    }
    // Thresholds of the per-minute rules, scaled to failures per minute.
    let thresholds: Vec<Threshold> = settings
        .rules
        .iter()
        .filter(|r| matches!(r.kind, RuleKind::Ip | RuleKind::Surge))
        .map(|r| Threshold {
            label: r.name.clone(),
            per_minute: f64::from(r.fire_at) * 60.0 / r.window_secs as f64,
        })
        .collect();
    let title = format!("Failed logins, last {}", window.label());
    let png = chart::render(&ChartData {
        title: &title,
        since,
        until,
        bucket: window.bucket(),
        failures: &found.series,
        thresholds: &thresholds,
    });
    Ok(match png {
        Ok(png) => Reply::html(text).with_photo(png),
        Err(e) => {
            tracing::warn!(error = %e, "logins.chart_failed");
            text.push_str("\n(The chart could not be drawn; see the logs.)");
            Reply::html(text)
        }
    })
}

/// A key as shown in a list: long account names cut.
pub(super) fn short(key: &str) -> String {
    if key.chars().count() > 60 {
        format!("{}…", key.chars().take(59).collect::<String>())
    } else {
        key.to_string()
    }
}

pub(super) async fn prune(ctx: &Ctx<'_>) -> ExecResult {
    let days = ctx.engine.settings().logins.retention_days;
    let removed = crate::logins::store::prune(ctx.engine.pool(), days)
        .await
        .map_err(ExecError::from)?;
    Ok(Reply::html(format!(
        "🧹 Removed {removed} auth events older than {days} days."
    )))
}
