//! The Observatory's `content-security-policy` test: the effective policy of the CSP headers
//! and `<meta>` tags judged for scripts (`script-src`, else `default-src`), objects and styles,
//! with nonces/hashes making 'unsafe-inline' moot and 'strict-dynamic' dropping host and
//! scheme sources, as CSP3 browsers do.

use super::csp_parse::{self, Parsed, Policy};
use super::exchange::Exchange;
use std::collections::BTreeSet;

const BROAD: [&str; 8] = [
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
];
const INLINE: [&str; 2] = ["'unsafe-inline'", "data:"];
const PASSIVE: [&str; 2] = ["img-src", "media-src"];
const NONCE_HASH: [&str; 4] = ["'sha256-", "'sha384-", "'sha512-", "'nonce-"];

/// The test's result, and the effective policy when one was found.
pub struct Csp {
    pub result: &'static str,
    /// The merged policy (headers and meta), when the test got that far.
    pub policy: Option<Policy>,
    /// The header and meta policies as received, for evidence.
    pub raw: Vec<String>,
}

fn broad(s: &str) -> bool {
    BROAD.contains(&s)
}

fn broad_or_inline(s: &str) -> bool {
    broad(s) || INLINE.contains(&s)
}

fn nonce_or_hash(list: &BTreeSet<String>) -> bool {
    list.iter()
        .any(|s| NONCE_HASH.iter().any(|p| s.starts_with(p)))
}

/// Split header values into policies: a comma separates policies (RFC 9110, CSP3 §2.2).
fn split(values: &[&str]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .collect()
}

/// Which directive stands for a fetch kind: its own, else `default-src`, else none (`*`).
fn key_for(policy: &Policy, name: &str) -> Option<String> {
    [name, "default-src"]
        .into_iter()
        .find(|k| policy.contains_key(*k))
        .map(str::to_string)
}

pub fn test(ex: &Exchange, meta: &[String]) -> Csp {
    let http = split(&ex.auto.all("content-security-policy"));
    let equiv = split(&meta.iter().map(String::as_str).collect::<Vec<_>>());
    let raw: Vec<String> = http.iter().chain(&equiv).cloned().collect();
    let fail = |result| Csp {
        result,
        policy: None,
        raw: raw.clone(),
    };
    let Ok(Parsed {
        policy: mut csp,
        duplicate_warnings,
    }) = csp_parse::parse(&raw)
    else {
        return fail("csp-header-invalid");
    };
    let header_only = csp_parse::parse(&http).unwrap_or_default();
    let meta_only = csp_parse::parse_meta(&equiv).unwrap_or_default();
    if header_only.size() + meta_only.size() == 0 {
        return if ex
            .auto
            .first("content-security-policy-report-only")
            .is_some_and(|v| !v.is_empty())
        {
            fail("csp-not-implemented-but-reporting-enabled")
        } else {
            fail("csp-not-implemented")
        };
    }
    let star = || BTreeSet::from(["*".to_string()]);
    let script_key = key_for(&csp, "script-src");
    let style_key = key_for(&csp, "style-src");
    let mut own_script = star();
    let mut own_style = star();
    // Nonces or hashes make 'unsafe-inline' ignored (CSP3); a shared default-src changes once.
    for key in [&script_key, &style_key] {
        let list = match key {
            Some(k) => csp.get_mut(k).expect("key_for found it"),
            None if std::ptr::eq(key, &script_key) => &mut own_script,
            None => &mut own_style,
        };
        if nonce_or_hash(list) {
            list.remove("'unsafe-inline'");
        }
    }
    let mut result: Option<&'static str> = None;
    {
        let script = match &script_key {
            Some(k) => csp.get_mut(k).expect("key_for found it"),
            None => &mut own_script,
        };
        if nonce_or_hash(script) && script.contains("'strict-dynamic'") {
            script.retain(|s| {
                !(BROAD.iter().any(|b| s.starts_with(b)) || s == "'self'" || s == "'unsafe-inline'")
            });
        } else if script.contains("'strict-dynamic'") {
            result = Some("csp-header-invalid");
        }
    }
    let get = |key: &Option<String>, own: &BTreeSet<String>| -> BTreeSet<String> {
        key.as_ref().map_or_else(|| own.clone(), |k| csp[k].clone())
    };
    let script = get(&script_key, &own_script);
    let style = get(&style_key, &own_style);
    let object = csp
        .get("object-src")
        .or_else(|| csp.get("default-src"))
        .cloned()
        .unwrap_or_else(star);
    let mut active: Vec<&String> = csp
        .iter()
        .filter(|(d, _)| !PASSIVE.contains(&d.as_str()) && *d != "script-src")
        .flat_map(|(_, s)| s.iter())
        .collect();
    active.extend(script.iter());
    let passive: Vec<&String> = PASSIVE
        .iter()
        .flat_map(|d| csp.get(*d).or_else(|| csp.get("default-src")))
        .flatten()
        .collect();
    let https = ex.session_url.scheme() == "https";
    let insecure = |s: &&String| s.starts_with("http:") || s.starts_with("ftp:");
    let mut set = |r: &'static str| {
        result.get_or_insert(r);
    };
    if script.iter().any(|s| broad_or_inline(s)) || object.iter().any(|s| broad(s)) {
        set("csp-implemented-with-unsafe-inline");
    }
    if https && active.iter().any(insecure) {
        set("csp-implemented-with-insecure-scheme");
    }
    if script.contains("'unsafe-eval'") || style.contains("'unsafe-eval'") {
        set("csp-implemented-with-unsafe-eval");
    }
    if https && passive.iter().any(insecure) {
        set("csp-implemented-with-insecure-scheme-in-passive-content-only");
    }
    if style.iter().any(|s| broad_or_inline(s)) {
        set("csp-implemented-with-unsafe-inline-in-style-src-only");
    }
    let none_only = csp
        .get("default-src")
        .is_some_and(|d| d.len() == 1 && d.contains("'none'"));
    set(if none_only {
        "csp-implemented-with-no-unsafe-default-src-none"
    } else {
        "csp-implemented-with-no-unsafe"
    });
    let mut result = result.expect("set above");
    let passed = [
        "csp-implemented-with-no-unsafe",
        "csp-implemented-with-no-unsafe-default-src-none",
        "csp-implemented-with-unsafe-inline-in-style-src-only",
        "csp-implemented-with-insecure-scheme-in-passive-content-only",
    ];
    if passed.contains(&result) && !duplicate_warnings.is_empty() {
        result = "csp-implemented-but-duplicate-directives";
    }
    Csp {
        result,
        policy: Some(csp),
        raw,
    }
}
