//! Security checks through the real pipeline against local targets: `/check` summaries and
//! stored findings, JSON and SARIF documents, `/findings`, permissions, and bad input
//! (unknown names, addresses typed in chat, unreachable and hanging targets).

mod access;
mod targets;

use super::helpers::*;
use opsguard::checks::store;
use opsguard::domain::finding::{Finding, Severity};
use serde_json::Value;
use std::time::{Duration, Instant};
use targets::*;

pub(super) const OPERATOR: i64 = 31;
pub(super) const VIEWER: i64 = 32;
const TIMEOUT_MS: u64 = 500;

pub(super) async fn app_checking(urls: Vec<String>) -> TestApp {
    let app = spawn_app_with(move |s| {
        s.checks.timeout_ms = TIMEOUT_MS;
        s.checks.http_headers.urls = urls;
    })
    .await;
    app.add_user(OPERATOR, "operator").await;
    app.add_user(VIEWER, "viewer").await;
    app
}

async fn last_findings(app: &TestApp) -> Vec<Finding> {
    store::last(app.pool())
        .await
        .unwrap()
        .expect("a stored run")
        .report
        .findings
}

fn titles_for(findings: &[Finding], target: &str) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.target == target)
        .map(|f| f.title.clone())
        .collect()
}

/// The document of the latest sendDocument call, parsed as JSON.
async fn document(app: &TestApp, before: usize) -> (String, Value) {
    let calls = app
        .telegram
        .wait_until("a document", |c| {
            c.iter().filter(|c| c.method == "sendDocument").count() > before
        })
        .await;
    let call = calls
        .into_iter()
        .filter(|c| c.method == "sendDocument")
        .nth(before)
        .unwrap();
    assert_eq!(call.chat_id(), Some(OPERATOR));
    let raw = call.body["multipart"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // teloxide uploads the file as its own part and points `document` at it.
    let doc = match call.body["document"]
        .as_str()
        .and_then(|d| d.strip_prefix("attach://"))
    {
        Some(part) => call.body[part].clone(),
        None => call.body["document"].clone(),
    };
    assert!(
        doc.is_object(),
        "the document is JSON: {}",
        &raw[..raw.len().min(500)]
    );
    (raw, doc)
}

#[tokio::test]
async fn http_headers_reports_good_bad_unreachable_and_hanging_targets() {
    let (good, bad, closed, hanging) = (good().await, bad().await, closed().await, hanging().await);
    let redirecting = redirecting().await;
    let app = app_checking(vec![
        good.clone(),
        bad.clone(),
        closed.clone(),
        hanging.clone(),
        redirecting.clone(),
    ])
    .await;

    let started = Instant::now();
    let reply = app.say(OPERATOR, "/check http_headers").await.text();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(TIMEOUT_MS + 1500),
        "a hanging target costs its timeout, not more: {took:?}"
    );

    // Summary: counts by severity, worst first, escaped, and the way to the full list.
    assert!(
        reply.starts_with("<b>Check report</b> · http_headers · 5 target(s)"),
        "{reply}"
    );
    assert!(
        reply.contains("🔴 ") && reply.contains(" high") && reply.contains("/findings"),
        "{reply}"
    );
    assert!(reply.contains("Fix: "), "{reply}");
    assert!(
        !reply.contains(BAD_COOKIE_VALUE) && !reply.contains("<b>allow"),
        "{reply}"
    );

    let findings = last_findings(&app).await;
    let good_titles = titles_for(&findings, &good);
    // A plain-HTTP site: HSTS sent over HTTP is ignored and the missing HTTPS costs 20, as
    // the Observatory scores it (the former 80/B+ counted HSTS sent in clear).
    assert_eq!(
        good_titles,
        [
            "No HTTPS",
            "No redirect from HTTP to HTTPS",
            "HTTP Observatory score"
        ],
        "{findings:#?}"
    );
    let score = |target: &str| {
        findings
            .iter()
            .find(|f| f.target == target && f.title == "HTTP Observatory score")
            .unwrap()
            .evidence
            .clone()
    };
    assert!(
        score(&good).starts_with("score 60, grade C+"),
        "{}",
        score(&good)
    );
    assert!(
        score(&bad).starts_with("score 0, grade F"),
        "{}",
        score(&bad)
    );

    let bad_titles = titles_for(&findings, &bad);
    // Plain HTTP: the Observatory's result is "no HTTPS", not "HSTS missing".
    for expected in [
        "No HTTPS",
        "Content-Security-Policy missing",
        "Session cookie 'sessionid' without Secure",
        "Session cookie 'sessionid' without HttpOnly",
        "X-Frame-Options invalid",
        "X-Content-Type-Options missing",
        "Referrer-Policy invalid",
    ] {
        assert!(
            bad_titles.iter().any(|t| t == expected),
            "missing {expected}: {bad_titles:?}"
        );
    }
    let of = |title: &str| {
        findings
            .iter()
            .find(|f| f.target == bad && f.title == title)
            .unwrap()
    };
    assert_eq!(
        of("Session cookie 'sessionid' without Secure").severity,
        Severity::High
    );
    assert!(
        of("Content-Security-Policy missing")
            .reference
            .contains("csp-not-implemented")
    );
    let huge = &of("Referrer-Policy invalid").evidence;
    assert!(
        huge.chars().count() < 250 && huge.ends_with("bytes in all)"),
        "{huge}"
    );
    assert!(
        findings
            .iter()
            .all(|f| !f.evidence.contains(BAD_COOKIE_VALUE))
    );

    // A redirect to HTTPS is followed by no one: the https URL is the target to configure.
    assert_eq!(titles_for(&findings, &redirecting), ["Redirects to HTTPS"]);
    for target in [&closed, &hanging] {
        let t = titles_for(&findings, target);
        assert_eq!(t, ["Target unreachable"], "{target}");
    }
    let hung = findings.iter().find(|f| f.target == hanging).unwrap();
    assert!(
        hung.evidence.contains("no answer within 500 ms"),
        "{}",
        hung.evidence
    );

    // The full list escapes what the targets sent.
    let full = app.say(OPERATOR, "/findings").await;
    let text = full.text();
    assert!(
        text.contains("&lt;b&gt;allow&lt;/b&gt;") && !text.contains("<b>allow"),
        "{text}"
    );
    assert!(!full.raw().contains(BAD_COOKIE_VALUE) && !full.raw().contains(&"x".repeat(300)));
}

