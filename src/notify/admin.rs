//! The admin endpoint: a small HTTP API on loopback, so the shell can reach
//! the running bot (which holds the store's lock).
//!
//! - `POST /announce` `{"topic": "trade"?, "text": "..."}` → `{"id", "chats"}`
//! - `GET /notifications` → progress of every notification
//! - `GET /notifications/{id}` → progress of one
//! - `POST /import` `{"dir": "..."?, "allow_removals": false}` → the import
//!   report: a live import (`factbot import` uses it when the running bot
//!   holds the store); the changes go out as notifications within a second.
//!   An empty or drastically smaller dataset is refused with 409 unless
//!   `allow_removals` (`factbot import --allow-removals`).
//!
//! Every request needs `Authorization: Bearer <token>` (`[notify]
//! admin_token` or `FACTBOT_ADMIN_TOKEN`); the token is compared by digest
//! in constant time and never logged. Only loopback addresses are accepted
//! for `admin_listen`: this is not an API for the network. Even so, it is
//! served by the same hardened loop as the webhook ([`crate::http::serve`]):
//! a local process that opens connections and never finishes its headers
//! is cut off after [`HEADER_TIMEOUT`], and beyond [`MAX_CONNECTIONS`] at
//! once new connections are closed, so no local user can pin the bot's
//! memory or tasks through it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::subscriptions::{parse_topics, Topics};
use super::{Hub, Progress};
use crate::config::{NotifyConfig, Secret};
use crate::facts::Topic;

/// Time a client has to send its request headers: `factbot announce` and
/// friends send theirs at once.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once: the operator's shell commands, one or two at
/// a time.
pub const MAX_CONNECTIONS: usize = 8;

#[derive(Clone)]
struct AppState {
    hub: Hub,
    /// Live imports (`POST /import`) go through it.
    catalog: std::sync::Arc<crate::catalog::Live>,
}

/// `POST /announce` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct AnnounceRequest {
    pub topic: Option<String>,
    pub text: String,
}

/// `POST /announce` answer: the notification id (`None`: nobody subscribed).
#[derive(Debug, Serialize, Deserialize)]
pub struct Announced {
    pub id: Option<u64>,
    pub chats: usize,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Whether `headers` carry the token whose SHA-256 is `token` (compared
/// by digest, in constant time: equal-length digests reveal nothing of the
/// token's length).
fn authorized(token: &[u8; 32], headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    digest(given).ct_eq(token).into()
}

/// Every route's gate, before any body is read or parsed: an unauthorized
/// caller learns nothing but 401.
async fn require_token(State(token): State<[u8; 32]>, req: Request, next: Next) -> Response {
    if !authorized(&token, req.headers()) {
        return deny().into_response();
    }
    next.run(req).await
}

type Answer<T> = Result<Json<T>, (StatusCode, String)>;

fn deny() -> (StatusCode, String) {
    (
        StatusCode::UNAUTHORIZED,
        "missing or wrong admin token".into(),
    )
}

fn internal(e: impl std::fmt::Display) -> (StatusCode, String) {
    tracing::error!(error = %e, "notify: admin endpoint failure");
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Parses an announcement topic: none or `all` = every subscriber.
pub fn parse_topic(t: Option<&str>) -> Result<Option<Topic>, String> {
    let Some(t) = t.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match parse_topics(t)? {
        Topics::All => Ok(None),
        Topics::Only(set) if set.len() == 1 => Ok(set.first().copied()),
        Topics::Only(_) => Err(t.to_string()),
    }
}

async fn announce(
    State(st): State<AppState>,
    Json(req): Json<AnnounceRequest>,
) -> Answer<Announced> {
    if req.text.trim().is_empty() {
        return Err((StatusCode::BAD_REQUEST, "the text is empty".into()));
    }
    if let Some(m) = super::announcement_too_long(&req.text) {
        return Err((StatusCode::BAD_REQUEST, m));
    }
    let topic = parse_topic(req.topic.as_deref())
        .map_err(|w| (StatusCode::BAD_REQUEST, format!("unknown topic {w:?}")))?;
    let hub = st.hub.clone();
    let text = req.text.clone();
    let n = tokio::task::spawn_blocking(move || hub.announce(topic, &text))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    tracing::info!(
        id = n.as_ref().map(|n| n.id),
        "notify: announcement from the admin endpoint"
    );
    Ok(Json(Announced {
        id: n.as_ref().map(|n| n.id),
        chats: n.map_or(0, |n| n.targets),
    }))
}

/// `POST /import` body: a dataset directory (default: the one the store
/// last imported, else the built-in dataset).
#[derive(Debug, Serialize, Deserialize)]
pub struct ImportRequest {
    pub dir: Option<String>,
    /// Lift the guard against empty and drastically smaller datasets.
    #[serde(default)]
    pub allow_removals: bool,
}

async fn import(
    State(st): State<AppState>,
    Json(req): Json<ImportRequest>,
) -> Answer<crate::facts::ImportReport> {
    let catalog = st.catalog.clone();
    let r = tokio::task::spawn_blocking(move || {
        let ds = match req.dir {
            Some(d) => crate::facts::Dataset::from_dir(std::path::Path::new(&d))
                .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?,
            None => match catalog.store().dataset_origin().map_err(internal)? {
                Some(crate::facts::Origin::Dir(d)) => crate::facts::Dataset::from_dir(&d)
                    .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?,
                _ => crate::facts::Dataset::embedded().map_err(internal)?,
            },
        };
        match catalog.import_with(&ds, req.allow_removals) {
            Err(e @ crate::facts::StoreError::Shrink { .. }) => {
                tracing::warn!("notify: live import refused: {e}");
                Err((StatusCode::CONFLICT, e.to_string()))
            }
            r => r.map_err(internal),
        }
    })
    .await
    .map_err(internal)??;
    tracing::info!(
        added = r.added,
        updated = r.updated,
        removed = r.removed,
        "notify: live import from the admin endpoint"
    );
    Ok(Json(r))
}

async fn list(State(st): State<AppState>) -> Answer<Vec<Progress>> {
    let hub = st.hub.clone();
    let p = tokio::task::spawn_blocking(move || hub.outbox.all_progress())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Json(p))
}

async fn one(State(st): State<AppState>, Path(id): Path<u64>) -> Answer<Progress> {
    let hub = st.hub.clone();
    // A scan of every delivery: off the async threads the worker paces on.
    let p = tokio::task::spawn_blocking(move || hub.outbox.progress(id))
        .await
        .map_err(internal)?;
    match p.map_err(internal)? {
        Some(p) => Ok(Json(p)),
        None => Err((StatusCode::NOT_FOUND, format!("no notification {id}"))),
    }
}

/// Binds the endpoint; serving runs in a spawned task until `stop`.
pub async fn serve(
    listen: &str,
    token: &Secret,
    hub: super::Hub,
    catalog: std::sync::Arc<crate::catalog::Live>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| anyhow::anyhow!("[notify] admin_listen {listen:?} is not an address:port"))?;
    if !addr.ip().is_loopback() {
        anyhow::bail!(
            "[notify] admin_listen {listen:?} must be a loopback address (127.0.0.1 or [::1])"
        );
    }
    let st = AppState { hub, catalog };
    let app = Router::new()
        .route("/announce", post(announce))
        .route("/notifications", get(list))
        .route("/import", post(import))
        .route("/notifications/{id}", get(one))
        .route_layer(middleware::from_fn_with_state(
            digest(token.expose()),
            require_token,
        ))
        .with_state(st);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("notify: cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let limits = crate::http::Limits {
        max_connections: MAX_CONNECTIONS,
        header_timeout: HEADER_TIMEOUT,
        name: "admin",
    };
    tokio::spawn(crate::http::serve(listener, app, limits, stop));
    tracing::info!(listen = %local, "notify: admin endpoint listening");
    Ok(local)
}

/// The shell's side of the endpoint (`factbot announce`, `notifications`).
pub struct Client {
    base: String,
    auth: String,
}

/// Why a call to the endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no bot is answering on {0}")]
    NotRunning(String),
    #[error("the admin endpoint answered {0}: {1}")]
    Status(u16, String),
    #[error("unreadable answer from the admin endpoint: {0}")]
    Body(String),
}

