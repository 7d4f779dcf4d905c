//! Users, their roles, and the permissions those roles hold.

use super::StoreResult;
use crate::domain::{RoleName, UserId};
use sqlx::PgPool;
use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub display_name: String,
    pub active: bool,
    pub roles: Vec<String>,
}

/// A user with everything authorization needs.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRecord,
    pub permissions: HashSet<String>,
}

type UserRow = (i64, String, bool, Vec<String>, Vec<String>);

macro_rules! select_users {
    ($rest:literal) => {
        concat!("
    SELECT u.telegram_id, u.display_name, u.active,
           COALESCE(array_agg(DISTINCT ur.role) FILTER (WHERE ur.role IS NOT NULL), '{}') AS roles,
           COALESCE(array_agg(DISTINCT rp.permission) FILTER (WHERE rp.permission IS NOT NULL), '{}') AS perms
    FROM users u
    LEFT JOIN user_roles ur ON ur.telegram_id = u.telegram_id
    LEFT JOIN role_permissions rp ON rp.role = ur.role ", $rest)
    };
}

fn principal((id, display_name, active, roles, perms): UserRow) -> Principal {
    Principal {
        user: UserRecord {
            id: UserId(id),
            display_name,
            active,
            roles,
        },
        permissions: perms.into_iter().collect(),
    }
}

pub async fn principal_of(pool: &PgPool, id: UserId) -> StoreResult<Option<Principal>> {
    let row: Option<UserRow> = sqlx::query_as(select_users!(
        "WHERE u.telegram_id = $1 GROUP BY u.telegram_id"
    ))
    .bind(id.0)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(principal))
}

pub async fn list(pool: &PgPool) -> StoreResult<Vec<Principal>> {
    let rows: Vec<UserRow> = sqlx::query_as(select_users!(
        "GROUP BY u.telegram_id ORDER BY u.telegram_id"
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(principal).collect())
}

pub async fn role_permissions(pool: &PgPool, role: &str) -> StoreResult<HashSet<String>> {
    let perms: Vec<String> =
        sqlx::query_scalar("SELECT permission FROM role_permissions WHERE role = $1")
            .bind(role)
            .fetch_all(pool)
            .await?;
    Ok(perms.into_iter().collect())
}

pub async fn roles(pool: &PgPool) -> StoreResult<Vec<String>> {
    sqlx::query_scalar("SELECT name FROM roles ORDER BY name")
        .fetch_all(pool)
        .await
}

pub async fn role_exists(pool: &PgPool, role: &RoleName) -> StoreResult<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM roles WHERE name = $1)")
        .bind(role.as_str())
        .fetch_one(pool)
        .await
}

/// Create (or re-activate and rename) a user.
pub async fn upsert(pool: &PgPool, id: UserId, display_name: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO users (telegram_id, display_name) VALUES ($1, $2)
         ON CONFLICT (telegram_id) DO UPDATE SET display_name = EXCLUDED.display_name, active = true",
    )
    .bind(id.0)
    .bind(display_name)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn set_active(pool: &PgPool, id: UserId, active: bool) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE users SET active = $2 WHERE telegram_id = $1")
        .bind(id.0)
        .bind(active)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Returns false when the user already had the role.
pub async fn grant(
    pool: &PgPool,
    id: UserId,
    role: &RoleName,
    granted_by: &str,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO user_roles (telegram_id, role, granted_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(id.0)
    .bind(role.as_str())
    .bind(granted_by)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Returns false when the user did not have the role.
pub async fn revoke(pool: &PgPool, id: UserId, role: &RoleName) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM user_roles WHERE telegram_id = $1 AND role = $2")
        .bind(id.0)
        .bind(role.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Active users holding the role (used to refuse removing the last admin).
pub async fn count_with_role(pool: &PgPool, role: &str) -> StoreResult<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM user_roles ur JOIN users u USING (telegram_id) WHERE ur.role = $1 AND u.active",
    )
    .bind(role)
    .fetch_one(pool)
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Removed,
    NotHeld,
    /// Refused: the user is the last active holder of the guarded role.
    LastHolder,
}

/// Revoke a role, but never take `guarded` from its last active holder. The count and the
/// delete run in one transaction under a lock, so two admins revoking each other at the
/// same moment cannot both succeed.
pub async fn revoke_keeping_last(
    pool: &PgPool,
    id: UserId,
    role: &RoleName,
    guarded: &str,
) -> StoreResult<Revoked> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('opsguard.user_roles'))")
        .execute(&mut *tx)
        .await?;
    if role.as_str() == guarded {
        let (holds, holders): (bool, i64) = sqlx::query_as(
            "SELECT bool_or(ur.telegram_id = $1), count(*)
             FROM user_roles ur JOIN users u USING (telegram_id) WHERE ur.role = $2 AND u.active",
        )
        .bind(id.0)
        .bind(guarded)
        .fetch_one(&mut *tx)
        .await
        .map(|(holds, n): (Option<bool>, i64)| (holds.unwrap_or(false), n))?;
        if holds && holders <= 1 {
            return Ok(Revoked::LastHolder);
        }
    }
    let done = sqlx::query("DELETE FROM user_roles WHERE telegram_id = $1 AND role = $2")
        .bind(id.0)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(if done.rows_affected() == 1 {
        Revoked::Removed
    } else {
        Revoked::NotHeld
    })
}

/// Whether a role is a system role (held by no person: the scheduler's).
pub async fn is_system_role(pool: &PgPool, role: &RoleName) -> StoreResult<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM roles WHERE name = $1 AND system)")
        .bind(role.as_str())
        .fetch_one(pool)
        .await
}

/// What gates a change of `role` for `target` by `actor`: (the role is a system role, it
/// holds one of `sensitive` permissions, the target is someone else holding `users.manage`).
pub async fn role_change_facts(
    pool: &PgPool,
    role: &RoleName,
    target: UserId,
    actor: UserId,
    sensitive: &[&str],
) -> StoreResult<(bool, bool, bool)> {
    sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM roles WHERE name = $1 AND system),
                EXISTS (SELECT 1 FROM role_permissions WHERE role = $1 AND permission = ANY($4)),
                $2 <> $3 AND EXISTS (SELECT 1 FROM user_roles ur
                                     JOIN role_permissions rp ON rp.role = ur.role
                                     WHERE ur.telegram_id = $2 AND rp.permission = 'users.manage')",
    )
    .bind(role.as_str())
    .bind(target.0)
    .bind(actor.0)
    .bind(sensitive)
    .fetch_one(pool)
    .await
}
