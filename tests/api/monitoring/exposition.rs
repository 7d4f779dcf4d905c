//! Reading what the tests check: the Prometheus text exposition (families with their HELP,
//! TYPE and samples), metric names in PromQL expressions and a Grafana dashboard, and the
//! metric names the source records through the `metrics` macros.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Default)]
pub struct Family {
    pub help: Option<String>,
    pub kind: Option<String>,
}

#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

pub struct Exposition {
    pub families: BTreeMap<String, Family>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    pub fn parse(text: &str) -> Self {
        let mut families: BTreeMap<String, Family> = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                families.entry(name.into()).or_default().help = Some(help.into());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                families.entry(name.into()).or_default().kind = Some(kind.into());
            } else if !line.starts_with('#') {
                samples.push(sample(line));
            }
        }
        Exposition { families, samples }
    }

    /// The family has a non-empty HELP, the TYPE given, and at least one sample.
    pub fn assert_described(&self, name: &str, kind: &str) {
        let family = self
            .families
            .get(name)
            .unwrap_or_else(|| panic!("{name} is missing"));
        assert!(
            family.help.as_deref().is_some_and(|h| !h.is_empty()),
            "{name} has no # HELP"
        );
        assert_eq!(family.kind.as_deref(), Some(kind), "# TYPE of {name}");
        assert!(self.has_series(name), "{name} has no sample");
    }

    /// A sample of `name` (or of its histogram series) exists.
    pub fn has_series(&self, name: &str) -> bool {
        self.samples.iter().any(|s| {
            s.name == name
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| s.name == format!("{name}{suffix}"))
        })
    }

    /// The value of the sample of `name` carrying (at least) these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(k2, v2)| k2 == k && v2 == v))
            })
            .map(|s| s.value)
    }
}

/// `name{a="x",b="y"} 1.5` (label values here hold no quotes or commas).
fn sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest.trim_end_matches('}');
            let labels = inner
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            (name, labels)
        }
        None => (series, Vec::new()),
    };
    Sample {
        name: name.into(),
        labels,
        value,
    }
}

/// Every `"expr"` string in a Grafana dashboard.
pub fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v.as_str()) {
                    ("expr", Some(expr)) => out.push(expr.to_string()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The metric names in a PromQL expression: identifiers of opsguard's and the process
/// metrics (functions, label names and keywords are not among them).
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = ["opsguard_", "process_"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_string();
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .map_or(name.clone(), str::to_string);
        names.push(name);
        rest = &tail[end..];
    }
    names
}

/// Names passed to `counter!`, `gauge!` and `histogram!` as literals anywhere in `dir`.
pub fn recorded_in_source(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            names.extend(recorded_in_source(&path));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for macro_name in ["counter!(", "gauge!(", "histogram!("] {
            for (at, _) in text.match_indices(macro_name) {
                let after = text[at + macro_name.len()..].trim_start();
                if let Some(literal) = after.strip_prefix('"') {
                    names.insert(literal.split('"').next().unwrap().to_string());
                }
            }
        }
    }
    names
}
