//! Fast tests of the rate limiter with Redis unreachable (no services): each risk class has
//! its own limit and key, and a degraded limiter still refuses with the real wait.

use super::*;
use tokio_util::sync::CancellationToken;

fn settings() -> RateLimitSettings {
    RateLimitSettings {
        window_secs: 60,
        read: 3,
        operate: 2,
        sensitive: 1,
    }
}

async fn degraded() -> RateLimiter {
    // Not a redis:// URL: the link never connects and every check runs locally.
    let link = RedisLink::connect(
        "not-redis",
        "t:",
        Duration::from_millis(10),
        CancellationToken::new(),
    )
    .await;
    assert!(link.conn().is_none());
    RateLimiter::new(settings(), link)
}

#[test]
fn each_risk_class_has_its_own_limit_and_key() {
    let s = settings();
    assert_eq!(limit_for(&s, RiskClass::Read), 3);
    assert_eq!(limit_for(&s, RiskClass::Operate), 2);
    assert_eq!(limit_for(&s, RiskClass::Sensitive), 1);
    assert_eq!(key_of("user:42", RiskClass::Read), "rl:user:42:read");
    assert_eq!(
        key_of("user:42", RiskClass::Sensitive),
        "rl:user:42:sensitive"
    );
}

#[tokio::test]
async fn a_degraded_limiter_refuses_past_the_limit_with_the_wait_of_the_window() {
    let limiter = degraded().await;
    assert_eq!(
        limiter.check("user:1", RiskClass::Operate).await,
        Verdict::Allowed
    );
    assert_eq!(
        limiter.check("user:1", RiskClass::Operate).await,
        Verdict::Allowed
    );
    let Verdict::Limited(wait) = limiter.check("user:1", RiskClass::Operate).await else {
        panic!("the third operate command in a minute is refused");
    };
    // The window is 60 s and its oldest hit is a moment old: the wait is close to 60 s,
    // not the 1 ms floor.
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    // Other classes and subjects keep their own budgets.
    assert_eq!(
        limiter.check("user:1", RiskClass::Read).await,
        Verdict::Allowed
    );
    assert_eq!(
        limiter.check("user:2", RiskClass::Operate).await,
        Verdict::Allowed
    );
}

#[tokio::test]
async fn a_degraded_limiter_admits_one_sensitive_command_a_window() {
    let limiter = degraded().await;
    assert_eq!(
        limiter.check("user:1", RiskClass::Sensitive).await,
        Verdict::Allowed
    );
    // The outage hit is still in the window: refused whatever Redis would say.
    assert!(matches!(
        limiter.check("user:1", RiskClass::Sensitive).await,
        Verdict::Limited(w) if w > Duration::from_secs(55)
    ));
}
