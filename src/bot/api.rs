//! Bot API calls made by opsguard itself, not by teloxide's `send()`: the same JSON payloads
//! (teloxide builds them), posted with the bot's own client, and the answer read here. The
//! reason is the server error: teloxide sleeps 10 s inside any call answered 5xx before it
//! returns (`DELAY_ON_SERVER_ERROR`), which held a reply, or the whole outbox pass, for
//! 10 s per failure. Here a 5xx comes back at once as a transient error, and the caller's
//! own backoff (`paced`, the outbox's retry) decides when to try again.
//! Multipart calls (documents, photos) still go through teloxide.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use teloxide::requests::{HasPayload, Payload};
use teloxide::types::{ChatId, Seconds};
use teloxide::{ApiError, Bot, RequestError};

/// The prefix of the error a 5xx answer becomes (see `is_transient`).
const SERVER_ERROR: &str = "HTTP 5";
/// The longest answer read (Telegram's are a few kB; a file's metadata at most).
const MAX_ANSWER: usize = 1 << 20;

/// Telegram's answer envelope.
#[derive(serde::Deserialize)]
struct Answer<T> {
    ok: bool,
    result: Option<T>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(serde::Deserialize)]
struct Parameters {
    retry_after: Option<u32>,
    migrate_to_chat_id: Option<i64>,
}

/// Post `request`'s payload to its method and read the answer.
pub async fn call<R>(bot: &Bot, request: R) -> Result<<R::Payload as Payload>::Output, RequestError>
where
    R: HasPayload,
    R::Payload: Serialize,
    <R::Payload as Payload>::Output: DeserializeOwned,
{
    let mut url = bot.api_url();
    url.path_segments_mut()
        .map_err(|()| {
            RequestError::Api(ApiError::Unknown("the API URL cannot take a path".into()))
        })?
        .push(&format!("bot{}", bot.token()))
        .push(<R::Payload as Payload>::NAME);
    let response = bot
        .client()
        .post(url)
        .json(request.payload_ref())
        .send()
        .await
        .map_err(network)?;
    let status = response.status();
    let body = capped_body(response).await?;
    read(status.as_u16(), &body).map_err(|e| hide_token(e, bot.token()))
}

/// The answer's body, at most `MAX_ANSWER` bytes: a hostile endpoint cannot make opsguard
/// hold more (the client's timeout bounds the time).
async fn capped_body(mut response: reqwest::Response) -> Result<String, RequestError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(RequestError::Api(ApiError::Unknown(format!(
                "answer longer than {MAX_ANSWER} bytes, not read"
            ))));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// An error as callers log it: the token (plain or URL-encoded), which an endpoint may echo
/// from the request path, cut out.
fn hide_token(e: RequestError, token: &str) -> RequestError {
    let hide = |text: &str| {
        text.replace(token, "<token>")
            .replace(&token.replace(':', "%3A"), "<token>")
    };
    match e {
        RequestError::Api(ApiError::Unknown(said)) => {
            RequestError::Api(ApiError::Unknown(hide(&said)))
        }
        RequestError::InvalidJson { source, raw } => RequestError::InvalidJson {
            source,
            raw: hide(&raw).into_boxed_str(),
        },
        other => other,
    }
}

fn network(e: reqwest::Error) -> RequestError {
    // The URL holds the token: never let it reach an error message.
    RequestError::Network(Arc::new(e.without_url()))
}

