//! Typed command arguments, parsed from raw words at the edge.

use crate::domain::ids::{RoleName, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditQuery {
    Latest(u32),
    Verify,
    /// Sign the chain head and write it outside the database.
    Checkpoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    pub user: UserId,
    pub role: RoleName,
}

/// A six-digit TOTP code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpCode(pub String);

impl TotpCode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(TotpCode(s.to_string()))
        } else {
            Err("a code is 6 digits".into())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotpAction {
    Status,
    /// Start an enrolment; replacing a confirmed authenticator needs its current code.
    Enroll(Option<TotpCode>),
    Confirm(TotpCode),
}

/// How `/check` answers: a summary message, or the report as a JSON or SARIF document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    Summary,
    Json,
    Sarif,
}

/// `/check [name|all] [json|sarif]`: `name` is `None` for all checks. The name is only
/// known to be well-formed here; the check registry decides whether it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    pub name: Option<String>,
    pub format: CheckFormat,
}

impl CheckRequest {
    pub(super) fn parse(args: &[&str]) -> Result<Self, String> {
        let format = |word: &str| match word.to_ascii_lowercase().as_str() {
            "json" => Some(CheckFormat::Json),
            "sarif" => Some(CheckFormat::Sarif),
            _ => None,
        };
        let (name, format) = match args {
            [] => (None, CheckFormat::Summary),
            [one] => match format(one) {
                Some(f) => (None, f),
                None => (Some(*one), CheckFormat::Summary),
            },
            [name, f] => (
                Some(*name),
                format(f).ok_or("the format is 'json' or 'sarif'")?,
            ),
            _ => return Err("expected at most a check name and a format".into()),
        };
        let name = match name.map(|n| n.to_ascii_lowercase()) {
            None => None,
            Some(n) if n == "all" => None,
            Some(n) => Some(check_name(&n)?),
        };
        Ok(CheckRequest { name, format })
    }

    pub fn args(&self) -> String {
        let name = self.name.as_deref().unwrap_or("all");
        match self.format {
            CheckFormat::Summary => name.to_string(),
            CheckFormat::Json => format!("{name} json"),
            CheckFormat::Sarif => format!("{name} sarif"),
        }
    }
}

/// A check name is a short word; an address is refused here, before anything runs:
/// checks reach only the targets in the configuration, never one typed in chat.
fn check_name(name: &str) -> Result<String, String> {
    if name.contains([':', '/', '.', '@']) {
        return Err("checks run only against the configured targets; give a check name (or 'all'), not an address".into());
    }
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(name.to_string())
    } else {
        Err("a check name is a word like 'http_headers', or 'all'".into())
    }
}
