//! The Observatory's `subresource-integrity` test: every `<script src>` of the page, judged
//! by where it loads from (same registrable domain or not, by the public suffix list) and
//! how (https, protocol-relative, relative), and whether it carries `integrity`.

use super::exchange::Exchange;
use super::html::Page;

/// From best to worst.
const WORSE: [&str; 6] = [
    "sri-implemented-and-all-scripts-loaded-securely",
    "sri-implemented-and-external-scripts-loaded-securely",
    "sri-implemented-but-external-scripts-not-loaded-securely",
    "sri-not-implemented-but-external-scripts-loaded-securely",
    "sri-not-implemented-and-external-scripts-not-loaded-securely",
    "sri-not-implemented-response-not-html",
];
const HTML_TYPES: [&str; 2] = ["text/html", "application/xhtml+xml"];

fn worse(new: &'static str, old: Option<&'static str>) -> &'static str {
    let rank = |r: &str| WORSE.iter().position(|w| *w == r).map_or(-1, |p| p as i64);
    match old {
        Some(o) if rank(new) <= rank(o) => o,
        _ => new,
    }
}

/// The registrable domain (eTLD+1) of a host.
fn domain(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_lowercase();
    if host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
    {
        return None;
    }
    psl::domain_str(&host).map(str::to_string)
}

/// The host of an absolute http(s) URL, as written.
fn host_of(src: &str) -> Option<String> {
    reqwest::Url::parse(src)
        .ok()?
        .host_str()
        .map(str::to_string)
}

pub fn test(ex: &Exchange, page: &Page) -> &'static str {
    let mime = ex
        .auto
        .first("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("");
    if !mime.is_empty() && !HTML_TYPES.contains(&mime) {
        return "sri-not-implemented-response-not-html";
    }
    if page.scripts.is_empty() {
        return "sri-not-implemented-but-no-scripts-loaded";
    }
    let site_domain = domain(&ex.site);
    let https_page = ex.session_url.scheme() == "https";
    let mut result: Option<&'static str> = None;
    let mut foreign_scripts = false;
    for script in &page.scripts {
        let Some(src) = script.get("src").filter(|s| !s.is_empty()) else {
            continue;
        };
        let integrity = script.get("integrity").is_some_and(|i| !i.is_empty());
        let b = src.as_bytes();
        let relative_protocol = b.len() > 2 && b.starts_with(b"//") && b[2] != b'/';
        let full_url = src.starts_with("http://") || src.starts_with("https://");
        let relative_origin = !relative_protocol && !full_url;
        let same_domain = if full_url {
            host_of(src).and_then(|h| domain(&h)) == site_domain
        } else {
            true
        };
        let secure_origin = relative_origin || (same_domain && !relative_protocol);
        let secure_scheme =
            (full_url && src.starts_with("https://")) || (relative_origin && https_page);
        if !secure_origin {
            foreign_scripts = true;
            let r = match (integrity, secure_scheme) {
                (true, false) => Some("sri-implemented-but-external-scripts-not-loaded-securely"),
                (false, true) => Some("sri-not-implemented-but-external-scripts-loaded-securely"),
                (false, false) => {
                    Some("sri-not-implemented-and-external-scripts-not-loaded-securely")
                }
                (true, true) => None,
            };
            if let Some(r) = r {
                result = Some(worse(r, result));
            }
        } else if integrity && secure_scheme && result.is_none() {
            result = Some("sri-implemented-and-all-scripts-loaded-securely");
        }
    }
    result.unwrap_or(if foreign_scripts {
        "sri-implemented-and-external-scripts-loaded-securely"
    } else {
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    })
}
