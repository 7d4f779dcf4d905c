//! A dead database (issue 20): once PostgreSQL is known to be down, a command is refused
//! and `/readyz` answers within 1 s (not after the pool's 3 s acquire timeout, twice), and
//! the bot recovers by itself as soon as a probe reaches the database again.
//!
//! The app reaches PostgreSQL through a TCP relay the test stops and starts on the same
//! port: stopped, connections are refused and open ones cut, as when the server stops.

use crate::helpers::*;
use opsguard::domain::UserId;
use opsguard::domain::secret::Secret;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const DB_DOWN: &str = "cannot reach its database, so nothing was run";

/// A relay from a loopback port to the test PostgreSQL server.
struct Relay {
    port: u16,
    accept: Option<JoinHandle<()>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut relay = Relay {
            port,
            accept: None,
            links: Arc::default(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: TcpListener) {
        let links = self.links.clone();
        let upstream = pg_host_port();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links.lock().unwrap().push(link);
            }
        }));
    }

    /// The server stops: no new connection is accepted, open ones are cut.
    fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// The server is back on the same port.
    async fn restart(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }

    /// The app's database URL through the relay.
    fn url(&self, db: &str) -> String {
        let mut url = reqwest::Url::parse(&pg_url(None, None, db)).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }
}

#[tokio::test]
async fn once_postgresql_is_known_down_refusals_and_readyz_answer_within_a_second() {
    let mut relay = Relay::start().await;
    let db = TestDb::create().await;
    let url = relay.url(&db.name);
    let app = spawn_app_on(db, |s| {
        s.database.url = Secret::new(url);
        s.database.acquire_timeout_ms = 3000;
    })
    .await;
    app.add_user(42, "admin").await;
    assert!(app.say(42, "/whoami").await.text().contains("Telegram id"));
    // Not cached: the lookup needs the database (and finds it down).
    app.engine.authz().evict(UserId(42));
    relay.stop();
    // The first refusal finds out (it waits for the pool); the rest know.
    let first = app.say(42, "/whoami").await;
    let started = Instant::now();
    let known = app.say(42, "/whoami").await;
    let refused_in = started.elapsed();
    let started = Instant::now();
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    let readyz_in = started.elapsed();
    let stranger = app.say(999, "/whoami").await;

    assert!(first.text().contains(DB_DOWN), "{}", first.text());
    assert!(known.text().contains(DB_DOWN), "{}", known.text());
    assert!(
        refused_in < Duration::from_secs(1),
        "refused in {refused_in:?}"
    );
    assert_eq!(ready.status().as_u16(), 503);
    assert_eq!(ready.text().await.unwrap(), "postgresql unreachable\n");
    assert!(
        readyz_in < Duration::from_secs(1),
        "/readyz in {readyz_in:?}"
    );
    assert_eq!(stranger.text(), opsguard::engine::NEUTRAL_LINE);

    // Back by itself: the probe reaches the database and commands run again.
    relay.restart().await;
    wait_for("/readyz to say ready again", || async {
        let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
        ready.status().as_u16() == 200
    })
    .await;
    let again = app.say(42, "/whoami").await;
    assert!(again.text().contains("Telegram id"), "{}", again.text());
    relay.stop();
}
