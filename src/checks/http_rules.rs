//! The HTTP header rules of `http_headers`, scored with the Mozilla HTTP Observatory's
//! published modifiers (httpobs/docs/scoring.md): start at 100, penalties apply always,
//! bonuses only when the score without them is 90 or more; the minimum is 0.

use crate::domain::finding::{Finding, Severity};
use reqwest::header::{HeaderMap, HeaderName};

pub const OBSERVATORY: &str =
    "https://developer.mozilla.org/en-US/observatory/docs/tests_and_scoring";
/// Six months, the Observatory's minimum HSTS max-age.
pub const HSTS_MIN_AGE: u64 = 15_768_000;
const EVIDENCE_CHARS: usize = 200;

/// Findings and Observatory modifiers for one target.
pub struct Verdict {
    check: &'static str,
    target: String,
    pub findings: Vec<Finding>,
    /// (Observatory test name, modifier).
    pub modifiers: Vec<(&'static str, i32)>,
}

impl Verdict {
    pub fn new(check: &'static str, target: &str) -> Self {
        Verdict {
            check,
            target: target.into(),
            findings: Vec::new(),
            modifiers: Vec::new(),
        }
    }

    /// An Observatory result that is not a problem (or a bonus).
    pub fn note(&mut self, test: &'static str, modifier: i32) {
        self.modifiers.push((test, modifier));
    }

    /// A problem: an Observatory result and a finding.
    pub fn hit(
        &mut self,
        test: &'static str,
        modifier: i32,
        severity: Severity,
        title: String,
        evidence: String,
        fix: &str,
    ) {
        self.modifiers.push((test, modifier));
        self.findings.push(Finding {
            check: self.check.into(),
            target: self.target.clone(),
            severity,
            title,
            evidence,
            remediation: fix.into(),
            reference: format!("Mozilla HTTP Observatory, test {test}: {OBSERVATORY}"),
        });
    }

    /// The score and grade, and the info finding that reports them.
    pub fn finish(mut self) -> Vec<Finding> {
        let (score, grade) = score(&self.modifiers);
        let applied: Vec<String> = self
            .modifiers
            .iter()
            .filter(|(_, m)| *m != 0)
            .map(|(t, m)| format!("{m:+} {t}"))
            .collect();
        let evidence = format!(
            "score {score}, grade {grade}{}{}",
            if applied.is_empty() { "" } else { ": " },
            applied.join(", ")
        );
        self.hit(
            "score",
            0,
            Severity::Info,
            "HTTP Observatory score".into(),
            evidence,
            "Fix the findings above, worst first; bonuses count only from a score of 90.",
        );
        self.findings
    }
}

/// Observatory score (100 + penalties, + bonuses only from 90 up, at least 0) and grade.
pub fn score(modifiers: &[(&str, i32)]) -> (i32, &'static str) {
    let penalties: i32 = modifiers.iter().map(|(_, m)| *m).filter(|m| *m < 0).sum();
    let bonuses: i32 = modifiers.iter().map(|(_, m)| *m).filter(|m| *m > 0).sum();
    let base = 100 + penalties;
    let score = if base >= 90 { base + bonuses } else { base }.max(0);
    (score, grade(score))
}

pub fn grade(score: i32) -> &'static str {
    const GRADES: [(i32, &str); 12] = [
        (100, "A+"),
        (90, "A"),
        (85, "A-"),
        (80, "B+"),
        (70, "B"),
        (65, "B-"),
        (60, "C+"),
        (50, "C"),
        (45, "C-"),
        (40, "D+"),
        (30, "D"),
        (25, "D-"),
    ];
    GRADES
        .iter()
        .find(|(min, _)| score >= *min)
        .map(|(_, g)| *g)
        .unwrap_or("F")
}

