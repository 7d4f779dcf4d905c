//! Arguments of the backup commands: `/backup [target]`, `/backups [target]`,
//! `/restore_test <backup-id|latest>` and `/prune_backups`, parsed at the edge.

use super::Command;
use std::fmt;

/// A backup target's name as typed: `[a-z0-9][a-z0-9_-]{0,47}` (whether it is configured is
/// the capability's question).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetName(String);

impl TargetName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if crate::domain::rotation::is_slug(raw) {
            Ok(TargetName(raw.to_string()))
        } else {
            Err("a target name is 1–48 of a-z, 0-9, _ and -".into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which backup a restore test reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreWhich {
    Backup(i64),
    /// The newest good backup of every target (the weekly schedule).
    Latest,
}

impl fmt::Display for RestoreWhich {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreWhich::Backup(id) => write!(f, "{id}"),
            RestoreWhich::Latest => f.write_str("latest"),
        }
    }
}

/// Parse the arguments of one of the backup commands (`name` is its spec name).
pub(super) fn parse(name: &str, args: &[&str]) -> Result<Command, String> {
    Ok(match (name, args) {
        ("backup", []) => Command::Backup(None),
        ("backup", [t]) => Command::Backup(Some(TargetName::parse(t)?)),
        ("backups", []) => Command::Backups(None),
        ("backups", [t]) => Command::Backups(Some(TargetName::parse(t)?)),
        ("restore_test", [which]) => Command::RestoreTest(parse_which(which)?),
        ("restore_test", []) => {
            return Err("name the backup: /restore_test <backup-id>, or 'latest'".into());
        }
        ("prune_backups", []) => Command::PruneBackups,
        _ => {
            return Err(format!(
                "expected different arguments ({} given)",
                args.len()
            ));
        }
    })
}

fn parse_which(raw: &str) -> Result<RestoreWhich, String> {
    if raw.eq_ignore_ascii_case("latest") {
        return Ok(RestoreWhich::Latest);
    }
    match raw.trim_start_matches('#').parse::<i64>() {
        Ok(id) if id > 0 => Ok(RestoreWhich::Backup(id)),
        _ => Err("a backup id is a positive number (see /backups), or 'latest'".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_arguments_parse_at_the_edge() {
        assert_eq!(parse("backup", &[]), Ok(Command::Backup(None)));
        assert_eq!(
            parse("backup", &["main"]),
            Ok(Command::Backup(Some(TargetName::parse("main").unwrap())))
        );
        assert!(parse("backup", &["Main;drop"]).is_err());
        assert!(parse("backup", &["a", "b"]).is_err());
        assert_eq!(
            parse("restore_test", &["#42"]),
            Ok(Command::RestoreTest(RestoreWhich::Backup(42)))
        );
        assert_eq!(
            parse("restore_test", &["latest"]),
            Ok(Command::RestoreTest(RestoreWhich::Latest))
        );
        assert!(parse("restore_test", &["-3"]).is_err());
        assert!(parse("restore_test", &[]).is_err());
        assert_eq!(parse("prune_backups", &[]), Ok(Command::PruneBackups));
    }
}
