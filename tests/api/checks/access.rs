//! Who may run checks and read findings, and bad input: unknown check names and addresses
//! typed in chat (refused before anything runs: checks reach only configured targets).

use super::targets::counting;
use super::{OPERATOR, VIEWER, app_checking};
use crate::helpers::TestApp;
use opsguard::checks::store;
use opsguard::domain::UserId;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn viewers_read_findings_but_cannot_run_checks() {
    let app = app_checking(vec![]).await;
    assert_eq!(
        app.say(VIEWER, "/check").await.text(),
        "⛔ You may not run /check."
    );
    assert!(
        store::last(app.pool()).await.unwrap().is_none(),
        "a denied /check stores nothing"
    );
    assert!(
        app.say(VIEWER, "/findings")
            .await
            .text()
            .contains("No check has run yet")
    );

    let call = app.say(OPERATOR, "/check").await;
    let reply = call.text();
    assert!(
        reply.contains("· all · 2 target(s)") && reply.contains("🟠 2 medium"),
        "{reply}"
    );
    // The summary's "Full list" button: the presser's own, once, through the pipeline.
    let buttons = call.buttons();
    assert_eq!(buttons.len(), 1, "{buttons:?}");
    assert_eq!(buttons[0].0, "📋 Full list");
    let message = call.message_id.unwrap();
    let stranger = app.press(VIEWER, &buttons[0].1, message).await;
    assert!(
        stranger.body["text"]
            .as_str()
            .unwrap()
            .contains("not yours"),
        "{:?}",
        stranger.body
    );
    let pressed = app.press(OPERATOR, &buttons[0].1, message).await.text();
    assert!(
        pressed.starts_with("<b>Last check report</b> · all"),
        "{pressed}"
    );
    let again = app.press(OPERATOR, &buttons[0].1, message).await;
    assert!(
        again.body["text"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{:?}",
        again.body
    );

    let full = app.say(VIEWER, "/findings").await.text();
    assert!(full.starts_with("<b>Last check report</b> · all"), "{full}");
    assert!(
        full.contains("No managed secrets") && full.contains("No backups recorded"),
        "{full}"
    );
    assert!(full.contains("Ref: OWASP"), "{full}");
}

#[tokio::test]
async fn unknown_names_list_the_valid_ones_and_addresses_are_refused() {
    let (url, hits) = counting().await;
    let app = app_checking(vec![]).await;

    let reply = app.say(OPERATOR, "/check nosuch").await.text();
    assert!(
        reply.contains("There is no check named 'nosuch'"),
        "{reply}"
    );
    for name in ["all", "http_headers", "secrets", "backups"] {
        assert!(reply.contains(name), "{name} missing from {reply}");
    }
    let reply = app.say(OPERATOR, "/check http_headers").await.text();
    assert!(reply.contains("has no targets"), "{reply}");

    for line in [
        "/check https://evil.example".to_string(),
        format!("/check {url}"),
        format!("/check {url} json"),
    ] {
        let reply = app.say(OPERATOR, &line).await.text();
        assert!(reply.contains("not an address"), "{line}: {reply}");
    }
    // Every update has run to its end: a check it started would have hit the server.
    app.idle().await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a check reached an address typed in chat"
    );
    assert!(store::last(app.pool()).await.unwrap().is_none());
}

#[tokio::test]
async fn the_console_names_the_document_it_cannot_show() {
    let app = app_checking(vec![]).await;
    let mut out: Vec<u8> = Vec::new();
    let input: &[u8] = b"/check all sarif\n";
    let options = opsguard::console::Options::default();
    opsguard::console::run(
        &app.engine,
        UserId(OPERATOR),
        input,
        &mut out,
        false,
        &options,
    )
    .await
    .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Check report"), "{out}");
    assert!(
        out.contains("[document opsguard-all-") && out.contains(".sarif, "),
        "{out}"
    );
    assert!(
        out.contains(" bytes — sent as a file in Telegram; --save-dir DIR saves it]"),
        "{out}"
    );
}

/// Run `input` in the console as the operator with `--save-dir dir`: what it printed.
async fn console_saving(app: &TestApp, dir: &std::path::Path, input: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::new();
    let options = opsguard::console::Options {
        save_dir: Some(dir.to_path_buf()),
    };
    opsguard::console::run(
        &app.engine,
        UserId(OPERATOR),
        input,
        &mut out,
        false,
        &options,
    )
    .await
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn with_a_save_dir_the_console_saves_json_and_sarif_reports_named_by_request() {
    let app = app_checking(vec![]).await;
    let dir = std::env::temp_dir().join(format!("opsguard-save-{}", uuid::Uuid::new_v4()));
    let reports = dir.join("reports");
    let out = console_saving(&app, &reports, b"/check all json\n/check all sarif\n").await;
    let saved: Vec<std::path::PathBuf> = out
        .lines()
        .filter_map(|l| {
            l.strip_prefix("[saved ")?
                .split(" to ")
                .nth(1)?
                .strip_suffix(']')
        })
        .map(std::path::PathBuf::from)
        .collect();
    assert_eq!(saved.len(), 2, "{out}");
    let checks = app.audit_rows().await;
    for (path, ext) in saved.iter().zip(["json", "sarif"]) {
        assert_eq!(path.parent(), Some(reports.as_path()), "{out}");
        let name = path.file_name().unwrap().to_str().unwrap();
        let request = name
            .strip_prefix("check-")
            .and_then(|n| n.strip_suffix(&format!(".{ext}")))
            .unwrap_or_else(|| panic!("{name}"));
        assert!(
            checks
                .iter()
                .any(|r| r.entry.request_id == request && r.entry.command == "check"),
            "{name} names the request that made it"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        if ext == "sarif" {
            assert_eq!(body["version"], "2.1.0", "{body}");
        } else {
            assert!(body.is_object(), "{body}");
        }
    }
    // A save dir that cannot be created: the console says so and carries on.
    let blocked = dir.join("a-file");
    std::fs::write(&blocked, b"").unwrap();
    let out = console_saving(&app, &blocked, b"/check all json\n/whoami\n").await;
    assert!(out.contains("[could not save opsguard-all-"), "{out}");
    assert!(out.contains("Telegram id"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
