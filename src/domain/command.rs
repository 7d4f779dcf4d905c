//! Commands as data: the parsed enum, and for each command its permission, risk class,
//! usage and summary. Parsing is the only way raw text becomes a `Command`.

mod args;
mod backups;
mod logins;
mod outbox;
mod specs;

pub use args::*;
pub use backups::{RestoreWhich, TargetName};
pub use logins::{LoginWindow, SilenceRequest, SilenceTarget, format_duration};
pub use outbox::OutboxAction;
pub use specs::{CommandSpec, SPECS, spec_by_name};

use super::ids::{ActionId, RoleName, UserId};
use super::rotation::SecretName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Check(CheckRequest),
    Findings,
    Start,
    Help,
    WhoAmI,
    Status,
    Audit(AuditQuery),
    Users,
    Schedules,
    Grant(RoleChange),
    Revoke(RoleChange),
    Approve(ActionId),
    Deny(ActionId),
    Totp(TotpAction),
    StepUp(TotpCode),
    Logins(LoginWindow),
    /// All active alerts and silences, or one alert in detail.
    Alerts(Option<i64>),
    Ack(i64),
    Silence(SilenceRequest),
    PruneLogins,
    /// Managed secrets: fingerprints, ages, schedules, last rotations.
    Secrets,
    Rotate(SecretName),
    /// Rotate every secret whose policy lets the scheduler and whose age is due.
    RotateDue,
    /// Queue a backup of one target, or of every target.
    Backup(Option<TargetName>),
    /// The backup catalogue (of one target).
    Backups(Option<TargetName>),
    RestoreTest(RestoreWhich),
    /// Delete backups past their target's retention.
    PruneBackups,
    /// Dead letters, or re-send them.
    Outbox(OutboxAction),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Text that is not a command at all.
    NotACommand,
    Unknown {
        name: String,
    },
    Usage {
        spec: &'static CommandSpec,
        problem: String,
    },
}

pub const AUDIT_DEFAULT_ROWS: u32 = 10;
pub const AUDIT_MAX_ROWS: u32 = 50;

impl Command {
    /// Split `/name@bot arg…` into the lowercase name and its arguments.
    pub fn split(text: &str) -> Option<(String, Vec<&str>)> {
        let text = text.trim();
        let rest = text.strip_prefix('/')?;
        let mut words = rest.split_whitespace();
        let head = words.next()?;
        let name = head.split('@').next().unwrap_or(head).to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        Some((name, words.collect()))
    }

