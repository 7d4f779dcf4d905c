//! Fast tests of the authorizer around its cache (no database: the pool points at a port
//! nothing listens on, so any lookup that reaches it fails): fresh entries are served
//! without asking, stale ones are not, notifications evict and announce, and the
//! listener's pause reconnects unless shutting down.

use super::*;
use crate::storage::users::UserRecord;
use sqlx::postgres::PgPoolOptions;

fn authorizer(ttl: Duration) -> (Arc<Authorizer>, broadcast::Receiver<EngineEvent>) {
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("a lazy pool needs no server");
    let (events, rx) = broadcast::channel(8);
    let mut authz = Authorizer::new(pool, ttl, events);
    Arc::get_mut(&mut authz)
        .expect("sole owner")
        .reconnect_after = Duration::from_millis(10);
    (authz, rx)
}

fn principal(id: i64, active: bool) -> Arc<Principal> {
    Arc::new(Principal {
        user: UserRecord {
            id: UserId(id),
            display_name: format!("user {id}"),
            active,
            roles: vec!["viewer".into()],
        },
        permissions: Default::default(),
    })
}

fn cache_at(authz: &Authorizer, id: i64, at: Instant) {
    let mut cache = authz.cache.lock().unwrap();
    let generation = cache.generation();
    assert!(cache.insert(
        UserId(id),
        Some(principal(id, true)),
        generation,
        at,
        authz.ttl
    ));
}

#[tokio::test]
async fn a_fresh_entry_is_served_without_asking_the_database() {
    let (authz, _rx) = authorizer(Duration::from_secs(60));
    cache_at(&authz, 7, Instant::now());
    let got = authz
        .principal(UserId(7))
        .await
        .expect("served from the cache");
    assert_eq!(got.map(|p| p.user.id), Some(UserId(7)));
}

#[tokio::test]
async fn a_stale_entry_is_looked_up_again() {
    let ttl = Duration::from_secs(60);
    let (authz, _rx) = authorizer(ttl);
    let Some(long_ago) = Instant::now().checked_sub(ttl + Duration::from_secs(1)) else {
        return; // a clock this close to its origin cannot hold a stale entry
    };
    cache_at(&authz, 7, long_ago);
    assert!(
        authz.principal(UserId(7)).await.is_err(),
        "asked the (absent) database"
    );
}

#[tokio::test]
async fn a_notification_evicts_whom_it_names_and_announces_it() {
    let (authz, mut rx) = authorizer(Duration::from_secs(60));
    cache_at(&authz, 7, Instant::now());
    cache_at(&authz, 8, Instant::now());
    authz.apply(Change::One(UserId(7)));
    assert_eq!(
        rx.try_recv().unwrap(),
        EngineEvent::PermissionsChanged(UserId(7))
    );
    assert!(authz.principal(UserId(7)).await.is_err(), "7 was evicted");
    assert!(authz.principal(UserId(8)).await.is_ok(), "8 was kept");
    authz.apply(Change::All);
    assert_eq!(rx.try_recv().unwrap(), EngineEvent::AllPermissionsChanged);
    assert!(
        authz.principal(UserId(8)).await.is_err(),
        "everyone was evicted"
    );
}

#[tokio::test]
async fn evicting_directly_drops_the_entries() {
    let (authz, _rx) = authorizer(Duration::from_secs(60));
    cache_at(&authz, 7, Instant::now());
    cache_at(&authz, 8, Instant::now());
    authz.evict(UserId(7));
    assert!(authz.principal(UserId(7)).await.is_err());
    assert!(authz.principal(UserId(8)).await.is_ok());
    authz.evict_all();
    assert!(authz.principal(UserId(8)).await.is_err());
}

#[tokio::test]
async fn the_pause_reconnects_unless_shutting_down_and_forgets_the_cache() {
    let (authz, _rx) = authorizer(Duration::from_secs(60));
    let shutdown = CancellationToken::new();
    cache_at(&authz, 7, Instant::now());
    authz.listening.store(true, Ordering::Relaxed);
    assert!(authz.is_listening());
    assert!(!authz.pause(&shutdown).await, "a live process reconnects");
    assert!(!authz.is_listening());
    assert!(
        authz.principal(UserId(7)).await.is_err(),
        "the cache was dropped"
    );
    shutdown.cancel();
    assert!(
        authz.pause(&shutdown).await,
        "a shutdown stops the listener"
    );
}

#[test]
fn the_listener_waits_two_seconds_before_reconnecting() {
    assert_eq!(RECONNECT_AFTER, Duration::from_secs(2));
}

#[tokio::test]
async fn only_an_active_user_is_remembered_as_known() {
    let (authz, _rx) = authorizer(Duration::from_secs(60));
    assert!(!authz.was_known(UserId(7)));
    authz.remember(UserId(7), &Some(principal(7, true)));
    assert!(authz.was_known(UserId(7)));
    authz.remember(UserId(7), &Some(principal(7, false)));
    assert!(!authz.was_known(UserId(7)));
    authz.remember(UserId(8), &Some(principal(8, true)));
    authz.remember(UserId(8), &None);
    assert!(!authz.was_known(UserId(8)));
}

#[tokio::test]
async fn the_cached_count_is_what_the_cache_holds() {
    let (authz, _rx) = authorizer(Duration::from_secs(60));
    assert_eq!(authz.cached(), 0);
    for id in [7, 8, 9] {
        cache_at(&authz, id, Instant::now());
    }
    assert_eq!(authz.cached(), 3);
    authz.evict(UserId(8));
    assert_eq!(authz.cached(), 2);
}
