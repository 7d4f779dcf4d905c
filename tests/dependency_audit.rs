//! CI's dependency audit (`scripts/audit.sh`, run by `.ci/run`) against the RustSec advisory
//! database: on a copy of the snapshot it passes; with one advisory planted against a crate
//! in Cargo.lock, the same step fails and names it; an accepted warning whose review date has
//! passed fails it too; a crate under a copyleft licence or from outside crates.io fails the
//! licence and source check. The snapshot is `$OPSGUARD_ADVISORY_DB`, default
//! `../shared/advisory-db` beside the checkout (as in CI); the script installs `cargo-audit`
//! when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn snapshot() -> PathBuf {
    std::env::var_os("OPSGUARD_ADVISORY_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/advisory-db"))
}

/// A scratch directory of its own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("opsguard-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A writable copy of the snapshot (the shared one is read-only and must stay untouched).
fn copy_of_snapshot(scratch: &Scratch) -> PathBuf {
    let from = snapshot();
    assert!(
        from.join("crates").is_dir(),
        "no RustSec advisory database at {} (set OPSGUARD_ADVISORY_DB)",
        from.display()
    );
    let to = scratch.0.join("advisory-db");
    let out = Command::new("cp")
        .arg("-R")
        .arg(&from)
        .arg(&to)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp: {}", text(&out));
    let out = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(&to)
        .output()
        .unwrap();
    assert!(out.status.success(), "chmod: {}", text(&out));
    to
}

/// The audit step as CI runs it, on `db`, from a project root (`root`: the repository, or a
/// copy of its audit inputs).
fn audit(root: &Path, db: &Path) -> Output {
    Command::new("bash")
        .arg(root.join("scripts/audit.sh"))
        .env("OPSGUARD_ADVISORY_DB", db)
        .output()
        .expect("bash scripts/audit.sh")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A crate locked in Cargo.lock, with its version: the first `name`/`version` pair of `crate`.
fn locked(krate: &str) -> String {
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{krate}\"") {
            let version = lines.next().unwrap();
            return version
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .unwrap()
                .to_string();
        }
    }
    panic!("{krate} is not in Cargo.lock")
}

const PLANTED: &str = "RUSTSEC-2026-9999";

fn plant(db: &Path, krate: &str) {
    let dir = db.join("crates").join(krate);
    std::fs::create_dir_all(&dir).unwrap();
    let advisory = format!(
        "```toml\n[advisory]\nid = \"{PLANTED}\"\npackage = \"{krate}\"\ndate = \"2026-12-06\"\n\
         url = \"https://example.com/{PLANTED}\"\ncategories = [\"crypto-failure\"]\n\
         cvss = \"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\"\n\n[versions]\n\
         patched = [\">= 99.0.0\"]\n```\n\n# A planted advisory (opsguard's audit test)\n\n\
         Every version below 99 is affected.\n"
    );
    std::fs::write(dir.join(format!("{PLANTED}.md")), advisory).unwrap();
}

#[test]
fn the_audit_passes_on_the_snapshot_and_fails_on_an_advisory_planted_against_a_locked_crate() {
    let scratch = Scratch::new("audit-plant");
    let db = copy_of_snapshot(&scratch);

    let clean = audit(repo(), &db);
    assert!(
        clean.status.success(),
        "the unplanted copy must pass: {}",
        text(&clean)
    );
    assert!(!text(&clean).contains(PLANTED));

    // `subtle` compares opsguard's secrets in constant time: a locked crate.
    let version = locked("subtle");
    plant(&db, "subtle");
    let planted = audit(repo(), &db);
    let out = text(&planted);
    assert!(
        !planted.status.success(),
        "a planted advisory must fail the audit: {out}"
    );
    assert!(out.contains(PLANTED), "names the advisory: {out}");
    assert!(
        out.contains(&format!("subtle {version}")) || out.contains(&version),
        "{out}"
    );
    assert!(
        out.contains("vulnerab"),
        "reported as a vulnerability: {out}"
    );
}

#[test]
fn an_accepted_warning_past_its_review_date_fails_the_audit() {
    let scratch = Scratch::new("audit-review");
    // The audit's inputs, with the accepted advisory's review date set in the past.
    let root = scratch.0.join("project");
    std::fs::create_dir_all(root.join("scripts")).unwrap();
    std::fs::create_dir_all(root.join(".cargo")).unwrap();
    for file in ["scripts/audit.sh", "Cargo.toml", "Cargo.lock"] {
        std::fs::copy(repo().join(file), root.join(file)).unwrap();
    }
    let config = std::fs::read_to_string(repo().join(".cargo/audit.toml")).unwrap();
    // The first acceptance line (`# RUSTSEC-… <crate>, review by YYYY-MM-DD: …`).
    let line = config
        .lines()
        .find(|l| l.trim_start().starts_with("# RUSTSEC-") && l.contains(", review by "))
        .expect("an accepted advisory with a review date");
    let (head, tail) = line.split_once(", review by ").unwrap();
    let expired = config.replacen(
        line,
        &format!("{head}, review by 2020-01-01{}", &tail[10..]),
        1,
    );
    std::fs::write(root.join(".cargo/audit.toml"), expired).unwrap();

    let out = audit(&root, &snapshot());
    let out_text = text(&out);
    assert!(
        !out.status.success(),
        "an expired acceptance must fail: {out_text}"
    );
    assert!(
        out_text.contains("review date 2020-01-01 has passed"),
        "says why: {out_text}"
    );
}

#[test]
fn a_copyleft_licence_or_a_crate_from_outside_crates_io_fails_the_licence_check() {
    let scratch = Scratch::new("audit-licences");
    let crates_io = "registry+https://github.com/rust-lang/crates.io-index";
    let package = |name: &str, license: Option<&str>, source: Option<&str>| {
        serde_json::json!({
            "id": format!("{name} 1.0.0"), "name": name, "version": "1.0.0",
            "license": license, "source": source,
        })
    };
    let metadata = serde_json::json!({
        "workspace_members": ["opsguard 0.1.0"],
        "packages": [
            {"id": "opsguard 0.1.0", "name": "opsguard", "version": "0.1.0", "license": "MIT", "source": null},
            package("fine", Some("MIT OR Apache-2.0"), Some(crates_io)),
            package("dual", Some("(MIT OR Apache-2.0) AND Unicode-3.0"), Some(crates_io)),
            package("copyleft", Some("GPL-3.0-only"), Some(crates_io)),
            package("both", Some("MIT AND GPL-2.0-only"), Some(crates_io)),
            package("forked", Some("MIT"), Some("git+https://example.com/forked#abc")),
            package("vendored", Some("MIT"), None),
            package("unlabelled", None, Some(crates_io)),
        ],
    });
    let file = scratch.0.join("metadata.json");
    std::fs::write(&file, metadata.to_string()).unwrap();
    let out = Command::new("python3")
        .arg(repo().join("scripts/licences.py"))
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let offences: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        offences,
        [
            "error: copyleft 1.0.0: licence 'GPL-3.0-only' is not on the allowed list",
            "error: both 1.0.0: licence 'MIT AND GPL-2.0-only' is not on the allowed list",
            "error: forked 1.0.0: not from crates.io (git+https://example.com/forked#abc)",
            "error: vendored 1.0.0: not from crates.io (a path)",
            "error: unlabelled 1.0.0: no SPDX licence expression (license-file only)",
        ]
    );
}
