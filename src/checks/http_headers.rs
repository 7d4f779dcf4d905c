//! `http_headers`: each configured URL graded by the MDN HTTP Observatory's algorithm
//! (`observatory`): the HTTPS and plain-HTTP chains followed on the configured host, the
//! page's headers, `<meta>` policies and scripts, cookies and a CORS preflight. HTTPS is
//! trusted as the `tls` check trusts it (web roots plus `[checks.tls] ca_file`); a site whose
//! certificate fails is graded anyway, the certificate problem a finding. The plain-HTTP
//! probe has its own, shorter timeout, so a silent port 80 costs no HTTPS finding.

use super::Check;
use super::http_fetch::{self, Chain, Fetcher};
use super::http_rules::{self, cut, finding};
use super::observatory::{self, exchange::none_preloaded, html};
use crate::config::CheckSettings;
use crate::domain::finding::{Finding, Severity};
use async_trait::async_trait;
use reqwest::Url;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::time::Duration;

const NAME: &str = "http_headers";

pub struct HttpHeaders {
    /// (shown target, URL requested): the shown form has no user name or password.
    urls: Vec<(String, String)>,
    /// The clients, or why the configured CA cannot be used.
    fetcher: Result<Fetcher, String>,
    timeout: Duration,
}

fn client(
    extra_roots: &[CertificateDer<'static>],
    verify: bool,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(!verify)
        .user_agent(concat!(
            "opsguard/",
            env!("CARGO_PKG_VERSION"),
            " http_headers check"
        ));
    for root in extra_roots {
        let cert = reqwest::Certificate::from_der(root)
            .map_err(|_| "the configured ca_file holds an invalid certificate".to_string())?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| format!("the HTTP client cannot be built: {e}"))
}

/// The certificates of `[checks.tls] ca_file`, read as the `tls` check reads them.
fn extra_roots(ca_file: Option<&str>) -> Result<Vec<CertificateDer<'static>>, String> {
    let Some(path) = ca_file else {
        return Ok(Vec::new());
    };
    CertificateDer::pem_file_iter(path)
        .map_err(|_| "the configured ca_file cannot be read".to_string())?
        .map(|c| c.map_err(|_| "the configured ca_file is not valid PEM".to_string()))
        .collect()
}

impl HttpHeaders {
    pub fn new(settings: &CheckSettings) -> Self {
        let fetcher = extra_roots(settings.tls.ca_file.as_deref()).and_then(|roots| {
            Ok(Fetcher {
                verifying: client(&roots, true)?,
                lenient: client(&[], false)?,
            })
        });
        let urls = settings
            .http_headers
            .urls
            .iter()
            .map(|u| (shown(u), u.clone()))
            .collect();
        HttpHeaders {
            urls,
            fetcher,
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
        }
    }
}

/// A URL as findings show it: without credentials (`https://user:pw@host/` → `https://host/`).
fn shown(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => cut(url.split('@').next_back().unwrap_or("").as_bytes()),
    }
}

/// The finding for a chain that leaves the configured host (its destination is not fetched).
fn left_host(target: &str, chain: &Chain, to: &Url) -> Finding {
    let hops: Vec<String> = chain.hops.iter().map(|(u, _)| u.to_string()).collect();
    let title = if to.scheme() == "https" {
        "Redirects to HTTPS"
    } else {
        "Redirects to another host"
    };
    finding(
        target,
        Severity::Info,
        title.into(),
        cut(hops.join(" → ").as_bytes()),
        "Configure the destination URL as the target to grade its headers (checks reach only configured hosts).",
        "test redirection",
    )
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
        let fetcher = self.fetcher.as_ref().map_err(Clone::clone)?;
        let url = Url::parse(real).map_err(|e| format!("not a URL: {e}"))?;
        let host = url.host_str().ok_or("the URL has no host")?.to_string();
        // The page has the whole budget (the runner reports a page that takes longer); the
        // plain-HTTP probe, run beside it, a third, so a silent port 80 ends first.
        let (page_wait, probe_wait) = (self.timeout, self.timeout / 3);
        let mut plain = url.clone();
        let https_start = url.scheme() == "https";
        if https_start {
            let _ = plain.set_scheme("http");
            let _ = plain.set_port(None);
        }
        let (https, http) = if https_start {
            tokio::join!(
                fetcher.chain(url.clone(), &host, page_wait, true),
                fetcher.chain(plain, &host, probe_wait, false)
            )
        } else {
            // An http:// target: its chain is the page; HTTPS is where it leads, if anywhere.
            let http = fetcher.chain(plain, &host, page_wait, true).await;
            let https = match &http.last {
                Some((u, _)) if u.scheme() == "https" => Chain {
                    hops: http.hops.clone(),
                    last: http.last.clone(),
                    body: http.body.clone(),
                    cookies: http.cookies.clone(),
                    cert_error: http.cert_error.clone(),
                    left_host: None,
                    failure: None,
                },
                _ => Chain::default(),
            };
            (https, http)
        };
        let session = if https.last.is_some() { &https } else { &http };
        if let Some(to) = &session.left_host {
            return Ok(vec![left_host(target, session, to)]);
        }
        if session.last.is_none() {
            return Err(session
                .failure
                .clone()
                .unwrap_or_else(|| "no answer".into()));
        }
        let graded = session
            .last
            .as_ref()
            .map(|(u, _)| u.clone())
            .expect("checked above");
        let cors = fetcher.preflight(&graded, probe_wait).await;
        let ex = http_fetch::exchange(&host, &https, &http, cors).ok_or("no answer")?;
        let outcomes = match observatory::analyze(&ex, &none_preloaded) {
            Ok(o) => o,
            Err(observatory::NotGraded(why)) => {
                return Ok(vec![finding(
                    target,
                    Severity::Medium,
                    "Page not graded".into(),
                    why,
                    "Check the configured URL: the Observatory grades pages that answer 2xx, 3xx, 401 or 403.",
                    "scanning",
                )]);
            }
        };
        let meta = html::read(&ex.body).meta_csp;
        let mut found =
            http_rules::findings(target, &ex, &outcomes, &meta, https.cert_error.as_deref());
        if https_start
            && http.last.is_none()
            && let Some(why) = http
                .failure
                .as_deref()
                .filter(|w| w.starts_with("no answer"))
        {
            found.insert(
                0,
                finding(
                    target,
                    Severity::Low,
                    "Plain HTTP does not answer".into(),
                    format!("http://{host}/: {why}"),
                    "Answer on port 80 with a redirect to HTTPS, or close the port.",
                    "test redirection",
                ),
            );
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpHeadersTargets;

    #[test]
    fn targets_are_shown_without_credentials_and_only_they_are_checked() {
        let settings = CheckSettings {
            http_headers: HttpHeadersTargets {
                urls: vec![
                    "https://ops:hunter2@app.example.com/login".into(),
                    "http://plain.example/".into(),
                ],
            },
            ..CheckSettings::default()
        };
        let check = HttpHeaders::new(&settings);
        assert_eq!(
            check.targets(),
            ["https://app.example.com/login", "http://plain.example/"]
        );
        let refused = futures::executor::block_on(check.check("http://evil.example/"));
        assert_eq!(refused, Err("not a configured target".to_string()));
    }
}
