//! Random update bodies for property tests (a seeded generator, so a failure names the seed
//! that reproduces it): real update shapes with parts replaced by random JSON, keys of every
//! Bot API version and of none, ids at the edges of their types.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

/// Keys the generator draws from: what opsguard reads, what it skips, what no version has.
const KEYS: &[&str] = &[
    "message",
    "callback_query",
    "edited_message",
    "channel_post",
    "poll_answer",
    "message_reaction",
    "from",
    "chat",
    "sender_chat",
    "text",
    "caption",
    "entities",
    "forward_origin",
    "is_automatic_forward",
    "id",
    "type",
    "is_bot",
    "first_name",
    "last_name",
    "data",
    "message_id",
    "user",
    "reply_to_message",
    "quote",
    "date_time",
    "story_thread",
    "zz_future",
    "",
];

/// A seeded source of update bodies.
pub struct Bodies {
    rng: StdRng,
}

impl Bodies {
    pub fn new(seed: u64) -> Self {
        Bodies {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A JSON object with a valid `update_id`, more or less like an update.
    pub fn update(&mut self, update_id: i64) -> Value {
        let mut body = match self.rng.random_range(0..4) {
            0 => json!({}),
            1 => self.message_update(),
            2 => self.press_update(),
            _ => self.object(3),
        };
        for _ in 0..self.rng.random_range(0..6) {
            self.mutate(&mut body, 0);
        }
        let mut body = match body {
            Value::Object(map) => map,
            other => Map::from_iter([("message".to_string(), other)]),
        };
        body.insert("update_id".into(), json!(update_id));
        Value::Object(body)
    }

    fn message_update(&mut self) -> Value {
        let user = self.rng.random_range(1_000..100_000);
        json!({ "message": {
            "message_id": 1, "date": 1,
            "from": { "id": user, "is_bot": false, "first_name": "R" },
            "chat": { "id": user, "type": "private" },
            "text": "/whoami",
            "entities": [{ "type": "bot_command", "offset": 0, "length": 7 }]
        }})
    }

    fn press_update(&mut self) -> Value {
        let user = self.rng.random_range(1_000..100_000);
        json!({ "callback_query": {
            "id": "p", "from": { "id": user, "is_bot": false, "first_name": "R" },
            "chat_instance": "1", "data": "x",
            "message": { "message_id": 1, "date": 0, "chat": { "id": user, "type": "private" } }
        }})
    }

    /// Replace, insert or remove one part somewhere down the tree.
    fn mutate(&mut self, value: &mut Value, depth: usize) {
        if let Value::Object(map) = value
            && !map.is_empty()
            && depth < 6
            && self.rng.random_bool(0.6)
        {
            let at = self.rng.random_range(0..map.len());
            let key = map.keys().nth(at).cloned().unwrap_or_default();
            if let Some(inner) = map.get_mut(&key) {
                return self.mutate(inner, depth + 1);
            }
        }
        match (value, self.rng.random_range(0..3)) {
            (Value::Object(map), 0) => {
                let key = self.key();
                map.insert(key, self.any(2));
            }
            (Value::Object(map), 1) if !map.is_empty() => {
                let at = self.rng.random_range(0..map.len());
                let key = map.keys().nth(at).cloned().unwrap_or_default();
                map.remove(&key);
            }
            (value, _) => *value = self.any(2),
        }
    }

    fn key(&mut self) -> String {
        KEYS[self.rng.random_range(0..KEYS.len())].to_string()
    }

    fn object(&mut self, depth: usize) -> Value {
        let n = self.rng.random_range(0..4);
        Value::Object((0..n).map(|_| (self.key(), self.any(depth))).collect())
    }

    fn any(&mut self, depth: usize) -> Value {
        let pick = self.rng.random_range(0..if depth == 0 { 6 } else { 8 });
        match pick {
            0 => Value::Null,
            1 => json!(self.rng.random_bool(0.5)),
            2 => {
                let edges = [0, -1, 1, i64::from(i32::MAX) + 1, i64::MAX, i64::MIN];
                json!(edges[self.rng.random_range(0..edges.len())])
            }
            3 => json!(u64::MAX),
            4 => json!(self.rng.random::<f64>() * 1e20),
            5 => json!(
                [
                    "/whoami",
                    "",
                    "private",
                    "bot_command",
                    "é😀",
                    "/grant 7 admin"
                ][self.rng.random_range(0..6)]
            ),
            6 => Value::Array(
                (0..self.rng.random_range(0..3))
                    .map(|_| self.any(depth - 1))
                    .collect(),
            ),
            _ => self.object(depth - 1),
        }
    }
}
