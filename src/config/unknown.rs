//! Keys no setting reads: each named with the layers that set it and the closest valid key.
//! Valid keys are not a list kept by hand: they are the keys of the built-in defaults and
//! every key the settings' types did read, list items and user-named map entries (like
//! `[gates.commands.<command>]`) matched by shape.

use std::collections::{BTreeMap, BTreeSet};
use toml::{Table, Value};

/// One unknown key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// Dotted, list items by index: `schedules.1.crn`.
    pub key: String,
    /// Where it was set: files and variables.
    pub origins: Vec<String>,
    /// The closest valid key, if one is close.
    pub suggestion: Option<String>,
}

/// What the error says, one line per key.
pub fn describe(keys: &[UnknownKey]) -> String {
    keys.iter()
        .map(|k| {
            let hint = k
                .suggestion
                .as_ref()
                .map_or_else(String::new, |s| format!("; did you mean {s}?"));
            format!(
                "unknown setting {} (set by {}){hint}",
                k.key,
                k.origins.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The layers that set `path` or something inside it (or the list it is an item of).
pub(super) fn origins_of(path: &[String], origins: &BTreeMap<String, String>) -> Vec<String> {
    let dotted = path.join(".");
    let mut found: Vec<String> = Vec::new();
    for (set, origin) in origins {
        let related = dotted.is_empty()
            || *set == dotted
            || set.starts_with(&format!("{dotted}."))
            || dotted.starts_with(&format!("{set}."));
        if related && !found.contains(origin) {
            found.push(origin.clone());
        }
    }
    if found.is_empty() {
        found.push("the merged settings".into());
    }
    found
}

/// An ignored key, with its suggestion among the known keys.
pub(super) fn describe_key(
    path: &[String],
    tree: &Table,
    defaults: &Table,
    ignored: &[Vec<String>],
    origins: &BTreeMap<String, String>,
) -> UnknownKey {
    let mut known = BTreeSet::new();
    flatten(defaults, &mut Vec::new(), &mut known);
    let mut read = BTreeSet::new();
    flatten(tree, &mut Vec::new(), &mut read);
    let ignored: Vec<Vec<String>> = ignored.iter().map(|p| shape(p)).collect();
    known.extend(
        read.into_iter()
            .filter(|k| !ignored.iter().any(|i| k.starts_with(i))),
    );
    let names = known.iter().map(|k| k.as_slice());
    UnknownKey {
        key: path.join("."),
        origins: origins_of(path, origins),
        suggestion: closest(path, names),
    }
}

/// An error of a type that refuses unknown fields (`unknown field `x`, expected one of `a`,
/// `b``): the same report, the suggestion among the fields it names.
pub(super) fn from_denied(
    path: &[String],
    message: &str,
    origins: &BTreeMap<String, String>,
) -> Option<UnknownKey> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`')?;
    let mut full = path.to_vec();
    if full.last().map(String::as_str) != Some(field) {
        full.push(field.to_string());
    }
    let fields: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let suggestion = nearest(field, fields.iter().copied()).map(|best| {
        let mut s = full.clone();
        *s.last_mut().expect("has the field") = best.to_string();
        s.join(".")
    });
    Some(UnknownKey {
        key: full.join("."),
        origins: origins_of(&full, origins),
        suggestion,
    })
}

/// The known key closest to `path`: same parent (or a parent differing in one user-named
/// segment, such as a command name), nearest last segment.
fn closest<'a>(
    path: &[String],
    known: impl Iterator<Item = &'a [String]> + Clone,
) -> Option<String> {
    let shaped = shape(path);
    let (name, parent) = shaped.split_last()?;
    let depth = shaped.len();
    let siblings = |allowed: usize| {
        known
            .clone()
            .filter(move |k| k.len() == depth)
            .filter(move |k| {
                k[..parent.len()]
                    .iter()
                    .zip(parent)
                    .filter(|(a, b)| a != b)
                    .count()
                    <= allowed
            })
            .map(|k| k[k.len() - 1].as_str())
    };
    let best = nearest(name, siblings(0)).or_else(|| nearest(name, siblings(1)))?;
    let mut out = path.to_vec();
    *out.last_mut()? = best.to_string();
    Some(out.join("."))
}

/// The candidate within a few edits of `name`.
fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.len() / 3).max(2);
    candidates
        .filter(|c| *c != name)
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// List indexes as `*`, so items match each other.
fn shape(path: &[String]) -> Vec<String> {
    path.iter()
        .map(|s| {
            if s.bytes().all(|b| b.is_ascii_digit()) {
                "*".into()
            } else {
                s.clone()
            }
        })
        .collect()
}

/// Every key path in `tree` (list items as `*`), tables included.
fn flatten(tree: &Table, prefix: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
    for (key, value) in tree {
        prefix.push(key.clone());
        out.insert(prefix.clone());
        match value {
            Value::Table(t) => flatten(t, prefix, out),
            Value::Array(items) => {
                prefix.push("*".into());
                for item in items {
                    if let Value::Table(t) = item {
                        flatten(t, prefix, out);
                    }
                }
                prefix.pop();
            }
            _ => {}
        }
        prefix.pop();
    }
}