/// An answer as the caller sees it: the result, flood control, a group's move, or an
/// error; a 5xx (whatever its body) is a transient `HTTP 5xx` error.
fn read<T: DeserializeOwned>(status: u16, body: &str) -> Result<T, RequestError> {
    let parsed: Result<Answer<T>, _> = serde_json::from_str(body);
    if (500..600).contains(&status) {
        let said = parsed.ok().and_then(|a| a.description).unwrap_or_default();
        return Err(RequestError::Api(ApiError::Unknown(format!(
            "HTTP {status}: {said}"
        ))));
    }
    let answer = match parsed {
        Ok(answer) => answer,
        // Accepted, but its answer does not read: the message was most likely delivered,
        // so this is not worth sending again (not transient).
        Err(e) if (200..300).contains(&status) => {
            return Err(RequestError::Api(ApiError::Unknown(format!(
                "answered {status} but unreadable: {e}"
            ))));
        }
        Err(e) => {
            return Err(RequestError::InvalidJson {
                source: Arc::new(e),
                raw: body.chars().take(500).collect::<String>().into_boxed_str(),
            });
        }
    };
    if answer.ok
        && let Some(result) = answer.result
    {
        return Ok(result);
    }
    if let Some(p) = &answer.parameters {
        if let Some(secs) = p.retry_after {
            return Err(RequestError::RetryAfter(Seconds::from_seconds(secs)));
        }
        if let Some(chat) = p.migrate_to_chat_id {
            return Err(RequestError::MigrateToChatId(ChatId(chat)));
        }
    }
    let description = answer.description.unwrap_or_default();
    let error = serde_json::from_value(serde_json::Value::String(description.clone()))
        .unwrap_or(ApiError::Unknown(description));
    Err(RequestError::Api(error))
}

/// True for an error worth trying again soon: the network or a 5xx (a message may then
/// arrive twice, when Telegram took it but its answer was lost: at least once). False for
/// what Telegram refused (4xx), an answer that does not read, flood control and a group's
/// move, which the callers handle themselves.
pub fn is_transient(e: &RequestError) -> bool {
    match e {
        RequestError::Network(_) | RequestError::Io(_) => true,
        RequestError::Api(ApiError::Unknown(said)) => said.starts_with(SERVER_ERROR),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_as_telegram_means_them() {
        let ok: i32 = read(200, r#"{"ok":true,"result":7}"#).unwrap();
        assert_eq!(ok, 7);
        let flood = read::<i32>(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 9","parameters":{"retry_after":9}}"#,
        );
        assert!(matches!(flood, Err(RequestError::RetryAfter(s)) if s.seconds() == 9));
        let moved = read::<i32>(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001}}"#,
        );
        assert!(matches!(
            moved,
            Err(RequestError::MigrateToChatId(ChatId(-1001)))
        ));
        let refused = read::<i32>(
            403,
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        )
        .unwrap_err();
        assert!(matches!(refused, RequestError::Api(ApiError::BotBlocked)));
        assert!(!is_transient(&refused));
    }

    #[test]
    fn a_server_error_is_transient_whatever_its_body() {
        for (status, body) in [
            (502, "<html>Bad Gateway</html>"),
            (
                500,
                r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#,
            ),
            (503, ""),
        ] {
            let e = read::<i32>(status, body).unwrap_err();
            assert!(is_transient(&e), "{status}: {e}");
            assert!(e.to_string().contains(&format!("HTTP {status}")), "{e}");
        }
        let unknown_4xx = read::<i32>(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: something new"}"#,
        )
        .unwrap_err();
        assert!(!is_transient(&unknown_4xx));
        // Accepted but unreadable: most likely delivered, so not sent again.
        let garbled = read::<i32>(200, "not json").unwrap_err();
        assert!(!is_transient(&garbled));
        let wrong_shape = read::<i32>(200, r#"{"ok":true,"result":{"message_id":1}}"#);
        assert!(!is_transient(&wrong_shape.unwrap_err()));
    }

    #[test]
    fn the_token_never_reaches_an_error() {
        let token = "123456:SECRET-token";
        let echoed = read::<i32>(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: no /bot123456:SECRET-token/sendMessage or /bot123456%3ASECRET-token/x"}"#,
        )
        .unwrap_err();
        let shown = hide_token(echoed, token).to_string();
        assert!(!shown.contains("SECRET"), "{shown}");
        let garbled = read::<i32>(404, "<h1>/bot123456:SECRET-token/sendMessage</h1>").unwrap_err();
        let shown = hide_token(garbled, token).to_string();
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
