//! A compiled schedule: its parsed cron expression, command line and chat, the fire-time
//! arithmetic (most recent fire time ≤ now, next one after now) and the report's text.

use crate::config::{ConfigError, ScheduleSettings};
use crate::domain::html::{escape, to_plain};
use crate::domain::{Actor, ActorKind, Chat, ChatId, ChatKind, Reply};
use chrono::{DateTime, Duration, DurationRound, Utc};

/// Longest outcome text kept in `schedule_runs.result`.
const RESULT_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub cron: cron::Schedule,
    /// The command line exactly as configured (it parsed at load).
    pub command: String,
    pub chat: Chat,
    pub enabled: bool,
}

impl Job {
    /// Parse one schedule; the error names it.
    pub fn compile(s: &ScheduleSettings) -> Result<Job, ConfigError> {
        let named = |problem| ConfigError::Schedule {
            name: s.name.clone(),
            problem,
        };
        let cron = s.schedule().map_err(named)?;
        s.parsed_command().map_err(named)?;
        Ok(Job {
            name: s.name.clone(),
            cron,
            command: s.command.clone(),
            chat: chat_of(s.chat),
            enabled: s.enabled,
        })
    }

    /// The actor a run of this schedule acts as (the `scheduler` role; no user).
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::Scheduler,
            user: None,
            display: format!("scheduler:{}", self.name),
        }
    }

    /// The outbox source of this schedule's reports.
    pub fn source(&self) -> String {
        format!("schedule:{}", self.name)
    }

    /// The most recent fire time at or before `now` (whole seconds, UTC).
    pub fn last_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let now = now.duration_trunc(Duration::seconds(1)).unwrap_or(now);
        // `next_back` yields fire times strictly before its start: start one second later.
        self.cron.after(&(now + Duration::seconds(1))).next_back()
    }

    /// The first fire time after `now`.
    pub fn next_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.after(&now).next()
    }

    /// The fire time due at `now`: the most recent one, if it is at most `grace` old.
    /// Older fire times are never returned, so downtime yields one run, not a burst.
    pub fn due(&self, now: DateTime<Utc>, grace: Duration) -> Option<DateTime<Utc>> {
        let fire = self.last_fire(now)?;
        (self.enabled && now - fire <= grace).then_some(fire)
    }

    /// The message queued for the chat: a header naming the schedule, then the reply.
    pub fn report(&self, fire_at: DateTime<Utc>, reply: &Reply) -> Reply {
        let mut report = reply.clone();
        report.notice = false;
        report.html = format!(
            "🕒 Scheduled <b>{}</b> · <code>{}</code> · {}\n{}",
            escape(&self.name),
            escape(&self.command),
            fire_at.format("%Y-%m-%d %H:%M:%S UTC"),
            reply.html
        );
        report
    }
}

/// A positive id is a private chat (the user's id), 0 no chat at all, a negative id a group.
pub fn chat_of(id: i64) -> Chat {
    // 0 is "no chat": the run happens in the scheduler's own private context.
    let kind = if id >= 0 {
        ChatKind::Private
    } else {
        ChatKind::Group
    };
    Chat {
        id: ChatId(id),
        kind,
    }
}

/// A short plain-text outcome for `schedule_runs.result`: the audit reason when there is
/// one (a refusal), otherwise the reply's first line.
pub fn summary(outcome: Option<&str>, reason: Option<&str>, reply: Option<&Reply>) -> String {
    let outcome = outcome.unwrap_or("no outcome");
    let text = match (reason, reply) {
        (Some(reason), _) => format!("{outcome}: {reason}"),
        (None, Some(reply)) => {
            let plain = to_plain(&reply.html);
            let line = plain.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            format!("{outcome}: {}", line.trim())
        }
        (None, None) => format!("{outcome}: no reply"),
    };
    text.chars().take(RESULT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn job(cron: &str) -> Job {
        Job::compile(&ScheduleSettings {
            name: "t".into(),
            cron: cron.into(),
            command: "/status".into(),
            chat: -5,
            enabled: true,
        })
        .unwrap()
    }

    #[test]
    fn last_fire_is_at_or_before_now_and_due_respects_grace() {
        let j = job("0 */5 * * * *");
        let at = |h, m, s| Utc.with_ymd_and_hms(2024, 3, 1, h, m, s).unwrap();
        assert_eq!(j.last_fire(at(10, 5, 0)), Some(at(10, 5, 0)));
        assert_eq!(j.last_fire(at(10, 9, 59)), Some(at(10, 5, 0)));
        assert_eq!(j.next_fire(at(10, 5, 0)), Some(at(10, 10, 0)));
        let grace = Duration::minutes(3);
        assert_eq!(j.due(at(10, 8, 0), grace), Some(at(10, 5, 0)));
        assert_eq!(j.due(at(10, 8, 1), grace), None);
        assert_eq!(j.chat.kind, ChatKind::Group);
    }
}
