//! What `/logins` reports over a window: totals by outcome, the top IPs and accounts by
//! failures, and failures per bucket for the chart. Four queries, run concurrently.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, Default)]
pub struct LoginStats {
    pub failures: i64,
    pub locked: i64,
    pub successes: i64,
    /// (IP, failures), most first.
    pub top_ips: Vec<(String, i64)>,
    /// (account, failures), most first.
    pub top_accounts: Vec<(String, i64)>,
    /// (bucket start, failures in it), oldest first; empty buckets are absent.
    pub series: Vec<(DateTime<Utc>, i64)>,
}

impl LoginStats {
    /// Failures (lockouts included) over all attempts, 0.0 when there were none.
    pub fn failure_rate(&self) -> f64 {
        let failed = self.failures + self.locked;
        let all = failed + self.successes;
        if all == 0 {
            0.0
        } else {
            failed as f64 / all as f64
        }
    }
}

pub const TOP: i64 = 5;

pub async fn gather(
    pool: &PgPool,
    since: DateTime<Utc>,
    bucket: Duration,
) -> Result<LoginStats, sqlx::Error> {
    let totals = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT count(*) FILTER (WHERE outcome = 'failure'),
                count(*) FILTER (WHERE outcome = 'locked'),
                count(*) FILTER (WHERE outcome = 'success')
         FROM auth_events WHERE at > $1",
    )
    .bind(since)
    .fetch_one(pool);
    let ips = sqlx::query_as::<_, (String, i64)>(
        "SELECT coalesce(host(ip), host) AS source, count(*) AS n FROM auth_events
         WHERE at > $1 AND outcome <> 'success'
         GROUP BY source ORDER BY n DESC, source LIMIT $2",
    )
    .bind(since)
    .bind(TOP)
    .fetch_all(pool);
    let accounts = sqlx::query_as::<_, (String, i64)>(
        "SELECT account, count(*) AS n FROM auth_events
         WHERE at > $1 AND outcome <> 'success' AND account IS NOT NULL
         GROUP BY account ORDER BY n DESC, account LIMIT $2",
    )
    .bind(since)
    .bind(TOP)
    .fetch_all(pool);
    let series = sqlx::query_as::<_, (DateTime<Utc>, i64)>(
        "SELECT to_timestamp(floor(extract(epoch FROM at) / $2) * $2) AS bucket, count(*)
         FROM auth_events WHERE at > $1 AND outcome <> 'success'
         GROUP BY bucket ORDER BY bucket",
    )
    .bind(since)
    .bind(bucket.num_seconds().max(1) as f64)
    .fetch_all(pool);
    let ((failures, locked, successes), top_ips, top_accounts, series) =
        tokio::try_join!(totals, ips, accounts, series)?;
    Ok(LoginStats {
        failures,
        locked,
        successes,
        top_ips,
        top_accounts,
        series,
    })
}
