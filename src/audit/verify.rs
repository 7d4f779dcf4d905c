//! `audit verify`: the chain walk (links, keyed hashes, continuity, nothing past the head)
//! plus every signed checkpoint it can read — from the checkpoint storage and any lines
//! given by hand — each of which vouches for one row's hash and for the chain's switch to
//! keyed hashes. `opsguard audit verify` walks every row (`verify_all`); `/audit verify` in
//! chat walks from the last verified checkpoint (`verify_recent`), so it answers in the time
//! the rows since then take, whatever the log's size. A walk that finds the chain intact
//! marks the newest checkpoint it covered as verified (`checkpoint::mark_verified`).

use super::checkpoint::{self, Checkpoint};
use super::keys::AuditKeys;
use crate::backups::storage::Storage;
use crate::config::Settings;
use crate::storage::audit::{self, Anchor, ChainBreak, VerifyError, VerifyReport};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::str::FromStr;

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
    /// Whether a master key was at hand (so checkpoints could be checked).
    pub keyed: bool,
    /// The newest checkpoint is older than its schedule allows (two fire times missed):
    /// checkpoints may be suppressed, and rows since it are vouched for by nothing.
    pub stale: bool,
    /// The verified checkpoint the walk started from (`None`: from row 1).
    pub from: Option<Checkpoint>,
}

impl FullReport {
    pub fn intact(&self) -> bool {
        self.chain.broken.is_none() && self.bad_checkpoints.is_empty()
    }

    /// Whether anything from outside the database vouched for the chain. With a master key
    /// and no checkpoint checked, a cut tail or a re-hash without the key would not show:
    /// `opsguard audit verify` exits 3 then, not 0.
    pub fn anchored(&self) -> bool {
        !self.keyed || (self.checkpoints > 0 && !self.stale)
    }

