//! Alerts as operators handle them: the active ones, one in detail, acknowledging, and
//! silences (a rule name or an alert key muted until a time). Raising alerts is `alerts`.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub id: i64,
    pub rule: String,
    pub key: String,
    pub ip: Option<String>,
    pub account: Option<String>,
    pub count: i64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub state: String,
    pub acked_by: Option<i64>,
    pub acked_at: Option<DateTime<Utc>>,
    pub silenced: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SilenceRow {
    pub id: i64,
    pub matcher: String,
    pub until: DateTime<Utc>,
    pub created_by: Option<i64>,
}

/// Open alerts whose key was active within the cool-down, newest activity first.
pub async fn active(
    pool: &PgPool,
    cooldown_secs: u64,
    limit: i64,
) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, rule, key, coalesce(host(ip), host) AS ip, account, count, first_at, last_at, fired_at, state,
                acked_by, acked_at, silenced
         FROM login_alerts
         WHERE state = 'open' AND last_at > now() - $1 * interval '1 second'
         ORDER BY last_at DESC LIMIT $2",
    )
    .bind(cooldown_secs as f64)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn one(pool: &PgPool, id: i64) -> Result<Option<AlertRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, rule, key, coalesce(host(ip), host) AS ip, account, count, first_at, last_at, fired_at, state,
                acked_by, acked_at, silenced
         FROM login_alerts WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The accounts an IP failed on (or the IPs that failed on an account) since the alert
/// began, most failures first: what "Details" shows.
pub async fn involved(
    pool: &PgPool,
    alert: &AlertRow,
    limit: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    // By what the alert counts (its key), not by which "who" fields are filled: an
    // account alert also records the last IP it came from.
    let by_ip = ["ip:", "host:", "spray:"]
        .iter()
        .any(|p| alert.key.starts_with(p));
    if let (true, Some(ip)) = (by_ip, &alert.ip) {
        sqlx::query_as(
            "SELECT coalesce(account, '(no account)') AS a, count(*) AS n FROM auth_events
             WHERE coalesce(host(ip), host) = $1 AND at >= $2 AND outcome <> 'success'
             GROUP BY a ORDER BY n DESC, a LIMIT $3",
        )
        .bind(ip)
        .bind(alert.first_at)
        .bind(limit)
        .fetch_all(pool)
        .await
    } else if let (false, Some(account)) = (by_ip, &alert.account) {
        sqlx::query_as(
            "SELECT coalesce(host(ip), host) AS source, count(*) AS n FROM auth_events
             WHERE account = $1 AND at >= $2 AND outcome <> 'success'
             GROUP BY source ORDER BY n DESC, source LIMIT $3",
        )
        .bind(account)
        .bind(alert.first_at)
        .bind(limit)
        .fetch_all(pool)
        .await
    } else {
        Ok(Vec::new())
    }
}

pub enum Acked {
    Now(AlertRow),
    Already(AlertRow),
    Missing,
}

/// Acknowledge once: a second ack reports who acknowledged first.
pub async fn ack(pool: &PgPool, id: i64, by: i64) -> Result<Acked, sqlx::Error> {
    let updated: Option<i64> = sqlx::query_scalar(
        "UPDATE login_alerts SET acked_by = $2, acked_at = now()
         WHERE id = $1 AND acked_by IS NULL RETURNING id",
    )
    .bind(id)
    .bind(by)
    .fetch_optional(pool)
    .await?;
    Ok(match (updated, one(pool, id).await?) {
        (Some(_), Some(row)) => Acked::Now(row),
        (None, Some(row)) => Acked::Already(row),
        (_, None) => Acked::Missing,
    })
}

/// Mute `matcher` until `until`; an unexpired silence of the same matcher is extended
/// (never shortened) instead of duplicated.
pub async fn silence(
    pool: &PgPool,
    matcher: &str,
    until: DateTime<Utc>,
    by: Option<i64>,
) -> Result<SilenceRow, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let existing: Option<SilenceRow> = sqlx::query_as(
        "UPDATE login_silences SET until = greatest(until, $2), created_by = $3
         WHERE id = (SELECT id FROM login_silences WHERE matcher = $1 AND until > now()
                     ORDER BY until DESC LIMIT 1 FOR UPDATE)
         RETURNING id, matcher, until, created_by",
    )
    .bind(matcher)
    .bind(until)
    .bind(by)
    .fetch_optional(&mut *tx)
    .await?;
    let row = match existing {
        Some(row) => row,
        None => {
            sqlx::query_as(
                "INSERT INTO login_silences (matcher, until, created_by) VALUES ($1, $2, $3)
                 RETURNING id, matcher, until, created_by",
            )
            .bind(matcher)
            .bind(until)
            .bind(by)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    tx.commit().await?;
    Ok(row)
}

/// Silences still in force, soonest to expire first.
pub async fn silences(pool: &PgPool) -> Result<Vec<SilenceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, matcher, until, created_by FROM login_silences
         WHERE until > now() ORDER BY until LIMIT 50",
    )
    .fetch_all(pool)
    .await
}
