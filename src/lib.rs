//! factbot: a fact-answering chat bot for Telegram and Matrix.
//!
//! # Layout
//!
//! Layered bottom to top; each module imports only those above it in this
//! list. The core (`facts` … `answer`) knows nothing of chats:
//! `scripts/check-layers.sh` enforces it. ARCHITECTURE.md has the diagram
//! and the path of a question and of a notification.
//!
//! - [`http`]: the hardened HTTP/1 loop of the listeners that face a
//!   network (webhook, metrics); [`retry`]: the pauses of every loop that
//!   retries after a failure.
//! - [`config`]: the operator's configuration file; [`progress`]: how long
//!   work (an import, an index build) is shown.
//! - [`facts`]: the fact model, the dataset loader for `data/`, and the
//!   sled store with its change log.
//! - [`query`]: understanding a line of chat — command parsing, language
//!   detection, text analysis (stemming, synonyms, typos) and ranked search.
//! - [`catalog`]: the facts and index now served, swapped whole by a live
//!   import.
//! - [`reply`]: the transport-neutral reply and its renderers (plain text,
//!   Telegram HTML, Matrix HTML), with splitting to a platform's limit.
//! - [`chart`]: charts of the store's figures and dates, rendered as PNG
//!   in-process (trade, the integration timeline, investment), cached by
//!   chart, language and the digest of the facts drawn.
//! - [`answer`]: the answering engine: a request in, a reply out.
//! - [`notify`]: subscriptions, the durable outbox and its delivery
//!   worker, change notifications, the daily digest and announcements,
//!   behind the small API of its `Hub`.
//! - [`app`]: the engine and the hub side by side, routing a line to
//!   either; start-up (store, automatic import) and `serve`, the running
//!   bot's supervisor.
//! - [`ops`]: operations — `/metrics` for Prometheus and `/healthz`, and
//!   the recording points the transports and the notify worker call.
//! - [`transport`]: adapters between a platform and [`app`]; the only
//!   place where platform crates may appear.
//! - [`cli`]: the `factbot` subcommands (their arguments, work and output)
//!   that the binary's clap front dispatches to.

pub mod answer;
pub mod app;
pub mod catalog;
pub mod chart;
pub mod cli;
pub mod config;
pub mod facts;
pub mod http;
pub mod notify;
pub mod ops;
pub mod progress;
pub mod query;
pub mod reply;
pub mod retry;
pub mod transport;
