//! `http_headers`: security headers, cookies and the HTTP→HTTPS redirect of each configured
//! URL, with a Mozilla HTTP Observatory score. Redirects are never followed (a check
//! reaches only its configured URL and, for an https URL, the same URL over http); only
//! response headers are read, never the body.

use super::Check;
use super::http_rules::{self, Verdict, cut};
use crate::config::HttpHeadersTargets;
use crate::domain::finding::{Finding, Severity};
use async_trait::async_trait;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

const NAME: &str = "http_headers";

pub struct HttpHeaders {
    /// (shown target, URL requested): the shown form has no user name or password.
    urls: Vec<(String, String)>,
    client: reqwest::Client,
}

impl HttpHeaders {
    pub fn new(targets: &HttpHeadersTargets) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "opsguard/",
                env!("CARGO_PKG_VERSION"),
                " http_headers check"
            ))
            .build()
            .expect("a client with no redirects and rustls builds");
        let urls = targets.urls.iter().map(|u| (shown(u), u.clone())).collect();
        HttpHeaders { urls, client }
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, String> {
        self.client.get(url).send().await.map_err(|e| {
            let e = e.without_url();
            if e.is_connect() {
                format!("connection failed: {}", source_chain(&e))
            } else if e.is_timeout() {
                "timed out".to_string()
            } else {
                format!("request failed: {}", source_chain(&e))
            }
        })
    }
}

/// An error and its causes, one line (no URL: `without_url` was applied).
/// A URL as findings show it: without credentials (`https://user:pw@host/` → `https://host/`).
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => cut(url.split('@').next_back().unwrap_or("").as_bytes()),
    }
}

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        parts.push(cause.to_string());
        next = cause.source();
    }
    cut(parts.join(": ").as_bytes())
}

#[async_trait]
impl Check for HttpHeaders {
    fn name(&self) -> &'static str {
        NAME
    }

    fn targets(&self) -> Vec<String> {
        self.urls.iter().map(|(shown, _)| shown.clone()).collect()
    }

    async fn check(&self, target: &str) -> Result<Vec<Finding>, String> {
        // Only a configured URL is ever requested.
        let (_, real) = self
            .urls
            .iter()
            .find(|(shown, _)| shown == target)
            .ok_or("not a configured target")?;
        let url = reqwest::Url::parse(real).map_err(|e| format!("not a URL: {e}"))?;
        let mut verdict = Verdict::new(NAME, target);
        let response = self.get(real).await?;
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        drop(response);
        if url.scheme() == "https" {
            let mut plain = url.clone();
            let _ = plain.set_scheme("http");
            let _ = plain.set_port(None);
            match self.get(plain.as_str()).await {
                Ok(answer) => redirect(&mut verdict, answer.status().as_u16(), answer.headers()),
                // Nothing listens on port 80: nothing can be sent in clear.
                Err(_) => verdict.note("redirection-not-needed-no-http", 0),
            }
        } else {
            if (300..400).contains(&status) && is_https_redirect(&headers) {
                verdict.note("redirection-to-https", 0);
                verdict.hit(
                    "redirection-to-https",
                    0,
                    Severity::Info,
                    "Redirects to HTTPS".into(),
                    location(&headers),
                    "Configure the https:// URL as the target to check its headers.",
                );
                return Ok(verdict.findings);
            }
            redirect(&mut verdict, status, &headers);
        }
        // Browsers honour HSTS only over HTTPS; on an http:// target it is checked as sent,
        // and the missing redirect above is the finding that matters.
        http_rules::headers(&mut verdict, &headers);
        cookies(&mut verdict, &headers);
        Ok(verdict.finish())
    }
}

fn location(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .map(|l| cut(l.as_bytes()))
        .unwrap_or_else(|| "no Location header".into())
}

fn is_https_redirect(headers: &HeaderMap) -> bool {
    headers
        .get(LOCATION)
        .is_some_and(|l| l.as_bytes().to_ascii_lowercase().starts_with(b"https://"))
}

/// The answer of the plain-HTTP URL: it must redirect to an https:// URL.
fn redirect(v: &mut Verdict, status: u16, headers: &HeaderMap) {
    let fix = "Answer every plain-HTTP request with a 301 redirect to the same URL over https://.";
    match status {
        300..=399 if is_https_redirect(headers) => v.note("redirection-to-https", 0),
        300..=399 => v.hit(
            "redirection-not-to-https",
            -20,
            Severity::High,
            "HTTP does not redirect to HTTPS".into(),
            location(headers),
            fix,
        ),
        _ => v.hit(
            "redirection-missing",
            -20,
            Severity::High,
            "No redirect from HTTP to HTTPS".into(),
            format!("plain HTTP answered {status} without redirecting"),
            fix,
        ),
    }
}

