//! The effective configuration as TOML, every secret replaced by its fingerprint. Which
//! values are secrets is not a list kept by hand: a value is one when the settings read it
//! into a `Secret` (whose `Debug` shows a fingerprint only), found by probing each text value.

use super::Settings;
use crate::domain::secret::Secret;
use serde::Deserialize;
use toml::{Table, Value};

const PROBE: &str = "opsguard-config-probe-4f1c";

/// `tree` with each secret text value shown as `sha256:<first 8 hex>`.
pub(super) fn masked(tree: &Table) -> Table {
    let mut paths = Vec::new();
    texts(&Value::Table(tree.clone()), &mut Vec::new(), &mut paths);
    let mut out = tree.clone();
    for path in paths {
        let mut probe = Value::Table(tree.clone());
        let Some(Value::String(text)) = at(&mut probe, &path) else {
            continue;
        };
        *text = PROBE.into();
        let shown = Settings::deserialize(probe).is_ok_and(|s| format!("{s:?}").contains(PROBE));
        let Some(Value::String(text)) = at_table(&mut out, &path) else {
            continue;
        };
        if !shown && !text.is_empty() {
            *text = Secret::new(text.clone()).to_string();
        } else if let Some(hidden) = without_password(text) {
            // A URL kept as plain text (a Redis node, a sink's address) may still carry a
            // password: it is never printed.
            *text = hidden;
        }
    }
    out
}

/// `text` as a URL with its password replaced by `***`, if it is one that has a password.
fn without_password(text: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(text).ok()?;
    url.password()?;
    url.set_password(Some("***")).ok()?;
    Some(url.to_string())
}

/// The paths of every text value (list items by index).
fn texts(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::String(_) => out.push(prefix.clone()),
        Value::Table(t) => {
            for (k, v) in t {
                prefix.push(k.clone());
                texts(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(i.to_string());
                texts(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(value);
    };
    let next = match value {
        Value::Table(t) => t.get_mut(first)?,
        Value::Array(items) => items.get_mut(first.parse::<usize>().ok()?)?,
        _ => return None,
    };
    at(next, rest)
}

fn at_table<'a>(table: &'a mut Table, path: &[String]) -> Option<&'a mut Value> {
    let (first, rest) = path.split_first()?;
    at(table.get_mut(first)?, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_become_fingerprints_and_the_rest_stays() {
        let mut tree: Table = super::super::DEFAULTS.parse().unwrap();
        let extra: Table = r#"
            master_key = "canary-master"
            [checks.postgres]
            dsns = ["postgres://u:canary-dsn@db/app"]
            [[backups.targets]]
            name = "main"
            dsn = "postgres://u:canary-target@db/app"
            [[secrets]]
            name = "cache"
            kind = "redis_acl"
            target = { user = "app", nodes = ["redis://admin:canary-node@r1:6379"] }
            sinks = [{ type = "webhook", url = "https://hook:canary-sink@app/reload", hmac_key = "canary-hmac" }]
        "#
        .parse()
        .unwrap();
        tree.extend(extra);
        let shown = toml::to_string(&masked(&tree)).unwrap();
        assert!(!shown.contains("canary"), "{shown}");
        let dsn = Secret::new("postgres://u:canary-target@db/app").to_string();
        assert!(shown.contains(&dsn), "{shown}");
        assert!(shown.contains("name = \"main\""), "{shown}");
        assert!(shown.contains("listen = \"127.0.0.1:8080\""), "{shown}");
        // A sink's address is plain text, but its password is never shown.
        assert!(shown.contains("https://hook:***@app/reload"), "{shown}");
    }
}
