//! Unit tests of the window evaluation: boundaries, thresholds, distinct accounts, order.

use super::*;
use crate::domain::auth_event::Outcome;

const SEC: i64 = 1000;

fn window(fire_at: u32, secs: i64) -> Window {
    Window {
        fire_at,
        length_ms: secs * SEC,
    }
}

fn event(outcome: Outcome, ip: &str, account: &str) -> AuthEvent {
    AuthEvent {
        id: None,
        at: chrono::Utc::now(),
        source: crate::domain::auth_event::Source::Ip(ip.parse().unwrap()),
        account: Some(account.into()),
        service: "web".into(),
        outcome,
        reason: None,
        user_agent: None,
    }
}

#[test]
fn keys_per_rule_and_successes_do_not_count() {
    let failure = event(Outcome::Failure, "203.0.113.7", "alice");
    let key = |c: Counting| c.key_of(&failure).unwrap().to_string();
    assert_eq!(key(Counting::FailuresByIp), "ip:203.0.113.7");
    assert_eq!(key(Counting::FailuresByAccount), "account:alice");
    assert_eq!(key(Counting::AccountsByIp), "spray:203.0.113.7");
    assert_eq!(key(Counting::AllFailures), "all");
    let locked = event(Outcome::Locked, "2001:db8::1", "bob");
    assert_eq!(
        Counting::FailuresByIp.key_of(&locked).unwrap().to_string(),
        "ip:2001:db8::1"
    );
    let success = event(Outcome::Success, "203.0.113.7", "alice");
    for c in [
        Counting::FailuresByIp,
        Counting::FailuresByAccount,
        Counting::AccountsByIp,
        Counting::AllFailures,
    ] {
        assert_eq!(c.key_of(&success), None);
    }
    assert_eq!(
        Counting::AccountsByIp.key_of(&failure).unwrap().account(),
        None
    );
    let mut from_host = failure.clone();
    from_host.source = crate::domain::auth_event::Source::Host("scan.example".into());
    from_host.account = None;
    let key = |c: Counting| c.key_of(&from_host).map(|k| k.to_string());
    assert_eq!(
        key(Counting::FailuresByIp).as_deref(),
        Some("host:scan.example")
    );
    assert_eq!(
        key(Counting::AccountsByIp),
        None,
        "no account, no spray member"
    );
    assert_eq!(key(Counting::FailuresByAccount), None);
    assert_eq!(key(Counting::AllFailures).as_deref(), Some("all"));
    assert_eq!(
        Counting::FailuresByAccount
            .key_of(&failure)
            .unwrap()
            .account(),
        Some("alice")
    );
}

#[test]
fn twenty_distinct_accounts_fire_and_repeats_do_not_count_twice() {
    let w = window(20, 600);
    let names: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
    let batch: Vec<(i64, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (i as i64 * SEC, n.as_str()))
        .collect();
    let v = evaluate_accounts(w, &[] as &[(String, i64)], &batch);
    assert_eq!(v.counts.last(), Some(&20));
    assert_eq!(v.exceeding, 1);
    assert_eq!(v.increment, 20);
    // 19 accounts, each failing three times: never more than 19.
    let repeated: Vec<(i64, &str)> = (0..57)
        .map(|i| (i as i64 * SEC, names[i % 19].as_str()))
        .collect();
    let v = evaluate_accounts(w, &[] as &[(String, i64)], &repeated);
    assert_eq!(v.peak, 19);
    assert_eq!(v.exceeding, 0);
}

#[test]
fn distinct_accounts_continue_from_the_previous_state() {
    let w = window(3, 60);
    let previous = vec![("a".to_string(), 0), ("b".to_string(), SEC)];
    // "a" again: still two accounts. "c": three.
    let v = evaluate_accounts(w, &previous, &[(2 * SEC, "a"), (3 * SEC, "c")]);
    assert_eq!(v.counts, vec![2, 3]);
    assert!(v.crossed);
    assert_eq!(v.since_ms, Some(SEC));
    // An account whose only failure left the window counts as new again.
    let v = evaluate_accounts(w, &previous, &[(60 * SEC, "a"), (61 * SEC, "c")]);
    assert_eq!(v.counts, vec![2, 2]);
    assert_eq!(v.exceeding, 0);
}

#[test]
fn distinct_accounts_add_only_new_accounts_after_the_crossing() {
    let w = window(2, 60);
    let v = evaluate_accounts(
        w,
        &[] as &[(String, i64)],
        &[(0, "a"), (SEC, "b"), (2 * SEC, "a"), (3 * SEC, "c")],
    );
    assert_eq!(v.counts, vec![1, 2, 2, 3]);
    assert_eq!(v.exceeding, 3);
    assert_eq!(v.increment, 2 + 1);
}

#[test]
fn a_late_event_for_an_account_seen_later_still_counts_it() {
    let w = window(2, 60);
    let previous = vec![("a".to_string(), 10 * SEC)];
    let v = evaluate_accounts(w, &previous, &[(5 * SEC, "a")]);
    assert_eq!(v.counts, vec![1]);
    // Only each account's latest failure is kept, so a later event in the window of a late
    // one does not see it: late arrivals across batches may be under-counted, never over.
    let v = evaluate_accounts(w, &previous, &[(5 * SEC, "a"), (6 * SEC, "b")]);
    assert_eq!(v.counts, vec![1, 1]);
}

