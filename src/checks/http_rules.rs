//! The findings of `http_headers`: one per Observatory result that is a problem (its
//! severity, title and fix from `observatory::table`), cookie findings per cookie, and the
//! score finding. Evidence is what the site sent, cut short and never a cookie's value.

use super::observatory::cookies::{self, Cookie};
use super::observatory::exchange::Exchange;
use super::observatory::{Outcome, score, table};
use crate::domain::finding::{Finding, Severity};

pub const OBSERVATORY: &str =
    "https://developer.mozilla.org/en-US/observatory/docs/tests_and_scoring";
const EVIDENCE_CHARS: usize = 200;
const CHECK: &str = "http_headers";

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

pub fn finding(
    target: &str,
    severity: Severity,
    title: String,
    evidence: String,
    fix: &str,
    test: &str,
) -> Finding {
    Finding {
        check: CHECK.into(),
        target: target.into(),
        severity,
        title,
        evidence,
        remediation: fix.into(),
        reference: format!("MDN HTTP Observatory, {test}: {OBSERVATORY}"),
    }
}

/// The header values behind a test's result, for evidence.
fn evidence(ex: &Exchange, o: &Outcome, meta_csp: &[String], cert: Option<&str>) -> String {
    let values = |name: &str| {
        let v = ex.auto.all(name);
        if v.is_empty() {
            format!("no {name} header")
        } else {
            cut(v.join(", ").as_bytes())
        }
    };
    match o.test {
        "content-security-policy" => {
            let mut all: Vec<String> = ex
                .auto
                .all("content-security-policy")
                .iter()
                .map(|s| s.to_string())
                .collect();
            all.extend(meta_csp.iter().map(|m| format!("<meta> {m}")));
            if all.is_empty() {
                "no Content-Security-Policy header or <meta> tag".into()
            } else {
                cut(all.join(" | ").as_bytes())
            }
        }
        "strict-transport-security" => match (&ex.https, cert) {
            (None, _) => "the site does not answer over HTTPS".into(),
            (Some(_), Some(why)) if o.result == "hsts-invalid-cert" => cut(why.as_bytes()),
            (Some(r), _) => r.first("strict-transport-security").map_or_else(
                || "no Strict-Transport-Security header over HTTPS".into(),
                |v| cut(v.as_bytes()),
            ),
        },
        "redirection" => {
            let hops: Vec<String> = ex
                .http_redirects
                .iter()
                .map(|(u, s)| {
                    if *s == 0 {
                        u.to_string()
                    } else {
                        format!("{u} ({s})")
                    }
                })
                .collect();
            cut(hops.join(" → ").as_bytes())
        }
        "cross-origin-resource-sharing" => ex.cors.as_ref().map_or_else(String::new, |c| {
            cut(format!(
                "Access-Control-Allow-Origin: {} with Access-Control-Allow-Credentials: {}",
                c.first("access-control-allow-origin").unwrap_or(""),
                c.first("access-control-allow-credentials").unwrap_or("")
            )
            .as_bytes())
        }),
        "subresource-integrity" => "see the page's <script src> elements".into(),
        "referrer-policy" => values("referrer-policy"),
        other => values(other),
    }
}

/// Per-cookie findings; the cookie test's modifier is counted once, in the score.
fn cookie_findings(target: &str, ex: &Exchange, hsts: bool, out: &mut Vec<Finding>) {
    let fix =
        "Set Secure on every cookie, HttpOnly on session cookies, and SameSite=Lax or Strict.";
    for c in cookies::jar(&ex.cookies) {
        let name: String = c.name.chars().take(40).collect();
        let shown = describe(&c);
        let kind = if c.is_session() {
            "Session cookie"
        } else {
            "Cookie"
        };
        let mut add = |sev, title: String| {
            out.push(finding(target, sev, title, shown.clone(), fix, "cookies"))
        };
        if !c.secure {
            let sev = match (c.is_session(), hsts) {
                (true, false) => Severity::High,
                (true, true) | (false, false) => Severity::Medium,
                (false, true) => Severity::Low,
            };
            add(sev, format!("{kind} '{name}' without Secure"));
        }
        if c.is_session() && !c.http_only {
            add(
                Severity::High,
                format!("Session cookie '{name}' without HttpOnly"),
            );
        }
        if c.same_site.as_deref() == Some("none") && !c.secure {
            add(
                Severity::Medium,
                format!("Cookie '{name}' with SameSite=None but no Secure"),
            );
        }
    }
}

fn describe(c: &Cookie) -> String {
    let mut flags = vec![format!("Path={}", c.path)];
    if c.secure {
        flags.push("Secure".into());
    }
    if c.http_only {
        flags.push("HttpOnly".into());
    }
    if let Some(s) = &c.same_site {
        flags.push(format!("SameSite={s}"));
    }
    cut(format!("Set-Cookie: {}=…; {}", c.name, flags.join("; ")).as_bytes())
}

/// Every finding of a graded site, the score finding last.
pub fn findings(
    target: &str,
    ex: &Exchange,
    outcomes: &[Outcome],
    meta_csp: &[String],
    cert: Option<&str>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let hsts = outcomes.iter().any(|o| {
        o.test == "strict-transport-security"
            && [
                "hsts-implemented-max-age-at-least-six-months",
                "hsts-preloaded",
            ]
            .contains(&o.result.as_str())
    });
    for o in outcomes {
        if o.test == "cookies" {
            cookie_findings(target, ex, hsts, &mut out);
            if (o.result == "cookies-samesite-flag-invalid"
                || o.result == "cookies-anticsrf-without-samesite-flag")
                && let Some((_, _, Some((sev, title, fix)))) = table::row(&o.result)
            {
                out.push(finding(
                    target,
                    *sev,
                    title.to_string(),
                    values_of_cookies(ex),
                    fix,
                    &format!("test cookies, result {}", o.result),
                ));
            }
            continue;
        }
        if let Some((_, _, Some((sev, title, fix)))) = table::row(&o.result) {
            let reference = format!("test {}, result {}", o.test, o.result);
            out.push(finding(
                target,
                *sev,
                title.to_string(),
                evidence(ex, o, meta_csp, cert),
                fix,
                &reference,
            ));
        }
    }
    let (points, grade) = score(outcomes);
    let applied: Vec<String> = outcomes
        .iter()
        .filter(|o| o.modifier != 0)
        .map(|o| format!("{:+} {}", o.modifier, o.result))
        .collect();
    let evidence = format!(
        "score {points}, grade {grade}{}{}",
        if applied.is_empty() { "" } else { ": " },
        applied.join(", ")
    );
    out.push(finding(
        target,
        table::SCORE_SEVERITY,
        "HTTP Observatory score".into(),
        evidence,
        "Fix the findings above, worst first; bonuses count only from a score of 90.",
        "scoring",
    ));
    out
}

/// The cookie names and attribute names sent (never values), for cookie-wide findings.
fn values_of_cookies(ex: &Exchange) -> String {
    let shown: Vec<String> = ex
        .cookies
        .iter()
        .map(|(_, raw)| {
            let mut parts = raw.split(';');
            let name = parts
                .next()
                .unwrap_or("")
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let attrs: Vec<String> = parts
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .map(|p| {
                    if p.to_lowercase().starts_with("samesite") {
                        p
                    } else {
                        p.split('=').next().unwrap_or("").to_string()
                    }
                })
                .collect();
            format!("{name}=…; {}", attrs.join("; "))
        })
        .collect();
    cut(shown.join(" | ").as_bytes())
}
