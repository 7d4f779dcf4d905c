//! Which users wait for their command menu (`menu_pending`: Telegram refused it before they
//! first wrote), as a snapshot read at most once per `FRESH`, so a private message looks
//! the table up only for a user in it, not with a statement of its own every time. Rows
//! another replica writes are seen within `FRESH`; this replica's own at once.

use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How old the snapshot may be.
const FRESH: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct PendingMenus {
    snapshot: Mutex<Option<(Instant, HashSet<i64>)>>,
    /// The users this replica stored and has not seen taken: kept in every new snapshot,
    /// so a read that began before their row was written does not drop them.
    own: Mutex<HashSet<i64>>,
}

impl PendingMenus {
    /// Whether `user` may have a pending menu: in a fresh snapshot, or when none could be
    /// read (the caller's own lookup then says, and reports the error).
    pub async fn may_hold(&self, pool: &PgPool, user: i64) -> bool {
        if let Some((at, users)) = &*self.snapshot.lock().expect("menu snapshot")
            && at.elapsed() < FRESH
        {
            return users.contains(&user);
        }
        let read = Instant::now();
        match sqlx::query_scalar::<_, i64>("SELECT user_id FROM menu_pending")
            .fetch_all(pool)
            .await
        {
            Ok(users) => {
                let mut users: HashSet<i64> = users.into_iter().collect();
                users.extend(self.own.lock().expect("menu own").iter().copied());
                let holds = users.contains(&user);
                *self.snapshot.lock().expect("menu snapshot") = Some((read, users));
                holds
            }
            Err(_) => true,
        }
    }

    /// This replica stored a pending menu for `user`.
    pub fn added(&self, user: i64) {
        self.own.lock().expect("menu own").insert(user);
        if let Some((_, users)) = &mut *self.snapshot.lock().expect("menu snapshot") {
            users.insert(user);
        }
    }

    /// `user`'s menu was set (or their row taken).
    pub fn removed(&self, user: i64) {
        self.own.lock().expect("menu own").remove(&user);
        if let Some((_, users)) = &mut *self.snapshot.lock().expect("menu snapshot") {
            users.remove(&user);
        }
    }
}
