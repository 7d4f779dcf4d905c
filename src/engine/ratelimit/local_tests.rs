//! Fast tests of the in-memory windows (time passed in): the window's edge, the wait a
//! limited subject is told, outage hits after Redis is back, and the 10,000-subject
//! clean-up dropping the idle subjects and keeping the active ones.

use super::*;

const WINDOW: Duration = Duration::from_secs(60);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn a_hit_leaves_the_window_exactly_one_window_later() {
    let t0 = Instant::now();
    assert!(in_window(t0, WINDOW, t0));
    assert!(in_window(
        t0,
        WINDOW,
        t0 + WINDOW - Duration::from_millis(1)
    ));
    assert!(!in_window(t0, WINDOW, t0 + WINDOW));
    assert!(!in_window(t0, WINDOW, t0 + secs(3600)));
    // A hit stamped after `now` (another thread read the clock later) is in the window.
    assert!(in_window(t0 + secs(1), WINDOW, t0));
}

#[test]
fn the_wait_is_until_the_oldest_hit_leaves_and_never_below_one_millisecond() {
    let t0 = Instant::now();
    assert_eq!(retry_after(t0, WINDOW, t0 + secs(10)), secs(50));
    assert_eq!(retry_after(t0, WINDOW, t0), secs(60));
    assert_eq!(
        retry_after(t0, WINDOW, t0 + WINDOW),
        Duration::from_millis(1)
    );
    assert_eq!(
        retry_after(t0, WINDOW, t0 + secs(999)),
        Duration::from_millis(1)
    );
    assert_eq!(MIN_RETRY_AFTER, Duration::from_millis(1));
}

#[test]
fn redis_answers_zero_to_admit_and_otherwise_the_wait() {
    assert_eq!(Verdict::of_redis_wait(0), Verdict::Allowed);
    assert_eq!(
        Verdict::of_redis_wait(1500),
        Verdict::Limited(Duration::from_millis(1500))
    );
    assert_eq!(
        Verdict::of_redis_wait(-5),
        Verdict::Limited(Duration::from_millis(1))
    );
}

#[test]
fn the_local_window_admits_the_limit_then_tells_the_wait() {
    let t0 = Instant::now();
    let mut w = LocalWindows::default();
    for i in 0..3 {
        assert_eq!(
            w.check("k", 3, WINDOW, t0 + secs(i)),
            Verdict::Allowed,
            "{i}"
        );
    }
    assert_eq!(
        w.check("k", 3, WINDOW, t0 + secs(10)),
        Verdict::Limited(secs(50))
    );
    // A refused hit is not counted.
    assert_eq!(w.hits_of("k"), 3);
    // Another subject has its own budget.
    assert_eq!(w.check("other", 3, WINDOW, t0 + secs(10)), Verdict::Allowed);
    // The oldest hit leaves at t0 + 60 s: one more is admitted then, not before.
    assert_eq!(
        w.check("k", 3, WINDOW, t0 + WINDOW - Duration::from_millis(1)),
        Verdict::Limited(Duration::from_millis(1))
    );
    assert_eq!(w.check("k", 3, WINDOW, t0 + WINDOW), Verdict::Allowed);
    assert_eq!(w.hits_of("k"), 3);
    assert_eq!(
        w.check("k", 3, WINDOW, t0 + WINDOW),
        Verdict::Limited(secs(1))
    );
}

#[test]
fn a_limit_of_zero_admits_nothing() {
    let t0 = Instant::now();
    let mut w = LocalWindows::default();
    assert_eq!(w.check("k", 0, WINDOW, t0), Verdict::Limited(WINDOW));
    assert_eq!(w.hits_of("k"), 0);
}

#[test]
fn outage_hits_alone_at_the_limit_refuse_even_when_redis_admits() {
    let t0 = Instant::now();
    let mut w = LocalWindows::default();
    // No outage hits: nothing to say, and no entry made.
    assert_eq!(w.outage_hits_full("k", 2, WINDOW, t0), None);
    assert_eq!(w.subjects(), 0);
    w.check("k", 2, WINDOW, t0);
    assert_eq!(
        w.outage_hits_full("k", 2, WINDOW, t0 + secs(5)),
        None,
        "one of two"
    );
    w.check("k", 2, WINDOW, t0 + secs(1));
    assert_eq!(
        w.outage_hits_full("k", 2, WINDOW, t0 + secs(5)),
        Some(secs(55)),
        "two of two"
    );
    // Once they left the window the entry goes.
    assert_eq!(w.outage_hits_full("k", 2, WINDOW, t0 + secs(61)), None);
    assert_eq!(w.subjects(), 0);
}

#[test]
fn a_hit_redis_admits_counts_beside_outage_hits_still_in_the_window() {
    let t0 = Instant::now();
    let mut w = LocalWindows::default();
    // No outage hits: Redis alone counts.
    w.count_beside_outage_hits("k", WINDOW, t0);
    assert_eq!(w.subjects(), 0);
    w.check("k", 3, WINDOW, t0);
    w.count_beside_outage_hits("k", WINDOW, t0 + secs(1));
    assert_eq!(w.hits_of("k"), 2);
    // The newest outage-era hit left the window: nothing more is counted in memory.
    w.count_beside_outage_hits("k", WINDOW, t0 + secs(61) + secs(1));
    assert_eq!(w.hits_of("k"), 2);
    w.count_beside_outage_hits("k", WINDOW, t0 + secs(1) + WINDOW);
    assert_eq!(w.hits_of("k"), 2);
}

/// `idle` subjects whose only hit left the window by `now`, `active` ones with a hit in it.
fn crowded(idle: usize, active: usize, t0: Instant) -> LocalWindows {
    let mut w = LocalWindows::default();
    for i in 0..idle {
        w.check(&format!("idle:{i}"), 5, WINDOW, t0);
    }
    for i in 0..active {
        w.check(&format!("active:{i}"), 5, WINDOW, t0 + secs(30));
    }
    w
}

#[test]
fn past_ten_thousand_subjects_the_idle_ones_are_dropped_and_the_active_kept() {
    let t0 = Instant::now();
    let now = t0 + secs(70);
    let mut w = crowded(5_000, 5_001, t0);
    assert_eq!(w.subjects(), CLEANUP_ABOVE + 1);
    assert_eq!(w.check("new", 5, WINDOW, now), Verdict::Allowed);
    assert_eq!(w.subjects(), 5_001 + 1);
    assert_eq!(w.hits_of("active:0"), 1);
    assert_eq!(w.hits_of("idle:0"), 0);
}

#[test]
fn at_ten_thousand_subjects_nothing_is_dropped_yet() {
    let t0 = Instant::now();
    let mut w = crowded(5_000, 5_000, t0);
    assert_eq!(w.subjects(), CLEANUP_ABOVE);
    w.check("new", 5, WINDOW, t0 + secs(70));
    assert_eq!(w.subjects(), CLEANUP_ABOVE + 1);
}

#[test]
fn redis_verdicts_pass_through_and_an_admitted_hit_counts_beside_outage_hits() {
    let t0 = Instant::now();
    let mut w = LocalWindows::default();
    w.check("k", 3, WINDOW, t0);
    let limited = Verdict::Limited(secs(7));
    assert_eq!(w.after_redis("k", limited, WINDOW, t0 + secs(1)), limited);
    assert_eq!(w.hits_of("k"), 1, "a refused hit is not counted");
    assert_eq!(
        w.after_redis("k", Verdict::Allowed, WINDOW, t0 + secs(2)),
        Verdict::Allowed
    );
    assert_eq!(w.hits_of("k"), 2);
}
