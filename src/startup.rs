//! Wiring: connect the stores, build the engine and the transports, serve until shutdown.
//! `Application::build` binds the listener first, so tests can start it on port 0.

use crate::bot::{self, Telegram};
use crate::config::Settings;
use crate::engine::Engine;
use crate::engine::health::TelegramState;
use crate::http::{self, HttpState};
use crate::logins::{self, Evaluate, ingest::Ingestor};
use crate::outbox;
use crate::redis_link::RedisLink;
use crate::scheduler::Scheduler;
use crate::storage;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use teloxide::payloads::SetWebhookSetters;
use teloxide::requests::{Request, Requester};
use teloxide::types::AllowedUpdate;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connect to PostgreSQL (applying migrations) and Redis, and build the engine. Used by
/// `serve`, `console` and the shell subcommands alike.
pub async fn engine(settings: Settings, shutdown: &CancellationToken) -> anyhow::Result<Engine> {
    // Install the metrics recorder before anything is counted.
    http::telemetry_metrics::handle();
    let url = settings.database.url.expose().to_string();
    let pool = storage::pool(
        &url,
        settings.database.max_connections,
        Duration::from_millis(settings.database.acquire_timeout_ms),
    )
    .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    storage::migrate(&url, &pool)
        .await
        .context("cannot apply migrations: is PostgreSQL reachable at DATABASE_URL? (a runtime role cannot apply them: run `opsguard migrate` as the owner)")?;
    let audit_warnings = audit_start_checks(&pool, &settings).await?;
    let redis = RedisLink::connect_with_bulk(
        settings.redis.url.expose(),
        &settings.redis.key_prefix,
        Duration::from_millis(settings.redis.timeout_ms),
        Duration::from_millis(
            settings
                .redis
                .bulk_timeout_ms
                .max(settings.redis.timeout_ms),
        ),
        shutdown.clone(),
    )
    .await;
    if redis.is_degraded() {
        tracing::warn!(redis.error = ?redis.last_error(), "redis.unreachable_at_start: serving in degraded mode");
    }
    // A bad [[secrets]] entry or a master key that does not open the vault stops start-up.
    let secrets = crate::secrets::open(&pool, &settings).await?;
    // TOTP secrets an older version stored in plaintext are sealed now (with a key).
    crate::engine::totp::on_start(&pool, secrets.as_ref().map(|r| r.key()))
        .await
        .context("cannot seal the TOTP secrets stored in plaintext")?;
    let engine = Engine::new(pool, Arc::new(settings), redis, secrets);
    engine.health().set_audit_warnings(audit_warnings);
    engine.authz().spawn_listener(shutdown.clone());
    Ok(engine)
}

/// Refuse to start with a master key that cannot extend the audit chain (none, or another
/// one, once the chain is keyed); return what weakens the audit log here, each logged.
pub async fn audit_start_checks(
    pool: &sqlx::PgPool,
    settings: &Settings,
) -> anyhow::Result<Vec<String>> {
    let keys = crate::audit::AuditKeys::from_master(settings.master_key.as_ref())?;
    let head = storage::audit::head(pool).await?;
    if let Some(from) = head.keyed_from {
        let chain = head.key_id.clone().unwrap_or_default();
        match &keys {
            None => anyhow::bail!(
                "the audit chain is keyed (from row {from}, key {chain}): set OPSGUARD_MASTER_KEY to the key it was keyed with"
            ),
            Some(k) if k.chain().id() != chain => anyhow::bail!(
                "OPSGUARD_MASTER_KEY is not the key the audit chain is keyed with (chain key {chain}, this key {})",
                k.chain().id()
            ),
            Some(_) => {}
        }
    }
    let mut warnings = Vec::new();
    if let Some(w) = crate::audit::roles::single_role_warning(pool).await? {
        warnings.push(w);
    }
    if keys.is_none() {
        warnings.push(
            "OPSGUARD_MASTER_KEY is not set: the chain is not keyed and no checkpoints are signed"
                .into(),
        );
    }
    for warning in &warnings {
        tracing::warn!(audit.warning = %warning, "audit.weakened");
    }
    Ok(warnings)
}

