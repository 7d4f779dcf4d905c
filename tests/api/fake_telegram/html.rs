//! Telegram's HTML parse mode as the Bot API applies it (after tdlib's `parse_html`): the
//! tags it knows, the entities it decodes, and its refusal of unknown, unclosed or
//! mismatched tags. Written from the documented behaviour, not from tdlib's code.

/// The tags Telegram accepts.
const TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

/// The text left after parsing, or the reason Telegram gives after "can't parse entities: ".
pub fn parse(html: &str) -> Result<String, String> {
    let mut text = String::new();
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with('&') {
            let (decoded, used) = entity(rest);
            text.push_str(&decoded);
            i += used;
            continue;
        }
        if !rest.starts_with('<') {
            let c = rest.chars().next().unwrap();
            text.push(c);
            i += c.len_utf8();
            continue;
        }
        let start = i;
        let Some(end) = rest.find('>') else {
            return Err(format!("Unclosed start tag at byte offset {start}"));
        };
        let tag = &rest[1..end];
        i += end + 1;
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim_end().to_ascii_lowercase();
            let Some((expected, _)) = open.pop() else {
                return Err(format!("Unexpected end tag at byte offset {start}"));
            };
            if !name.is_empty() && name != expected {
                return Err(format!(
                    "Unmatched end tag at byte offset {start}, expected \"</{expected}>\", found \"</{name}>\""
                ));
            }
            continue;
        }
        let name_end = tag
            .find(|c: char| c.is_ascii_whitespace() || c == '/')
            .unwrap_or(tag.len());
        let name = tag[..name_end].to_ascii_lowercase();
        if !TAGS.contains(&name.as_str()) {
            return Err(format!(
                "Unsupported start tag \"{name}\" at byte offset {start}"
            ));
        }
        let attrs = attributes(&tag[name_end..])
            .ok_or_else(|| format!("Expected equal sign in declaration of an attribute of the tag \"{name}\" at byte offset {start}"))?;
        let attr = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if name == "span" && attr("class").map(String::as_str) != Some("tg-spoiler") {
            return Err(format!(
                "Tag \"span\" must have class \"tg-spoiler\" at byte offset {start}"
            ));
        }
        if name == "tg-emoji" && attr("emoji-id").is_none() {
            return Err(format!(
                "Tag \"tg-emoji\" must have attribute \"emoji-id\" at byte offset {start}"
            ));
        }
        open.push((name, start));
    }
    if let Some((name, _)) = open.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{name}\""
        ));
    }
    Ok(text)
}

/// `&…;` at the start of `rest`: what it decodes to and how many bytes it took. An
/// unknown entity stays as written (an `&` alone).
fn entity(rest: &str) -> (String, usize) {
    let end = rest[..rest.len().min(12)].find(';');
    if let Some(end) = end {
        let name = &rest[1..end];
        let named = match name {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            _ => None,
        };
        let numeric = if let Some(hex) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
            u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
        } else if let Some(dec) = name.strip_prefix('#') {
            dec.parse().ok().and_then(char::from_u32)
        } else {
            None
        };
        if let Some(c) = named.or(numeric) {
            return (c.to_string(), end + 1);
        }
    }
    ("&".to_string(), 1)
}

/// `key="value"` / `key='value'` / `key=value` pairs; `None` when one has no `=` (except
/// `expandable` of a blockquote, which stands alone).
fn attributes(mut s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start().trim_start_matches('/').trim_start();
        if s.is_empty() {
            return Some(out);
        }
        let key_end = s
            .find(|c: char| c == '=' || c.is_ascii_whitespace())
            .unwrap_or(s.len());
        let key = s[..key_end].to_ascii_lowercase();
        s = s[key_end..].trim_start();
        let Some(after) = s.strip_prefix('=') else {
            if key == "expandable" {
                out.push((key, String::new()));
                continue;
            }
            return None;
        };
        s = after.trim_start();
        let (value, used) = match s.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let end = s[1..].find(q)? + 1;
                (&s[1..end], end + 1)
            }
            _ => {
                let end = s.find(char::is_whitespace).unwrap_or(s.len());
                (&s[..end], end)
            }
        };
        out.push((key, value.to_string()));
        s = &s[used..];
    }
}

/// Telegram's length of a text: UTF-16 code units.
pub fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_telegram() {
        assert_eq!(parse("<b>a &lt; b</b>").unwrap(), "a < b");
        assert_eq!(parse("<a href=\"x\">l</a>&#33;").unwrap(), "l!");
        assert_eq!(parse("AT&T").unwrap(), "AT&T");
        assert!(parse("<b>x").unwrap_err().contains("Can't find end tag"));
        assert!(parse("<b><i>x</b></i>").is_err());
        assert!(parse("<div>x</div>").unwrap_err().contains("Unsupported"));
        assert!(parse("<span>x</span>").is_err());
        assert!(parse("<span class=\"tg-spoiler\">x</span>").is_ok());
        assert!(parse("x <").is_err());
    }
}
