//! The `postgres` check against the real local PostgreSQL (trust auth, default settings),
//! in a database of the test's own with per-database settings, so tests don't interfere.

use super::{assert_unreachable, dead_ports, run, titled};
use crate::helpers::{TestDb, admin_url, pg_host_port, pg_url};
use opsguard::checks::Check;
use opsguard::checks::postgres::Postgres;
use opsguard::config::PostgresTargets;
use opsguard::domain::finding::Severity;
use opsguard::domain::secret::Secret;
use sqlx::{Connection, PgConnection};

const PLANTED: &str = "planted-Pw-4242";

async fn admin(sql: String) {
    let mut conn = PgConnection::connect(&admin_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Several statements as one script, as a superuser connected to database `db`.
async fn admin_script(db: &str, sql: String) {
    let mut conn = PgConnection::connect(&pg_url(None, None, db))
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
}

fn targets(dsn: String, expected: &[&str]) -> PostgresTargets {
    PostgresTargets {
        dsns: vec![Secret::new(dsn)],
        expected_superusers: expected.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test]
async fn hardening_findings_on_a_default_server() {
    let db = TestDb::create().await;
    let name = &db.name;
    admin(format!(
        "ALTER DATABASE \"{name}\" SET password_encryption = 'md5'"
    ))
    .await;
    admin(format!(
        "ALTER DATABASE \"{name}\" SET statement_timeout = '30s'"
    ))
    .await;
    sqlx::query("CREATE TABLE open_orders (id int, tenant_id int)")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE closed_orders (id int, tenant_id int)")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE closed_orders ENABLE ROW LEVEL SECURITY")
        .execute(&db.pool)
        .await
        .unwrap();
    let dsn = pg_url(None, Some(PLANTED), name);

    let found = run(Postgres::new(&targets(dsn.clone(), &["postgres"]))).await;
    assert!(
        found
            .iter()
            .all(|f| f.target == format!("{}/{name}", pg_host_port())),
        "{found:?}"
    );
    let sev = |title: &str| titled(&found, title).map(|f| f.severity);
    assert_eq!(
        sev("Passwords not hashed with SCRAM"),
        Some(Severity::Medium),
        "{found:?}"
    );
    assert_eq!(sev("Connections not logged"), Some(Severity::Medium));
    assert_eq!(sev("Disconnections not logged"), Some(Severity::Medium));
    assert_eq!(
        sev("idle_in_transaction_session_timeout not set"),
        Some(Severity::Low)
    );
    assert_eq!(
        sev("statement_timeout not set"),
        None,
        "set for this database"
    );
    let ssl: String = sqlx::query_scalar("SELECT current_setting('ssl')")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        sev("TLS disabled"),
        (ssl != "on").then_some(Severity::High),
        "ssl = {ssl}"
    );
    assert_eq!(sev("pg_hba.conf trusts"), Some(Severity::High));
    assert_eq!(
        sev("Login roles without password expiry"),
        Some(Severity::Info)
    );
    let rls = titled(&found, "without row-level security").expect("open tenant table reported");
    assert_eq!(rls.severity, Severity::High);
    assert!(
        rls.evidence.contains("public.open_orders") && !rls.evidence.contains("closed_orders"),
        "{}",
        rls.evidence
    );
    let supers = titled(&found, "Unexpected superusers").expect("root is an unexpected superuser");
    assert!(
        supers.evidence.split(", ").any(|r| r == "root"),
        "{}",
        supers.evidence
    );
    for f in &found {
        assert!(
            !format!("{f:?}").contains(PLANTED),
            "credential leaked: {f:?}"
        );
    }

    // Expected superusers and a database that already hashes with SCRAM: no such findings.
    admin(format!(
        "ALTER DATABASE \"{name}\" SET password_encryption = 'scram-sha-256'"
    ))
    .await;
    sqlx::query("ALTER TABLE open_orders ENABLE ROW LEVEL SECURITY")
        .execute(&db.pool)
        .await
        .unwrap();
    let found = run(Postgres::new(&targets(dsn, &["root", "postgres"]))).await;
    for gone in [
        "Passwords not hashed",
        "Unexpected superusers",
        "without row-level security",
    ] {
        assert!(titled(&found, gone).is_none(), "{gone}: {found:?}");
    }
}

#[tokio::test]
async fn unreachable_databases_never_show_the_dsn() {
    let (closed, hanging) = dead_ports().await;
    let settings = PostgresTargets {
        dsns: vec![
            Secret::new(format!("postgres://root:{PLANTED}@127.0.0.1:{closed}/app")),
            Secret::new(format!("postgres://root:{PLANTED}@127.0.0.1:{hanging}/app")),
        ],
        expected_superusers: vec![],
    };
    let check = Postgres::new(&settings);
    assert_eq!(
        check.targets(),
        vec![
            format!("127.0.0.1:{closed}/app"),
            format!("127.0.0.1:{hanging}/app")
        ]
    );
    let found = assert_unreachable(check, 2).await;
    for f in &found {
        assert!(
            !format!("{f:?}").contains(PLANTED),
            "credential leaked: {f:?}"
        );
    }
}

#[tokio::test]
async fn the_pg_hba_remediation_names_grants_that_work() {
    let db = TestDb::create().await;
    let role = format!("hba_reader_{}", uuid::Uuid::new_v4().simple());
    admin(format!("CREATE ROLE {role} LOGIN")).await;
    let dsn = pg_url(Some(&role), None, &db.name);

    let found = run(Postgres::new(&targets(dsn.clone(), &[]))).await;
    let unreadable =
        titled(&found, "pg_hba rules could not be read").expect("a plain role cannot read them");
    let grants = unreadable
        .remediation
        .strip_prefix(&format!(
            "As a superuser, connected to database {}: ",
            db.name
        ))
        .and_then(|r| r.split(" (or review").next())
        .expect("the remediation names the database and the statements to run");
    assert!(grants.contains(&role), "{grants}");
    // Run exactly what the finding says: afterwards the rules are read.
    admin_script(&db.name, grants.to_string()).await;
    let found = run(Postgres::new(&targets(dsn, &[]))).await;
    assert!(
        titled(&found, "pg_hba rules could not be read").is_none(),
        "{found:?}"
    );
    assert!(titled(&found, "pg_hba.conf trusts").is_some(), "{found:?}");
    admin_script(
        &db.name,
        format!(
            "REVOKE SELECT ON pg_catalog.pg_hba_file_rules FROM {role}; \
         REVOKE EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() FROM {role}; DROP ROLE {role}"
        ),
    )
    .await;
}
