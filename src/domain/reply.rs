//! What the engine answers: HTML text, optional inline buttons and an optional document.
//! Transports render it (Telegram message, console text); they never build replies themselves.

use crate::domain::UserId;

/// Telegram's hard limit for one message's text.
pub const MESSAGE_LIMIT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    /// Opaque callback data: `c:<action-id>` (confirm) or `x:<action-id>` (cancel).
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// HTML parse-mode text; every piece of untrusted text in it is escaped.
    pub html: String,
    pub buttons: Vec<Button>,
    /// A refusal meant for whoever pressed a button, and no one else: Telegram shows it as
    /// a callback notice and leaves the message (and its buttons) as it was.
    pub notice: bool,
    /// A document sent after the text: (file name, bytes). Telegram gets it with
    /// `sendDocument`, the console prints its name and size; the outbox does not carry it.
    pub attachment: Option<(String, Vec<u8>)>,
    /// A PNG picture sent after the text (a chart): `sendPhoto` in Telegram, its size in
    /// the console; the outbox does not carry it.
    pub photo: Option<Vec<u8>>,
    /// Sent with `protect_content` (Telegram then refuses to forward or save it).
    pub protect: bool,
    /// The transport tells the engine which message this became (`Engine::reply_sent`),
    /// so it can be deleted later; only single-message replies are tracked.
    pub track: Option<Tracked>,
}

/// Why a sent reply's message must be known: it shows a secret and is deleted later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// A user's TOTP enrolment URI: deleted once confirmed or expired.
    TotpEnrolment(UserId),
}

impl Reply {
    pub fn html(html: impl Into<String>) -> Self {
        Reply {
            html: html.into(),
            buttons: Vec::new(),
            notice: false,
            attachment: None,
            photo: None,
            protect: false,
            track: None,
        }
    }
    /// Nothing to say: no text, no buttons, no attachment. The engine answers nothing.
    pub fn is_empty(&self) -> bool {
        self.html.trim().is_empty()
            && self.buttons.is_empty()
            && self.attachment.is_none()
            && self.photo.is_none()
    }

    pub fn as_notice(mut self) -> Self {
        self.notice = true;
        self
    }
    pub fn with_attachment(mut self, file_name: impl Into<String>, bytes: Vec<u8>) -> Self {
        self.attachment = Some((file_name.into(), bytes));
        self
    }
    pub fn with_photo(mut self, png: Vec<u8>) -> Self {
        self.photo = Some(png);
        self
    }
    /// Protected content that the engine hears about once sent (see `track`).
    pub fn protected(mut self, track: Tracked) -> Self {
        self.protect = true;
        self.track = Some(track);
        self
    }
    pub fn with_buttons(mut self, buttons: Vec<Button>) -> Self {
        self.buttons = buttons;
        self
    }

    /// Split the text into chunks of at most `limit` characters as Telegram counts them
    /// (UTF-16 units after entity parsing), at line ends where it can, never inside a tag:
    /// tags open at a split are closed and reopened (`telegram_text::split`).
    pub fn chunks(&self, limit: usize) -> Vec<String> {
        crate::domain::telegram_text::split(&self.html, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_replies_are_one_chunk_and_long_ones_split_on_lines() {
        assert_eq!(Reply::html("hi").chunks(MESSAGE_LIMIT), vec!["hi"]);
        let text: String = (0..600).map(|i| format!("<b>line</b> {i:04}\n")).collect();
        let chunks = Reply::html(text.clone()).chunks(MESSAGE_LIMIT);
        assert!(chunks.len() > 1);
        assert!(
            chunks
                .iter()
                .all(|c| crate::domain::telegram_text::telegram_len(c) <= MESSAGE_LIMIT)
        );
        assert!(
            chunks
                .iter()
                .all(|c| c.matches("<b>").count() == c.matches("</b>").count())
        );
        assert_eq!(chunks.concat(), text);
    }
}
