//! An alert's accounts: every distinct account is stored once (`login_alert_accounts`), the
//! page lists the first eight in byte order with the count of them all, a folded alert
//! keeps none of its own, and a batch that brings no account, rule or time the alert lacks
//! leaves its row as it was.

use super::*;

fn spray_rule(s: &mut Settings) {
    only_rule(s, "password-spray", 900);
    s.logins.update_every_secs = 1;
}

/// One failure from `ip` per account, `ms` milliseconds apart from `start`.
fn tried(ip: &str, accounts: &[String], start: DateTime<Utc>, ms: i64) -> Vec<AuthEvent> {
    accounts
        .iter()
        .enumerate()
        .map(|(i, a)| failure(ip, a, start + Duration::milliseconds(ms * i as i64)))
        .collect()
}

fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:02}")).collect()
}

/// (count, account_count, listed accounts) of the only alert.
async fn row(app: &TestApp) -> (i64, i32, Vec<String>) {
    sqlx::query_as("SELECT count, account_count, accounts FROM login_alerts")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

async fn stored(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT account FROM login_alert_accounts ORDER BY account COLLATE \"C\"")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_page_lists_the_first_eight_accounts_in_byte_order_and_counts_them_all() {
    let app = spawn_app_with(spray_rule).await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(120);
    // Twenty accounts, u20…u39, in reverse: the page lists u20…u27, whatever the order.
    let mut first = names("u", 20..40);
    first.reverse();
    assert_eq!(
        detector
            .detect(&tried("203.0.113.5", &first, start, 100))
            .await
            .unwrap()
            .len(),
        1
    );
    let (_, page, _) = &pushes(&app).await[0];
    assert!(
        page.contains("20 accounts: u20, u21, u22, u23, u24, u25, u26, u27 +12 more"),
        "{page}"
    );
    // Seventeen more: a00…a14 and two names byte order puts first (a dictionary order
    // would not), and five of the first again.
    let mut more = names("a", 0..15);
    more.extend(["Zed".to_string(), "B-b".to_string()]);
    more.extend(names("u", 30..35));
    let later = start + Duration::seconds(10);
    assert!(
        detector
            .detect(&tried("203.0.113.5", &more, later, 100))
            .await
            .unwrap()
            .is_empty()
    );
    let (count, account_count, listed) = row(&app).await;
    assert_eq!((count, account_count), (37, 37));
    let mut first_eight = vec!["B-b".to_string(), "Zed".to_string()];
    first_eight.extend(names("a", 0..6));
    assert_eq!(listed, first_eight);
    let mut all = vec!["B-b".to_string(), "Zed".to_string()];
    all.extend(names("a", 0..15));
    all.extend(names("u", 20..40));
    assert_eq!(stored(&app).await, all);
    let edits = alert_edits(&app).await;
    let edited = &edits.last().expect("the page edited").1;
    assert!(
        edited.contains("37 accounts: B-b, Zed, a00, a01, a02, a03, a04, a05 +29 more"),
        "{edited}"
    );
    assert!(edited.contains("so far 37 accounts"), "{edited}");
}

#[tokio::test]
async fn a_folded_account_alert_keeps_no_accounts_of_its_own_and_its_host_lists_them() {
    let app = spawn_app_with(|s| {
        s.logins
            .rules
            .retain(|r| ["ip-failures", "account-lockout"].contains(&r.name.as_str()));
        for r in &mut s.logins.rules {
            r.cooldown_secs = None;
        }
        s.logins.alert_chats = vec![ALERT_CHAT];
        s.logins.update_every_secs = 1;
    })
    .await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(120);
    let spread = tried("203.0.113.7", &names("u", 0..11), start, 1000);
    assert_eq!(detector.detect(&spread).await.unwrap().len(), 1);
    let alice = vec!["alice".to_string(); 5];
    let folded = tried("203.0.113.7", &alice, start + Duration::seconds(20), 1000);
    assert!(detector.detect(&folded).await.unwrap().is_empty());
    let rows: Vec<(String, String, i32, i64)> = sqlx::query_as(
        "SELECT a.key, a.state, a.account_count,
                (SELECT count(*) FROM login_alert_accounts WHERE alert_id = a.id)
         FROM login_alerts a ORDER BY a.id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("ip:203.0.113.7".into(), "open".into(), 12, 12),
            ("account:alice".into(), "folded".into(), 0, 0),
        ]
    );
    let edited = alert_edits(&app).await.last().unwrap().1.clone();
    assert!(
        edited.contains("12 accounts: alice, u00, u01, u02, u03, u04, u05, u06 +4 more"),
        "{edited}"
    );
}

