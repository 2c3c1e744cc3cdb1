//! The delivery worker: sends due deliveries through each platform's
//! [`Deliver`], records the outcome durably, retries.
//!
//! Why it is built this way:
//! - one queue per platform, each with its own pacing gate and in-flight
//!   cap: a Telegram broadcast of 10,000 chats, or a 429 pause for
//!   Telegram, never holds up a Matrix room's notification (one shared
//!   queue stopped at its paused head);
//! - at most `max_in_flight` sends at once per platform, so a crash repeats
//!   at most that many (a delivery counts as finished only once its
//!   `delivered` mark is flushed) — and on Matrix none, since a retried
//!   part reuses its transaction id ([`Part::idempotency_key`]);
//! - a notification too long for one message goes out part by part, each
//!   part recorded when sent: a retry resumes at the first unsent part,
//!   parts keep the chat's pacing, and a chat never gets parts of two
//!   notifications interleaved;
//! - a failing or rate-limited chat is rescheduled, never waited for in a
//!   send slot, so one bad chat cannot hold up the others; every failure,
//!   flood control included, counts toward [`MAX_ATTEMPTS`] per part;
//! - a chat that refuses the bot for now ([`Outcome::Blocked`], e.g. a
//!   Matrix room that muted it, a Telegram group that restricted it) is
//!   retried with growing pauses and dropped only after
//!   [`BLOCKED_GIVE_UP`];
//! - each chat is paced by its platform's [`Deliver::chat_interval`] and has
//!   at most one send in flight, so a chat's notifications arrive in order;
//!   the platform-wide rate is [`Deliver::min_gap`];
//! - a delivery for a platform this process does not serve (an `mx:` room
//!   with no `[matrix]` configured) fails at once, with a log line naming
//!   the chat, instead of waiting forever;
//! - a deliverer that panics costs one attempt, never a chat left marked
//!   busy or a send slot left taken;
//! - what a chat receives is rendered at send time, in its language (kept
//!   for the later parts of a long notification).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use sha2::{Digest, Sha256};
use tokio::task::{JoinError, JoinSet};

use super::outbox::{unix_ms, Delivery, Notification, State};
use super::Hub;
use crate::catalog::Live;
use crate::facts::{ChatKey, Lang, Platform};
use crate::reply::Reply;

/// What became of one send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Flood control: try again after this long.
    RetryAfter(Duration),
    /// Network or server trouble: retry with backoff.
    Transient(String),
    /// The bot may not write there for now but is still a member (muted by
    /// a Matrix room's power levels, restricted in a Telegram group, its
    /// right to post in a Telegram channel taken away): the chat's
    /// deliveries pause with growing backoff; the subscription is dropped
    /// only when this lasts [`BLOCKED_GIVE_UP`].
    Blocked(String),
    /// The bot can no longer write there (blocked, kicked, left the room):
    /// the chat's subscription is dropped.
    Gone(String),
    /// The chat has a new key (Telegram group → supergroup, an upgraded
    /// Matrix room): the subscription moves and the delivery goes there.
    Migrated(ChatKey),
    /// The platform refused the message itself; retrying cannot help.
    Rejected(String),
}

/// One message of a notification, to one chat.
pub struct Part<'a> {
    pub notification: u64,
    /// Where it goes (the delivery's current target).
    pub chat: &'a ChatKey,
    /// The whole notification as this chat reads it.
    pub reply: &'a Reply,
    /// Which of the [`Deliver::parts`] messages to send (0-based).
    pub index: usize,
}

impl Part<'_> {
    /// A key that names this (notification, chat, part) and is the same on
    /// every attempt — also after a restart — so a platform that
    /// de-duplicates by a client-chosen id (Matrix transaction ids) turns
    /// a retried send into a no-op instead of a second message.
    pub fn idempotency_key(&self) -> String {
        let h = Sha256::digest(format!(
            "{}\n{}\n{}",
            self.notification, self.chat, self.index
        ));
        let hex: String = h.iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("factbot-n{}-p{}-{hex}", self.notification, self.index)
    }
}

/// A platform's way to send a notification to one chat.
pub trait Deliver: Send + Sync {
    /// The platform whose chats it serves ([`ChatKey::platform`]).
    fn platform(&self) -> Platform;
    /// How many messages `reply` is sent as in `chat` (at least one).
    fn parts(&self, chat: &ChatKey, reply: &Reply) -> usize;
    /// Sends one part; every failure is an [`Outcome`]. (A panic is caught
    /// and counted as a transient failure.)
    fn deliver<'a>(&'a self, part: Part<'a>) -> BoxFuture<'a, Outcome>;
    /// Least time between two sends to one chat.
    fn chat_interval(&self, _chat: &ChatKey) -> Duration {
        Duration::from_secs(1)
    }
    /// Least time between two sends on this platform, so a broadcast
    /// is spread evenly instead of bursting into the platform's flood
    /// control (zero: no pacing).
    fn min_gap(&self) -> Duration {
        Duration::ZERO
    }
    /// Sends in flight on this platform at most. A small number keeps a
    /// stalled server from receiving a burst of queued sends afterwards.
    fn max_in_flight(&self) -> usize {
        usize::MAX
    }
}

/// Give up a part after this many failed attempts in a row (flood-control
/// answers included, so a `retry_after` can never loop forever).
pub const MAX_ATTEMPTS: u32 = 8;
/// A chat that refuses the bot this long loses its subscription.
pub const BLOCKED_GIVE_UP: Duration = Duration::from_secs(24 * 3600);
/// First and longest pause before retrying a chat that refuses the bot.
const BLOCKED_FIRST_RETRY: Duration = Duration::from_secs(10);
const BLOCKED_MAX_RETRY: Duration = Duration::from_secs(3600);
/// A send taking longer is abandoned and retried (on Matrix with the same
/// transaction id, so the homeserver de-duplicates it).
const SEND_TIMEOUT: Duration = Duration::from_secs(120);
/// How far behind its schedule a paced platform may catch up.
const CATCH_UP: Duration = Duration::from_millis(2);
/// A chat busy with another send (or finishing another notification's
/// parts) is looked at again after this long.
const BUSY_RETRY_MS: u64 = 200;

