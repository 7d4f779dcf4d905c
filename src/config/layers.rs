//! The layers settings are read from, each with its origin (a file or a variable) so an error
//! can name it: TOML files, `OPSGUARD__SECTION__KEY` variables (lists and tables as JSON) and
//! the contract's named variables, given directly, as `<NAME>_FILE` or as a systemd credential.

use super::ConfigError;
use std::collections::{BTreeMap, HashMap};
use toml::{Table, Value};

/// One source of settings: what it sets and where that came from.
pub(super) struct Layer {
    pub origin: String,
    pub tree: Table,
    /// Paths whose type was guessed (a variable for a key the files do not set): retried as
    /// text (the raw value) if the guess does not fit.
    pub guessed: Vec<(Vec<String>, String)>,
}

/// The contract's environment variables and the settings they set. Each may also be given
/// as `<NAME>_FILE` (a file holding the value) or as the systemd credential `<NAME>`.
pub(super) const NAMED_VARS: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("REDIS_URL", "redis.url"),
    ("OPSGUARD_TELEGRAM_TOKEN", "telegram.token"),
    ("OPSGUARD_TELEGRAM_API_URL", "telegram.api_url"),
    ("OPSGUARD_WEBHOOK_SECRET", "telegram.webhook_secret"),
    ("OPSGUARD_PUBLIC_URL", "telegram.public_url"),
    ("OPSGUARD_LISTEN", "http.listen"),
    ("OPSGUARD_INGEST_JWT_SECRET", "logins.ingest.jwt_secret"),
    (
        "OPSGUARD_INGEST_JWT_PREVIOUS_SECRET",
        "logins.ingest.jwt_previous_secret",
    ),
    ("OPSGUARD_MASTER_KEY", "master_key"),
];

/// A TOML document, its parse error located by line (never quoting the line: it may hold a
/// password).
pub(super) fn toml_layer(origin: String, text: &str) -> Result<Layer, ConfigError> {
    match text.parse::<Table>() {
        Ok(tree) => Ok(Layer {
            origin,
            tree,
            guessed: Vec::new(),
        }),
        Err(e) => {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map_or_else(String::new, |l| format!(" (line {l})"));
            Err(ConfigError::Source {
                origin,
                problem: format!("not valid TOML{at}: {}", e.message().trim()),
            })
        }
    }
}

/// A TOML file that must exist.
pub(super) fn file_layer(origin: String, path: &str) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Source {
        origin: origin.clone(),
        problem: format!("cannot read {path}: {e}"),
    })?;
    toml_layer(origin, &text)
}

/// One layer per `OPSGUARD__SECTION__KEY` variable (in name order). A key the files set as a
/// list or table takes JSON (`["a","b"]`, `[1,-100]`; empty = `[]`); as a number or a boolean,
/// that; as text, the text as is. For other keys the type is guessed. `…__KEY__FILE` reads
/// the value from the file it names.
pub(super) fn env_layers(
    env: &HashMap<String, String>,
    files: &Table,
) -> Result<Vec<Layer>, ConfigError> {
    let vars: BTreeMap<&String, &String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("OPSGUARD__"))
        .collect();
    let mut layers = Vec::new();
    for (var, raw) in vars {
        let (var, origin, raw) = match var.strip_suffix("__FILE") {
            // Grafana's convention: `OPSGUARD__SECTION__KEY__FILE` names a file holding the
            // value (a mounted secret), for any setting.
            Some(base) => {
                let origin = format!("{var}={raw}");
                if env.get(base).is_some_and(|v| !v.is_empty()) {
                    return Err(ConfigError::Source {
                        origin: format!("environment variables {base} and {var}"),
                        problem: format!("set {base} or {var}, not both"),
                    });
                }
                let value = value_file(origin.clone(), raw)?;
                (base, origin, value)
            }
            None => (
                var.as_str(),
                format!("environment variable {var}"),
                raw.clone(),
            ),
        };
        let raw = &raw;
        let path: Vec<String> = var["OPSGUARD__".len()..]
            .split("__")
            .map(str::to_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Source {
                origin,
                problem: "expected OPSGUARD__SECTION__KEY (sections and key joined by __)".into(),
            });
        }
        let existing = lookup(files, &path);
        let (value, guessed) = typed(existing, raw).map_err(|problem| ConfigError::Source {
            origin: origin.clone(),
            problem,
        })?;
        layers.push(Layer {
            tree: nested(&path, value),
            guessed: if guessed {
                vec![(path, raw.clone())]
            } else {
                Vec::new()
            },
            origin,
        });
    }
    Ok(layers)
}

/// The value of a variable, typed after what the files hold at its key; `true` if guessed.
fn typed(existing: Option<&Value>, raw: &str) -> Result<(Value, bool), String> {
    let json = |raw: &str, what: &str| -> Result<Value, String> {
        let parsed: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| format!("expected {what} in JSON ({e})"))?;
        Value::try_from(parsed).map_err(|e| format!("expected {what} in JSON ({e})"))
    };
    Ok(match existing {
        Some(Value::Array(_)) if raw.trim().is_empty() => (Value::Array(Vec::new()), false),
        Some(Value::Array(_)) => (
            json(raw, "a list, e.g. [\"a\", \"b\"] or [1, -100]")?,
            false,
        ),
        Some(Value::Table(_)) => (json(raw, "a table, e.g. {\"key\": \"value\"}")?, false),
        Some(Value::Integer(_)) => (
            Value::Integer(raw.trim().parse().map_err(|_| "expected a whole number")?),
            false,
        ),
        Some(Value::Float(_)) => (
            Value::Float(raw.trim().parse().map_err(|_| "expected a number")?),
            false,
        ),
        Some(Value::Boolean(_)) => (
            Value::Boolean(raw.trim().parse().map_err(|_| "expected true or false")?),
            false,
        ),
        Some(_) => (Value::String(raw.to_string()), false),
        None => (guess(raw), true),
    })
}

