//! Fast tests of the principal cache (no database): freshness at the TTL's edge, the
//! generation guard, the clean-up of a full cache, and change notifications.

use super::*;
use crate::storage::users::UserRecord;
use std::collections::HashSet;

const TTL: Duration = Duration::from_secs(30);

fn someone(id: i64) -> Looked {
    Some(Arc::new(Principal {
        user: UserRecord {
            id: UserId(id),
            display_name: format!("user {id}"),
            active: true,
            roles: vec!["viewer".into()],
        },
        permissions: HashSet::from(["help".to_string()]),
    }))
}

fn id_of(looked: &Option<Looked>) -> Option<i64> {
    looked
        .as_ref()
        .map(|l| l.as_ref().map_or(0, |p| p.user.id.0))
}

#[test]
fn an_entry_is_fresh_strictly_before_its_ttl() {
    let t0 = Instant::now();
    assert!(is_fresh(t0, t0, TTL));
    assert!(is_fresh(t0, t0 + TTL - Duration::from_millis(1), TTL));
    assert!(!is_fresh(t0, t0 + TTL, TTL));
    assert!(!is_fresh(t0, t0 + TTL + Duration::from_secs(3600), TTL));
    assert!(!is_fresh(t0, t0, Duration::ZERO));
    // A clock read before the entry was cached (another thread) is not an expiry.
    assert!(is_fresh(t0 + Duration::from_secs(1), t0, TTL));
}

#[test]
fn a_cached_lookup_is_served_until_the_ttl_and_never_after() {
    let t0 = Instant::now();
    let mut cache = PrincipalCache::default();
    let generation = cache.generation();
    assert!(cache.insert(UserId(7), someone(7), generation, t0, TTL));
    assert_eq!(id_of(&cache.get(UserId(7), t0, TTL)), Some(7));
    assert_eq!(
        id_of(&cache.get(UserId(7), t0 + Duration::from_secs(29), TTL)),
        Some(7)
    );
    assert_eq!(id_of(&cache.get(UserId(7), t0 + TTL, TTL)), None);
    assert_eq!(
        id_of(&cache.get(UserId(7), t0 + Duration::from_secs(86_400), TTL)),
        None
    );
    assert_eq!(id_of(&cache.get(UserId(8), t0, TTL)), None);
}

#[test]
fn a_stranger_is_cached_as_a_stranger() {
    let t0 = Instant::now();
    let mut cache = PrincipalCache::default();
    assert!(cache.insert(UserId(9), None, 0, t0, TTL));
    assert_eq!(id_of(&cache.get(UserId(9), t0, TTL)), Some(0));
    assert_eq!(cache.len(), 1);
    assert!(!cache.is_empty());
}

#[test]
fn a_zero_ttl_caches_nothing() {
    let t0 = Instant::now();
    let mut cache = PrincipalCache::default();
    assert!(!cache.insert(UserId(7), someone(7), 0, t0, Duration::ZERO));
    assert!(cache.is_empty());
    assert_eq!(cache.len(), 0);
}

#[test]
fn a_lookup_that_overlapped_an_eviction_is_not_cached() {
    let t0 = Instant::now();
    let mut cache = PrincipalCache::default();
    let before = cache.generation();
    cache.evict(UserId(1));
    assert_eq!(cache.generation(), before + 1);
    assert!(!cache.insert(UserId(7), someone(7), before, t0, TTL));
    assert_eq!(id_of(&cache.get(UserId(7), t0, TTL)), None);
    let before = cache.generation();
    cache.evict_all();
    assert_eq!(cache.generation(), before + 1);
    assert!(!cache.insert(UserId(7), someone(7), before, t0, TTL));
    assert!(cache.insert(UserId(7), someone(7), cache.generation(), t0, TTL));
}

#[test]
fn evicting_one_user_keeps_the_others_and_evicting_all_keeps_none() {
    let t0 = Instant::now();
    let mut cache = PrincipalCache::default();
    for id in 1..=3 {
        cache.insert(UserId(id), someone(id), 0, t0, TTL);
    }
    cache.evict(UserId(2));
    assert_eq!(id_of(&cache.get(UserId(1), t0, TTL)), Some(1));
    assert_eq!(id_of(&cache.get(UserId(2), t0, TTL)), None);
    assert_eq!(id_of(&cache.get(UserId(3), t0, TTL)), Some(3));
    cache.evict_all();
    assert!(cache.is_empty());
}

#[test]
fn a_full_cache_drops_the_stale_entries_and_keeps_the_fresh_ones() {
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(20);
    let now = t0 + TTL + Duration::from_secs(1);
    let mut cache = PrincipalCache::default();
    // One entry fewer than the clean-up threshold, half of them stale by `now`.
    for id in 0..CLEANUP_ABOVE as i64 - 1 {
        let at = if id % 2 == 0 { t0 } else { later };
        cache.insert(UserId(id), None, 0, at, TTL);
    }
    // Below the threshold nothing is dropped.
    cache.insert(UserId(-1), None, 0, now, TTL);
    assert_eq!(cache.len(), CLEANUP_ABOVE);
    // At it, the stale half goes and the fresh half stays.
    cache.insert(UserId(-2), None, 0, now, TTL);
    assert_eq!(cache.len(), CLEANUP_ABOVE / 2 + 1);
    assert_eq!(id_of(&cache.get(UserId(1), now, TTL)), Some(0));
    assert_eq!(id_of(&cache.get(UserId(-1), now, TTL)), Some(0));
    assert_eq!(id_of(&cache.get(UserId(-2), now, TTL)), Some(0));
    assert!(!cache.entries.contains_key(&UserId(0)));
}

#[test]
fn a_full_cache_of_fresh_entries_drops_its_oldest_eighth_and_never_exceeds_its_bound() {
    let t0 = Instant::now();
    let mut cache = PrincipalCache::with_max(16);
    for id in 0..16 {
        cache.insert(
            UserId(id),
            None,
            0,
            t0 + Duration::from_millis(id as u64),
            TTL,
        );
    }
    assert_eq!(cache.len(), 16);
    // Re-caching a held user takes no room.
    cache.insert(UserId(15), None, 0, t0 + Duration::from_millis(20), TTL);
    assert_eq!(cache.len(), 16);
    // A newcomer: all are fresh, so the two oldest (16 / 8) make room.
    let now = t0 + Duration::from_millis(30);
    cache.insert(UserId(100), None, 0, now, TTL);
    assert_eq!(cache.len(), 15);
    assert!(!cache.entries.contains_key(&UserId(0)));
    assert!(!cache.entries.contains_key(&UserId(1)));
    assert!(cache.entries.contains_key(&UserId(2)));
    assert!(cache.entries.contains_key(&UserId(100)));
    for id in 200..300 {
        cache.insert(
            UserId(id),
            None,
            0,
            now + Duration::from_millis(id as u64),
            TTL,
        );
        assert!(cache.len() <= 16);
    }
}

#[test]
fn the_clean_up_threshold_is_ten_thousand() {
    assert_eq!(CLEANUP_ABOVE, 10_000);
}

#[test]
fn a_notification_naming_a_user_evicts_that_user_and_anything_else_everyone() {
    assert_eq!(Change::of_payload(Some("42")), Change::One(UserId(42)));
    assert_eq!(Change::of_payload(Some("role:viewer")), Change::All);
    assert_eq!(Change::of_payload(Some("")), Change::All);
    assert_eq!(Change::of_payload(None), Change::All);
}
