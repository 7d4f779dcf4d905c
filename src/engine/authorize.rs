//! Who may do what: principals loaded from PostgreSQL, cached for at most the configured
//! TTL, and evicted on every replica the moment a grant, revoke or user change commits
//! (PostgreSQL LISTEN/NOTIFY on `opsguard_authz`).

use super::EngineEvent;
use crate::domain::UserId;
use crate::storage::{self, StoreResult, users::Principal};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "opsguard_authz";
/// Cached principals at most, unless configured (`[authz] cache_max_users`).
pub const DEFAULT_CACHE_MAX: usize = 10_000;

type Entry = (Instant, Option<Arc<Principal>>);

pub struct Authorizer {
    pool: PgPool,
    ttl: Duration,
    cache: Mutex<HashMap<UserId, Entry>>,
    /// Entries the cache holds at most.
    cache_max: usize,
    /// Bumped by every eviction: a lookup that overlapped one may have read the state
    /// before the change, so it is not cached.
    generation: AtomicU64,
    listening: AtomicBool,
    /// Where change notifications are announced (transports refresh menus from it).
    events: broadcast::Sender<EngineEvent>,
    /// Users last resolved as active (never expires; strangers are removed on sight).
    known: Mutex<HashSet<UserId>>,
}

impl Authorizer {
    pub fn new(pool: PgPool, ttl: Duration, events: broadcast::Sender<EngineEvent>) -> Arc<Self> {
        Self::capped(pool, ttl, events, DEFAULT_CACHE_MAX)
    }

    /// As `new`, caching at most `cache_max` principals.
    pub fn capped(
        pool: PgPool,
        ttl: Duration,
        events: broadcast::Sender<EngineEvent>,
        cache_max: usize,
    ) -> Arc<Self> {
        Arc::new(Authorizer {
            pool,
            ttl,
            cache: Mutex::new(HashMap::new()),
            cache_max: cache_max.max(1),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            events,
            known: Mutex::new(HashSet::new()),
        })
    }

    /// Whether this replica last saw `user` as an active user. Used only to decide what to
    /// say when the database cannot be asked: a user is told it is down, a stranger is not.
    pub fn was_known(&self, user: UserId) -> bool {
        self.known.lock().expect("authz known").contains(&user)
    }

    /// The user and their permissions, or `None` for a stranger.
    pub async fn principal(&self, user: UserId) -> StoreResult<Option<Arc<Principal>>> {
        let cached = self.cache.lock().expect("authz cache").get(&user).cloned();
        if let Some((at, cached)) = cached
            && at.elapsed() < self.ttl
        {
            return Ok(cached);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let fresh = storage::users::principal_of(&self.pool, user)
            .await?
            .map(Arc::new);
        {
            let mut known = self.known.lock().expect("authz known");
            if fresh.as_ref().is_some_and(|p| p.user.active) {
                known.insert(user);
            } else {
                known.remove(&user);
            }
        }
        if !self.ttl.is_zero() {
            let mut cache = self.cache.lock().expect("authz cache");
            if self.generation.load(Ordering::SeqCst) == generation {
                // Strangers are cached too: many of them must not grow it without bound.
                if cache.len() >= self.cache_max && !cache.contains_key(&user) {
                    make_room(&mut cache, self.ttl, self.cache_max);
                }
                cache.insert(user, (Instant::now(), fresh.clone()));
            }
        }
        Ok(fresh)
    }

    /// Principals cached now.
    pub fn cached(&self) -> usize {
        self.cache.lock().expect("authz cache").len()
    }

    pub fn evict(&self, user: UserId) {
        let mut cache = self.cache.lock().expect("authz cache");
        self.generation.fetch_add(1, Ordering::SeqCst);
        cache.remove(&user);
    }

    pub fn evict_all(&self) {
        let mut cache = self.cache.lock().expect("authz cache");
        self.generation.fetch_add(1, Ordering::SeqCst);
        cache.clear();
    }

    /// Whether change notifications are being received (reported by `/status`).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Listen for authorization changes until `shutdown`; reconnects by itself. Whenever the
    /// connection is (re)established or lost the whole cache is dropped, since
    /// notifications may have been missed.
    pub fn spawn_listener(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let mut listener = match PgListener::connect_with(&this.pool).await {
                    Ok(mut l) => match l.listen(CHANNEL).await {
                        Ok(()) => l,
                        Err(e) => {
                            tracing::warn!(authz.error = %e, "authz.listen_failed");
                            if this.pause(&shutdown).await {
                                return;
                            }
                            continue;
                        }
                    },
                    Err(e) => {
                        tracing::warn!(authz.error = %e, "authz.listen_connect_failed");
                        if this.pause(&shutdown).await {
                            return;
                        }
                        continue;
                    }
                };
                this.evict_all();
                this.listening.store(true, Ordering::Relaxed);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        message = listener.try_recv() => match message {
                            Ok(Some(n)) => match n.payload().parse::<i64>() {
                                Ok(id) => {
                                    this.evict(UserId(id));
                                    let _ = this.events.send(EngineEvent::PermissionsChanged(UserId(id)));
                                }
                                Err(_) => {
                                    this.evict_all();
                                    let _ = this.events.send(EngineEvent::AllPermissionsChanged);
                                }
                            },
                            Ok(None) => {
                                // Connection lost and re-established: anything may have changed.
                                this.evict_all();
                                let _ = this.events.send(EngineEvent::AllPermissionsChanged);
                            }
                            Err(e) => {
                                tracing::warn!(authz.error = %e, "authz.listener_lost");
                                break;
                            }
                        }
                    }
                }
                this.listening.store(false, Ordering::Relaxed);
                this.evict_all();
                if this.pause(&shutdown).await {
                    return;
                }
            }
        })
    }

    /// Wait before reconnecting; true when shutting down.
    async fn pause(&self, shutdown: &CancellationToken) -> bool {
        self.listening.store(false, Ordering::Relaxed);
        self.evict_all();
        tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tokio::time::sleep(Duration::from_secs(2)) => false,
        }
    }
}

/// Room for one more entry in a full cache: the expired go, then (if that is not enough)
/// the oldest eighth, so a cache full of fresh entries is not scanned on every miss.
fn make_room(cache: &mut HashMap<UserId, Entry>, ttl: Duration, max: usize) {
    cache.retain(|_, (at, _)| at.elapsed() < ttl);
    if cache.len() < max {
        return;
    }
    let mut ages: Vec<Instant> = cache.values().map(|(at, _)| *at).collect();
    let cut = (ages.len() / 8).max(1) - 1;
    let (_, oldest_kept, _) = ages.select_nth_unstable(cut);
    let cutoff = *oldest_kept;
    cache.retain(|_, (at, _)| *at > cutoff);
}
