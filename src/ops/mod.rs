//! Operations: `/metrics` (Prometheus text format) and `/healthz` on the
//! address `[metrics] listen`, and the recording points that feed them.
//!
//! What it prevents: a bot that stops answering (Telegram unreachable, a
//! homeserver gone, flood control, an outbox that no longer drains) with
//! nothing but log lines to tell — the figures show it on a dashboard and
//! an alert, the health check to an orchestrator (Docker's HEALTHCHECK,
//! systemd, Kubernetes) and to `factbot status`.
//!
//! - [`record`]: the one-line calls the transports and the notify worker
//!   make; label values only from small fixed sets, never a chat id, a
//!   user's words or a secret (cardinality and privacy). The core
//!   (`facts`, `query`, `catalog`, `reply`, `answer`, `chart`) records
//!   nothing: what it does is seen at the transport layer.
//! - [`health`]: the verdict, a pure function.
//! - this module: the recorder (the `metrics` facade with the Prometheus
//!   exporter's recorder, rendered on request; no listener of the
//!   exporter's own) and the HTTP endpoint.
//!
//! The endpoint may listen on a non-loopback address (Prometheus usually
//! scrapes from another host): it serves only read-only figures and the
//! health verdict, takes no action, and gets the webhook's hardening —
//! GET (and HEAD) only, no request body (413 on one, before anything else),
//! a client must send its headers within [`HEADER_TIMEOUT`] (an idle
//! keep-alive connection too), and beyond [`MAX_CONNECTIONS`] at once new
//! connections are closed as they are accepted (the same [`crate::http::serve`]
//! loop as the webhook).

pub mod health;
pub mod record;

pub use record::{Path, Transport};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::facts::{Platform, Store};

/// A client must send its request headers within this (an idle
/// keep-alive connection waiting for its next request too). A scraper
/// sends at once.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed as they are accepted. A
/// Prometheus or two, a health checker and an operator's curl need a few.
pub const MAX_CONNECTIONS: usize = 16;

const LIMITS: crate::http::Limits = crate::http::Limits {
    max_connections: MAX_CONNECTIONS,
    header_timeout: HEADER_TIMEOUT,
    name: "ops",
};
/// The store must answer the health check's read within this.
pub const STORE_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How often histogram samples are folded in between scrapes, so a rarely
/// scraped process does not hold every sample since the last scrape.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once); its handle renders.
fn recorder() -> anyhow::Result<&'static PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h);
    }
    let h = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(record::REPLY_SECONDS.to_string()),
            record::REPLY_BUCKETS,
        )?
        .install_recorder()
        .context("ops: cannot install the metrics recorder")?;
    describe();
    Ok(HANDLE.get_or_init(|| h))
}

/// The `# HELP` lines.
fn describe() {
    use record::*;
    describe_counter!(
        QUESTIONS,
        "Questions whose reply was sent, by transport, language and outcome (answered, declined, info, error)"
    );
    describe_histogram!(
        REPLY_SECONDS,
        Unit::Seconds,
        "From taking a question up to its reply being sent"
    );
    describe_gauge!(
        INBOX_DEPTH,
        "Updates or messages received and stored, not yet answered"
    );
    describe_gauge!(
        OUTBOX_PENDING,
        "Notification deliveries queued, not yet delivered or failed"
    );
    describe_counter!(
        DELIVERIES,
        "Notification deliveries that reached a final state (delivered, failed)"
    );
    describe_counter!(
        RATE_LIMITED,
        "Flood-control answers (HTTP 429 retry_after) from the chat API"
    );
    describe_counter!(
        RETRIES,
        "Requests tried again after a transient failure or flood control"
    );
    describe_gauge!(
        LAST_POLL,
        Unit::Seconds,
        "Unix time of the last successful long poll (Telegram) or sync (Matrix)"
    );
    describe_gauge!(
        "factbot_build_info",
        "Always 1; the version label says which factbot runs"
    );
}

