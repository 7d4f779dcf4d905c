//! Telegram's HTML parse mode as the Bot API server applies it: tdlib's `parse_html`
//! (td/telegram/MessageEntity.cpp, read at tdlib/td 1a901a0e and in later releases for the
//! spoiler, custom-emoji and blockquote tags). Written from that behaviour, not its code:
//! the same scan over bytes, the same tags, the same refusals with the same messages and
//! byte offsets, the same entity decoding (four names, `&#…;`/`&#x…;`, `;` optional).

/// The tags Telegram accepts (lower-cased start tag names).
const TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "s",
    "strike",
    "del",
    "u",
    "ins",
    "tg-spoiler",
    "tg-emoji",
    "span",
    "pre",
    "code",
    "blockquote",
];

/// tdlib's `is_space`: the ASCII white space it skips inside tags.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// The byte at `i`, or 0 past the end (tdlib reads a NUL-terminated string).
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// A start tag still open: its name and the argument its attributes gave it.
struct Open {
    tag: String,
    argument: String,
}

/// The text left after parsing, or the reason Telegram gives after "can't parse entities: ".
pub fn parse(html: &str) -> Result<String, String> {
    let b = html.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut open: Vec<Open> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'&'
            && let Some((c, next)) = entity(b, i)
        {
            push_char(&mut out, c)?;
            i = next;
            continue;
        }
        if b[i] != b'<' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let begin = i;
        i += 1;
        if at(b, i) != b'/' {
            let (tag, next) = start_tag(b, begin, i)?;
            open.push(tag);
            i = next;
        } else {
            let Some(last) = open.last() else {
                return Err(format!("Unexpected end tag at byte offset {begin}"));
            };
            i += 1;
            let name_begin = i;
            while at(b, i) != 0 && !is_space(at(b, i)) && at(b, i) != b'>' {
                i += 1;
            }
            // End tags are compared as written: `</B>` does not close `<b>`.
            let name = String::from_utf8_lossy(&b[name_begin..i]).into_owned();
            while is_space(at(b, i)) {
                i += 1;
            }
            if at(b, i) != b'>' {
                return Err(format!("Unclosed end tag at byte offset {begin}"));
            }
            if !name.is_empty() && name != last.tag {
                return Err(format!(
                    "Unmatched end tag at byte offset {begin}, expected \"</{}>\", found \"</{name}>\"",
                    last.tag
                ));
            }
            let emoji_id = last.argument.parse::<i64>().is_ok_and(|id| id > 0);
            if last.tag == "tg-emoji" && !emoji_id {
                return Err("Invalid custom emoji identifier specified".into());
            }
            open.pop();
            i += 1;
        }
    }
    if let Some(last) = open.last() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            last.tag
        ));
    }
    String::from_utf8(out).map_err(|_| {
        "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units".to_string()
    })
}