/// The pause after `attempts` failed tries of a part
/// ([`crate::retry::NOTIFY_DELIVERY`]), in milliseconds.
fn backoff_ms(attempts: u32) -> u64 {
    crate::retry::NOTIFY_DELIVERY.after(attempts).as_millis() as u64
}

/// When to try a chat that has refused the bot's messages since
/// `since_ms` again: pauses grow with the time it has been refusing
/// (10 s at first, at most an hour); `None` once that is a day.
pub fn blocked_retry_at(since_ms: u64, now_ms: u64) -> Option<u64> {
    let blocked = now_ms.saturating_sub(since_ms);
    if blocked >= BLOCKED_GIVE_UP.as_millis() as u64 {
        return None;
    }
    let wait = (blocked / 2).clamp(
        BLOCKED_FIRST_RETRY.as_millis() as u64,
        BLOCKED_MAX_RETRY.as_millis() as u64,
    );
    Some(now_ms + wait)
}

type Key = (u64, ChatKey);

/// One platform's deliveries.
#[derive(Default)]
struct Lane {
    /// (due, notification, chat) of every pending delivery not in flight.
    queue: BinaryHeap<Reverse<(u64, u64, ChatKey)>>,
    /// When the next send may start (even pacing; flood-control pauses).
    gate: Option<Instant>,
    /// Sends in flight.
    in_flight: usize,
}

impl Lane {
    /// Takes the platform's next send slot: with a `gap` between sends
    /// ([`Deliver::min_gap`]), the gate moves on by one gap.
    fn pace(&mut self, gap: Option<Duration>) {
        let Some(gap) = gap.filter(|g| !g.is_zero()) else {
            return;
        };
        let now = Instant::now();
        let prev = self.gate.unwrap_or(now);
        // Absorb timer lateness (a millisecond or two) to keep the rate,
        // but never catch up after a stall: two sends close together are
        // what trips a sliding-window flood control.
        let from = prev.max(now.checked_sub(CATCH_UP).unwrap_or(now));
        self.gate = Some(from + gap);
    }
}

/// A send in progress, by task: what to free and requeue if its task
/// panics.
struct Running {
    nid: u64,
    platform: Platform,
    d: Delivery,
}

/// What a send's task hands back.
struct Done {
    d: Delivery,
    /// Flood control: hold the platform this long.
    pause: Option<Duration>,
}

/// The worker's state; see the module docs.
pub struct Worker {
    hub: Hub,
    /// The facts a notification is rendered from at send time.
    catalog: Arc<Live>,
    max_in_flight: usize,
    lanes: HashMap<Platform, Lane>,
    known: HashSet<Key>,
    /// Chats with a send in flight.
    busy: HashSet<ChatKey>,
    last_sent: HashMap<ChatKey, Instant>,
    /// Per chat, the notification whose parts it is in the middle of: no
    /// other notification starts there before it is finished.
    partial: HashMap<ChatKey, u64>,
    /// Deliveries not yet final, per notification.
    outstanding: HashMap<u64, usize>,
    notifications: HashMap<u64, Arc<Notification>>,
    /// Platforms this process serves (`None`: any may register later).
    served: Option<HashSet<Platform>>,
    running: HashMap<tokio::task::Id, Running>,
}

enum Launch {
    Started,
    Later(u64),
    Dropped,
}

impl Worker {
    pub fn new(hub: Hub, catalog: Arc<Live>, max_in_flight: usize) -> Worker {
        Worker {
            hub,
            catalog,
            max_in_flight: max_in_flight.max(1),
            lanes: HashMap::new(),
            known: HashSet::new(),
            busy: HashSet::new(),
            last_sent: HashMap::new(),
            partial: HashMap::new(),
            outstanding: HashMap::new(),
            notifications: HashMap::new(),
            served: None,
            running: HashMap::new(),
        }
    }

    /// The platforms whose transports this process runs: deliveries to
    /// any other chat fail at once instead of waiting for a transport that
    /// never comes.
    pub fn serving(mut self, platforms: &[Platform]) -> Worker {
        self.served = Some(platforms.iter().copied().collect());
        self
    }

