//! What a Redis stream entry must carry to be ingested: the same proof as the HTTP path,
//! since whoever can write to Redis is not thereby a trusted service. Either
//! - `hmac`: the hex HMAC-SHA256 of the `event` field's exact bytes under the ingest key
//!   (optionally `kid`, the key's id; without one the current, then the previous key is
//!   tried); the sender is recorded as `stream`. It binds the proof to the event, so
//!   someone who reads the stream can replay an entry, never alter one; or
//! - `token`: a service JWT as the HTTP API takes it (`events:write`); the sender is its
//!   `sub`. A token read from the stream can sign other events until it expires: prefer
//!   the HMAC.
//!
//! An entry with neither, or a proof that does not verify, is dead-lettered with a reason
//! starting `unauthenticated:`.

use super::jwt;
use super::keys::Keys;
use std::collections::HashMap;

/// The sender recorded for HMAC-signed entries.
pub const HMAC_SENDER: &str = "stream";
/// Every reason for an unauthenticated entry starts with this.
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// An entry's proof fields.
#[derive(Debug, Default, Clone)]
pub struct Proof {
    pub hmac: Option<Vec<u8>>,
    pub kid: Option<Vec<u8>>,
    pub token: Option<Vec<u8>>,
}

/// Checks the entries of one batch; a token seen twice in a batch is verified once.
pub struct Checker<'a> {
    keys: Option<Keys<'a>>,
    issuer: &'a str,
    tokens: HashMap<Vec<u8>, Result<String, String>>,
}

impl<'a> Checker<'a> {
    pub fn new(keys: Option<Keys<'a>>, issuer: &'a str) -> Self {
        Checker {
            keys,
            issuer,
            tokens: HashMap::new(),
        }
    }

    /// The sender of an authentic entry, or why it is refused (`unauthenticated: …`).
    pub fn check(&mut self, event: &[u8], proof: &Proof) -> Result<String, String> {
        let refuse = |why: &str| format!("{UNAUTHENTICATED}: {why}");
        let Some(keys) = self.keys else {
            return Err(refuse("no ingest key is configured"));
        };
        if let Some(hmac) = &proof.hmac {
            let kid = match proof.kid.as_deref().map(std::str::from_utf8) {
                None => None,
                Some(Ok(kid)) => Some(kid),
                Some(Err(_)) => return Err(refuse("the kid is not text")),
            };
            return keys
                .verify_hmac(event, hmac, kid)
                .map(|()| HMAC_SENDER.to_string())
                .map_err(|e| refuse(&e.to_string()));
        }
        if let Some(token) = &proof.token {
            let issuer = self.issuer;
            return self
                .tokens
                .entry(token.clone())
                .or_insert_with(|| {
                    let token = std::str::from_utf8(token).unwrap_or_default().trim();
                    jwt::verify(token, &keys, issuer).map_err(|e| refuse(&e.to_string()))
                })
                .clone();
        }
        Err(refuse(
            "the entry carries neither an 'hmac' nor a 'token' field",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::Secret;

    #[test]
    fn only_a_proof_under_an_ingest_key_admits_an_entry() {
        let key = Secret::new("i".repeat(32));
        let mut checker = Checker::new(Some(Keys::new(&key, None)), "iss");
        let event = br#"{"account":"bob"}"#;
        let signed = Proof {
            hmac: Some(Keys::sign(&key, event).into_bytes()),
            ..Proof::default()
        };
        assert_eq!(checker.check(event, &signed), Ok("stream".into()));
        let altered = checker.check(br#"{"account":"eve"}"#, &signed).unwrap_err();
        assert_eq!(altered, "unauthenticated: bad hmac");
        let bare = checker.check(event, &Proof::default()).unwrap_err();
        assert!(bare.starts_with("unauthenticated: "), "{bare}");
        let token = jwt::issue("sso", std::time::Duration::from_secs(60), &key, "iss", 0);
        let expired = Proof {
            token: Some(token.unwrap().into_bytes()),
            ..Proof::default()
        };
        assert_eq!(
            checker.check(event, &expired),
            Err("unauthenticated: token expired".into())
        );
        let mut keyless = Checker::new(None, "iss");
        assert!(keyless.check(event, &signed).is_err());
    }
}
