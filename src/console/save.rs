//! `--save-dir`: a document a reply carries (a `/check … json|sarif` report) is written to
//! a file named after the command and the request id, e.g. `check-<request-id>.sarif`.

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
    let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, bytes));
    match written {
        Ok(()) => format!(
            "[saved {name} ({} bytes) to {}]",
            bytes.len(),
            path.display()
        ),
        Err(e) => format!("[could not save {name} to {}: {e}]", path.display()),
    }
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
}
