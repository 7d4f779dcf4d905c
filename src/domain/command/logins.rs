//! Arguments of the failed-login commands: `/logins [window]`, `/alerts [id]`,
//! `/ack <id>`, `/silence <alert-id|rule|key> <duration>`, parsed at the edge.

use super::Command;
use chrono::Duration;

/// Parse the arguments of one of the failed-login commands (`name` is its spec name).
pub(super) fn parse(name: &str, args: &[&str]) -> Result<Command, String> {
    Ok(match (name, args) {
        ("logins", []) => Command::Logins(LoginWindow::parse(None)?),
        ("logins", [w]) => Command::Logins(LoginWindow::parse(Some(w))?),
        ("alerts", []) => Command::Alerts(None),
        ("alerts", [id]) => Command::Alerts(Some(parse_alert_id(id)?)),
        ("ack", [id]) => Command::Ack(parse_alert_id(id)?),
        ("silence", [target, duration]) => {
            Command::Silence(SilenceRequest::parse(target, duration)?)
        }
        ("prune_logins", []) => Command::PruneLogins,
        _ => {
            return Err(format!(
                "expected different arguments ({} given)",
                args.len()
            ));
        }
    })
}

/// The period `/logins` looks back over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginWindow {
    Minutes15,
    Hour1,
    Hours24,
    Days7,
}

impl LoginWindow {
    pub const CHOICES: &'static str = "15m, 1h, 24h or 7d";

    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw.map(str::to_ascii_lowercase).as_deref() {
            None | Some("1h") => Ok(LoginWindow::Hour1),
            Some("15m") => Ok(LoginWindow::Minutes15),
            Some("24h") | Some("1d") => Ok(LoginWindow::Hours24),
            Some("7d") => Ok(LoginWindow::Days7),
            Some(_) => Err(format!("the window is {}", Self::CHOICES)),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            LoginWindow::Minutes15 => "15m",
            LoginWindow::Hour1 => "1h",
            LoginWindow::Hours24 => "24h",
            LoginWindow::Days7 => "7d",
        }
    }

    pub fn duration(self) -> Duration {
        match self {
            LoginWindow::Minutes15 => Duration::minutes(15),
            LoginWindow::Hour1 => Duration::hours(1),
            LoginWindow::Hours24 => Duration::hours(24),
            LoginWindow::Days7 => Duration::days(7),
        }
    }

    /// The chart's bucket: about 60 points over the window.
    pub fn bucket(self) -> Duration {
        match self {
            LoginWindow::Minutes15 => Duration::seconds(15),
            LoginWindow::Hour1 => Duration::minutes(1),
            LoginWindow::Hours24 => Duration::minutes(30),
            LoginWindow::Days7 => Duration::hours(3),
        }
    }
}

/// An alert's number, as shown in pushes and `/alerts`.
pub fn parse_alert_id(raw: &str) -> Result<i64, String> {
    match raw.trim_start_matches('#').parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err("an alert id is a positive number, e.g. 17".into()),
    }
}

/// What a silence covers: one alert's key, or a rule name or key typed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceTarget {
    Alert(i64),
    /// A rule name (`ip-failures`) or an alert key (`ip:203.0.113.7`, `account:bob`,
    /// `spray:203.0.113.7`, `all`).
    Matcher(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRequest {
    pub target: SilenceTarget,
    pub duration: Duration,
}

pub const SILENCE_MAX: Duration = Duration::days(30);

impl SilenceRequest {
    pub fn parse(target: &str, duration: &str) -> Result<Self, String> {
        let target = if target
            .trim_start_matches('#')
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            SilenceTarget::Alert(parse_alert_id(target)?)
        } else {
            SilenceTarget::Matcher(parse_matcher(target)?)
        };
        Ok(SilenceRequest {
            target,
            duration: parse_duration(duration)?,
        })
    }

    pub fn args(&self) -> String {
        let target = match &self.target {
            SilenceTarget::Alert(id) => id.to_string(),
            SilenceTarget::Matcher(m) => m.clone(),
        };
        format!("{target} {}", format_duration(self.duration))
    }
}

fn parse_matcher(raw: &str) -> Result<String, String> {
    let problem = || "silence an alert id, a rule name or a key like ip:203.0.113.7".to_string();
    if raw.is_empty() || raw.chars().count() > 300 || raw.chars().any(char::is_control) {
        return Err(problem());
    }
    match raw.split_once(':') {
        Some(("ip" | "spray", addr)) => addr
            .parse::<std::net::IpAddr>()
            .map(|ip| format!("{}:{ip}", &raw[..raw.len() - addr.len() - 1]))
            .map_err(|_| "that is not an IP address".to_string()),
        Some(("account", name)) if !name.is_empty() => Ok(raw.to_string()),
        Some(_) => Err(problem()),
        None if raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Ok(raw.to_string())
        }
        None => Err(problem()),
    }
}

/// `30m`, `1h`, `2d`: from one minute to 30 days.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let problem = || "a duration is like 30m, 1h or 2d (1 minute to 30 days)".to_string();
    let unit = raw.chars().last().ok_or_else(problem)?;
    let n: i64 = raw[..raw.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| problem())?;
    let d = match unit {
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        _ => None,
    }
    .ok_or_else(problem)?;
    if d < Duration::minutes(1) || d > SILENCE_MAX {
        return Err(problem());
    }
    Ok(d)
}

pub fn format_duration(d: Duration) -> String {
    let m = d.num_minutes();
    if m % 1440 == 0 {
        format!("{}d", m / 1440)
    } else if m % 60 == 0 {
        format!("{}h", m / 60)
    } else {
        format!("{m}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_durations() {
        assert_eq!(LoginWindow::parse(None).unwrap(), LoginWindow::Hour1);
        assert_eq!(LoginWindow::parse(Some("7D")).unwrap(), LoginWindow::Days7);
        assert!(LoginWindow::parse(Some("3w")).is_err());
        assert_eq!(parse_duration("90m").unwrap(), Duration::minutes(90));
        assert_eq!(format_duration(Duration::minutes(90)), "90m");
        for bad in ["", "h", "0h", "31d", "5s", "-1h", "1.5h", "99999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn silence_targets() {
        let s = SilenceRequest::parse("#17", "1h").unwrap();
        assert_eq!(s.target, SilenceTarget::Alert(17));
        assert_eq!(s.args(), "17 1h");
        let ip = SilenceRequest::parse("ip:203.0.113.7", "2d").unwrap();
        assert_eq!(ip.target, SilenceTarget::Matcher("ip:203.0.113.7".into()));
        assert!(SilenceRequest::parse("ip-failures", "1h").is_ok());
        assert!(SilenceRequest::parse("account:bob", "1h").is_ok());
        for bad in ["ip:nope", "x:y", "<b>", "0", "account:"] {
            assert!(SilenceRequest::parse(bad, "1h").is_err(), "{bad}");
        }
    }
}
