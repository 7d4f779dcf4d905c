//! Identifiers parsed at the edge: Telegram user/chat ids, role names, opaque action ids.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Telegram user id: the only identity opsguard trusts (never the username).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserId(pub i64);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().parse::<i64>() {
            Ok(id) if id > 0 => Ok(UserId(id)),
            // Never echo the raw text: the error lands in the audit log, and a mistyped
            // argument may be a pasted secret.
            _ => Err("a user id is the numeric Telegram id (e.g. 123456789)".into()),
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Telegram chat id (negative for groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatId(pub i64);

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A role name: lowercase letters, digits and `_`, starting with a letter, at most 32 chars.
/// Whether the role exists is data (the `roles` table), checked when a command runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_ascii_lowercase();
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(RoleName(s))
        } else {
            Err("a role name is letters, digits and _ (e.g. viewer, operator, admin)".into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Opaque id of a server-side pending action (button callback data, approval request id).
/// It carries no meaning: everything it stands for lives in the `pending_actions` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActionId(String);

impl ActionId {
    /// 130 bits of randomness: for callback buttons, which are never typed.
    pub fn for_button() -> Self {
        Self::random(26)
    }
    /// 50 bits: an approval id an admin types (`/approve k3m9x2qa7p`); approvals also
    /// require the admin permission, so guessing one gains nothing.
    pub fn for_approval() -> Self {
        Self::random(10)
    }
    fn random(len: usize) -> Self {
        let mut rng = rand::rng();
        ActionId(
            (0..len)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect(),
        )
    }
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_ascii_lowercase();
        if (8..=32).contains(&s.len()) && s.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(ActionId(s))
        } else {
            Err("that is not a request id".into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_positive_integers() {
        assert_eq!(UserId::parse("42"), Ok(UserId(42)));
        assert!(UserId::parse("-5").is_err());
        assert!(UserId::parse("@alice").is_err());
        assert!(UserId::parse("").is_err());
    }

    #[test]
    fn role_names_are_whitelisted_characters() {
        assert_eq!(RoleName::parse("Admin").unwrap().as_str(), "admin");
        assert!(RoleName::parse("ad min").is_err());
        assert!(RoleName::parse("x'; drop table").is_err());
        assert!(RoleName::parse("1abc").is_err());
    }

    #[test]
    fn action_ids_round_trip_and_reject_junk() {
        let id = ActionId::for_button();
        assert_eq!(ActionId::parse(id.as_str()).unwrap(), id);
        assert!(ActionId::parse("short").is_err());
        assert!(ActionId::parse("<b>notanid</b>").is_err());
    }
}
