//! The Matrix side's durable memory: the sync token, the messages taken in
//! but not yet answered, and the messages already answered.
//!
//! matrix-sdk saves its own sync token *before* it hands a sync's events
//! out, so a crash in between would lose them. The bot therefore keeps its
//! own token in sled and moves it only after every message of a sync that
//! needs an answer is written to the inbox (one flush for both). After a
//! kill -9 the bot re-syncs from the last saved token: messages already
//! answered are recognised by their event id and skipped, messages taken in
//! but unanswered are answered from the inbox. Nothing is lost and nothing
//! is answered twice, except a reply sent in the instant before its
//! "answered" mark reached the disk.

use serde::{Deserialize, Serialize};

use crate::facts::{Store, StoreError, Tree};

const TOKEN: &[u8] = b"sync_token";
/// Answered marks older than this are pruned: a re-sync never goes back
/// further than the last saved token, which is seconds old.
const ANSWERED_TTL_SECS: u64 = 7 * 24 * 3600;

/// A message the bot must answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub room_id: String,
    pub event_id: String,
    pub sender: String,
    /// The room had at most two members: a one-to-one chat with the bot.
    #[serde(default)]
    pub direct: bool,
    /// What to do, decided by the router when the message arrived.
    pub action: Action,
    /// The bot's event this message replies to (`m.in_reply_to`), if any:
    /// the answer continues the one that event carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Answer this text with the app.
    Answer(String),
    /// `!leave`.
    Leave,
}

/// Sled trees `matrix_state`, `matrix_inbox` and `matrix_answered`.
#[derive(Clone)]
pub struct Inbox {
    state: sled::Tree,
    pending: sled::Tree,
    answered: sled::Tree,
    /// For its serialised flush (one flush covers every tree).
    store: Store,
}

impl Inbox {
    pub fn open(store: &Store) -> Result<Inbox, StoreError> {
        Ok(Inbox {
            state: store.tree(Tree::MatrixState)?,
            pending: store.tree(Tree::MatrixInbox)?,
            answered: store.tree(Tree::MatrixAnswered)?,
            store: store.clone(),
        })
    }

    /// The token of the last sync whose messages are all in the inbox;
    /// `None` before the first start finished its first sync.
    pub fn sync_token(&self) -> Result<Option<String>, sled::Error> {
        Ok(self
            .state
            .get(TOKEN)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Forgets the sync position (a new device store must learn every room
    /// with a full sync), durable on return.
    pub async fn forget_sync_token(&self) -> Result<(), StoreError> {
        self.state.remove(TOKEN)?;
        self.store.flush_async().await
    }

    /// Whether the message is already answered or waiting in the inbox.
    pub fn seen(&self, event_id: &str) -> Result<bool, sled::Error> {
        Ok(self.answered.contains_key(event_id)? || self.pending.contains_key(event_id)?)
    }

    /// Takes in a sync: its jobs and its token, durable on return.
    pub async fn take_in(&self, jobs: &[Job], token: &str) -> Result<(), StoreError> {
        for job in jobs {
            let v = serde_json::to_vec(job).unwrap_or_default();
            self.pending.insert(job.event_id.as_bytes(), v)?;
        }
        self.state.insert(TOKEN, token.as_bytes())?;
        self.store.flush_async().await
    }

    /// Jobs taken in and not yet answered (after a restart: those cut off
    /// by the previous run).
    pub fn pending(&self) -> Vec<Job> {
        self.pending
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect()
    }

    /// Marks a job answered (or abandoned: a poisonous message must not come
    /// back after every restart), durable on return. One flush per answer
    /// is cheap next to the homeserver round trip the answer took.
    pub async fn done(&self, event_id: &str) {
        let now = now_secs();
        let r = self
            .answered
            .insert(event_id.as_bytes(), &now.to_be_bytes())
            .and_then(|_| self.pending.remove(event_id.as_bytes()))
            .map(|_| ());
        let r = match r {
            Ok(()) => self.store.flush_async().await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "matrix: cannot record an answered message");
        }
    }

    /// Drops answered marks older than a week.
    pub fn prune(&self) {
        let cutoff = now_secs().saturating_sub(ANSWERED_TTL_SECS);
        for (k, v) in self.answered.iter().filter_map(Result::ok) {
            let at = <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if at < cutoff {
                let _ = self.answered.remove(k);
            }
        }
    }
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

    fn job(id: &str) -> Job {
        Job {
            room_id: "!r:x".into(),
            event_id: id.into(),
            sender: "@a:x".into(),
            direct: true,
            action: Action::Answer("!trade".into()),
            reply_to: None,
        }
    }

    #[tokio::test]
    async fn jobs_stay_until_done_and_are_then_seen() {
        let store = Store::temporary().unwrap();
        let inbox = Inbox::open(&store).unwrap();
        assert_eq!(inbox.sync_token().unwrap(), None);
        inbox.take_in(&[job("$1"), job("$2")], "t1").await.unwrap();
        assert_eq!(inbox.sync_token().unwrap().as_deref(), Some("t1"));
        assert_eq!(inbox.pending().len(), 2);
        assert!(inbox.seen("$1").unwrap());
        inbox.done("$1").await;
        assert_eq!(inbox.pending(), vec![job("$2")]);
        assert!(inbox.seen("$1").unwrap(), "answered stays seen");
        assert!(!inbox.seen("$3").unwrap());
        inbox.prune();
        assert!(inbox.seen("$1").unwrap(), "fresh marks survive pruning");
    }
}
