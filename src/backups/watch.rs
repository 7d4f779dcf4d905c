//! Following jobs as they run, for a console: the current text of each job's progress
//! message (the outbox row that `run::tell` edits), read from PostgreSQL, so a job is
//! followed whichever replica runs it. `Follower` turns successive reads into new lines.

use crate::domain::html::to_plain;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashMap;

/// (job id, status, the current text of its progress message) of the jobs `user`
/// queued since `since`, oldest first. The newest edit of a message holds its text (a
/// pending edit takes each new text in place, see `outbox::enqueue_edit`).
pub async fn current_texts(
    pool: &PgPool,
    user: i64,
    since: DateTime<Utc>,
) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT j.id, j.status,
                COALESCE((SELECT e.html FROM outbox e WHERE e.edit_of = o.id
                          ORDER BY e.id DESC LIMIT 1), o.html)
         FROM backup_jobs j JOIN outbox o ON o.id = j.progress_row
         WHERE j.requested_by = $1 AND j.created_at >= $2
         ORDER BY j.id",
    )
    .bind(user)
    .bind(since)
    .fetch_all(pool)
    .await
}

/// What a console has shown of its user's jobs.
#[derive(Debug)]
pub struct Follower {
    pool: PgPool,
    user: i64,
    since: DateTime<Utc>,
    /// Per job: its status at the last look, and the text last shown.
    shown: HashMap<i64, (String, String)>,
}

impl Follower {
    pub fn new(pool: PgPool, user: i64, since: DateTime<Utc>) -> Self {
        Follower {
            pool,
            user,
            since,
            shown: HashMap::new(),
        }
    }

    /// The lines (plain text) of every job whose progress changed since the last call. A
    /// job still queued is left out: the reply to the command that queued it said so.
    pub async fn poll(&mut self) -> Result<Vec<String>, sqlx::Error> {
        let mut lines = Vec::new();
        for (job, status, html) in current_texts(&self.pool, self.user, self.since).await? {
            if status == "queued" {
                continue;
            }
            let changed = self.shown.get(&job).is_none_or(|(_, shown)| *shown != html);
            if changed {
                lines.push(to_plain(&html).trim_end().to_string());
            }
            self.shown.insert(job, (status, html));
        }
        Ok(lines)
    }

    /// Whether the end of `job` was shown: it had ended at the last look, whose text (the
    /// result, which replaces the progress as the job ends) was printed.
    pub fn has_shown_end(&self, job: i64) -> bool {
        self.shown
            .get(&job)
            .is_some_and(|(status, _)| status == "succeeded" || status == "failed")
    }
}