/// A start tag whose `<` is at `begin`, its name from `i`: the open tag and where the
/// scan goes on (past its `>`).
fn start_tag(b: &[u8], begin: usize, mut i: usize) -> Result<(Open, usize), String> {
    while at(b, i) != 0 && !is_space(at(b, i)) && at(b, i) != b'>' {
        i += 1;
    }
    if at(b, i) == 0 {
        return Err(format!("Unclosed start tag at byte offset {begin}"));
    }
    let tag = String::from_utf8_lossy(&b[begin + 1..i]).to_ascii_lowercase();
    if !TAGS.contains(&tag.as_str()) {
        return Err(format!(
            "Unsupported start tag \"{tag}\" at byte offset {begin}"
        ));
    }
    let mut argument = String::new();
    while at(b, i) != b'>' {
        while is_space(at(b, i)) {
            i += 1;
        }
        if at(b, i) == b'>' {
            break;
        }
        let name_begin = i;
        while at(b, i) != 0 && !is_space(at(b, i)) && at(b, i) != b'=' && at(b, i) != b'>' {
            i += 1;
        }
        let name = String::from_utf8_lossy(&b[name_begin..i]).into_owned();
        if name.is_empty() {
            return Err(format!(
                "Empty attribute name in the tag \"{tag}\" at byte offset {begin}"
            ));
        }
        while is_space(at(b, i)) {
            i += 1;
        }
        if at(b, i) == 0 {
            return Err(format!(
                "Unclosed start tag \"{tag}\" at byte offset {begin}"
            ));
        }
        if at(b, i) != b'=' {
            if tag == "blockquote" && name == "expandable" {
                continue;
            }
            return Err(format!(
                "Expected equal sign in declaration of an attribute of the tag \"{tag}\" at byte offset {begin}"
            ));
        }
        i += 1;
        while is_space(at(b, i)) {
            i += 1;
        }
        if at(b, i) == 0 {
            return Err(format!(
                "Unclosed start tag \"{tag}\" at byte offset {begin}"
            ));
        }
        let value;
        (value, i) = attribute_value(b, i)?;
        if at(b, i) == 0 {
            return Err(format!("Unclosed start tag at byte offset {begin}"));
        }
        match (tag.as_str(), name.as_str()) {
            ("a", "href") | ("tg-emoji", "emoji-id") => argument = value,
            ("code", "class") if value.starts_with("language-") => argument = value[9..].into(),
            ("span", "class") if value.starts_with("tg-") => argument = value[3..].into(),
            _ => {}
        }
    }
    if tag == "span" && argument != "spoiler" {
        return Err(format!(
            "Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"
        ));
    }
    Ok((Open { tag, argument }, i + 1))
}

/// An attribute value from `i`: a name token (letters, digits, `.`, `-`; lower-cased, and
/// it must end at white space or `>`) or a quoted string with its references decoded.
fn attribute_value(b: &[u8], mut i: usize) -> Result<(String, usize), String> {
    let quote = at(b, i);
    if quote != b'"' && quote != b'\'' {
        let begin = i;
        while at(b, i).is_ascii_alphanumeric() || at(b, i) == b'.' || at(b, i) == b'-' {
            i += 1;
        }
        if !is_space(at(b, i)) && at(b, i) != b'>' {
            return Err(format!(
                "Unexpected end of name token at byte offset {begin}"
            ));
        }
        return Ok((
            String::from_utf8_lossy(&b[begin..i]).to_ascii_lowercase(),
            i,
        ));
    }
    i += 1;
    let mut value = Vec::new();
    while at(b, i) != quote && at(b, i) != 0 {
        if at(b, i) == b'&'
            && let Some((c, next)) = entity(b, i)
        {
            push_char(&mut value, c)?;
            i = next;
            continue;
        }
        value.push(b[i]);
        i += 1;
    }
    if at(b, i) == quote {
        i += 1;
    }
    Ok((String::from_utf8_lossy(&value).into_owned(), i))
}

/// The character reference at `i` (`b[i]` is `&`) and the index after it, or `None` when
/// tdlib leaves the `&` as written: `&lt` `&gt` `&amp` `&quot` and `&#N`/`&#xH` (non-zero,
/// below U+10FFFF, fewer than ten bytes), each with an optional `;`.
fn entity(b: &[u8], i: usize) -> Option<(u32, usize)> {
    let mut end = i + 1;
    let code = if at(b, end) == b'#' {
        end += 1;
        let mut code: u64 = 0;
        if at(b, end) == b'x' {
            end += 1;
            while at(b, end).is_ascii_hexdigit() {
                code = code * 16 + u64::from((at(b, end) as char).to_digit(16)?);
                end += 1;
            }
        } else {
            while at(b, end).is_ascii_digit() {
                code = code * 10 + u64::from(at(b, end) - b'0');
                end += 1;
            }
        }
        if code == 0 || code >= 0x10ffff || end - i >= 10 {
            return None;
        }
        code as u32
    } else {
        while at(b, end).is_ascii_alphabetic() {
            end += 1;
        }
        match &b[i + 1..end] {
            b"lt" => '<' as u32,
            b"gt" => '>' as u32,
            b"amp" => '&' as u32,
            b"quot" => '"' as u32,
            _ => return None,
        }
    };
    Some((code, if at(b, end) == b';' { end + 1 } else { end }))
}

