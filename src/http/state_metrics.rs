//! What an operator must see without Telegram, as gauges read at scrape time: the outbox
//! (pending, dead, oldest pending age), each backup target's last good backup and last
//! restore test, each managed secret's age and last rotation, open login alerts per rule,
//! the newest check run's findings per severity, Redis degraded, the database pool.
//!
//! The database is read at most once per `[http] metrics_cache_secs` however often
//! Prometheus scrapes, within `READ_BOUND`. Every query is bounded by an index, not by the
//! tables' history: partial indexes on the outbox and open alerts, one `LIMIT 1` per
//! target or secret on `(target, id DESC)` / `(secret, id DESC)` (walking at most `WINDOW`
//! backups back), the newest check run by its primary key.

use super::metric_catalog::{SEVERITIES, STATE, write_family};
use crate::engine::Engine;
use crate::outbox::store as outbox;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The longest a scrape waits for PostgreSQL and Redis before serving the last values.
const READ_BOUND: Duration = Duration::from_secs(3);

/// `[http] metrics_cache_secs` when unset.
pub fn default_cache_secs() -> u64 {
    10
}

/// Backups looked at per target, newest first, to find the last good one and the last
/// restore test (years of nightly backups).
pub const WINDOW: i64 = 1000;

const BACKUPS: &str = "
SELECT t.target,
       (SELECT EXTRACT(EPOCH FROM w.finished_at)::float8
          FROM (SELECT b.status, b.finished_at FROM backups b
                 WHERE b.target = t.target ORDER BY b.id DESC LIMIT $2) w
         WHERE w.status = 'good' LIMIT 1),
       v.verified_at, v.verified_ok
  FROM unnest($1::text[]) AS t(target)
  LEFT JOIN LATERAL (
       SELECT EXTRACT(EPOCH FROM w.verified_at)::float8 AS verified_at, w.verified_ok
         FROM (SELECT b.verified_at, b.verified_ok FROM backups b
                WHERE b.target = t.target ORDER BY b.id DESC LIMIT $2) w
        WHERE w.verified_at IS NOT NULL LIMIT 1) v ON true";

const SECRETS: &str = "
SELECT s.name,
       (SELECT EXTRACT(EPOCH FROM now() - coalesce(v.promoted_at, v.created_at))::float8
          FROM secret_versions v WHERE v.secret = s.name AND v.state = 'current'),
       (SELECT r.status FROM rotations r WHERE r.secret = s.name ORDER BY r.id DESC LIMIT 1)
  FROM unnest($1::text[]) AS s(name)";

const ALERTS: &str = "SELECT rule, count(*) FROM login_alerts WHERE state = 'open' GROUP BY rule";

const FINDINGS: &str = "
SELECT EXTRACT(EPOCH FROM r.finished_at)::float8, f.severity, count(f.severity)
  FROM (SELECT id, finished_at FROM check_runs ORDER BY id DESC LIMIT 1) r
  LEFT JOIN check_findings f ON f.run_id = r.id
 GROUP BY r.finished_at, f.severity";

/// The queries by name, for a test to EXPLAIN (`backups` takes the target names and
/// `WINDOW`, `secrets` the secret names).
pub const QUERIES: [(&str, &str); 4] = [
    ("backups", BACKUPS),
    ("secrets", SECRETS),
    ("alerts", ALERTS),
    ("findings", FINDINGS),
];

type BackupRow = (String, Option<f64>, Option<f64>, Option<bool>);
/// (secret, age of the current version, status of the latest rotation)
type SecretRow = (String, Option<f64>, Option<String>);

/// One read of the database and Redis.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    outbox: outbox::Stats,
    backups: Vec<BackupRow>,
    secrets: Vec<SecretRow>,
    alerts: Vec<(String, i64)>,
    findings: Vec<(Option<String>, i64)>,
    last_run: Option<f64>,
    redis_degraded: bool,
    /// Whether the database answered (otherwise the rest is the previous read's).
    fresh: bool,
}

/// The cache of the last read, shared by every scrape of one app.
pub struct StateMetrics {
    engine: Engine,
    ttl: Duration,
    last: Mutex<Option<(Instant, Snapshot)>>,
}

impl StateMetrics {
    pub fn new(engine: Engine) -> Self {
        let ttl = Duration::from_secs(engine.settings().http.metrics_cache_secs);
        StateMetrics {
            engine,
            ttl,
            last: Mutex::new(None),
        }
    }

    /// The gauges as Prometheus text.
    pub async fn render(&self) -> String {
        let snapshot = self.snapshot().await;
        self.write(&snapshot)
    }

