//! The one HTTP/1 server loop for every listener the bot opens (the
//! Telegram webhook, `/metrics` and `/healthz`, the loopback admin
//! endpoint).
//!
//! `axum::serve` has neither a header-read timeout nor a connection cap, so
//! a client that opens connections and never finishes its headers (or opens
//! thousands) would hold memory and tasks for as long as it likes. Here a
//! client must send its request headers within [`Limits::header_timeout`]
//! (an idle keep-alive connection waiting for its next request too), and
//! beyond [`Limits::max_connections`] at once new connections are closed as
//! they are accepted. On stop, each connection finishes the request in
//! progress and closes.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;

/// What one listener allows.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// Time a client has to send its request headers.
    pub header_timeout: Duration,
    /// The listener's name in log lines (`telegram webhook`, `ops`, `admin`).
    pub name: &'static str,
}

/// Serves `app` on `tcp` within `limits` until `stop` is cancelled.
pub async fn serve(
    tcp: tokio::net::TcpListener,
    app: axum::Router,
    limits: Limits,
    stop: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut over_cap: u64 = 0;
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            r = tcp.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait, not spin.
                    tracing::warn!(server = limits.name, error = %e, "http: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            if over_cap.is_multiple_of(100) {
                tracing::warn!(
                    server = limits.name,
                    max = limits.max_connections,
                    closed_so_far = over_cap + 1,
                    "http: too many connections; closing new ones"
                );
            }
            over_cap += 1;
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(server = limits.name, error = %e, "http: connection closed");
                    }
                }
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
