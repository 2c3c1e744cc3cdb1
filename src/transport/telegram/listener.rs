//! Long polling with a durable inbox: no update is lost or answered twice.
//!
//! teloxide's own `Polling` confirms a batch (the next `getUpdates` offset)
//! as soon as it has handed the updates to the dispatcher, so a crash loses
//! the updates still queued. Here every batch is written to an inbox in sled
//! (one flush per batch) *before* Telegram is told to forget it; an update
//! leaves the inbox once answered ([`Inbox::done`]), made durable by one
//! flush per group of answers ([`GROUP_COMMIT`]). After a crash or `kill -9`
//! the next start replays what is still in the inbox, and skips anything
//! Telegram re-sends that the inbox already took in. Only a kill between
//! sending a reply and that flush (milliseconds) repeats the reply.
//!
//! Asking Telegram from the newest update (not from the oldest one still
//! being handled) also means a poll never downloads the updates the throttle
//! is still holding replies for.

use std::collections::VecDeque;
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
/// How long answered records gather before one flush makes them durable.
pub const GROUP_COMMIT: Duration = Duration::from_millis(20);
/// Key (in the inbox tree) of the highest update id ever taken in.
const HIGH_WATER: &[u8] = b"high_water";

/// Updates received and not yet answered, in sled.
#[derive(Clone)]
pub struct Inbox {
    tree: sled::Tree,
    /// Answered update ids removed but not yet flushed; the flusher task
    /// makes them durable together (one fsync for many answers).
    answered: Arc<Mutex<Vec<i32>>>,
    wake: Arc<Notify>,
}

fn key(id: i32) -> [u8; 5] {
    // A prefix keeps update keys apart from `HIGH_WATER`; big-endian ids
    // (always positive) sort in arrival order.
    let b = id.to_be_bytes();
    [b'u', b[0], b[1], b[2], b[3]]
}

impl Inbox {
    pub fn new(tree: sled::Tree) -> Inbox {
        Inbox {
            tree,
            answered: Arc::default(),
            wake: Arc::default(),
        }
    }

    /// The highest update id taken in so far (0 when none).
    pub fn high_water(&self) -> i32 {
        self.tree
            .get(HIGH_WATER)
            .ok()
            .flatten()
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(i32::from_be_bytes)
            .unwrap_or(0)
    }

    /// Takes in a batch: stores the updates newer than the high-water mark,
    /// durably, and returns them. Telegram may forget them after this.
    pub fn take_in(&self, updates: Vec<Update>) -> Result<Vec<Update>, sled::Error> {
        let high = self.high_water();
        let fresh: Vec<Update> = updates
            .into_iter()
            .filter(|u| u.id.0 as i32 > high)
            .collect();
        let Some(max) = fresh.iter().map(|u| u.id.0 as i32).max() else {
            return Ok(fresh);
        };
        let mut batch = sled::Batch::default();
        for u in &fresh {
            match serde_json::to_vec(u) {
                Ok(json) => batch.insert(&key(u.id.0 as i32), json),
                Err(e) => {
                    tracing::error!(update_id = u.id.0, error = %e, "telegram: cannot store an update")
                }
            }
        }
        batch.insert(HIGH_WATER, &max.to_be_bytes());
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(fresh)
    }

    /// Updates taken in but not answered (after a crash), oldest first.
    pub fn pending(&self) -> Vec<Update> {
        self.tree
            .scan_prefix(b"u")
            .values()
            .filter_map(|v| v.ok())
            .filter_map(|v| match serde_json::from_slice::<Update>(&v) {
                Ok(u) => Some(u),
                Err(e) => {
                    tracing::error!(error = %e, "telegram: dropping an unreadable stored update");
                    None
                }
            })
            .collect()
    }

    /// Records an update as answered. It becomes durable at the flusher's
    /// next round (within [`GROUP_COMMIT`]); a kill before then repeats
    /// that reply after the restart, never loses one.
    /// An update that never passed through the inbox (webhook mode) costs
    /// nothing here.
    pub fn done(&self, id: i32) {
        match self.tree.remove(key(id)) {
            Ok(Some(_)) => {
                lock(&self.answered).push(id);
                self.wake.notify_one();
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(update_id = id, error = %e, "telegram: cannot record an answered update")
            }
        }
    }

    /// Makes answered records durable; logs each once it is.
    pub fn flush_answered(&self) {
        let ids = std::mem::take(&mut *lock(&self.answered));
        if ids.is_empty() {
            return;
        }
        match self.tree.flush() {
            Ok(_) => {
                for id in ids {
                    tracing::debug!(update_id = id, "telegram: update answered");
                }
            }
            Err(e) => tracing::error!(error = %e, "telegram: cannot flush answered updates"),
        }
    }