#[tokio::test]
async fn a_source_alert_that_gains_nothing_shown_from_a_folded_episode_is_not_rewritten() {
    let app = spawn_app_with(|s| {
        s.logins
            .rules
            .retain(|r| ["password-spray", "account-lockout"].contains(&r.name.as_str()));
        for r in &mut s.logins.rules {
            r.cooldown_secs = None;
        }
        s.logins.alert_chats = vec![ALERT_CHAT];
        s.logins.update_every_secs = 1;
    })
    .await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(300);
    // The spray pages: its page lists u20…u27 of u20…u39.
    let sprayed = tried("203.0.113.9", &names("u", 20..40), start, 100);
    assert_eq!(detector.detect(&sprayed).await.unwrap().len(), 1);
    // Five failures on u35 from the same address: an account alert folded into the spray,
    // which takes its rule (a change shown: "also: account-lockout").
    let u35 = vec!["u35".to_string(); 5];
    let later = start + Duration::seconds(10);
    assert!(
        detector
            .detect(&tried("203.0.113.9", &u35, later, 1000))
            .await
            .unwrap()
            .is_empty()
    );
    let host = "SELECT count, account_count, rules, xmin::text FROM login_alerts
                WHERE key = 'spray:203.0.113.9'";
    let before: (i64, i32, Vec<String>, String) =
        sqlx::query_as(host).fetch_one(app.pool()).await.unwrap();
    assert_eq!((before.0, before.1), (20, 20));
    assert_eq!(before.2, ["account-lockout"]);
    let edits = alert_edits(&app).await.len();
    // One more on u35, arriving late (inside what both alerts cover): the folded alert
    // counts it; the spray already holds u35 (unlisted), the rule and the time, so its row
    // is not written and its page not edited.
    let late = later + Duration::milliseconds(2500);
    let one_more = tried("203.0.113.9", &u35[..1], late, 0);
    detector.detect(&one_more).await.unwrap();
    let folded: i64 =
        sqlx::query_scalar("SELECT count FROM login_alerts WHERE key = 'account:u35'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        folded, 7,
        "u35 failed once in the spray, five times, then once more"
    );
    let after: (i64, i32, Vec<String>, String) =
        sqlx::query_as(host).fetch_one(app.pool()).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(alert_edits(&app).await.len(), edits);
}

#[tokio::test]
async fn a_source_alert_with_no_episode_in_the_batch_is_edited_when_a_fold_grows_it() {
    let app = spawn_app_with(|s| {
        s.logins
            .rules
            .retain(|r| ["ip-failures", "account-lockout"].contains(&r.name.as_str()));
        for r in &mut s.logins.rules {
            r.cooldown_secs = None;
        }
        s.logins.alert_chats = vec![ALERT_CHAT];
        s.logins.update_every_secs = 1;
    })
    .await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(300);
    let spread = tried("203.0.113.8", &names("u", 0..11), start, 1000);
    assert_eq!(detector.detect(&spread).await.unwrap().len(), 1);
    let page = pushes(&app).await[0].0;
    // Two minutes later, five on alice: too few for the address's 60 s window (no episode
    // of its alert in this batch), enough for the account's: folded into the open page.
    let alice = vec!["alice".to_string(); 5];
    let later = start + Duration::seconds(120);
    assert!(
        detector
            .detect(&tried("203.0.113.8", &alice, later, 1000))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(pushes(&app).await.len(), 1, "one page for the attack");
    let (edit_of, edited, _, _) = alert_edits(&app).await.pop().expect("the page edited");
    assert_eq!(edit_of, page);
    assert!(
        edited.contains("12 accounts: alice, u00, u01, u02, u03, u04, u05, u06 +4 more"),
        "{edited}"
    );
    assert!(edited.contains("also: account-lockout"), "{edited}");
}
