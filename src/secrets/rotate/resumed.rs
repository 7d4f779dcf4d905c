//! A rotation a stop interrupted (its replica went away mid-step; the lease ran out) is
//! resumed by the next tick, and whoever is waiting on it is told: the admin who requested
//! it (in their private chat) and the rotation's alert chats hear that it was interrupted
//! and is resumed, then how it ended. Through the outbox, so nothing is lost meanwhile.

use super::*;

impl Rotations {
    /// Tell, resume, tell how it ended.
    pub(super) async fn resume_interrupted(
        &self,
        secret: &ManagedSecret,
        row: RotationRow,
    ) -> Result<Outcome, RotateError> {
        let name = escape(secret.name.as_str());
        let step = row.step();
        let stage = if row.step_done { "after" } else { "during" };
        self.tell(
            &row,
            &format!(
                "⏯ Rotation #{} of <b>{name}</b> was interrupted by a stop {stage} step <code>{}</code> (last recorded {} UTC) and is resumed now.",
                row.id,
                step.as_str(),
                row.updated_at.format("%Y-%m-%d %H:%M:%S")
            ),
        )
        .await;
        let outcome = self.drive(secret, row.clone()).await?;
        let ended = match &outcome {
            Outcome::Succeeded {
                version,
                fingerprint,
                ..
            } => format!(
                "✅ Rotation #{} of <b>{name}</b>, resumed after a stop, finished: version {version} (<code>{fingerprint}</code>) is current.",
                row.id
            ),
            Outcome::Waiting { version, until, .. } => format!(
                "⏳ Rotation #{} of <b>{name}</b>, resumed after a stop, is set and tested: version {version} becomes current at {} UTC.",
                row.id,
                until.format("%Y-%m-%d %H:%M:%S")
            ),
            Outcome::Retrying {
                step,
                error,
                next_at,
                ..
            } => format!(
                "⚠️ Rotation #{} of <b>{name}</b>, resumed after a stop, failed at step <code>{}</code>: {} — retrying at {} UTC.",
                row.id,
                step.as_str(),
                escape(error),
                next_at.format("%Y-%m-%d %H:%M:%S")
            ),
            Outcome::GaveUp { step, error, .. } => format!(
                "🔴 Rotation #{} of <b>{name}</b>, resumed after a stop, was given up at step <code>{}</code>: {} (the current value stays).",
                row.id,
                step.as_str(),
                escape(error)
            ),
        };
        self.tell(&row, &ended).await;
        Ok(outcome)
    }

    /// Queue `html` to the rotation's requester (their private chat) and its alert chats,
    /// each once.
    async fn tell(&self, row: &RotationRow, html: &str) {
        let mut chats: Vec<i64> = row.requested_by.into_iter().collect();
        for chat in &self.settings.alert_chats {
            if !chats.contains(chat) {
                chats.push(*chat);
            }
        }
        let reply = Reply::html(html);
        for chat in chats {
            if let Err(e) = crate::outbox::enqueue(&self.pool, chat, &reply, "rotation").await {
                tracing::error!(error = %e, rotation.id = row.id, chat.id = chat, "secrets.notice_failed");
            }
        }
    }
}
