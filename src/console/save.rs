//! `--save-dir`: a document a reply carries (a `/check … json|sarif` report) is written to
//! a file named after the command and the request id, e.g. `check-<request-id>.sarif`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use uuid::Uuid;

/// The command's name from a typed line (`/check all json` → `check`), letters and `_` only.
fn command_name(line: &str) -> String {
    let word = line.split_whitespace().next().unwrap_or_default();
    let name: String = word
        .trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        "reply".into()
    } else {
        name.to_ascii_lowercase()
    }
}

/// The extension of the document's own name (`json`, `sarif`), or `bin`.
fn extension(name: &str) -> String {
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some(ext) if !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()) => {
            ext.to_ascii_lowercase()
        }
        _ => "bin".into(),
    }
}

/// The file a document of `line`'s request is saved as, inside `dir`.
pub fn file_for(dir: &Path, line: &str, request: Uuid, name: &str) -> std::path::PathBuf {
    dir.join(format!(
        "{}-{}.{}",
        command_name(line),
        request.hyphenated(),
        extension(name)
    ))
}

/// Save the document and say where (or why not), as the console line to print.
pub fn document(dir: &Path, line: &str, request: Uuid, name: &str, bytes: &[u8]) -> String {
    let path = file_for(dir, line, request, name);
    let written = std::fs::create_dir_all(dir).and_then(|()| write_private(&path, bytes));
    match written {
        Ok(()) => format!(
            "[saved {name} ({} bytes) to {}]",
            bytes.len(),
            path.display()
        ),
        Err(e) => format!("[could not save {name} to {}: {e}]", path.display()),
    }
}

/// A new file readable by its owner only (a report names hosts and weaknesses); an existing
/// file (or a planted link) at the path is never written through.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_after_the_command_and_the_request() {
        let id = Uuid::nil();
        let dir = Path::new("/tmp/reports");
        let path = file_for(dir, "/check all sarif", id, "opsguard-all-1.sarif");
        assert_eq!(
            path,
            dir.join("check-00000000-0000-0000-0000-000000000000.sarif")
        );
        let odd = file_for(dir, "/../../etc/passwd x", id, "a.b/../c");
        assert_eq!(odd.parent(), Some(dir), "{}", odd.display());
        assert_eq!(command_name("/Check@opsguard_bot json"), "check");
        assert_eq!(extension("report"), "bin");
    }

    #[test]
    fn a_saved_report_is_private_and_never_written_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("opsguard-save-{}", Uuid::new_v4()));
        let id = Uuid::new_v4();
        let said = document(&dir, "/check all json", id, "r.json", b"{}");
        assert!(said.starts_with("[saved r.json (2 bytes)"), "{said}");
        let path = file_for(&dir, "/check all json", id, "r.json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A link planted at the next report's name is refused, its target untouched.
        let target = dir.join("target");
        std::fs::write(&target, "untouched").unwrap();
        let next = Uuid::new_v4();
        std::os::unix::fs::symlink(&target, file_for(&dir, "/check", next, "r.json")).unwrap();
        let said = document(&dir, "/check", next, "r.json", b"{}");
        assert!(said.starts_with("[could not save"), "{said}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
