//! Pending actions: the server-side state behind every inline button, step-up prompt and
//! approval request. Claims are single-use and atomic (`UPDATE … WHERE used_at IS NULL`).

use super::StoreResult;
use crate::domain::{ActionId, UserId};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Confirm,
    StepUp,
    Approval,
    /// A button on a message pushed to a chat (an alert): bound to the chat, not to a user
    /// (`user_id` 0), and not used up — whoever presses it in that chat runs its command
    /// through the pipeline under their own permissions, so the command must be idempotent.
    Chat,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Confirm => "confirm",
            Kind::StepUp => "stepup",
            Kind::Approval => "approval",
            Kind::Chat => "chat",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingAction {
    pub id: String,
    pub kind: String,
    pub user_id: i64,
    pub chat_id: i64,
    /// The exact canonical command text the action covers.
    pub command: String,
    pub need_stepup: bool,
    pub need_approval: bool,
    pub request_id: String,
    pub expires_at: DateTime<Utc>,
}

pub struct NewPending<'a> {
    pub kind: Kind,
    pub user: UserId,
    pub chat_id: i64,
    pub command: &'a str,
    pub need_stepup: bool,
    pub need_approval: bool,
    pub request_id: &'a str,
    pub ttl: Duration,
}

/// Why a claim was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such action: forged or mistyped.
    NotFound,
    /// Bound to another user.
    NotYours,
    /// Past its expiry.
    Expired,
    /// Already used.
    Used,
    /// An approval by the requester.
    OwnRequest,
    /// Pressed in another chat than the one it was made for (not used up).
    WrongChat,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NotFound => "unknown or forged action",
            Refusal::NotYours => "action belongs to another user",
            Refusal::Expired => "action expired",
            Refusal::Used => "action already used",
            Refusal::OwnRequest => "requester cannot approve their own request",
            Refusal::WrongChat => "action used from another chat",
        }
    }
}

pub async fn create<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    new: NewPending<'_>,
) -> StoreResult<ActionId> {
    let id = if new.kind == Kind::Approval {
        ActionId::for_approval()
    } else {
        ActionId::for_button()
    };
    sqlx::query(
        "INSERT INTO pending_actions (id, kind, user_id, chat_id, command, need_stepup, need_approval, request_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + $9 * interval '1 second')",
    )
    .bind(id.as_str())
    .bind(new.kind.as_str())
    .bind(new.user.0)
    .bind(new.chat_id)
    .bind(new.command)
    .bind(new.need_stepup)
    .bind(new.need_approval)
    .bind(new.request_id)
    .bind(new.ttl.num_seconds() as f64)
    .execute(executor)
    .await?;
    Ok(id)
}

/// A chat-bound button (`Kind::Chat`) for `chat_id` holding `command`.
pub async fn create_for_chat<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    chat_id: i64,
    command: &str,
    ttl: Duration,
) -> StoreResult<ActionId> {
    let new = NewPending {
        kind: Kind::Chat,
        user: UserId(0),
        chat_id,
        command,
        need_stepup: false,
        need_approval: false,
        request_id: "",
        ttl,
    };
    create(executor, new).await
}

/// The command behind a chat-bound button, if `id` is one for `chat_id` and unexpired.
pub async fn chat_command(
    pool: &PgPool,
    id: &ActionId,
    chat_id: i64,
) -> StoreResult<Option<String>> {
    let action = get(pool, id, Kind::Chat).await?;
    Ok(action
        .filter(|a| a.chat_id == chat_id && a.expires_at > Utc::now())
        .map(|a| a.command))
}