/// Observatory's session cookie test: the name mentions a login or a session.
fn is_session(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["login", "sess"].iter().any(|w| name.contains(w))
}

/// Cookie flags. Evidence names the cookie and its attributes, never its value.
fn cookies(v: &mut Verdict, headers: &HeaderMap) {
    let hsts = headers.contains_key("strict-transport-security");
    let mut worst: Option<(&'static str, i32)> = None;
    let mut all_good = true;
    let mut any = false;
    let mut penalty = |test: &'static str, m: i32| {
        if worst.is_none_or(|(_, w)| m < w) {
            worst = Some((test, m));
        }
    };
    for raw in headers.get_all(SET_COOKIE) {
        any = true;
        let text = String::from_utf8_lossy(raw.as_bytes()).to_string();
        let mut parts = text.split(';').map(str::trim);
        let name: String = parts
            .next()
            .unwrap_or("")
            .split('=')
            .next()
            .unwrap_or("")
            .chars()
            .take(40)
            .collect();
        let attrs: Vec<String> = parts.map(|a| a.to_ascii_lowercase()).collect();
        let has = |flag: &str| attrs.iter().any(|a| a == flag);
        let samesite = attrs
            .iter()
            .find_map(|a| a.strip_prefix("samesite=").map(str::to_string));
        let names: Vec<&str> = attrs
            .iter()
            .map(|a| a.split('=').next().unwrap_or(""))
            .collect();
        let evidence = cut(format!("Set-Cookie: {name}=…; {}", names.join("; ")).as_bytes());
        let session = is_session(&name);
        if !has("secure") {
            all_good = false;
            let (test, m, sev) = match (session, hsts) {
                (true, false) => ("cookies-session-without-secure-flag", -40, Severity::High),
                (true, true) => (
                    "cookies-session-without-secure-flag-but-protected-by-hsts",
                    -10,
                    Severity::Medium,
                ),
                (false, false) => ("cookies-without-secure-flag", -20, Severity::Medium),
                (false, true) => (
                    "cookies-without-secure-flag-but-protected-by-hsts",
                    -5,
                    Severity::Low,
                ),
            };
            penalty(test, m);
            let kind = if session { "Session cookie" } else { "Cookie" };
            v.hit(
                test,
                0,
                sev,
                format!("{kind} '{name}' without Secure"),
                evidence.clone(),
                "Set the Secure flag so the cookie is never sent over plain HTTP.",
            );
        }
        if session && !has("httponly") {
            all_good = false;
            penalty("cookies-session-without-httponly-flag", -30);
            v.hit(
                "cookies-session-without-httponly-flag",
                0,
                Severity::High,
                format!("Session cookie '{name}' without HttpOnly"),
                evidence.clone(),
                "Set the HttpOnly flag so scripts cannot read the session cookie.",
            );
        }
        match samesite.as_deref() {
            Some("strict" | "lax" | "none") => {}
            Some(_) => {
                all_good = false;
                penalty("cookies-samesite-flag-invalid", -20);
                v.hit(
                    "cookies-samesite-flag-invalid",
                    0,
                    Severity::Medium,
                    format!("Cookie '{name}' with an invalid SameSite"),
                    evidence,
                    "Use SameSite=Strict or SameSite=Lax.",
                );
            }
            None => {
                all_good = false;
                v.hit(
                    "cookies-secure-with-httponly-sessions",
                    0,
                    Severity::Low,
                    format!("Cookie '{name}' without SameSite"),
                    evidence,
                    "Set SameSite=Lax (or Strict) to limit cross-site requests.",
                );
            }
        }
    }
    // The Observatory scores cookies once, by the worst result.
    match (any, worst) {
        (false, _) => v.note("cookies-not-found", 0),
        (true, Some((test, m))) => v.note(test, m),
        (true, None) if all_good => v.note("cookies-secure-with-httponly-sessions-and-samesite", 5),
        (true, None) => v.note("cookies-secure-with-httponly-sessions", 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_shown_without_credentials_and_only_they_are_checked() {
        let check = HttpHeaders::new(&HttpHeadersTargets {
            urls: vec![
                "https://ops:hunter2@app.example.com/login".into(),
                "http://plain.example/".into(),
            ],
        });
        assert_eq!(
            check.targets(),
            ["https://app.example.com/login", "http://plain.example/"]
        );
        let refused = futures::executor::block_on(check.check("http://evil.example/"));
        assert_eq!(refused, Err("not a configured target".to_string()));
    }
}
