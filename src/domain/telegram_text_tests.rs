//! Unit tests of `telegram_text`: Telegram's length and balanced chunks.

use super::*;
use crate::domain::html::{escape, to_plain};

/// Every tag opened in a chunk is closed in it, in order.
fn balanced(chunk: &str) -> bool {
    let mut open = Vec::new();
    for p in pieces(chunk) {
        match p {
            Piece::Open { name, .. } => open.push(name),
            Piece::Close { name, .. } => {
                if open.pop() != Some(name) {
                    return false;
                }
            }
            Piece::Text { .. } => {}
        }
    }
    open.is_empty()
}

#[test]
fn length_is_utf16_units_of_the_parsed_text() {
    assert_eq!(telegram_len("<b>a&lt;b</b>"), 3);
    assert_eq!(telegram_len("😀"), 2);
    assert_eq!(telegram_len("&#128512;&#x41;"), 3);
    assert_eq!(telegram_len(&escape(&"<".repeat(5000))), 5000);
}

#[test]
fn short_text_is_one_unchanged_chunk() {
    assert_eq!(split("<b>hi</b>", 4096), vec!["<b>hi</b>"]);
}

#[test]
fn a_long_line_splits_between_tags_closing_and_reopening_them() {
    let line = format!(
        "Unknown command <code>/{}</code> and <a href=\"https://x\">{}</a>.",
        escape(&"<x>".repeat(2_000)),
        "y".repeat(3_000)
    );
    let chunks = split(&line, 4096);
    assert!(chunks.len() > 2, "{}", chunks.len());
    for c in &chunks {
        assert!(telegram_len(c) <= 4096, "{}", telegram_len(c));
        assert!(balanced(c), "{c}");
    }
    let plain: String = chunks.iter().map(|c| to_plain(c)).collect();
    assert_eq!(plain, to_plain(&line));
    assert!(
        chunks[1].starts_with("<code>"),
        "reopened: {}",
        &chunks[1][..20]
    );
    assert!(
        chunks
            .iter()
            .any(|c| c.starts_with("<a href=\"https://x\">"))
    );
}

#[test]
fn lines_are_kept_whole_when_they_fit() {
    let text: String = (0..600).map(|i| format!("<b>line</b> {i:04}\n")).collect();
    let chunks = split(&text, 4096);
    assert!(chunks.len() > 1);
    assert!(chunks.iter().all(|c| c.ends_with('\n') && balanced(c)));
    assert_eq!(chunks.concat(), text);
}

#[test]
fn a_multi_line_pre_block_is_reopened_in_the_next_chunk() {
    let text = format!("<pre>{}</pre>", "0123456789\n".repeat(1_000));
    let chunks = split(&text, 4096);
    assert_eq!(chunks.len(), 3);
    for c in &chunks {
        assert!(c.starts_with("<pre>") && c.ends_with("\n</pre>"), "{c:.30}");
        assert!(telegram_len(c) <= 4096);
    }
}

#[test]
fn surrogate_pairs_are_never_cut_and_count_twice() {
    let chunks = split(&"😀".repeat(3_000), 4096);
    assert_eq!(chunks.len(), 2);
    assert_eq!(telegram_len(&chunks[0]), 4096);
    assert_eq!(telegram_len(&chunks[1]), 6000 - 4096);
}
