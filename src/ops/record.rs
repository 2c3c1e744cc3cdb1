//! The recording points: one call at each place a transport or the notify
//! worker learns something an operator graphs. Each is a no-op until
//! [`super::start`] has installed the recorder (no `[metrics]` section: no
//! cost beyond an atomic load), except the poll times, which `/healthz`
//! reads and which are kept either way.
//!
//! Label values come only from the fixed sets below (transport, language,
//! outcome, path, platform) — never a chat id, a user's words or a secret:
//! every distinct label set is a new time series in Prometheus, and the
//! figures may be scraped from another host.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use metrics::{counter, gauge, histogram};

use crate::facts::Platform;
use crate::reply::{Reply, ReplyKind};

/// Questions answered, by `transport`, `lang` and `outcome`.
pub const QUESTIONS: &str = "factbot_questions_total";
/// Seconds from taking a question up to its reply being sent, by
/// `transport`.
pub const REPLY_SECONDS: &str = "factbot_reply_seconds";
/// Updates or messages received and stored, not yet answered, by
/// `transport`.
pub const INBOX_DEPTH: &str = "factbot_inbox_depth";
/// Deliveries of notifications not yet final, by `platform`.
pub const OUTBOX_PENDING: &str = "factbot_outbox_pending";
/// Deliveries that reached a final state, by `platform` and `outcome`.
pub const DELIVERIES: &str = "factbot_deliveries_total";
/// Flood-control answers (HTTP 429, `retry_after`) seen, by `transport`
/// and `path`.
pub const RATE_LIMITED: &str = "factbot_rate_limited_total";
/// Requests tried again after a transient failure or flood control, by
/// `transport` and `path`.
pub const RETRIES: &str = "factbot_retries_total";
/// Unix time of the last successful long poll (Telegram `getUpdates`, or
/// `getWebhookInfo` in webhook mode) or sync (Matrix), by `transport`.
pub const LAST_POLL: &str = "factbot_last_poll_timestamp_seconds";

/// Reply-latency histogram buckets, seconds. The engine answers in well
/// under a millisecond; what a user waits for is the chat API (tens to
/// hundreds of ms) and, under flood control, the throttle's queue
/// (seconds): the buckets span both.
pub const REPLY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A chat platform the bot serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Telegram,
    Matrix,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::Telegram, Transport::Matrix];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Telegram => "telegram",
            Transport::Matrix => "matrix",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which kind of traffic a 429 or a retry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Answering a question.
    Reply,
    /// Delivering a notification.
    Notify,
    /// Receiving: long polls and syncs.
    Poll,
}

impl Path {
    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Path::Reply => "reply",
            Path::Notify => "notify",
            Path::Poll => "poll",
        }
    }
}

/// The `outcome` label of a reply: `answered` (facts), `declined` (no fact
/// on the subject), `info` (help, settings), `error` (a malformed command).
pub fn outcome(kind: ReplyKind) -> &'static str {
    match kind {
        ReplyKind::Answer => "answered",
        ReplyKind::NoAnswer => "declined",
        ReplyKind::Info => "info",
        ReplyKind::Error => "error",
    }
}

/// A notify platform (a chat key's [`Platform`]) as a label value; a chat
/// with no chat network (the console) is `other`. A fixed set: a stored
/// key cannot mint label values.
pub fn platform(p: Platform) -> &'static str {
    match p {
        Platform::Telegram => "telegram",
        Platform::Matrix => "matrix",
        Platform::Local => "other",
    }
}

/// A question's reply was sent: counts it and observes its latency since
/// `started` (when the transport took the question up).
pub fn question(t: Transport, reply: &Reply, started: Instant) {
    counter!(QUESTIONS, "transport" => t.name(), "lang" => reply.lang.code(), "outcome" => outcome(reply.kind)).increment(1);
    histogram!(REPLY_SECONDS, "transport" => t.name()).record(started.elapsed().as_secs_f64());
}

/// Flood control answered a request.
pub fn rate_limited(t: Transport, path: Path) {
    counter!(RATE_LIMITED, "transport" => t.name(), "path" => path.name()).increment(1);
}

/// A request is tried again.
pub fn retry(t: Transport, path: Path) {
    counter!(RETRIES, "transport" => t.name(), "path" => path.name()).increment(1);
}

/// The inbox holds `n` updates (at start: what the last run left).
pub fn inbox_depth(t: Transport, n: usize) {
    gauge!(INBOX_DEPTH, "transport" => t.name()).set(n as f64);
}

/// `n` updates stored in the inbox.
pub fn inbox_in(t: Transport, n: usize) {
    gauge!(INBOX_DEPTH, "transport" => t.name()).increment(n as f64);
}

/// `n` answered updates removed from the inbox.
pub fn inbox_out(t: Transport, n: usize) {
    gauge!(INBOX_DEPTH, "transport" => t.name()).decrement(n as f64);
}

