//! A fake Telegram Bot API on loopback: records every call, answers like Telegram does,
//! and serves queued updates to `getUpdates`. Every call is checked against what Telegram
//! enforces (`rules`: HTML, lengths, buttons, commands, flood control) and refused as
//! Telegram would refuse it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod html;
pub mod polls;
pub mod rules;

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// The JSON body, or `{"multipart": "<raw>"}` for uploads.
    pub body: Value,
    /// The message id the fake assigned, for sends.
    pub message_id: Option<i64>,
    /// When the call arrived.
    pub at: Instant,
}

impl Call {
    pub fn chat_id(&self) -> Option<i64> {
        self.body.get("chat_id").and_then(Value::as_i64)
    }
    pub fn text(&self) -> String {
        self.body
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
    /// Inline buttons as (label, callback data).
    pub fn buttons(&self) -> Vec<(String, String)> {
        let rows = self
            .body
            .pointer("/reply_markup/inline_keyboard")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        rows.iter()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .map(|b| {
                (
                    b["text"].as_str().unwrap_or_default().to_string(),
                    b["callback_data"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
    pub fn raw(&self) -> String {
        self.body.to_string()
    }
    /// Sent with `protect_content` (Telegram refuses to forward or save it).
    pub fn protected(&self) -> bool {
        self.body.get("protect_content").and_then(Value::as_bool) == Some(true)
    }
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    updates: VecDeque<Value>,
    /// Every `getUpdates`, and the wake-up of the ones held open (see `polls`).
    polls: polls::Polls,
    next_message_id: i64,
    /// Delay before answering sends (to keep a command in flight).
    send_delay: Duration,
    /// Scripted failures for `sendMessage`, used in order, one per call.
    forced: VecDeque<Forced>,
    /// `sendMessage` to these chats always fails like this.
    failing_chats: HashMap<i64, Forced>,
    /// `sendMessage` calls answered with a scripted failure (not in `calls`).
    rejected: Vec<Call>,
    /// Sends to these chats are held unanswered (and unrecorded) while the chat is here;
    /// a held call whose client goes away is never recorded, as if Telegram never got it.
    held_chats: HashSet<i64>,
    /// Sends that have started waiting on a held chat.
    held_calls: usize,
    /// Messages the user deleted: editing them fails as Telegram says.
    deleted_messages: HashSet<i64>,
    /// Telegram's rules and flood control.
    rules: rules::Rules,
    /// Calls refused by `rules` (not in `calls`).
    refused: Vec<Call>,
}

/// A scripted failure: the HTTP status and the Bot API's error body. A `{path}` in the
/// description is replaced by the request path (which holds the bot token), like an API
/// or proxy that echoes the URL would do.
#[derive(Debug, Clone)]
pub struct Forced {
    pub status: u16,
    pub body: Value,
}

impl Forced {
    /// 429 with `parameters.retry_after`, as Telegram's flood control answers.
    pub fn retry_after(secs: u32) -> Self {
        Forced {
            status: 429,
            body: json!({
                "ok": false, "error_code": 429,
                "description": format!("Too Many Requests: retry after {secs}"),
                "parameters": { "retry_after": secs }
            }),
        }
    }
    pub fn server_error() -> Self {
        Forced {
            status: 500,
            body: json!({ "ok": false, "error_code": 500, "description": "Internal Server Error" }),
        }
    }
    /// 502, as Telegram's front end answers when the Bot API server behind it is down.
    pub fn bad_gateway() -> Self {
        Forced {
            status: 502,
            body: json!({ "ok": false, "error_code": 502, "description": "Bad Gateway" }),
        }
    }
    pub fn bad_request(description: &str) -> Self {
        Forced {
            status: 400,
            body: json!({ "ok": false, "error_code": 400, "description": description }),
        }
    }
}

#[derive(Clone)]
pub struct FakeTelegram {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((bot, method)): Path<(String, String)>,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    // Telegram's method names are case-insensitive; teloxide sends `SendMessage`.
    let mut chars = method.chars();
    let method: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    let parsed: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| multipart(&String::from_utf8_lossy(&body)));
    if method == "getUpdates" {
        let pending = polls::hold_get_updates(&inner, parsed).await;
        return (
            StatusCode::OK,
            axum::Json(json!({ "ok": true, "result": pending })),
        );
    }
    let held = |inner: &Mutex<Inner>| {
        let chat = parsed.get("chat_id").and_then(Value::as_i64);
        chat.is_some_and(|c| inner.lock().unwrap().held_chats.contains(&c))
    };
    if method.starts_with("send") && held(&inner) {
        inner.lock().unwrap().held_calls += 1;
        while held(&inner) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let delay = inner.lock().unwrap().send_delay;
    if method.starts_with("send") && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut guard = inner.lock().unwrap();
    if method == "sendMessage" {
        let chat = parsed.get("chat_id").and_then(Value::as_i64);
        let forced = match chat.and_then(|c| guard.failing_chats.get(&c).cloned()) {
            Some(f) => Some(f),
            None => guard.forced.pop_front(),
        };
        if let Some(Forced { status, mut body }) = forced {
            if let Some(d) = body.get("description").and_then(Value::as_str) {
                body["description"] = json!(d.replace("{path}", &format!("/{bot}/{method}")));
            }
            guard.rejected.push(Call {
                method,
                body: parsed,
                message_id: None,
                at: Instant::now(),
            });
            return (StatusCode::from_u16(status).unwrap(), axum::Json(body));
        }
    }
    if let Err(Forced { status, body }) = guard.rules.check(&method, &parsed) {
        guard.refused.push(Call {
            method,
            body: parsed,
            message_id: None,
            at: Instant::now(),
        });
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body));
    }
    if method == "editMessageText"
        && let Some(id) = parsed.get("message_id").and_then(Value::as_i64)
        && guard.deleted_messages.contains(&id)
    {
        let body = json!({ "ok": false, "error_code": 400,
                           "description": "Bad Request: message to edit not found" });
        return (StatusCode::BAD_REQUEST, axum::Json(body));
    }
    if method == "deleteMessage"
        && let Some(id) = parsed.get("message_id").and_then(Value::as_i64)
    {
        // Gone from the chat: later edits of it fail like Telegram's.
        guard.deleted_messages.insert(id);
    }
    let result = match method.as_str() {
        "getMe" => json!({
            "id": 1, "is_bot": true, "first_name": "opsguard", "username": "opsguard_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "has_main_web_app": false
        }),
        "sendMessage"
        | "sendDocument"
        | "sendPhoto"
        | "editMessageReplyMarkup"
        | "editMessageText" => {
            // An edit answers with the message it edited; a send with a new one.
            let id = match parsed.get("message_id").and_then(Value::as_i64) {
                Some(edited) if method.starts_with("edit") => edited,
                _ => {
                    guard.next_message_id += 1;
                    guard.next_message_id
                }
            };
            let chat = parsed.get("chat_id").and_then(Value::as_i64).unwrap_or(1);
            json!({
                "message_id": id, "date": 1_700_000_000,
                "chat": { "id": chat, "type": "private", "first_name": "x" },
                "text": parsed.get("text").cloned().unwrap_or(json!("document"))
            })
        }
        _ => json!(true),
    };
    let message_id = result.get("message_id").and_then(Value::as_i64);
    guard.calls.push(Call {
        method,
        body: parsed,
        message_id,
        at: Instant::now(),
    });
    (
        StatusCode::OK,
        axum::Json(json!({ "ok": true, "result": result })),
    )
}

/// Form fields of a multipart body as a JSON object (values that parse as JSON are
/// parsed); the raw body is kept under "multipart".
fn multipart(raw: &str) -> Value {
    let mut fields = serde_json::Map::new();
    for part in raw.split("\r\n--") {
        let Some(start) = part.find("name=\"") else {
            continue;
        };
        let rest = &part[start + 6..];
        let Some(end) = rest.find('"') else { continue };
        let Some(value_at) = rest.find("\r\n\r\n") else {
            continue;
        };
        let value = rest[value_at + 4..].trim_end_matches("\r\n");
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        fields.insert(rest[..end].to_string(), value);
    }
    fields.insert("multipart".into(), Value::String(raw.to_string()));
    Value::Object(fields)
}

impl FakeTelegram {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/{bot}/{method}", post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeTelegram { url, inner }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Messages and documents sent to a chat, oldest first.
    pub fn sent_to(&self, chat: i64) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "sendMessage" || c.method == "sendDocument")
            .filter(|c| {
                c.chat_id() == Some(chat)
                    || (c.method == "sendDocument" && c.raw().contains(&chat.to_string()))
            })
            .collect()
    }

    pub fn set_send_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().send_delay = delay;
    }

    /// Answer the next `sendMessage` calls with these failures, in order.
    pub fn force(&self, failures: impl IntoIterator<Item = Forced>) {
        self.inner.lock().unwrap().forced.extend(failures);
    }

    /// Answer every `sendMessage` to `chat` with this failure.
    pub fn fail_chat(&self, chat: i64, failure: Forced) {
        self.inner
            .lock()
            .unwrap()
            .failing_chats
            .insert(chat, failure);
    }

    /// `sendMessage` to `chat` works again.
    pub fn heal_chat(&self, chat: i64) {
        self.inner.lock().unwrap().failing_chats.remove(&chat);
    }

    /// The user deleted this message: `editMessageText` of it answers "message to edit not
    /// found".
    pub fn delete_message(&self, message_id: i64) {
        self.inner
            .lock()
            .unwrap()
            .deleted_messages
            .insert(message_id);
    }

    /// Messages the bot deleted (`deleteMessage`), as (chat id, message id), oldest first.
    pub fn deletions(&self) -> Vec<(i64, i64)> {
        self.calls_to("deleteMessage")
            .iter()
            .filter_map(|c| Some((c.chat_id()?, c.body.get("message_id")?.as_i64()?)))
            .collect()
    }

    /// `sendMessage` calls that got a scripted failure.
    pub fn rejected(&self) -> Vec<Call> {
        self.inner.lock().unwrap().rejected.clone()
    }

    /// Hold every send to these chats unanswered until `release_all`.
    pub fn hold_chats(&self, chats: impl IntoIterator<Item = i64>) {
        self.inner.lock().unwrap().held_chats.extend(chats);
    }

    pub fn release_all(&self) {
        self.inner.lock().unwrap().held_chats.clear();
    }

    /// How many sends have started waiting on a held chat.
    pub fn held_calls(&self) -> usize {
        self.inner.lock().unwrap().held_calls
    }

    /// Queue an update: a `getUpdates` held open answers with it at once.
    pub fn push_update(&self, update: Value) {
        let mut guard = self.inner.lock().unwrap();
        guard.updates.push_back(update);
        guard.polls.pushed();
    }

    /// Every `getUpdates` so far, oldest first.
    pub fn polls(&self) -> Vec<polls::Poll> {
        self.inner.lock().unwrap().polls.list()
    }

    /// When each update was pushed, oldest first.
    pub fn pushes(&self) -> Vec<Instant> {
        self.inner.lock().unwrap().polls.pushes()
    }

    /// Wait until `pred` holds over the calls (at most 10 s).
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        // Up to 30 s: a passing test returns as soon as it holds; a loaded CI machine with
        // every test running at once can take far longer than a quiet one.
        for _ in 0..1500 {
            let calls = self.calls();
            if pred(&calls) {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}; calls: {:#?}", self.calls());
    }
}
