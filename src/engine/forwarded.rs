//! A forwarded message is never run as a command: whoever forwards `/revoke 7 admin`
//! passes on someone else's words, not an order of their own. The same holds for a
//! message sent "via @somebot": its text is an inline bot's result, which the sender
//! picked from a list but did not write. The sender is identified and
//! the chat checked as for any message (a stranger still gets only the neutral line, a chat
//! that is not allow-listed nothing); then one reply says forwarded commands are not run,
//! and the refusal is audited (arguments redacted, as for any unparsed text).

use super::pipeline::Handled;
use super::trail::Trail;
use super::{Engine, Request};
use crate::domain::Reply;
use crate::domain::command::redact_unparsed;

/// What the sender of a forwarded message is told.
pub const FORWARDED_LINE: &str = "↪️ Forwarded messages, and messages sent via a bot, are \
    never run as commands. Type the command yourself.";

impl Engine {
    pub(super) async fn on_forwarded(&self, req: &Request, text: &str) -> Handled {
        let (name, args) = redact_unparsed(text);
        let trail = Trail::new(req, name, args);
        if let Err(done) = self.admit(req, &trail, "forwarded").await {
            return done;
        }
        let reply = Reply::html(FORWARDED_LINE);
        self.refuse(&trail, "forwarded", "refused", "forwarded message", reply)
            .await
    }
}