    /// Runs until the process ends: flushes answered records in groups.
    pub async fn flusher(self) {
        loop {
            self.wake.notified().await;
            tokio::time::sleep(GROUP_COMMIT).await;
            let inbox = self.clone();
            let _ = tokio::task::spawn_blocking(move || inbox.flush_answered()).await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The listener. Build it, pass it to `Dispatcher::dispatch_with_listener`.
pub struct InboxPolling<B> {
    bot: B,
    inbox: Inbox,
    stop: Option<(StopToken, StopFlag)>,
}

impl<B> InboxPolling<B> {
    pub fn new(bot: B, inbox: Inbox) -> Self {
        InboxPolling {
            bot,
            inbox,
            stop: Some(mk_stop_token()),
        }
    }
}

impl<B> UpdateListener for InboxPolling<B>
where
    B: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    B::GetUpdates: Send,
{
    type Err = RequestError;

    fn stop_token(&mut self) -> StopToken {
        match &self.stop {
            Some((t, _)) => t.clone(),
            None => {
                let pair = mk_stop_token();
                let t = pair.0.clone();
                self.stop = Some(pair);
                t
            }
        }
    }

    fn hint_allowed_updates(&mut self, _hint: &mut dyn Iterator<Item = AllowedUpdate>) {
        // We ask for exactly the updates we have handlers for.
    }
}

struct PollState<B> {
    bot: B,
    inbox: Inbox,
    flag: StopFlag,
    buffer: VecDeque<Update>,
    backoff: Duration,
    stopped: bool,
}

impl<'a, B> AsUpdateStream<'a> for InboxPolling<B>
where
    B: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    B::GetUpdates: Send,
{
    type StreamErr = RequestError;
    type Stream = BoxStream<'a, Result<Update, RequestError>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        let (_, flag) = self.stop.take().unwrap_or_else(mk_stop_token);
        let replay = self.inbox.pending();
        if !replay.is_empty() {
            tracing::info!(
                count = replay.len(),
                "telegram: answering updates received before a restart"
            );
        }
        let state = PollState {
            bot: self.bot.clone(),
            inbox: self.inbox.clone(),
            flag,
            buffer: replay.into(),
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
        // Everything up to the high-water mark is safe in the inbox.
        let offset = st.inbox.high_water() + 1;
        let req = st
            .bot
            .get_updates()
            .offset(offset)
            .timeout(POLL_TIMEOUT)
            .allowed_updates(vec![
                AllowedUpdate::Message,
                AllowedUpdate::CallbackQuery,
                AllowedUpdate::InlineQuery,
            ]);
        let res = tokio::select! {
            r = req.send() => r,
            _ = &mut st.flag => { st.stopped = true; continue; }
        };
        let err = match res.map(|ups| st.inbox.take_in(ups)) {
            Ok(Ok(fresh)) => {
                st.backoff = Duration::from_millis(500);
                st.buffer.extend(fresh);
                continue;
            }
            Ok(Err(e)) => format!("cannot store updates: {e}"),
            Err(e) => e.to_string(),
        };
        let wait = st.backoff;
        st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
        tracing::warn!(error = %err, retry_in = ?wait, "telegram: getUpdates failed");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut st.flag => { st.stopped = true; }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: i32) -> Update {
        serde_json::from_value(serde_json::json!({
            "update_id": id,
            "message": {"message_id": id, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "hi"}
        }))
        .unwrap()
    }

    #[test]
    fn takes_in_once_replays_until_done_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let inbox = Inbox::new(db.open_tree("inbox").unwrap());
            assert_eq!(inbox.high_water(), 0);
            let fresh = inbox.take_in(vec![update(5), update(6)]).unwrap();
            assert_eq!(fresh.len(), 2);
            // Telegram re-sends 6 (not yet confirmed) with a new 7.
            let fresh = inbox.take_in(vec![update(6), update(7)]).unwrap();
            assert_eq!(fresh.iter().map(|u| u.id.0).collect::<Vec<_>>(), [7]);
            inbox.done(5);
            inbox.flush_answered();
            assert_eq!(inbox.high_water(), 7);
        }
        // sled's flusher thread releases the file lock shortly after the
        // last handle is dropped; under load that takes a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match sled::open(dir.path()) {
                Ok(db) => break db,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("cannot reopen the inbox: {e}"),
            }
        };
        let inbox = Inbox::new(db.open_tree("inbox").unwrap());
        let pending: Vec<u32> = inbox.pending().iter().map(|u| u.id.0).collect();
        assert_eq!(pending, [6, 7]);
        assert_eq!(inbox.high_water(), 7);
    }
}
