//! The durable inbox both chat transports keep what they must answer in,
//! with one commit policy: nothing lost, nothing answered twice, across a
//! crash or `kill -9`, and no disk wait on the runtime's threads.
//!
//! Failure this prevents: a platform that forgets a message once it has
//! handed it out (Telegram confirms a batch with the next `getUpdates`
//! offset, matrix-sdk saves its sync token before the events are handled)
//! losing every message still queued when the process dies; and, the other
//! way round, a restart answering again what was answered already.
//!
//! The policy, the same for every platform:
//! - **in**: what a poll, a push or a sync brings is written, then the
//!   platform's position (Telegram's next offset, Matrix's sync token),
//!   and both made durable by one flush ([`Inbox::put`]) *before* the
//!   platform is told it may forget them;
//! - **out**: an answered record is only queued ([`Inbox::answered`], no
//!   I/O). The next [`Inbox::put`] removes the queued ones in its own
//!   flush; if no put comes within [`GROUP_COMMIT`], a writer removes them
//!   together and flushes once on a blocking thread (one fsync for many
//!   answers), and shutdown writes what is left. Under a steady stream of
//!   messages that halves the flushes per reply, and each sled flush wakes
//!   every idle sled I/O thread (measured when this came in: 14.6–15.5
//!   context switches per Telegram reply before, 12.4–13.0 after). A
//!   platform that re-delivers answered messages (Matrix re-syncs from its
//!   saved token) also keeps an *answered* mark per record, pruned after a
//!   week.
//! - **after a crash** the records still in the inbox are answered again
//!   ([`Inbox::waiting`]) and a re-delivered record the inbox holds is
//!   skipped ([`Inbox::holds`]). Only a kill between sending a reply and
//!   the flush that records it (milliseconds) repeats that reply.
//!
//! **Order, not batches.** A put writes plain inserts and removals in a
//! fixed order — answered marks, removals, new records, the position last
//! — and flushes once. sled's log recovers a prefix: replay stops at the
//! first torn message (sled 0.34, `pagecache/iterator.rs`, "found a
//! tear"), and one thread's writes take increasing log positions. So a
//! crash mid-put keeps the first writes and loses the rest, never the
//! other way round: a position is never kept without the records it
//! confirms, nor a removal without its mark. A `sled::Batch` would add
//! nothing to that, and costs a log write of its own: `apply_batch` seals
//! the log buffer around the batch's manifest, so each put wrote twice
//! (pwrite + `sync_file_range`, each waking all of sled's idle I/O
//! threads). Measured with `BOTS=factbot scripts/bench-telegram.sh`, 13
//! alternating pairs of 1,000–2,000 questions: 8.6–9.7 → 7.0–7.8 context
//! switches per reply, lower in every pair; `strace -c` over 20 s of the
//! load counted 284 → 137 log writes (each a `sync_file_range`). CPU per
//! reply did not measurably move (median 0.77 ms both; 0.69–0.87 before,
//! 0.72–0.89 after): the saving is disk writes and wake-ups.
//!
//! Every flush goes through [`Store::flush`], the store's one serialised
//! flush. Each platform keeps its own trees and their on-disk format
//! (see [`Record`]), so stores written by earlier versions keep working.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Notify;

use crate::facts::{Store, StoreError, Tree};
use crate::ops::record as ops;

/// How long answered records gather before one flush makes them durable.
pub const GROUP_COMMIT: Duration = Duration::from_millis(20);
/// Answered marks older than this are pruned: a re-sync never goes back
/// further than the last saved position, which is seconds old.
pub const ANSWERED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one platform keeps in its inbox, and where.
pub trait Record: Serialize + DeserializeOwned + Send + 'static {
    /// For the logs and metrics.
    const TRANSPORT: ops::Transport;
    /// The tree the records wait in.
    const PENDING: Tree;
    /// Where the platform's position is kept: a tree and a key (it may be
    /// the pending tree, with a key outside [`Record::PREFIX`]).
    const POSITION: (Tree, &'static [u8]);
    /// The tree of answered marks, for a platform that re-delivers what was
    /// answered; `None` where the position alone confirms it.
    const ANSWERED: Option<Tree>;
    /// The prefix of every record's key in the pending tree.
    const PREFIX: &'static [u8];
    /// The record's key in the pending tree (starting with
    /// [`Record::PREFIX`]) and in the answered tree.
    fn key(&self) -> Vec<u8>;

    /// Called for each record once its answer is durably recorded (the
    /// platform's log line, say).
    fn recorded(_key: &[u8]) {}
}