/// Untrusted bytes as short, printable text: invalid UTF-8 and control characters are
/// replaced, and anything past 200 characters is cut (HTML is escaped when rendered).
pub fn cut(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let total = text.chars().count();
    let mut out: String = text
        .chars()
        .take(EVIDENCE_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if total > EVIDENCE_CHARS {
        out.push_str(&format!("… ({} bytes in all)", raw.len()));
    }
    out
}

/// The first value of a header, lowercase-trimmed for matching, and its raw bytes.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<(String, &'a [u8])> {
    let value = headers.get(HeaderName::from_bytes(name.as_bytes()).ok()?)?;
    Some((
        String::from_utf8_lossy(value.as_bytes())
            .trim()
            .to_ascii_lowercase(),
        value.as_bytes(),
    ))
}

/// The header rules (HSTS, CSP, framing, nosniff, Referrer-Policy); cookies are in
/// `http_headers::cookies`.
pub fn headers(v: &mut Verdict, headers: &HeaderMap) {
    match header(headers, "strict-transport-security") {
        None => v.hit("hsts-not-implemented", -20, Severity::High, "Strict-Transport-Security missing".into(), "no Strict-Transport-Security header".into(), "Send `Strict-Transport-Security: max-age=63072000; includeSubDomains` on every HTTPS response."),
        Some((value, raw)) => match value.split(';').find_map(|d| d.trim().strip_prefix("max-age=").map(|n| n.trim_matches('"').parse::<u64>())) {
            Some(Ok(age)) if age >= HSTS_MIN_AGE => v.note("hsts-implemented-max-age-at-least-six-months", 0),
            Some(Ok(_)) => v.hit("hsts-implemented-max-age-less-than-six-months", -10, Severity::Medium, "Strict-Transport-Security max-age under six months".into(), cut(raw), "Raise max-age to at least 15768000 (six months); 63072000 (two years) is the usual value."),
            _ => v.hit("hsts-header-invalid", -20, Severity::High, "Strict-Transport-Security invalid".into(), cut(raw), "Send a valid header: `Strict-Transport-Security: max-age=63072000; includeSubDomains`."),
        },
    }
    let csp = header(headers, "content-security-policy");
    let frame_ancestors = csp
        .as_ref()
        .is_some_and(|(value, _)| directive(value, "frame-ancestors").is_some());
    match &csp {
        None => v.hit("csp-not-implemented", -25, Severity::High, "Content-Security-Policy missing".into(), "no Content-Security-Policy header".into(), "Send a Content-Security-Policy, starting from `default-src 'self'; frame-ancestors 'none'; object-src 'none'` and loosening only what the site needs."),
        Some((value, raw)) => {
            let scripts = directive(value, "script-src").or_else(|| directive(value, "default-src"));
            match scripts {
                None => v.hit("csp-implemented-with-unsafe-inline", -20, Severity::Medium, "Content-Security-Policy does not restrict scripts".into(), cut(raw), "Add `default-src 'self'` (or a script-src) so that scripts are restricted."),
                Some(s) if s.contains(&"'unsafe-inline'") => v.hit("csp-implemented-with-unsafe-inline", -20, Severity::Medium, "Content-Security-Policy allows 'unsafe-inline' scripts".into(), cut(raw), "Remove 'unsafe-inline' from script-src; use nonces or hashes for inline scripts."),
                Some(s) if s.contains(&"'unsafe-eval'") => v.hit("csp-implemented-with-unsafe-eval", -10, Severity::Medium, "Content-Security-Policy allows 'unsafe-eval'".into(), cut(raw), "Remove 'unsafe-eval' from script-src."),
                Some(_) if directive(value, "default-src").is_some_and(|d| d == ["'none'"]) => v.note("csp-implemented-with-no-unsafe-default-src-none", 10),
                Some(_) => v.note("csp-implemented-with-no-unsafe", 5),
            }
        }
    }
    match header(headers, "x-frame-options") {
        _ if frame_ancestors => v.note("x-frame-options-implemented-via-csp", 5),
        Some((value, _)) if value == "deny" || value == "sameorigin" => v.note("x-frame-options-sameorigin-or-deny", 0),
        Some((value, _)) if value.starts_with("allow-from ") => v.note("x-frame-options-allow-from-origin", 0),
        Some((_, raw)) => v.hit("x-frame-options-header-invalid", -20, Severity::Medium, "X-Frame-Options invalid".into(), cut(raw), "Send `X-Frame-Options: DENY` (or SAMEORIGIN), or `frame-ancestors 'none'` in the CSP."),
        None => v.hit("x-frame-options-not-implemented", -20, Severity::Medium, "Clickjacking protection missing".into(), "neither X-Frame-Options nor CSP frame-ancestors".into(), "Send `X-Frame-Options: DENY`, or `frame-ancestors 'none'` in the Content-Security-Policy."),
    }
    match header(headers, "x-content-type-options") {
        Some((value, _)) if value == "nosniff" => v.note("x-content-type-options-nosniff", 0),
        Some((_, raw)) => v.hit(
            "x-content-type-options-header-invalid",
            -5,
            Severity::Low,
            "X-Content-Type-Options invalid".into(),
            cut(raw),
            "Send `X-Content-Type-Options: nosniff`.",
        ),
        None => v.hit(
            "x-content-type-options-not-implemented",
            -5,
            Severity::Low,
            "X-Content-Type-Options missing".into(),
            "no X-Content-Type-Options header".into(),
            "Send `X-Content-Type-Options: nosniff`.",
        ),
    }
    const PRIVATE: [&str; 4] = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ];
    const UNSAFE: [&str; 2] = ["unsafe-url", "no-referrer-when-downgrade"];
    let fix = "Send `Referrer-Policy: strict-origin-when-cross-origin` (or no-referrer).";
    match header(headers, "referrer-policy") {
        None => v.hit(
            "referrer-policy-not-implemented",
            0,
            Severity::Low,
            "Referrer-Policy missing".into(),
            "no Referrer-Policy header".into(),
            fix,
        ),
        // Browsers use the last policy they understand.
        Some((value, raw)) => match value
            .split(',')
            .map(str::trim)
            .rev()
            .find(|p| PRIVATE.contains(p) || UNSAFE.contains(p) || p.starts_with("origin"))
        {
            Some(p) if PRIVATE.contains(&p) => v.note("referrer-policy-private", 5),
            Some(p) if UNSAFE.contains(&p) => v.hit(
                "referrer-policy-unsafe",
                -5,
                Severity::Low,
                "Referrer-Policy leaks full URLs".into(),
                cut(raw),
                fix,
            ),
            Some(_) => v.note("referrer-policy-no-referrer-when-downgrade", 0),
            None => v.hit(
                "referrer-policy-header-invalid",
                -5,
                Severity::Low,
                "Referrer-Policy invalid".into(),
                cut(raw),
                fix,
            ),
        },
    }
}

/// The sources of a CSP directive, if present (`value` is lowercase).
fn directive<'a>(value: &'a str, name: &str) -> Option<Vec<&'a str>> {
    value.split(';').find_map(|d| {
        let mut words = d.split_whitespace();
        (words.next() == Some(name)).then(|| words.collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_follow_the_observatory_table_and_bonuses_need_90() {
        assert_eq!(score(&[("csp-not-implemented", -25), ("x", 5)]), (75, "B"));
        assert_eq!(
            score(&[
                ("referrer-policy-private", 5),
                ("csp-implemented-with-no-unsafe", 5)
            ]),
            (110, "A+")
        );
        assert_eq!(
            score(&[("a", -40), ("b", -30), ("c", -25), ("d", -20)]),
            (0, "F")
        );
        assert_eq!(
            (grade(89), grade(24), grade(25), grade(64)),
            ("A-", "F", "D-", "C+")
        );
    }

    #[test]
    fn cut_shortens_and_neutralises_untrusted_bytes() {
        let long = cut(&[b'a'; 5000]);
        assert!(long.chars().count() < 240 && long.ends_with("(5000 bytes in all)"));
        assert_eq!(cut(b"a\x01b\xff"), "a?b\u{fffd}");
    }
}