    pub fn parse(text: &str) -> Result<Command, ParseError> {
        let (name, args) = Command::split(text).ok_or(ParseError::NotACommand)?;
        let spec = spec_by_name(&name).ok_or_else(|| ParseError::Unknown { name: name.clone() })?;
        let usage = |problem: String| ParseError::Usage { spec, problem };
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(usage(format!(
                    "expected {n} argument(s), got {}",
                    args.len()
                )))
            }
        };
        Ok(match spec.name {
            "start" => arity(0).map(|_| Command::Start)?,
            "help" => arity(0).map(|_| Command::Help)?,
            "whoami" => arity(0).map(|_| Command::WhoAmI)?,
            "status" => arity(0).map(|_| Command::Status)?,
            "users" => arity(0).map(|_| Command::Users)?,
            "schedules" => arity(0).map(|_| Command::Schedules)?,
            "findings" => arity(0).map(|_| Command::Findings)?,
            "check" => Command::Check(CheckRequest::parse(&args).map_err(usage)?),
            "audit" => match args.as_slice() {
                [] => Command::Audit(AuditQuery::Latest(AUDIT_DEFAULT_ROWS)),
                ["verify"] => Command::Audit(AuditQuery::Verify),
                ["checkpoint"] => Command::Audit(AuditQuery::Checkpoint),
                [n] => match n.parse::<u32>() {
                    Ok(n) if (1..=AUDIT_MAX_ROWS).contains(&n) => {
                        Command::Audit(AuditQuery::Latest(n))
                    }
                    _ => {
                        return Err(usage(format!(
                            "n is a number from 1 to {AUDIT_MAX_ROWS}, 'verify' or 'checkpoint'"
                        )));
                    }
                },
                _ => return Err(usage("expected at most one argument".into())),
            },
            "grant" | "revoke" => {
                arity(2)?;
                let change = RoleChange {
                    user: UserId::parse(args[0]).map_err(usage)?,
                    role: RoleName::parse(args[1]).map_err(usage)?,
                };
                if spec.name == "grant" {
                    Command::Grant(change)
                } else {
                    Command::Revoke(change)
                }
            }
            "approve" | "deny" => {
                arity(1)?;
                let id = ActionId::parse(args[0]).map_err(usage)?;
                if spec.name == "approve" {
                    Command::Approve(id)
                } else {
                    Command::Deny(id)
                }
            }
            "totp" => match args.as_slice() {
                [] => Command::Totp(TotpAction::Status),
                ["enroll"] => Command::Totp(TotpAction::Enroll(None)),
                ["enroll", code] => Command::Totp(TotpAction::Enroll(Some(
                    TotpCode::parse(code).map_err(usage)?,
                ))),
                ["confirm", code] => {
                    Command::Totp(TotpAction::Confirm(TotpCode::parse(code).map_err(usage)?))
                }
                _ => {
                    return Err(usage(
                        "expected 'enroll', 'enroll <current code>' or 'confirm <code>'".into(),
                    ));
                }
            },
            "stepup" => {
                arity(1)?;
                Command::StepUp(TotpCode::parse(args[0]).map_err(usage)?)
            }
            "logins" | "alerts" | "ack" | "silence" | "prune_logins" => {
                logins::parse(spec.name, &args).map_err(usage)?
            }
            "secrets" => arity(0).map(|_| Command::Secrets)?,
            "rotate_due" => arity(0).map(|_| Command::RotateDue)?,
            "rotate" => {
                arity(1)?;
                Command::Rotate(SecretName::parse(args[0]).map_err(usage)?)
            }
            "backup" | "backups" | "restore_test" | "prune_backups" => {
                backups::parse(spec.name, &args).map_err(usage)?
            }
            "outbox" => Command::Outbox(OutboxAction::parse(&args).map_err(usage)?),
            other => unreachable!("spec table and parser disagree on {other}"),
        })
    }

    pub fn spec(&self) -> &'static CommandSpec {
        let name = match self {
            Command::Start => "start",
            Command::Check(_) => "check",
            Command::Findings => "findings",
            Command::Help => "help",
            Command::WhoAmI => "whoami",
            Command::Status => "status",
            Command::Audit(_) => "audit",
            Command::Users => "users",
            Command::Schedules => "schedules",
            Command::Grant(_) => "grant",
            Command::Revoke(_) => "revoke",
            Command::Approve(_) => "approve",
            Command::Deny(_) => "deny",
            Command::Totp(_) => "totp",
            Command::StepUp(_) => "stepup",
            Command::Logins(_) => "logins",
            Command::Alerts(_) => "alerts",
            Command::Ack(_) => "ack",
            Command::Silence(_) => "silence",
            Command::PruneLogins => "prune_logins",
            Command::Secrets => "secrets",
            Command::Rotate(_) => "rotate",
            Command::RotateDue => "rotate_due",
            Command::Backup(_) => "backup",
            Command::Backups(_) => "backups",
            Command::RestoreTest(_) => "restore_test",
            Command::PruneBackups => "prune_backups",
            Command::Outbox(_) => "outbox",
        };
        spec_by_name(name).expect("every command has a spec")
    }

    /// Arguments as they may be stored in the audit log (codes redacted).
    pub fn audit_args(&self) -> String {
        match self {
            Command::Audit(AuditQuery::Latest(n)) => n.to_string(),
            Command::Audit(AuditQuery::Verify) => "verify".into(),
            Command::Audit(AuditQuery::Checkpoint) => "checkpoint".into(),
            Command::Check(request) => request.args(),
            Command::Grant(c) | Command::Revoke(c) => format!("{} {}", c.user, c.role),
            Command::Approve(id) | Command::Deny(id) => id.to_string(),
            Command::Totp(TotpAction::Enroll(None)) => "enroll".into(),
            Command::Totp(TotpAction::Enroll(Some(_))) => "enroll [redacted]".into(),
            Command::Totp(TotpAction::Confirm(_)) => "confirm [redacted]".into(),
            Command::StepUp(_) => "[redacted]".into(),
            Command::Logins(window) => window.label().into(),
            Command::Alerts(Some(id)) | Command::Ack(id) => id.to_string(),
            Command::Silence(request) => request.args(),
            Command::Rotate(name) => name.to_string(),
            Command::Backup(Some(t)) | Command::Backups(Some(t)) => t.to_string(),
            Command::RestoreTest(which) => which.to_string(),
            Command::Outbox(action) => action.args(),
            _ => String::new(),
        }
    }

    /// The exact command text: what a confirmation or an approval covers.
    pub fn canonical(&self) -> String {
        let args = self.audit_args();
        if args.is_empty() {
            format!("/{}", self.spec().name)
        } else {
            format!("/{} {args}", self.spec().name)
        }
    }
}

