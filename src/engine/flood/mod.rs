//! Flood limits, checked before anything is written: sliding windows per sender, per chat
//! and for all strangers together, in Redis (shared by replicas) or in process memory while
//! Redis is unreachable. What a limit drops is only counted; one aggregate audit row per
//! subject and window reports the count (`report.rs`).

mod admit;
mod local;
mod report;

use crate::config::FloodSettings;
use crate::redis_link::RedisLink;
use local::Windows;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HIT: &str = include_str!("hit.lua");
const CLAIM: &str = include_str!("claim.lua");

/// Who a drop is counted against: one aggregate row per subject and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// `sender:<id>`, `user:<id>`, `chat:<id>` or `strangers`.
    pub subject: String,
    pub actor_id: Option<i64>,
    pub chat_id: Option<i64>,
    pub count: u64,
}

/// The subject a limit's drops are tallied under.
pub type Tally = Dropped;

impl Dropped {
    pub fn new(subject: &str, actor_id: Option<i64>, chat_id: Option<i64>) -> Self {
        Dropped {
            subject: subject.to_string(),
            actor_id,
            chat_id,
            count: 0,
        }
    }
}

/// One sliding window: at most `max` admitted hits per window under `key`.
#[derive(Debug, Clone)]
pub struct Limit {
    pub key: String,
    pub max: u32,
    pub tally: Tally,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    /// Dropped by the limit at this index (its subject's tally was counted).
    Dropped {
        by: usize,
    },
}

pub struct FloodGate {
    settings: FloodSettings,
    redis: Arc<RedisLink>,
    hit: redis::Script,
    claim: redis::Script,
    local: Mutex<Windows>,
}

impl FloodGate {
    pub fn new(settings: FloodSettings, redis: Arc<RedisLink>) -> Self {
        let window = Duration::from_secs(settings.window_secs);
        FloodGate {
            settings,
            redis,
            hit: redis::Script::new(HIT),
            claim: redis::Script::new(CLAIM),
            local: Mutex::new(Windows::new(window)),
        }
    }

    pub fn settings(&self) -> &FloodSettings {
        &self.settings
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.settings.window_secs)
    }

    /// The limits of one update: a user with a role has a generous window of their own;
    /// anyone else shares theirs with the group they write in and with every stranger.
    pub fn update_limits(
        &self,
        sender: Option<i64>,
        chat: i64,
        group: bool,
        known: bool,
    ) -> Vec<Limit> {
        let s = &self.settings;
        let mut limits = Vec::with_capacity(3);
        match sender {
            Some(id) if known => limits.push(Limit {
                key: format!("user:{id}"),
                max: s.user,
                tally: Tally::new(&format!("user:{id}"), Some(id), Some(chat)),
            }),
            Some(id) => limits.push(Limit {
                key: format!("sender:{id}"),
                max: s.stranger,
                tally: Tally::new(&format!("sender:{id}"), Some(id), Some(chat)),
            }),
            None => {}
        }
        if !known {
            if group || sender.is_none() {
                limits.push(Limit {
                    key: format!("chat:{chat}"),
                    max: s.chat,
                    tally: Tally::new(&format!("chat:{chat}"), None, Some(chat)),
                });
            }
            limits.push(Limit {
                key: "strangers".into(),
                max: s.strangers_total,
                tally: Tally::new("strangers", None, None),
            });
        }
        limits
    }

    /// The refusals one user with a role may be answered (and audited) per window; drops
    /// are tallied with the rest of the user's.
    pub fn refusal_limit(&self, user: i64, chat: i64) -> Limit {
        Limit {
            key: format!("refused:{user}"),
            max: self.settings.refused,
            tally: Tally::new(&format!("user:{user}"), Some(user), Some(chat)),
        }
    }

    /// Count one hit against `limits`, in Redis when it answers, else in this process.
    pub async fn hit(&self, limits: &[Limit]) -> Outcome {
        if limits.is_empty() {
            return Outcome::Allowed;
        }
        if let Some(mut conn) = self.redis.conn() {
            let mut call = self.hit.prepare_invoke();
            for limit in limits {
                call.key(self.redis.key(&format!("flood:rl:{}", limit.key)));
            }
            for limit in limits {
                call.key(
                    self.redis
                        .key(&format!("flood:dropped:{}", limit.tally.subject)),
                );
            }
            call.key(self.redis.key("flood:due"));
            call.arg(self.window().as_millis() as u64)
                .arg(rand::random::<u64>());
            for limit in limits {
                call.arg(limit.max)
                    .arg(&limit.tally.subject)
                    .arg(opt(limit.tally.actor_id))
                    .arg(opt(limit.tally.chat_id));
            }
            match call.invoke_async::<i64>(&mut conn).await {
                Ok(0) => {
                    self.redis.record_ok();
                    return Outcome::Allowed;
                }
                Ok(i) => {
                    self.redis.record_ok();
                    return Outcome::Dropped {
                        by: (i as usize).saturating_sub(1),
                    };
                }
                Err(e) => self.redis.record_error(&e.to_string()),
            }
        }
        self.local
            .lock()
            .expect("flood windows")
            .hit(limits, Instant::now())
    }

    /// Whether a stranger may be sent the neutral line now (then not again for
    /// `neutral_line_every_secs`, on any replica).
    pub async fn neutral_line_due(&self, user: i64) -> bool {
        let every = Duration::from_secs(self.settings.neutral_line_every_secs);
        if let Some(mut conn) = self.redis.conn() {
            let set: Result<Option<String>, _> = redis::cmd("SET")
                .arg(self.redis.key(&format!("flood:neutral:{user}")))
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(every.as_secs())
                .query_async(&mut conn)
                .await;
            match set {
                Ok(reply) => {
                    self.redis.record_ok();
                    return reply.is_some();
                }
                Err(e) => self.redis.record_error(&e.to_string()),
            }
        }
        self.local
            .lock()
            .expect("flood windows")
            .neutral_due(user, every, Instant::now())
    }

    /// The tallies whose window has ended: those this process kept, and those claimed from
    /// Redis. `all` also takes this process's open windows (at shutdown).
    pub async fn take_due(&self, all: bool) -> Vec<Dropped> {
        let mut due = self
            .local
            .lock()
            .expect("flood windows")
            .take_due(Instant::now(), all);
        if let Some(mut conn) = self.redis.conn() {
            let claimed: Result<Vec<String>, _> = self
                .claim
                .key(self.redis.key("flood:due"))
                .arg(self.redis.key("flood:dropped:"))
                .invoke_async(&mut conn)
                .await;
            match claimed {
                Ok(flat) => {
                    self.redis.record_ok();
                    due.extend(flat.chunks_exact(4).filter_map(|c| {
                        Some(Dropped {
                            subject: c[0].clone(),
                            count: c[1].parse().ok()?,
                            actor_id: c[2].parse().ok(),
                            chat_id: c[3].parse().ok(),
                        })
                    }));
                }
                Err(e) => self.redis.record_error(&e.to_string()),
            }
        }
        due
    }
}

fn opt(id: Option<i64>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}
