//! Content-Security-Policy parsing as the HTTP Observatory does it: several policies (headers,
//! comma-joined values, `<meta>` tags) merged into one effective policy where a source
//! counts only when every policy that names the directive allows it, duplicated directives
//! rejected (except `report-uri`/`report-to`, which only warn), empty `*-src` meaning 'none'.

use std::collections::{BTreeMap, BTreeSet};

/// Directive → its sources (lowercase).
pub type Policy = BTreeMap<String, BTreeSet<String>>;

/// A parsed policy, and the directives that were repeated harmlessly.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    pub policy: Policy,
    pub duplicate_warnings: BTreeSet<String>,
}

impl Parsed {
    /// Directives, counting the duplicate warning as the Observatory does (as one entry).
    pub fn size(&self) -> usize {
        self.policy.len() + usize::from(!self.duplicate_warnings.is_empty())
    }
}

/// Why a set of policies is invalid.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    /// A policy shorter than the shortest useful one (`img-src`, less a character).
    TooShort(String),
    /// A directive given twice in one policy.
    Duplicate(String),
    /// A source with a broken %-escape where paths are compared.
    BadEscape(String),
}

/// Directives a `<meta>` policy may not carry.
const NOT_IN_META: [&str; 3] = ["frame-ancestors", "report-uri", "sandbox"];
const MAY_REPEAT: [&str; 2] = ["report-uri", "report-to"];
const SHORTEST: usize = "img-src".len() - 1;

#[derive(Debug, Clone)]
struct Source {
    text: String,
    policy: usize,
    keep: bool,
}

/// Parse `<meta>` policies: as `parse`, without the directives meta tags cannot set.
pub fn parse_meta(policies: &[String]) -> Result<Parsed, Invalid> {
    let mut parsed = parse(policies)?;
    for name in NOT_IN_META {
        parsed.policy.remove(name);
    }
    Ok(parsed)
}

/// Parse and merge policies (each one policy string, commas already split off).
pub fn parse(policies: &[String]) -> Result<Parsed, Invalid> {
    let clean: Vec<String> = policies
        .iter()
        .map(|p| p.replace(['\r', '\n'], "").trim().to_string())
        .collect();
    if let Some(short) = clean.iter().find(|p| p.len() < SHORTEST) {
        return Err(Invalid::TooShort(short.clone()));
    }
    let mut merged: BTreeMap<String, Vec<Source>> = BTreeMap::new();
    let mut warnings = BTreeSet::new();
    for (index, policy) in clean.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for entry in policy.split(';') {
            let mut words = entry.split_whitespace();
            let Some(name) = words.next() else { continue };
            let name = name.to_lowercase();
            if !seen.insert(name.clone()) {
                if MAY_REPEAT.contains(&name.as_str()) {
                    warnings.insert(name.clone());
                } else {
                    return Err(Invalid::Duplicate(name));
                }
            }
            let keep = index == 0;
            let mut values: Vec<Source> = words
                .map(|w| Source {
                    text: w.to_lowercase(),
                    policy: index,
                    keep,
                })
                .collect();
            if values.is_empty() && name.ends_with("-src") {
                values.push(Source {
                    text: "'none'".into(),
                    policy: index,
                    keep,
                });
            }
            let mut combined = if index == 0 {
                values
            } else {
                let mut earlier = merged.get(&name).cloned().unwrap_or_default();
                earlier.extend(values);
                earlier
            };
            combined.sort_by(|a, b| a.text.cmp(&b.text));
            for i in 1..combined.len() {
                let (prev, this) = (&combined[i - 1], &combined[i]);
                let same_policy = prev.policy == this.policy;
                let longer = same_policy && this.text.starts_with(&prev.text);
                let in_both = !same_policy && path_part_match(&prev.text, &this.text)?;
                if longer {
                    combined[i].keep = false;
                }
                if in_both {
                    combined[i].keep = true;
                }
            }
            let mut kept: Vec<Source> = combined.into_iter().filter(|s| s.keep).collect();
            // After the first policy, a source survives only if a later one allows it too.
            if index == 0 && policies.len() > 1 {
                kept.iter_mut().for_each(|s| s.keep = false);
            }
            merged.insert(name, kept);
        }
    }
    let policy = merged
        .into_iter()
        .map(|(name, sources)| {
            let set: BTreeSet<String> = if sources.is_empty() {
                BTreeSet::from(["'none'".to_string()])
            } else {
                sources.into_iter().map(|s| s.text).collect()
            };
            (name, set)
        })
        .collect();
    Ok(Parsed {
        policy,
        duplicate_warnings: warnings,
    })
}

/// Whether source `a` covers source `b` path segment by path segment (a trailing `/` on
/// `a` matches any longer path).
fn path_part_match(a: &str, b: &str) -> Result<bool, Invalid> {
    if a.is_empty() || (a == "/" && b.is_empty()) {
        return Ok(true);
    }
    let exact = !a.ends_with('/');
    let mut left: Vec<&str> = a.split('/').collect();
    let right: Vec<&str> = b.split('/').collect();
    if left.len() > right.len() || (exact && left.len() != right.len()) {
        return Ok(false);
    }
    if !exact {
        left.pop();
    }
    for (x, y) in left.iter().zip(&right) {
        if decode(x)? != decode(y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `decodeURIComponent`: %-escapes to UTF-8; a broken escape is an error.
fn decode(part: &str) -> Result<String, Invalid> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = part
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Invalid::BadEscape(part.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Invalid::BadEscape(part.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[&str]) -> Result<Parsed, Invalid> {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn several_policies_keep_only_what_each_allows() {
        let parsed = p(&[
            "default-src 'self' https://a.example/js/; img-src *",
            "default-src https://a.example/js/app.js",
        ])
        .unwrap();
        assert_eq!(
            parsed.policy["default-src"],
            BTreeSet::from(["https://a.example/js/app.js".to_string()])
        );
        assert_eq!(parsed.policy["img-src"], BTreeSet::from(["*".to_string()]));
    }

    #[test]
    fn duplicates_empty_sources_and_short_policies() {
        assert_eq!(
            p(&["script-src 'self'; script-src 'none'"]).unwrap_err(),
            Invalid::Duplicate("script-src".into())
        );
        let warned = p(&["report-uri /a; report-uri /b; object-src"]).unwrap();
        assert!(warned.duplicate_warnings.contains("report-uri"));
        assert_eq!(
            warned.policy["object-src"],
            BTreeSet::from(["'none'".to_string()])
        );
        assert!(matches!(p(&["a"]), Err(Invalid::TooShort(_))));
    }
}