/// The notify worker holds `n` deliveries for `platform` not yet final.
pub fn outbox_pending(p: Platform, n: usize) {
    gauge!(OUTBOX_PENDING, "platform" => platform(p)).set(n as f64);
}

/// Where a delivery stands after a send (the notify worker's state, named
/// here so that `ops` stays below `notify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not final: more parts, or a retry, to come.
    Pending,
    Delivered,
    Failed,
}

/// One send of a notification's part ended: `failed_send` (to be retried
/// while `state` is still pending), `limited` by flood control; a final
/// `state` counts the delivery as delivered or failed.
pub fn delivery_attempt(p: Platform, failed_send: bool, limited: bool, state: State) {
    let label = platform(p);
    let transport = match p {
        Platform::Telegram => Some(Transport::Telegram),
        Platform::Matrix => Some(Transport::Matrix),
        Platform::Local => None,
    };
    if let Some(t) = transport {
        if limited {
            rate_limited(t, Path::Notify);
        }
        if failed_send && state == State::Pending {
            retry(t, Path::Notify);
        }
    }
    let outcome = match state {
        State::Delivered => "delivered",
        State::Failed => "failed",
        State::Pending => return,
    };
    counter!(DELIVERIES, "platform" => label, "outcome" => outcome).increment(1);
}

/// Unix ms of each transport's last successful poll or sync (0: none yet).
static LAST_OK_MS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// A failure `/healthz` shows: the request that failed and why.
pub type Failure = (&'static str, &'static str);

/// Each transport's last failure to poll, in words from a fixed set (never
/// an error's text: a Telegram client error quotes the request URL, which
/// holds the bot token). Cleared by a successful poll.
static LAST_FAILURE: Mutex<[Option<Failure>; 2]> = Mutex::new([None, None]);

fn failures() -> std::sync::MutexGuard<'static, [Option<Failure>; 2]> {
    LAST_FAILURE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A long poll or sync succeeded: the transport hears its platform.
pub fn polled(t: Transport) {
    let now = unix_ms();
    LAST_OK_MS[t.index()].store(now, Ordering::Relaxed);
    failures()[t.index()] = None;
    gauge!(LAST_POLL, "transport" => t.name()).set(now as f64 / 1000.0);
}

/// A long poll, sync or start-up request (`call`: `getUpdates`, `sync`,
/// `login`) failed; `/healthz` shows "`call` failed: `why`" (fixed
/// phrases).
pub fn poll_failed(t: Transport, call: &'static str, why: &'static str) {
    failures()[t.index()] = Some((call, why));
}

/// What `/healthz` knows of a transport: its last successful poll (Unix
/// ms) and last failure since.
pub fn seen(t: Transport) -> (Option<u64>, Option<Failure>) {
    let ms = LAST_OK_MS[t.index()].load(Ordering::Relaxed);
    ((ms > 0).then_some(ms), failures()[t.index()])
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[test]
    fn label_values_come_from_fixed_sets() {
        assert_eq!(platform(Platform::Telegram), "telegram");
        assert_eq!(platform(Platform::Matrix), "matrix");
        assert_eq!(platform(Platform::Local), "other");
        assert_eq!(outcome(ReplyKind::Answer), "answered");
        assert_eq!(outcome(ReplyKind::NoAnswer), "declined");
        assert_eq!(outcome(ReplyKind::Info), "info");
        assert_eq!(outcome(ReplyKind::Error), "error");
    }

    #[test]
    fn a_delivery_counts_its_429s_and_retries_and_its_final_state_once() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            // Flood control, retried; a network failure, retried; then the
            // last part delivered.
            delivery_attempt(Platform::Telegram, true, true, State::Pending);
            delivery_attempt(Platform::Telegram, true, false, State::Pending);
            delivery_attempt(Platform::Telegram, false, false, State::Delivered);
            // A Matrix room that failed for good: no retry counted.
            delivery_attempt(Platform::Matrix, true, false, State::Failed);
            // A first part delivered, more to come: nothing final yet.
            delivery_attempt(Platform::Matrix, false, false, State::Pending);
        });
        let text = handle.render();
        for line in [
            r#"factbot_rate_limited_total{transport="telegram",path="notify"} 1"#,
            r#"factbot_retries_total{transport="telegram",path="notify"} 2"#,
            r#"factbot_deliveries_total{platform="telegram",outcome="delivered"} 1"#,
            r#"factbot_deliveries_total{platform="matrix",outcome="failed"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        assert!(
            !text.contains(r#"factbot_retries_total{transport="matrix""#),
            "{text}"
        );
        assert!(
            !text.contains(r#"platform="matrix",outcome="delivered""#),
            "{text}"
        );
    }
}
