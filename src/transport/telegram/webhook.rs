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

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures::stream::{self, BoxStream, StreamExt};
use teloxide::stop::{mk_stop_token, StopFlag, StopToken};
use teloxide::types::{AllowedUpdate, Update};
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use tokio::sync::mpsc;

use super::listener::Inbox;

struct HookState {
    secret: Option<String>,
    updates: mpsc::UnboundedSender<Update>,
    inbox: Inbox,
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

/// Binds `listen`, serves `path`, and returns the listener; the server
/// stops with the listener's stop token. Updates are stored in `inbox`
/// before Telegram is answered.
pub async fn serve(
    listen: SocketAddr,
    path: &str,
    secret: Option<String>,
    inbox: Inbox,
) -> std::io::Result<WebhookListener> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (token, flag) = mk_stop_token();
    let state = Arc::new(HookState {
        secret,
        updates: tx,
        inbox,
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
