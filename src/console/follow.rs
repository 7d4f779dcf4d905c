//! The console's follower: a task that polls the progress of the user's backups and
//! restore tests and prints each change as a line, while the REPL reads commands and
//! while the console finishes the jobs before it leaves.

use crate::backups::watch::Follower;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the follower looks for new progress.
const EVERY: Duration = Duration::from_millis(250);

pub struct Following {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Follower>,
}

/// Print `follower`'s new lines to stdout until stopped.
pub fn spawn(mut follower: Follower) -> Following {
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        loop {
            print_new(&mut follower).await;
            tokio::select! {
                _ = stopped.cancelled() => break,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
        // A last look, so a result written just before the stop is shown.
        print_new(&mut follower).await;
        follower
    });
    Following { stop, task }
}

async fn print_new(follower: &mut Follower) {
    match follower.poll().await {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "console.follow_failed"),
    }
}

impl Following {
    /// Stop after a last look; returns what was shown.
    pub async fn stop(self) -> Follower {
        self.stop.cancel();
        self.task.await.expect("the follower task does not panic")
    }
}
