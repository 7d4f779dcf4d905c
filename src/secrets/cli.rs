//! `opsguard secret list|status NAME|rotate NAME|check [NAME]`: the vault from a shell. Whoever holds the
//! database credentials and the master key may run them (no Telegram gates), and a rotation
//! is audited like any command. Output shows fingerprints, never values.

use super::rotate::{Outcome, Requested};
use super::status::{self, SecretStatus};
use crate::config::Settings;
use crate::engine::shell::audited;
use anyhow::{Context, bail};
use sqlx::PgPool;

#[derive(clap::Subcommand)]
pub enum SecretCmd {
    /// Every managed secret: kind, current fingerprint and age, next and last rotation.
    List,
    /// One secret in detail.
    Status { name: String },
    /// Rotate a secret now: create, set, test, deliver, promote.
    Rotate { name: String },
    /// Check, changing nothing, that the targets' admin credentials hold every privilege a
    /// rotation needs (all secrets, or NAME); non-zero when a grant is missing.
    Check { name: Option<String> },
}

impl SecretCmd {
    pub async fn run(self, settings: &Settings, pool: PgPool) -> anyhow::Result<()> {
        let Some(rotations) = super::open(&pool, settings).await? else {
            bail!(
                "no secrets are managed: declare them in [[secrets]] and set OPSGUARD_MASTER_KEY"
            );
        };
        let catalog = rotations.catalog();
        let find = |name: &str| {
            catalog.get(name).with_context(|| {
                format!(
                    "unknown secret '{name}'; known: {}",
                    catalog.names().join(", ")
                )
            })
        };
        match self {
            SecretCmd::List => {
                for secret in catalog.iter() {
                    println!("{}", line(&status::of(&pool, secret).await?));
                }
            }
            SecretCmd::Status { name } => {
                let s = status::of(&pool, find(&name)?).await?;
                println!("{}", line(&s));
                for retired in s.retirements() {
                    println!("  {retired}");
                }
                println!(
                    "  policy: approval {}, totp {}",
                    if s.approval { "yes" } else { "no" },
                    if s.totp { "yes" } else { "no" }
                );
            }
            SecretCmd::Rotate { name } => {
                find(&name)?;
                let done = audited(settings, &pool, "secret rotate", &name, async {
                    match rotations.request(&name, None, "shell").await? {
                        Requested::Ran(Outcome::Succeeded { rotation, version, fingerprint, .. }) => Ok(format!(
                            "rotation #{rotation}: {name} version {version} (sha256:{fingerprint}) is current"
                        )),
                        Requested::Ran(Outcome::Waiting { rotation, version, until }) => Ok(format!(
                            "rotation #{rotation}: {name} version {version} is published as the next key; it becomes current at {until}"
                        )),
                        Requested::Ran(Outcome::Retrying { rotation, step, error, next_at, .. }) => bail!(
                            "rotation #{rotation}: step {} failed: {error}; the old credential stays current; retrying at {next_at}",
                            step.as_str()
                        ),
                        Requested::Ran(Outcome::GaveUp { rotation, step, error, status }) => bail!(
                            "rotation #{rotation} {} at step {}: {error}; the old credential stays current",
                            status.as_str(),
                            step.as_str()
                        ),
                        Requested::InProgress(r) => bail!(
                            "a rotation of {name} is already in progress: #{} at step {}, started {}",
                            r.id,
                            r.step,
                            r.started_at
                        ),
                        Requested::Unknown(known) => bail!("unknown secret '{name}'; known: {}", known.join(", ")),
                        Requested::MissingGrants(missing) => bail!(
                            "refused, nothing changed: the target's admin credentials lack what a rotation needs: {}",
                            missing.join("; ")
                        ),
                        Requested::TooSoon { version, until } => bail!(
                            "refused, nothing changed: version {version} keeps working until {until} (its grace period), and a new value would take its place; rotate again from then"
                        ),
                    }
                })
                .await?;
                println!("{done}");
            }
            SecretCmd::Check { name } => {
                let reports = match name {
                    Some(name) => vec![super::preflight::check(find(&name)?).await],
                    None => super::preflight::check_all(catalog).await,
                };
                for line in reports.iter().flat_map(|r| r.lines()) {
                    println!("{line}");
                }
                if !reports.iter().all(|r| r.is_ready()) {
                    bail!("a rotation needs grants the targets lack (listed above)");
                }
            }
        }
        Ok(())
    }
}

fn line(s: &SecretStatus) -> String {
    let current = match &s.current {
        Some((v, print, at)) => format!(
            "v{v} sha256:{print} since {}",
            at.format("%Y-%m-%d %H:%M UTC")
        ),
        None => "no current version".into(),
    };
    let next = s
        .next_rotation
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "not scheduled".into());
    format!(
        "{}\t{}\t{current}\tnext: {next}\tlast: {}",
        s.name,
        s.kind,
        s.last_summary()
    )
}