/// What the audit log may keep of text that did not parse: the command name, never its
/// arguments (an operator may have pasted a secret into a mistyped command).
pub fn redact_unparsed(text: &str) -> (String, String) {
    match Command::split(text) {
        Some((name, args)) => (
            super::audit::clean(&name, 64),
            if args.is_empty() {
                String::new()
            } else {
                format!("[{} argument(s) redacted]", args.len())
            },
        ),
        None => (
            "(text)".into(),
            format!("[{} chars redacted]", text.chars().count()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spec_name() {
        for s in SPECS {
            match Command::parse(&format!("/{}", s.name)) {
                Ok(c) => assert_eq!(c.spec().name, s.name),
                Err(ParseError::Usage { spec, .. }) => assert_eq!(spec.name, s.name),
                Err(e) => panic!("{}: {e:?}", s.name),
            }
        }
    }

    #[test]
    fn strips_bot_mention_and_parses_args() {
        assert_eq!(
            Command::parse("/grant@opsguard_bot 42 Admin").unwrap(),
            Command::Grant(RoleChange {
                user: UserId(42),
                role: RoleName::parse("admin").unwrap()
            })
        );
        assert_eq!(
            Command::parse("/audit 5").unwrap(),
            Command::Audit(AuditQuery::Latest(5))
        );
    }

    #[test]
    fn wrong_arguments_name_the_usage() {
        for bad in [
            "/grant 42",
            "/grant bob admin",
            "/audit 0",
            "/audit 999",
            "/whoami extra",
            "/approve <b>",
        ] {
            assert!(
                matches!(Command::parse(bad), Err(ParseError::Usage { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            Command::parse("/nope"),
            Err(ParseError::Unknown {
                name: "nope".into()
            })
        );
        assert_eq!(Command::parse("hello"), Err(ParseError::NotACommand));
    }

    #[test]
    fn check_takes_a_name_and_a_format_but_never_an_address() {
        let parsed = |line: &str| match Command::parse(line) {
            Ok(Command::Check(r)) => Ok(r),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(parsed("/check").unwrap().args(), "all");
        assert_eq!(parsed("/check ALL sarif").unwrap().args(), "all sarif");
        assert_eq!(parsed("/check json").unwrap().args(), "all json");
        assert_eq!(parsed("/check tls").unwrap().name.as_deref(), Some("tls"));
        for bad in [
            "/check https://evil.example",
            "/check 10.0.0.1",
            "/check tls xml",
            "/check <b>",
            "/check a b c",
        ] {
            assert!(
                matches!(parsed(bad), Err(ParseError::Usage { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn codes_never_reach_audit_args() {
        let c = Command::parse("/stepup 123456").unwrap();
        assert!(!c.audit_args().contains("123456"));
        let c = Command::parse("/totp confirm 654321").unwrap();
        assert!(!c.audit_args().contains("654321"));
        let (_, args) = redact_unparsed("/rotat hunter2");
        assert!(!args.contains("hunter2"));
    }
}
