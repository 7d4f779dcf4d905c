//! `opsguard backup run|list|verify|restore|key`: backups from a shell. Whoever holds the
//! database credentials and the master key may run them; each action is audited.

use super::jobs::{self, Job};
use super::restore;
use super::storage::Storage;
use super::{Backups, Requested, catalogue, pgenv::PgEnv, run};
use crate::config::Settings;
use crate::domain::html::to_plain;
use crate::domain::secret::Secret;
use crate::engine::shell::audited;
use anyhow::{Context, bail};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum BackupCmd {
    /// Back up a target now (or every target), in this process; prints the result.
    Run { target: Option<String> },
    /// The catalogue, newest first.
    List { target: Option<String> },
    /// Restore-test a backup: checksum, scratch database, pg_restore, row counts, drop.
    Verify { id: i64 },
    /// Restore a backup into an existing (empty) database: checksum, decrypt, pg_restore.
    Restore {
        id: i64,
        /// postgres:// URL of the database to restore into. Give it through
        /// OPSGUARD_RESTORE_DSN to keep its password off the command line.
        #[arg(
            long,
            value_name = "DSN",
            env = "OPSGUARD_RESTORE_DSN",
            hide_env_values = true
        )]
        into: String,
    },
    /// opsguard's own age recipient (backups are also encrypted to [backups] recipients).
    Key,
}

impl BackupCmd {
    pub async fn run(self, settings: &Settings, pool: PgPool) -> anyhow::Result<bool> {
        let backups = Backups::new(pool.clone(), settings);
        match self {
            BackupCmd::List { target } => {
                for b in catalogue::list(&pool, target.as_deref(), 50).await? {
                    println!("{}", to_plain(&super::messages::line(&b)));
                }
            }
            BackupCmd::Key => {
                let keys = backups.keys().map_err(anyhow::Error::msg)?;
                println!("{}", keys.own_recipient());
            }
            BackupCmd::Run { target } => {
                let targets = match target {
                    Some(t) => vec![t],
                    None => backups.settings().target_names(),
                };
                if targets.is_empty() {
                    bail!("no backup targets are configured: declare them in [[backups.targets]]");
                }
                let mut ok = true;
                for target in targets {
                    let args = target.clone();
                    let ended = audited(settings, &pool, "backup run", &args, async {
                        let job = queue_backup(&backups, &target).await?;
                        let ended = run_here(&backups, &job).await?;
                        match ended.error {
                            None => Ok(ended.text),
                            Some(e) => bail!("{e}"),
                        }
                    })
                    .await;
                    match ended {
                        Ok(text) => println!("{}", to_plain(&text)),
                        Err(e) => {
                            eprintln!("error: {e:#}");
                            ok = false;
                        }
                    }
                }
                return Ok(ok);
            }
            BackupCmd::Verify { id } => {
                let text = audited(settings, &pool, "backup verify", &id.to_string(), async {
                    let b = catalogue::get(&pool, id)
                        .await?
                        .with_context(|| format!("no backup #{id}"))?;
                    let job = match backups.request_restore_test(&b, None, "shell", 0).await? {
                        Requested::Queued(job) => job,
                        other => bail!("the restore test was not queued: {other:?}"),
                    };
                    let ended = run_here(&backups, &job).await?;
                    match ended.error {
                        None => Ok(ended.text),
                        Some(e) => bail!("{e}"),
                    }
                })
                .await?;
                println!("{}", to_plain(&text));
            }
            BackupCmd::Restore { id, into } => {
                let keys = backups.keys().map_err(anyhow::Error::msg)?.clone();
                let env = PgEnv::parse(&Secret::new(into)).map_err(anyhow::Error::msg)?;
                let shown = env.display().to_string();
                audited(
                    settings,
                    &pool,
                    "backup restore",
                    &format!("{id} into {shown}"),
                    async {
                        let b = catalogue::get(&pool, id)
                            .await?
                            .with_context(|| format!("no backup #{id}"))?;
                        let storage = Storage::open(&b.storage, backups.settings())?;
                        restore::verify(
                            &storage,
                            &b.storage_key,
                            b.sha256.as_deref(),
                            &AtomicU64::new(0),
                        )
                        .await?;
                        let program = backups.settings().pg_restore.clone();
                        let read = Arc::new(AtomicU64::new(0));
                        restore::restore_into(
                            &storage,
                            &b.storage_key,
                            &keys,
                            &env,
                            &program,
                            read,
                        )
                        .await?;
                        Ok(())
                    },
                )
                .await?;
                println!("backup #{id} restored into {shown}");
            }
        }
        Ok(true)
    }
}

async fn queue_backup(backups: &Backups, target: &str) -> anyhow::Result<Job> {
    match backups.request_backup(target, None, "shell", 0).await? {
        Requested::Queued(job) => Ok(job),
        Requested::AlreadyRunning(job) => bail!(
            "a backup of {target} is already {}: job #{}, requested by {}",
            job.status,
            job.id,
            job.requester()
        ),
        Requested::UnknownTarget(known) => {
            bail!(
                "unknown backup target '{target}'; known: {}",
                known.join(", ")
            )
        }
    }
}

/// Run a queued job in this process, or wait for the replica that claimed it first.
async fn run_here(backups: &Backups, job: &Job) -> anyhow::Result<run::Ended> {
    let lease = Duration::from_secs(backups.settings().lease_secs.max(3));
    if let Some(claimed) = jobs::claim_this(backups.pool(), job.id, lease).await? {
        let never = tokio_util::sync::CancellationToken::new();
        return Ok(run::run(backups, &claimed, &never).await);
    }
    loop {
        let now = jobs::get(backups.pool(), job.id)
            .await?
            .context("the job vanished")?;
        match now.status.as_str() {
            "succeeded" => {
                return Ok(run::Ended {
                    text: format!(
                        "job #{} succeeded on another replica (see `opsguard backup list`)",
                        job.id
                    ),
                    error: None,
                });
            }
            "failed" => {
                let error = now.error.unwrap_or_default();
                return Ok(run::Ended {
                    text: error.clone(),
                    error: Some(error),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
