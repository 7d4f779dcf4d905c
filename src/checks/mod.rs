//! Security checks: each check has a name and runs against configured targets only. The
//! runner runs every target of the selected checks concurrently, each under a timeout; a
//! target that fails, hangs or answers garbage becomes an "unreachable" finding, never a
//! crash. Checks never take a target from chat: only from `[checks.*]` in the config.

pub mod backups;
pub mod dsn;
pub mod http_fetch;
pub mod http_headers;
pub mod http_rules;
pub mod observatory;
pub mod postgres;
pub mod redis;
pub mod registry;
pub mod render;
pub mod report;
pub mod runner;
pub mod secrets;
pub mod store;
pub mod tls;
pub mod tls_answer;
pub mod tls_cert;
pub mod tls_chain;
pub mod tls_grades;
pub mod tls_hello;
pub mod tls_probe;
pub mod tls_suites;

use crate::domain::finding::Finding;
use async_trait::async_trait;

/// One kind of check (`http_headers`, `tls`, `postgres`, `redis`, `secrets`, `backups`).
#[async_trait]
pub trait Check: Send + Sync {
    /// The name operators type (`/check tls`).
    fn name(&self) -> &'static str;
    /// The configured targets, as shown in findings (never with passwords: use
    /// `Secret::fingerprint` or strip credentials from DSNs/URLs).
    fn targets(&self) -> Vec<String>;
    /// Check one target (an item of `targets()`). `Err` means the target could not be
    /// checked (refused, garbage, …): the runner turns it into an "unreachable" finding.
    async fn check(&self, target: &str) -> Result<Vec<Finding>, String>;
}
