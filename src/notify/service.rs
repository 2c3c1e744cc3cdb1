//! Start-up wiring of notifications for `factbot run`: the delivery worker,
//! the change-log pump, the digest schedule and the admin endpoint, all on
//! the caller's tokio runtime. Transports register their [`super::Deliver`]
//! with the hub whenever they are ready; deliveries for a platform
//! that is not (yet) running simply wait.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::digest::{self, Clock, Schedule};
use super::outbox::unix_ms;
use super::Hub;
use super::{admin, changes, worker::Worker};
use crate::catalog::Live;
use crate::config::Config;
use crate::facts::Platform;

/// How often the change log is looked at (imports by this process, or
/// edits, show up within this).
const CHANGES_EVERY: Duration = Duration::from_secs(1);

/// Finished notifications are kept this long (for `factbot
/// notifications`), then pruned at the next start.
const KEEP_SECS: u64 = 30 * 86_400;

/// The running notification tasks.
pub struct Service {
    stop: watch::Sender<bool>,
    /// Stops the admin endpoint's listener and its connections.
    admin_stop: tokio_util::sync::CancellationToken,
    worker: JoinHandle<()>,
    /// The admin endpoint's bound address, when configured.
    pub admin: Option<std::net::SocketAddr>,
}

impl Service {
    /// Starts everything over `hub` and the catalog notifications are
    /// rendered from (and the admin endpoint imports into); a bad
    /// `[notify]` config is an error here, at start.
    pub async fn start(hub: Hub, catalog: Arc<Live>, cfg: &Config) -> anyhow::Result<Service> {
        // Before anything can enqueue (the admin endpoint, the change pump).
        prune(&hub).await;
        let schedule = cfg
            .notify
            .digest
            .as_ref()
            .map(Schedule::from_config)
            .transpose()?;
        let clock = Clock::from_env()?;
        let admin_stop = tokio_util::sync::CancellationToken::new();
        let admin = match (&cfg.notify.admin_listen, &cfg.notify.admin_token) {
            (Some(listen), Some(token)) => Some(
                admin::serve(
                    listen,
                    token,
                    hub.clone(),
                    Arc::clone(&catalog),
                    admin_stop.clone(),
                )
                .await?,
            ),
            (Some(_), None) => anyhow::bail!(
                "[notify] admin_listen is set but no admin token: set [notify] admin_token or FACTBOT_ADMIN_TOKEN"
            ),
            _ => None,
        };
        let (stop, rx) = watch::channel(false);

        // Changes made while the bot was stopped go out first.
        spawn_change_pump(hub.clone(), catalog.store().clone(), rx.clone());

        if let Some(sched) = schedule {
            spawn_digest(hub.clone(), Arc::clone(&catalog), sched, clock, rx.clone());
        }

        // Deliveries to a platform this process does not run fail at once.
        let mut platforms = Vec::new();
        if cfg.telegram.is_some() {
            platforms.push(Platform::Telegram);
        }
        if cfg.matrix.is_some() {
            platforms.push(Platform::Matrix);
        }
        let worker = tokio::spawn(
            Worker::new(hub, catalog, cfg.notify.max_in_flight)
                .serving(&platforms)
                .run(rx),
        );
        Ok(Service {
            stop,
            admin_stop,
            worker,
            admin,
        })
    }

    /// Stops the tasks; waits (bounded) for sends in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.admin_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(6), self.worker).await;
    }
}

/// Drops finished notifications older than [`KEEP_SECS`] (off the
/// runtime's threads: a scan and a flush).
async fn prune(hub: &Hub) {
    let outbox = hub.outbox.clone();
    match tokio::task::spawn_blocking(move || outbox.prune(KEEP_SECS, unix_ms() / 1000)).await {
        Ok(Ok((0, 0))) => {}
        Ok(Ok((n, d))) => tracing::info!(
            notifications = n,
            deliveries = d,
            "notify: pruned finished notifications older than 30 days"
        ),
        Ok(Err(e)) => tracing::warn!(error = %e, "notify: cannot prune the outbox"),
        Err(e) => tracing::warn!(error = %e, "notify: prune task failed"),
    }
}

/// Every [`CHANGES_EVERY`], turns new entries of the store's change log
/// into notifications, until `stop`.
fn spawn_change_pump(hub: Hub, store: crate::facts::Store, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let (h2, s2) = (hub.clone(), store.clone());
            match tokio::task::spawn_blocking(move || changes::pump(&h2, &s2)).await {
                Ok(Err(err)) => {
                    tracing::error!(error = %err, "notify: cannot read the change log")
                }
                Err(err) => tracing::error!(error = %err, "notify: change-log task failed"),
                Ok(Ok(_)) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(CHANGES_EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    });
}

/// Enqueues the daily digest when its time comes, until `stop`.
fn spawn_digest(
    hub: Hub,
    catalog: Arc<Live>,
    sched: Schedule,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(time = %sched.time, time_zone = sched.tz.iana_name().unwrap_or("?"), "notify: daily digest scheduled");
    let sched = Arc::new(sched);
    tokio::spawn(async move {
        loop {
            let now = clock.now();
            // Off the runtime's threads: enqueueing writes and
            // flushes the outbox.
            let (h2, s2, c2) = (hub.clone(), Arc::clone(&sched), Arc::clone(&catalog));
            let ticked =
                tokio::task::spawn_blocking(move || digest::tick(&h2, &s2, &c2.get(), now)).await;
            let next = match ticked {
                Ok(Ok(at)) => at,
                Ok(Err(err)) => {
                    tracing::error!(error = %err, "notify: digest failed");
                    now
                }
                Err(err) => {
                    tracing::error!(error = %err, "notify: digest task failed");
                    now
                }
            };
            let wait = if next <= now {
                Duration::from_millis(200)
            } else {
                digest::sleep_for(clock.now(), next)
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    });
}
