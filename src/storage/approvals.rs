//! The approval requests pushed to admins (`approval_notices`): who may decide a request,
//! the button each approver got (bound to them and their private chat), and the sweep's
//! claim of requests that expired undecided.

use super::StoreResult;
use super::pending::PendingAction;
use crate::domain::{ActionId, UserId};

/// One approver's copy of a request: the message pushed to them and its buttons' id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notice {
    pub id: String,
    pub approval_id: String,
    pub approver: i64,
    pub chat_id: i64,
    /// The outbox row of the pushed message (edited when the request ends).
    pub outbox_id: i64,
}

/// Everyone who may decide a request of `requester` for a command needing `permission`:
/// active users holding both `approvals.decide` and that permission, other than the
/// requester (the rule `/approve` enforces), oldest id first.
pub async fn approvers<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    requester: UserId,
    permission: &str,
) -> StoreResult<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT u.telegram_id FROM users u
         JOIN user_roles ur USING (telegram_id)
         JOIN role_permissions rp ON rp.role = ur.role
         WHERE u.active AND u.telegram_id <> $1
         GROUP BY u.telegram_id
         HAVING bool_or(rp.permission = 'approvals.decide') AND bool_or(rp.permission = $2)
         ORDER BY 1",
    )
    .bind(requester.0)
    .bind(permission)
    .fetch_all(executor)
    .await
}

/// Record the copy pushed to `approver` (as outbox row `outbox_id`); returns its button id.
pub async fn add_notice<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    button: &ActionId,
    approval: &ActionId,
    approver: i64,
    outbox_id: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO approval_notices (id, approval_id, approver, chat_id, outbox_id)
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(button.as_str())
    .bind(approval.as_str())
    .bind(approver)
    .bind(outbox_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// The copy a button belongs to, if any.
pub async fn notice<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    button: &ActionId,
) -> StoreResult<Option<Notice>> {
    sqlx::query_as(
        "SELECT id, approval_id, approver, chat_id, outbox_id FROM approval_notices WHERE id = $1",
    )
    .bind(button.as_str())
    .fetch_optional(executor)
    .await
}

/// Every copy of a request, in the order they were pushed.
pub async fn notices_of<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    approval: &str,
) -> StoreResult<Vec<Notice>> {
    sqlx::query_as(
        "SELECT id, approval_id, approver, chat_id, outbox_id FROM approval_notices
         WHERE approval_id = $1 ORDER BY created_at, approver",
    )
    .bind(approval)
    .fetch_all(executor)
    .await
}

/// Claim up to `limit` approval requests that expired undecided: each is marked `expired`
/// (and used, so no late `/approve` can claim it) by exactly one caller. Rows another
/// transaction holds (a decision in flight, another replica's sweep) are skipped; a row
/// decided meanwhile no longer matches. Run it in the transaction that tells their people,
/// so the claim and the messages commit together.
pub async fn claim_expired(
    conn: &mut sqlx::PgConnection,
    limit: i64,
) -> StoreResult<Vec<PendingAction>> {
    sqlx::query_as(
        "UPDATE pending_actions SET status = 'expired', used_at = now()
         WHERE id IN (SELECT id FROM pending_actions
                      WHERE kind = 'approval' AND status = 'pending' AND used_at IS NULL
                        AND expires_at <= now()
                      ORDER BY expires_at LIMIT $1
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, kind, user_id, chat_id, command, need_stepup, need_approval, request_id, expires_at",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Where an approval request stands, as its buttons answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    Open,
    Decided,
    Expired,
}

/// The state of request `approval` (`None`: no such request, or pruned).
pub async fn state<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    approval: &str,
) -> StoreResult<Option<RequestState>> {
    let row: Option<String> = sqlx::query_scalar(
        "SELECT CASE WHEN used_at IS NULL AND expires_at > now() THEN 'open'
                     WHEN used_at IS NULL OR used_at >= expires_at THEN 'expired'
                     ELSE 'decided' END
         FROM pending_actions WHERE id = $1 AND kind = 'approval'",
    )
    .bind(approval)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|s| match s.as_str() {
        "open" => RequestState::Open,
        "decided" => RequestState::Decided,
        _ => RequestState::Expired,
    }))
}
