//! What Telegram refuses, enforced on every call the fake gets: HTML that does not parse,
//! text over 4096 and captions over 1024 characters (after parsing, in UTF-16 units),
//! callback data outside 1–64 bytes, more than 100 buttons, `setMyCommands` outside its
//! rules, chats Telegram has not seen or that became supergroups, and flood control (20
//! messages a minute per group, 30 a second overall) answered with 429 and `retry_after`.

use super::html;
use super::{Call, Forced};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// The limits and chat states the fake applies.
pub struct Rules {
    pub group_per_minute: usize,
    /// The group limit's window (a minute; tests shorten it).
    pub group_window: Duration,
    pub overall_per_second: usize,
    /// Chats Telegram has not seen (a user who never opened the bot): "chat not found".
    pub unseen: HashSet<i64>,
    /// Groups upgraded to supergroups: old id → new id.
    pub upgraded: HashMap<i64, i64>,
    /// Accepted sends per chat, and overall (for flood control).
    sends: HashMap<i64, VecDeque<Instant>>,
    overall: VecDeque<Instant>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            group_per_minute: 20,
            group_window: Duration::from_secs(60),
            overall_per_second: 30,
            unseen: HashSet::new(),
            upgraded: HashMap::new(),
            sends: HashMap::new(),
            overall: VecDeque::new(),
        }
    }
}

fn is_send(method: &str) -> bool {
    matches!(method, "sendMessage" | "sendDocument" | "sendPhoto")
}

impl Rules {
    /// Check a call; `Err` is the answer Telegram would give instead of doing it.
    pub fn check(&mut self, method: &str, body: &Value) -> Result<(), Forced> {
        let bad = |d: String| Err(Forced::bad_request(&format!("Bad Request: {d}")));
        let chat = body
            .get("chat_id")
            .and_then(Value::as_i64)
            .or_else(|| body.pointer("/scope/chat_id").and_then(Value::as_i64));
        if let Some(chat) = chat {
            if self.unseen.contains(&chat) {
                return bad("chat not found".into());
            }
            if let Some(new) = self.upgraded.get(&chat) {
                return Err(Forced {
                    status: 400,
                    body: json!({
                        "ok": false, "error_code": 400,
                        "description": "Bad Request: group chat was upgraded to a supergroup chat",
                        "parameters": { "migrate_to_chat_id": new }
                    }),
                });
            }
        }
        if let Err(d) = content(method, body) {
            return bad(d);
        }
        if method == "setMyCommands"
            && let Err(d) = commands(body)
        {
            return bad(d);
        }
        if is_send(method)
            && let Some(chat) = chat
        {
            self.flood(chat)?;
        }
        Ok(())
    }

    /// Count an accepted send, or answer 429 when it would break flood control.
    fn flood(&mut self, chat: i64) -> Result<(), Forced> {
        let now = Instant::now();
        let minute = self.group_window;
        let second = Duration::from_secs(1);
        while self.overall.front().is_some_and(|t| now - *t >= second) {
            self.overall.pop_front();
        }
        let sends = self.sends.entry(chat).or_default();
        while sends.front().is_some_and(|t| now - *t >= minute) {
            sends.pop_front();
        }
        if chat < 0 && sends.len() >= self.group_per_minute {
            let wait = minute - (now - sends[0]);
            return Err(Forced::retry_after(
                wait.as_secs_f64().ceil().max(1.0) as u32
            ));
        }
        if self.overall.len() >= self.overall_per_second {
            return Err(Forced::retry_after(1));
        }
        sends.push_back(now);
        self.overall.push_back(now);
        Ok(())
    }
}

/// Text, caption and keyboard of a send or an edit.
fn content(method: &str, body: &Value) -> Result<(), String> {
    let html_mode = body.get("parse_mode").and_then(Value::as_str) == Some("HTML");
    let parsed = |raw: &str| -> Result<String, String> {
        if html_mode {
            html::parse(raw).map_err(|e| format!("can't parse entities: {e}"))
        } else {
            Ok(raw.to_string())
        }
    };
    if matches!(method, "sendMessage" | "editMessageText") {
        let raw = body.get("text").and_then(Value::as_str).unwrap_or_default();
        let text = parsed(raw)?;
        if text.trim().is_empty() {
            return Err("message text is empty".into());
        }
        if html::units(&text) > 4096 {
            return Err("message is too long".into());
        }
    }
    if let Some(raw) = body.get("caption").and_then(Value::as_str) {
        let caption = parsed(raw)?;
        if html::units(&caption) > 1024 {
            return Err("message caption is too long".into());
        }
    }
    let rows = body
        .pointer("/reply_markup/inline_keyboard")
        .and_then(Value::as_array);
    let buttons: Vec<&Value> = rows
        .into_iter()
        .flatten()
        .flat_map(|r| r.as_array().into_iter().flatten())
        .collect();
    if buttons.len() > 100 {
        return Err("reply markup is too long".into());
    }
    for b in buttons {
        if b.get("text")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err("text buttons are unallowed in the inline keyboard".into());
        }
        if let Some(data) = b.get("callback_data") {
            let len = data.as_str().map_or(0, str::len);
            if !(1..=64).contains(&len) {
                return Err("BUTTON_DATA_INVALID".into());
            }
        }
    }
    Ok(())
}

/// `setMyCommands`: at most 100 commands, each 1–32 of a-z, 0-9 and `_`, described in
/// 1–256 characters.
fn commands(body: &Value) -> Result<(), String> {
    let list = body
        .get("commands")
        .and_then(Value::as_array)
        .ok_or("commands must be an array")?;
    if list.len() > 100 {
        return Err("too many commands".into());
    }
    for c in list {
        let name = c.get("command").and_then(Value::as_str).unwrap_or_default();
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err("BOT_COMMAND_INVALID".into());
        }
        let about = c
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !(1..=256).contains(&html::units(about.trim())) {
            return Err("command description is empty or too long".into());
        }
    }
    Ok(())
}

impl super::FakeTelegram {
    /// Calls Telegram's rules refused (bad HTML, too long, flood control…), oldest first.
    pub fn refused(&self) -> Vec<Call> {
        self.inner.lock().unwrap().refused.clone()
    }

    /// Flood control: messages a minute per group, and a second overall.
    pub fn set_limits(&self, group_per_minute: usize, overall_per_second: usize) {
        let mut guard = self.inner.lock().unwrap();
        guard.rules.group_per_minute = group_per_minute;
        guard.rules.overall_per_second = overall_per_second;
    }

    /// A chat Telegram has not seen (a user who never opened the bot): calls for it fail
    /// with "chat not found" until `meet`.
    pub fn unseen_chat(&self, chat: i64) {
        self.inner.lock().unwrap().rules.unseen.insert(chat);
    }

    /// The user opened the bot: Telegram knows their chat now.
    pub fn meet(&self, chat: i64) {
        self.inner.lock().unwrap().rules.unseen.remove(&chat);
    }

    /// The group became a supergroup: sends to `old` fail with `migrate_to_chat_id`.
    pub fn upgrade_group(&self, old: i64, new: i64) {
        self.inner.lock().unwrap().rules.upgraded.insert(old, new);
    }

    /// Count a group's messages over `window` instead of a minute.
    pub fn set_group_window(&self, window: Duration) {
        self.inner.lock().unwrap().rules.group_window = window;
    }

    /// Forget the sends flood control counted (as if the minute had passed).
    pub fn forget_sends(&self) {
        let mut guard = self.inner.lock().unwrap();
        guard.rules.sends.clear();
        guard.rules.overall.clear();
    }
}