#[tokio::test]
async fn check_all_sends_json_and_sarif_documents_and_compares_runs() {
    let (good, bad) = (good().await, bad().await);
    let app = app_checking(vec![good.clone(), bad.clone()]).await;

    let reply = app.say(OPERATOR, "/check all json").await.text();
    assert!(
        reply.contains("<b>Check report</b> · all · 4 target(s)"),
        "{reply}"
    );
    let (_, json) = document(&app, 0).await;
    assert_eq!(json["selection"], "all");
    let findings = json["findings"].as_array().unwrap();
    let has = |check: &str, title: &str| {
        findings
            .iter()
            .any(|f| f["check"] == check && f["title"] == title)
    };
    assert!(has("secrets", "No managed secrets") && has("backups", "No backups recorded"));
    assert!(has("http_headers", "Content-Security-Policy missing"));
    assert_eq!(json["checked"].as_array().unwrap().len(), 4);

    let reply = app.say(OPERATOR, "/check all sarif").await.text();
    assert!(
        reply.contains("Since the previous run: no change"),
        "{reply}"
    );
    let (raw, sarif) = document(&app, 1).await;
    assert!(
        raw.contains("filename=\"opsguard-all-") && raw.contains(".sarif\""),
        "{}",
        &raw[..300]
    );
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "opsguard");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    for r in results {
        assert!(rules.contains(&r["ruleId"].as_str().unwrap()), "{r}");
        assert!(
            ["error", "warning", "note"].contains(&r["level"].as_str().unwrap()),
            "{r}"
        );
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
    }
    let csp = results
        .iter()
        .find(|r| r["ruleId"] == "http_headers/content-security-policy-missing")
        .unwrap();
    assert_eq!(csp["level"], "error");
    assert_eq!(
        csp["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        bad.as_str()
    );
    let secrets = results
        .iter()
        .find(|r| r["ruleId"].as_str().unwrap().starts_with("secrets/"))
        .unwrap();
    assert_eq!(secrets["level"], "warning");
}