    /// The cached read while it is fresh; otherwise a new one (scrapes arriving meanwhile
    /// wait for it rather than read again).
    async fn snapshot(&self) -> Snapshot {
        let mut last = self.last.lock().await;
        if let Some((at, snapshot)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return snapshot.clone();
        }
        let redis = tokio::time::timeout(READ_BOUND, self.engine.redis().ping()).await;
        let read = tokio::time::timeout(READ_BOUND, self.read()).await;
        let was_fresh = last.as_ref().is_none_or(|(_, s)| s.fresh);
        let mut snapshot = match read {
            Ok(Ok(snapshot)) => snapshot,
            failed => {
                if was_fresh {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {READ_BOUND:?}"),
                    };
                    tracing::warn!(error = %error, "metrics.state_read_failed");
                }
                let mut stale = last.take().map(|(_, s)| s).unwrap_or_default();
                stale.fresh = false;
                stale
            }
        };
        snapshot.redis_degraded = !matches!(redis, Ok(Ok(_)));
        *last = Some((Instant::now(), snapshot.clone()));
        snapshot
    }

    async fn read(&self) -> sqlx::Result<Snapshot> {
        let pool = self.engine.pool();
        let settings = self.engine.settings();
        let targets: Vec<&str> = settings
            .backups
            .targets
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let secrets: Vec<&str> = settings.secrets.iter().map(|s| s.name.as_str()).collect();
        let backups = sqlx::query_as(BACKUPS)
            .bind(&targets)
            .bind(WINDOW)
            .fetch_all(pool)
            .await?;
        let secrets = sqlx::query_as(SECRETS)
            .bind(&secrets)
            .fetch_all(pool)
            .await?;
        let alerts = sqlx::query_as(ALERTS).fetch_all(pool).await?;
        let rows: Vec<(Option<f64>, Option<String>, i64)> =
            sqlx::query_as(FINDINGS).fetch_all(pool).await?;
        Ok(Snapshot {
            outbox: outbox::stats(pool).await?,
            backups,
            secrets,
            alerts,
            last_run: rows.first().and_then(|r| r.0),
            findings: rows.into_iter().map(|(_, s, n)| (s, n)).collect(),
            redis_degraded: false,
            fresh: true,
        })
    }

    fn write(&self, s: &Snapshot) -> String {
        let pool = self.engine.pool();
        let settings = self.engine.settings();
        let idle = pool.num_idle() as f64;
        let open = f64::from(pool.size());
        let one = |v: f64| vec![(Vec::new(), v)];
        let by = |label: &'static str, rows: Vec<(String, f64)>| -> Samples {
            rows.into_iter()
                .map(|(k, v)| (vec![(label, k)], v))
                .collect()
        };
        let target = |f: fn(&BackupRow) -> f64| {
            by(
                "target",
                s.backups.iter().map(|r| (r.0.clone(), f(r))).collect(),
            )
        };
        let secret = |f: fn(&SecretRow) -> f64| {
            by(
                "secret",
                s.secrets.iter().map(|r| (r.0.clone(), f(r))).collect(),
            )
        };
        let rules = settings.logins.rules.iter().map(|r| {
            let open = s.alerts.iter().find(|(rule, _)| *rule == r.name);
            (r.name.clone(), open.map_or(0.0, |(_, n)| *n as f64))
        });
        let severities = SEVERITIES.iter().map(|sev| {
            let n = s.findings.iter().find(|(x, _)| x.as_deref() == Some(*sev));
            (sev.to_string(), n.map_or(0.0, |(_, n)| *n as f64))
        });
        let values: [Samples; 15] = [
            one(s.outbox.pending as f64),
            one(s.outbox.dead as f64),
            one(s.outbox.oldest_pending_secs.unwrap_or(0.0)),
            target(|r| r.1.unwrap_or(0.0)),
            target(|r| (r.3 == Some(true)) as u8 as f64),
            target(|r| r.2.unwrap_or(0.0)),
            secret(|r| r.1.unwrap_or(-1.0)),
            secret(|r| matches!(r.2.as_deref(), Some("failed" | "rolled_back")) as u8 as f64),
            by("rule", rules.collect()),
            by("severity", severities.collect()),
            one(s.last_run.unwrap_or(0.0)),
            one(s.redis_degraded as u8 as f64),
            by(
                "state",
                vec![("in_use".into(), open - idle), ("idle".into(), idle)],
            ),
            one(f64::from(settings.database.max_connections)),
            one(s.fresh as u8 as f64),
        ];
        let mut out = String::new();
        for (family, samples) in STATE.iter().zip(values) {
            write_family(&mut out, family, &samples);
        }
        out
    }
}

type Samples = Vec<(Vec<(&'static str, String)>, f64)>;

// `write` fills the families of `STATE` in order, one value list each.
const _: () = assert!(STATE.len() == 15);
