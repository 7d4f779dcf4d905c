//! Rebuild when a migration changes (`sqlx::migrate!` embeds the `migrations/` folder), and
//! name the commit the binary is built from: `OPSGUARD_COMMIT` (`/metrics` shows it in
//! `opsguard_build_info`, `--version` prints it). Set from the environment when given (a
//! container build without `.git`), else `git rev-parse --short HEAD`, else "unknown".
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=OPSGUARD_COMMIT");
    let given = std::env::var("OPSGUARD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty());
    let commit = given
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // A new commit or checkout moves HEAD (or the branch it names): build again then.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for file in ["HEAD", "logs/HEAD"] {
            let path = std::path::Path::new(&dir).join(file);
            // A missing file would make every build rerun this script.
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!("cargo:rustc-env=OPSGUARD_COMMIT={commit}");
}
