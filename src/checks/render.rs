//! Reports as Telegram HTML: the `/check` summary (counts, the worst findings with their
//! remediation, what changed) and the full list `/findings` shows. Every piece of finding
//! text is untrusted and escaped here; each tag opens and closes on one line.

use super::report::{Changes, counts};
use super::runner::Report;
use crate::domain::finding::{Finding, Severity};
use crate::domain::html::escape;

/// How many findings the summary shows.
pub const SUMMARY_FINDINGS: usize = 6;

pub fn counts_line(report: &Report) -> String {
    counts(report)
        .into_iter()
        .map(|(s, n)| format!("{} {n} {s}", s.icon()))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn finding(f: &Finding, full: bool) -> String {
    let mut text = format!(
        "{} <b>{}</b> — <code>{}</code> <i>({})</i>\n",
        f.severity.icon(),
        escape(&f.title),
        escape(&f.target),
        escape(&f.check)
    );
    if !f.evidence.is_empty() {
        text.push_str(&format!("Seen: <code>{}</code>\n", escape(&f.evidence)));
    }
    text.push_str(&format!("Fix: {}\n", escape(&f.remediation)));
    if full {
        text.push_str(&format!("Ref: {}\n", escape(&f.reference)));
    }
    text
}

/// The `/check` reply.
pub fn summary(selection: &str, report: &Report, changes: Option<&Changes<'_>>) -> String {
    let targets = report.checked.len();
    let mut text = format!(
        "<b>Check report</b> · {} · {targets} target(s)\n{}\n",
        escape(selection),
        counts_line(report)
    );
    if let Some(changes) = changes {
        text.push_str(&format!("Since the previous run: {}\n", changes.line()));
    }
    let problems: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .collect();
    if problems.is_empty() {
        text.push_str("\n✅ No problems found.\n");
    }
    for f in problems.iter().take(SUMMARY_FINDINGS) {
        text.push('\n');
        text.push_str(&finding(f, false));
    }
    // Scores and other facts, one line each.
    for f in report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Info)
    {
        text.push_str(&format!(
            "\nℹ️ {} — <code>{}</code>: {}",
            escape(&f.title),
            escape(&f.target),
            escape(&f.evidence)
        ));
    }
    let more = problems.len().saturating_sub(SUMMARY_FINDINGS);
    text.push_str(&format!(
        "\n\n{}Full list: /findings · as a file: <code>/check {} json</code> or <code>sarif</code>",
        if more > 0 {
            format!("…and {more} more. ")
        } else {
            String::new()
        },
        escape(selection)
    ));
    text
}

/// The `/findings` reply: every finding of a stored report.
pub fn full(selection: &str, when: &str, actor: &str, report: &Report) -> String {
    let mut text = format!(
        "<b>Last check report</b> · {} · {when} · by {}\n{} target(s) · {}\n",
        escape(selection),
        escape(actor),
        report.checked.len(),
        counts_line(report)
    );
    if report.findings.is_empty() {
        text.push_str("\n✅ No findings.\n");
    }
    for f in &report.findings {
        text.push('\n');
        text.push_str(&finding(f, true));
    }
    text
}

/// What a scheduled run pushes: only what changed since the previous run of the same
/// checks (new and worse findings with their fix, resolved ones by title).
pub fn changes(selection: &str, report: &Report, changes: &Changes<'_>) -> String {
    let mut text = format!(
        "<b>Check report</b> · {} · {}\n{}\n",
        escape(selection),
        escape(&changes.line()),
        counts_line(report)
    );
    for (label, list) in [("New", &changes.new), ("Worse", &changes.worse)] {
        for f in list.iter() {
            text.push_str(&format!("\n{label}: "));
            text.push_str(&finding(f, false));
        }
    }
    for f in &changes.resolved {
        text.push_str(&format!(
            "\n✅ Resolved: <b>{}</b> — <code>{}</code> <i>({})</i>\n",
            escape(&f.title),
            escape(&f.target),
            escape(&f.check)
        ));
    }
    text
}