/// Use an action once. `actor` must be its owner, except for approvals, where the actor is
/// the approver and must *not* be the owner. With `chat`, the action must belong to that
/// chat: a press from another chat is refused and leaves the action unused.
pub async fn claim(
    pool: &PgPool,
    id: &ActionId,
    kind: Kind,
    actor: UserId,
    chat: Option<i64>,
    status: &str,
) -> StoreResult<Result<PendingAction, Refusal>> {
    // Approvals must come from someone other than the owner; everything else from the owner.
    const CLAIM_OWN: &str = "UPDATE pending_actions SET used_at = now(), status = $4, decided_by = $3
         WHERE id = $1 AND kind = $2 AND user_id = $3 AND used_at IS NULL AND expires_at > now()
           AND ($5::bigint IS NULL OR chat_id = $5)
         RETURNING id, kind, user_id, chat_id, command, need_stepup, need_approval, request_id, expires_at";
    const CLAIM_OTHERS: &str = "UPDATE pending_actions SET used_at = now(), status = $4, decided_by = $3
         WHERE id = $1 AND kind = $2 AND user_id <> $3 AND used_at IS NULL AND expires_at > now()
           AND ($5::bigint IS NULL OR chat_id = $5)
         RETURNING id, kind, user_id, chat_id, command, need_stepup, need_approval, request_id, expires_at";
    let sql = if kind == Kind::Approval {
        CLAIM_OTHERS
    } else {
        CLAIM_OWN
    };
    let claimed: Option<PendingAction> = sqlx::query_as(sql)
        .bind(id.as_str())
        .bind(kind.as_str())
        .bind(actor.0)
        .bind(status)
        .bind(chat)
        .fetch_optional(pool)
        .await?;
    if let Some(action) = claimed {
        return Ok(Ok(action));
    }
    type Found = (i64, i64, Option<DateTime<Utc>>, DateTime<Utc>);
    let found: Option<Found> = sqlx::query_as(
        "SELECT user_id, chat_id, used_at, expires_at FROM pending_actions WHERE id = $1 AND kind = $2",
    )
    .bind(id.as_str())
    .bind(kind.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(Err(match found {
        None => Refusal::NotFound,
        Some((owner, ..)) if kind == Kind::Approval && owner == actor.0 => Refusal::OwnRequest,
        Some((owner, ..)) if kind != Kind::Approval && owner != actor.0 => Refusal::NotYours,
        // The expiry sweep marks what it claims as used at (or after) its expiry.
        Some((_, _, Some(used), expires)) if used >= expires => Refusal::Expired,
        Some((_, _, Some(_), _)) => Refusal::Used,
        Some((_, _, None, expires)) if expires <= Utc::now() => Refusal::Expired,
        Some((_, action_chat, ..)) if chat.is_some_and(|c| c != action_chat) => Refusal::WrongChat,
        Some(_) => Refusal::Expired,
    }))
}

/// Delete actions that expired more than `keep_secs` ago; returns how many. Idempotent,
/// run periodically by any replica. An approval request the expiry sweep has not yet
/// claimed (its requester not yet told) is kept.
pub async fn prune_expired(pool: &PgPool, keep_secs: i64) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM pending_actions WHERE expires_at < now() - $1 * interval '1 second'
         AND NOT (kind = 'approval' AND used_at IS NULL)",
    )
    .bind(keep_secs as f64)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The user's newest open step-up prompt in this chat.
pub async fn open_stepup(
    pool: &PgPool,
    user: UserId,
    chat_id: i64,
) -> StoreResult<Option<ActionId>> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM pending_actions WHERE user_id = $1 AND kind = 'stepup' AND used_at IS NULL
         AND chat_id = $2 AND expires_at > now() ORDER BY created_at DESC LIMIT 1",
    )
    .bind(user.0)
    .bind(chat_id)
    .fetch_optional(pool)
    .await?;
    Ok(id.and_then(|id| ActionId::parse(&id).ok()))
}

/// Mark a claimed action's final status (completed after its command ran).
pub async fn set_status(pool: &PgPool, id: &str, status: &str) -> StoreResult<()> {
    sqlx::query("UPDATE pending_actions SET status = $2 WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(pool)
        .await?;
    Ok(())
}

/// Look at an action without using it.
pub async fn get(pool: &PgPool, id: &ActionId, kind: Kind) -> StoreResult<Option<PendingAction>> {
    sqlx::query_as(
        "SELECT id, kind, user_id, chat_id, command, need_stepup, need_approval, request_id, expires_at
         FROM pending_actions WHERE id = $1 AND kind = $2",
    )
    .bind(id.as_str())
    .bind(kind.as_str())
    .fetch_optional(pool)
    .await
}
