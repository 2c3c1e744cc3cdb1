//! The delivery worker: sends due deliveries through each platform's
//! [`Deliver`], records the outcome durably, retries.
//!
//! Why it is built this way:
//! - at most `max_in_flight` sends at once, so a crash repeats at most that
//!   many (a delivery counts as finished only once its `delivered` mark is
//!   flushed);
//! - a failing or rate-limited chat is rescheduled, never waited for in a
//!   send slot, so one bad chat cannot hold up the others;
//! - each chat is paced by its platform's [`Deliver::chat_interval`] and has
//!   at most one send in flight, so a chat's notifications arrive in order;
//!   the platform-wide rate (Telegram's 30/s) is the deliverer's business
//!   (teloxide's `Throttle`, shared with interactive replies);
//! - what a chat receives is rendered at send time, in its language.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::task::JoinSet;

use super::outbox::{unix_ms, Delivery, Notification, State};
use super::Hub;
use crate::answer::Engine;
use crate::facts::Lang;
use crate::reply::Reply;

/// What became of one send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Flood control: try again after this long.
    RetryAfter(Duration),
    /// Network or server trouble: retry with backoff.
    Transient(String),
    /// The bot can no longer write there (blocked, kicked, left the room):
    /// the chat's subscription is dropped.
    Gone(String),
    /// The chat has a new key (Telegram group → supergroup): the
    /// subscription moves and the delivery goes there.
    Migrated(String),
    /// The platform refused the message itself; retrying cannot help.
    Rejected(String),
}

/// A platform's way to send a notification to one chat.
pub trait Deliver: Send + Sync {
    /// The chat-key prefix it serves: `tg` for `tg:-100123`, `mx` for `mx:!room:server`.
    fn platform(&self) -> &'static str;
    /// Sends `reply` to chat key `chat`; never panics, every failure is an [`Outcome`].
    fn deliver<'a>(&'a self, chat: &'a str, reply: &'a Reply) -> BoxFuture<'a, Outcome>;
    /// Least time between two deliveries to one chat.
    fn chat_interval(&self, _chat: &str) -> Duration {
        Duration::from_secs(1)
    }
    /// Least time between two deliveries on this platform, so a broadcast
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

/// Give up a transiently failing delivery after this many attempts.
pub const MAX_ATTEMPTS: u32 = 8;
/// A send taking longer is abandoned and retried.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);
/// How far behind its schedule a paced platform may catch up.
const CATCH_UP: Duration = Duration::from_millis(2);
/// Retried this long after an attempt found no deliverer for its platform.
const NO_DELIVERER_WAIT: u64 = 2_000;

fn backoff_ms(attempts: u32) -> u64 {
    (1_000u64 << attempts.saturating_sub(1).min(8)).min(300_000)
}

type Key = (u64, String);

/// The worker's state; see the module docs.
pub struct Worker {
    hub: Hub,
    engine: Arc<Engine>,
    max_in_flight: usize,
    /// (due, notification, chat) of every pending delivery not in flight.
    queue: BinaryHeap<Reverse<(u64, u64, String)>>,
    known: HashSet<Key>,
    busy: HashSet<String>,
    last_sent: HashMap<String, Instant>,
    /// Deliveries not yet final, per notification.
    outstanding: HashMap<u64, usize>,
    notifications: HashMap<u64, Arc<Notification>>,
    /// Per platform, when the next delivery may start.
    gates: HashMap<String, Instant>,
    /// Per platform, sends in flight.
    in_flight: HashMap<String, usize>,
}

