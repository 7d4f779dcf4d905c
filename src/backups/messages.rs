//! What operators read about backups: the progress message as it is edited, the result, the
//! failure alert and catalogue lines. Untrusted text (errors, names) is escaped here.

use super::catalogue::Backup;
use super::jobs::Job;
use crate::domain::html::escape;

/// `1.5 MiB`, `312 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `42s`, `3m 05s`.
pub fn elapsed(secs: u64) -> String {
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m {:02}s", secs / 60, secs % 60)
    }
}

/// (bytes dumped, bytes stored, compression ratio) of a catalogued backup.
fn sizes(b: &Backup) -> (u64, u64, f64) {
    let dump = b.dump_bytes.unwrap_or(0).max(0) as u64;
    let stored = b.stored_bytes.unwrap_or(0).max(0) as u64;
    let ratio = if stored > 0 {
        dump as f64 / stored as f64
    } else {
        0.0
    };
    (dump, stored, ratio)
}

fn what(job: &Job) -> String {
    match job.backup_id {
        Some(b) => format!(
            "Restore test #{} of backup #{b} ({})",
            job.id,
            escape(&job.target)
        ),
        None => format!("Backup job #{} of <b>{}</b>", job.id, escape(&job.target)),
    }
}

pub fn queued(job: &Job) -> String {
    format!("⏳ {}: queued.", what(job))
}

/// The progress line: bytes so far, rate, elapsed.
pub fn progress(job: &Job, stage: &str, read: u64, stored: u64, secs: f64) -> String {
    let rate = if secs > 0.0 { read as f64 / secs } else { 0.0 };
    let stored = if stored > 0 {
        format!(" → {} stored", bytes(stored))
    } else {
        String::new()
    };
    format!(
        "⏳ {}: {stage}\n{} read{stored} · {}/s · {}",
        what(job),
        bytes(read),
        bytes(rate as u64),
        elapsed(secs as u64)
    )
}

pub fn backup_done(job: &Job, b: &Backup, location: &str, tables: usize) -> String {
    let (dump, stored, ratio) = sizes(b);
    format!(
        "✅ {}: backup #{} is good.\n{} dumped → {} stored (ratio {ratio:.1}×) in {}\n{tables} tables counted · sha256 <code>{}</code>\nat <code>{}</code>",
        what(job),
        b.id,
        bytes(dump),
        bytes(stored),
        elapsed(b.seconds().unwrap_or(0).max(0) as u64),
        escape(b.sha256.as_deref().unwrap_or("")),
        escape(location),
    )
}

pub fn restore_done(job: &Job, tables: usize, rows: i64, secs: u64) -> String {
    format!(
        "✅ {}: restored into a scratch database and checked: checksum matches, {tables} tables and {rows} rows as catalogued, in {}. The scratch database was dropped.",
        what(job),
        elapsed(secs)
    )
}

/// A job cut by shutdown, back in the queue.
pub fn handed_back(job: &Job) -> String {
    format!(
        "⏳ {}: handed back to the queue (a replica shut down); another replica resumes it.",
        what(job)
    )
}

pub fn failed(job: &Job, error: &str) -> String {
    format!("❌ {} failed: {}", what(job), escape(error))
}

/// The alert pushed to `[backups] alert_chats`.
pub fn alert(job: &Job, error: &str) -> String {
    format!(
        "🚨 <b>{} failed</b>\n{}\nrequested by {}",
        what(job),
        escape(error),
        escape(&job.requester())
    )
}

/// One catalogue line for `/backups`.
pub fn line(b: &Backup) -> String {
    let mut text = format!(
        "<b>#{}</b> {} · {} · {}",
        b.id,
        escape(&b.target),
        b.status,
        b.started_at.format("%Y-%m-%d %H:%M UTC")
    );
    if b.status == "good" {
        let (_, stored, ratio) = sizes(b);
        text.push_str(&format!(
            "\n  {} ({ratio:.1}×) in {} · sha256 <code>{}</code>",
            bytes(stored),
            elapsed(b.seconds().unwrap_or(0).max(0) as u64),
            b.sha256
                .as_deref()
                .map(|s| &s[..16.min(s.len())])
                .unwrap_or("")
        ));
        text.push_str(&match (b.verified_ok, b.verified_at) {
            (Some(true), Some(at)) => format!("\n  restore test ✅ {}", at.format("%Y-%m-%d")),
            (Some(false), Some(at)) => format!(
                "\n  restore test ❌ {}: {}",
                at.format("%Y-%m-%d"),
                escape(b.verify_error.as_deref().unwrap_or(""))
            ),
            _ => "\n  not restore-tested yet".to_string(),
        });
    } else if let Some(error) = &b.error {
        text.push_str(&format!("\n  {}", escape(error)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_spans_read_well() {
        assert_eq!(bytes(312), "312 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(elapsed(42), "42s");
        assert_eq!(elapsed(185), "3m 05s");
    }
}
