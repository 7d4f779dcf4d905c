//! `opsguard chat allow|remove|list`: the allow-list of group chats from a shell, audited
//! like every shell action. A group's id is negative (`-1001234567890`) and is taken as a
//! number, never as a flag.

use super::audited;
use crate::domain::ChatId;
use crate::storage;
use sqlx::PgPool;

#[derive(clap::Subcommand)]
pub enum ChatCmd {
    /// Allow a group chat (its members still need their own roles).
    Allow {
        /// The chat id; a group's is negative (-1001234567890).
        #[arg(allow_negative_numbers = true)]
        id: i64,
        #[arg(long, default_value = "")]
        title: String,
    },
    /// Remove a group chat from the allow-list.
    Remove {
        #[arg(allow_negative_numbers = true)]
        id: i64,
    },
    /// List allowed group chats.
    List,
}

impl ChatCmd {
    pub async fn run(
        self,
        settings: &crate::config::Settings,
        pool: &PgPool,
    ) -> anyhow::Result<()> {
        match self {
            ChatCmd::Allow { id, title } => {
                audited(settings, pool, "chat allow", &id.to_string(), async {
                    Ok(storage::chats::allow(pool, ChatId(id), &title).await?)
                })
                .await?;
                println!("chat {id} is allow-listed");
            }
            ChatCmd::Remove { id } => {
                let removed = audited(settings, pool, "chat remove", &id.to_string(), async {
                    Ok(storage::chats::disallow(pool, ChatId(id)).await?)
                })
                .await?;
                println!(
                    "{}",
                    if removed {
                        format!("chat {id} removed")
                    } else {
                        format!("chat {id} was not allow-listed")
                    }
                );
            }
            ChatCmd::List => {
                for (id, title) in storage::chats::list(pool).await? {
                    println!("{id}\t{title}");
                }
            }
        }
        Ok(())
    }
}
