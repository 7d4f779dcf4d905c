//! Telegram HTML parse mode: escaping untrusted text, and turning a reply into plain text.

/// Escape text from users or targets before it goes into an HTML-mode message.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Strip tags and unescape entities: the plain text a console or a document shows.
pub fn to_plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_round_trips_to_plain() {
        let evil = "<b>x</b> & <a href=\"tg://x\">y</a>";
        let escaped = escape(evil);
        assert!(!escaped.contains('<'));
        assert_eq!(to_plain(&format!("<code>{escaped}</code>")), evil);
    }
}
