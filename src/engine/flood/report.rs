//! The aggregate audit rows of dropped updates: one per subject (sender, chat or all
//! strangers) and window, written once the window ends, by whichever replica claims it.

use super::Dropped;
use crate::domain::audit::{AuditEntry, Phase};
use crate::engine::Engine;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Write the aggregate rows of ended windows until `shutdown`, then those this process
    /// still holds.
    pub fn spawn_flood_reports(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let window = Duration::from_secs(engine.settings().flood.window_secs);
        let every = (window / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => engine.report_drops(false).await,
                }
            }
            engine.report_drops(true).await;
        })
    }

    async fn report_drops(&self, all: bool) {
        let window = self.settings().flood.window_secs;
        for dropped in self.inner.flood.take_due(all).await {
            let entry = aggregate_row(&dropped, window);
            if let Err(e) = self.audit().append(entry).await {
                tracing::error!(error = %e, flood.subject = %dropped.subject, flood.dropped = dropped.count, "audit.write_failed");
            }
        }
    }
}

/// The one row that stands for `dropped.count` dropped updates.
fn aggregate_row(dropped: &Dropped, window_secs: u64) -> AuditEntry {
    let noun = if dropped.count == 1 {
        "message"
    } else {
        "messages"
    };
    AuditEntry {
        request_id: uuid::Uuid::now_v7().to_string(),
        at_micros: chrono::Utc::now().timestamp_micros(),
        phase: Phase::Outcome.as_str().into(),
        actor_kind: "telegram".into(),
        actor_id: dropped.actor_id,
        chat_id: dropped.chat_id,
        command: "flood".into(),
        args: dropped.subject.clone(),
        decision: "rate_limited".into(),
        reason: Some(format!(
            "{} {noun} dropped in {window_secs} s",
            dropped.count
        )),
        outcome: Some("dropped".into()),
        error: None,
        duration_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aggregate_row_names_the_subject_and_the_count() {
        let mut d = Dropped::new("sender:7", Some(7), Some(7));
        d.count = 9_997;
        let row = aggregate_row(&d, 60);
        assert_eq!(
            (
                row.command.as_str(),
                row.decision.as_str(),
                row.phase.as_str()
            ),
            ("flood", "rate_limited", "outcome")
        );
        assert_eq!(row.reason.as_deref(), Some("9997 messages dropped in 60 s"));
        assert_eq!((row.actor_id, row.chat_id), (Some(7), Some(7)));
        assert_eq!(row.args, "sender:7");
        d.count = 1;
        assert_eq!(
            aggregate_row(&d, 5).reason.as_deref(),
            Some("1 message dropped in 5 s")
        );
    }
}
