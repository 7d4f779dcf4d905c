//! Parsing and validation of posted auth events: a body (JSON array or NDJSON) becomes the
//! valid events and the list of bad indexes and why; one bad event never costs the others.
//! Strings are borrowed from the body where JSON escapes allow; a wrongly typed field is a
//! problem of its event, not a failure of the whole body.

mod loose;

use super::auth_event::{AuthEvent, Outcome, Source};
use chrono::{DateTime, Utc};
use loose::{BoundedSeq, Loose};
use serde::Deserializer;
use std::borrow::Cow;
use std::marker::PhantomData;
use std::net::IpAddr;

pub const MAX_ID_CHARS: usize = 128;
pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_TEXT_CHARS: usize = 512;
/// A host name: at most 253 characters (RFC 1035), as DNS allows.
pub const MAX_HOST_CHARS: usize = 253;
const NOT_AN_OBJECT: &str = "an event must be a JSON object";

/// What a batch may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_events: usize,
    /// An event dated further than this after `now` is rejected.
    pub max_future_secs: i64,
}

/// One bad event: its position in the batch (0-based) and every reason it is bad.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub index: usize,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("the body is not a JSON array or NDJSON: {0}")]
    Malformed(String),
    /// `count` is exact for NDJSON; an array is refused at its first element too many.
    #[error("the batch holds more than {max} events (at least {count})")]
    TooMany { count: usize, max: usize },
    #[error("the batch holds no events")]
    Empty,
    /// Every event is invalid; nothing of the batch may be stored.
    #[error("{} invalid events; nothing was stored", .0.len())]
    Invalid(Vec<Problem>),
}

/// A batch with at least one valid event: those, in order, and the bad ones' problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub events: Vec<AuthEvent>,
    pub problems: Vec<Problem>,
}

/// Parse and validate a whole batch: a JSON array, or one JSON object per line (NDJSON).
/// The body as a whole may be refused (malformed, empty, too many); otherwise each event
/// is judged alone, and the batch is refused only when no event is valid.
pub fn parse_batch(body: &[u8], now: DateTime<Utc>, limits: &Limits) -> Result<Parsed, BatchError> {
    let too_many = |count| BatchError::TooMany {
        count,
        max: limits.max_events,
    };
    let elements: Vec<Result<Loose, String>> = match body.trim_ascii_start().first() {
        None => return Err(BatchError::Empty),
        Some(b'[') => {
            let mut reader = serde_json::Deserializer::from_slice(body);
            let bounded = reader
                .deserialize_seq(BoundedSeq(limits.max_events, PhantomData))
                .and_then(|seq| reader.end().map(|()| seq))
                .map_err(|e| BatchError::Malformed(e.to_string()))?;
            match bounded {
                Some(elements) => elements.into_iter().map(Ok).collect(),
                None => return Err(too_many(limits.max_events + 1)),
            }
        }
        Some(_) => {
            let lines = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty());
            let count = lines.clone().count();
            if count > limits.max_events {
                return Err(too_many(count));
            }
            lines
                .map(|l| serde_json::from_slice(l).map_err(|e| format!("not JSON: {e}")))
                .collect()
        }
    };
    if elements.len() > limits.max_events {
        return Err(too_many(elements.len()));
    }
    if elements.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut events = Vec::with_capacity(elements.len());
    let mut problems = Vec::new();
    for (index, element) in elements.into_iter().enumerate() {
        match element.and_then(|e| validate(e, now, limits.max_future_secs)) {
            Ok(event) => events.push(event),
            Err(problem) => problems.push(Problem { index, problem }),
        }
    }
    if events.is_empty() {
        Err(BatchError::Invalid(problems))
    } else {
        Ok(Parsed { events, problems })
    }
}

/// Parse and validate one event (a Redis stream entry's `event` field).
pub fn parse_event(json: &[u8], now: DateTime<Utc>, max_future: i64) -> Result<AuthEvent, String> {
    let element = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
    validate(element, now, max_future)
}

