//! Who may do what: principals loaded from PostgreSQL, cached for at most the configured
//! TTL, and evicted on every replica the moment a grant, revoke or user change commits
//! (PostgreSQL LISTEN/NOTIFY on `opsguard_authz`).

mod cache;

use super::EngineEvent;
use crate::domain::UserId;
use crate::storage::{self, StoreResult, users::Principal};
pub use cache::{Change, PrincipalCache, is_fresh};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "opsguard_authz";
/// Cached principals at most, unless configured (`[authz] cache_max_users`).
pub const DEFAULT_CACHE_MAX: usize = cache::CLEANUP_ABOVE;

/// How long the listener waits before connecting again after losing its connection.
pub const RECONNECT_AFTER: Duration = Duration::from_secs(2);

pub struct Authorizer {
    pool: PgPool,
    ttl: Duration,
    cache: Mutex<PrincipalCache>,
    listening: AtomicBool,
    reconnect_after: Duration,
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
            cache: Mutex::new(PrincipalCache::with_max(cache_max)),
            listening: AtomicBool::new(false),
            reconnect_after: RECONNECT_AFTER,
            events,
            known: Mutex::new(HashSet::new()),
        })
    }

    /// Principals cached now.
    pub fn cached(&self) -> usize {
        self.cache.lock().expect("authz cache").len()
    }

    /// Whether this replica last saw `user` as an active user. Used only to decide what to
    /// say when the database cannot be asked: a user is told it is down, a stranger is not.
    pub fn was_known(&self, user: UserId) -> bool {
        self.known.lock().expect("authz known").contains(&user)
    }

    /// The user and their permissions, or `None` for a stranger.
    pub async fn principal(&self, user: UserId) -> StoreResult<Option<Arc<Principal>>> {
        let (cached, generation) = {
            let cache = self.cache.lock().expect("authz cache");
            (
                cache.get(user, Instant::now(), self.ttl),
                cache.generation(),
            )
        };
        if let Some(cached) = cached {
            return Ok(cached);
        }
        let fresh = storage::users::principal_of(&self.pool, user)
            .await?
            .map(Arc::new);
        self.remember(user, &fresh);
        self.cache.lock().expect("authz cache").insert(
            user,
            fresh.clone(),
            generation,
            Instant::now(),
            self.ttl,
        );
        Ok(fresh)
    }

    /// Note whether `user` was just resolved as an active user (see [`Self::was_known`]).
    fn remember(&self, user: UserId, looked: &cache::Looked) {
        let mut known = self.known.lock().expect("authz known");
        if looked.as_ref().is_some_and(|p| p.user.active) {
            known.insert(user);
        } else {
            known.remove(&user);
        }
    }

    pub fn evict(&self, user: UserId) {
        self.cache.lock().expect("authz cache").evict(user);
    }

    pub fn evict_all(&self) {
        self.cache.lock().expect("authz cache").evict_all();
    }

    /// Apply a change notification: evict whom it names and announce it.
    fn apply(&self, change: Change) {
        let event = match change {
            Change::One(user) => {
                self.evict(user);
                EngineEvent::PermissionsChanged(user)
            }
            Change::All => {
                self.evict_all();
                EngineEvent::AllPermissionsChanged
            }
        };
        // No transport subscribed (the shell) is not an error.
        let _ = self.events.send(event);
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
                            // `None`: connection lost and re-established, anything may have
                            // changed.
                            Ok(n) => this.apply(Change::of_payload(n.as_ref().map(|n| n.payload()))),
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
            _ = tokio::time::sleep(self.reconnect_after) => false,
        }
    }
}

#[cfg(test)]
mod tests;