/// Append code point `c` as UTF-8; a lone surrogate makes the text invalid, as in tdlib.
fn push_char(out: &mut Vec<u8>, c: u32) -> Result<(), String> {
    match char::from_u32(c) {
        Some(c) => {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            Ok(())
        }
        None => Err("Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units".into()),
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
    fn accepts_and_decodes_like_tdlib() {
        assert_eq!(parse("<b>a &lt; b</b>").unwrap(), "a < b");
        assert_eq!(parse("<a href=\"x\">l</a>&#33;").unwrap(), "l!");
        assert_eq!(parse("AT&T &copy; &#0; &lt").unwrap(), "AT&T &copy; &#0; <");
        assert_eq!(parse("&#x41&#66;&quot").unwrap(), "AB\"");
        assert_eq!(parse("<B>x</>").unwrap(), "x");
        assert_eq!(parse("<b >x</b >").unwrap(), "x");
        assert_eq!(parse("<a href=\"a>b\">l</a>").unwrap(), "l");
        assert_eq!(parse("<a href=X.y-1>l</a>").unwrap(), "l");
        assert_eq!(
            parse("<code class=\"language-rust\">c</code>").unwrap(),
            "c"
        );
        assert_eq!(parse("<span class=\"tg-spoiler\">x</span>").unwrap(), "x");
        assert_eq!(parse("<blockquote expandable>q</blockquote>").unwrap(), "q");
        assert_eq!(
            parse("<tg-emoji emoji-id=\"5368324170671202286\">👍</tg-emoji>").unwrap(),
            "👍"
        );
    }

    /// Refusals and their messages as Telegram gives them (after "can't parse entities: ").
    #[test]
    fn refuses_like_tdlib() {
        let cases = [
            ("<br>", "Unsupported start tag \"br\" at byte offset 0"),
            ("<br/>", "Unsupported start tag \"br/\" at byte offset 0"),
            ("a < b", "Unsupported start tag \"\" at byte offset 2"),
            ("x <b", "Unclosed start tag at byte offset 2"),
            ("<a href", "Unclosed start tag \"a\" at byte offset 0"),
            ("<a href=\"x\"", "Unclosed start tag at byte offset 0"),
            (
                "<a =\"x\">y</a>",
                "Empty attribute name in the tag \"a\" at byte offset 0",
            ),
            (
                "<a href=x/>y</a>",
                "Unexpected end of name token at byte offset 8",
            ),
            (
                "<a href=http://x>y</a>",
                "Unexpected end of name token at byte offset 8",
            ),
            (
                "<b x>y</b>",
                "Expected equal sign in declaration of an attribute of the tag \"b\" at byte offset 0",
            ),
            (
                "<span>x</span>",
                "Tag \"span\" must have class \"tg-spoiler\" at byte offset 0",
            ),
            ("x</b>", "Unexpected end tag at byte offset 1"),
            ("<b>x</b", "Unclosed end tag at byte offset 4"),
            ("<b>x</b y>", "Unclosed end tag at byte offset 4"),
            (
                "<b>x</i>",
                "Unmatched end tag at byte offset 4, expected \"</b>\", found \"</i>\"",
            ),
            (
                "<b>x</B>",
                "Unmatched end tag at byte offset 4, expected \"</b>\", found \"</B>\"",
            ),
            (
                "<b><i>x</b></i>",
                "Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\"",
            ),
            (
                "<b>x",
                "Can't find end tag corresponding to start tag \"b\"",
            ),
            (
                "<tg-emoji emoji-id=\"x\">y</tg-emoji>",
                "Invalid custom emoji identifier specified",
            ),
            (
                "&#xD800;",
                "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units",
            ),
        ];
        for (html, message) in cases {
            assert_eq!(parse(html), Err(message.to_string()), "{html}");
        }
    }
}
