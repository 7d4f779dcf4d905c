//! Architecture invariants, checked on the source text: the domain imports no I/O crates,
//! transports reach commands only through `Engine::handle`, every file says what it owns.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(rel)
}

#[test]
fn domain_imports_no_axum_teloxide_sqlx_or_redis() {
    for file in rust_files(&src("domain")) {
        let text = fs::read_to_string(&file).unwrap();
        for krate in ["axum", "teloxide", "sqlx", "redis", "reqwest", "tokio"] {
            assert!(
                !text.contains(&format!("{krate}::")) && !text.contains(&format!("use {krate}")),
                "{} uses {krate}",
                file.display()
            );
        }
    }
}

/// The transports of the design ("bot", "console", "http", "scheduler", "outbox"): each
/// a folder of `src`.
const TRANSPORTS: [&str; 5] = ["bot", "http", "console", "scheduler", "outbox"];

/// What holds commands' effects: the capabilities and the engine's own tables.
const BEHIND_THE_ENGINE: [&str; 6] = ["checks", "secrets", "logins", "backups", "storage", "audit"];

/// What a transport may name behind the engine, each with why it runs no command.
const TRANSPORT_MAY_USE: &[(&str, &str)] = &[
    (
        "storage::updates::first_sight",
        "de-duplicating an update before it is taken in",
    ),
    (
        "storage::inbox",
        "the durable inbox that holds an update before its 200",
    ),
    (
        "storage::inbox_writer",
        "the inbox's group commit: stores updates before their 200",
    ),
    (
        "storage::audit::for_request",
        "reads whether a retaken update already ran",
    ),
    (
        "storage::chats::moved",
        "where a group's messages go after its upgrade",
    ),
    ("storage::users::list", "reads who gets a command menu"),
    ("storage::migrations_applied", "/readyz"),
    (
        "logins::ingest::Ingestor",
        "the ingest API stores auth events, not commands",
    ),
    ("logins::jwt", "verifies the ingest API's service tokens"),
    ("logins::keys::Keys", "the ingest API's signing keys"),
    ("secrets::jwks::response", "the public JWKS document"),
    (
        "backups::Backups::new",
        "the console runs the backup worker for jobs it queued",
    ),
    (
        "backups::worker::spawn",
        "the console runs the backup worker for jobs it queued",
    ),
    (
        "backups::worker::finish_for",
        "the console waits for the jobs it queued",
    ),
    (
        "backups::watch::Follower",
        "the console prints the progress of its jobs",
    ),
];

/// Every `crate::…` path a source text names, with `use crate::a::{b, c::{d}}` groups
/// expanded (`a::b`, `a::c::d`); `self` in a group names the group's own path.
fn crate_paths(text: &str) -> Vec<String> {
    fn path_at(text: &str, prefix: &str, out: &mut Vec<String>) {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        let end = text.find(|c: char| !ident(c)).unwrap_or(text.len());
        let path = format!("{prefix}{}", &text[..end]);
        let rest = &text[end..];
        if path.ends_with("::") && rest.starts_with('{') {
            let mut depth = 0;
            let mut item_start = 1;
            for (i, c) in rest.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let item = rest[item_start..i].trim();
                        if item == "self" {
                            out.push(path.trim_end_matches("::").to_string());
                        } else if !item.is_empty() {
                            path_at(item, &path, out);
                        }
                        item_start = i + 1;
                        if c == '}' {
                            return;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        } else {
            out.push(path.trim_end_matches("::").to_string());
        }
    }
    let mut out = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        path_at(&text[at + "crate::".len()..], "", &mut out);
    }
    out
}

#[test]
fn crate_paths_expand_groups() {
    let text =
        "use crate::storage::{audit, inbox::{self, Lease}};\nlet x = crate::engine::Engine::new();";
    assert_eq!(
        crate_paths(text),
        [
            "storage::audit",
            "storage::inbox",
            "storage::inbox::Lease",
            "engine::Engine::new"
        ]
    );
}

