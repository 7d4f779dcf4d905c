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
fn the_fifth_fires_and_the_fourth_does_not() {
    let w = window(5, 900);
    let four = evaluate_events(w, &[], &[0, SEC, 2 * SEC, 3 * SEC]);
    assert_eq!(four.counts, vec![1, 2, 3, 4]);
    assert_eq!(four.exceeding, 0);
    assert!(!four.crossed);
    let fifth = evaluate_events(w, &[0, SEC, 2 * SEC, 3 * SEC], &[4 * SEC]);
    assert_eq!(fifth.counts, vec![5]);
    assert_eq!(fifth.exceeding, 1);
    assert!(fifth.crossed);
    assert_eq!(fifth.since_ms, Some(0));
    assert_eq!(fifth.first_exceeding_ms, Some(4 * SEC));
    assert_eq!(fifth.increment, 5);
}

#[test]
fn more_than_ten_fires_on_the_eleventh() {
    let w = window(11, 60);
    let times: Vec<i64> = (0..11).map(|i| i * SEC).collect();
    let v = evaluate_events(w, &[], &times);
    assert_eq!(v.counts.last(), Some(&11));
    assert_eq!(v.exceeding, 1);
    assert_eq!(v.first_exceeding_ms, Some(10 * SEC));
    let ten = evaluate_events(w, &[], &times[..10]);
    assert_eq!(ten.exceeding, 0);
}

#[test]
fn an_event_exactly_a_window_later_does_not_count_the_first() {
    let w = window(2, 60);
    let v = evaluate_events(w, &[0], &[60 * SEC]);
    assert_eq!(v.counts, vec![1]);
    assert_eq!(v.exceeding, 0);
    let v = evaluate_events(w, &[0], &[60 * SEC - 1]);
    assert_eq!(v.counts, vec![2]);
    assert_eq!(v.exceeding, 1);
}

#[test]
fn the_window_slides_instead_of_resetting_in_buckets() {
    // 5 at the end of one minute and 6 at the start of the next: 11 within 60 s.
    let w = window(11, 60);
    let mut times: Vec<i64> = (0..5).map(|i| 55 * SEC + i * SEC).collect();
    times.extend((0..6).map(|i| 60 * SEC + i * SEC));
    let v = evaluate_events(w, &[], &times);
    assert_eq!(v.exceeding, 1);
    // Spread over more than a minute, they never reach 11 at once.
    let spread: Vec<i64> = (0..11).map(|i| i * 7 * SEC).collect();
    assert_eq!(evaluate_events(w, &[], &spread).peak, 9);
}

#[test]
fn out_of_order_events_in_a_batch_are_counted_in_time_order() {
    let w = window(5, 900);
    let v = evaluate_events(w, &[], &[4 * SEC, 0, 3 * SEC, SEC, 2 * SEC]);
    assert_eq!(v.counts, vec![1, 2, 3, 4, 5]);
    assert_eq!(v.first_exceeding_ms, Some(4 * SEC));
    assert_eq!(v.since_ms, Some(0));
}

#[test]
fn an_exceeding_key_adds_one_per_event_after_the_crossing() {
    let w = window(5, 900);
    let v = evaluate_events(w, &[], &(0..35).map(|i| i * SEC).collect::<Vec<_>>());
    assert_eq!(v.exceeding, 31);
    assert_eq!(v.increment, 35);
    assert_eq!(v.peak, 35);
    // Continuing from a capped state that already exceeded: no new crossing.
    let previous: Vec<i64> = (30..35).map(|i| i * SEC).collect();
    let more = evaluate_events(w, &previous, &[40 * SEC, 41 * SEC]);
    assert!(!more.crossed);
    assert_eq!(more.increment, 2);
    assert_eq!(more.counts, vec![6, 7]);
}

#[test]
fn a_quiet_gap_ends_the_streak_and_the_next_burst_crosses_again() {
    let w = window(3, 60);
    let v = evaluate_events(w, &[], &[0, SEC, 2 * SEC, 200 * SEC, 201 * SEC, 202 * SEC]);
    assert_eq!(v.counts, vec![1, 2, 3, 1, 2, 3]);
    assert_eq!(v.exceeding, 2);
    assert_eq!(v.increment, 6);
    assert_eq!(v.last_exceeding_ms, Some(202 * SEC));
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
    let v = evaluate_accounts(w, &[], &batch);
    assert_eq!(v.counts.last(), Some(&20));
    assert_eq!(v.exceeding, 1);
    assert_eq!(v.increment, 20);
    // 19 accounts, each failing three times: never more than 19.
    let repeated: Vec<(i64, &str)> = (0..57)
        .map(|i| (i as i64 * SEC, names[i % 19].as_str()))
        .collect();
    let v = evaluate_accounts(w, &[], &repeated);
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
        &[],
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
fn a_late_half_completing_a_burst_crosses_at_the_stored_entry() {
    // Another replica stored the odd seconds first; the even ones arrive late.
    let w = window(10, 60);
    let odd: Vec<i64> = (0..5).map(|i| (2 * i + 1) * SEC).collect();
    let even: Vec<i64> = (0..5).map(|i| 2 * i * SEC).collect();
    let v = evaluate_events(w, &odd, &even);
    assert_eq!(v.counts, vec![1, 3, 5, 7, 9]);
    assert_eq!(v.exceeding, 1);
    assert!(v.crossed);
    assert_eq!(v.first_exceeding_ms, Some(9 * SEC));
    assert_eq!(v.increment, 10);
    // The other order: the crossing is seen at the new event.
    let v = evaluate_events(w, &even, &odd);
    assert_eq!(v.counts.last(), Some(&10));
    assert_eq!(v.exceeding, 1);
}

#[test]
fn a_stored_entry_that_had_already_exceeded_is_not_counted_again() {
    let w = window(3, 60);
    let v = evaluate_events(w, &[0, SEC, 2 * SEC, 5 * SEC], &[4 * SEC]);
    assert_eq!(v.counts, vec![4]);
    // 4 s crossed (stored 0,1,2 were already exceeding at 2 s), 5 s had 4 before: already.
    assert_eq!(v.exceeding, 1);
    assert!(!v.crossed);
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
fn a_stored_entry_and_a_new_event_at_the_same_time_are_counted_once_each() {
    // Stored [200 ms], batch [50 ms, 200 ms], fires at 2 within 10 s: the timeline is
    // 50 (1), 200 stored (2: crossing), 200 new (3). Three events, at most three counted.
    let v = evaluate_events(window(2, 10), &[200], &[50, 200]);
    assert!(v.crossed, "{v:?}");
    assert!(v.increment <= 3, "{v:?}");
}