impl Client {
    /// `None` when the config has no endpoint or no token.
    pub fn from_config(cfg: &NotifyConfig) -> Option<Client> {
        let listen = cfg.admin_listen.as_ref()?;
        let token = cfg.admin_token.as_ref()?;
        Some(Client {
            base: format!("http://{listen}"),
            auth: format!("Bearer {}", token.expose()),
        })
    }

    fn call(
        &self,
        req: ureq::Request,
        body: Option<serde_json::Value>,
    ) -> Result<ureq::Response, ClientError> {
        let req = req
            .set("Authorization", &self.auth)
            .timeout(std::time::Duration::from_secs(30));
        let r = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match r {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(code, r)) => Err(ClientError::Status(
                code,
                r.into_string().unwrap_or_default(),
            )),
            Err(ureq::Error::Transport(_)) => Err(ClientError::NotRunning(self.base.clone())),
        }
    }

    pub fn announce(&self, topic: Option<&str>, text: &str) -> Result<Announced, ClientError> {
        let body = serde_json::json!({ "topic": topic, "text": text });
        self.call(ureq::post(&format!("{}/announce", self.base)), Some(body))?
            .into_json()
            .map_err(|e| ClientError::Body(e.to_string()))
    }

    pub fn progress(&self, id: u64) -> Result<Progress, ClientError> {
        self.call(
            ureq::get(&format!("{}/notifications/{id}", self.base)),
            None,
        )?
        .into_json()
        .map_err(|e| ClientError::Body(e.to_string()))
    }

    /// A live import by the running bot (`dir`: absolute path).
    pub fn import(
        &self,
        dir: Option<&str>,
        allow_removals: bool,
    ) -> Result<crate::facts::ImportReport, ClientError> {
        let body = serde_json::json!({ "dir": dir, "allow_removals": allow_removals });
        self.call(ureq::post(&format!("{}/import", self.base)), Some(body))?
            .into_json()
            .map_err(|e| ClientError::Body(e.to_string()))
    }

    pub fn list(&self) -> Result<Vec<Progress>, ClientError> {
        self.call(ureq::get(&format!("{}/notifications", self.base)), None)?
            .into_json()
            .map_err(|e| ClientError::Body(e.to_string()))
    }
}
