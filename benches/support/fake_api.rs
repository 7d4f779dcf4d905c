//! A minimal fake Bot API for the benchmark: answers like Telegram, records when each
//! chat's messages arrive and counts menu calls.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub type Arrivals = Arc<Mutex<HashMap<i64, Vec<Instant>>>>;

/// `setMyCommands` / `deleteMyCommands` calls answered so far (menu sends), all servers.
pub static MENU_CALLS: AtomicUsize = AtomicUsize::new(0);

async fn handle(
    State(arrivals): State<Arrivals>,
    Path((_bot, method)): Path<(String, String)>,
    body: Bytes,
) -> axum::Json<Value> {
    let now = Instant::now();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let method = method.to_ascii_lowercase();
    let result = if method == "sendmessage" {
        let chat = parsed.get("chat_id").and_then(Value::as_i64).unwrap_or(0);
        arrivals.lock().unwrap().entry(chat).or_default().push(now);
        json!({
            "message_id": 1, "date": 1_700_000_000,
            "chat": { "id": chat, "type": "private", "first_name": "x" }, "text": "ok"
        })
    } else if method == "getme" {
        json!({
            "id": 1, "is_bot": true, "first_name": "opsguard", "username": "opsguard_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "has_main_web_app": false
        })
    } else {
        if method.ends_with("mycommands") {
            MENU_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        json!(true)
    };
    axum::Json(json!({ "ok": true, "result": result }))
}

pub async fn start() -> (String, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let app = Router::new()
        .route("/{bot}/{method}", post(handle))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, arrivals)
}

/// A baseline route's answer: the update's chat gets the same sendMessage opsguard's reply
/// makes (sent in the background, as the 200 does not wait for it).
fn reply(client: reqwest::Client, send: String, update: &Value) -> axum::http::StatusCode {
    let Some(chat) = update.pointer("/message/chat/id").and_then(|v| v.as_i64()) else {
        return axum::http::StatusCode::OK;
    };
    tokio::spawn(async move {
        let body = json!({ "chat_id": chat, "text": "<b>whoami</b>", "parse_mode": "HTML" });
        let _ = client.post(send).json(&body).send().await;
    });
    axum::http::StatusCode::OK
}

/// The baseline: a bare route that parses the same update JSON and makes the same
/// outbound sendMessage call, with no secret check, de-dup, RBAC, limits or audit.
pub async fn start_baseline(api_url: String) -> String {
    let client = reqwest::Client::new();
    let send = format!("{api_url}/botTOKEN/sendMessage");
    let app = Router::new().route(
        "/telegram/webhook",
        post(move |body: Bytes| {
            let (client, send) = (client.clone(), send.clone());
            async move {
                let update: serde_json::Value = match serde_json::from_slice(&body) {
                    Ok(u) => u,
                    Err(_) => return axum::http::StatusCode::BAD_REQUEST,
                };
                reply(client, send, &update)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The machine's floor for a durable-200 design: the same bare route, but the update is
/// first stored with ONE synchronously committed `INSERT` (a WAL flush: what an update
/// answered 200 must at least cost) before the 200 and the same outbound sendMessage.
/// Opsguard's path does more by design (the audit's attempt and outcome are flushed too),
/// so this is the ceiling any durable design can reach on this machine, not a goal.
pub async fn start_durable_baseline(api_url: String, pool: sqlx::PgPool) -> String {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_durable (update_id bigint PRIMARY KEY, body jsonb NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("bench_durable");
    let client = reqwest::Client::new();
    let send = format!("{api_url}/botTOKEN/sendMessage");
    let app = Router::new().route(
        "/telegram/webhook",
        post(move |body: Bytes| {
            let (client, send, pool) = (client.clone(), send.clone(), pool.clone());
            async move {
                let update: serde_json::Value = match serde_json::from_slice(&body) {
                    Ok(u) => u,
                    Err(_) => return axum::http::StatusCode::BAD_REQUEST,
                };
                let id = update.get("update_id").and_then(Value::as_i64).unwrap_or(0);
                let stored = sqlx::query(
                    "INSERT INTO bench_durable (update_id, body) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(&update)
                .execute(&pool)
                .await;
                if stored.is_err() {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                reply(client, send, &update)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
