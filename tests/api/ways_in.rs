//! Every way in, tried as an attacker would: guessing the webhook secret from the network,
//! weak secrets at start-up, the ingest key's rotation, planted Redis keys, commands for
//! another bot, forwarded commands, and the shell's negative chat ids. Each test fails if
//! its hole reopens.

mod guessing;
mod ingest_keys;
mod shell;
mod telegram;

use super::helpers::*;
use std::net::IpAddr;

/// An HTTP client whose connections come from `source` (any 127/8 address is local).
pub fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// POST an update to the webhook with `secret`, from `client`; the status and body.
pub async fn post_from(
    app: &TestApp,
    client: &reqwest::Client,
    secret: &str,
    update: &serde_json::Value,
    forwarded_for: Option<&str>,
) -> (u16, String) {
    let mut request = client
        .post(app.url("/telegram/webhook"))
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .header("content-type", "application/json")
        .body(update.to_string());
    if let Some(xff) = forwarded_for {
        request = request.header("X-Forwarded-For", xff);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}
