//! The `opsguard` command line: serve, migrate, console, and shell administration.
#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use opsguard::config::Settings;
use opsguard::domain::{ChatId, RoleName, UserId};
use opsguard::engine::shell::audited;
use opsguard::startup::{self, Application};
use opsguard::{storage, telemetry};
use sqlx::PgPool;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// mimalloc rather than glibc's malloc: ingest and detection allocate many small strings per
/// event, and the ingest benchmark ran ~10% faster with it (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "opsguard",
    version,
    about = "Telegram ops agent: every command permission-checked and audited"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the bot (webhook or long polling) and the HTTP endpoints; applies migrations first.
    Serve,
    /// Create the database if needed and apply migrations.
    Migrate,
    /// Run commands through the same pipeline from a terminal, acting as a Telegram user.
    Console {
        /// The numeric Telegram user id to act as.
        #[arg(long = "as", value_name = "TELEGRAM_USER_ID")]
        as_user: String,
    },
    /// Manage users and their roles.
    User {
        #[command(subcommand)]
        action: UserCmd,
    },
    /// Manage allow-listed group chats.
    Chat {
        #[command(subcommand)]
        action: ChatCmd,
    },
    /// Verify or export the audit log.
    Audit {
        #[command(subcommand)]
        action: AuditCmd,
    },
    /// Service tokens for the auth-event ingest API.
    #[command(subcommand)]
    Token(opsguard::logins::jwt::TokenCmd),
    /// Managed secrets: list, status, rotate.
    #[command(subcommand)]
    Secret(opsguard::secrets::cli::SecretCmd),
    /// Backups: run, list, verify (restore test), restore, key.
    #[command(subcommand)]
    Backup(opsguard::backups::cli::BackupCmd),
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add (or re-activate) a user with a role.
    Add {
        id: String,
        #[arg(long)]
        role: String,
        /// Display name (defaults to "user <id>").
        #[arg(long)]
        name: Option<String>,
    },
    /// List users and their roles.
    List,
    /// Give a user a role.
    Grant { id: String, role: String },
    /// Take a role from a user.
    Revoke { id: String, role: String },
    /// Deactivate a user (keeps their history).
    Disable { id: String },
    /// Remove a user's TOTP authenticator so they can enrol a new one.
    ResetTotp { id: String },
}