/// The transports `cfg` runs, in a fixed order.
pub fn configured(cfg: &Config) -> Vec<Transport> {
    let mut t = Vec::new();
    if cfg.telegram.is_some() {
        t.push(Transport::Telegram);
    }
    if cfg.matrix.is_some() {
        t.push(Transport::Matrix);
    }
    t
}

/// Every series of the configured transports at zero, so a dashboard's
/// `rate()` and an alert's `absent()` see them from the first scrape, not
/// from the first event.
fn preregister(transports: &[Transport]) {
    use crate::facts::Lang;
    use crate::reply::ReplyKind;
    use record::*;
    gauge!("factbot_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for t in transports {
        for lang in [Lang::En, Lang::Ru] {
            for kind in [
                ReplyKind::Answer,
                ReplyKind::NoAnswer,
                ReplyKind::Info,
                ReplyKind::Error,
            ] {
                counter!(QUESTIONS, "transport" => t.name(), "lang" => lang.code(), "outcome" => outcome(kind)).absolute(0);
            }
        }
        for path in [Path::Reply, Path::Notify, Path::Poll] {
            let p = path.name();
            counter!(RATE_LIMITED, "transport" => t.name(), "path" => p).absolute(0);
            counter!(RETRIES, "transport" => t.name(), "path" => p).absolute(0);
        }
        gauge!(INBOX_DEPTH, "transport" => t.name()).increment(0.0);
        let p = match t {
            Transport::Telegram => Platform::Telegram,
            Transport::Matrix => Platform::Matrix,
        };
        gauge!(OUTBOX_PENDING, "platform" => platform(p)).increment(0.0);
        for delivered in [true, false] {
            let o = if delivered { "delivered" } else { "failed" };
            counter!(DELIVERIES, "platform" => platform(p), "outcome" => o).absolute(0);
        }
    }
}

#[derive(Clone)]
struct Ops {
    handle: &'static PrometheusHandle,
    store: Store,
    transports: Arc<[Transport]>,
}

impl Ops {
    async fn health(&self) -> health::Report {
        let store = store_reads(self.store.clone()).await;
        let seen: Vec<health::Seen> = self
            .transports
            .iter()
            .map(|&t| {
                let (last_ok_ms, last_failure) = record::seen(t);
                health::Seen {
                    transport: t,
                    last_ok_ms,
                    last_failure,
                }
            })
            .collect();
        health::judge(record::unix_ms(), store, &seen, health::WINDOW)
    }
}

/// Whether the store answers a read (on a blocking thread, bounded).
async fn store_reads(store: Store) -> Result<(), String> {
    let read = tokio::task::spawn_blocking(move || store.dataset_digest().map(|_| ()));
    match tokio::time::timeout(STORE_READ_TIMEOUT, read).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => {
            // The details (paths) stay in the log, off a network endpoint.
            tracing::error!(error = %e, "ops: health check: the store cannot be read");
            Err("a read failed (see the bot's log)".into())
        }
        Ok(Err(_)) => Err("the read crashed (see the bot's log)".into()),
        Err(_) => Err(format!(
            "no answer within {} s",
            STORE_READ_TIMEOUT.as_secs()
        )),
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

async fn scrape(State(ops): State<Ops>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ops.handle.render(),
    )
        .into_response()
}

async fn healthz(State(ops): State<Ops>) -> Response {
    let report = ops.health().await;
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [
            (header::CONTENT_TYPE, TEXT),
            (header::CACHE_CONTROL, "no-store"),
        ],
        report.text(),
    )
        .into_response()
}

/// Refuses any request that carries a body (declared length above zero, or
/// chunked): these endpoints read none, so a body is never buffered.
async fn no_body(req: Request, next: Next) -> Response {
    let h = req.headers();
    let body = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if body {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            "this endpoint takes no request body\n",
        )
            .into_response();
    }
    next.run(req).await
}

/// The endpoint's routes (also what the unit tests call).
fn router(ops: Ops) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: try /metrics or /healthz\n",
            )
        })
        .layer(axum::middleware::from_fn(no_body))
        .with_state(ops)
}