/// Every problem of one event, joined with "; ", or the validated event.
fn validate(element: Loose, now: DateTime<Utc>, max_future: i64) -> Result<AuthEvent, String> {
    let Loose::Object(raw) = element else {
        return Err(NOT_AN_OBJECT.into());
    };
    let mut problems = Vec::new();
    if let Some(field) = raw.repeated {
        problems.push(format!("{field}: given more than once"));
    }
    let p = &mut problems;
    let id = take(optional(raw.id, "id", MAX_ID_CHARS, false), p);
    let at = required(raw.at, "at", 64, false).and_then(|s| {
        let at = DateTime::parse_from_rfc3339(&s)
            .map_err(|_| "at: not an RFC 3339 timestamp".to_string())?
            .with_timezone(&Utc);
        if (at - now).num_seconds() > max_future {
            return Err(format!("at: more than {max_future} seconds in the future"));
        }
        Ok(at)
    });
    let at = take(at, p);
    let ip = optional(raw.ip, "ip", 64, false).and_then(|s| {
        s.map(|s| s.parse::<IpAddr>())
            .transpose()
            .map_err(|_| "ip: not an IP address".into())
    });
    let host = optional(raw.host, "host", MAX_HOST_CHARS, true)
        .and_then(|h| h.map(|h| host_source(&h)).transpose());
    let source = match (take(ip, p), take(host, p)) {
        (Some(Some(ip)), _) => Some(Source::Ip(ip)),
        (Some(None), Some(Some(host))) => Some(host),
        (Some(None), Some(None)) => {
            p.push("ip or host: one is required (the source of the attempt)".into());
            None
        }
        _ => None,
    };
    let account = take(optional(raw.account, "account", MAX_NAME_CHARS, true), p);
    let service = take(required(raw.service, "service", MAX_NAME_CHARS, true), p);
    let outcome = required(raw.outcome, "outcome", 16, false).and_then(|s| {
        Outcome::parse(&s).ok_or_else(|| "outcome: must be failure, success or locked".into())
    });
    let outcome = take(outcome, p);
    let reason = take(optional(raw.reason, "reason", MAX_TEXT_CHARS, false), p);
    let user_agent = take(
        optional(raw.user_agent, "user_agent", MAX_TEXT_CHARS, false),
        p,
    );
    match (
        id, at, source, account, service, outcome, reason, user_agent,
    ) {
        (
            Some(id),
            Some(at),
            Some(source),
            Some(account),
            Some(service),
            Some(outcome),
            Some(reason),
            Some(user_agent),
        ) if problems.is_empty() => Ok(AuthEvent {
            id: id.map(Cow::into_owned),
            at,
            source,
            account: account.map(Cow::into_owned),
            service: service.into_owned(),
            outcome,
            reason: reason.map(Cow::into_owned),
            user_agent: user_agent.map(Cow::into_owned),
        }),
        _ => Err(problems.join("; ")),
    }
}

/// A `host` as a source: an address written as a host is the address; a name is a DNS
/// name (letters, digits, `-`, `_`, dots between labels), compared in lower case.
fn host_source(host: &str) -> Result<Source, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Source::Ip(ip));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.split('.').all(label_ok) {
        Ok(Source::Host(name.to_ascii_lowercase()))
    } else {
        Err("host: not a host name or an IP address".into())
    }
}

fn take<T>(checked: Result<T, String>, problems: &mut Vec<String>) -> Option<T> {
    checked.map_err(|problem| problems.push(problem)).ok()
}

fn required<'a>(
    value: Option<Loose<'a>>,
    field: &str,
    max_chars: usize,
    names: bool,
) -> Result<Cow<'a, str>, String> {
    optional(value, field, max_chars, names)?.ok_or_else(|| format!("{field}: missing"))
}

