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

#[test]
fn transports_reach_commands_only_through_the_engine() {
    let mut transports = rust_files(&src("bot"));
    transports.extend(rust_files(&src("http")));
    transports.extend(rust_files(&src("console")));
    for file in transports {
        let text = fs::read_to_string(&file).unwrap();
        for forbidden in [
            "exec::",
            "storage::users::grant",
            "storage::users::revoke",
            "storage::audit::append",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} calls {forbidden} directly",
                file.display()
            );
        }
    }
    // The command implementations are private to the engine.
    let engine = fs::read_to_string(src("engine/mod.rs")).unwrap();
    assert!(
        engine.contains("\nmod exec;"),
        "engine::exec must stay private"
    );
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
