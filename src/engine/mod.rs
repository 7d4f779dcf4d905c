//! The engine: the one road to every command. It owns the order of the steps
//! (parse → identify → chat → authorize → rate-limit → gate → audit attempt → execute →
//! audit outcome) and knows nothing of Telegram, the console or HTTP.

pub mod approval;
pub mod authorize;
mod exec;
pub mod flood;
mod forwarded;
mod gated;
pub mod gates;
pub mod health;
pub mod housekeeping;
mod pipeline;
pub mod ratelimit;
mod role_gates;
pub mod shell;
pub mod totp;
mod trail;

use crate::config::Settings;
use crate::domain::{Actor, Chat, UserId};
use crate::redis_link::RedisLink;
use crate::secrets::rotate::Rotations;
use crate::storage::audit_writer::AuditWriter;
use authorize::Authorizer;
use flood::FloodGate;
use health::Health;
use ratelimit::RateLimiter;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

pub use forwarded::FORWARDED_LINE;
pub use pipeline::NEUTRAL_LINE;

/// One request, from any transport.
#[derive(Debug, Clone)]
pub struct Request {
    /// Time-ordered (UUIDv7): the audit log's index on request ids is appended at its right
    /// edge, so its write cost does not grow with the log.
    pub id: Uuid,
    pub actor: Actor,
    pub chat: Chat,
    pub input: Input,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A typed line, e.g. `/grant 42 admin`.
    Text(String),
    /// The opaque data of a pressed inline button.
    Callback(String),
    /// A forwarded message's text: never run as a command (`forwarded.rs`).
    Forwarded(String),
}

impl Request {
    pub fn new(actor: Actor, chat: Chat, input: Input) -> Self {
        Request {
            id: Uuid::now_v7(),
            actor,
            chat,
            input,
        }
    }
}

/// Things transports may want to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// A user's roles changed (on any replica, or from a shell): refresh their menu.
    PermissionsChanged(UserId),
    /// Roles or permissions changed wholesale, or changes may have been missed.
    AllPermissionsChanged,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Whether PostgreSQL is known down: requests are refused at once meanwhile.
    latch: Arc<crate::storage::latch::DbLatch>,
    settings: Arc<Settings>,
    authz: Arc<Authorizer>,
    limiter: RateLimiter,
    /// Flood limits, checked before anything is written.
    flood: FloodGate,
    redis: Arc<RedisLink>,
    health: Health,
    events: broadcast::Sender<EngineEvent>,
    audit: AuditWriter,
    /// The audit chain and checkpoint keys (`None` without a master key).
    audit_keys: Option<crate::audit::AuditKeys>,
    /// The rotation runner, when the vault is open (secrets configured or stored).
    secrets: Option<Arc<Rotations>>,
}

impl Engine {
    pub fn new(
        pool: PgPool,
        settings: Arc<Settings>,
        redis: Arc<RedisLink>,
        secrets: Option<Arc<Rotations>>,
    ) -> Self {
        let limiter = RateLimiter::new(settings.rate_limits.clone(), redis.clone());
        let flood = FloodGate::new(settings.flood.clone(), redis.clone());
        let (events, _) = broadcast::channel(256);
        let authz = Authorizer::capped(
            pool.clone(),
            Duration::from_secs(settings.authz.cache_ttl_secs),
            events.clone(),
            settings.authz.cache_max_users,
        );
        let pool_for_audit = pool.clone();
        // A malformed master key stops start-up before this (startup::engine).
        let audit_keys = crate::audit::AuditKeys::from_master(settings.master_key.as_ref())
            .ok()
            .flatten();
        let chain_key = audit_keys.as_ref().map(|k| k.chain().clone());
        Engine {
            inner: Arc::new(Inner {
                latch: crate::storage::latch::DbLatch::new(pool.clone()),
                pool,
                settings,
                authz,
                limiter,
                flood,
                redis,
                health: Health::new(),
                events,
                audit: AuditWriter::spawn(pool_for_audit, chain_key),
                audit_keys,
                secrets,
            }),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }
    /// PostgreSQL's known-down latch (`storage::latch`).
    pub fn db_latch(&self) -> &Arc<crate::storage::latch::DbLatch> {
        &self.inner.latch
    }
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }
    pub fn authz(&self) -> &Arc<Authorizer> {
        &self.inner.authz
    }
    pub fn redis(&self) -> &Arc<RedisLink> {
        &self.inner.redis
    }
    /// The audit log's group-commit writer.
    pub fn audit(&self) -> &AuditWriter {
        &self.inner.audit
    }
    /// The audit keys derived from the master key (`None` without one).
    pub fn audit_keys(&self) -> Option<&crate::audit::AuditKeys> {
        self.inner.audit_keys.as_ref()
    }
    /// The rotation runner (`None` when no vault is open).
    pub fn secrets(&self) -> Option<Arc<Rotations>> {
        self.inner.secrets.clone()
    }
    pub fn health(&self) -> &Health {
        &self.inner.health
    }
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.events.subscribe()
    }
    fn emit(&self, event: EngineEvent) {
        let _ = self.inner.events.send(event);
    }

    /// The commands a user may run (their Telegram menu and `/help`).
    pub async fn allowed_commands(
        &self,
        user: UserId,
    ) -> Result<Vec<&'static crate::domain::CommandSpec>, sqlx::Error> {
        let Some(principal) = self.inner.authz.principal(user).await? else {
            return Ok(Vec::new());
        };
        if !principal.user.active {
            return Ok(Vec::new());
        }
        Ok(crate::domain::command::SPECS
            .iter()
            .filter(|s| principal.permissions.contains(s.permission.as_str()))
            .collect())
    }
}
