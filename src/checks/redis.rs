//! `redis`: access control of each configured Redis: the default user without a password,
//! protected-mode, bind address, users allowed every command or dangerous ones, and
//! requirepass mixed with ACL users. URLs are secrets: targets show `host:port` only; a
//! refused CONFIG or ACL becomes an info finding saying what could not be read.

use super::Check;
use super::dsn::scrub;
use crate::config::RedisTargets;
use crate::domain::finding::{Finding, Severity};
use crate::domain::secret::Secret;
use async_trait::async_trait;

const REFERENCE: &str = "Redis security documentation (ACL, protected mode); CIS Redis Benchmark";
const DANGEROUS: [&str; 5] = ["flushall", "flushdb", "config", "debug", "keys"];

pub struct Redis {
    /// (shown target, URL)
    urls: Vec<(String, Secret)>,
}

impl Redis {
    pub fn new(settings: &RedisTargets) -> Self {
        let mut urls: Vec<(String, Secret)> = Vec::new();
        for (i, url) in settings.urls.iter().enumerate() {
            let mut shown = display(url.expose())
                .unwrap_or_else(|| format!("redis URL #{} (unparseable)", i + 1));
            if urls.iter().any(|(s, _)| *s == shown) {
                shown = format!("{shown} #{}", i + 1);
            }
            urls.push((shown, url.clone()));
        }
        Redis { urls }
    }
}

/// `host:port` of a redis:// or rediss:// URL, never its user or password.
pub fn display(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !["redis", "rediss"].contains(&scheme) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    let shown: String = hostport.chars().take(100).collect();
    Some(
        if shown
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            shown
        } else {
            format!("{shown}:6379")
        },
    )
}

#[async_trait]
impl Check for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn targets(&self) -> Vec<String> {
        self.urls.iter().map(|(shown, _)| shown.clone()).collect()
    }

    async fn check(&self, target: &str) -> Result<Vec<Finding>, String> {
        let (_, url) = self
            .urls
            .iter()
            .find(|(s, _)| s == target)
            .ok_or("unknown target")?;
        let client = redis::Client::open(url.expose())
            .map_err(|_| "the Redis URL cannot be parsed".to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("connection failed: {}", scrub(&e.to_string(), url.expose())))?;
        let finding = |severity, title: &str, evidence: String, remediation: &str| {
            Finding::new(
                "redis",
                target,
                severity,
                title,
                evidence,
                remediation,
                REFERENCE,
            )
        };
        let mut found = Vec::new();
        let config: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("protected-mode")
            .arg("bind")
            .arg("requirepass")
            .query_async(&mut conn)
            .await;
        let config = match config {
            Ok(pairs) => Some(
                pairs
                    .chunks(2)
                    .filter(|p| p.len() == 2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect::<Vec<_>>(),
            ),
            Err(e) => {
                let why = refusal_code(&e);
                found.push(finding(Severity::Info, "CONFIG could not be read", format!("CONFIG GET refused ({why}): protected-mode, bind and requirepass not checked"), "Allow the check user +config|get, or review redis.conf by hand."));
                None
            }
        };
        let get = |name: &str| {
            config
                .as_ref()
                .and_then(|c| c.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
        };
        if get("protected-mode").as_deref() == Some("no") {
            found.push(finding(Severity::Medium, "Protected mode disabled", "protected-mode = no".into(), "Set protected-mode yes unless every user has a password and the bind address is private."));
        }
        if let Some(bind) = get("bind") {
            let all = bind.split_whitespace().any(|a| {
                ["0.0.0.0", "*", "::", "-::*", "::*"].contains(&a.trim_start_matches('-'))
            }) || bind.trim().is_empty();
            if all {
                found.push(finding(
                    Severity::Medium,
                    "Listening on every interface",
                    format!("bind = {}", bind.chars().take(100).collect::<String>()),
                    "Bind Redis to private or loopback addresses only.",
                ));
            }
        }
        let acl: Result<Vec<String>, _> =
            redis::cmd("ACL").arg("LIST").query_async(&mut conn).await;
        let users = match acl {
            Ok(lines) => lines,
            Err(e) => {
                let why = refusal_code(&e);
                found.push(finding(
                    Severity::Info,
                    "ACL could not be read",
                    format!("ACL LIST refused ({why}): users and their permissions not checked"),
                    "Allow the check user +acl|list, or review the ACL file by hand.",
                ));
                return Ok(found);
            }
        };
        for line in &users {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let (Some(&"user"), Some(name)) = (tokens.first(), tokens.get(1)) else {
                continue;
            };
            if !tokens.contains(&"on") {
                continue;
            }
            let name: String = name.chars().take(64).collect();
            let rules = |t: &&&str| t.starts_with(['+', '-']);
            let shown: String = tokens
                .iter()
                .filter(rules)
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(150)
                .collect();
            if name == "default" && tokens.contains(&"nopass") {
                found.push(finding(Severity::Critical, "Default user has no password", "user default on nopass".into(), "Give the default user a password (or disable it: ACL SETUSER default off) and use named users."));
            }
            if tokens.contains(&"+@all") {
                found.push(finding(Severity::High, "User allowed every command (+@all)", format!("user {name}: {shown}"), "Grant only the command categories the user needs (e.g. +@read +@write -@dangerous)."));
            } else {
                let risky: Vec<&str> = DANGEROUS
                    .iter()
                    .copied()
                    .filter(|c| {
                        tokens.iter().any(|t| {
                            t.eq_ignore_ascii_case(&format!("+{c}"))
                                || t.starts_with(&format!("+{c}|"))
                        })
                    })
                    .collect();
                let categories = tokens
                    .iter()
                    .any(|t| ["+@dangerous", "+@admin"].contains(t));
                if !risky.is_empty() || categories {
                    found.push(finding(Severity::Medium, "User allowed dangerous commands", format!("user {name}: {shown}"), "Remove FLUSHALL, FLUSHDB, CONFIG, DEBUG and KEYS (-@dangerous) from application users."));
                }
            }
        }
        let named = users
            .iter()
            .filter(|l| !l.starts_with("user default "))
            .count();
        if get("requirepass").is_some_and(|p| !p.is_empty()) && named > 0 {
            found.push(finding(Severity::Low, "requirepass set alongside ACL users", format!("requirepass is set and {named} ACL user(s) exist"), "Use ACL users only: drop requirepass and give the default user its own password or disable it."));
        }
        Ok(found)
    }
}

/// The server's error code for a refused command (e.g. `NOPERM`), never its message.
fn refusal_code(e: &redis::RedisError) -> String {
    e.code().unwrap_or("error").chars().take(30).collect()
}