/// A platform's durable inbox (see the module docs). Cheap to clone.
pub struct Inbox<R> {
    /// For [`Store::flush`], the one serialised way to make writes durable.
    store: Store,
    pending: sled::Tree,
    position: sled::Tree,
    answered: Option<sled::Tree>,
    /// Keys of answered records not yet written: the writer removes them
    /// together and flushes once.
    queue: Arc<Mutex<Vec<Vec<u8>>>>,
    wake: Arc<Notify>,
    record: PhantomData<fn() -> R>,
}

impl<R> Clone for Inbox<R> {
    fn clone(&self) -> Self {
        Inbox {
            store: self.store.clone(),
            pending: self.pending.clone(),
            position: self.position.clone(),
            answered: self.answered.clone(),
            queue: Arc::clone(&self.queue),
            wake: Arc::clone(&self.wake),
            record: PhantomData,
        }
    }
}

impl<R: Record> Inbox<R> {
    /// The platform's inbox in `store`. Start its [`Inbox::writer`].
    pub fn open(store: &Store) -> Result<Inbox<R>, StoreError> {
        Ok(Inbox {
            store: store.clone(),
            pending: store.tree(R::PENDING)?,
            position: store.tree(R::POSITION.0)?,
            answered: R::ANSWERED.map(|t| store.tree(t)).transpose()?,
            queue: Arc::default(),
            wake: Arc::default(),
            record: PhantomData,
        })
    }