/// A string field's checks: type, non-empty, length in characters, no NUL (PostgreSQL
/// text cannot hold it) and, for names (`account`, `service`), no control characters.
fn optional<'a>(
    value: Option<Loose<'a>>,
    field: &str,
    max_chars: usize,
    names: bool,
) -> Result<Option<Cow<'a, str>>, String> {
    let text = match value {
        None => return Ok(None),
        Some(Loose::Text(text)) => text,
        Some(Loose::Object(_)) => return Err(format!("{field}: must be a string, not an object")),
        Some(Loose::Other(kind)) => return Err(format!("{field}: must be a string, not {kind}")),
    };
    if text.is_empty() {
        return Err(format!("{field}: empty"));
    }
    if text.len() > max_chars && text.chars().count() > max_chars {
        return Err(format!("{field}: longer than {max_chars} characters"));
    }
    if names && text.chars().any(char::is_control) {
        return Err(format!("{field}: contains control characters"));
    }
    if text.contains('\0') {
        return Err(format!("{field}: contains a NUL character"));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::{Value, json};

    const LIMITS: Limits = Limits {
        max_events: 3,
        max_future_secs: 300,
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap()
    }

    /// A valid event with `extra` fields replacing or adding to the defaults.
    fn event(extra: Value) -> String {
        let mut e = json!({
            "at": "2025-01-01T11:59:00Z", "ip": "203.0.113.7", "account": "alice",
            "service": "web", "outcome": "failure"
        });
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e.to_string()
    }

    fn parse(body: &str) -> Result<Vec<AuthEvent>, BatchError> {
        let parsed = parse_batch(body.as_bytes(), now(), &LIMITS)?;
        assert_eq!(parsed.problems, [], "expected no problems");
        Ok(parsed.events)
    }

    /// The problems of a batch, whether its valid events are accepted or none is valid.
    fn problems(body: &str) -> Vec<(usize, String)> {
        let p = match parse_batch(body.as_bytes(), now(), &LIMITS) {
            Err(BatchError::Invalid(p)) => p,
            Ok(parsed) if !parsed.problems.is_empty() => parsed.problems,
            other => panic!("expected problems, got {other:?}"),
        };
        p.into_iter().map(|p| (p.index, p.problem)).collect()
    }

    #[test]
    fn a_json_array_and_ndjson_give_the_same_events() {
        let one = event(json!({"id": "e1", "reason": "bad password", "user_agent": "curl/8"}));
        let two = event(json!({"ip": "2001:db8::1", "outcome": "locked"}));
        let array = parse(&format!(" [{one},{two}] ")).unwrap();
        let lines = parse(&format!("{one}\n\n{two}\r\n")).unwrap();
        assert_eq!(array, lines);
        assert_eq!(array[0].id.as_deref(), Some("e1"));
        assert_eq!(array[0].reason.as_deref(), Some("bad password"));
        assert_eq!(
            array[0].at,
            Utc.with_ymd_and_hms(2025, 1, 1, 11, 59, 0).unwrap()
        );
        assert_eq!(
            array[1].source,
            Source::Ip("2001:db8::1".parse::<IpAddr>().unwrap())
        );
        assert_eq!(array[1].outcome, Outcome::Locked);
    }

    #[test]
    fn markup_and_escapes_are_kept_verbatim() {
        let body = event(json!({"account": "<b>x</b>\u{e9} \"q\" \\"}));
        assert!(body.contains(r#"\"q\""#), "escaped in JSON: {body}");
        assert_eq!(
            parse(&body).unwrap()[0].account.as_deref(),
            Some("<b>x</b>é \"q\" \\")
        );
    }

    #[test]
    fn every_bad_index_is_named_with_every_reason() {
        let body = format!(
            "[{},{},{}]",
            event(json!({})),
            event(json!({"ip": "not-an-ip"})),
            event(json!({"at": "2025-01-01T12:05:01Z"}))
        );
        assert_eq!(
            problems(&body),
            [
                (1, "ip: not an IP address".into()),
                (2, "at: more than 300 seconds in the future".into())
            ]
        );
        let p = problems("{\"ip\":5,\"outcome\":\"maybe\",\"at\":[]}\n42");
        assert_eq!(
            p[0].1,
            "at: must be a string, not an array; ip: must be a string, not a number; service: missing; outcome: must be failure, success or locked"
        );
        assert_eq!(p[1], (1, "an event must be a JSON object".into()));
    }

    #[test]
    fn a_field_given_twice_is_a_problem_of_its_event_only() {
        let twice = event(json!({})).replace("\"outcome\"", "\"outcome\":\"success\",\"outcome\"");
        let p = problems(&format!("[{},{twice}]", event(json!({}))));
        assert_eq!(p, [(1, "outcome: given more than once".into())]);
    }

    #[test]
    fn five_minutes_ahead_is_accepted_and_offsets_are_understood() {
        let edge = event(json!({"at": "2025-01-01T12:05:00Z"}));
        let offset = event(json!({"at": "2025-01-01T14:04:00+02:00"}));
        assert!(parse(&format!("[{edge},{offset}]")).is_ok());
        let p = problems(&event(json!({"at": "yesterday"})));
        assert_eq!(p[0].1, "at: not an RFC 3339 timestamp");
    }

    #[test]
    fn lengths_are_counted_in_characters_and_names_refuse_control_characters() {
        let long = |field: &str, n: usize| event(json!({ field: "é".repeat(n) }));
        let ok = [
            long("reason", 512),
            long("user_agent", 512),
            long("id", 128),
        ];
        assert!(parse(&format!("[{}]", ok.join(","))).is_ok());
        let p = problems(&format!(
            "[{},{},{}]",
            long("reason", 513),
            long("id", 129),
            long("account", 257)
        ));
        assert_eq!(p[0].1, "reason: longer than 512 characters");
        assert_eq!(p[1].1, "id: longer than 128 characters");
        assert_eq!(p[2].1, "account: longer than 256 characters");
        let p = problems(&event(json!({"account": "al\nice", "service": "w\u{1b}b"})));
        assert_eq!(
            p[0].1,
            "account: contains control characters; service: contains control characters"
        );
        let p = problems(&event(json!({"reason": "a\u{0}b"})));
        assert_eq!(p[0].1, "reason: contains a NUL character");
        let p = problems(&event(json!({"account": ""})));
        assert_eq!(p[0].1, "account: empty");
    }

    #[test]
    fn null_optional_fields_are_absent_and_unknown_fields_ignored() {
        let body = event(json!({"id": null, "reason": null, "extra": {"a": [1]}}));
        assert_eq!(parse(&body).unwrap()[0].id, None);
    }

    #[test]
    fn too_many_empty_and_malformed_bodies_are_refused_whole() {
        let e = event(json!({}));
        assert_eq!(
            parse(&format!("[{e},{e},{e},{e}]")),
            Err(BatchError::TooMany { count: 4, max: 3 })
        );
        assert_eq!(
            parse(&format!("{e}\n{e}\n{e}\n{e}")),
            Err(BatchError::TooMany { count: 4, max: 3 })
        );
        assert_eq!(parse(" \n"), Err(BatchError::Empty));
        assert_eq!(parse("[]"), Err(BatchError::Empty));
        assert!(matches!(parse("[{"), Err(BatchError::Malformed(_))));
        assert_eq!(problems(&format!("{e}\n{{oops"))[0].0, 1);
    }

    #[test]
    fn the_good_events_of_a_batch_are_kept_beside_the_bad_ones_problems() {
        let body = format!(
            "[{},{},{}]",
            event(json!({"id": "a"})),
            event(json!({"ip": "999.1.1.1"})),
            event(json!({"id": "c"}))
        );
        let parsed = parse_batch(body.as_bytes(), now(), &LIMITS).unwrap();
        let ids: Vec<_> = parsed.events.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, [Some("a"), Some("c")]);
        let bad = Problem {
            index: 1,
            problem: "ip: not an IP address".into(),
        };
        assert_eq!(parsed.problems, [bad]);
    }

    #[test]
    fn a_source_is_an_ip_or_a_host_and_the_account_may_be_absent() {
        let no_ip = |extra: Value| {
            let mut e: Value = serde_json::from_str(&event(extra)).unwrap();
            e.as_object_mut().unwrap().remove("ip");
            e.as_object_mut().unwrap().remove("account");
            e.to_string()
        };
        let host = parse(&no_ip(json!({"host": "Scanner.Example.NET."}))).unwrap();
        assert_eq!(host[0].source, Source::Host("scanner.example.net".into()));
        assert_eq!(host[0].account, None);
        let written_as_host = parse(&no_ip(json!({"host": "198.51.100.4"}))).unwrap();
        assert_eq!(
            written_as_host[0].source,
            Source::Ip("198.51.100.4".parse().unwrap())
        );
        let both = parse(&event(json!({"host": "a.example"}))).unwrap();
        assert_eq!(both[0].source, Source::Ip("203.0.113.7".parse().unwrap()));
        assert_eq!(
            problems(&no_ip(json!({})))[0].1,
            "ip or host: one is required (the source of the attempt)"
        );
        assert_eq!(
            problems(&no_ip(json!({"host": "bad host!"})))[0].1,
            "host: not a host name or an IP address"
        );
        assert_eq!(
            problems(&no_ip(json!({"host": "a..b"})))[0].1,
            "host: not a host name or an IP address"
        );
    }

    #[test]
    fn the_reasons_rules_understand_are_recognised_and_others_kept_as_text() {
        use crate::domain::auth_event::Cause;
        let body = format!(
            "[{},{},{}]",
            event(json!({"reason": "unknown_user"})),
            event(json!({"reason": "bad_password"})),
            event(json!({"reason": "Bad Password"}))
        );
        let events = parse(&body).unwrap();
        let causes: Vec<_> = events.iter().map(AuthEvent::cause).collect();
        assert_eq!(
            causes,
            [Some(Cause::UnknownUser), Some(Cause::BadPassword), None]
        );
        assert_eq!(events[2].reason.as_deref(), Some("Bad Password"));
    }

    #[test]
    fn one_event_parses_alone_for_the_stream() {
        assert!(parse_event(event(json!({})).as_bytes(), now(), 300).is_ok());
        let err = parse_event(b"not json", now(), 300).unwrap_err();
        assert!(err.starts_with("not JSON"), "{err}");
        let err = parse_event(b"[1]", now(), 300).unwrap_err();
        assert_eq!(err, "an event must be a JSON object");
    }
}
