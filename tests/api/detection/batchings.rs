//! Results that do not depend on batching: the same pseudo-random sshd-like traffic (bursts,
//! trickles, equal times, sources that are addresses or host names, events without an
//! account) is posted through the ingest API one event per request, 1,000 per request, and
//! in shuffled batches (each event delayed by up to 30 s of event time). In time order, the
//! alerts — keys, counts, first and last events, episodes, states, what was folded into
//! what, and the pages — must be the same; shuffled, every alert's count and span. The
//! reference records each event with its request; the others hold counts on open alerts
//! behind (`logins.counts_every_ms`), so merged episodes must add up to the same.

use super::super::ingest::{good_token, post, with_secret};
use super::*;
use serde_json::{Value, json};

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const SOURCES: [(&str, &str); 5] = [
    ("ip", "203.0.113.5"),
    ("ip", "203.0.113.6"),
    ("ip", "2001:db8::7"),
    ("host", "scanner.example.net"),
    ("ip", "198.51.100.9"),
];

/// (event time, event) pairs in time order: bursts and trickles over two hours.
fn traffic(rng: &mut Rng, start: DateTime<Utc>) -> Vec<(i64, Value)> {
    let mut out = Vec::new();
    let mut t = 0i64;
    for i in 0..600 {
        t += match rng.below(10) {
            0 => rng.below(400_000) as i64,
            1 | 2 => 0,
            _ => rng.below(6_000) as i64,
        };
        let (field, source) = SOURCES[rng.below(SOURCES.len() as u64) as usize];
        let at = start + Duration::milliseconds(t);
        let mut e = json!({
            "id": format!("e{i}"), "at": at.to_rfc3339(), field: source,
            "service": "sshd", "outcome": "failure",
            "reason": if rng.below(2) == 0 { "unknown_user" } else { "bad_password" },
        });
        if rng.below(8) != 0 {
            e["account"] = json!(format!("user{}", rng.below(9)));
        }
        out.push((t, e));
    }
    out
}

fn rules(s: &mut opsguard::config::Settings) {
    with_secret(s);
    s.logins.alert_chats = vec![ALERT_CHAT];
    s.logins.cooldown_secs = 120;
    let rule = |name: &str, kind, fire_at, window_secs| opsguard::config::RuleSettings {
        name: name.into(),
        kind,
        fire_at,
        window_secs,
        reason: None,
        cooldown_secs: None,
        accounts: Default::default(),
    };
    use opsguard::config::RuleKind::*;
    s.logins.rules = vec![
        rule("ip-fast", Ip, 6, 60),
        rule("ip-slow", Ip, 12, 600),
        rule("account", Account, 4, 300),
        rule("spray", Spray, 4, 600),
    ];
}

/// Every alert that is not folded into another, as the operator's `/alerts` would list it.
/// (rule, key, count, first and last event, state, and the rule and key of the alert it
/// was folded into).
type Row = (
    String,
    String,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
    Option<String>,
);

/// (rule, key, count, first event but of a spray, last event).
type Counted = (String, String, i64, Option<DateTime<Utc>>, DateTime<Utc>);

async fn outcome(app: &TestApp) -> (Vec<Row>, i64) {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT a.rule, a.key, a.count, a.first_at, a.last_at, a.state,
                concat((SELECT h.rule || ' ' || h.key || ' ' FROM login_alerts h
                        WHERE h.id = a.merged_into), 'from ', host(a.ip), a.host)
         FROM login_alerts a WHERE a.state <> 'merged' ORDER BY 1, 2, 4",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    (rows, pushes(app).await.len() as i64)
}

/// The alerts `batches` raise, posted in order; counts on open alerts written behind every
/// `counts_every_ms` (0: with each batch), read once the app has stopped (and so written
/// what it held).
async fn send(batches: Vec<Vec<Value>>, counts_every_ms: u64) -> (Vec<Row>, i64) {
    let app = spawn_app_with(|s| {
        rules(s);
        s.logins.counts_every_ms = counts_every_ms;
    })
    .await;
    let token = good_token();
    for batch in batches {
        let (status, answer) = post(&app, Some(&token), Value::from(batch).to_string()).await;
        assert_eq!(status, 202, "{answer}");
    }
    app.stop().await;
    outcome(&app).await
}

#[tokio::test]
async fn one_per_request_a_thousand_per_request_and_shuffled_batches_give_the_same_alerts() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = Utc::now() - Duration::hours(8);
    let events = traffic(&mut rng, start);
    let one_by_one: Vec<Vec<Value>> = events.iter().map(|(_, e)| vec![e.clone()]).collect();
    // The reference: each event recorded with its own request.
    let (want, pages) = send(one_by_one, 0).await;
    let rules_seen: std::collections::BTreeSet<&str> = want.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        rules_seen.len(),
        4,
        "every rule fires in the traffic: {want:?}"
    );
    assert!(want.iter().any(|r| r.1.starts_with("host:")), "{want:?}");

    let whole: Vec<Vec<Value>> = events
        .chunks(1000)
        .map(|c| c.iter().map(|(_, e)| e.clone()).collect())
        .collect();
    assert_eq!(
        send(whole, 1000).await,
        (want.clone(), pages),
        "1,000 per request"
    );

    // Each event delayed by up to 30 s of event time, then batches of 1 to 40.
    let mut arrival: Vec<(i64, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (t + rng.below(30_000) as i64, i))
        .collect();
    arrival.sort_unstable();
    let mut shuffled = Vec::new();
    let mut rest = &arrival[..];
    while !rest.is_empty() {
        let n = (1 + rng.below(40) as usize).min(rest.len());
        shuffled.push(
            rest[..n]
                .iter()
                .map(|&(_, i)| events[i].1.clone())
                .collect(),
        );
        rest = &rest[n..];
    }
    // Late events change nothing of the event counts: every alert's count, first and last
    // event. What it does not promise under reordering: which source an account alert
    // is attributed to (the event that crossed may have come in an earlier batch), and so
    // what it is folded into; and a spray's start (its window keeps each account's latest
    // failure only).
    let (alerts, _) = send(shuffled, 1000).await;
    let counted = |rows: &[Row]| -> Vec<Counted> {
        rows.iter()
            .map(|r| {
                let first = (r.0 != "spray").then_some(r.3);
                (r.0.clone(), r.1.clone(), r.2, first, r.4)
            })
            .collect()
    };
    assert_eq!(
        counted(&alerts),
        counted(&want),
        "shuffled within the lateness"
    );
}