#[test]
fn transports_reach_commands_only_through_the_engine() {
    let mut seen = Vec::new();
    for transport in TRANSPORTS {
        let files = rust_files(&src(transport));
        assert!(
            !files.is_empty(),
            "src/{transport} holds the {transport} transport"
        );
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            // Test modules may set up what they like.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for path in crate_paths(code) {
                let head = path.split("::").next().unwrap_or_default();
                assert!(
                    !path.contains("exec"),
                    "{} names {path}: command implementations are the engine's",
                    file.display()
                );
                if !BEHIND_THE_ENGINE.contains(&head) {
                    continue;
                }
                let allowed = TRANSPORT_MAY_USE
                    .iter()
                    .any(|(may, _)| path == *may || path.starts_with(&format!("{may}::")));
                assert!(
                    allowed,
                    "{} names {path}: a transport reaches capabilities and the engine's tables only through Engine::handle (or list it, with why, in TRANSPORT_MAY_USE)",
                    file.display()
                );
                seen.push(path);
            }
            for forbidden in [
                "exec::",
                "storage::users::grant",
                "storage::users::revoke",
                "storage::audit::append",
                "AuditWriter",
            ] {
                assert!(
                    !code.contains(forbidden),
                    "{} calls {forbidden} directly",
                    file.display()
                );
            }
        }
    }
    // The scan sees what is there (a parser that found nothing would pass anything).
    for known in [
        "secrets::jwks::response",
        "backups::worker::spawn",
        "storage::chats::moved",
    ] {
        assert!(
            seen.iter().any(|p| p == known),
            "{known} not found: {seen:?}"
        );
    }
    // The command implementations are private to the engine.
    let engine = fs::read_to_string(src("engine/mod.rs")).unwrap();
    assert!(
        engine.contains("\nmod exec;"),
        "engine::exec must stay private"
    );
}

/// Comparisons of secrets' exposed text that are not of secret content, each with why.
const EXPOSED_COMPARISONS: &[(&str, &str, &str)] = &[
    (
        "config/backups.rs",
        "expose().starts_with(\"postgres",
        "a DSN's public scheme",
    ),
    (
        "secrets/kinds/api_key.rs",
        "expose().len() == 43",
        "a key's length is public",
    ),
];

#[test]
fn secrets_are_compared_only_in_constant_time() {
    // One constant-time function: `Secret::matches` (subtle's `ct_eq`), which `Secret`'s
    // `==` goes through too; MAC tags are checked by `Mac::verify_slice`.
    let secret_rs = fs::read_to_string(src("domain/secret.rs")).unwrap();
    assert!(
        secret_rs.contains(".ct_eq(candidate)"),
        "Secret::matches uses subtle"
    );
    let derives: Vec<&str> = secret_rs
        .lines()
        .skip_while(|l| !l.starts_with("#[derive"))
        .take_while(|l| !l.starts_with("pub struct Secret"))
        .collect();
    assert!(
        derives.iter().all(|l| !l.contains("PartialEq")),
        "Secret must not derive ==, which stops at the first differing byte: {derives:?}"
    );
    let eq = secret_rs
        .split("impl PartialEq for Secret")
        .nth(1)
        .expect("Secret's == is written out");
    let eq_body = &eq[..eq.find("\n}").unwrap()];
    assert!(
        eq_body.contains("self.matches("),
        "Secret's == goes through matches"
    );
    for file in rust_files(&src("")) {
        let rel = file.strip_prefix(src("")).unwrap().display().to_string();
        let text = fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        if rel != "domain/secret.rs" {
            for ct in ["subtle::", "ct_eq", "constant_time_eq"] {
                assert!(
                    !code.contains(ct),
                    "{rel} compares with {ct}: use Secret::matches"
                );
            }
        }
        for (n, line) in code.lines().enumerate() {
            let compares = ["==", "!=", ".eq(", "starts_with", "ends_with", "contains("]
                .iter()
                .any(|op| line.contains(op));
            if line.contains("expose()") && compares {
                let listed = EXPOSED_COMPARISONS
                    .iter()
                    .any(|(f, snippet, _)| rel == *f && line.contains(snippet));
                assert!(
                    listed,
                    "{rel}:{}: a secret's text compared outside Secret::matches: {line}",
                    n + 1
                );
            }
            if line.contains("finalize") && (line.contains("==") || line.contains("!=")) {
                panic!(
                    "{rel}:{}: a MAC compared with ==: use verify_slice: {line}",
                    n + 1
                );
            }
        }
    }
}

#[test]
fn every_source_file_opens_with_a_doc_line_and_stays_small() {
    for file in rust_files(&src("")) {
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must open with a //! line",
            file.display()
        );
        // Files stay small; unit tests at the bottom do not count.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let lines = code.lines().count();
        assert!(lines <= 350, "{} has {lines} lines of code", file.display());
    }
}
