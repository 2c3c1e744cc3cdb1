//! The running bot's supervisor: the notification service and every
//! configured transport in one process over one store, and the one place
//! that decides when the process stops — on SIGTERM or Ctrl-C, or when a
//! transport ends — so every part shuts down in order (the transports
//! first, then the notification worker with its sends in flight).

use std::sync::Arc;

use super::App;
use crate::config::Config;
use crate::notify::Service;

/// Serves every configured transport, and the notifications they deliver,
/// from one process and one store until SIGTERM or Ctrl-C. If one transport
/// fails (at start: a wrong token, a refused login), the others are stopped
/// and the error is returned.
/// A build without transports never gets here (`factbot run` refuses its
/// config first), hence the allowance for what only transports use.
#[cfg_attr(
    not(any(feature = "telegram", feature = "matrix")),
    allow(unused_variables)
)]
pub async fn serve(cfg: &Config, app: Arc<App>) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // First, so the figures of everything that follows count.
    crate::ops::start(cfg, app.store().clone(), stopped(stop_rx.clone())).await?;
    let notify = Service::start(app.hub().clone(), Arc::clone(app.live()), cfg).await?;
    let mut transports: tokio::task::JoinSet<anyhow::Result<()>> = tokio::task::JoinSet::new();
    #[cfg(feature = "telegram")]
    if let Some(tg) = cfg.telegram.clone() {
        let app = Arc::clone(&app);
        let stop = stopped(stop_rx.clone());
        transports.spawn(async move {
            crate::transport::telegram::run(&tg, app, stop)
                .await
                .map_err(|e| e.context("telegram"))
        });
    }
    #[cfg(feature = "matrix")]
    if let Some(mx) = cfg.matrix.clone() {
        let app = Arc::clone(&app);
        let stop = stopped(stop_rx.clone());
        transports.spawn(async move {
            crate::transport::matrix::run(&mx, app, stop)
                .await
                .map_err(|e| e.context("matrix"))
        });
    }
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut result = Ok(());
    loop {
        tokio::select! {
            _ = &mut signal, if !*stop_tx.borrow() => {
                let _ = stop_tx.send(true);
            }
            done = transports.join_next() => match done {
                None => break,
                Some(Ok(Ok(()))) => {
                    let _ = stop_tx.send(true);
                }
                Some(Ok(Err(e))) => {
                    let _ = stop_tx.send(true);
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
                Some(Err(join)) => {
                    let _ = stop_tx.send(true);
                    if result.is_ok() {
                        result = Err(anyhow::anyhow!("a transport crashed: {join}"));
                    }
                }
            },
        }
    }
    notify.stop().await;
    result
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
