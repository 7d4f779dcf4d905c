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
