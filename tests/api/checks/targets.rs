//! Local targets for the checks: HTTP servers with good and bad security headers, one that
//! counts its requests, a closed port and one that accepts and never answers.

use axum::Router;
use axum::http::header::{HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Serve a router on 127.0.0.1:0; returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn with_headers(pairs: Vec<(&'static str, String)>) -> impl IntoResponse {
    let mut response = "hello".into_response();
    for (name, value) in pairs {
        response.headers_mut().append(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

/// Every header the Observatory wants, and a well-flagged session cookie.
pub async fn good() -> String {
    serve(Router::new().route(
        "/",
        get(|| async {
            with_headers(vec![
                (
                    "strict-transport-security",
                    "max-age=63072000; includeSubDomains".into(),
                ),
                (
                    "content-security-policy",
                    "default-src 'self'; frame-ancestors 'none'".into(),
                ),
                ("x-content-type-options", "nosniff".into()),
                ("x-frame-options", "DENY".into()),
                ("referrer-policy", "no-referrer".into()),
                (
                    "set-cookie",
                    "sessionid=GOODSECRETVALUE; Secure; HttpOnly; SameSite=Lax".into(),
                ),
            ])
        }),
    ))
    .await
}

/// Plain HTTP that only redirects to HTTPS (as it should).
pub async fn redirecting() -> String {
    serve(Router::new().route(
        "/",
        get(|| async {
            (
                axum::http::StatusCode::MOVED_PERMANENTLY,
                [("location", "https://app.example.invalid/")],
            )
        }),
    ))
    .await
}

/// A cookie value that must never appear in findings or chat.
pub const BAD_COOKIE_VALUE: &str = "TOPSECRETCOOKIEVALUE";
/// The size of the bad server's Referrer-Policy value.
pub const HUGE: usize = 20_000;

/// No HSTS or CSP, an insecure session cookie, a huge header and one holding HTML.
pub async fn bad() -> String {
    serve(Router::new().route(
        "/",
        get(|| async {
            with_headers(vec![
                (
                    "set-cookie",
                    format!("sessionid={BAD_COOKIE_VALUE}; Path=/"),
                ),
                ("x-frame-options", "<b>allow</b>".into()),
                ("referrer-policy", "x".repeat(HUGE)),
            ])
        }),
    ))
    .await
}

/// A server that counts requests (to prove a check never reached it).
pub async fn counting() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let url = serve(Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { "hi" }
    }))
    .await;
    (url, hits)
}

/// A port where nothing listens.
pub async fn closed() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// Accepts connections and never answers.
pub async fn hanging() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}
