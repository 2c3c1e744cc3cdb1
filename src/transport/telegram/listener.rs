//! The durable inbox both modes store updates in until they are answered,
//! and long polling through it: no update is lost or answered twice.
//! (Webhook mode stores each update before answering Telegram's call, see
//! [`super::webhook`].)
//!
//! teloxide's own `Polling` confirms a batch (the next `getUpdates` offset)
//! as soon as it has handed the updates to the dispatcher, so a crash loses
//! the updates still queued. Here every batch is written to the durable
//! inbox ([`crate::transport::inbox`], one flush per batch) *before*
//! Telegram is told to forget it; an update leaves the inbox once answered
//! ([`Inbox::done`]), made durable by one flush per group of answers
//! ([`inbox::GROUP_COMMIT`]). After a crash or `kill -9`
//! the next start replays what is still in the inbox, and skips anything
//! Telegram re-sends that the inbox still holds. Only a kill between
//! sending a reply and that flush (milliseconds) repeats the reply.
//!
//! Asking Telegram from the newest update (not from the oldest one still
//! being handled) also means a poll never downloads the updates the throttle
//! is still holding replies for.
//!
//! Update ids are not a clock: after a week without updates Telegram picks
//! the next id at random, below or above the last one. Telegram's queue then
//! ignores an offset far from its ids and returns the new updates anyway (an
//! offset is "in the future" above the next id + 10; tdlib `TQueue::get`). So
//! the inbox never filters by id: it takes in whatever a poll returns (less
//! what it still holds) and asks next from the last batch's highest id + 1,
//! which confirms that batch whichever way the ids moved. A filter on "newer
//! than the highest id ever seen" would drop every update after a jump down,
//! forever, with the poll returning the same update again at once (a busy
//! loop). Only a jump down to within 10 of the old ids (about 1 in 10^8) is
//! lost: Telegram then honours the old offset and forgets the new update.

use std::collections::VecDeque;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use teloxide::prelude::*;
use teloxide::stop::{mk_stop_token, StopFlag, StopToken};
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use teloxide::RequestError;

use crate::facts::{StoreError, Tree};
use crate::ops::record as ops;
use crate::retry;
use crate::transport::inbox;

/// Seconds a `getUpdates` call waits for an update.
const POLL_TIMEOUT: u32 = 25;
/// How long the polling HTTP client waits for an answer: the long poll plus
/// room for a slow network. teloxide's default client gives up after 17 s,
/// so with a 25 s poll every idle poll failed ("A network error"), logged a
/// warning and backed off (0.5 s doubling to 30 s), and a question asked
/// meanwhile waited up to the backoff. Only polling uses this client;
/// sends keep teloxide's 17 s.
pub const POLL_HTTP_TIMEOUT: Duration = Duration::from_secs(POLL_TIMEOUT as u64 + 15);
/// Key (in the inbox tree) of the highest update id of the last batch taken
/// in: polling asks from the next one. (The key's name is from when it was
/// the highest id ever seen.)
const MARK: &[u8] = b"high_water";

/// Updates received and not yet answered: the shared durable inbox
/// ([`crate::transport::inbox`]) holding Telegram's updates, in tree
/// `telegram_inbox` as before (`u` + the big-endian id → the update's
/// JSON, and the mark).
pub type Inbox = inbox::Inbox<Update>;

impl inbox::Record for Update {
    const TRANSPORT: ops::Transport = ops::Transport::Telegram;
    const PENDING: Tree = Tree::TelegramInbox;
    const POSITION: (Tree, &'static [u8]) = (Tree::TelegramInbox, MARK);
    /// None: the next offset confirms a batch, and Telegram never sends an
    /// update again once confirmed.
    const ANSWERED: Option<Tree> = None;
    const PREFIX: &'static [u8] = b"u";

    fn key(&self) -> Vec<u8> {
        key(self.id.0 as i32).to_vec()
    }

    fn recorded(key: &[u8]) {
        if let Some(id) = key.get(1..5).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
            tracing::debug!(
                update_id = i32::from_be_bytes(id),
                "telegram: update answered"
            );
        }
    }
}

fn key(id: i32) -> [u8; 5] {
    // A prefix keeps update keys apart from `MARK`; big-endian ids (always
    // positive) sort by id.
    let b = id.to_be_bytes();
    [b'u', b[0], b[1], b[2], b[3]]
}

/// Telegram's side of the inbox: polling's mark, unreadable updates.
impl Inbox {
    /// The highest update id of the last batch taken in (0 when none).
    pub fn mark(&self) -> i32 {
        self.position()
            .ok()
            .flatten()
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(i32::from_be_bytes)
            .unwrap_or(0)
    }

    /// Takes in a batch a poll returned: stores the updates the inbox does
    /// not already hold, durably, moves the mark to the batch's highest id
    /// (down as well as up), and returns the new ones. Telegram may forget
    /// the batch after this. Blocks on the disk: from async code use
    /// [`Inbox::take_in_async`].
    pub fn take_in(&self, updates: Vec<Update>) -> Result<Vec<Update>, StoreError> {
        match polled(updates) {
            Some((readable, mark)) => self.put(readable, Some(mark)),
            None => Ok(Vec::new()),
        }
    }

