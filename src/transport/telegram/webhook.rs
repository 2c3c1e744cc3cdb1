//! Webhook mode: Telegram POSTs each update; it is answered once the update
//! is stored.
//!
//! teloxide's axum listener answers 200 as soon as an update arrives, so a
//! crash loses the updates still queued: Telegram considers them delivered.
//! Here an update is written to the inbox (durably, as polling does) before
//! the HTTP answer, so after a crash or `kill -9` the restart answers it from
//! the inbox. Holding the answer until the update was handled would do the
//! same, but Telegram sends the updates of one chat one at a time, each
//! after the previous was answered: a chat flooded with questions would
//! then hold one of Telegram's connections per question, and the bot would
//! only ever see one of them at a time (so could not answer just the latest,
//! see [`super::dispatch`]). Only a kill between storing an update and
//! answering Telegram (microseconds) makes Telegram send it again; if it was
//! answered meanwhile, that reply repeats.
//!
//! The listener faces the internet (through a reverse proxy), so every
//! request is hostile until checked:
//! - the `X-Telegram-Bot-Api-Secret-Token` header must match the configured
//!   secret (compared by digest, in constant time) before anything else is
//!   looked at — the secret is required in webhook mode, so a forged update
//!   (a private `/announce` "from" an admin, a group message "from" the
//!   group itself) is refused with 401;
//! - the body is read only then, at most [`MAX_BODY`] bytes (413 beyond)
//!   and within [`BODY_TIMEOUT`] (408);
//! - the server is [`crate::http::serve`] rather than `axum::serve`, which
//!   has neither a header-read timeout nor a connection cap: a client
//!   that does not finish its headers within [`HEADER_TIMEOUT`] (an idle
//!   keep-alive connection included) is disconnected, and beyond
//!   [`MAX_CONNECTIONS`] at once new connections are closed at accept, so
//!   slow or numerous clients cannot exhaust memory or tasks. Telegram is
//!   asked for at most [`TELEGRAM_CONNECTIONS`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures::stream::{self, BoxStream, StreamExt};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use teloxide::stop::{mk_stop_token, StopFlag, StopToken};
use teloxide::types::{AllowedUpdate, Update};
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use tokio::sync::mpsc;

use super::listener::Inbox;

/// Largest update accepted. Telegram's updates are a few KiB (a message
/// holds at most 4,096 characters, a caption 1,024; media come as file
/// ids), so 256 KiB leaves a wide margin and still bounds what one request
/// can make the bot hold.
pub const MAX_BODY: usize = 256 * 1024;
/// A client must send its request headers within this (an idle keep-alive
/// connection waiting for its next request too); Telegram sends at once.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A client must send the body within this once its headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed as they are accepted.
/// Telegram opens at most [`TELEGRAM_CONNECTIONS`], so the rest is room for
/// the proxy's health checks and reconnects.
pub const MAX_CONNECTIONS: usize = 64;
/// `max_connections` asked of Telegram in `setWebhook` (its default).
pub const TELEGRAM_CONNECTIONS: u8 = 40;

struct HookState {
    /// SHA-256 of the secret: compared in constant time, and equal-length
    /// digests reveal nothing of the secret's length.
    secret: [u8; 32],
    /// Requests refused so far (logged now and then, not each time: a
    /// flood of forged requests must not flood the log).
    refused: std::sync::atomic::AtomicU64,
    updates: mpsc::UnboundedSender<Update>,
    inbox: Inbox,
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

impl HookState {
    fn secret_ok(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers.get("x-telegram-bot-api-secret-token") else {
            return false;
        };
        digest(given.as_bytes()).ct_eq(&self.secret).into()
    }

