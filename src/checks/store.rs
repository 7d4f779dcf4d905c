//! Stored check reports (`check_runs`, `check_findings`): every `/check` run is saved, so
//! `/findings` can show the last report and a run can be compared with the previous run
//! of the same selection.

use super::runner::Report;
use crate::domain::finding::{Finding, Severity};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;

/// A saved run and its report.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub id: i64,
    pub selection: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub actor: String,
    pub report: Report,
}

/// Who ran a report, and when it started.
pub struct RunInfo<'a> {
    pub selection: &'a str,
    pub started_at: DateTime<Utc>,
    pub actor: &'a str,
    pub request_id: &'a str,
}

/// Save a run and its findings in one transaction; returns the run id.
pub async fn save(pool: &PgPool, info: &RunInfo<'_>, report: &Report) -> Result<i64, sqlx::Error> {
    let checked: Vec<_> = report
        .checked
        .iter()
        .map(|(c, t)| json!({ "check": c, "target": t }))
        .collect();
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO check_runs (selection, started_at, actor, request_id, checked)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(info.selection)
    .bind(info.started_at)
    .bind(info.actor)
    .bind(info.request_id)
    .bind(serde_json::Value::Array(checked))
    .fetch_one(&mut *tx)
    .await?;
    let f = &report.findings;
    let column =
        |get: fn(&Finding) -> &str| f.iter().map(|x| get(x).to_string()).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO check_findings (run_id, position, check_name, target, severity, title, evidence, remediation, reference)
         SELECT $1, ord::integer, c, t, s, ti, e, r, re
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
              WITH ORDINALITY AS x(c, t, s, ti, e, r, re, ord)",
    )
    .bind(id)
    .bind(column(|x| &x.check))
    .bind(column(|x| &x.target))
    .bind(column(|x| x.severity.as_str()))
    .bind(column(|x| &x.title))
    .bind(column(|x| &x.evidence))
    .bind(column(|x| &x.remediation))
    .bind(column(|x| &x.reference))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    selection: String,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    actor: String,
    checked: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct FindingRow {
    check_name: String,
    target: String,
    severity: String,
    title: String,
    evidence: String,
    remediation: String,
    reference: String,
}

fn severity(s: &str) -> Severity {
    Severity::ALL
        .into_iter()
        .find(|x| x.as_str() == s)
        .unwrap_or(Severity::Info)
}

async fn load(pool: &PgPool, row: Option<RunRow>) -> Result<Option<StoredRun>, sqlx::Error> {
    let Some(row) = row else { return Ok(None) };
    let findings: Vec<FindingRow> = sqlx::query_as(
        "SELECT check_name, target, severity, title, evidence, remediation, reference
         FROM check_findings WHERE run_id = $1 ORDER BY position",
    )
    .bind(row.id)
    .fetch_all(pool)
    .await?;
    let pairs = row.checked.as_array().cloned().unwrap_or_default();
    let checked = pairs.iter().map(|p| {
        let field = |k: &str| {
            p.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        (field("check"), field("target"))
    });
    let report = Report {
        checked: checked.collect(),
        findings: findings
            .into_iter()
            .map(|f| Finding {
                check: f.check_name,
                target: f.target,
                severity: severity(&f.severity),
                title: f.title,
                evidence: f.evidence,
                remediation: f.remediation,
                reference: f.reference,
            })
            .collect(),
    };
    Ok(Some(StoredRun {
        id: row.id,
        selection: row.selection,
        started_at: row.started_at,
        finished_at: row.finished_at,
        actor: row.actor,
        report,
    }))
}

/// The newest run of any selection.
pub async fn last(pool: &PgPool) -> Result<Option<StoredRun>, sqlx::Error> {
    let row = sqlx::query_as(
        "SELECT id, selection, started_at, finished_at, actor, checked FROM check_runs ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    load(pool, row).await
}

/// The run of the same selection just before run `before`.
pub async fn previous(
    pool: &PgPool,
    selection: &str,
    before: i64,
) -> Result<Option<StoredRun>, sqlx::Error> {
    let row = sqlx::query_as(
        "SELECT id, selection, started_at, finished_at, actor, checked FROM check_runs
         WHERE selection = $1 AND id < $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(selection)
    .bind(before)
    .fetch_optional(pool)
    .await?;
    load(pool, row).await
}