    /// [`Inbox::take_in`] on a blocking thread.
    pub async fn take_in_async(&self, updates: Vec<Update>) -> Result<Vec<Update>, StoreError> {
        match polled(updates) {
            Some((readable, mark)) => self.put_async(readable, Some(mark)).await,
            None => Ok(Vec::new()),
        }
    }

    /// Takes in an update Telegram pushed (webhook mode): stores it unless
    /// the inbox already holds it, durably, and returns it if new. The mark
    /// (polling's) is left alone.
    pub fn take_in_pushed(&self, update: Update) -> Result<Option<Update>, StoreError> {
        let readable = readable(vec![update]);
        Ok(self.put(readable, None)?.pop())
    }

    /// [`Inbox::take_in_pushed`] on a blocking thread.
    pub async fn take_in_pushed_async(&self, update: Update) -> Result<Option<Update>, StoreError> {
        let readable = readable(vec![update]);
        Ok(self.put_async(readable, None).await?.pop())
    }

    /// Updates taken in but not answered (after a crash), by id. Stored
    /// updates that cannot be read (an older version kept them) are removed.
    pub fn pending(&self) -> Vec<Update> {
        let mut out = Vec::new();
        for (k, u) in self.waiting() {
            if unreadable(&u) {
                self.forget(&k);
            } else {
                out.push(u);
            }
        }
        out
    }

    /// Records an update as answered ([`inbox::Inbox::answered`]: no I/O
    /// here, durable within [`inbox::GROUP_COMMIT`]).
    pub fn done(&self, id: i32) {
        self.answered(key(id).to_vec());
    }
}

/// A polled batch's readable updates and the mark it moves to (its highest
/// id, unreadable ones included); `None` for an empty batch.
fn polled(updates: Vec<Update>) -> Option<(Vec<Update>, Vec<u8>)> {
    let last = updates.iter().map(|u| u.id.0 as i32).max()?;
    Some((readable(updates), last.to_be_bytes().to_vec()))
}

fn readable(updates: Vec<Update>) -> Vec<Update> {
    updates.into_iter().filter(|u| !unreadable(u)).collect()
}

/// An update teloxide could not read (a kind of update or a field newer
/// than it, or a malformed one): it can never be handled, so it is logged
/// and dropped where it arrives — never stored, never dispatched, never
/// replayed. teloxide keeps only its id.
fn unreadable(u: &Update) -> bool {
    let bad = matches!(u.kind, UpdateKind::Error(_));
    if bad {
        tracing::error!(
            update_id = u.id.0,
            "telegram: an update cannot be read (a kind or field this version does not know); dropped"
        );
    }
    bad
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
    /// Pauses after failed polls ([`retry::TELEGRAM_POLL`]), started over
    /// once a batch is taken in.
    pauses: retry::Pauses,
    stopped: bool,
}