    fn refuse(&self, status: StatusCode, why: &str) -> StatusCode {
        let n = self
            .refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(100) {
            tracing::warn!(
                status = status.as_u16(),
                why,
                refused_so_far = n + 1,
                "telegram: webhook: request refused"
            );
        }
        status
    }
}

/// The body, at most [`MAX_BODY`] bytes within [`BODY_TIMEOUT`].
async fn read_body(body: Body) -> Result<Vec<u8>, (StatusCode, &'static str)> {
    let read = async {
        let mut data = body.into_data_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|_| (StatusCode::BAD_REQUEST, "body cut off"))?;
            if buf.len() + chunk.len() > MAX_BODY {
                return Err((StatusCode::PAYLOAD_TOO_LARGE, "body too large"));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err((StatusCode::REQUEST_TIMEOUT, "body too slow")),
    }
}

async fn on_update(State(st): State<Arc<HookState>>, headers: HeaderMap, body: Body) -> StatusCode {
    if !st.secret_ok(&headers) {
        return st.refuse(StatusCode::UNAUTHORIZED, "missing or wrong secret token");
    }
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return st.refuse(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err((status, why)) => return st.refuse(status, why),
    };
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            // Telegram would re-send it forever; it can never be handled.
            tracing::error!(error = %e, "telegram: webhook: unreadable update dropped");
            return StatusCode::OK;
        }
    };
    // Stored before Telegram hears 200 (after which it forgets the update).
    match st.inbox.take_in_pushed_async(update).await {
        Ok(Some(update)) => {
            // The dispatcher may already be gone (shutting down): the update
            // is in the inbox and answered after the restart.
            let _ = st.updates.send(update);
            StatusCode::OK
        }
        // Sent again by Telegram while the inbox still holds it.
        Ok(None) => StatusCode::OK,
        Err(e) => {
            tracing::error!(error = %e, "telegram: webhook: cannot store an update");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// The listener: updates from the HTTP server, in arrival order.
pub struct WebhookListener {
    rx: Option<mpsc::UnboundedReceiver<Update>>,
    stop: (StopToken, StopFlag),
}

impl UpdateListener for WebhookListener {
    type Err = std::convert::Infallible;

    fn stop_token(&mut self) -> StopToken {
        self.stop.0.clone()
    }

    fn hint_allowed_updates(&mut self, _hint: &mut dyn Iterator<Item = AllowedUpdate>) {}
}

impl<'a> AsUpdateStream<'a> for WebhookListener {
    type StreamErr = std::convert::Infallible;
    type Stream = BoxStream<'a, Result<Update, std::convert::Infallible>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        let rx = self.rx.take();
        let flag = self.stop.1.clone();
        stream::unfold((rx, flag), |(rx, mut flag)| async move {
            let mut rx = rx?;
            tokio::select! {
                u = rx.recv() => u.map(|u| (Ok(u), (Some(rx), flag))),
                _ = &mut flag => None,
            }
        })
        .boxed()
    }
}

/// How often webhook mode asks Telegram `getWebhookInfo`: well within
/// [`crate::ops::health::WINDOW`], so one lost probe never flips the health
/// check, and two a minute cost nothing.
pub const PROBE_EVERY: Duration = Duration::from_secs(30);

/// Webhook mode has no long poll to show that the Telegram API is
/// reachable, and a quiet bot gets no calls: this probe stands in for the
/// poll in `/healthz` and `factbot_last_poll_timestamp_seconds`. Runs until
/// aborted.
pub async fn probe(bot: teloxide::Bot) {
    use crate::ops::record as ops;
    use teloxide::requests::Requester;
    loop {
        match bot.get_webhook_info().await {
            Ok(_) => ops::polled(ops::Transport::Telegram),
            Err(e) => ops::poll_failed(
                ops::Transport::Telegram,
                "getWebhookInfo",
                super::send::health_reason(&e),
            ),
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Binds `listen`, serves `path`, and returns the listener; the server
/// stops with the listener's stop token. `secret` is required: webhook mode
/// without one would take updates from anyone. Updates are stored in
/// `inbox` before Telegram is answered.
pub async fn serve(
    listen: SocketAddr,
    path: &str,
    secret: &str,
    inbox: Inbox,
) -> std::io::Result<WebhookListener> {
    let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_string());
    if !path.starts_with('/') {
        return Err(invalid("the webhook path must start with '/'"));
    }
    if secret.is_empty() {
        return Err(invalid("webhook mode needs a secret_token"));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (token, flag) = mk_stop_token();
    let state = Arc::new(HookState {
        secret: digest(secret.as_bytes()),
        refused: Default::default(),
        updates: tx,
        inbox,
    });
    let app = axum::Router::new()
        .route(path, post(on_update))
        .with_state(state);
    let tcp = tokio::net::TcpListener::bind(listen).await?;
    // The server stops with the listener's stop flag.
    let stop = tokio_util::sync::CancellationToken::new();
    let (on_stop, flag2) = (stop.clone(), flag.clone());
    tokio::spawn(async move {
        flag2.await;
        on_stop.cancel();
    });
    let limits = crate::http::Limits {
        max_connections: MAX_CONNECTIONS,
        header_timeout: HEADER_TIMEOUT,
        name: "telegram webhook",
    };
    tokio::spawn(crate::http::serve(tcp, app, limits, stop));
    Ok(WebhookListener {
        rx: Some(rx),
        stop: (token, flag),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_read_up_to_the_limit_and_no_further() {
        let ok = Body::from(vec![b'x'; MAX_BODY]);
        assert_eq!(read_body(ok).await.unwrap().len(), MAX_BODY);
        // Streamed without a length: cut off once past the limit.
        let chunks =
            stream::iter((0..5).map(|_| Ok::<_, std::io::Error>(vec![b'x'; MAX_BODY / 4])));
        let err = read_body(Body::from_stream(chunks)).await.unwrap_err();
        assert_eq!(err.0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_is_given_up() {
        let stalled = stream::pending::<Result<Vec<u8>, std::io::Error>>();
        let err = read_body(Body::from_stream(stalled)).await.unwrap_err();
        assert_eq!(err.0, StatusCode::REQUEST_TIMEOUT);
    }

    #[test]
    fn the_secret_must_match_exactly() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let st = HookState {
            secret: digest(b"right-secret-value"),
            refused: Default::default(),
            updates: tx,
            inbox: Inbox::open(&crate::facts::Store::temporary().unwrap()).unwrap(),
        };
        let with = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert("x-telegram-bot-api-secret-token", v.parse().unwrap());
            }
            st.secret_ok(&h)
        };
        assert!(with(Some("right-secret-value")));
        for wrong in [
            None,
            Some(""),
            Some("right-secret-valu"),
            Some("right-secret-value2"),
        ] {
            assert!(!with(wrong), "{wrong:?}");
        }
    }
}
