//! The two Bot API clients: one for sends and other short calls, bounded by
//! `[telegram] request_timeout_secs`, and one for long polling, whose timeout outlasts the
//! time Telegram holds `getUpdates` open (`poll_timeout_secs`) by `POLL_MARGIN`.
//!
//! One client for both cannot work: a timeout short enough for a stuck send cuts every idle
//! poll off before Telegram answers it (teloxide's default of 17 s against a 25 s poll).

use std::time::Duration;
use teloxide::Bot;

/// How much longer than the poll's own hold the polling client waits for an answer.
pub const POLL_MARGIN: Duration = Duration::from_secs(10);

/// teloxide's own default for a Bot API call.
pub fn default_request_timeout_secs() -> u64 {
    17
}

/// The clients of one bot token and API base URL.
#[derive(Clone)]
pub struct BotClients {
    /// Sends, edits, getMe, setWebhook: each bounded by the request timeout.
    pub send: Bot,
    /// `getUpdates` only.
    pub poll: Bot,
}

impl BotClients {
    pub fn new(
        token: &str,
        api_url: &str,
        request_timeout: Duration,
        poll_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(api_url)
            .map_err(|e| anyhow::anyhow!("OPSGUARD_TELEGRAM_API_URL is not a URL: {e}"))?;
        let client = |timeout: Duration| {
            teloxide::net::default_reqwest_settings()
                .timeout(timeout)
                .build()
                .map_err(|e| anyhow::anyhow!("cannot build the Bot API HTTP client: {e}"))
        };
        let send = Bot::with_client(token, client(request_timeout)?).set_api_url(url.clone());
        let poll = Bot::with_client(token, client(poll_timeout + POLL_MARGIN)?).set_api_url(url);
        Ok(BotClients { send, poll })
    }
}

/// An error with every cause under it, `outer: inner: innermost`, so a log line says why
/// ("error sending request: operation timed out", not only the first). teloxide strips
/// the URL (which holds the token) from its network errors before they get here.
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        // Wrappers often repeat their source's text in their own: say it once.
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn the_chain_names_every_cause_once() {
        let inner = Layer("operation timed out", None);
        let middle = Layer("error sending request", Some(Box::new(inner)));
        let outer = Layer(
            "A network error: error sending request",
            Some(Box::new(middle)),
        );
        assert_eq!(
            cause_chain(&outer),
            "A network error: error sending request: operation timed out"
        );
    }

    #[test]
    fn a_bad_url_is_refused_naming_the_variable() {
        let secs = Duration::from_secs(1);
        let error = BotClients::new("1:x", "not a url", secs, secs)
            .err()
            .unwrap();
        assert!(error.to_string().contains("OPSGUARD_TELEGRAM_API_URL"));
    }
}
