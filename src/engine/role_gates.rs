//! The facts a role change's gates depend on (`gates::RoleFacts`), read from the store
//! before planning: what the role grants and whom the change touches. A system role
//! granted to a person is refused here, before any gate.

use super::Engine;
use super::gates::{self, RoleFacts};
use super::pipeline::{Handled, db_down};
use super::trail::Trail;
use crate::domain::Reply;
use crate::domain::command::Command;
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
            Err(e) => return Err(db_down(label, &e)),
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
}
