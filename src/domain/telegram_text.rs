//! Telegram's measure of an HTML-mode text and splitting it into sendable chunks.
//!
//! Telegram counts a message's length in UTF-16 code units of the text left after entity
//! parsing (tags removed, `&lt;` one character). A split never falls inside a tag or an
//! entity: tags still open at a split are closed at the end of the chunk and opened again
//! (with their attributes) at the start of the next, so every chunk parses on its own.
//! Splits prefer the end of a line, then a space, then any character.

/// One piece of HTML: a tag (`<b>`, `</b>`, `<a href="…">`), or text (an entity counts
/// as the character it stands for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Open { raw: &'a str, name: &'a str },
    Close { raw: &'a str, name: &'a str },
    Text { raw: &'a str, units: usize },
}

fn tag_name(inner: &str) -> &str {
    let end = inner
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(inner.len());
    &inner[..end]
}

fn pieces(html: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        let c = rest.chars().next().unwrap_or(' ');
        if c == '<'
            && let Some(end) = rest.find('>')
        {
            let raw = &rest[..=end];
            let piece = match raw[1..].strip_prefix('/') {
                Some(inner) => Piece::Close {
                    raw,
                    name: tag_name(inner),
                },
                None => Piece::Open {
                    raw,
                    name: tag_name(&raw[1..]),
                },
            };
            out.push(piece);
            i += raw.len();
            continue;
        }
        if c == '&'
            && let Some(end) = rest[..rest.len().min(12)].find(';')
        {
            let raw = &rest[..=end];
            out.push(Piece::Text {
                raw,
                units: entity_units(&raw[1..end]),
            });
            i += raw.len();
            continue;
        }
        let raw = &rest[..c.len_utf8()];
        out.push(Piece::Text {
            raw,
            units: c.len_utf16(),
        });
        i += raw.len();
    }
    out
}

/// UTF-16 units of what `&name;` stands for (a numeric entity above U+FFFF takes two).
fn entity_units(name: &str) -> usize {
    let code = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if let Some(dec) = name.strip_prefix('#') {
        dec.parse().ok()
    } else {
        None
    };
    match code.and_then(char::from_u32) {
        Some(c) => c.len_utf16(),
        None if name.starts_with('#') => name.len() + 2,
        None => 1,
    }
}

/// The length Telegram checks against its limits: UTF-16 units of the parsed text.
pub fn telegram_len(html: &str) -> usize {
    pieces(html)
        .iter()
        .map(|p| match p {
            Piece::Text { units, .. } => *units,
            _ => 0,
        })
        .sum()
}

/// Where a chunk may end: the byte offset in it, its length there, the tags open there.
#[derive(Clone)]
struct Break {
    at: usize,
    units: usize,
    open: usize,
}

struct Splitter<'a> {
    limit: usize,
    chunks: Vec<String>,
    current: String,
    units: usize,
    /// Open tags (name, opening tag as written).
    open: Vec<(&'a str, &'a str)>,
    /// The open tags as they were at each break point.
    open_at: Vec<Vec<(&'a str, &'a str)>>,
    line_break: Option<Break>,
    space_break: Option<Break>,
}

impl<'a> Splitter<'a> {
    fn closers(open: &[(&str, &str)]) -> String {
        open.iter().rev().map(|(n, _)| format!("</{n}>")).collect()
    }

    fn openers(open: &[(&str, &str)]) -> String {
        open.iter().map(|(_, raw)| *raw).collect()
    }

    /// End the current chunk at `brk` (or here), carrying the rest over.
    fn cut(&mut self, brk: Option<Break>) {
        let (at, units, open) = match &brk {
            Some(b) => (b.at, b.units, self.open_at[b.open].clone()),
            None => (self.current.len(), self.units, self.open.clone()),
        };
        let rest = self.current.split_off(at);
        let mut chunk = std::mem::take(&mut self.current);
        chunk.push_str(&Self::closers(&open));
        self.chunks.push(chunk);
        self.current = Self::openers(&open) + &rest;
        self.units -= units;
        self.line_break = None;
        self.space_break = None;
        self.open_at.clear();
    }

    fn mark(&mut self) -> Break {
        self.open_at.push(self.open.clone());
        Break {
            at: self.current.len(),
            units: self.units,
            open: self.open_at.len() - 1,
        }
    }

    fn push(&mut self, piece: Piece<'a>) {
        match piece {
            Piece::Open { raw, name } => {
                self.current.push_str(raw);
                self.open.push((name, raw));
            }
            Piece::Close { raw, name } => {
                self.current.push_str(raw);
                if let Some(i) = self
                    .open
                    .iter()
                    .rposition(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    self.open.truncate(i);
                }
            }
            Piece::Text { raw, units } => {
                if self.units + units > self.limit && self.units > 0 {
                    let brk = self.line_break.take().or(self.space_break.take());
                    self.cut(brk.filter(|b| b.units > 0));
                    if self.units + units > self.limit && self.units > 0 {
                        self.cut(None);
                    }
                }
                self.current.push_str(raw);
                self.units += units;
                if raw == "\n" {
                    self.line_break = Some(self.mark());
                } else if raw == " " {
                    self.space_break = Some(self.mark());
                }
            }
        }
    }
}

/// Split HTML into chunks of at most `limit` Telegram characters each, every chunk with its
/// tags balanced. Chunks with no visible text are left out. Text that needs no split comes
/// back unchanged, and splits at line ends outside any tag concatenate to the input.
pub fn split(html: &str, limit: usize) -> Vec<String> {
    let mut s = Splitter {
        limit: limit.max(1),
        chunks: Vec::new(),
        current: String::new(),
        units: 0,
        open: Vec::new(),
        open_at: Vec::new(),
        line_break: None,
        space_break: None,
    };
    for piece in pieces(html) {
        s.push(piece);
    }
    let last = std::mem::take(&mut s.current);
    s.chunks.push(last);
    s.chunks
        .into_iter()
        .filter(|c| !super::html::to_plain(c).trim().is_empty())
        .collect()
}

#[cfg(test)]
#[path = "telegram_text_tests.rs"]
mod tests;
