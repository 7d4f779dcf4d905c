//! The facts a role change's gates depend on (`gates::RoleFacts`), read from the store
//! before planning: what the role grants and whom the change touches. A system role
//! granted to a person is refused here, before any gate.

use super::Engine;
use super::gates::{self, RoleFacts};
use super::pipeline::Handled;
use super::trail::Trail;
use crate::domain::Reply;
use crate::domain::command::{Command, RoleChange};
use crate::domain::html::escape;
use crate::storage::{self, users::Principal};

impl Engine {
    /// What the gates of a role change depend on. A system role granted to a person is
    /// refused here, before any gate: audited, and nothing changes.
    pub(super) async fn role_facts(
        &self,
        trail: &Trail,
        label: &'static str,
        principal: &Principal,
        command: &Command,
    ) -> Result<RoleFacts, Handled> {
        let (change, grant) = match command {
            Command::Grant(c) => (c, true),
            Command::Revoke(c) => (c, false),
            _ => return Ok(RoleFacts::default()),
        };
        if grant {
            self.grant_targets_exist(trail, label, change).await?;
        }
        let sensitive = gates::sensitive_permissions();
        let facts = storage::users::role_change_facts(
            self.pool(),
            &change.role,
            change.user,
            principal.user.id,
            &sensitive,
        )
        .await;
        let (system, role_sensitive, target_other_admin) = match facts {
            Ok(facts) => facts,
            Err(e) => return Err(self.db_down(label, &e)),
        };
        if grant && system {
            let reply = Reply::html(format!(
                "⛔ <b>{}</b> is a system role (the scheduler's): it cannot be granted to a person. Nothing was changed.",
                escape(change.role.as_str())
            ));
            let reason = "system role cannot be granted to a person";
            return Err(self.refuse(trail, label, "denied", reason, reply).await);
        }
        Ok(RoleFacts {
            role_sensitive,
            target_other_admin,
        })
    }

    /// A grant names a known user and an existing role, checked before any confirmation is
    /// asked for: a typo is refused at once (audited as invalid), and no pending action is
    /// created.
    async fn grant_targets_exist(
        &self,
        trail: &Trail,
        label: &'static str,
        change: &RoleChange,
    ) -> Result<(), Handled> {
        let pool = self.pool();
        let known = match storage::users::principal_of(pool, change.user).await {
            Ok(p) => p.is_some(),
            Err(e) => return Err(self.db_down(label, &e)),
        };
        if !known {
            let reply = Reply::html(format!(
                "❌ User <code>{}</code> is not known to opsguard. Add them from a shell first: <code>opsguard user add {} --role viewer</code>. Nothing was changed.",
                change.user, change.user
            ));
            let reason = "unknown user";
            return Err(self.refuse(trail, label, "invalid", reason, reply).await);
        }
        let roles = match storage::users::roles(pool).await {
            Ok(roles) => roles,
            Err(e) => return Err(self.db_down(label, &e)),
        };
        if !roles.iter().any(|r| r == change.role.as_str()) {
            let reply = Reply::html(format!(
                "❌ There is no role <b>{}</b>. Roles: {}. Nothing was changed.",
                escape(change.role.as_str()),
                escape(&roles.join(", "))
            ));
            let reason = "unknown role";
            return Err(self.refuse(trail, label, "invalid", reason, reply).await);
        }
        Ok(())
    }
}
