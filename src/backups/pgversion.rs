//! pg_dump refuses a server of a newer major version: find that out before a backup fails
//! (`opsguard config check` asks each target's `server_version_num`), and say it plainly
//! when a backup fails for it.

use super::pgenv::PgEnv;
use std::time::Duration;

/// The major version of `pg_dump --version` (`pg_dump (PostgreSQL) 16.4 (Debian …)` → 16).
pub fn local_major(pg_dump: &str) -> Result<u32, String> {
    // Nothing of opsguard's environment (it may hold secrets) reaches the program.
    let out = std::process::Command::new(pg_dump)
        .arg("--version")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .map_err(|e| format!("cannot run {pg_dump} --version: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_major(&text).ok_or_else(|| format!("{pg_dump} --version printed no version"))
}

fn parse_major(text: &str) -> Option<u32> {
    let version = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    version
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The server's major version (`server_version_num` / 10000), within `timeout`.
pub async fn server_major(env: &PgEnv, timeout: Duration) -> Result<u32, String> {
    use sqlx::Connection;
    let options = env.connect_options();
    let connect = sqlx::PgConnection::connect_with(&options);
    let mut conn = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
        .map_err(|e| format!("cannot connect: {}", short(&e)))?;
    let (num,): (String,) = sqlx::query_as("SHOW server_version_num")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("cannot ask its version: {}", short(&e)))?;
    let _ = conn.close().await;
    num.trim()
        .parse::<u32>()
        .map(|n| n / 10_000)
        .map_err(|_| "it reported no version number".into())
}

/// A database error without anything but its kind and message (never the DSN).
fn short(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => io.kind().to_string(),
        other => other.to_string().lines().next().unwrap_or_default().into(),
    }
}

/// `pg_dump --version`, e.g. "pg_dump (PostgreSQL) 15.20".
pub async fn version_line(program: &str) -> Option<String> {
    let run = tokio::process::Command::new(program)
        .arg("--version")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), run)
        .await
        .ok()?
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Why `pg_dump` (its `--version` line) cannot dump a server of `server_version` (its
/// `server_version` text), if it cannot. An unreadable version is left to pg_dump to judge.
pub fn refusal(version_line: Option<&str>, server_version: &str, pg_dump: &str) -> Option<String> {
    too_old(
        parse_major(version_line?)?,
        parse_major(server_version)?,
        pg_dump,
    )
}

/// What an operator must do when pg_dump is older than the server, if it is.
pub fn too_old(local: u32, server: u32, pg_dump: &str) -> Option<String> {
    (local < server).then(|| {
        format!(
            "pg_dump {local} is older than the server (PostgreSQL {server}) and cannot dump it \
             ({pg_dump}): install postgresql-client-{server} or newer, or point [backups] \
             pg_dump at one"
        )
    })
}

/// pg_dump's own words for a version mismatch, made plain (None when it is another error).
/// pg_dump 15+ says "aborting because of server version mismatch" and, on a detail line,
/// "server version: 17.2; pg_dump version: 15.10".
pub fn explain_mismatch(stderr: &str) -> Option<String> {
    if !stderr.contains("server version mismatch") {
        return None;
    }
    let number = |label: &str| parse_major(&stderr[stderr.find(label)? + label.len()..]);
    Some(
        match (number("pg_dump version:"), number("server version:")) {
            (Some(local), Some(server)) => too_old(local, server, "pg_dump"),
            _ => None,
        }
        .unwrap_or_else(|| {
            "pg_dump is older than the server (server version mismatch): install a \
             postgresql-client at least as new as the server"
                .into()
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_what_the_tools_print() {
        assert_eq!(
            parse_major("pg_dump (PostgreSQL) 16.4 (Debian 16.4-1)\n"),
            Some(16)
        );
        assert_eq!(parse_major("pg_dump (PostgreSQL) 9.6.24"), Some(9));
        for stderr in [
            "pg_dump: error: aborting because of server version mismatch\n\
             pg_dump: detail: server version: 17.2 (Debian 17.2-1); pg_dump version: 15.10",
            "pg_dump: server version: 17.2; pg_dump version: 15.10\n\
             pg_dump: aborting because of server version mismatch",
        ] {
            let plain = explain_mismatch(stderr).unwrap();
            assert!(
                plain.contains("pg_dump 15") && plain.contains("PostgreSQL 17"),
                "{plain}"
            );
            assert!(plain.contains("postgresql-client-17"), "{plain}");
        }
        assert_eq!(explain_mismatch("pg_dump: error: connection refused"), None);
        assert_eq!(too_old(17, 16, "pg_dump"), None);
        let debian15 = Some("pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)");
        let problem = refusal(debian15, "16.4 (Debian 16.4-1.pgdg120+1)", "pg_dump").unwrap();
        assert!(problem.starts_with("pg_dump 15 is older than the server (PostgreSQL 16)"));
        assert!(problem.contains("postgresql-client-16"), "{problem}");
        assert_eq!(refusal(debian15, "15.2", "pg_dump"), None);
        assert_eq!(
            refusal(Some("pg_dump (PostgreSQL) 17.6"), "16.4", "pg_dump"),
            None
        );
        assert_eq!(refusal(None, "16.4", "pg_dump"), None);
        assert_eq!(refusal(Some("pg_dump"), "16.4", "pg_dump"), None);
    }
}
