//! The durable outbox: every notification, and one delivery record per
//! target chat, written to sled before anything is sent.
//!
//! Why: a crash (kill -9, power loss) at any moment must not lose a
//! notification nor send it twice to more than the few chats whose sends
//! were in flight. So all deliveries, then the notification as the commit
//! record, are written and flushed (see [`Outbox::enqueue`]) before any
//! send; the worker then marks each delivery done and flushes *before* it
//! counts the send as finished. After a restart, every
//! delivery still `pending` is sent again — including those in flight at the
//! crash, which may therefore arrive twice (at most `max_in_flight`).
//!
//! Trees:
//! - `notify_notifications`: id (u64, big-endian) → JSON [`Notification`];
//! - `notify_deliveries`: id ++ chat key → JSON [`Delivery`], so one
//!   notification's deliveries are a prefix scan;
//! - `notify_meta`: watermarks (last change sent, last digest date) written in
//!   the same transaction as the notification they produced, so each change
//!   and each day's digest is enqueued exactly once;
//! - `notify_drafts`: announcement drafts awaiting their author's *Send*; a
//!   draft is removed in the transaction that commits its notification, so a
//!   store error neither loses it nor marks it sent, and two presses commit
//!   one notification.
//!
//! Every flush goes through the store's one serialised flush
//! ([`Store::flush`] / [`Store::flush_async`]): sled 0.34's flushes can
//! deadlock when they overlap (spacejam/sled#1308).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::content::Content;
use crate::facts::{ChatKey, Lang, Store, StoreError, Topic, Tree};

/// A notification: what to say, to whom (by topic), when it was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: u64,
    /// Unix seconds.
    pub created: u64,
    /// The topic its chats were chosen by (`None`: every subscriber).
    pub topic: Option<Topic>,
    pub content: Content,
    /// Number of deliveries made for it.
    pub targets: usize,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Delivered,
    Failed,
}

/// One notification to one chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The chat it was made for (part of the key).
    pub chat: ChatKey,
    /// Where it goes now: `chat`, or the chat's new id after a migration.
    pub target: ChatKey,
    pub state: State,
    pub attempts: u32,
    /// Unix milliseconds before which it is not tried again.
    pub next_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Messages of a long notification already delivered: a retry resumes
    /// with the next one instead of repeating them.
    #[serde(default)]
    pub parts_sent: u32,
    /// The language its first part went out in, so every part matches
    /// even if the chat's `/lang` changes meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<Lang>,
}

/// Counts of one notification's deliveries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub id: u64,
    pub kind: String,
    pub summary: String,
    pub created: u64,
    pub total: usize,
    pub pending: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// One notification to enqueue: what it says, to which chats.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The topic its chats were chosen by (`None`: every subscriber, or
    /// chats chosen one by one).
    pub topic: Option<Topic>,
    pub content: Content,
    pub chats: Vec<ChatKey>,
}

/// What the commit record of an enqueue carries with it, atomically.
#[derive(Clone, Debug, Default)]
pub struct Commit<'a> {
    /// A `notify_meta` watermark (key, value).
    pub mark: Option<(&'a str, Vec<u8>)>,
    /// A draft (key in `notify_drafts`) the notifications consume: if it
    /// is gone by commit time (sent or cancelled meanwhile), nothing is
    /// committed.
    pub draft: Option<&'a [u8]>,
}

/// Deliveries written in one atomic batch: one transaction over 10,000
/// deliveries held all of them in memory at once.
const DELIVERY_BATCH: usize = 1_000;

/// The draft was gone at commit time.
#[derive(Debug)]
struct DraftGone;

/// The outbox trees. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    db_notifications: sled::Tree,
    deliveries: sled::Tree,
    meta: sled::Tree,
    ids: sled::Tree,
    drafts: sled::Tree,
    /// For its serialised flush (one flush covers every tree).
    store: Store,
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn corrupt(tree: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree,
        message: e.to_string(),
    }
}

/// A delivery's key: the notification's id, then the chat key's bytes.
fn dkey(id: u64, chat: &ChatKey) -> Vec<u8> {
    let mut k = id.to_be_bytes().to_vec();
    k.extend_from_slice(&chat.to_bytes());
    k
}