    /// The platform's position as last written (`None` before the first).
    pub fn position(&self) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.position.get(R::POSITION.1)?)
    }

    /// Forgets the position, durably on return.
    pub async fn forget_position(&self) -> Result<(), StoreError> {
        self.position.remove(R::POSITION.1)?;
        self.store.flush_async().await
    }

    /// Whether the record with this key waits in the inbox or was answered
    /// (by its mark).
    pub fn holds(&self, key: &[u8]) -> Result<bool, StoreError> {
        if self.pending.contains_key(key)? {
            return Ok(true);
        }
        match &self.answered {
            Some(a) => Ok(a.contains_key(key)?),
            None => Ok(false),
        }
    }

    /// Takes in `records`: writes those the inbox does not hold yet, and
    /// the new `position` if any, with one flush; returns the ones written.
    /// The platform may forget them after this. The answers queued so far
    /// are recorded in the same flush (see the module docs). Blocks on the
    /// disk: from async code use [`Inbox::put_async`].
    pub fn put(&self, records: Vec<R>, position: Option<Vec<u8>>) -> Result<Vec<R>, StoreError> {
        let done = std::mem::take(&mut *lock(&self.queue));
        match self.put_with(records, position, &done) {
            Ok(fresh) => {
                self.recorded(&done);
                Ok(fresh)
            }
            Err(e) => {
                self.requeue(done);
                Err(e)
            }
        }
    }

    fn put_with(
        &self,
        records: Vec<R>,
        position: Option<Vec<u8>>,
        done: &[Vec<u8>],
    ) -> Result<Vec<R>, StoreError> {
        // Which records are new is decided before anything is written: one
        // whose answer this put records is still held, as before the put.
        let mut fresh = Vec::with_capacity(records.len());
        let mut json = Vec::with_capacity(records.len());
        for r in records {
            let key = r.key();
            if self.holds(&key)? {
                continue;
            }
            match serde_json::to_vec(&r) {
                Ok(j) => {
                    json.push((key, j));
                    fresh.push(r);
                }
                Err(e) => {
                    tracing::error!(transport = R::TRANSPORT.name(), error = %e, "cannot store a message to answer")
                }
            }
        }
        // Plain writes, in this order, then one flush (see "Order, not
        // batches" in the module docs): a crash keeps a prefix of them, so
        // a record is never in neither tree (marked before removed) and a
        // position never outlives a record it confirms (written last).
        self.mark_answered(done)?;
        for k in done {
            self.pending.remove(k.as_slice())?;
        }
        for (key, j) in json {
            self.pending.insert(key, j)?;
        }
        if let Some(p) = position {
            self.position.insert(R::POSITION.1, p)?;
        }
        self.store.flush()?;
        ops::inbox_in(R::TRANSPORT, fresh.len());
        Ok(fresh)
    }

    /// [`Inbox::put`] on a blocking thread.
    pub async fn put_async(
        &self,
        records: Vec<R>,
        position: Option<Vec<u8>>,
    ) -> Result<Vec<R>, StoreError> {
        let inbox = self.clone();
        tokio::task::spawn_blocking(move || inbox.put(records, position))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Corrupt {
                    tree: R::PENDING.name(),
                    message: format!("storing messages failed: {e}"),
                })
            })
    }

    /// The records taken in and not answered (after a restart: those cut
    /// off by the previous run), in key order, with their keys. Stored
    /// records that cannot be read (an older version wrote them) are
    /// logged and removed.
    pub fn waiting(&self) -> Vec<(sled::IVec, R)> {
        let mut out = Vec::new();
        for (k, v) in self.pending.scan_prefix(R::PREFIX).filter_map(|kv| kv.ok()) {
            if k.as_ref() == R::POSITION.1 && R::POSITION.0 == R::PENDING {
                continue;
            }
            match serde_json::from_slice::<R>(&v) {
                Ok(r) => out.push((k, r)),
                Err(e) => {
                    tracing::error!(transport = R::TRANSPORT.name(), error = %e, "dropping an unreadable stored message");
                    self.forget(&k);
                }
            }
        }
        out
    }

    /// Removes a record that can never be answered, at once (no flush: a
    /// crash only brings it back to be dropped again).
    pub fn forget(&self, key: &[u8]) {
        let _ = self.pending.remove(key);
    }

    /// Records the record with this key as answered. No I/O here: the next
    /// put, or else the writer within [`GROUP_COMMIT`], records it and
    /// flushes; a kill before
    /// then repeats that reply after the restart, never loses one. Until
    /// then the record stays in the inbox, so [`Inbox::holds`] holds.
    pub fn answered(&self, key: Vec<u8>) {
        lock(&self.queue).push(key);
        self.wake.notify_one();
    }

    /// Writes the answered records: marks them (where the platform keeps
    /// marks), removes them, flushes once — a [`Inbox::put`] of nothing,
    /// so both ways out share one write. Blocks on the disk.
    pub fn write_answered(&self) {
        if lock(&self.queue).is_empty() {
            return;
        }
        if let Err(e) = self.put(Vec::new(), None) {
            tracing::error!(transport = R::TRANSPORT.name(), error = %e, "cannot record answered messages; trying again with the next ones");
        }
    }

    /// Writes the answered marks of `keys`, where the platform keeps them.
    fn mark_answered(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let Some(answered) = &self.answered else {
            return Ok(());
        };
        let now = now_secs().to_be_bytes();
        for k in keys {
            answered.insert(k.as_slice(), &now)?;
        }
        Ok(())
    }

    /// Counts and reports answers whose records were durably removed.
    fn recorded(&self, keys: &[Vec<u8>]) {
        if keys.is_empty() {
            return;
        }
        ops::inbox_out(R::TRANSPORT, keys.len());
        keys.iter().for_each(|k| R::recorded(k));
    }

    /// Puts answers whose write failed back in the queue, for the next put
    /// or writer round: their records stay in the inbox meanwhile, so a
    /// crash repeats those replies, never loses them.
    fn requeue(&self, mut keys: Vec<Vec<u8>>) {
        if keys.is_empty() {
            return;
        }
        let mut queue = lock(&self.queue);
        keys.append(&mut queue);
        *queue = keys;
    }

    /// [`Inbox::write_answered`] on a blocking thread.
    pub async fn write_answered_async(&self) {
        let inbox = self.clone();
        let _ = tokio::task::spawn_blocking(move || inbox.write_answered()).await;
    }

    /// Runs until the process ends: records answered records in groups.
    /// At shutdown, call [`Inbox::write_answered_async`] for the last ones.
    pub async fn writer(self) {
        loop {
            self.wake.notified().await;
            tokio::time::sleep(GROUP_COMMIT).await;
            // A put in the meantime may have written them all.
            if !lock(&self.queue).is_empty() {
                self.write_answered_async().await;
            }
        }
    }

    /// Drops answered marks older than [`ANSWERED_TTL`].
    pub fn prune(&self) {
        let Some(answered) = &self.answered else {
            return;
        };
        let cutoff = now_secs().saturating_sub(ANSWERED_TTL.as_secs());
        for (k, v) in answered.iter().filter_map(Result::ok) {
            let at = <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if at < cutoff {
                let _ = answered.remove(k);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A platform with its position beside the records and no marks (as
    /// Telegram).
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Beside(u8);
    impl Record for Beside {
        const TRANSPORT: ops::Transport = ops::Transport::Telegram;
        const PENDING: Tree = Tree::TelegramInbox;
        const POSITION: (Tree, &'static [u8]) = (Tree::TelegramInbox, b"pos");
        const ANSWERED: Option<Tree> = None;
        const PREFIX: &'static [u8] = b"u";
        fn key(&self) -> Vec<u8> {
            vec![b'u', self.0]
        }
    }

    /// A platform with its position apart and answered marks (as Matrix).
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Apart(String);
    impl Record for Apart {
        const TRANSPORT: ops::Transport = ops::Transport::Matrix;
        const PENDING: Tree = Tree::MatrixInbox;
        const POSITION: (Tree, &'static [u8]) = (Tree::MatrixState, b"pos");
        const ANSWERED: Option<Tree> = Some(Tree::MatrixAnswered);
        const PREFIX: &'static [u8] = b"";
        fn key(&self) -> Vec<u8> {
            self.0.clone().into_bytes()
        }
    }

    fn keys<R>(w: Vec<(sled::IVec, R)>) -> Vec<Vec<u8>> {
        w.into_iter().map(|(k, _)| k.to_vec()).collect()
    }

    #[test]
    fn records_wait_until_answered_and_written_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let inbox = Inbox::<Beside>::open(&store).unwrap();
            assert_eq!(inbox.position().unwrap(), None);
            let fresh = inbox
                .put(vec![Beside(1), Beside(2)], Some(b"2".to_vec()))
                .unwrap();
            assert_eq!(fresh, [Beside(1), Beside(2)]);
            let fresh = inbox.put(vec![Beside(2), Beside(3)], None).unwrap();
            assert_eq!(fresh, [Beside(3)], "a record held is not taken twice");
            inbox.answered(b"u\x01".to_vec());
            assert!(inbox.holds(b"u\x01").unwrap(), "held until written");
            inbox.write_answered();
            assert!(!inbox.holds(b"u\x01").unwrap());
        }
        let store = Store::reopen(dir.path());
        let inbox = Inbox::<Beside>::open(&store).unwrap();
        assert_eq!(
            keys(inbox.waiting()),
            [b"u\x02".to_vec(), b"u\x03".to_vec()]
        );
        assert_eq!(inbox.position().unwrap().as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn answered_marks_keep_a_redelivery_out_and_unreadable_records_go() {
        let store = Store::temporary().unwrap();
        let inbox = Inbox::<Apart>::open(&store).unwrap();
        inbox
            .put(
                vec![Apart("$1".into()), Apart("$2".into())],
                Some(b"t1".to_vec()),
            )
            .unwrap();
        assert_eq!(inbox.position().unwrap().as_deref(), Some(&b"t1"[..]));
        inbox.answered(b"$1".to_vec());
        inbox.write_answered();
        assert!(inbox.holds(b"$1").unwrap(), "answered stays held");
        assert!(inbox
            .put(vec![Apart("$1".into())], None)
            .unwrap()
            .is_empty());
        inbox.prune();
        assert!(inbox.holds(b"$1").unwrap(), "fresh marks survive pruning");
        inbox.pending.insert(b"$9", &b"not json"[..]).unwrap();
        assert_eq!(keys(inbox.waiting()), [b"$2".to_vec()]);
        assert!(!inbox.holds(b"$9").unwrap(), "the unreadable one is gone");
    }

    #[test]
    fn a_put_writes_the_answers_queued_before_it_in_its_own_flush() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let inbox = Inbox::<Apart>::open(&store).unwrap();
            let first = vec![Apart("$1".into()), Apart("$2".into())];
            inbox.put(first, Some(b"t1".to_vec())).unwrap();
            inbox.answered(b"$1".to_vec());
            // Re-delivered while its answer is queued: still held, not taken twice.
            let fresh = inbox
                .put(
                    vec![Apart("$1".into()), Apart("$3".into())],
                    Some(b"t2".to_vec()),
                )
                .unwrap();
            assert_eq!(fresh, [Apart("$3".into())]);
            assert!(lock(&inbox.queue).is_empty(), "the put took the queue");
            // No write_answered, no writer: the put alone recorded it.
        }
        let store = Store::reopen(dir.path());
        let inbox = Inbox::<Apart>::open(&store).unwrap();
        assert_eq!(keys(inbox.waiting()), [b"$2".to_vec(), b"$3".to_vec()]);
        assert!(
            inbox.holds(b"$1").unwrap(),
            "its answered mark was written too"
        );
        assert_eq!(inbox.position().unwrap().as_deref(), Some(&b"t2"[..]));
    }

    #[tokio::test]
    async fn the_writer_groups_answers_and_forgetting_the_position_is_durable() {
        let store = Store::temporary().unwrap();
        let inbox = Inbox::<Apart>::open(&store).unwrap();
        tokio::spawn(inbox.clone().writer());
        let all: Vec<Apart> = (0..5).map(|i| Apart(format!("${i}"))).collect();
        inbox.put_async(all, Some(b"t".to_vec())).await.unwrap();
        for i in 0..5 {
            inbox.answered(format!("${i}").into_bytes());
        }
        tokio::time::timeout(Duration::from_secs(10), async {
            while !inbox.waiting().is_empty() {
                tokio::time::sleep(GROUP_COMMIT).await;
            }
        })
        .await
        .expect("the writer records the answers");
        inbox.forget_position().await.unwrap();
        assert_eq!(inbox.position().unwrap(), None);
    }
}