pub struct Application {
    listener: TcpListener,
    engine: Engine,
    telegram: Option<Telegram>,
    scheduler: Scheduler,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let listen = settings.http.listen.clone();
        // An invalid schedule stops start-up, naming it (before any store is touched).
        settings.validate_schedules()?;
        // A guessable webhook secret or ingest key stops start-up, naming the variable.
        settings.validate_secrets()?;
        let engine = engine(settings, &shutdown).await?;
        let scheduler = Scheduler::new(engine.clone())?;
        let tracker = TaskTracker::new();
        let telegram = match engine.settings().token() {
            Some(token) => Some(Telegram::new(
                bot::clients::BotClients::new(
                    token.expose(),
                    &engine.settings().telegram.api_url,
                    Duration::from_secs(engine.settings().telegram.request_timeout_secs),
                    Duration::from_secs(engine.settings().telegram.poll_timeout_secs.into()),
                )?,
                engine.clone(),
                tracker.clone(),
            )),
            None => None,
        };
        let listener = TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        Ok(Application {
            listener,
            engine,
            telegram,
            scheduler,
            shutdown,
            tracker,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }

    /// Cancel it to stop: no new updates, commands in flight finish, then `run` returns.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub async fn run(self) -> anyhow::Result<()> {
        let Application {
            listener,
            engine,
            telegram,
            scheduler,
            shutdown,
            tracker,
        } = self;
        let settings = engine.settings().clone();
        let webhook_secret = settings.webhook_secret().cloned();
        let webhook = match (&telegram, webhook_secret) {
            (Some(tg), Some(secret)) => Some((tg.clone(), secret)),
            _ => None,
        };
        let mut poller = None;
        if let Some(tg) = &telegram {
            let mode = if webhook.is_some() {
                "webhook"
            } else {
                "polling"
            };
            tg.probe(mode).await;
            bot::menu::spawn(tg.clone(), shutdown.clone());
            // Stored updates whose replica died: taken up once their lease ran out.
            bot::retake::spawn(tg.clone(), shutdown.clone());
            // Queued pushes; stops on shutdown once the batch in progress is committed.
            outbox::worker::spawn(
                engine.pool().clone(),
                tg.bot.clone(),
                settings.outbox.clone(),
                engine.health().deliveries().clone(),
                shutdown.clone(),
                &tracker,
            );
            match (&webhook, &settings.telegram.public_url) {
                (Some((tg, secret)), Some(public)) => {
                    register_webhook(tg, public, secret.expose()).await?
                }
                (Some(_), None) => tracing::info!(
                    "telegram.webhook_mode: OPSGUARD_PUBLIC_URL unset, webhook not registered"
                ),
                (None, _) => {
                    poller = Some(bot::polling::spawn(
                        tg.clone(),
                        settings.telegram.poll_timeout_secs,
                        shutdown.clone(),
                    ));
                }
            }
        } else {
            engine.health().set_telegram(TelegramState::NotConfigured);
        }
        crate::engine::housekeeping::spawn(engine.clone(), shutdown.clone());
        // Aggregate audit rows of dropped updates; written to the end, so tracked.
        let reports = engine.spawn_flood_reports(shutdown.clone());
        tracker.spawn(async move {
            let _ = reports.await;
        });
        let ingestor = Arc::new(Ingestor::new(
            engine.pool().clone(),
            settings.logins.ingest.clone(),
            login_evaluator(&engine, &shutdown, &tracker),
        ));
        if settings.logins.stream.enabled {
            logins::stream::spawn(
                ingestor.clone(),
                settings.redis.url.expose(),
                settings.logins.stream.clone(),
                shutdown.clone(),
                &tracker,
            );
        }
        logins::escalation::spawn(
            engine.pool().clone(),
            settings.logins.clone(),
            shutdown.clone(),
            &tracker,
        );
        if settings.scheduler.enabled {
            scheduler.spawn(shutdown.clone(), &tracker);
        }
        if let Some(rotations) = engine.secrets() {
            let every = Duration::from_millis(settings.rotation.worker_interval_ms);
            crate::secrets::worker::spawn(rotations, every, shutdown.clone(), &tracker);
        }
        if !settings.backups.targets.is_empty() {
            let backups = crate::backups::Backups::new(engine.pool().clone(), &settings);
            crate::backups::worker::spawn(backups, shutdown.clone(), &tracker);
        }

        let state = HttpState {
            engine: engine.clone(),
            webhook,
            throttle: Arc::new(http::throttle::Throttle::new(
                settings.http.webhook_failures_per_minute,
                http::throttle::DEFAULT_CAPACITY,
                settings.http.trusted_proxies.clone(),
            )),
            max_body_bytes: settings.http.max_body_bytes,
            ingest: ingestor,
            gauges: Arc::new(http::state_metrics::StateMetrics::new(engine.clone())),
        };
        let app = http::router(state);
        tracing::info!(http.listen = %listener.local_addr()?, "opsguard.serving");
        // The peer's address reaches the webhook route (its wrong-secret limit).
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await?;

        // No new updates now (the poller may be dispatching its last batch: let it finish
        // handing it over), then let the commands in flight finish.
        if let Some(poller) = poller {
            let _ = poller.await;
        }
        tracker.close();
        let grace = Duration::from_secs(settings.shutdown.grace_secs);
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(in_flight = tracker.len(), "shutdown.grace_expired");
        }
        tracing::info!("opsguard.drained");
        Ok(())
    }
}

async fn register_webhook(tg: &Telegram, public: &str, secret: &str) -> anyhow::Result<()> {
    let url = format!("{}/telegram/webhook", public.trim_end_matches('/'));
    let url = reqwest::Url::parse(&url).context("OPSGUARD_PUBLIC_URL is not a URL")?;
    tg.bot
        .set_webhook(url)
        .secret_token(secret.to_string())
        .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
        .send()
        .await
        .context("setWebhook failed")?;
    tracing::info!("telegram.webhook_registered");
    Ok(())
}

/// What newly stored auth events are handed to: the detector, sharing its windows
/// through the engine's Redis link, its counts on open alerts written behind until
/// `shutdown`.
fn login_evaluator(
    engine: &Engine,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Arc<dyn Evaluate> {
    let logins = &engine.settings().logins;
    let every = Duration::from_millis(logins.counts_every_ms);
    let detector = Arc::new(
        logins::detect::Detector::new(
            engine.pool().clone(),
            logins.clone(),
            engine.redis().clone(),
        )
        .with_counts_behind(every),
    );
    detector.spawn_flusher(shutdown.clone(), tracker);
    detector
}

/// Until SIGTERM or Ctrl-C: what `serve` waits for before it shuts down.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