#[test]
fn late_accounts_completing_a_spray_cross_at_the_stored_entry() {
    let w = window(4, 600);
    let previous = vec![("b".to_string(), SEC), ("d".to_string(), 3 * SEC)];
    let v = evaluate_accounts(w, &previous, &[(0, "a"), (2 * SEC, "c")]);
    assert_eq!(v.counts, vec![1, 3]);
    assert_eq!(v.exceeding, 1);
    assert_eq!(v.first_exceeding_ms, Some(3 * SEC));
    assert_eq!(v.increment, 4);
}

#[test]
fn only_the_spray_rule_counts_accounts() {
    assert!(Counting::AccountsByIp.counts_accounts());
    for counting in [
        Counting::FailuresByIp,
        Counting::FailuresByAccount,
        Counting::AllFailures,
    ] {
        assert!(!counting.counts_accounts(), "{counting:?}");
    }
}

#[test]
fn a_key_names_its_source_or_its_account_and_nothing_else() {
    use crate::domain::auth_event::Source;
    let ip = Source::Ip("203.0.113.7".parse().unwrap());
    let host = Source::Host("gw-1".into());
    assert_eq!(EventKey::Ip(&ip).source(), Some(&ip));
    assert_eq!(EventKey::Spray(&host).source(), Some(&host));
    assert_eq!(EventKey::Account("alice").source(), None);
    assert_eq!(EventKey::All.source(), None);
    assert_eq!(EventKey::Account("alice").account(), Some("alice"));
    assert_eq!(EventKey::Ip(&ip).account(), None);
    assert_eq!(EventKey::Spray(&ip).account(), None);
    assert_eq!(EventKey::All.account(), None);
    assert_eq!(EventKey::Ip(&host).to_string(), "host:gw-1");
    assert_eq!(EventKey::Spray(&host).to_string(), "spray:gw-1");
}

/// Where the state already stood when the batch began decides what the batch adds: a key
/// already at the threshold counts on (one per newly seen account, no new crossing); one
/// below it crosses (the whole window). Entries newer than the first new event are not
/// "before" it.
#[test]
fn distinct_accounts_count_on_from_a_state_already_exceeding_and_cross_from_one_below() {
    let w = window(3, 60);
    let at = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
        pairs
            .iter()
            .map(|(a, t)| (a.to_string(), t * SEC))
            .collect()
    };
    // a, b, c by 2 s: exceeding before "d" comes.
    let v = evaluate_accounts(w, &at(&[("a", 0), ("b", 1), ("c", 2)]), &[(3 * SEC, "d")]);
    assert_eq!(v.counts, vec![4]);
    assert!(!v.crossed);
    assert_eq!(v.increment, 1);
    // a, b only: "c" crosses, and the crossing adds the whole window.
    let v = evaluate_accounts(w, &at(&[("a", 0), ("b", 1)]), &[(2 * SEC, "c")]);
    assert_eq!(v.counts, vec![3]);
    assert!(v.crossed);
    assert_eq!(v.increment, 3);
    // c at 5 s is after the new event at 2 s: before it the key stood at two.
    let v = evaluate_accounts(w, &at(&[("a", 0), ("b", 1), ("c", 5)]), &[(2 * SEC, "d")]);
    assert_eq!(v.counts, vec![3]);
    assert!(v.crossed);
}

/// The same account failing again at the very time already stored is one account, not a
/// late arrival counted on top.
#[test]
fn an_account_repeated_at_its_stored_time_counts_once() {
    let w = window(2, 60);
    let v = evaluate_accounts(w, &[("a".to_string(), 5 * SEC)], &[(5 * SEC, "a")]);
    assert_eq!(v.counts, vec![1]);
    assert_eq!(v.exceeding, 0);
}

#[test]
fn looking_accounts_up_by_a_scan_or_a_map_gives_the_same_verdict() {
    // States of up to 30 accounts (each once) over 12 names, batches of up to 40 failures
    // with repeats, late events and equal times.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let names: Vec<String> = (0..12).map(|i| format!("user{i}")).collect();
    for case in 0..3_000 {
        let w = window(1 + (next() % 6) as u32, 10 * SEC);
        let mut previous: Vec<(String, i64)> = Vec::new();
        for _ in 0..next() % 30 {
            let name = &names[(next() % 12) as usize];
            if !previous.iter().any(|(a, _)| a == name) {
                previous.push((name.clone(), (next() % 20) as i64 * SEC));
            }
        }
        let batch: Vec<(i64, &str)> = (0..1 + next() % 40)
            .map(|_| {
                (
                    (next() % 30) as i64 * SEC,
                    names[(next() % 12) as usize].as_str(),
                )
            })
            .collect();
        assert_eq!(
            super::evaluate_accounts_by(w, &previous, &batch, false),
            super::evaluate_accounts_by(w, &previous, &batch, true),
            "case {case}: {previous:?} + {batch:?}"
        );
    }
}