#[derive(Subcommand)]
enum ChatCmd {
    /// Allow a group chat (its members still need their own roles).
    Allow {
        id: i64,
        #[arg(long, default_value = "")]
        title: String,
    },
    /// Remove a group chat from the allow-list.
    Remove { id: i64 },
    /// List allowed group chats.
    List,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Walk the hash chain; exits non-zero and names the first bad row if it is broken.
    Verify,
    /// Write every row as JSON Lines (to stdout, or --output FILE).
    Export {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, Cmd::Serve);
    telemetry::init(if quiet { "warn" } else { "info" });
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load()?;
    match cli.command {
        Cmd::Serve => {
            let app = Application::build(settings).await?;
            let token = app.shutdown_token();
            tokio::spawn(async move {
                startup::wait_for_signal().await;
                tracing::info!("shutdown.signal");
                token.cancel();
            });
            app.run().await?;
        }
        Cmd::Migrate => {
            pool(&settings).await?;
            println!("migrations applied");
        }
        Cmd::Console { as_user } => {
            let user = UserId::parse(&as_user).map_err(anyhow::Error::msg)?;
            opsguard::console::start(settings, user).await?;
        }
        Cmd::User { action } => user(&pool(&settings).await?, action).await?,
        Cmd::Chat { action } => chat(&pool(&settings).await?, action).await?,
        Cmd::Audit { action } => return audit(&pool(&settings).await?, action).await,
        Cmd::Token(action) => action.run(&settings, pool(&settings)).await?,
        Cmd::Secret(action) => action.run(&settings, pool(&settings).await?).await?,
        Cmd::Backup(action) => {
            if !action.run(&settings, pool(&settings).await?).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn pool(settings: &Settings) -> anyhow::Result<PgPool> {
    let url = settings.database.url.expose();
    let pool = storage::pool(
        url,
        4,
        Duration::from_millis(settings.database.acquire_timeout_ms),
    )?;
    storage::migrate(url, &pool)
        .await
        .context("cannot apply migrations: is PostgreSQL reachable at DATABASE_URL?")?;
    Ok(pool)
}

async fn known_role(pool: &PgPool, raw: &str) -> anyhow::Result<RoleName> {
    let role = RoleName::parse(raw).map_err(anyhow::Error::msg)?;
    if !storage::users::role_exists(pool, &role).await? {
        bail!(
            "no role '{role}'; roles: {}",
            storage::users::roles(pool).await?.join(", ")
        );
    }
    Ok(role)
}

/// A system role (the scheduler's) is held by no person.
async fn refuse_system_role(pool: &PgPool, role: &RoleName) -> anyhow::Result<()> {
    if storage::users::is_system_role(pool, role).await? {
        bail!(
            "{role} is a system role (the scheduler's): it cannot be granted to a person; nothing was changed"
        );
    }
    Ok(())
}

async fn user(pool: &PgPool, action: UserCmd) -> anyhow::Result<()> {
    let id = |raw: &str| UserId::parse(raw).map_err(anyhow::Error::msg);
    match action {
        UserCmd::Add {
            id: raw,
            role,
            name,
        } => {
            let (id, role) = (id(&raw)?, known_role(pool, &role).await?);
            let name = name.unwrap_or_else(|| format!("user {id}"));
            audited(pool, "user add", &format!("{id} {role}"), async {
                refuse_system_role(pool, &role).await?;
                storage::users::upsert(pool, id, &name).await?;
                storage::users::grant(pool, id, &role, "shell").await?;
                Ok(())
            })
            .await?;
            println!("user {id} ({name}) has the role {role}");
        }
        UserCmd::List => {
            for p in storage::users::list(pool).await? {
                let state = if p.user.active { "" } else { " (inactive)" };
                println!(
                    "{}\t{}\t{}{state}",
                    p.user.id,
                    p.user.display_name,
                    p.user.roles.join(",")
                );
            }
        }
        UserCmd::Grant { id: raw, role } => {
            let (id, role) = (id(&raw)?, known_role(pool, &role).await?);
            audited(pool, "user grant", &format!("{id} {role}"), async {
                refuse_system_role(pool, &role).await?;
                if storage::users::principal_of(pool, id).await?.is_none() {
                    bail!("user {id} is not known; use `opsguard user add`");
                }
                storage::users::grant(pool, id, &role, "shell").await?;
                Ok(())
            })
            .await?;
            println!("user {id} has the role {role}");
        }
        UserCmd::Revoke { id: raw, role } => {
            let (id, role) = (id(&raw)?, known_role(pool, &role).await?);
            let revoked = audited(pool, "user revoke", &format!("{id} {role}"), async {
                Ok(storage::users::revoke_keeping_last(pool, id, &role, "admin").await?)
            })
            .await?;
            match revoked {
                storage::users::Revoked::Removed => {
                    println!("user {id} no longer has the role {role}")
                }
                storage::users::Revoked::NotHeld => {
                    println!("user {id} did not have the role {role}")
                }
                storage::users::Revoked::LastHolder => {
                    bail!("user {id} is the last active admin; grant admin to someone else first")
                }
            }
        }
        UserCmd::Disable { id: raw } => {
            let id = id(&raw)?;
            let done = audited(pool, "user disable", &id.to_string(), async {
                Ok(storage::users::set_active(pool, id, false).await?)
            })
            .await?;
            if !done {
                bail!("user {id} is not known");
            }
            println!("user {id} is disabled");
        }
        UserCmd::ResetTotp { id: raw } => {
            let id = id(&raw)?;
            let removed = audited(pool, "user reset-totp", &id.to_string(), async {
                Ok(opsguard::engine::totp::reset(pool, id).await?)
            })
            .await?;
            println!(
                "{}",
                if removed {
                    format!("user {id} may enrol a new authenticator")
                } else {
                    format!("user {id} had no authenticator")
                }
            );
        }
    }
    Ok(())
}

async fn chat(pool: &PgPool, action: ChatCmd) -> anyhow::Result<()> {
    match action {
        ChatCmd::Allow { id, title } => {
            audited(pool, "chat allow", &id.to_string(), async {
                Ok(storage::chats::allow(pool, ChatId(id), &title).await?)
            })
            .await?;
            println!("chat {id} is allow-listed");
        }
        ChatCmd::Remove { id } => {
            let removed = audited(pool, "chat remove", &id.to_string(), async {
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

async fn audit(pool: &PgPool, action: AuditCmd) -> anyhow::Result<ExitCode> {
    match action {
        AuditCmd::Verify => {
            let report = storage::audit::verify(pool).await?;
            match report.broken {
                None => {
                    println!("audit chain intact: {} rows verified", report.rows);
                    Ok(ExitCode::SUCCESS)
                }
                Some(b) => {
                    println!("audit chain BROKEN at row {}: {}", b.seq, b.reason);
                    Ok(ExitCode::from(2))
                }
            }
        }
        AuditCmd::Export { output } => {
            let mut out: Box<dyn std::io::Write + Send> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let rows = storage::audit::export(pool, &mut *out).await?;
            if output.is_some() {
                eprintln!("{rows} rows exported");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
