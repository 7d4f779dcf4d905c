//! Reports as documents (JSON, SARIF 2.1.0 for code-scanning tools) and the comparison of
//! a run with the previous run of the same checks (new, worse, resolved).

use super::runner::Report;
use crate::domain::finding::{Finding, Severity};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Counts per severity, worst first.
pub fn counts(report: &Report) -> Vec<(Severity, usize)> {
    Severity::ALL
        .iter()
        .map(|s| {
            (
                *s,
                report.findings.iter().filter(|f| f.severity == *s).count(),
            )
        })
        .collect()
}

pub fn json(run_id: i64, selection: &str, report: &Report) -> Value {
    let counts: serde_json::Map<String, Value> = counts(report)
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    json!({
        "tool": "opsguard",
        "run_id": run_id,
        "selection": selection,
        "counts": counts,
        "checked": report.checked.iter().map(|(c, t)| json!({ "check": c, "target": t })).collect::<Vec<_>>(),
        "findings": report.findings,
    })
}

/// A stable rule id: the check and the title, without names that vary (cookie names).
pub fn rule_id(f: &Finding) -> String {
    let title = match f.title.find('\'') {
        Some(at) => format!(
            "{} {}",
            &f.title[..at],
            f.title.rsplit('\'').next().unwrap_or("")
        ),
        None => f.title.clone(),
    };
    let slug: Vec<String> = title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{}/{}", f.check, slug.join("-"))
}

pub fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// A finding's target as a valid URI reference (SARIF `artifactLocation.uri`): a URL stays
/// as it is; `host:port[/db]` gets its check's scheme (`tls://`, `postgres://`, `redis://`);
/// anything else becomes `opsguard://<check>/<target, %-encoded>`.
pub fn artifact_uri(f: &Finding) -> String {
    use reqwest::Url;
    if f.target.contains("://")
        && let Ok(url) = Url::parse(&f.target)
    {
        return url.into();
    }
    if ["tls", "postgres", "redis"].contains(&f.check.as_str())
        && let Ok(url) = Url::parse(&format!("{}://{}", f.check, f.target))
    {
        return url.into();
    }
    let mut url = Url::parse("opsguard://check/").expect("a valid base");
    let _ = url
        .set_host(Some(&f.check))
        .or_else(|_| url.set_host(Some("check")));
    url.set_path(&f.target);
    url.into()
}

pub fn sarif(report: &Report) -> Value {
    let mut rules: BTreeMap<String, Value> = BTreeMap::new();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let id = rule_id(f);
            rules.entry(id.clone()).or_insert_with(|| {
                json!({
                    "id": id,
                    "shortDescription": { "text": f.title },
                    "help": { "text": format!("{} ({})", f.remediation, f.reference) },
                    "properties": { "check": f.check, "severity": f.severity },
                })
            });
            json!({
                "ruleId": id,
                "level": sarif_level(f.severity),
                "message": { "text": format!("{}: {}. Fix: {}", f.title, f.evidence, f.remediation) },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": artifact_uri(f) } } }],
                "properties": { "severity": f.severity, "reference": f.reference },
            })
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "opsguard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.into_values().collect::<Vec<_>>(),
            } },
            "results": results,
        }],
    })
}

/// What changed since the previous run of the same checks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes<'a> {
    pub new: Vec<&'a Finding>,
    /// Findings whose severity rose.
    pub worse: Vec<&'a Finding>,
    pub resolved: Vec<&'a Finding>,
}

impl Changes<'_> {
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.worse.is_empty() && self.resolved.is_empty()
    }

    /// "2 new · 1 resolved", or "no change".
    pub fn line(&self) -> String {
        let parts: Vec<String> = [
            (self.new.len(), "new"),
            (self.worse.len(), "worse"),
            (self.resolved.len(), "resolved"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
        if parts.is_empty() {
            "no change".into()
        } else {
            parts.join(" · ")
        }
    }
}

/// Compare by finding identity (check, target, title); info findings (scores) are left out.
pub fn compare<'a>(previous: &'a Report, current: &'a Report) -> Changes<'a> {
    let key = |f: &'a Finding| f.key();
    let before: HashMap<_, &Finding> = previous
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .map(|f| (key(f), f))
        .collect();
    let now: HashMap<_, &Finding> = current
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .map(|f| (key(f), f))
        .collect();
    let mut changes = Changes::default();
    for f in current
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
    {
        match before.get(&key(f)) {
            None => changes.new.push(f),
            Some(old) if old.severity < f.severity => changes.worse.push(f),
            Some(_) => {}
        }
    }
    changes.resolved = previous
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info && !now.contains_key(&key(f)))
        .collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(title: &str, severity: Severity) -> Finding {
        Finding {
            check: "c".into(),
            target: "t".into(),
            severity,
            title: title.into(),
            evidence: String::new(),
            remediation: String::new(),
            reference: String::new(),
        }
    }

    #[test]
    fn compare_finds_new_worse_and_resolved() {
        let before = Report {
            findings: vec![finding("a", Severity::Low), finding("b", Severity::High)],
            checked: vec![],
        };
        let after = Report {
            findings: vec![finding("a", Severity::High), finding("c", Severity::Medium)],
            checked: vec![],
        };
        let changes = compare(&before, &after);
        assert_eq!(changes.line(), "1 new · 1 worse · 1 resolved");
        assert!(compare(&after, &after).is_empty());
    }

    #[test]
    fn rule_ids_leave_out_quoted_names() {
        assert_eq!(
            rule_id(&finding("Cookie 'sid' without Secure", Severity::High)),
            "c/cookie-without-secure"
        );
        assert_eq!(sarif_level(Severity::Medium), "warning");
    }

    #[test]
    fn artifact_uris_are_valid_uri_references() {
        let at = |check: &str, target: &str| {
            let mut f = finding("x", Severity::Low);
            f.check = check.into();
            f.target = target.into();
            artifact_uri(&f)
        };
        // Expected values written by hand from RFC 3986's grammar.
        assert_eq!(
            at("http_headers", "https://app.example/login?a=b"),
            "https://app.example/login?a=b"
        );
        assert_eq!(at("tls", "localhost:8443"), "tls://localhost:8443");
        assert_eq!(
            at("postgres", "127.0.0.1:5432/app"),
            "postgres://127.0.0.1:5432/app"
        );
        assert_eq!(at("redis", "[::1]:6379"), "redis://[::1]:6379");
        assert_eq!(
            at("secrets", "secrets vault"),
            "opsguard://secrets/secrets%20vault"
        );
        assert_eq!(
            at("backups", "main db #1"),
            "opsguard://backups/main%20db%20%231"
        );
        assert_eq!(
            at("tls", "not a host:port"),
            "opsguard://tls/not%20a%20host:port"
        );
    }
}
