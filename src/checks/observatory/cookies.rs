//! The Observatory's `cookies` test: the cookies a browser would keep (RFC 6265bis storage:
//! a `Domain` must cover the host, `__Secure-`/`__Host-` prefixes must hold or the cookie is
//! dropped, a later cookie of the same name, domain and path replaces an earlier one),
//! judged for Secure, HttpOnly on session cookies, SameSite on anti-CSRF cookies, and
//! SameSite values; the worst result counts.

use reqwest::Url;

/// From best to worst: a later entry wins over an earlier one.
const WORSE: [&str; 7] = [
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
];
/// Cookies the Observatory disregards (a Heroku load-balancer artefact).
const IGNORED: [&str; 1] = ["heroku-session-affinity"];

/// A stored cookie: what the tests read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub domain: String,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    /// `strict`, `lax` or `none`; an unknown value counts as absent.
    pub same_site: Option<String>,
}

impl Cookie {
    /// A session or login cookie, by the Observatory's rule on its name.
    pub fn is_session(&self) -> bool {
        let name = self.name.to_lowercase();
        name.contains("login") || name.contains("sess")
    }

    fn is_anti_csrf(&self) -> bool {
        self.name.to_lowercase().contains("csrf")
    }
}

/// Parse one Set-Cookie value as sent by `from`; None when a browser would not store it.
pub fn store(from: &Url, raw: &str) -> Option<Cookie> {
    let mut parts = raw.split(';');
    let pair = parts.next()?.trim();
    let (name, _) = pair.split_once('=')?;
    let name = name.trim().to_string();
    let host = from.host_str()?.to_lowercase();
    let mut cookie = Cookie {
        name,
        domain: host.clone(),
        path: String::new(),
        secure: false,
        http_only: false,
        same_site: None,
    };
    let mut host_only = true;
    for attribute in parts {
        let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
        let value = value.trim();
        match key.trim().to_lowercase().as_str() {
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => {
                let v = value.to_lowercase();
                cookie.same_site = ["strict", "lax", "none"].contains(&v.as_str()).then_some(v);
            }
            "domain" => {
                let d = value.trim_start_matches('.').to_lowercase();
                if !d.is_empty() {
                    cookie.domain = d;
                    host_only = false;
                }
            }
            "path" if value.starts_with('/') => cookie.path = value.to_string(),
            _ => {}
        }
    }
    let covers = host == cookie.domain || host.ends_with(&format!(".{}", cookie.domain));
    if !host_only && !covers {
        return None;
    }
    if cookie.path.is_empty() {
        let path = from.path();
        cookie.path = match path.rfind('/') {
            Some(0) | None => "/".into(),
            Some(i) => path[..i].to_string(),
        };
    }
    let prefix_ok = (!cookie.name.starts_with("__Secure-") || cookie.secure)
        && (!cookie.name.starts_with("__Host-")
            || (cookie.secure && host_only && cookie.path == "/"));
    prefix_ok.then_some(cookie)
}

/// The cookies kept after every Set-Cookie, in arrival order.
pub fn jar(received: &[(Url, String)]) -> Vec<Cookie> {
    let mut kept: Vec<Cookie> = Vec::new();
    for (from, raw) in received {
        let Some(cookie) = store(from, raw) else {
            continue;
        };
        let same = |c: &Cookie| {
            c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path
        };
        match kept.iter_mut().find(|c| same(c)) {
            Some(old) => *old = cookie,
            None => kept.push(cookie),
        }
    }
    kept.retain(|c| !c.name.is_empty() && !IGNORED.contains(&c.name.as_str()));
    kept
}

/// A Set-Cookie with a SameSite attribute that is empty or not strict/lax/none.
fn invalid_same_site(raw: &str) -> bool {
    raw.trim().split(';').any(|part| {
        let mut kv = part.trim().split('=');
        let key = kv.next().unwrap_or("");
        let value = kv.next();
        key.trim().eq_ignore_ascii_case("samesite")
            && value.is_none_or(|v| {
                v.is_empty()
                    || !["lax", "strict", "none"].contains(&v.trim().to_lowercase().as_str())
            })
    })
}

fn worse(new: &'static str, old: Option<&'static str>) -> &'static str {
    let rank = |r: &str| WORSE.iter().position(|w| *w == r).map_or(-1, |p| p as i64);
    match old {
        Some(o) if rank(new) <= rank(o) => o,
        _ => new,
    }
}

/// The test's result. `hsts` is whether the HSTS test passed.
pub fn test(received: &[(Url, String)], hsts: bool) -> &'static str {
    let mut result: Option<&'static str> = None;
    for (_, raw) in received {
        if invalid_same_site(raw) {
            result = Some(worse("cookies-samesite-flag-invalid", result));
        }
    }
    let cookies = jar(received);
    if cookies.is_empty() {
        return "cookies-not-found";
    }
    let mut missing_same_site = false;
    for c in &cookies {
        let mut hit = |r| result = Some(worse(r, result));
        if !c.secure && c.same_site.as_deref() == Some("none") {
            hit("cookies-samesite-flag-invalid");
        }
        if !c.secure {
            hit(if hsts {
                "cookies-without-secure-flag-but-protected-by-hsts"
            } else {
                "cookies-without-secure-flag"
            });
        }
        if c.is_anti_csrf() && c.same_site.is_none() {
            hit("cookies-anticsrf-without-samesite-flag");
        }
        if c.is_session() && !c.secure {
            hit(if hsts {
                "cookies-session-without-secure-flag-but-protected-by-hsts"
            } else {
                "cookies-session-without-secure-flag"
            });
        }
        if c.is_session() && !c.http_only {
            hit("cookies-session-without-httponly-flag");
        }
        missing_same_site |= c.same_site.is_none();
    }
    result.unwrap_or(if missing_same_site {
        "cookies-secure-with-httponly-sessions"
    } else {
        "cookies-secure-with-httponly-sessions-and-samesite"
    })
}