fn id_of(key: &[u8]) -> u64 {
    key.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl Outbox {
    pub fn open(store: &Store) -> Result<Outbox, StoreError> {
        Ok(Outbox {
            db_notifications: store.tree(Tree::NotifyNotifications)?,
            deliveries: store.tree(Tree::NotifyDeliveries)?,
            meta: store.tree(Tree::NotifyMeta)?,
            ids: store.tree(Tree::NotifyIds)?,
            drafts: store.tree(Tree::NotifyDrafts)?,
            store: store.clone(),
        })
    }

    /// Records a notification and one pending delivery per chat, durably —
    /// with `mark` (a `notify_meta` key and value) written together with
    /// the notification. Returns the notification.
    pub fn enqueue(
        &self,
        topic: Option<Topic>,
        content: Content,
        chats: &[ChatKey],
        mark: Option<(&str, Vec<u8>)>,
    ) -> Result<Notification, StoreError> {
        let entry = Entry {
            topic,
            content,
            chats: chats.to_vec(),
        };
        let commit = Commit { mark, draft: None };
        let mut ns = self.enqueue_all(vec![entry], commit)?.unwrap_or_default();
        ns.pop()
            .ok_or_else(|| corrupt("notify_notifications", "enqueue made nothing"))
    }

    /// Records several notifications and their deliveries, durably, with
    /// one commit: all of them (and `commit`'s watermark and draft) or none.
    /// `None` when `commit.draft` was gone, and nothing was committed.
    pub fn enqueue_all(
        &self,
        entries: Vec<Entry>,
        commit: Commit,
    ) -> Result<Option<Vec<Notification>>, StoreError> {
        let now = unix_ms();
        let mut made = Vec::with_capacity(entries.len());
        let mut records = Vec::with_capacity(entries.len());
        // Deliveries first, then the notifications (with the watermark) as
        // the commit record: a crash in between leaves deliveries of a
        // notification that does not exist, which the worker ignores and
        // the next start prunes, and — the watermark unwritten — the change
        // or digest is enqueued again on restart.
        for e in entries {
            let n = Notification {
                id: self.next_id()?,
                created: now / 1000,
                topic: e.topic,
                content: e.content,
                targets: e.chats.len(),
            };
            let record = serde_json::to_vec(&n).map_err(|e| corrupt("notify_notifications", e))?;
            records.push((n.id, record));
            self.write_deliveries(n.id, &e.chats, now)?;
            made.push(n);
        }
        if !self.write_commit(&records, &commit)? {
            return Ok(None);
        }
        self.store.flush()?;
        Ok(Some(made))
    }

    /// Writes one pending delivery of notification `id` per chat, due at
    /// `now`, in atomic batches of [`DELIVERY_BATCH`]. Not flushed.
    fn write_deliveries(&self, id: u64, chats: &[ChatKey], now: u64) -> Result<(), StoreError> {
        for chunk in chats.chunks(DELIVERY_BATCH) {
            let mut batch = sled::Batch::default();
            for c in chunk {
                let d = Delivery {
                    chat: c.clone(),
                    target: c.clone(),
                    state: State::Pending,
                    attempts: 0,
                    next_at_ms: now,
                    last_error: None,
                    parts_sent: 0,
                    lang: None,
                };
                batch.insert(dkey(id, c), serde_json::to_vec(&d).unwrap_or_default());
            }
            self.deliveries.apply_batch(batch)?;
        }
        Ok(())
    }

    /// The commit record, in one transaction: the notifications' `records`
    /// (id, JSON) and `commit`'s watermark, and `commit`'s draft taken.
    /// `false` when the draft was gone: nothing was written. Not flushed.
    fn write_commit(
        &self,
        records: &[(u64, Vec<u8>)],
        commit: &Commit,
    ) -> Result<bool, StoreError> {
        let r: Result<(), TransactionError<DraftGone>> =
            (&self.db_notifications, &self.meta, &self.drafts).transaction(|(nt, mt, dt)| {
                if let Some(k) = commit.draft {
                    if dt.remove(k)?.is_none() {
                        return Err(ConflictableTransactionError::Abort(DraftGone));
                    }
                }
                for (id, nv) in records {
                    nt.insert(&id.to_be_bytes(), nv.as_slice())?;
                }
                if let Some((k, v)) = &commit.mark {
                    mt.insert(k.as_bytes(), v.as_slice())?;
                }
                Ok(())
            });
        match r {
            Ok(()) => Ok(true),
            Err(TransactionError::Abort(DraftGone)) => Ok(false),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Removes draft `key` alone (cancelled, expired, or sent to nobody);
    /// false when it was already gone.
    pub fn take_draft(&self, key: &[u8]) -> Result<bool, StoreError> {
        let was = self.drafts.remove(key)?.is_some();
        self.store.flush()?;
        Ok(was)
    }

    /// Ids increase and are never reused, even across restarts.
    fn next_id(&self) -> Result<u64, StoreError> {
        Ok(crate::facts::next_in_sequence(&self.ids, "next")?)
    }

    /// Writes a watermark alone (nothing to notify, but the input was seen).
    pub fn set_mark(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(key, value)?;
        self.store.flush()?;
        Ok(())
    }

    /// When `chat` began refusing the bot's messages (see
    /// `Outcome::Blocked`): recorded as `now_ms` the first time. Not
    /// flushed (the next delivery record's flush covers it).
    pub fn blocked_since(&self, chat: &ChatKey, now_ms: u64) -> Result<u64, StoreError> {
        let key = format!("blocked:{chat}");
        let read = |b: &[u8]| <[u8; 8]>::try_from(b).ok().map(u64::from_be_bytes);
        match self.meta.compare_and_swap(
            &key,
            None as Option<&[u8]>,
            Some(&now_ms.to_be_bytes()[..]),
        )? {
            Ok(()) => Ok(now_ms),
            Err(e) => Ok(e.current.as_deref().and_then(read).unwrap_or(now_ms)),
        }
    }

    /// `chat` takes the bot's messages again.
    pub fn unblocked(&self, chat: &ChatKey) -> Result<(), StoreError> {
        let key = format!("blocked:{chat}");
        if self.meta.contains_key(&key)? {
            self.meta.remove(&key)?;
        }
        Ok(())
    }

    pub fn mark(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    pub fn notification(&self, id: u64) -> Result<Option<Notification>, StoreError> {
        self.db_notifications
            .get(id.to_be_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt("notify_notifications", e)))
            .transpose()
    }

    /// All notifications, oldest first.
    pub fn notifications(&self) -> Result<Vec<Notification>, StoreError> {
        self.db_notifications
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(|e| corrupt("notify_notifications", e))
            })
            .collect()
    }

    fn scan(&self, prefix: &[u8]) -> impl Iterator<Item = Result<(u64, Delivery), StoreError>> {
        self.deliveries.scan_prefix(prefix).map(|kv| {
            let (k, v) = kv?;
            let d = serde_json::from_slice(&v).map_err(|e| corrupt("notify_deliveries", e))?;
            Ok((id_of(&k), d))
        })
    }

    /// One notification's deliveries.
    pub fn deliveries(&self, id: u64) -> Result<Vec<Delivery>, StoreError> {
        self.scan(&id.to_be_bytes())
            .map(|r| r.map(|(_, d)| d))
            .collect()
    }

    /// One delivery.
    pub fn deliveries_get(&self, id: u64, chat: &ChatKey) -> Result<Option<Delivery>, StoreError> {
        self.deliveries
            .get(dkey(id, chat))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt("notify_deliveries", e)))
            .transpose()
    }

    /// Every pending delivery (`id`: of one notification only).
    pub fn pending(&self, id: Option<u64>) -> Result<Vec<(u64, Delivery)>, StoreError> {
        let prefix = id.map(|i| i.to_be_bytes().to_vec()).unwrap_or_default();
        self.scan(&prefix)
            .filter(|r| !matches!(r, Ok((_, d)) if d.state != State::Pending))
            .collect()
    }

    /// Saves a delivery's new state. Not flushed: see [`Outbox::flush`].
    pub fn update(&self, id: u64, d: &Delivery) -> Result<(), StoreError> {
        let v = serde_json::to_vec(d).map_err(|e| corrupt("notify_deliveries", e))?;
        self.deliveries.insert(dkey(id, &d.chat), v)?;
        Ok(())
    }

    /// Makes updates durable, on a blocking thread, through the store's
    /// one serialised flush; a flush also covers every update made before
    /// it started, so waiters behind a running flush cost little.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.store.flush_async().await
    }

    /// Counts per state of one notification.
    pub fn progress(&self, id: u64) -> Result<Option<Progress>, StoreError> {
        let Some(n) = self.notification(id)? else {
            return Ok(None);
        };
        let mut p = Progress {
            id,
            kind: n.content.kind().into(),
            summary: n.content.summary(),
            created: n.created,
            total: n.targets,
            ..Progress::default()
        };
        for r in self.scan(&id.to_be_bytes()) {
            match r?.1.state {
                State::Pending => p.pending += 1,
                State::Delivered => p.delivered += 1,
                State::Failed => p.failed += 1,
            }
        }
        Ok(Some(p))
    }

    /// Deletes what nobody needs any more, so the outbox (and the scan for
    /// pending deliveries at every start) does not grow without end:
    /// notifications created more than `keep_secs` before `now_secs` whose
    /// deliveries are all done, with their deliveries; and deliveries a
    /// crash left without their notification record (an enqueue cut off
    /// before its commit record). Call only while nothing is being
    /// enqueued: at start, before the worker runs. Returns (notifications,
    /// deliveries) removed.
    pub fn prune(&self, keep_secs: u64, now_secs: u64) -> Result<(usize, usize), StoreError> {
        let mut ids: Vec<u64> = Vec::new();
        for kv in self.deliveries.iter() {
            let (k, _) = kv?;
            let id = id_of(&k);
            if ids.last() != Some(&id) {
                ids.push(id);
            }
        }
        let (mut notes, mut dels) = (0, 0);
        for id in ids {
            let drop = match self.notification(id)? {
                None => true,
                Some(n) => {
                    n.created.saturating_add(keep_secs) < now_secs
                        && self.pending(Some(id))?.is_empty()
                }
            };
            if !drop {
                continue;
            }
            let mut batch = sled::Batch::default();
            for kv in self.deliveries.scan_prefix(id.to_be_bytes()) {
                let (k, _) = kv?;
                batch.remove(k);
                dels += 1;
            }
            self.deliveries.apply_batch(batch)?;
            if self.db_notifications.remove(id.to_be_bytes())?.is_some() {
                notes += 1;
            }
        }
        if notes + dels > 0 {
            self.store.flush()?;
        }
        Ok((notes, dels))
    }

    /// Progress of every notification, oldest first.
    pub fn all_progress(&self) -> Result<Vec<Progress>, StoreError> {
        let mut out = Vec::new();
        for n in self.notifications()? {
            if let Some(p) = self.progress(n.id)? {
                out.push(p);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(t: &str) -> Content {
        Content::Announcement { text: t.into() }
    }

    #[test]
    fn enqueue_writes_one_pending_delivery_per_chat() {
        let o = Outbox::open(&Store::temporary().unwrap()).unwrap();
        let chats: Vec<ChatKey> = (1..=3).map(|i| ChatKey::Telegram(-i)).collect();
        let a = o.enqueue(None, ann("a"), &chats, None).unwrap();
        let b = o
            .enqueue(
                Some(Topic::Trade),
                ann("b"),
                &chats[..1],
                Some(("k", b"v".to_vec())),
            )
            .unwrap();
        assert!(b.id > a.id);
        assert_eq!(o.mark("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(o.pending(None).unwrap().len(), 4);
        assert_eq!(o.pending(Some(a.id)).unwrap().len(), 3);
        let p = o.progress(a.id).unwrap().unwrap();
        assert_eq!((p.total, p.pending, p.delivered), (3, 3, 0));
    }

    #[test]
    fn pruning_drops_old_finished_notifications_and_orphans_only() {
        let o = Outbox::open(&Store::temporary().unwrap()).unwrap();
        let chats: Vec<ChatKey> = (1..=3).map(|i| ChatKey::Telegram(-i)).collect();
        let done = o.enqueue(None, ann("done"), &chats, None).unwrap();
        let open = o.enqueue(None, ann("open"), &chats, None).unwrap();
        for (i, mut d) in o.deliveries(done.id).unwrap().into_iter().enumerate() {
            d.state = if i == 0 {
                State::Failed
            } else {
                State::Delivered
            };
            o.update(done.id, &d).unwrap();
        }
        // An enqueue cut off before its commit record.
        let orphan = Delivery {
            chat: ChatKey::Telegram(-9),
            target: ChatKey::Telegram(-9),
            state: State::Pending,
            attempts: 0,
            next_at_ms: 0,
            last_error: None,
            parts_sent: 0,
            lang: None,
        };
        o.update(open.id + 1, &orphan).unwrap();
        let now = unix_ms() / 1000;
        // Young: only the orphan goes.
        assert_eq!(o.prune(30 * 86_400, now).unwrap(), (0, 1));
        // Old: the finished one goes, the one still pending stays.
        assert_eq!(o.prune(30 * 86_400, now + 31 * 86_400).unwrap(), (1, 3));
        assert!(o.notification(done.id).unwrap().is_none());
        assert_eq!(o.pending(None).unwrap().len(), 3);
        assert!(o.notification(open.id).unwrap().is_some());
    }

    #[test]
    fn delivered_and_failed_leave_the_pending_set() {
        let o = Outbox::open(&Store::temporary().unwrap()).unwrap();
        let chats = vec![ChatKey::Telegram(1), ChatKey::Telegram(2)];
        let n = o.enqueue(None, ann("x"), &chats, None).unwrap();
        let mut ds = o.deliveries(n.id).unwrap();
        ds[0].state = State::Delivered;
        ds[1].state = State::Failed;
        ds[1].last_error = Some("gone".into());
        for d in &ds {
            o.update(n.id, d).unwrap();
        }
        assert!(o.pending(None).unwrap().is_empty());
        let p = o.progress(n.id).unwrap().unwrap();
        assert_eq!((p.pending, p.delivered, p.failed), (0, 1, 1));
        assert_eq!(o.all_progress().unwrap().len(), 1);
    }

    /// Deliveries are keyed and recorded as before `ChatKey`: the id,
    /// then the key's bytes; the JSON record names chats as strings. A
    /// record written by an earlier version reads back.
    #[test]
    fn deliveries_keep_their_on_disk_form() {
        let o = Outbox::open(&Store::temporary().unwrap()).unwrap();
        let room = ChatKey::matrix("!r:example.org");
        let n = o
            .enqueue(None, ann("x"), std::slice::from_ref(&room), None)
            .unwrap();
        let mut key = n.id.to_be_bytes().to_vec();
        key.extend_from_slice(b"mx:!r:example.org");
        let raw = o.deliveries.get(&key).unwrap().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(json["chat"], "mx:!r:example.org");
        assert_eq!(json["target"], "mx:!r:example.org");
        let old = br#"{"chat":"tg:-5","target":"tg:-1005","state":"pending","attempts":1,"next_at_ms":0}"#;
        let mut key = n.id.to_be_bytes().to_vec();
        key.extend_from_slice(b"tg:-5");
        o.deliveries.insert(key, old.to_vec()).unwrap();
        let d = o
            .deliveries_get(n.id, &ChatKey::Telegram(-5))
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.chat, d.target),
            (ChatKey::Telegram(-5), ChatKey::Telegram(-1005))
        );
    }

    #[test]
    fn the_outbox_survives_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = Store::open(dir.path()).unwrap();
            let o = Outbox::open(&store).unwrap();
            o.enqueue(None, ann("x"), &[ChatKey::Telegram(1)], None)
                .unwrap()
                .id
        };
        let store = Store::reopen(dir.path());
        let o = Outbox::open(&store).unwrap();
        assert_eq!(o.pending(None).unwrap()[0].0, id);
        let next = o.enqueue(None, ann("y"), &[], None).unwrap().id;
        assert!(next > id, "ids are not reused after a restart");
    }
}
