//! A consistent view of the database being backed up: one REPEATABLE READ transaction
//! exports its snapshot for `pg_dump --snapshot` and counts every table's rows in it, so the
//! catalogue's counts are exactly what the dump holds; a restore test compares against them.

use super::pgenv::PgEnv;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeMap;

/// Row counts per `schema.table`.
pub type TableCounts = BTreeMap<String, i64>;

/// The tables a dump carries data for: ordinary and partition tables outside the system
/// schemas, not members of an extension.
const TABLES: &str = "SELECT format('%I.%I', n.nspname, c.relname), n.nspname || '.' || c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 2";

/// An open snapshot: keep it until pg_dump has finished.
pub struct Snapshot {
    conn: PgConnection,
    pub id: String,
    pub server_version: String,
}

impl Snapshot {
    pub async fn export(env: &PgEnv) -> Result<Snapshot, sqlx::Error> {
        let mut conn = PgConnection::connect_with(&env.connect_options()).await?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await?;
        let (id, server_version): (String, String) =
            sqlx::query_as("SELECT pg_export_snapshot(), current_setting('server_version')")
                .fetch_one(&mut conn)
                .await?;
        Ok(Snapshot {
            conn,
            id,
            server_version,
        })
    }

    /// Every table's row count, in the snapshot.
    pub async fn count_rows(&mut self) -> Result<TableCounts, sqlx::Error> {
        count_rows(&mut self.conn).await
    }

    pub async fn close(mut self) {
        let _ = sqlx::query("COMMIT").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

/// Every table's row count on a connection (a restored scratch database, say).
pub async fn count_rows(conn: &mut PgConnection) -> Result<TableCounts, sqlx::Error> {
    let tables: Vec<(String, String)> = sqlx::query_as(TABLES).fetch_all(&mut *conn).await?;
    let mut counts = TableCounts::new();
    for (quoted, name) in tables {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {quoted}"
        )))
        .fetch_one(&mut *conn)
        .await?;
        counts.insert(name, n);
    }
    Ok(counts)
}

/// `pg_dump --version`, e.g. "pg_dump (PostgreSQL) 15.20".
pub async fn pg_dump_version(program: &str) -> Option<String> {
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

/// Why `pg_dump` (its `--version` line) cannot dump a server of `server_version`, if it
/// cannot: pg_dump refuses a server of a newer major version than its own.
pub fn pg_dump_too_old(pg_dump_version: Option<&str>, server_version: &str) -> Option<String> {
    let major = |text: &str| -> Option<u32> {
        let number = text
            .split_whitespace()
            .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
        number
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let (client, server) = (major(pg_dump_version?)?, major(server_version)?);
    (client < server).then(|| {
        format!(
            "pg_dump {client} is older than the server (PostgreSQL {server}) and cannot dump it; \
             install pg_dump {server} or newer (Debian: postgresql-client-{server}) or point \
             [backups] pg_dump at one"
        )
    })
}

/// The differences between two sets of counts, as lines an operator can read.
pub fn compare(expected: &TableCounts, found: &TableCounts) -> Vec<String> {
    let mut problems = Vec::new();
    for (table, want) in expected {
        match found.get(table) {
            Some(got) if got == want => {}
            Some(got) => problems.push(format!("{table}: {got} rows, expected {want}")),
            None => problems.push(format!("{table}: missing, expected {want} rows")),
        }
    }
    for table in found.keys().filter(|t| !expected.contains_key(*t)) {
        problems.push(format!("{table}: not in the backup's catalogue"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pg_dump_older_than_the_server_is_named_with_both_majors() {
        let debian15 = Some("pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)");
        let problem = pg_dump_too_old(debian15, "16.4 (Debian 16.4-1.pgdg120+1)").unwrap();
        assert!(problem.starts_with("pg_dump 15 is older than the server (PostgreSQL 16)"));
        assert!(problem.contains("postgresql-client-16"), "{problem}");
        assert_eq!(pg_dump_too_old(debian15, "15.2"), None);
        assert_eq!(
            pg_dump_too_old(Some("pg_dump (PostgreSQL) 17.6"), "16.4"),
            None
        );
        // An unreadable version is left to pg_dump itself to judge.
        assert_eq!(pg_dump_too_old(None, "16.4"), None);
        assert_eq!(pg_dump_too_old(Some("pg_dump"), "16.4"), None);
    }

    #[test]
    fn compare_names_every_difference() {
        let want: TableCounts = [("public.a".into(), 3), ("public.b".into(), 1)].into();
        let got: TableCounts = [("public.a".into(), 2), ("public.c".into(), 0)].into();
        let problems = compare(&want, &got);
        assert_eq!(
            problems,
            vec![
                "public.a: 2 rows, expected 3",
                "public.b: missing, expected 1 rows",
                "public.c: not in the backup's catalogue"
            ]
        );
        assert!(compare(&want, &want).is_empty());
    }
}
