//! Dead letters: a push the outbox gave up on (after `max_attempts`) is not only counted.
//! The admins are warned in their own private chats (never the chat that failed), the log
//! says so at ERROR, and `opsguard outbox retry [ID…]` (or `/outbox retry` in chat) puts
//! dead rows back in the queue; `/outbox` lists them.
//! A warning that itself dies warns nobody (no loop), nor does a reply a user caused, and
//! the warnings have a budget (see `SILENT_SOURCES`, `WARNINGS_PER_TEN_MINUTES`).

use crate::domain::Reply;
use crate::domain::html::escape;
use sqlx::PgPool;

/// The outbox source of the warnings.
pub const SOURCE: &str = "dead_letter";

/// A row that just became a dead letter.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub chat_id: i64,
    pub source: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// Who is warned: active users who manage users (the admins), by their private chats.
async fn admins(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT u.telegram_id FROM users u
         JOIN user_roles ur USING (telegram_id)
         JOIN role_permissions rp ON rp.role = ur.role
         WHERE u.active AND rp.permission = 'users.manage'
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
}

/// Sources whose dead letters are logged and counted but warn nobody: a dead warning (no
/// loop), and what a user's own message caused (a reply handed to the outbox, an inbox
/// notice) — a stranger who blocks the bot must not make opsguard page the admins.
const SILENT_SOURCES: &[&str] = &[SOURCE, "reply", "inbox"];

/// Warnings queued in the last ten minutes beyond which new dead letters are only logged:
/// whatever kills pushes in bulk cannot turn into a flood of warnings.
const WARNINGS_PER_TEN_MINUTES: i64 = 20;

async fn recent_warnings(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE source = $1 AND created_at > now() - interval '10 minutes'",
    )
    .bind(SOURCE)
    .fetch_one(pool)
    .await
}

/// Log each new dead letter at ERROR and queue a warning to every admin but the failing
/// chat, within the warning budget.
pub async fn announce(pool: &PgPool, dead: &[DeadLetter]) {
    for d in dead
        .iter()
        .filter(|d| SILENT_SOURCES.contains(&d.source.as_str()))
    {
        metrics::counter!("opsguard_outbox_dead_letters_total").increment(1);
        tracing::error!(
            outbox.id = d.id, chat.id = d.chat_id, outbox.source = %d.source,
            error = d.last_error.as_deref().unwrap_or(""), admins_told = 0,
            "outbox.dead_lettered"
        );
    }
    let dead: Vec<&DeadLetter> = dead
        .iter()
        .filter(|d| !SILENT_SOURCES.contains(&d.source.as_str()))
        .collect();
    if dead.is_empty() {
        return;
    }
    let admins = match admins(pool).await {
        Ok(admins) => admins,
        Err(e) => {
            tracing::error!(error = %e, "outbox.dead_letter_admins_unknown");
            Vec::new()
        }
    };
    // What is left of the budget, spent warning by warning: many rows dead at once (a
    // revoked token) must not flood the admins.
    let mut budget = recent_warnings(pool)
        .await
        .map_or(WARNINGS_PER_TEN_MINUTES, |n| {
            WARNINGS_PER_TEN_MINUTES.saturating_sub(n)
        });
    for d in dead {
        metrics::counter!("opsguard_outbox_dead_letters_total").increment(1);
        let to: Vec<i64> = admins.iter().copied().filter(|a| *a != d.chat_id).collect();
        let over_budget = to.len() as i64 > budget;
        let told: Vec<i64> = if over_budget { Vec::new() } else { to };
        budget -= told.len() as i64;
        tracing::error!(
            outbox.id = d.id, chat.id = d.chat_id, outbox.source = %d.source,
            error = d.last_error.as_deref().unwrap_or(""), admins_told = told.len(),
            warnings_over_budget = over_budget, "outbox.dead_lettered"
        );
        let warning = Reply::html(format!(
            "⚠️ A message to chat <code>{}</code> ({}) could not be delivered after {} attempts and was set aside as dead letter <code>#{}</code>.\nLast error: {}\nRe-send it with <code>opsguard outbox retry {}</code> once the cause is fixed.",
            d.chat_id,
            escape(&d.source),
            d.attempts,
            d.id,
            escape(d.last_error.as_deref().unwrap_or("none recorded")),
            d.id
        ));
        for admin in told {
            if let Err(e) = super::enqueue(pool, admin, &warning, SOURCE).await {
                tracing::error!(error = %e, chat.id = admin, "outbox.dead_letter_warning_failed");
            }
        }
    }
}

/// A dead letter as `/outbox` lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    pub id: i64,
    pub chat_id: i64,
    pub source: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// How many dead letters there are, and the newest `limit` of them.
pub async fn list(pool: &PgPool, limit: i64) -> Result<(i64, Vec<Listed>), sqlx::Error> {
    let total = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'dead'")
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query_as(
        "SELECT id, chat_id, source, attempts, last_error, created_at FROM outbox
         WHERE status = 'dead' ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok((total, rows))
}

/// Put dead rows back in the queue (all of them, or those of `ids`), with a fresh count of
/// attempts; returns the ids re-queued.
pub async fn retry(pool: &PgPool, ids: &[i64]) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE outbox SET status = 'pending', attempts = 0, not_before = now(),
             lease_until = NULL
         WHERE status = 'dead' AND (cardinality($1::bigint[]) = 0 OR id = ANY($1))
         RETURNING id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .map(|mut ids: Vec<i64>| {
        ids.sort_unstable();
        ids
    })
}
