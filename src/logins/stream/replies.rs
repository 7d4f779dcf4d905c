//! Reading the replies of XREADGROUP and XAUTOCLAIM into entries: each entry's id, its
//! `event` field and its proof fields (`hmac`, `kid`, `token`); other fields are ignored.

use crate::logins::entry_proof::Proof;
use redis::Value;

/// One stream entry: its id, its `event` field (None when absent or not a string) and
/// its proof.
pub(super) struct Entry {
    pub id: String,
    pub event: Option<Vec<u8>>,
    pub proof: Proof,
}

/// XREADGROUP: `[[key, [entry, …]]]` (or a map of key → entries); nil on time-out.
pub(super) fn read_reply(reply: Value) -> Vec<Entry> {
    let per_stream: Vec<Value> = match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| pair(s).map(|(_, entries)| entries))
            .collect(),
        Value::Map(streams) => streams.into_iter().map(|(_, e)| e).collect(),
        _ => Vec::new(),
    };
    per_stream.into_iter().flat_map(entries).collect()
}

/// XAUTOCLAIM: `[next cursor, [entry, …], [deleted id, …]]`.
pub(super) fn autoclaim_reply(reply: Value) -> (String, Vec<Entry>) {
    let mut parts = match reply {
        Value::Array(parts) => parts.into_iter(),
        _ => Vec::new().into_iter(),
    };
    let next = parts.next().and_then(|v| redis::from_redis_value(v).ok());
    let claimed = parts.next().map(entries).unwrap_or_default();
    (next.unwrap_or_else(|| "0-0".into()), claimed)
}

/// `[[id, [field, value, …]], …]`; nil entries (deleted meanwhile) are skipped.
fn entries(list: Value) -> Vec<Entry> {
    let Value::Array(list) = list else {
        return Vec::new();
    };
    let entry = |v: Value| {
        let (id, fields) = pair(v)?;
        let mut fields = match fields {
            Value::Array(fields) => fields.into_iter(),
            _ => Vec::new().into_iter(),
        };
        let (mut event, mut proof) = (None, Proof::default());
        while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
            let Value::BulkString(k) = &k else { continue };
            let slot = match k.as_slice() {
                b"event" => &mut event,
                b"hmac" => &mut proof.hmac,
                b"kid" => &mut proof.kid,
                b"token" => &mut proof.token,
                _ => continue,
            };
            *slot = redis::from_redis_value::<Vec<u8>>(v).ok();
        }
        let id = redis::from_redis_value(id).ok()?;
        Some(Entry { id, event, proof })
    };
    list.into_iter().filter_map(entry).collect()
}

fn pair(v: Value) -> Option<(Value, Value)> {
    match v {
        Value::Array(two) if two.len() == 2 => {
            let mut two = two.into_iter();
            Some((two.next()?, two.next()?))
        }
        _ => None,
    }
}
