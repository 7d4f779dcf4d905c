//! Retention: keep a target's newest `keep_last` good backups and every one younger than
//! `keep_days`, and never the newest backup whose restore test passed. `plan` decides (pure),
//! `prune` deletes the objects and marks the rows, reporting what it removed.

use super::Backups;
use super::catalogue::{self, Backup};
use super::storage::Storage;
use chrono::{DateTime, Duration, Utc};

/// The ids of `good` (newest first) that retention lets go.
pub fn plan(good: &[Backup], keep_last: u32, keep_days: u32, now: DateTime<Utc>) -> Vec<i64> {
    let newest_verified = good
        .iter()
        .find(|b| b.verified_ok == Some(true))
        .map(|b| b.id);
    let cutoff = now - Duration::days(i64::from(keep_days));
    good.iter()
        .enumerate()
        .filter(|(i, b)| {
            *i >= keep_last as usize && b.started_at < cutoff && Some(b.id) != newest_verified
        })
        .map(|(_, b)| b.id)
        .collect()
}

/// One removed backup, as the report shows it.
#[derive(Debug, Clone)]
pub struct Removed {
    pub id: i64,
    pub target: String,
    pub started_at: DateTime<Utc>,
    pub stored_bytes: i64,
}

/// Apply retention to every configured target. Objects are deleted first, then the rows
/// marked: a failure leaves a row that the next run deletes again (idempotent).
pub async fn prune(backups: &Backups) -> Result<(Vec<Removed>, Vec<String>), sqlx::Error> {
    let settings = backups.settings();
    let mut removed = Vec::new();
    let mut problems = Vec::new();
    // A backup a restore test is reading (or about to) stays until the test is done.
    let in_use: Vec<i64> = super::jobs::active(backups.pool())
        .await?
        .iter()
        .filter_map(|j| j.backup_id)
        .collect();
    for target in &settings.targets {
        let (keep_last, keep_days) = settings.retention_of(&target.name);
        let good = catalogue::good_of(backups.pool(), &target.name).await?;
        for id in plan(&good, keep_last, keep_days, Utc::now()) {
            let Some(b) = good.iter().find(|b| b.id == id) else {
                continue;
            };
            if in_use.contains(&id) {
                problems.push(format!(
                    "#{id}: a restore test is reading it; pruned next time"
                ));
                continue;
            }
            let deleted = match Storage::open(&b.storage, settings) {
                Ok(storage) => storage
                    .delete(&b.storage_key)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match deleted {
                Ok(()) => {
                    catalogue::mark_deleted(backups.pool(), b.id).await?;
                    removed.push(Removed {
                        id: b.id,
                        target: b.target.clone(),
                        started_at: b.started_at,
                        stored_bytes: b.stored_bytes.unwrap_or(0),
                    });
                }
                Err(e) => problems.push(format!("#{}: {e}", b.id)),
            }
        }
    }
    Ok((removed, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: i64, days_old: i64, verified: Option<bool>) -> Backup {
        Backup {
            id,
            job_id: id,
            target: "main".into(),
            status: "good".into(),
            started_at: Utc::now() - Duration::days(days_old),
            finished_at: None,
            dump_bytes: None,
            stored_bytes: None,
            sha256: None,
            storage: String::new(),
            storage_key: String::new(),
            pg_dump_version: None,
            server_version: None,
            table_counts: serde_json::json!({}),
            error: None,
            verified_at: None,
            verified_ok: verified,
            verify_error: None,
        }
    }

    #[test]
    fn keeps_the_newest_n_the_young_and_the_newest_verified() {
        // Newest first: ids 10..1, one a day old each (10 is 0 days old).
        let good: Vec<Backup> = (1..=10).rev().map(|id| backup(id, 10 - id, None)).collect();
        // keep 3, and anything younger than 5 days: ids 10..6 are younger than 5 days.
        assert_eq!(plan(&good, 3, 5, Utc::now()), vec![5, 4, 3, 2, 1]);
        assert_eq!(plan(&good, 7, 0, Utc::now()), vec![3, 2, 1]);
        let mut good = good;
        good[8].verified_ok = Some(true); // id 2
        good[9].verified_ok = Some(true); // id 1, older: may go
        assert_eq!(plan(&good, 7, 0, Utc::now()), vec![3, 1]);
        assert!(plan(&good, 20, 0, Utc::now()).is_empty());
    }
}
