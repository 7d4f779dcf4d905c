//! A scheduled `/check` pushes only what changed: the first run's full report, nothing
//! while nothing changes, then "N resolved" once the target is fixed.

use super::*;
use axum::http::HeaderMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A site whose security headers are missing until `fixed` is set.
async fn site(fixed: Arc<AtomicBool>) -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let fixed = fixed.clone();
            async move {
                let mut headers = HeaderMap::new();
                if fixed.load(Ordering::SeqCst) {
                    for (k, v) in [
                        ("strict-transport-security", "max-age=63072000"),
                        (
                            "content-security-policy",
                            "default-src 'self'; frame-ancestors 'none'",
                        ),
                        ("x-content-type-options", "nosniff"),
                        ("x-frame-options", "DENY"),
                        ("referrer-policy", "no-referrer"),
                    ] {
                        headers.insert(k, v.parse().unwrap());
                    }
                }
                (headers, "ok")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn a_scheduled_check_pushes_only_what_changed() {
    let fixed = Arc::new(AtomicBool::new(false));
    let url = site(fixed.clone()).await;
    let app = spawn_app_with(move |s| {
        s.scheduler.enabled = false;
        s.schedules = vec![sched(
            "headers",
            "0 */5 * * * *",
            "/check http_headers",
            CHAT,
        )];
        s.checks.http_headers.urls = vec![url];
    })
    .await;
    let scheduler = Scheduler::new(app.engine.clone()).unwrap();

    scheduler.run_due(at(10, 0, 0)).await;
    let first = outbox(&app, "schedule:headers").await;
    assert_eq!(first.len(), 1, "the first run reports in full");
    says(&first[0].1, "Check report");
    says(&first[0].1, "Strict-Transport-Security");

    scheduler.run_due(at(10, 5, 0)).await;
    assert_eq!(
        outbox(&app, "schedule:headers").await.len(),
        1,
        "no change, no message"
    );
    let quiet = runs(&app, "headers").await;
    assert_eq!(quiet.len(), 2, "the quiet run still ran and was recorded");

    fixed.store(true, Ordering::SeqCst);
    scheduler.run_due(at(10, 10, 0)).await;
    let all = outbox(&app, "schedule:headers").await;
    assert_eq!(all.len(), 2, "a change is pushed");
    says(&all[1].1, "resolved");
    says(&all[1].1, "✅ Resolved:");
    assert!(!all[1].1.contains("New: "), "{}", all[1].1);
}
