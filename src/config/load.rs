//! Loading the settings, each layer over the one before: the defaults built into the binary
//! (`config/default.toml`), `/etc/opsguard/opsguard.toml` when present, the file named by
//! `OPSGUARD_CONFIG`, `OPSGUARD__SECTION__KEY` variables, then the contract's named variables.
//! Tables merge key by key; a list (of values or of tables: `[[schedules]]`, `[[secrets]]`,
//! `[[backups.targets]]`) set by a later layer replaces the earlier one whole. An unknown key,
//! a value of the wrong type or an unreadable source stops loading, naming where it came from.

use super::layers::{self, Layer};
use super::unknown::{self, UnknownKey};
use super::{ConfigError, Settings};
use std::collections::{BTreeMap, HashMap};
use toml::{Table, Value};

/// The built-in defaults: every setting documented, compiled into the binary.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

/// The system-wide file, read when it exists. `OPSGUARD_SYSTEM_CONFIG` names another one
/// (empty: none), so tests never depend on what this machine's `/etc` holds.
pub const SYSTEM_CONFIG: &str = "/etc/opsguard/opsguard.toml";

const DEFAULTS_ORIGIN: &str = "the built-in defaults";

impl Settings {
    /// Load from the process environment.
    pub fn load() -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Settings::load_with(&env)
    }

    /// Load with an explicit environment (tests pass their own), then validate.
    pub fn load_with(env: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        let settings = Settings::read_with(env)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Read and type every layer, without the checks of `validate` (`config check` runs
    /// them all and reports each problem).
    pub fn read_with(env: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        Ok(Settings::read_effective(env)?.0)
    }

    /// The settings and the merged tree they were read from (what `config check` prints).
    pub(super) fn read_effective(
        env: &HashMap<String, String>,
    ) -> Result<(Settings, Table), ConfigError> {
        let mut tree = Table::new();
        let mut origins = BTreeMap::new();
        let mut guessed = Vec::new();
        for layer in sources(env)? {
            guessed.extend(layer.guessed);
            layers::merge(&mut tree, layer.tree, "", &layer.origin, &mut origins);
        }
        deserialize(tree, &origins, guessed)
    }
}

/// Every layer present, in order.
fn sources(env: &HashMap<String, String>) -> Result<Vec<Layer>, ConfigError> {
    let mut files = vec![layers::toml_layer(DEFAULTS_ORIGIN.into(), DEFAULTS)?];
    let system = env
        .get("OPSGUARD_SYSTEM_CONFIG")
        .map_or(SYSTEM_CONFIG, String::as_str);
    // Absent is fine; present but unreadable (or a path that cannot be checked) is an error.
    let present = !system.is_empty()
        && std::path::Path::new(system)
            .try_exists()
            .map_err(|e| ConfigError::Source {
                origin: format!("file {system}"),
                problem: format!("cannot check {system}: {e}"),
            })?;
    if present {
        files.push(layers::file_layer(format!("file {system}"), system)?);
    }
    if let Some(path) = env.get("OPSGUARD_CONFIG").filter(|p| !p.is_empty()) {
        files.push(layers::file_layer(format!("OPSGUARD_CONFIG={path}"), path)?);
    }
    let mut merged = Table::new();
    let mut scratch = BTreeMap::new();
    for file in &files {
        layers::merge(&mut merged, file.tree.clone(), "", "", &mut scratch);
    }
    files.extend(layers::env_layers(env, &merged)?);
    files.extend(layers::named_layers(env)?);
    Ok(files)
}

/// Type the merged tree. Every key no setting reads is reported; a variable whose type was
/// guessed wrong is retried as text.
fn deserialize(
    mut tree: Table,
    origins: &BTreeMap<String, String>,
    mut guessed: Vec<(Vec<String>, String)>,
) -> Result<(Settings, Table), ConfigError> {
    loop {
        let mut ignored: Vec<Vec<String>> = Vec::new();
        let mut note = |path: serde_ignored::Path| ignored.push(ignored_path(&path));
        let typed: Result<Settings, _> = serde_path_to_error::deserialize(
            serde_ignored::Deserializer::new(Value::Table(tree.clone()), &mut note),
        );
        let defaults = DEFAULTS.parse::<Table>().unwrap_or_default();
        let mut unknown: Vec<UnknownKey> = ignored
            .iter()
            .map(|path| unknown::describe_key(path, &tree, &defaults, &ignored, origins))
            .collect();
        let error = match typed {
            Ok(settings) if unknown.is_empty() => return Ok((settings, tree)),
            Ok(_) => return Err(ConfigError::Unknown(unknown)),
            Err(e) => e,
        };
        let path: Vec<String> = error.path().iter().map(segment).collect();
        if let Some(i) = guessed.iter().position(|(g, _)| path.starts_with(g)) {
            let (at, raw) = guessed.remove(i);
            set(&mut tree, &at, Value::String(raw));
            continue;
        }
        let message = error.inner().message().to_string();
        if let Some(key) = unknown::from_denied(&path, &message, origins) {
            unknown.push(key);
        }
        if !unknown.is_empty() {
            return Err(ConfigError::Unknown(unknown));
        }
        return Err(ConfigError::Value {
            key: if path.is_empty() {
                "(top level)".into()
            } else {
                path.join(".")
            },
            origin: unknown::origins_of(&path, origins).join(", "),
            problem: sanitize(&message),
        });
    }
}

fn segment(s: &serde_path_to_error::Segment) -> String {
    use serde_path_to_error::Segment;
    match s {
        Segment::Seq { index } => index.to_string(),
        Segment::Map { key } => key.clone(),
        Segment::Enum { variant } => variant.clone(),
        Segment::Unknown => "?".into(),
    }
}

fn ignored_path(path: &serde_ignored::Path) -> Vec<String> {
    use serde_ignored::Path;
    let (parent, own) = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, index } => (parent, Some(index.to_string())),
        Path::Map { parent, key } => (parent, Some(key.clone())),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => (parent, None),
    };
    let mut out = ignored_path(parent);
    out.extend(own);
    out
}

fn set(tree: &mut Table, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = tree;
    for key in parents {
        match table.get_mut(key) {
            Some(Value::Table(t)) => table = t,
            _ => return,
        }
    }
    table.insert(last.clone(), value);
}

/// A type error without the value it saw (it may be a password): `invalid type: string,
/// expected u32`.
fn sanitize(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(i) = rest.find(", expected ")
        {
            let kind = rest.split_whitespace().next().unwrap_or("value");
            return format!("{prefix}{kind}{}", &rest[i..]);
        }
    }
    message.to_string()
}
