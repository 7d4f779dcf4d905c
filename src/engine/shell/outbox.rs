//! `opsguard outbox retry [ID…]`: put dead letters (pushes the outbox gave up on) back in
//! the queue, all of them or the ones named, audited like every shell action. An id that
//! is not a dead letter is named and makes the command fail; nothing else changes for it.

use super::audited;
use sqlx::PgPool;

#[derive(clap::Subcommand)]
pub enum OutboxCmd {
    /// Re-send dead letters (all, or the ids given) with a fresh count of attempts.
    Retry {
        /// Outbox row ids (as the dead-letter warning names them); none: every dead letter.
        ids: Vec<i64>,
    },
}

impl OutboxCmd {
    /// Runs the command; `false` when a named id was not a dead letter.
    pub async fn run(
        self,
        settings: &crate::config::Settings,
        pool: &PgPool,
    ) -> anyhow::Result<bool> {
        let OutboxCmd::Retry { ids } = self;
        let named = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
        let requeued = audited(settings, pool, "outbox retry", &named, async {
            Ok(crate::outbox::dead::retry(pool, &ids).await?)
        })
        .await?;
        let list = |ids: &[i64]| {
            ids.iter()
                .map(|i| format!("#{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if requeued.is_empty() {
            println!("no dead letter re-queued");
        } else {
            println!(
                "re-queued {} dead letter(s): {}",
                requeued.len(),
                list(&requeued)
            );
        }
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| !requeued.contains(i))
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "not dead letters (unknown, pending or sent): {}",
                list(&missing)
            );
        }
        Ok(missing.is_empty())
    }
}
