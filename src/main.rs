//! The `opsguard` command line: serve, migrate, console, and shell administration.
#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use opsguard::config::Settings;
use opsguard::domain::{RoleName, UserId};
use opsguard::engine::shell::audited;
use opsguard::startup::{self, Application};
use opsguard::{storage, telemetry};
use sqlx::PgPool;
use std::process::ExitCode;
use std::time::Duration;

/// mimalloc rather than glibc's malloc: ingest and detection allocate many small strings per
/// event, and the ingest benchmark ran ~10% faster with it (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "opsguard",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("OPSGUARD_COMMIT"), ")"),
    about = "Telegram ops agent: every command permission-checked and audited"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the bot (webhook or long polling) and the HTTP endpoints; applies pending migrations first (as the owner).
    Serve,
    /// Create the database if needed and apply migrations (as the owner role); with a
    /// runtime role ([database] runtime_role or --runtime-role), grant it what it needs and
    /// only read access to the audit log.
    Migrate {
        /// The role `serve`, `console` and the shell commands connect as.
        #[arg(long, value_name = "ROLE")]
        runtime_role: Option<String>,
    },
    /// Run commands through the same pipeline from a terminal, acting as a Telegram user.
    Console {
        /// The numeric Telegram user id to act as.
        #[arg(long = "as", value_name = "TELEGRAM_USER_ID")]
        as_user: String,
        /// Save reports that come as documents (`/check … json|sarif`) in this directory.
        #[arg(long, value_name = "DIR")]
        save_dir: Option<std::path::PathBuf>,
    },
    /// Manage users and their roles.
    User {
        #[command(subcommand)]
        action: UserCmd,
    },
    /// Manage allow-listed group chats.
    #[command(subcommand)]
    Chat(opsguard::engine::shell::chats::ChatCmd),
    /// Verify, checkpoint or export the audit log.
    Audit {
        #[command(subcommand)]
        action: opsguard::audit::cli::AuditCmd,
    },
    /// Check the configuration: prints it (secrets as fingerprints), non-zero on problems.
    #[command(subcommand)]
    Config(opsguard::config::ConfigCmd),
    /// Service tokens for the auth-event ingest API.
    #[command(subcommand)]
    Token(opsguard::logins::jwt::TokenCmd),
    /// Managed secrets: list, status, rotate, check (the grants a rotation needs).
    #[command(subcommand)]
    Secret(opsguard::secrets::cli::SecretCmd),
    /// Backups: run, list, verify (restore test), restore, key.
    #[command(subcommand)]
    Backup(opsguard::backups::cli::BackupCmd),
    /// The outbox: re-send dead letters.
    #[command(subcommand)]
    Outbox(opsguard::engine::shell::outbox::OutboxCmd),
    /// Exit 0 when GET /healthz on http.listen answers 200 (for HEALTHCHECK); needs no database.
    Healthcheck,
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

/// How long blocking threads still running at exit (a compressor between two chunks, a
/// file being written) get before the process exits anyway: shutdown stays within its grace
/// plus a second.
const BLOCKING_AT_EXIT: std::time::Duration = std::time::Duration::from_millis(500);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serve = matches!(cli.command, Cmd::Serve);
    telemetry::init(if serve { "info" } else { "warn" });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    runtime.shutdown_timeout(BLOCKING_AT_EXIT);
    if serve {
        // At the real exit, not before the runtime let its last threads go.
        tracing::info!("opsguard.stopped");
    }
    code
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Cmd::Config(action) = &cli.command {
        return Ok(action.run().await);
    }
    let settings = Settings::load()?;
    match cli.command {
        Cmd::Config(_) => {}
        Cmd::Healthcheck => return Ok(opsguard::http::healthcheck::run(&settings).await),
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
        Cmd::Migrate { runtime_role } => {
            let pool = pool(&settings).await?;
            println!("migrations applied");
            let role = runtime_role.unwrap_or_else(|| settings.database.runtime_role.clone());
            if role.is_empty() {
                if let Some(w) = opsguard::audit::roles::single_role_warning(&pool).await? {
                    eprintln!("warning: {w}");
                }
            } else {
                opsguard::audit::roles::grant_runtime(&pool, &role)
                    .await
                    .with_context(|| format!("cannot grant the runtime role {role}"))?;
                println!(
                    "runtime role {role}: read/write on opsguard's tables, read-only on the audit log"
                );
            }
        }
        Cmd::Console { as_user, save_dir } => {
            let user = UserId::parse(&as_user).map_err(anyhow::Error::msg)?;
            let options = opsguard::console::Options { save_dir };
            opsguard::console::start(settings, user, options).await?;
        }
        Cmd::User { action } => user(&settings, &pool(&settings).await?, action).await?,
        Cmd::Chat(action) => action.run(&settings, &pool(&settings).await?).await?,
        Cmd::Audit { action } => return action.run(&settings, &pool(&settings).await?).await,
        Cmd::Token(action) => action.run(&settings, pool(&settings)).await?,
        Cmd::Secret(action) => action.run(&settings, pool(&settings).await?).await?,
        Cmd::Backup(action) => {
            if !action.run(&settings, pool(&settings).await?).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Outbox(action) => {
            if !action.run(&settings, &pool(&settings).await?).await? {
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

async fn user(settings: &Settings, pool: &PgPool, action: UserCmd) -> anyhow::Result<()> {
    let id = |raw: &str| UserId::parse(raw).map_err(anyhow::Error::msg);
    match action {
        UserCmd::Add {
            id: raw,
            role,
            name,
        } => {
            let (id, role) = (id(&raw)?, known_role(pool, &role).await?);
            let name = name.unwrap_or_else(|| format!("user {id}"));
            audited(settings, pool, "user add", &format!("{id} {role}"), async {
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
            audited(
                settings,
                pool,
                "user grant",
                &format!("{id} {role}"),
                async {
                    refuse_system_role(pool, &role).await?;
                    if storage::users::principal_of(pool, id).await?.is_none() {
                        bail!("user {id} is not known; use `opsguard user add`");
                    }
                    storage::users::grant(pool, id, &role, "shell").await?;
                    Ok(())
                },
            )
            .await?;
            println!("user {id} has the role {role}");
        }
        UserCmd::Revoke { id: raw, role } => {
            let (id, role) = (id(&raw)?, known_role(pool, &role).await?);
            let revoked = audited(
                settings,
                pool,
                "user revoke",
                &format!("{id} {role}"),
                async { Ok(storage::users::revoke_keeping_last(pool, id, &role, "admin").await?) },
            )
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
            let done = audited(settings, pool, "user disable", &id.to_string(), async {
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
            let removed = audited(settings, pool, "user reset-totp", &id.to_string(), async {
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
