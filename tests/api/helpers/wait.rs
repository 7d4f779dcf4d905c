//! Waiting for proof: poll a condition until it holds (or fail the test after a bound),
//! so no fixed sleep decides a verdict.

use std::time::Duration;

/// How long a proof may take before the test fails: generous for a loaded CI machine; a
/// passing test returns as soon as its proof holds.
pub const PROOF_WITHIN: Duration = Duration::from_secs(30);

/// Wait until `proof` holds, polling every 20 ms, at most `PROOF_WITHIN`.
pub async fn wait_for<F, Fut>(what: &str, proof: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + PROOF_WITHIN;
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    while tokio::time::Instant::now() < until {
        poll.tick().await;
        if proof().await {
            return;
        }
    }
    panic!("timed out after {PROOF_WITHIN:?} waiting for {what}");
}
