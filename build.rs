//! Rebuild when a migration changes (`sqlx::migrate!` embeds the `migrations/` folder), and
//! stamp the commit into `OPSGUARD_COMMIT` (`opsguard --version`, `opsguard_build_info`):
//! `git rev-parse --short HEAD`, or the `OPSGUARD_COMMIT` of the build's environment (an image
//! built without `.git`), or "unknown".
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=OPSGUARD_COMMIT");
    let commit = std::env::var("OPSGUARD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OPSGUARD_COMMIT={}", commit.trim());
    for file in head_files() {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// The files whose change moves HEAD: `HEAD` itself (a checkout), the branch it points to (a
/// commit) and `packed-refs`; only those that exist (a missing one would rerun every build).
fn head_files() -> Vec<PathBuf> {
    let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return Vec::new();
    };
    let mut files = vec![Path::new(&git_dir).join("HEAD")];
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        let common = Path::new(&common);
        let common = if common.is_absolute() {
            common.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(common)
        };
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            files.push(common.join(branch));
        }
        files.push(common.join("packed-refs"));
    }
    files.into_iter().filter(|f| f.exists()).collect()
}