    /// The mark a chat reply starts with.
    pub fn mark(&self) -> &'static str {
        match (self.intact(), self.anchored()) {
            (false, _) => "❌",
            (true, false) => "⚠️",
            (true, true) => "✅",
        }
    }

    /// The verdict as plain lines (the bot escapes them).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let walked = match &self.from {
            Some(c) => format!(
                "rows {}–{} verified from {}, which an earlier walk verified",
                self.chain.from_seq,
                self.chain.head_seq,
                c.describe()
            ),
            None => format!("{} rows verified", self.chain.rows),
        };
        match &self.chain.broken {
            None => out.push(format!(
                "Audit chain intact: {walked}{}",
                match self.chain.keyed_from {
                    Some(k) => format!(" (keyed from row {k})"),
                    None => " (not keyed)".into(),
                }
            )),
            Some(b) => {
                out.push(format!("Audit chain BROKEN at row {}: {}", b.seq, b.reason));
                if self.from.is_some() {
                    out.push(format!("Walked: {walked}"));
                }
            }
        }
        if self.from.is_some() {
            out.push(format!(
                "Rows before row {}: `opsguard audit verify` walks every row",
                self.chain.from_seq
            ));
        }
        match &self.newest {
            Some(c) => out.push(format!(
                "{} signed checkpoint(s) checked; newest: {}{}",
                self.checkpoints,
                c.describe(),
                if self.stale {
                    " — STALE: the schedule has written none since (suppressed?), so later rows are vouched for by nothing"
                } else {
                    ""
                }
            )),
            None if self.keyed => out.push(
                "NO signed checkpoint checked: a cut tail or a re-hash without the key would not show"
                    .into(),
            ),
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

/// Verify the whole chain against every checkpoint in storage and the given `lines`.
pub async fn verify_all(
    pool: &PgPool,
    settings: &Settings,
    keys: Option<&AuditKeys>,
    lines: &[String],
) -> Result<FullReport, VerifyError> {
    let found = gather(settings, keys, lines).await;
    finish(pool, settings, keys, found, None).await
}

/// Verify the rows since the last verified checkpoint (the whole chain when there is none),
/// against every checkpoint in storage.
pub async fn verify_recent(
    pool: &PgPool,
    settings: &Settings,
    keys: Option<&AuditKeys>,
) -> Result<FullReport, VerifyError> {
    let mut found = gather(settings, keys, &[]).await;
    let mut from = None;
    if let (Some(storage), Some(keys)) = (&found.storage, keys) {
        match checkpoint::last_verified(storage, &keys.verifying_key()).await {
            Ok((last, bad)) => {
                from = last;
                found.bad.extend(bad);
            }
            Err(e) => found
                .warnings
                .push(format!("verified checkpoints not read: {e}")),
        }
    }
    finish(pool, settings, keys, found, from).await
}

/// The checkpoints at hand: valid ones, and those that are not (named with why).
struct Found {
    good: Vec<Checkpoint>,
    bad: Vec<String>,
    warnings: Vec<String>,
    storage: Option<Storage>,
}

async fn gather(settings: &Settings, keys: Option<&AuditKeys>, lines: &[String]) -> Found {
    let mut found = Found {
        good: Vec::new(),
        bad: Vec::new(),
        warnings: Vec::new(),
        storage: None,
    };
    let Some(keys) = keys else {
        found.warnings.push(
            "OPSGUARD_MASTER_KEY is not set: the chain is not keyed and no checkpoint can be checked"
                .to_string(),
        );
        return found;
    };
    let verifying = keys.verifying_key();
    match checkpoint::storage(settings) {
        Err(e) => found.warnings.push(format!("checkpoints not read: {e}")),
        Ok(storage) => {
            match checkpoint::read_all(&storage, &verifying).await {
                Err(e) => found.warnings.push(format!("checkpoints not read: {e}")),
                Ok(read) => {
                    for (name, parsed) in read {
                        match parsed {
                            Ok(c) => found.good.push(c),
                            Err(e) => found.bad.push(format!("{}: {e}", storage.describe(&name))),
                        }
                    }
                }
            }
            found.storage = Some(storage);
        }
    }
    for (i, line) in lines.iter().enumerate() {
        match Checkpoint::parse(line, &verifying) {
            Ok(c) => found.good.push(c),
            Err(e) => found.bad.push(format!("given line {}: {e}", i + 1)),
        }
    }
    found
}

/// Walk the chain (from `from`'s row, or row 1) against the checkpoints found; when it is
/// intact, mark the newest checkpoint the walk covered as verified.
async fn finish(
    pool: &PgPool,
    settings: &Settings,
    keys: Option<&AuditKeys>,
    found: Found,
    from: Option<Checkpoint>,
) -> Result<FullReport, VerifyError> {
    let Found {
        good,
        bad,
        mut warnings,
        storage,
    } = found;
    let anchors: Vec<Anchor> = good
        .iter()
        .chain(&from)
        .map(|c| Anchor {
            seq: c.seq,
            row_hash: c.head.clone(),
            source: c.describe(),
        })
        .collect();
    let start = from.as_ref().map(|c| c.seq);
    let mut chain =
        audit::verify_against(pool, keys.map(AuditKeys::chain), &anchors, start).await?;
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
    let newest = good.iter().max_by_key(|c| c.at).cloned();
    let cron = &settings.audit.checkpoint_cron;
    let stale = match (&newest, cron.trim().is_empty()) {
        (Some(c), false) => missed_twice(cron, c.at, chrono::Utc::now()),
        _ => false,
    };
    let covered = good
        .iter()
        .filter(|c| c.seq >= chain.from_seq && c.seq <= chain.head_seq)
        .max_by_key(|c| (c.seq, c.at));
    if let (None, true, Some(storage), Some(keys), Some(c)) =
        (&chain.broken, bad.is_empty(), &storage, keys, covered)
        && let Err(e) = checkpoint::mark_verified(storage, keys, c).await
    {
        warnings.push(format!("the verified checkpoint was not recorded: {e}"));
    }
    Ok(FullReport {
        chain,
        checkpoints: good.len(),
        newest,
        bad_checkpoints: bad,
        warnings,
        keyed: keys.is_some(),
        stale,
        from,
    })
}

/// Whether `cron` fired at least twice after `newest` and by `now` (one fire may still be in
/// flight; two missed mean the scheduled checkpoints stopped).
fn missed_twice(cron: &str, newest: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    cron::Schedule::from_str(cron).is_ok_and(|schedule| {
        schedule
            .after(&newest)
            .take_while(|t| *t <= now)
            .take(2)
            .count()
            == 2
    })
}

#[cfg(test)]
mod tests {
    use super::missed_twice;
    use chrono::{DateTime, Utc};

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().into()
    }

    #[test]
    fn a_checkpoint_is_stale_once_its_schedule_fired_twice_since() {
        let hourly = "0 0 * * * *";
        let newest = at("2026-12-06T03:00:00Z");
        for (now, stale) in [
            ("2026-12-06T03:59:59Z", false),
            ("2026-12-06T04:30:00Z", false), // 04:00 may still be running
            ("2026-12-06T04:59:59Z", false),
            ("2026-12-06T05:00:00Z", true), // 04:00 and 05:00 both missed
            ("2026-12-07T00:00:00Z", true),
        ] {
            assert_eq!(missed_twice(hourly, newest, at(now)), stale, "{now}");
        }
    }
}
