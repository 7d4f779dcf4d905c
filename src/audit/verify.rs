//! `audit verify` in full: the chain walk (links, keyed hashes, continuity, nothing past the
//! head) plus every signed checkpoint it can read — from the checkpoint storage and any lines
//! given by hand — each of which vouches for one row's hash and for the chain's switch to
//! keyed hashes. Shared by `opsguard audit verify` and `/audit verify`.

use super::checkpoint::{self, Checkpoint};
use super::keys::AuditKeys;
use crate::config::Settings;
use crate::storage::audit::{self, Anchor, ChainBreak, VerifyError, VerifyReport};
use sqlx::PgPool;

#[derive(Debug, Clone)]
pub struct FullReport {
    pub chain: VerifyReport,
    /// Valid checkpoints checked, and the newest of them.
    pub checkpoints: usize,
    pub newest: Option<Checkpoint>,
    /// Checkpoint objects or lines that are not validly signed (tampering outside the
    /// database, or another deployment's): each named with why.
    pub bad_checkpoints: Vec<String>,
    /// What weakens the verdict (no key, storage unreadable).
    pub warnings: Vec<String>,
}

impl FullReport {
    pub fn intact(&self) -> bool {
        self.chain.broken.is_none() && self.bad_checkpoints.is_empty()
    }

    /// The verdict as plain lines (the bot escapes them).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.chain.broken {
            None => out.push(format!(
                "Audit chain intact: {} rows verified{}",
                self.chain.rows,
                match self.chain.keyed_from {
                    Some(k) => format!(" (keyed from row {k})"),
                    None => " (not keyed)".into(),
                }
            )),
            Some(b) => out.push(format!("Audit chain BROKEN at row {}: {}", b.seq, b.reason)),
        }
        match &self.newest {
            Some(c) => out.push(format!(
                "{} signed checkpoint(s) checked; newest: {}",
                self.checkpoints,
                c.describe()
            )),
            None => out.push("no signed checkpoint checked".into()),
        }
        out.extend(
            self.bad_checkpoints
                .iter()
                .map(|b| format!("BAD CHECKPOINT {b}")),
        );
        out.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        out
    }
}

/// Verify the chain against every checkpoint in storage and the given `lines`.
pub async fn verify_all(
    pool: &PgPool,
    settings: &Settings,
    keys: Option<&AuditKeys>,
    lines: &[String],
) -> Result<FullReport, VerifyError> {
    let mut warnings = Vec::new();
    let mut bad = Vec::new();
    let mut good: Vec<Checkpoint> = Vec::new();
    match keys {
        None => warnings.push(
            "OPSGUARD_MASTER_KEY is not set: the chain is not keyed and no checkpoint can be checked"
                .to_string(),
        ),
        Some(keys) => {
            let verifying = keys.verifying_key();
            match checkpoint::storage(settings) {
                Err(e) => warnings.push(format!("checkpoints not read: {e}")),
                Ok(storage) => match checkpoint::read_all(&storage, &verifying).await {
                    Err(e) => warnings.push(format!("checkpoints not read: {e}")),
                    Ok(found) => {
                        for (name, parsed) in found {
                            match parsed {
                                Ok(c) => good.push(c),
                                Err(e) => bad.push(format!("{}: {e}", storage.describe(&name))),
                            }
                        }
                    }
                },
            }
            for (i, line) in lines.iter().enumerate() {
                match Checkpoint::parse(line, &verifying) {
                    Ok(c) => good.push(c),
                    Err(e) => bad.push(format!("given line {}: {e}", i + 1)),
                }
            }
        }
    }
    let anchors: Vec<Anchor> = good
        .iter()
        .map(|c| Anchor {
            seq: c.seq,
            row_hash: c.head.clone(),
            source: c.describe(),
        })
        .collect();
    let mut chain = audit::verify_against(pool, keys.map(AuditKeys::chain), &anchors).await?;
    // A checkpoint also vouches for where the keyed part began: a chain that claims to be
    // keyed later, or not at all, was re-hashed without the key.
    if let Some(c) = good
        .iter()
        .filter(|c| c.keyed_from.is_some() && c.keyed_from != chain.keyed_from)
        .min_by_key(|c| c.keyed_from)
    {
        let seq = c.keyed_from.unwrap_or_default();
        if chain.broken.as_ref().is_none_or(|b| b.seq > seq) {
            chain.broken = Some(ChainBreak {
                seq,
                reason: format!(
                    "{} says the chain is keyed from row {seq}; the database says {}: re-hashed without the key",
                    c.describe(),
                    chain
                        .keyed_from
                        .map_or("never".into(), |k| format!("from row {k}"))
                ),
            });
        }
    }
    let newest = good.iter().max_by_key(|c| (c.seq, c.at)).cloned();
    Ok(FullReport {
        chain,
        checkpoints: good.len(),
        newest,
        bad_checkpoints: bad,
        warnings,
    })
}
