//! Webhook mode: Telegram POSTs each update; the answer waits until the
//! update has been handled.
//!
//! teloxide's axum listener answers 200 as soon as an update arrives, so a
//! crash loses the updates still queued: Telegram considers them delivered.
//! Here the HTTP answer is held until the dispatcher has handled the update
//! (or [`HOLD`] passes), so after a crash or `kill -9` Telegram delivers the
//! unanswered ones again — the webhook equivalent of the polling inbox.
//! Only a kill between sending a reply and answering Telegram repeats it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures::stream::{self, BoxStream, StreamExt};
use teloxide::stop::{mk_stop_token, StopFlag, StopToken};
use teloxide::types::{AllowedUpdate, Update};
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use tokio::sync::{mpsc, oneshot};

/// Longest time an update's HTTP answer waits for the update to be handled
/// (Telegram gives up on a webhook call after about a minute).
pub const HOLD: Duration = Duration::from_secs(50);

/// Updates delivered and not yet handled: whoever handles one tells the
/// HTTP request that brought it.
#[derive(Clone, Default)]
pub struct Waiters(Arc<Mutex<HashMap<i32, oneshot::Sender<()>>>>);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, oneshot::Sender<()>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The update was handled: its HTTP request may answer 200.
    pub fn done(&self, id: i32) {
        if let Some(tx) = self.lock().remove(&id) {
            let _ = tx.send(());
        }
    }
}

struct HookState {
    secret: Option<String>,
    updates: mpsc::UnboundedSender<Update>,
    waiters: Waiters,
}

async fn on_update(
    State(st): State<Arc<HookState>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let given = headers
        .get("x-telegram-bot-api-secret-token")
        .map(|v| v.as_bytes());
    if given != st.secret.as_deref().map(str::as_bytes) {
        return StatusCode::UNAUTHORIZED;
    }
    let update: Update = match serde_json::from_str(&body) {
        Ok(u) => u,
        Err(e) => {
            // Telegram would re-send it forever; it can never be handled.
            tracing::error!(error = %e, "telegram: webhook: unreadable update dropped");
            return StatusCode::OK;
        }
    };
    let id = update.id.0 as i32;
    let (tx, rx) = oneshot::channel();
    st.waiters.lock().insert(id, tx);
    if st.updates.send(update).is_err() {
        st.waiters.lock().remove(&id);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match tokio::time::timeout(HOLD, rx).await {
        Ok(Ok(())) => StatusCode::OK,
        // Shutting down before it was handled: let Telegram send it again.
        Ok(Err(_)) => StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => {
            tracing::warn!(
                update_id = id,
                "telegram: webhook: update still in progress after {HOLD:?}"
            );
            StatusCode::OK
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

/// Binds `listen`, serves `path`, and returns the listener; the server
/// stops with the listener's stop token.
pub async fn serve(
    listen: SocketAddr,
    path: &str,
    secret: Option<String>,
    waiters: Waiters,
) -> std::io::Result<WebhookListener> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (token, flag) = mk_stop_token();
    let state = Arc::new(HookState {
        secret,
        updates: tx,
        waiters,
    });
    let app = axum::Router::new()
        .route(path, post(on_update))
        .with_state(state);
    let tcp = tokio::net::TcpListener::bind(listen).await?;
    let shutdown = flag.clone();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(tcp, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "telegram: webhook server failed");
        }
    });
    Ok(WebhookListener {
        rx: Some(rx),
        stop: (token, flag),
    })
}
