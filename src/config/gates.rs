//! Gate settings (`[gates]`, `[gates.commands.<name>]`): how long confirmations, step-ups and
//! approvals last, TOTP lockouts and enrolments, and which gates each sensitive command needs.

use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Deserialize)]
pub struct GateSettings {
    pub confirm_ttl_secs: i64,
    pub stepup_ttl_secs: i64,
    pub approval_ttl_secs: i64,
    pub totp_max_failures: i32,
    /// The first lockout; each further one (without a good code between) doubles it.
    pub totp_lockout_secs: i64,
    /// The longest lockout (24 h by default).
    #[serde(default = "day")]
    pub totp_lockout_max_secs: i64,
    /// An unconfirmed enrolment (and the message showing its URI) lasts this long.
    #[serde(default = "enrol_ttl")]
    pub totp_enrol_ttl_secs: i64,
    /// How often expired enrolments and pending actions are swept.
    #[serde(default = "sweep_every")]
    pub sweep_interval_ms: u64,
    /// Expired pending actions are deleted this long after they expired.
    #[serde(default = "hour")]
    pub pending_keep_secs: i64,
    /// Per command name; a sensitive command without an entry asks for confirmation only.
    #[serde(default)]
    pub commands: HashMap<String, GatePolicy>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct GatePolicy {
    #[serde(default = "yes")]
    pub confirm: bool,
    /// A second admin must approve every run.
    #[serde(default)]
    pub approval: bool,
    /// A second admin must approve when the command's role argument is one of these.
    #[serde(default)]
    pub approval_for_roles: Vec<String>,
    /// A TOTP code is required (step-up).
    #[serde(default)]
    pub stepup: bool,
}

fn yes() -> bool {
    true
}
fn day() -> i64 {
    86_400
}
fn enrol_ttl() -> i64 {
    540
}
fn sweep_every() -> u64 {
    15_000
}
fn hour() -> i64 {
    3_600
}