impl<'a, B> AsUpdateStream<'a> for InboxPolling<B>
where
    B: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    B::GetUpdates: Send,
{
    type StreamErr = RequestError;
    type Stream = BoxStream<'a, Result<Update, RequestError>>;

    /// New updates only: what the inbox still holds from before a restart
    /// is the dispatcher's to replay ([`Inbox::pending`]).
    fn as_stream(&'a mut self) -> Self::Stream {
        let (_, flag) = self.stop.take().unwrap_or_else(mk_stop_token);
        let state = PollState {
            bot: self.bot.clone(),
            inbox: self.inbox.clone(),
            flag,
            buffer: VecDeque::new(),
            pauses: retry::TELEGRAM_POLL.pauses(),
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
        // The last batch is safe in the inbox: this offset confirms it.
        let offset = st.inbox.mark() + 1;
        let polled = tokio::select! {
            r = poll(&st.bot, offset) => r,
            _ = &mut st.flag => { st.stopped = true; continue; }
        };
        match take_in(&st.inbox, offset, polled).await {
            Ok(fresh) => {
                st.pauses = retry::TELEGRAM_POLL.pauses();
                st.buffer.extend(fresh);
            }
            Err(err) => {
                let wait = st.pauses.next_or_last();
                ops::retry(ops::Transport::Telegram, ops::Path::Poll);
                tracing::warn!(error = %err, retry_in = ?wait, "telegram: getUpdates failed");
                st.stopped = retry::pause(wait, &mut st.flag).await;
            }
        }
    }
}

/// One `getUpdates` from `offset`; the outcome recorded for `/healthz`.
async fn poll<B>(bot: &B, offset: i32) -> Result<Vec<Update>, RequestError>
where
    B: Requester<Err = RequestError>,
{
    let res = bot
        .get_updates()
        .offset(offset)
        .timeout(POLL_TIMEOUT)
        .allowed_updates(vec![
            AllowedUpdate::Message,
            AllowedUpdate::CallbackQuery,
            AllowedUpdate::InlineQuery,
        ])
        .send()
        .await;
    match &res {
        Ok(_) => ops::polled(ops::Transport::Telegram),
        Err(e) => {
            ops::poll_failed(
                ops::Transport::Telegram,
                "getUpdates",
                super::send::health_reason(e),
            );
            if matches!(e, RequestError::RetryAfter(_)) {
                ops::rate_limited(ops::Transport::Telegram, ops::Path::Poll);
            }
        }
    }
    res
}

/// A poll's batch into the inbox: the updates new to it, or why the poll
/// counts as failed (and is retried after a pause).
async fn take_in(
    inbox: &Inbox,
    offset: i32,
    polled: Result<Vec<Update>, RequestError>,
) -> Result<Vec<Update>, String> {
    let updates = polled.map_err(|e| e.to_string())?;
    let empty = updates.is_empty();
    let fresh = inbox
        .take_in_async(updates)
        .await
        .map_err(|e| format!("cannot store updates: {e}"))?;
    // Telegram only returns updates the offset did not confirm, so a batch
    // with nothing new, asked for again with the same offset, means a
    // server that ignores offsets: pause rather than spin.
    if !empty && fresh.is_empty() && inbox.mark() + 1 == offset {
        return Err("getUpdates returned only updates already taken in".to_string());
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Store;

    fn update(id: i32) -> Update {
        let json = serde_json::json!({
            "update_id": id,
            "message": {"message_id": id, "date": 1, "chat": {"id": 1, "type": "private", "first_name": "A"}, "text": "hi"}
        });
        // From text, as updates arrive: `from_value` cannot read an
        // `Update` (serde's flatten over a `Value`).
        let u: Update = serde_json::from_str(&json.to_string()).unwrap();
        assert!(matches!(u.kind, teloxide::types::UpdateKind::Message(_)));
        u
    }

    #[test]
    fn takes_in_once_replays_until_done_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let inbox = Inbox::open(&store).unwrap();
            assert_eq!(inbox.mark(), 0);
            let fresh = inbox.take_in(vec![update(5), update(6)]).unwrap();
            assert_eq!(fresh.len(), 2);
            // A server re-sends 6 (still held) with a new 7.
            let fresh = inbox.take_in(vec![update(6), update(7)]).unwrap();
            assert_eq!(fresh.iter().map(|u| u.id.0).collect::<Vec<_>>(), [7]);
            inbox.done(5);
            // Answered but not yet written: still held, not taken in again.
            assert!(inbox.take_in(vec![update(5)]).unwrap().is_empty());
            inbox.write_answered();
            assert_eq!(inbox.mark(), 5);
        }
        let store = Store::reopen(dir.path());
        let inbox = Inbox::open(&store).unwrap();
        let pending: Vec<u32> = inbox.pending().iter().map(|u| u.id.0).collect();
        assert_eq!(pending, [6, 7]);
        assert_eq!(inbox.mark(), 5);
    }

    #[test]
    fn ids_that_start_over_are_taken_in_and_move_the_mark_both_ways() {
        let store = Store::temporary().unwrap();
        let inbox = Inbox::open(&store).unwrap();
        inbox.take_in(vec![update(5000), update(5001)]).unwrap();
        inbox.done(5000);
        inbox.done(5001);
        inbox.write_answered();
        // After a week without updates: far below the mark.
        let fresh = inbox.take_in(vec![update(40)]).unwrap();
        assert_eq!(fresh.iter().map(|u| u.id.0).collect::<Vec<_>>(), [40]);
        assert_eq!(inbox.mark(), 40, "the next poll confirms 40");
        // And far above.
        let fresh = inbox.take_in(vec![update(3_000_000)]).unwrap();
        assert_eq!(fresh.len(), 1);
        assert_eq!(inbox.mark(), 3_000_000);
        // An update still held is not taken in twice.
        assert!(inbox.take_in(vec![update(3_000_000)]).unwrap().is_empty());
    }

    #[test]
    fn unreadable_updates_are_never_stored_and_purged_if_they_were() {
        let store = Store::temporary().unwrap();
        let inbox = Inbox::open(&store).unwrap();
        let odd: Update =
            serde_json::from_str(r#"{"update_id": 9, "some_future_update": {}}"#).unwrap();
        let fresh = inbox.take_in(vec![update(8), odd.clone()]).unwrap();
        assert_eq!(fresh.iter().map(|u| u.id.0).collect::<Vec<_>>(), [8]);
        assert_eq!(inbox.mark(), 9, "the next poll confirms it");
        assert_eq!(inbox.take_in_pushed(odd.clone()).unwrap(), None);
        // One kept by an older version is dropped at the next start.
        assert_eq!(inbox.put(vec![odd], None).unwrap().len(), 1);
        assert!(inbox.holds(&key(9)).unwrap());
        let pending: Vec<u32> = inbox.pending().iter().map(|u| u.id.0).collect();
        assert_eq!(pending, [8]);
        assert!(!inbox.holds(&key(9)).unwrap());
    }
}