fn guess(raw: &str) -> Value {
    let trimmed = raw.trim();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed)
            && let Ok(v) = Value::try_from(v)
        {
            return v;
        }
    } else if let Ok(b) = trimmed.parse::<bool>() {
        return Value::Boolean(b);
    } else if let Ok(i) = trimmed.parse::<i64>() {
        return Value::Integer(i);
    }
    Value::String(raw.to_string())
}

/// The contract's named variables: one layer each that is set (an empty value is unset).
pub(super) fn named_layers(env: &HashMap<String, String>) -> Result<Vec<Layer>, ConfigError> {
    let mut layers = Vec::new();
    for (var, key) in NAMED_VARS {
        if let Some((origin, value)) = named_value(env, var)? {
            let path: Vec<String> = key.split('.').map(String::from).collect();
            layers.push(Layer {
                origin,
                tree: nested(&path, Value::String(value)),
                guessed: Vec::new(),
            });
        }
    }
    Ok(layers)
}

/// `NAME`, else `NAME_FILE`, else `$CREDENTIALS_DIRECTORY/NAME`: (origin, value). Both `NAME`
/// and `NAME_FILE` set is an error; a file's trailing newlines are trimmed.
fn named_value(
    env: &HashMap<String, String>,
    var: &str,
) -> Result<Option<(String, String)>, ConfigError> {
    let set = |name: &str| env.get(name).filter(|v| !v.is_empty());
    let file_var = format!("{var}_FILE");
    let read = |origin: String, path: &str| -> Result<Option<(String, String)>, ConfigError> {
        Ok(Some((origin.clone(), value_file(origin, path)?)))
    };
    match (set(var), set(&file_var)) {
        (Some(_), Some(_)) => Err(ConfigError::Source {
            origin: format!("environment variables {var} and {file_var}"),
            problem: format!("set {var} or {file_var}, not both"),
        }),
        (Some(value), None) => Ok(Some((format!("environment variable {var}"), value.clone()))),
        (None, Some(path)) => read(format!("{file_var}={path}"), path),
        (None, None) => match set("CREDENTIALS_DIRECTORY") {
            Some(dir) => {
                let path = std::path::Path::new(dir).join(var);
                let present = path.try_exists().map_err(|e| ConfigError::Source {
                    origin: format!("systemd credential {var}"),
                    problem: format!("cannot check {}: {e}", path.display()),
                })?;
                if !present {
                    return Ok(None);
                }
                read(
                    format!("systemd credential {var}"),
                    &path.display().to_string(),
                )
            }
            None => Ok(None),
        },
    }
}

/// The value held in the file at `path`, without its trailing newlines; empty is an error.
fn value_file(origin: String, path: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Source {
        origin: origin.clone(),
        problem: format!("cannot read {path}: {e}"),
    })?;
    let value = text.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(ConfigError::Source {
            origin,
            problem: format!("{path} is empty"),
        });
    }
    Ok(value)
}

/// `value` at `path` inside empty tables.
fn nested(path: &[String], value: Value) -> Table {
    let mut value = value;
    for key in path.iter().skip(1).rev() {
        let mut table = Table::new();
        table.insert(key.clone(), value);
        value = Value::Table(table);
    }
    let mut top = Table::new();
    top.insert(path[0].clone(), value);
    top
}

/// The value at `path`, if any.
pub(super) fn lookup<'a>(tree: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = tree.get(first)?;
    if rest.is_empty() {
        return Some(value);
    }
    match value {
        Value::Table(t) => lookup(t, rest),
        _ => None,
    }
}

/// Lay `top` over `base`: tables merge key by key; anything else, lists (of tables too)
/// included, replaces what was there. `origins` records which layer set each leaf.
pub(super) fn merge(
    base: &mut Table,
    top: Table,
    prefix: &str,
    origin: &str,
    origins: &mut BTreeMap<String, String>,
) {
    for (key, value) in top {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (base.get_mut(&key), value) {
            (Some(Value::Table(below)), Value::Table(above)) => {
                merge(below, above, &path, origin, origins)
            }
            (_, value) => {
                let inside = format!("{path}.");
                origins.retain(|p, _| p != &path && !p.starts_with(&inside));
                record(&value, &path, origin, origins);
                base.insert(key, value);
            }
        }
    }
}

fn record(value: &Value, path: &str, origin: &str, origins: &mut BTreeMap<String, String>) {
    match value {
        Value::Table(t) if !t.is_empty() => {
            for (k, v) in t {
                record(v, &format!("{path}.{k}"), origin, origins);
            }
        }
        _ => {
            origins.insert(path.to_string(), origin.to_string());
        }
    }
}
