//! What the Observatory reads from a page's HTML: `<meta http-equiv="content-security-policy">`
//! policies, the last `<meta name="referrer">`, and the `<script>` elements with their
//! `src`, `integrity` and `crossorigin` attributes. A lenient tokenizer (html5gum), as
//! browsers are lenient; nothing is executed or fetched.

use html5gum::{Token, Tokenizer};
use std::collections::BTreeMap;

/// The parts of a page the tests read.
#[derive(Debug, Default, Clone)]
pub struct Page {
    pub meta_csp: Vec<String>,
    pub meta_referrer: Option<String>,
    /// Every `<script>` element's attributes (names lowercase).
    pub scripts: Vec<BTreeMap<String, String>>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn read(html: &str) -> Page {
    let mut page = Page::default();
    // Reading from a string cannot fail.
    for token in Tokenizer::new(html).flatten() {
        let Token::StartTag(tag) = token else {
            continue;
        };
        let attrs: BTreeMap<String, String> = tag
            .attributes
            .iter()
            .map(|(k, v)| (text(k).to_lowercase(), text(v)))
            .collect();
        match text(&tag.name).to_lowercase().as_str() {
            "script" => page.scripts.push(attrs),
            "meta" => {
                let content = attrs.get("content").filter(|c| !c.is_empty());
                let equiv = attrs.get("http-equiv");
                if equiv.is_some() && attrs.contains_key("content") {
                    if equiv
                        .is_some_and(|e| e.trim().eq_ignore_ascii_case("content-security-policy"))
                    {
                        page.meta_csp.extend(content.cloned());
                    }
                } else if attrs
                    .get("name")
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case("referrer"))
                    && let Some(c) = content
                {
                    page.meta_referrer = Some(c.clone());
                }
            }
            _ => {}
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_policies_and_scripts_are_found_and_comments_skipped() {
        let page = read(
            r#"<html><head><META HTTP-EQUIV="Content-Security-Policy" content="default-src 'none'">
            <meta name="referrer" content="origin"><meta name=referrer content="no-referrer">
            <!-- <script src="https://evil.example/x.js"></script> -->
            <script src="https://cdn.example/a.js" integrity="sha384-x" crossorigin></script>
            <script>inline()</script></head></html>"#,
        );
        assert_eq!(page.meta_csp, ["default-src 'none'"]);
        assert_eq!(page.meta_referrer.as_deref(), Some("no-referrer"));
        assert_eq!(page.scripts.len(), 2);
        assert_eq!(page.scripts[0]["integrity"], "sha384-x");
    }
}
