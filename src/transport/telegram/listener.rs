//! Long polling that confirms an update only after it was handled.
//!
//! teloxide's own `Polling` confirms a batch (the next `getUpdates` offset)
//! as soon as it has handed the updates to the dispatcher, so a crash loses
//! the updates still queued. This listener asks Telegram for updates from the
//! oldest one not yet handled; updates it already handed out are not handed
//! out again. Together with [`Handled`] — the ids of updates answered, kept
//! in sled until Telegram stops sending them — a kill -9 and restart neither
//! loses an update nor answers one twice (short of a kill between sending a
//! reply and recording it, which repeats that one reply).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use teloxide::prelude::*;
use teloxide::stop::{mk_stop_token, StopFlag, StopToken};
use teloxide::types::{AllowedUpdate, Update};
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use teloxide::RequestError;
use tokio::sync::Notify;

/// Seconds a `getUpdates` call waits for an update.
const POLL_TIMEOUT: u32 = 25;
/// Longest wait between retries when polling fails.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Which updates have been handed out and which are done.
#[derive(Default)]
pub struct Acks {
    state: Mutex<AckState>,
    /// Woken whenever an update is done.
    progress: Notify,
}

#[derive(Default)]
struct AckState {
    /// Handed out, not yet done.
    in_flight: BTreeSet<i32>,
    /// The highest update id handed out.
    max_seen: Option<i32>,
}

impl Acks {
    fn lock(&self) -> std::sync::MutexGuard<'_, AckState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an update as handed out; false if it already was.
    fn hand_out(&self, id: i32) -> bool {
        let mut s = self.lock();
        if s.max_seen.is_some_and(|m| id <= m) {
            return false;
        }
        s.max_seen = Some(id);
        s.in_flight.insert(id);
        true
    }

    /// Marks an update done (answered, ignored or failed for good).
    pub fn done(&self, id: i32) {
        self.lock().in_flight.remove(&id);
        self.progress.notify_waiters();
    }

    /// The offset to ask Telegram for: the oldest update not yet done.
    pub fn offset(&self) -> i32 {
        let s = self.lock();
        match (s.in_flight.first(), s.max_seen) {
            (Some(&first), _) => first,
            (None, Some(max)) => max + 1,
            (None, None) => 0,
        }
    }

    fn busy(&self) -> bool {
        !self.lock().in_flight.is_empty()
    }
}

/// Update ids already answered, persisted so a restart does not answer
/// them again when Telegram re-sends them.
#[derive(Clone)]
pub struct Handled {
    tree: sled::Tree,
}

impl Handled {
    pub fn new(tree: sled::Tree) -> Handled {
        Handled { tree }
    }

    pub fn contains(&self, id: i32) -> bool {
        self.tree.contains_key(id.to_be_bytes()).unwrap_or(false)
    }

    /// Records an update as answered; durable before it returns.
    pub fn insert(&self, id: i32) {
        let res = self
            .tree
            .insert(id.to_be_bytes(), &[])
            .and_then(|_| self.tree.flush().map(|_| ()));
        if let Err(e) = res {
            tracing::error!(update_id = id, error = %e, "cannot record a handled update");
        }
    }

    /// Forgets ids below `offset`: Telegram never sends those again.
    pub fn prune_below(&self, offset: i32) {
        // Update ids are positive; big-endian keys sort like the numbers.
        for key in self
            .tree
            .range(..offset.max(0).to_be_bytes())
            .keys()
            .flatten()
        {
            let _ = self.tree.remove(key);
        }
    }
}

/// The listener. Build it, pass it to `Dispatcher::dispatch_with_listener`.
pub struct AckPolling<B> {
    bot: B,
    acks: Arc<Acks>,
    handled: Handled,
    stop: Option<(StopToken, StopFlag)>,
    allowed: Vec<AllowedUpdate>,
}

impl<B> AckPolling<B> {
    pub fn new(bot: B, acks: Arc<Acks>, handled: Handled) -> Self {
        AckPolling {
            bot,
            acks,
            handled,
            stop: Some(mk_stop_token()),
            allowed: vec![
                AllowedUpdate::Message,
                AllowedUpdate::CallbackQuery,
                AllowedUpdate::InlineQuery,
            ],
        }
    }
}

