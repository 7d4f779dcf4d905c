//! The lenient reading of a posted body: any JSON value as `Loose` (a string borrowed where
//! JSON escapes allow, an object read as a `RawEvent`, or something else named for the
//! error), and arrays bounded in length while they are read.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Any JSON value: a string (borrowed when unescaped), an object (read as an event), or
/// something else, named for the error message.
#[derive(Debug)]
pub(super) enum Loose<'a> {
    Text(Cow<'a, str>),
    Object(Box<RawEvent<'a>>),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor(PhantomData))
    }
}

struct LooseVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LooseVisitor<'a> {
    type Value = Loose<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Loose::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Loose::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Loose::Other("a number"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        RawEvent::from_map(map).map(|raw| Loose::Object(Box::new(raw)))
    }
}

/// The fields of one event as sent; `null` counts as absent. Unknown fields are ignored,
/// a field given twice is a problem of the event.
#[derive(Debug, Default)]
pub(super) struct RawEvent<'a> {
    pub(super) id: Option<Loose<'a>>,
    pub(super) at: Option<Loose<'a>>,
    pub(super) ip: Option<Loose<'a>>,
    pub(super) host: Option<Loose<'a>>,
    pub(super) account: Option<Loose<'a>>,
    pub(super) service: Option<Loose<'a>>,
    pub(super) outcome: Option<Loose<'a>>,
    pub(super) reason: Option<Loose<'a>>,
    pub(super) user_agent: Option<Loose<'a>>,
    pub(super) repeated: Option<&'static str>,
}

impl<'a> RawEvent<'a> {
    fn from_map<'de: 'a, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut raw = RawEvent::default();
        // Keys as `Loose`: borrowed, where a `Cow` key would be an allocation each.
        while let Some(key) = map.next_key::<Loose>()? {
            let key = match &key {
                Loose::Text(key) => key.as_ref(),
                _ => "",
            };
            let (name, slot) = match key {
                "id" => ("id", &mut raw.id),
                "at" => ("at", &mut raw.at),
                "ip" => ("ip", &mut raw.ip),
                "host" => ("host", &mut raw.host),
                "account" => ("account", &mut raw.account),
                "service" => ("service", &mut raw.service),
                "outcome" => ("outcome", &mut raw.outcome),
                "reason" => ("reason", &mut raw.reason),
                "user_agent" => ("user_agent", &mut raw.user_agent),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                raw.repeated = Some(name);
            }
            *slot = map.next_value::<Option<Loose>>()?;
        }
        Ok(raw)
    }
}

/// An array of at most `.0` elements, or `None` as soon as one more appears: a body of a
/// million tiny elements is refused without holding them all in memory.
pub(super) struct BoundedSeq<'a>(pub(super) usize, pub(super) PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for BoundedSeq<'a> {
    type Value = Option<Vec<Loose<'a>>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.0));
        while let Some(element) = seq.next_element::<Loose<'a>>()? {
            if elements.len() == self.0 {
                return Ok(None);
            }
            elements.push(element);
        }
        Ok(Some(elements))
    }
}
