//! What `http_headers` fetches for one configured URL, as an Observatory `Exchange`: the
//! redirect chains from https:// and http:// followed hop by hop while they stay on the
//! configured host (checks reach only configured hosts; a hop to another host is recorded,
//! not requested), the graded page's body (capped), and a CORS preflight. HTTPS is verified
//! against the web roots plus `[checks.tls] ca_file`; a certificate that fails is recorded
//! as such and the site still graded.

use super::observatory::exchange::{Exchange, Response};
use reqwest::{Client, Method, Url};
use std::time::Duration;

const MAX_HOPS: usize = 10;
const MAX_BODY: usize = 1 << 20;
/// The Origin of the CORS preflight: a name that is no one's site.
pub const CORS_ORIGIN: &str = "https://opsguard-cors-probe.invalid";

/// The two clients: one that verifies certificates, one that reads past a failed one.
pub struct Fetcher {
    pub verifying: Client,
    pub lenient: Client,
}

/// One chain: each URL and its status, the last answer, its body, the cookies on the way.
#[derive(Debug, Default)]
pub struct Chain {
    pub hops: Vec<(Url, u16)>,
    pub last: Option<(Url, Response)>,
    pub body: String,
    pub cookies: Vec<(Url, String)>,
    /// The certificate error of an https hop, when one failed verification.
    pub cert_error: Option<String>,
    /// A hop to another host, recorded and not requested.
    pub left_host: Option<Url>,
    /// Why the chain stopped early (no answer, too many hops).
    pub failure: Option<String>,
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// An error and its causes, one line, without the URL.
pub fn explain(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut parts = vec![e.to_string()];
    let mut next = std::error::Error::source(&e);
    while let Some(cause) = next {
        parts.push(cause.to_string());
        next = cause.source();
    }
    super::http_rules::cut(parts.join(": ").as_bytes())
}

impl Fetcher {
    /// GET (or another method) with the verifying client; on failure, once more without
    /// verification: if that answers, the first failure was the certificate.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        wait: Duration,
        origin: Option<&str>,
    ) -> Result<(reqwest::Response, Option<String>), String> {
        let build = |client: &Client| {
            let mut r = client.request(method.clone(), url.clone()).timeout(wait);
            if let Some(o) = origin {
                r = r
                    .header("origin", o)
                    .header("access-control-request-method", "GET");
            }
            r
        };
        match build(&self.verifying).send().await {
            Ok(r) => Ok((r, None)),
            Err(first) if url.scheme() == "https" && first.is_connect() => {
                let why = explain(first);
                match build(&self.lenient).send().await {
                    Ok(r) => Ok((r, Some(why))),
                    Err(_) => Err(why),
                }
            }
            Err(e) => Err(explain(e)),
        }
    }

    /// Follow the chain from `start` while it stays on `host`.
    pub async fn chain(&self, start: Url, host: &str, wait: Duration, body: bool) -> Chain {
        let mut chain = Chain::default();
        let mut url = start;
        for _ in 0..MAX_HOPS {
            let (answer, cert) = match self.send(Method::GET, &url, wait, None).await {
                Ok(a) => a,
                Err(why) => {
                    chain.failure = Some(if why == "timed out" {
                        format!("no answer within {} ms", wait.as_millis())
                    } else {
                        why
                    });
                    return chain;
                }
            };
            if cert.is_some() {
                chain.cert_error = cert;
            }
            let status = answer.status().as_u16();
            let response = Response {
                status,
                verified: chain.cert_error.is_none(),
                headers: headers(answer.headers()),
            };
            chain.hops.push((url.clone(), status));
            for c in response.all("set-cookie") {
                chain.cookies.push((url.clone(), c.to_string()));
            }
            let next = response
                .first("location")
                .filter(|_| is_redirect(status))
                .and_then(|l| url.join(l).ok());
            chain.last = Some((url.clone(), response));
            match next {
                Some(next) if next.host_str() == Some(host) => url = next,
                Some(next) => {
                    chain.hops.push((next.clone(), 0));
                    chain.left_host = Some(next);
                    return chain;
                }
                None => {
                    if body {
                        chain.body = read_body(answer).await;
                    }
                    return chain;
                }
            }
        }
        chain.failure = Some(format!("more than {MAX_HOPS} redirects"));
        chain
    }

    /// The CORS preflight answer at the graded URL.
    pub async fn preflight(&self, url: &Url, wait: Duration) -> Option<Response> {
        let (answer, _) = self
            .send(Method::OPTIONS, url, wait, Some(CORS_ORIGIN))
            .await
            .ok()?;
        Some(Response {
            status: answer.status().as_u16(),
            verified: true,
            headers: headers(answer.headers()),
        })
    }
}

fn headers(map: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The first MiB of a body, as text.
async fn read_body(mut answer: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = answer.chunk().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() >= MAX_BODY {
            bytes.truncate(MAX_BODY);
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The graded exchange from the two chains (either may have failed) and the preflight.
pub fn exchange(
    site: &str,
    https: &Chain,
    http: &Chain,
    cors: Option<Response>,
) -> Option<Exchange> {
    let session = match (&https.last, &http.last) {
        (Some(_), _) => https,
        (None, Some(_)) => http,
        (None, None) => return None,
    };
    let (url, auto) = session.last.clone()?;
    let mut http_end = http.last.clone().map(|(_, r)| r);
    if let Some(r) = http_end.as_mut() {
        r.verified = http.cert_error.is_none();
    }
    Some(Exchange {
        site: site.to_string(),
        session_url: url,
        auto,
        http: http_end,
        https: https.last.clone().map(|(_, r)| r),
        cors,
        cors_origin: Some(CORS_ORIGIN.to_string()),
        body: session.body.clone(),
        http_redirects: http.hops.clone(),
        cookies: session.cookies.clone(),
    })
}