impl<B> UpdateListener for AckPolling<B>
where
    B: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    B::GetUpdates: Send,
{
    type Err = RequestError;

    fn stop_token(&mut self) -> StopToken {
        if self.stop.is_none() {
            self.stop = Some(mk_stop_token());
        }
        match &self.stop {
            Some((t, _)) => t.clone(),
            None => mk_stop_token().0,
        }
    }

    fn hint_allowed_updates(&mut self, _hint: &mut dyn Iterator<Item = AllowedUpdate>) {
        // We ask for exactly the updates we have handlers for.
    }
}

struct PollState<B> {
    bot: B,
    acks: Arc<Acks>,
    handled: Handled,
    flag: StopFlag,
    allowed: Vec<AllowedUpdate>,
    buffer: std::collections::VecDeque<Update>,
    backoff: Duration,
    stopped: bool,
}

impl<'a, B> AsUpdateStream<'a> for AckPolling<B>
where
    B: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    B::GetUpdates: Send,
{
    type StreamErr = RequestError;
    type Stream = BoxStream<'a, Result<Update, RequestError>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        let (_, flag) = self.stop.take().unwrap_or_else(mk_stop_token);
        let state = PollState {
            bot: self.bot.clone(),
            acks: Arc::clone(&self.acks),
            handled: self.handled.clone(),
            flag,
            allowed: self.allowed.clone(),
            buffer: Default::default(),
            backoff: Duration::from_millis(500),
            stopped: false,
        };
        stream::unfold(state, next_update).boxed()
    }
}

async fn next_update<B>(
    mut st: PollState<B>,
) -> Option<(Result<Update, RequestError>, PollState<B>)>
where
    B: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    B::GetUpdates: Send,
{
    loop {
        if let Some(u) = st.buffer.pop_front() {
            return Some((Ok(u), st));
        }
        if st.stopped || st.flag.is_stopped() {
            return None;
        }
        let offset = st.acks.offset();
        let req = st
            .bot
            .get_updates()
            .offset(offset)
            .timeout(POLL_TIMEOUT)
            .allowed_updates(st.allowed.clone());
        let res = tokio::select! {
            r = req.send() => r,
            _ = &mut st.flag => { st.stopped = true; continue; }
        };
        match res {
            Ok(updates) => {
                st.backoff = Duration::from_millis(500);
                st.handled.prune_below(offset);
                let fresh: Vec<Update> = updates
                    .into_iter()
                    .filter(|u| st.acks.hand_out(u.id.0 as i32))
                    .collect();
                if fresh.is_empty() && st.acks.busy() {
                    // Telegram re-sent only updates still being handled:
                    // wait for progress instead of asking again at once.
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        st.acks.progress.notified(),
                    )
                    .await;
                }
                st.buffer.extend(fresh);
            }
            Err(e) => {
                let wait = st.backoff;
                st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
                tracing::warn!(error = %e, retry_in = ?wait, "telegram: getUpdates failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = &mut st.flag => { st.stopped = true; }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_waits_for_the_oldest_update_in_flight() {
        let a = Acks::default();
        assert_eq!(a.offset(), 0);
        assert!(a.hand_out(10) && a.hand_out(11) && a.hand_out(12));
        assert!(!a.hand_out(11), "never handed out twice");
        assert_eq!(a.offset(), 10);
        a.done(11);
        assert_eq!(a.offset(), 10);
        a.done(10);
        assert_eq!(a.offset(), 12);
        a.done(12);
        assert_eq!(a.offset(), 13);
    }

    #[test]
    fn handled_ids_persist_and_prune() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let h = Handled::new(db.open_tree("h").unwrap());
        for id in [5, 6, 300] {
            h.insert(id);
        }
        assert!(h.contains(6));
        h.prune_below(7);
        assert!(!h.contains(5) && !h.contains(6) && h.contains(300));
    }
}
