//! What the HTTP Observatory algorithm grades: the responses fetched for one site (the graded
//! page, its plain-HTTP and HTTPS answers, the CORS preflight) and the redirect chain, as
//! plain data, so the same rules grade a live fetch and the Observatory's recorded cases.

use reqwest::Url;

/// One HTTP answer: its status, whether its certificate verified, and its headers in the
/// order received (names lowercase; a header sent twice appears twice).
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub verified: bool,
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// Every value of a header, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of a header.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }
}

/// The graded site: everything the tests read.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The host name checked (HSTS preload and SRI compare against it).
    pub site: String,
    /// The URL of the graded session (https:// when the site answered over HTTPS).
    pub session_url: Url,
    /// The graded page: the end of the HTTPS chain, else of the plain-HTTP chain.
    pub auto: Response,
    /// The end of the chain that started at http:// (None: nothing answered on port 80).
    pub http: Option<Response>,
    /// The end of the chain that started at https:// (None: no HTTPS).
    pub https: Option<Response>,
    /// The answer to a CORS preflight, and the Origin it was sent with.
    pub cors: Option<Response>,
    pub cors_origin: Option<String>,
    /// The graded page's body (HTML), for `<meta>` policies and `<script>` elements.
    pub body: String,
    /// The chain that started at http://: each URL visited and the status it answered.
    pub http_redirects: Vec<(Url, u16)>,
    /// Set-Cookie values the graded session received, with the URL that sent each.
    pub cookies: Vec<(Url, String)>,
}

/// HSTS preload list lookup: `Some(include_subdomains)` for a host preloaded with
/// `force-https`.
pub type Preload<'a> = &'a dyn Fn(&str) -> Option<bool>;

/// No host preloaded: opsguard grades internal sites, which no browser list carries.
pub fn none_preloaded(_: &str) -> Option<bool> {
    None
}

/// Whether a host, or a parent preloaded with includeSubDomains, is on the list.
pub fn is_preloaded(preload: Preload<'_>, host: &str) -> Option<bool> {
    if let Some(sub) = preload(host) {
        return Some(sub);
    }
    let mut rest = host;
    while let Some((_, parent)) = rest.split_once('.') {
        if preload(parent) == Some(true) {
            return Some(true);
        }
        rest = parent;
    }
    None
}
