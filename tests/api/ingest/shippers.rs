//! The syslog-ng recipe (`deploy/shippers/syslog-ng-sshd.conf`) run for real: syslog-ng
//! follows an auth.log this test writes and posts its sshd records to the ingest API with a
//! service token; the events arrive as sshd wrote them (reasons, outcomes, accounts,
//! addresses), and lines that are no login attempt are not sent.

use super::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// (address, host, account, outcome, reason, sender) of a stored event.
type Stored = (
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
);

/// The syslog-ng process, stopped when the test ends (pass or fail).
struct Shipper(Child);

impl Drop for Shipper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn syslog_ng_ships_sshd_failures_from_an_auth_log() {
    let app = spawn_app_with(with_secret).await;
    let dir = std::env::temp_dir().join(format!("opsguard-shipper-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("auth.log");
    let at = |secs: i64| {
        (Utc::now() - chrono::Duration::seconds(secs))
            .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
            .to_string()
    };
    let lines = [
        format!(
            "{} web1 sshd[101]: Invalid user test9 from 52.80.34.196 port 36060",
            at(50)
        ),
        format!(
            "{} web1 sshd[101]: pam_unix(sshd:auth): check pass; user unknown",
            at(50)
        ),
        format!(
            "{} web1 sshd[101]: Failed password for invalid user test9 from 52.80.34.196 port 36060 ssh2",
            at(48)
        ),
        format!(
            "{} web1 sshd[102]: Failed password for root from 2001:db8::5 port 42393 ssh2",
            at(40)
        ),
        format!(
            "{} web1 sshd[103]: Connection closed by 5.36.59.76 port 22 [preauth]",
            at(30)
        ),
        format!(
            "{} web1 sshd[104]: Accepted publickey for deploy from 198.51.100.4 port 50001 ssh2",
            at(20)
        ),
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let recipe = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/shippers/syslog-ng-sshd.conf"
    );
    let base = app.url("");
    let child = Command::new("syslog-ng")
        .args(["-F", "-e", "-f", recipe])
        .arg(format!("--persist-file={}", dir.join("persist").display()))
        .arg(format!("--pidfile={}", dir.join("pid").display()))
        .arg(format!("--control={}", dir.join("ctl").display()))
        .env("OPSGUARD_URL", base.trim_end_matches('/'))
        .env("OPSGUARD_TOKEN", good_token())
        .env("AUTH_LOG", &log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("syslog-ng (Debian: apt-get install syslog-ng-core syslog-ng-mod-http)");
    let _shipper = Shipper(child);
    // Wait for proof: the four login records stored (syslog-ng batches for up to 1 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored(&app).await < 4 {
        assert!(
            Instant::now() < deadline,
            "syslog-ng delivered {} of 4",
            stored(&app).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows: Vec<Stored> = sqlx::query_as(
        "SELECT host(ip), host, account, outcome, reason, sender FROM auth_events ORDER BY at",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        rows,
        [
            (
                s("52.80.34.196"),
                None,
                s("test9"),
                "failure".into(),
                s("unknown_user"),
                "auth-api".into()
            ),
            (
                s("52.80.34.196"),
                None,
                s("test9"),
                "failure".into(),
                s("unknown_user"),
                "auth-api".into()
            ),
            (
                s("2001:db8::5"),
                None,
                s("root"),
                "failure".into(),
                s("bad_password"),
                "auth-api".into()
            ),
            (
                s("198.51.100.4"),
                None,
                s("deploy"),
                "success".into(),
                s("ok"),
                "auth-api".into()
            ),
        ]
    );
    // A line appended later is shipped too (the file is followed), the rest never.
    let more = format!(
        "{} web1 sshd[105]: Failed password for admin from 203.0.113.8 port 1 ssh2\n",
        at(5)
    );
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, more.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored(&app).await < 5 {
        assert!(
            Instant::now() < deadline,
            "the appended line was not shipped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // In file order: the earlier lines that are no login attempt were never sent.
    assert_eq!(stored(&app).await, 5);
    let _ = std::fs::remove_dir_all(&dir);
}
