//! Schedule settings (`[scheduler]` and `[[schedules]]`) and their validation at load: a
//! bad cron expression, a command that does not parse or a duplicate name stops start-up
//! with an error naming the schedule.

use super::ConfigError;
use crate::domain::command::Command;
use serde::Deserialize;
use std::collections::HashSet;
use std::str::FromStr;

/// How the scheduler loop runs (`[scheduler]`).
#[derive(Debug, Clone, Deserialize)]
pub struct SchedulerSettings {
    /// Run the scheduler loop in this process. Replicas may all run it: each fire time is
    /// claimed once, in PostgreSQL, before it runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often the loop looks for due schedules.
    pub tick_secs: u64,
    /// A fire time is still run if it is at most this old (missed during downtime or a
    /// slow tick); only the most recent one is ever made up.
    pub grace_secs: u64,
}

fn yes() -> bool {
    true
}

/// One `[[schedules]]` entry: a command string run on a cron expression, reported to a chat.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ScheduleSettings {
    /// Unique; letters, digits, `.`, `_` and `-` (at most 64).
    pub name: String,
    /// Six fields, seconds first, in UTC: `sec min hour day-of-month month day-of-week`.
    pub cron: String,
    /// A command line as an operator would type it, e.g. `/audit verify`.
    pub command: String,
    /// The chat the report goes to: positive = a private chat, negative = a group (which
    /// must be allow-listed like any other group); 0 = no report (the run is still audited
    /// and shown in `/schedules`). Required, so a forgotten chat is an error, not silence.
    pub chat: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl ScheduleSettings {
    /// The parsed cron expression (exactly six fields).
    pub fn schedule(&self) -> Result<cron::Schedule, String> {
        let fields = self.cron.split_whitespace().count();
        if fields != 6 {
            return Err(format!(
                "cron expression '{}' has {fields} field(s); expected six: sec min hour day-of-month month day-of-week",
                self.cron
            ));
        }
        cron::Schedule::from_str(&self.cron)
            .map_err(|e| format!("invalid cron expression '{}': {e}", self.cron))
    }

    /// The parsed command. Sensitive commands are refused: their gates need a person to
    /// press a button, type a code or approve, and a schedule has none.
    pub fn parsed_command(&self) -> Result<Command, String> {
        let command = self.parse_command()?;
        if command.spec().risk == crate::domain::RiskClass::Sensitive {
            return Err(format!(
                "command '{}' is sensitive (it needs a person to confirm) and cannot be scheduled",
                self.command
            ));
        }
        Ok(command)
    }

    fn parse_command(&self) -> Result<Command, String> {
        Command::parse(&self.command).map_err(|e| {
            let why = match e {
                crate::domain::ParseError::NotACommand => "not a command".to_string(),
                crate::domain::ParseError::Unknown { name } => format!("unknown command /{name}"),
                crate::domain::ParseError::Usage { spec, problem } => {
                    format!("{problem} (usage: {})", spec.usage)
                }
            };
            format!("command '{}' does not parse: {why}", self.command)
        })
    }

    fn check(&self) -> Result<(), String> {
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !name_ok {
            return Err("a name is 1-64 letters, digits, '.', '_' or '-'".into());
        }
        self.schedule()?;
        self.parsed_command()?;
        Ok(())
    }
}

/// Check the scheduler settings and every schedule (enabled or not).
pub fn validate(
    scheduler: &SchedulerSettings,
    schedules: &[ScheduleSettings],
) -> Result<(), ConfigError> {
    for (key, value) in [
        ("scheduler.tick_secs", scheduler.tick_secs),
        ("scheduler.grace_secs", scheduler.grace_secs),
    ] {
        if value == 0 {
            return Err(ConfigError::Invalid {
                key,
                problem: "must be positive".into(),
            });
        }
    }
    let mut seen = HashSet::new();
    for s in schedules {
        s.check().map_err(|problem| ConfigError::Schedule {
            name: s.name.clone(),
            problem,
        })?;
        if !seen.insert(s.name.as_str()) {
            return Err(ConfigError::Schedule {
                name: s.name.clone(),
                problem: "duplicate name: schedule names must be unique".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(name: &str, cron: &str, command: &str) -> ScheduleSettings {
        ScheduleSettings {
            name: name.into(),
            cron: cron.into(),
            command: command.into(),
            chat: 42,
            enabled: true,
        }
    }

    fn settings() -> SchedulerSettings {
        SchedulerSettings {
            enabled: true,
            tick_secs: 15,
            grace_secs: 600,
        }
    }

    #[test]
    fn good_schedules_pass_and_bad_ones_name_themselves() {
        let ok = [sched("a", "0 */5 * * * *", "/audit verify")];
        validate(&settings(), &ok).unwrap();
        for (bad, needle) in [
            (sched("five", "*/5 * * * *", "/status"), "six"),
            (sched("junk", "0 0 99 * * *", "/status"), "invalid cron"),
            (sched("cmd", "0 0 6 * * *", "/nope"), "unknown command"),
            (sched("args", "0 0 6 * * *", "/audit 999"), "does not parse"),
            (sched("bad name", "0 0 6 * * *", "/status"), "name"),
        ] {
            let name = bad.name.clone();
            let err = validate(&settings(), &[bad]).unwrap_err().to_string();
            assert!(err.contains(&format!("'{name}'")), "{err}");
            assert!(err.contains(needle), "{err}");
        }
        let dup = [
            sched("d", "0 0 6 * * *", "/status"),
            sched("d", "0 0 7 * * *", "/help"),
        ];
        let err = validate(&settings(), &dup).unwrap_err().to_string();
        assert!(err.contains("'d'") && err.contains("duplicate"), "{err}");
    }
}