impl Worker {
    pub fn new(hub: Hub, engine: Arc<Engine>, max_in_flight: usize) -> Worker {
        Worker {
            hub,
            engine,
            max_in_flight: max_in_flight.max(1),
            queue: BinaryHeap::new(),
            known: HashSet::new(),
            busy: HashSet::new(),
            last_sent: HashMap::new(),
            outstanding: HashMap::new(),
            notifications: HashMap::new(),
            gates: HashMap::new(),
            in_flight: HashMap::new(),
        }
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
                self.queue.push(Reverse((d.next_at_ms, nid, d.chat)));
                added += 1;
            }
        }
        if added > 0 {
            tracing::info!(deliveries = added, "notify: deliveries queued");
        }
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
        let mut tasks: JoinSet<(u64, String, Delivery, Option<Duration>)> = JoinSet::new();
        loop {
            if *stop.borrow() {
                break;
            }
            let now = unix_ms();
            // Launch what is due, while there are free slots.
            let mut later = Vec::new();
            let mut gated: Option<Instant> = None;
            while tasks.len() < self.max_in_flight {
                let Some(Reverse((due, _, chat))) = self.queue.peek() else {
                    break;
                };
                if *due > now {
                    break;
                }
                let platform = chat.split(':').next().unwrap_or("");
                if let Some(at) = self.gates.get(platform).filter(|at| **at > Instant::now()) {
                    gated = Some(*at);
                    break;
                }
                let cap = self
                    .hub
                    .deliverer(chat)
                    .map_or(usize::MAX, |d| d.max_in_flight());
                if self.in_flight.get(platform).copied().unwrap_or(0) >= cap {
                    // A send of this platform finishing wakes the loop.
                    gated = Some(Instant::now() + Duration::from_secs(60));
                    break;
                }
                let Some(Reverse((_, nid, chat))) = self.queue.pop() else {
                    break;
                };
                match self.launch(nid, &chat, now, &mut tasks) {
                    Launch::Started | Launch::Dropped => {}
                    Launch::Later(at) => later.push(Reverse((at, nid, chat))),
                }
            }
            self.queue.extend(later);
            let mut wait = Duration::from_millis(
                self.queue
                    .peek()
                    .map(|Reverse((due, _, _))| due.saturating_sub(unix_ms()))
                    .unwrap_or(60_000)
                    .clamp(5, 60_000),
            );
            if let Some(at) = gated {
                wait = at.saturating_duration_since(Instant::now());
            }
            let full = tasks.len() >= self.max_in_flight;
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok((nid, was, d, pause)) = done { self.finished(nid, &was, d, pause); }
                }
                _ = self.hub.inner.wake.notified() => {
                    let fresh: Vec<u64> = std::mem::take(&mut *self.hub.inner.fresh.lock().unwrap_or_else(|p| p.into_inner()));
                    for id in fresh { self.load(Some(id)); }
                }
                _ = tokio::time::sleep(wait), if !full => {}
                _ = stop.changed() => {}
            }
        }
        let grace = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(done) = tasks.join_next().await {
                if let Ok((nid, was, d, pause)) = done {
                    self.finished(nid, &was, d, pause);
                }
            }
        });
        if grace.await.is_err() {
            tracing::warn!(
                "notify: sends still in flight at shutdown; they are retried after the restart"
            );
        }
        tracing::info!("notify: worker stopped");
    }

    fn launch(
        &mut self,
        nid: u64,
        chat: &str,
        now: u64,
        tasks: &mut JoinSet<(u64, String, Delivery, Option<Duration>)>,
    ) -> Launch {
        let d = match self.hub.outbox.deliveries_get(nid, chat) {
            Ok(Some(d)) if d.state == State::Pending => d,
            Ok(_) => {
                self.forget(nid, chat);
                return Launch::Dropped;
            }
            Err(e) => {
                tracing::error!(error = %e, "notify: cannot read a delivery");
                return Launch::Later(now + 5_000);
            }
        };
        let Some(deliverer) = self.hub.deliverer(&d.target) else {
            return Launch::Later(now + NO_DELIVERER_WAIT);
        };
        if self.busy.contains(&d.target) {
            return Launch::Later(now + 200);
        }
        let interval = deliverer.chat_interval(&d.target);
        if let Some(last) = self.last_sent.get(&d.target) {
            let since = last.elapsed();
            if since < interval {
                return Launch::Later(now + (interval - since).as_millis() as u64 + 1);
            }
        }
        let Some(n) = self.notification(nid) else {
            tracing::error!(
                id = nid,
                "notify: delivery of an unknown notification dropped"
            );
            self.forget(nid, chat);
            return Launch::Dropped;
        };
        let gap = deliverer.min_gap();
        if !gap.is_zero() {
            let now = Instant::now();
            let prev = self.gates.get(deliverer.platform()).copied().unwrap_or(now);
            // Absorb timer lateness (a millisecond or two) to keep the
            // rate, but never catch up after a stall: two sends close
            // together are what trips a sliding-window flood control.
            let from = prev.max(now.checked_sub(CATCH_UP).unwrap_or(now));
            self.gates
                .insert(deliverer.platform().to_string(), from + gap);
        }
        *self
            .in_flight
            .entry(deliverer.platform().to_string())
            .or_default() += 1;
        self.busy.insert(d.target.clone());
        let hub = self.hub.clone();
        let engine = Arc::clone(&self.engine);
        tasks.spawn(attempt(hub, engine, deliverer, n, d));
        Launch::Started
    }

    fn forget(&mut self, nid: u64, chat: &str) {
        if self.known.remove(&(nid, chat.to_string())) {
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

    fn finished(&mut self, nid: u64, was: &str, d: Delivery, pause: Option<Duration>) {
        self.busy.remove(was);
        self.last_sent.insert(was.to_string(), Instant::now());
        if let Some(n) = self.in_flight.get_mut(was.split(':').next().unwrap_or("")) {
            *n = n.saturating_sub(1);
        }
        if let Some(p) = pause {
            // Flood control is per bot: hold every delivery of the platform.
            let platform = was.split(':').next().unwrap_or("").to_string();
            let until = Instant::now() + p;
            let gate = self.gates.entry(platform).or_insert(until);
            *gate = (*gate).max(until);
        }
        if d.state == State::Pending {
            self.queue.push(Reverse((d.next_at_ms, nid, d.chat)));
        } else {
            self.known.remove(&(nid, d.chat.clone()));
            self.settle(nid);
        }
    }
}

enum Launch {
    Started,
    Later(u64),
    Dropped,
}

/// One send and its durable outcome.
async fn attempt(
    hub: Hub,
    engine: Arc<Engine>,
    deliverer: Arc<dyn Deliver>,
    n: Arc<Notification>,
    mut d: Delivery,
) -> (u64, String, Delivery, Option<Duration>) {
    let was = d.target.clone();
    let mut pause = None;
    let lang = engine
        .store()
        .chat_settings(&d.target)
        .ok()
        .and_then(|s| s.lang)
        .unwrap_or(Lang::En);
    let reply = n.content.render(lang, &engine.catalog());
    let outcome = tokio::time::timeout(SEND_TIMEOUT, deliverer.deliver(&d.target, &reply))
        .await
        .unwrap_or_else(|_| Outcome::Transient("timed out".into()));
    d.attempts += 1;
    let now = unix_ms();
    match outcome {
        Outcome::Delivered => {
            d.state = State::Delivered;
            d.last_error = None;
        }
        Outcome::RetryAfter(wait) => {
            tracing::warn!(id = n.id, chat = %d.target, ?wait, "notify: flood control, retrying later");
            d.next_at_ms = now + wait.as_millis() as u64;
            d.last_error = Some(format!("retry after {wait:?}"));
            pause = Some(wait);
        }
        Outcome::Transient(e) if d.attempts < MAX_ATTEMPTS => {
            tracing::warn!(id = n.id, chat = %d.target, attempt = d.attempts, error = %e, "notify: send failed, retrying");
            d.next_at_ms = now + backoff_ms(d.attempts);
            d.last_error = Some(e);
        }
        Outcome::Transient(e) | Outcome::Rejected(e) => {
            tracing::error!(id = n.id, chat = %d.target, attempts = d.attempts, error = %e, "notify: delivery failed");
            d.state = State::Failed;
            d.last_error = Some(e);
        }
        Outcome::Gone(e) => {
            match hub.subs.remove(&d.target) {
                Ok(_) => {
                    tracing::warn!(id = n.id, chat = %d.target, error = %e, "notify: the bot cannot write to this chat any more; its subscription is dropped")
                }
                Err(se) => {
                    tracing::error!(chat = %d.target, error = %se, "notify: cannot drop a subscription")
                }
            }
            d.state = State::Failed;
            d.last_error = Some(format!("gone: {e}"));
        }
        Outcome::Migrated(to) if d.attempts < MAX_ATTEMPTS && to != d.target => {
            tracing::info!(id = n.id, from = %d.target, to = %to, "notify: chat migrated; subscription moved");
            move_chat(&hub, &engine, &d.target, &to);
            d.target = to;
            d.next_at_ms = now;
        }
        Outcome::Migrated(to) => {
            d.state = State::Failed;
            d.last_error = Some(format!("migrated again, to {to}"));
        }
    }
    if let Err(e) = hub.outbox.update(n.id, &d) {
        tracing::error!(error = %e, "notify: cannot record a delivery");
    }
    if let Err(e) = hub.outbox.flush().await {
        tracing::error!(error = %e, "notify: cannot flush the outbox");
    }
    if d.state == State::Delivered {
        tracing::debug!(id = n.id, chat = %d.target, "notify: delivered");
    }
    (n.id, was, d, pause)
}

/// Moves a chat's subscription and settings to its new key.
pub fn move_chat(hub: &Hub, engine: &Engine, from: &str, to: &str) {
    if let Err(e) = hub.subs.move_chat(from, to) {
        tracing::error!(from, to, error = %e, "notify: cannot move a subscription");
    }
    if let Ok(s) = engine.store().chat_settings(from) {
        if s.lang.is_some() {
            let _ = engine.store().set_chat_settings(to, &s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Dataset, Store};
    use crate::notify::subscriptions::parse_topics;
    use std::sync::Mutex;

    /// A platform whose chats answer as scripted; records what it sent.
    struct Fake {
        sent: Mutex<Vec<String>>,
        flaky_once: Mutex<bool>,
    }

    impl Deliver for Fake {
        fn platform(&self) -> &'static str {
            "fk"
        }
        fn chat_interval(&self, _chat: &str) -> Duration {
            Duration::ZERO
        }
        fn deliver<'a>(&'a self, chat: &'a str, reply: &'a Reply) -> BoxFuture<'a, Outcome> {
            Box::pin(async move {
                match chat {
                    "fk:gone" => Outcome::Gone("kicked".into()),
                    "fk:old" => Outcome::Migrated("fk:new".into()),
                    "fk:flaky"
                        if std::mem::replace(&mut *self.flaky_once.lock().unwrap(), false) =>
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
        let engine = Arc::new(Engine::new(store).unwrap());
        let hub = engine.hub().clone();
        let all = parse_topics("").unwrap();
        for c in ["fk:a", "fk:gone", "fk:old", "fk:flaky"] {
            hub.subs.subscribe(c, &all).unwrap();
        }
        engine
            .store()
            .set_chat_settings(
                "fk:a",
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
        let worker = tokio::spawn(Worker::new(hub.clone(), Arc::clone(&engine), 4).run(rx));
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
            sent[0].starts_with("fk:a ОБЪЯВЛЕНИЕ"),
            "rendered in the chat's language: {sent:?}"
        );
        assert!(sent[1].starts_with("fk:flaky ANNOUNCEMENT"));
        assert!(sent[2].starts_with("fk:new ANNOUNCEMENT"));
        // Gone: unsubscribed. Migrated: the subscription moved.
        let subs: Vec<String> = hub
            .subs
            .list()
            .unwrap()
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(subs, ["fk:a", "fk:flaky", "fk:new"]);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(5), 16_000);
        assert_eq!(backoff_ms(30), 256_000);
    }
}