    fn load(&mut self, id: Option<u64>) {
        let pending = match self.hub.outbox.pending(id) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "notify: cannot read the outbox");
                return;
            }
        };
        let mut added = 0usize;
        for (nid, d) in pending {
            // Deliveries whose notification is not (yet, or ever: a crash
            // while enqueueing) recorded are not sent.
            if self.notification(nid).is_none() {
                continue;
            }
            if self.known.insert((nid, d.chat.clone())) {
                *self.outstanding.entry(nid).or_default() += 1;
                if d.parts_sent > 0 {
                    self.partial.insert(d.target.clone(), nid);
                }
                self.enqueue(d.next_at_ms, nid, d.chat);
                added += 1;
            }
        }
        if added > 0 {
            tracing::info!(deliveries = added, "notify: deliveries queued");
        }
    }

    fn enqueue(&mut self, due: u64, nid: u64, chat: ChatKey) {
        self.lanes
            .entry(chat.platform())
            .or_default()
            .queue
            .push(Reverse((due, nid, chat)));
    }

    fn notification(&mut self, id: u64) -> Option<Arc<Notification>> {
        if let Some(n) = self.notifications.get(&id) {
            return Some(Arc::clone(n));
        }
        match self.hub.outbox.notification(id) {
            Ok(Some(n)) => {
                let n = Arc::new(n);
                self.notifications.insert(id, Arc::clone(&n));
                Some(n)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(id, error = %e, "notify: cannot read a notification");
                None
            }
        }
    }

    /// Runs until `stop` turns true; then waits (bounded) for sends in flight.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        self.load(None);
        let mut tasks: JoinSet<Done> = JoinSet::new();
        loop {
            if *stop.borrow() {
                break;
            }
            let wake = self.launch_due(&mut tasks);
            for (platform, lane) in &self.lanes {
                crate::ops::record::outbox_pending(*platform, lane.queue.len() + lane.in_flight);
            }
            let wait = wake
                .map(|at| at.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(60))
                .clamp(Duration::from_millis(1), Duration::from_secs(60));
            tokio::select! {
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => self.joined(done),
                _ = self.hub.inner.wake.notified() => {
                    let fresh: Vec<u64> = std::mem::take(&mut *self.hub.inner.fresh.lock().unwrap_or_else(|p| p.into_inner()));
                    for id in fresh { self.load(Some(id)); }
                }
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        let grace = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(done) = tasks.join_next_with_id().await {
                self.joined(done);
            }
        });
        if grace.await.is_err() {
            tracing::warn!(
                "notify: sends still in flight at shutdown; they are retried after the restart"
            );
        }
        tracing::info!("notify: worker stopped");
    }

    /// Starts every send that may start now, platform by platform; returns
    /// when to look again (`None`: only when a send finishes or news comes).
    fn launch_due(&mut self, tasks: &mut JoinSet<Done>) -> Option<Instant> {
        let now = unix_ms();
        let mut wake: Option<Instant> = None;
        let mut soonest = |at: Instant| wake = Some(wake.map_or(at, |w: Instant| w.min(at)));
        let platforms: Vec<Platform> = self.lanes.keys().copied().collect();
        for platform in platforms {
            let deliverer = self.hub.deliverer_for(platform);
            let served = self.served.as_ref().is_none_or(|s| s.contains(&platform));
            if deliverer.is_none() && served {
                // Its transport has not registered yet (Matrix does after
                // its first sync); registering wakes the worker.
                continue;
            }
            let cap = deliverer
                .as_ref()
                .map_or(usize::MAX, |d| d.max_in_flight())
                .min(self.max_in_flight);
            let mut later = Vec::new();
            while let Some(lane) = self.lanes.get_mut(&platform) {
                let Some(Reverse((due, _, _))) = lane.queue.peek() else {
                    break;
                };
                if *due > now {
                    soonest(Instant::now() + Duration::from_millis(due - now));
                    break;
                }
                if let Some(g) = lane.gate.filter(|g| *g > Instant::now()) {
                    soonest(g);
                    break;
                }
                if lane.in_flight >= cap {
                    // A send of this platform finishing wakes the loop.
                    break;
                }
                let Some(Reverse((_, nid, chat))) = lane.queue.pop() else {
                    break;
                };
                match self.launch(nid, &chat, now, platform, deliverer.clone(), tasks) {
                    Launch::Started | Launch::Dropped => {}
                    Launch::Later(at) => later.push(Reverse((at, nid, chat))),
                }
            }
            if let Some(Reverse((at, _, _))) = later.iter().min() {
                soonest(Instant::now() + Duration::from_millis(at.saturating_sub(now)));
            }
            if let Some(lane) = self.lanes.get_mut(&platform) {
                lane.queue.extend(later);
            }
        }
        wake
    }

    /// Starts the send of `chat`'s delivery of notification `nid` if the
    /// chat may take it now.
    fn launch(
        &mut self,
        nid: u64,
        chat: &ChatKey,
        now: u64,
        platform: Platform,
        deliverer: Option<Arc<dyn Deliver>>,
        tasks: &mut JoinSet<Done>,
    ) -> Launch {
        let d = match self.pending_delivery(nid, chat, now) {
            Ok(d) => d,
            Err(not_now) => return not_now,
        };
        if let Some(at) = self.chat_wait(nid, &d, deliverer.as_deref(), now) {
            return Launch::Later(at);
        }
        let Some(n) = self.notification(nid) else {
            tracing::error!(
                id = nid,
                "notify: delivery of an unknown notification dropped"
            );
            self.forget(nid, chat);
            return Launch::Dropped;
        };
        let lane = self.lanes.entry(platform).or_default();
        lane.pace(deliverer.as_ref().map(|d| d.min_gap()));
        lane.in_flight += 1;
        self.busy.insert(d.target.clone());
        let send = attempt(
            self.hub.clone(),
            Arc::clone(&self.catalog),
            deliverer,
            n,
            d.clone(),
        );
        let handle = tasks.spawn(send);
        self.running
            .insert(handle.id(), Running { nid, platform, d });
        Launch::Started
    }

    /// The delivery as stored, if it is still pending; else what to do
    /// with its queue entry (dropped when done; a read error retried).
    fn pending_delivery(&mut self, nid: u64, chat: &ChatKey, now: u64) -> Result<Delivery, Launch> {
        match self.hub.outbox.deliveries_get(nid, chat) {
            Ok(Some(d)) if d.state == State::Pending => Ok(d),
            Ok(_) => {
                self.forget(nid, chat);
                Err(Launch::Dropped)
            }
            Err(e) => {
                tracing::error!(error = %e, "notify: cannot read a delivery");
                Err(Launch::Later(now + 5_000))
            }
        }
    }

    /// When the delivery's chat can take it, if not now: it has a send in
    /// flight, is in the middle of another notification's parts, or had a
    /// message less than its platform's [`Deliver::chat_interval`] ago.
    fn chat_wait(&self, nid: u64, d: &Delivery, dv: Option<&dyn Deliver>, now: u64) -> Option<u64> {
        if self.busy.contains(&d.target) || self.partial.get(&d.target).is_some_and(|p| *p != nid) {
            return Some(now + BUSY_RETRY_MS);
        }
        let interval = dv?.chat_interval(&d.target);
        let since = self.last_sent.get(&d.target)?.elapsed();
        (since < interval).then(|| now + (interval - since).as_millis() as u64 + 1)
    }

    fn forget(&mut self, nid: u64, chat: &ChatKey) {
        if self.known.remove(&(nid, chat.clone())) {
            self.settle(nid);
        }
    }

    fn settle(&mut self, nid: u64) {
        let left = self.outstanding.get_mut(&nid).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == Some(0) {
            self.outstanding.remove(&nid);
            self.notifications.remove(&nid);
            match self.hub.outbox.progress(nid) {
                Ok(Some(p)) => tracing::info!(
                    id = nid,
                    kind = %p.kind,
                    delivered = p.delivered,
                    failed = p.failed,
                    total = p.total,
                    "notify: notification complete"
                ),
                _ => tracing::info!(id = nid, "notify: notification complete"),
            }
        }
    }

    /// A send's task ended (or panicked): frees its chat and slot, then
    /// requeues or settles the delivery.
    fn joined(&mut self, r: Result<(tokio::task::Id, Done), JoinError>) {
        let (id, done) = match r {
            Ok((id, done)) => (id, Ok(done)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(run) = self.running.remove(&id) else {
            return;
        };
        let was = run.d.target.clone();
        self.busy.remove(&was);
        self.last_sent.insert(was.clone(), Instant::now());
        if self.partial.get(&was) == Some(&run.nid) {
            self.partial.remove(&was);
        }
        let lane = self.lanes.entry(run.platform).or_default();
        lane.in_flight = lane.in_flight.saturating_sub(1);
        let (d, pause) = match done {
            Ok(Done { d, pause }) => (d, pause),
            Err(e) => {
                // Outside the deliverer (whose panics `attempt` catches):
                // count an attempt and keep the record as it was.
                let mut d = run.d;
                d.attempts += 1;
                d.next_at_ms = unix_ms() + backoff_ms(d.attempts);
                d.last_error = Some(format!("the send crashed: {e}"));
                if d.attempts >= MAX_ATTEMPTS {
                    d.state = State::Failed;
                }
                tracing::error!(id = run.nid, chat = %d.target, error = %e, "notify: a send crashed");
                if let Err(e) = self.hub.outbox.update(run.nid, &d) {
                    tracing::error!(error = %e, "notify: cannot record a delivery");
                }
                (d, None)
            }
        };
        if let Some(p) = pause {
            // Flood control is per bot: hold every send of the platform.
            let until = Instant::now() + p;
            lane.gate = Some(lane.gate.map_or(until, |g| g.max(until)));
        }
        if d.state == State::Pending {
            if d.parts_sent > 0 {
                self.partial.insert(d.target.clone(), run.nid);
            }
            self.enqueue(d.next_at_ms, run.nid, d.chat);
        } else {
            self.known.remove(&(run.nid, d.chat.clone()));
            self.settle(run.nid);
        }
    }
}

/// A panic's message, for the log.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Sends the next part of one delivery and records the outcome durably.
/// `deliverer` is `None` when no transport of this process serves the chat.
async fn attempt(
    hub: Hub,
    catalog: Arc<Live>,
    deliverer: Option<Arc<dyn Deliver>>,
    n: Arc<Notification>,
    mut d: Delivery,
) -> Done {
    let (outcome, total) = match &deliverer {
        None => {
            tracing::error!(id = n.id, chat = %d.target, "notify: no transport of this bot can deliver to this chat (is its platform configured?); delivery failed");
            (
                Outcome::Rejected("no transport configured for this chat".into()),
                0,
            )
        }
        Some(dv) => send_next_part(&hub, &catalog, dv.as_ref(), &n, &mut d).await,
    };
    let (failed_send, limited) = (
        outcome != Outcome::Delivered,
        matches!(outcome, Outcome::RetryAfter(_)),
    );
    let pause = settle(&hub, &n, &mut d, outcome, total).await;
    let state = match d.state {
        State::Pending => crate::ops::record::State::Pending,
        State::Delivered => crate::ops::record::State::Delivered,
        State::Failed => crate::ops::record::State::Failed,
    };
    crate::ops::record::delivery_attempt(d.chat.platform(), failed_send, limited, state);
    if let Err(e) = hub.outbox.update(n.id, &d) {
        tracing::error!(error = %e, "notify: cannot record a delivery");
    }
    if let Err(e) = hub.outbox.flush().await {
        tracing::error!(error = %e, "notify: cannot flush the outbox");
    }
    if d.state == State::Delivered {
        tracing::debug!(id = n.id, chat = %d.target, parts = total, "notify: delivered");
    }
    Done { d, pause }
}

/// Renders the notification in the chat's language (fixed at the first
/// attempt, so every part reads the same) and sends its first unsent part;
/// the outcome and how many parts it has.
async fn send_next_part(
    hub: &Hub,
    catalog: &Live,
    dv: &dyn Deliver,
    n: &Notification,
    d: &mut Delivery,
) -> (Outcome, usize) {
    let lang = d.lang.unwrap_or_else(|| {
        hub.store
            .chat_settings(&d.target)
            .ok()
            .and_then(|s| s.lang)
            .unwrap_or(Lang::En)
    });
    d.lang = Some(lang);
    let reply = n.content.render(lang, &catalog.get());
    let total = dv.parts(&d.target, &reply).max(1);
    let index = d.parts_sent as usize;
    if index >= total {
        // Nothing left (the rendering shrank since): done.
        return (Outcome::Delivered, total);
    }
    let part = Part {
        notification: n.id,
        chat: &d.target,
        reply: &reply,
        index,
    };
    let send = AssertUnwindSafe(dv.deliver(part)).catch_unwind();
    let outcome = match tokio::time::timeout(SEND_TIMEOUT, send).await {
        Err(_) => Outcome::Transient("timed out".into()),
        Ok(Err(p)) => Outcome::Transient(format!("the deliverer panicked: {}", panic_text(&*p))),
        Ok(Ok(o)) => o,
    };
    (outcome, total)
}

/// Applies a send's outcome to the delivery (next part, retry time, final
/// state); a flood-control pause for the whole platform, if any.
async fn settle(
    hub: &Hub,
    n: &Notification,
    d: &mut Delivery,
    outcome: Outcome,
    total: usize,
) -> Option<Duration> {
    let now = unix_ms();
    if outcome != Outcome::Delivered {
        d.attempts += 1;
    }
    match outcome {
        Outcome::Delivered => part_delivered(hub, n.id, d, total, now),
        Outcome::RetryAfter(wait) if d.attempts < MAX_ATTEMPTS => {
            tracing::warn!(id = n.id, chat = %d.target, ?wait, attempt = d.attempts, "notify: flood control, retrying later");
            d.next_at_ms = now + wait.as_millis() as u64;
            d.last_error = Some(format!("retry after {wait:?}"));
            return Some(wait);
        }
        Outcome::Transient(e) if d.attempts < MAX_ATTEMPTS => {
            tracing::warn!(id = n.id, chat = %d.target, attempt = d.attempts, error = %e, "notify: send failed, retrying");
            d.next_at_ms = now + backoff_ms(d.attempts);
            d.last_error = Some(e);
        }
        Outcome::RetryAfter(wait) => {
            tracing::error!(id = n.id, chat = %d.target, attempts = d.attempts, part = d.parts_sent + 1, "notify: still flood-controlled; delivery failed");
            d.state = State::Failed;
            d.last_error = Some(format!("retry after {wait:?}, {} times", d.attempts));
        }
        Outcome::Transient(e) | Outcome::Rejected(e) => {
            tracing::error!(id = n.id, chat = %d.target, attempts = d.attempts, parts_sent = d.parts_sent, error = %e, "notify: delivery failed");
            d.state = State::Failed;
            d.last_error = Some(e);
        }
        Outcome::Blocked(e) => blocked(hub, n.id, d, e, now).await,
        Outcome::Gone(e) => {
            let why = "the bot cannot write to this chat any more; its subscription is dropped";
            drop_subscription(hub, &d.target, why, &e).await;
            d.state = State::Failed;
            d.last_error = Some(format!("gone: {e}"));
        }
        Outcome::Migrated(to) if d.attempts < MAX_ATTEMPTS && to != d.target => {
            tracing::info!(id = n.id, from = %d.target, to = %to, "notify: chat migrated; subscription moved");
            let (h, from, to2) = (hub.clone(), d.target.clone(), to.clone());
            if let Err(err) = tokio::task::spawn_blocking(move || h.chat_moved(&from, &to2)).await {
                tracing::error!(error = %err, "notify: moving a subscription failed");
            }
            d.target = to;
            d.next_at_ms = now;
        }
        Outcome::Migrated(to) => {
            d.state = State::Failed;
            d.last_error = Some(format!("migrated again, to {to}"));
        }
    }
    None
}

/// One more part went out: the next is due at once (the chat's pacing
/// still applies), or the delivery is done.
fn part_delivered(hub: &Hub, id: u64, d: &mut Delivery, total: usize, now: u64) {
    d.parts_sent = (d.parts_sent + 1).min(total as u32);
    d.attempts = 0;
    d.last_error = None;
    if d.parts_sent as usize >= total {
        d.state = State::Delivered;
    } else {
        d.next_at_ms = now;
        tracing::debug!(id, chat = %d.target, part = d.parts_sent, of = total, "notify: part delivered");
    }
    if let Err(e) = hub.outbox.unblocked(&d.target) {
        tracing::error!(error = %e, "notify: cannot record a delivery");
    }
}

/// The chat refuses the bot's messages for now (muted, no right to post):
/// retried with backoff, and the subscription dropped after a day of it.
/// Not a failure of the send, so not counted as an attempt.
async fn blocked(hub: &Hub, id: u64, d: &mut Delivery, e: String, now: u64) {
    d.attempts -= 1;
    let since = hub.outbox.blocked_since(&d.target, now).unwrap_or(now);
    match blocked_retry_at(since, now) {
        Some(at) => {
            tracing::warn!(id, chat = %d.target, error = %e, retry_in_s = (at - now) / 1000, "notify: the chat refuses the bot's messages for now; retrying later");
            d.next_at_ms = at;
            d.last_error = Some(format!("refused: {e}"));
        }
        None => {
            let why =
                "the chat has refused the bot's messages for a day; its subscription is dropped";
            drop_subscription(hub, &d.target, why, &e).await;
            d.state = State::Failed;
            d.last_error = Some(format!("refused for a day: {e}"));
        }
    }
}

/// Drops a chat's subscription (off the runtime's threads: it flushes).
async fn drop_subscription(hub: &Hub, chat: &ChatKey, why: &'static str, error: &str) {
    let (h, c) = (hub.clone(), chat.clone());
    match tokio::task::spawn_blocking(move || h.chat_gone(&c)).await {
        Ok(Ok(_)) => tracing::warn!(%chat, error, "notify: {why}"),
        Ok(Err(e)) => tracing::error!(%chat, error = %e, "notify: cannot drop a subscription"),
        Err(e) => tracing::error!(%chat, error = %e, "notify: cannot drop a subscription"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Dataset, Store};
    use crate::notify::subscriptions::parse_topics;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A test chat with a readable name (`tg:@name`).
    fn ch(name: &str) -> ChatKey {
        ChatKey::telegram_channel(name)
    }

    /// A platform whose chats answer as scripted; records what it sent.
    struct Fake {
        sent: Mutex<Vec<String>>,
        flaky_once: Mutex<bool>,
    }

    impl Deliver for Fake {
        fn platform(&self) -> Platform {
            Platform::Telegram
        }
        fn chat_interval(&self, _chat: &ChatKey) -> Duration {
            Duration::ZERO
        }
        fn parts(&self, _chat: &ChatKey, _reply: &Reply) -> usize {
            1
        }
        fn deliver<'a>(&'a self, part: Part<'a>) -> BoxFuture<'a, Outcome> {
            let (chat, reply) = (part.chat, part.reply);
            Box::pin(async move {
                match chat {
                    c if *c == ch("gone") => Outcome::Gone("kicked".into()),
                    c if *c == ch("old") => Outcome::Migrated(ch("new")),
                    c if *c == ch("flaky")
                        && std::mem::replace(&mut *self.flaky_once.lock().unwrap(), false) =>
                    {
                        Outcome::Transient("network".into())
                    }
                    _ => {
                        let text = crate::reply::render_plain(reply);
                        self.sent.lock().unwrap().push(format!("{chat} {text}"));
                        Outcome::Delivered
                    }
                }
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivers_retries_drops_gone_chats_and_follows_migrations() {
        let store = Store::temporary().unwrap();
        store.import(&Dataset::embedded().unwrap()).unwrap();
        let hub = Hub::open(&store).unwrap();
        let catalog = Arc::new(Live::open(store, &mut |_, _| {}).unwrap());
        let all = parse_topics("").unwrap();
        for c in ["a", "gone", "old", "flaky"] {
            hub.subs.subscribe(&ch(c), &all).unwrap();
        }
        catalog
            .store()
            .set_chat_settings(
                &ch("a"),
                &crate::facts::ChatSettings {
                    lang: Some(Lang::Ru),
                },
            )
            .unwrap();
        let fake = Arc::new(Fake {
            sent: Mutex::new(Vec::new()),
            flaky_once: Mutex::new(true),
        });
        hub.register(fake.clone());
        let (stop, rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(Worker::new(hub.clone(), Arc::clone(&catalog), 4).run(rx));
        let n = hub.announce(None, "hello").unwrap().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = hub.outbox.progress(n.id).unwrap().unwrap();
            if p.pending == 0 {
                assert_eq!((p.delivered, p.failed), (3, 1), "{p:?}");
                break;
            }
            assert!(Instant::now() < deadline, "not done: {p:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut sent = fake.sent.lock().unwrap().clone();
        sent.sort();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(
            sent[0].starts_with("tg:@a ОБЪЯВЛЕНИЕ"),
            "rendered in the chat's language: {sent:?}"
        );
        assert!(sent[1].starts_with("tg:@flaky ANNOUNCEMENT"));
        assert!(sent[2].starts_with("tg:@new ANNOUNCEMENT"));
        // Gone: unsubscribed. Migrated: the subscription moved.
        let subs: Vec<ChatKey> = hub
            .subs
            .list()
            .unwrap()
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(subs, [ch("a"), ch("flaky"), ch("new")]);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .unwrap()
            .unwrap();
    }

    /// A platform whose chats answer by a script: `tg:@a0pause` makes the
    /// first send a 60 s flood-control pause for the whole platform,
    /// `tg:@boom` panics once; every other chat is delivered and recorded.
    struct Scripted {
        platform: Platform,
        sent: Mutex<Vec<String>>,
        calls: Mutex<HashMap<String, usize>>,
        cap: usize,
    }

    impl Scripted {
        fn new(platform: Platform, cap: usize) -> Arc<Scripted> {
            Arc::new(Scripted {
                platform,
                sent: Mutex::new(Vec::new()),
                calls: Mutex::new(HashMap::new()),
                cap,
            })
        }
        fn sent(&self) -> Vec<String> {
            self.sent.lock().unwrap().clone()
        }
    }

    impl Deliver for Scripted {
        fn platform(&self) -> Platform {
            self.platform
        }
        fn chat_interval(&self, _chat: &ChatKey) -> Duration {
            Duration::ZERO
        }
        fn max_in_flight(&self) -> usize {
            self.cap
        }
        fn parts(&self, _chat: &ChatKey, _reply: &Reply) -> usize {
            1
        }
        fn deliver<'a>(&'a self, part: Part<'a>) -> BoxFuture<'a, Outcome> {
            let chat = part.chat;
            Box::pin(async move {
                let n = {
                    let mut calls = self.calls.lock().unwrap();
                    let n = calls.entry(chat.to_string()).or_default();
                    *n += 1;
                    *n
                };
                if *chat == ch("a0pause") && n == 1 {
                    return Outcome::RetryAfter(Duration::from_secs(60));
                }
                if *chat == ch("boom") && n == 1 {
                    panic!("a deliverer bug");
                }
                tokio::task::yield_now().await;
                self.sent.lock().unwrap().push(chat.to_string());
                Outcome::Delivered
            })
        }
    }

    fn subscribed(chats: &[ChatKey], topics: &str) -> (Arc<Live>, Hub) {
        let store = Store::temporary().unwrap();
        store.import(&Dataset::embedded().unwrap()).unwrap();
        let hub = Hub::open(&store).unwrap();
        let catalog = Arc::new(Live::open(store, &mut |_, _| {}).unwrap());
        let topics = parse_topics(topics).unwrap();
        for c in chats {
            hub.subs.subscribe(c, &topics).unwrap();
        }
        (catalog, hub)
    }

    async fn until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not within {secs} s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Platform A is paused by flood control for a minute with a long queue
    /// behind it; a notification for platform B, enqueued later, still goes
    /// out at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_platform_does_not_hold_up_another() {
        let mut chats: Vec<ChatKey> = (0..50).map(|i| ch(&format!("a{i}"))).collect();
        // Taken second (after `a0`), as chats of one notification are
        // taken in key order.
        chats.push(ch("a0pause"));
        let (catalog, hub) = subscribed(&chats, "trade");
        hub.subs
            .subscribe(&ChatKey::matrix("!room:b"), &parse_topics("visit").unwrap())
            .unwrap();
        let (a, b) = (
            Scripted::new(Platform::Telegram, usize::MAX),
            Scripted::new(Platform::Matrix, usize::MAX),
        );
        hub.register(a.clone());
        hub.register(b.clone());
        let (stop, rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(Worker::new(hub.clone(), Arc::clone(&catalog), 4).run(rx));
        hub.announce(Some(crate::facts::Topic::Trade), "to A")
            .unwrap();
        until("A paused", 10, || {
            a.calls
                .lock()
                .unwrap()
                .contains_key(&ch("a0pause").to_string())
        })
        .await;
        hub.announce(Some(crate::facts::Topic::Visit), "to B")
            .unwrap();
        until("B delivered while A is paused", 5, || b.sent().len() == 1).await;
        assert!(a.sent().len() < 50, "A was not paused: {:?}", a.sent());
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .unwrap()
            .unwrap();
    }

    /// A deliverer that panics loses nothing: the send counts as a failed
    /// attempt and is retried, and neither the chat nor the platform's
    /// in-flight slot stays taken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_deliverer_frees_its_chat_and_slot() {
        let chats = vec![ch("boom"), ch("ok")];
        let (catalog, hub) = subscribed(&chats, "");
        // One send at a time on this platform: a slot left taken would stop it.
        let p = Scripted::new(Platform::Telegram, 1);
        hub.register(p.clone());
        let (stop, rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(Worker::new(hub.clone(), Arc::clone(&catalog), 4).run(rx));
        let n = hub.announce(None, "first").unwrap().unwrap();
        let m = hub.announce(None, "second").unwrap().unwrap();
        until("every delivery done", 20, || {
            [n.id, m.id].iter().all(|id| {
                let p = hub.outbox.progress(*id).unwrap().unwrap();
                p.pending == 0
            })
        })
        .await;
        for id in [n.id, m.id] {
            let pr = hub.outbox.progress(id).unwrap().unwrap();
            assert_eq!((pr.delivered, pr.failed), (2, 0), "{pr:?}");
        }
        let mut sent = p.sent();
        sent.sort();
        assert_eq!(sent, ["tg:@boom", "tg:@boom", "tg:@ok", "tg:@ok"]);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .unwrap()
            .unwrap();
    }

    /// Sends a notification as three parts; scripted failures per (chat,
    /// part, attempt); records (chat, part) of every message that went out.
    struct Parted {
        log: Mutex<Vec<(ChatKey, usize)>>,
        tries: Mutex<HashMap<(ChatKey, usize), usize>>,
    }

    impl Deliver for Parted {
        fn platform(&self) -> Platform {
            Platform::Telegram
        }
        fn chat_interval(&self, _chat: &ChatKey) -> Duration {
            Duration::from_millis(50)
        }
        fn parts(&self, _chat: &ChatKey, _reply: &Reply) -> usize {
            3
        }
        fn deliver<'a>(&'a self, part: Part<'a>) -> BoxFuture<'a, Outcome> {
            let (chat, index) = (part.chat.clone(), part.index);
            Box::pin(async move {
                let n = {
                    let mut t = self.tries.lock().unwrap();
                    let n = t.entry((chat.clone(), index)).or_default();
                    *n += 1;
                    *n
                };
                let (a, busy) = (chat == ch("a"), chat == ch("busy"));
                match (index, n) {
                    // Part 2 meets flood control once, then a network error.
                    (1, 1) if a => return Outcome::RetryAfter(Duration::from_millis(30)),
                    (1, 2) if a => return Outcome::Transient("network".into()),
                    // Always flood-controlled: must give up, not loop.
                    (0, _) if busy => return Outcome::RetryAfter(Duration::from_millis(1)),
                    _ => {}
                }
                self.log.lock().unwrap().push((chat, index));
                Outcome::Delivered
            })
        }
    }

    /// A retry resumes at the part that failed (part 1 is not repeated),
    /// parts go out in order, a second notification to the same chat waits
    /// until the first is whole, and endless flood control is given up
    /// after MAX_ATTEMPTS.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_notification_resumes_at_its_first_unsent_part() {
        let chats = vec![ch("a"), ch("b"), ch("busy")];
        let (catalog, hub) = subscribed(&chats, "");
        let p = Arc::new(Parted {
            log: Mutex::new(Vec::new()),
            tries: Mutex::new(HashMap::new()),
        });
        hub.register(p.clone());
        let (stop, rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(Worker::new(hub.clone(), Arc::clone(&catalog), 4).run(rx));
        let n = hub.announce(None, "long one").unwrap().unwrap();
        let m = hub.announce(None, "next one").unwrap().unwrap();
        until("both done", 60, || {
            [n.id, m.id]
                .iter()
                .all(|id| hub.outbox.progress(*id).unwrap().unwrap().pending == 0)
        })
        .await;
        let log = p.log.lock().unwrap().clone();
        for chat in [ch("a"), ch("b")] {
            let parts: Vec<usize> = log
                .iter()
                .filter(|(c, _)| *c == chat)
                .map(|(_, i)| *i)
                .collect();
            assert_eq!(
                parts,
                [0, 1, 2, 0, 1, 2],
                "{chat}: each part once, whole notifications in turn"
            );
        }
        let busy = hub
            .outbox
            .deliveries_get(n.id, &ch("busy"))
            .unwrap()
            .unwrap();
        assert_eq!((busy.state, busy.attempts), (State::Failed, MAX_ATTEMPTS));
        let a = hub.outbox.deliveries_get(n.id, &ch("a")).unwrap().unwrap();
        assert_eq!((a.state, a.parts_sent), (State::Delivered, 3));
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .unwrap()
            .unwrap();
    }

    /// A chat of a platform this process does not serve fails at once
    /// (and the notification completes), rather than waiting forever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chat_no_transport_serves_fails_fast() {
        let room = ChatKey::matrix("!room:example.org");
        let chats = vec![ch("a"), room.clone()];
        let (catalog, hub) = subscribed(&chats, "");
        let fake = Arc::new(Fake {
            sent: Mutex::new(Vec::new()),
            flaky_once: Mutex::new(false),
        });
        hub.register(fake.clone());
        let (stop, rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(
            Worker::new(hub.clone(), Arc::clone(&catalog), 4)
                .serving(&[Platform::Telegram])
                .run(rx),
        );
        let n = hub.announce(None, "hello").unwrap().unwrap();
        until("done", 10, || {
            hub.outbox.progress(n.id).unwrap().unwrap().pending == 0
        })
        .await;
        let p = hub.outbox.progress(n.id).unwrap().unwrap();
        assert_eq!((p.delivered, p.failed), (1, 1));
        let d = hub.outbox.deliveries_get(n.id, &room).unwrap().unwrap();
        assert!(d.last_error.unwrap().contains("no transport"));
        // The subscription stays: configuring Matrix later serves it.
        assert_eq!(hub.subs.list().unwrap().len(), 2);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .unwrap()
            .unwrap();
    }

    struct Muted;

    impl Deliver for Muted {
        fn platform(&self) -> Platform {
            Platform::Telegram
        }
        fn parts(&self, _chat: &ChatKey, _reply: &Reply) -> usize {
            1
        }
        fn deliver<'a>(&'a self, _part: Part<'a>) -> BoxFuture<'a, Outcome> {
            Box::pin(async { Outcome::Blocked("muted".into()) })
        }
    }

    /// A chat that refuses the bot for now keeps its subscription and its
    /// delivery waits; after a day of refusals the subscription goes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refusing_chat_is_paused_then_dropped_after_a_day() {
        let chats = vec![ch("new"), ch("old")];
        let (catalog, hub) = subscribed(&chats, "");
        // tg:@old has refused since 25 hours ago.
        let day_ago = unix_ms() - 25 * 3600 * 1000;
        assert_eq!(
            hub.outbox.blocked_since(&ch("old"), day_ago).unwrap(),
            day_ago
        );
        hub.register(Arc::new(Muted));
        let (stop, rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(Worker::new(hub.clone(), Arc::clone(&catalog), 4).run(rx));
        let n = hub.announce(None, "hello").unwrap().unwrap();
        until("both tried", 10, || {
            hub.outbox
                .deliveries(n.id)
                .unwrap()
                .iter()
                .all(|d| d.last_error.is_some())
        })
        .await;
        let new = hub
            .outbox
            .deliveries_get(n.id, &ch("new"))
            .unwrap()
            .unwrap();
        assert_eq!(new.state, State::Pending, "{new:?}");
        assert!(
            new.next_at_ms >= unix_ms() + 5_000,
            "paused, not hammered: {new:?}"
        );
        let old = hub
            .outbox
            .deliveries_get(n.id, &ch("old"))
            .unwrap()
            .unwrap();
        assert_eq!(old.state, State::Failed, "{old:?}");
        let subs: Vec<ChatKey> = hub
            .subs
            .list()
            .unwrap()
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(subs, [ch("new")]);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn refusals_are_retried_less_and_less_often_and_given_up_after_a_day() {
        let t0 = 1_000_000_000;
        let s = 1000;
        assert_eq!(blocked_retry_at(t0, t0), Some(t0 + 10 * s));
        assert_eq!(blocked_retry_at(t0, t0 + 60 * s), Some(t0 + 90 * s));
        assert_eq!(
            blocked_retry_at(t0, t0 + 10 * 3600 * s),
            Some(t0 + 11 * 3600 * s),
            "at most an hour apart"
        );
        assert_eq!(blocked_retry_at(t0, t0 + 24 * 3600 * s), None);
    }

    #[test]
    fn a_part_keeps_its_idempotency_key_across_attempts_and_no_other_shares_it() {
        let r = Reply::new(crate::reply::ReplyKind::Info, Lang::En);
        let key = |n, chat, index| {
            Part {
                notification: n,
                chat,
                reply: &r,
                index,
            }
            .idempotency_key()
        };
        let (a, b) = (&ChatKey::matrix("!a:x"), &ChatKey::matrix("!b:x"));
        assert_eq!(key(7, a, 1), key(7, a, 1));
        // The same as before `ChatKey` (hashed from "7\nmx:!a:x\n1"): a
        // send retried across the upgrade keeps its transaction id.
        assert_eq!(key(7, a, 1), "factbot-n7-p1-88703cf094f4bb57c5789893");
        let all = [key(7, a, 1), key(7, a, 0), key(7, b, 1), key(8, a, 1)];
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), 4);
        assert!(all.iter().all(|k| k.len() <= 64 && k.is_ascii()));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(5), 16_000);
        assert_eq!(backoff_ms(30), 256_000);
    }
}