/// Starts `/metrics` and `/healthz` when the config has `[metrics]`:
/// installs the recorder, binds `listen`, serves until `stop` resolves.
/// Returns the bound address (`None`: no `[metrics]`, nothing started).
/// Call it before the transports start, so their first figures count.
pub async fn start(
    cfg: &Config,
    store: Store,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(m) = &cfg.metrics else {
        return Ok(None);
    };
    let addr: SocketAddr = m
        .listen
        .parse()
        .with_context(|| format!("[metrics] listen {:?} is not an address:port", m.listen))?;
    let handle = recorder()?;
    let transports = configured(cfg);
    preregister(&transports);
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("ops: cannot listen on {addr} ([metrics] listen)"))?;
    let local = tcp.local_addr()?;
    let app = router(Ops {
        handle,
        store,
        transports: transports.into(),
    });
    let token = CancellationToken::new();
    let on_stop = token.clone();
    tokio::spawn(async move {
        stop.await;
        on_stop.cancel();
    });
    tokio::spawn(crate::http::serve(tcp, app, LIMITS, token.clone()));
    tokio::spawn(upkeep(handle, token));
    if !addr.ip().is_loopback() {
        tracing::warn!(
            listen = %local,
            "ops: /metrics and /healthz are reachable from the network; they show no secrets, but let only your Prometheus reach them (firewall)"
        );
    }
    tracing::info!(listen = %local, "ops: /metrics and /healthz listening");
    Ok(Some(local))
}

async fn upkeep(handle: &'static PrometheusHandle, stop: CancellationToken) {
    let mut tick = tokio::time::interval(UPKEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves a fresh endpoint (its own recorder, not the global one) on a
    /// loopback port; the address and the stop token.
    async fn serve() -> (SocketAddr, CancellationToken) {
        let handle: &'static PrometheusHandle =
            Box::leak(Box::new(PrometheusBuilder::new().build_recorder().handle()));
        let ops = Ops {
            handle,
            store: Store::temporary().unwrap(),
            transports: Arc::from(Vec::new()),
        };
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(crate::http::serve(tcp, router(ops), LIMITS, stop.clone()));
        (addr, stop)
    }

    /// Sends raw `request`, returns the whole answer (the connection is
    /// closed by `Connection: close` or by the server).
    async fn raw(addr: SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("the server answers and closes within 10 s")
            .unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn serves_get_only_without_a_body_and_nothing_else() {
        let (addr, stop) = serve().await;
        let get =
            |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let health = raw(addr, &get("/healthz")).await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.ends_with("ok\nstore: ok\n"), "{health}");
        let metrics = raw(addr, &get("/metrics")).await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
        assert!(raw(addr, &get("/admin")).await.starts_with("HTTP/1.1 404"));
        // No other method, and no body even on GET.
        let post = raw(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        let body = raw(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await;
        assert!(body.starts_with("HTTP/1.1 413"), "{body}");
        let chunked = raw(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").await;
        assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
        stop.cancel();
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_at_once() {
        let (addr, stop) = serve().await;
        // Slow clients holding every slot (headers never finished).
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
            held.push(s);
        }
        // Let the server accept them all before the next one.
        let mut probe = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = probe
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut out = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(10), probe.read_to_end(&mut out))
            .await
            .expect("closed at once, not served after a timeout");
        assert!(
            n.is_err() || out.is_empty(),
            "the connection over the cap was served: {}",
            String::from_utf8_lossy(&out)
        );
        // A slot freed is a slot served.
        drop(held.pop());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = raw(
                addr,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await;
            if r.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no slot came free");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_finishes_its_headers_is_disconnected() {
        let (addr, stop) = serve().await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        // The paused clock runs ahead to the header timeout.
        let r = tokio::time::timeout(HEADER_TIMEOUT * 2, s.read_to_end(&mut out)).await;
        assert!(r.is_ok(), "still connected after twice the header timeout");
        assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
        stop.cancel();
    }
}
