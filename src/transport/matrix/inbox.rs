//! The Matrix side's durable memory: the sync token, the messages taken in
//! but not yet answered, and the messages already answered.
//!
//! matrix-sdk saves its own sync token *before* it hands a sync's events
//! out, so a crash in between would lose them. The bot therefore keeps its
//! own token in sled and moves it only after every message of a sync that
//! needs an answer is written to the inbox (one flush for both; the shared
//! [`crate::transport::inbox`], whose answers are recorded in groups). After a
//! kill -9 the bot re-syncs from the last saved token: messages already
//! answered are recognised by their event id and skipped, messages taken in
//! but unanswered are answered from the inbox. Nothing is lost and nothing
//! is answered twice, except a reply sent in the instant before its
//! "answered" mark reached the disk.

use serde::{Deserialize, Serialize};

use crate::facts::{StoreError, Tree};
use crate::ops::record as ops;
use crate::transport::inbox;

/// Key (in `matrix_state`) of the bot's own sync token.
const TOKEN: &[u8] = b"sync_token";

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

/// The shared durable inbox ([`crate::transport::inbox`]) holding Matrix's
/// jobs, in the trees `matrix_state` (the sync token), `matrix_inbox` (event
/// id → the job's JSON) and `matrix_answered` (event id → when answered),
/// as before.
pub type Inbox = inbox::Inbox<Job>;

impl inbox::Record for Job {
    const TRANSPORT: ops::Transport = ops::Transport::Matrix;
    const PENDING: Tree = Tree::MatrixInbox;
    const POSITION: (Tree, &'static [u8]) = (Tree::MatrixState, TOKEN);
    /// A re-sync from the saved token brings answered messages again.
    const ANSWERED: Option<Tree> = Some(Tree::MatrixAnswered);
    const PREFIX: &'static [u8] = b"";

    fn key(&self) -> Vec<u8> {
        self.event_id.as_bytes().to_vec()
    }
}

/// Matrix's side of the inbox: the sync token, jobs by event id.
impl Inbox {
    /// The token of the last sync whose messages are all in the inbox;
    /// `None` before the first start finished its first sync.
    pub fn sync_token(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .position()?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Forgets the sync position (a new device store must learn every room
    /// with a full sync), durable on return.
    pub async fn forget_sync_token(&self) -> Result<(), StoreError> {
        self.forget_position().await
    }

    /// Whether the message is already answered or waiting in the inbox.
    pub fn seen(&self, event_id: &str) -> Result<bool, StoreError> {
        self.holds(event_id.as_bytes())
    }

    /// Takes in a sync: its jobs and its token, durable on return.
    pub async fn take_in(&self, jobs: &[Job], token: &str) -> Result<(), StoreError> {
        let token = Some(token.as_bytes().to_vec());
        self.put_async(jobs.to_vec(), token).await.map(|_| ())
    }

    /// Jobs taken in and not yet answered (after a restart: those cut off
    /// by the previous run).
    pub fn pending(&self) -> Vec<Job> {
        self.waiting().into_iter().map(|(_, job)| job).collect()
    }

    /// Marks a job answered (or abandoned: a poisonous message must not come
    /// back after every restart); durable within
    /// [`inbox::GROUP_COMMIT`], with the other answers of that moment.
    pub fn done(&self, event_id: &str) {
        self.answered(event_id.as_bytes().to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Store;

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
        inbox.done("$1");
        assert!(
            inbox.seen("$1").unwrap(),
            "seen while the answer is written"
        );
        inbox.write_answered();
        assert_eq!(inbox.pending(), vec![job("$2")]);
        assert!(inbox.seen("$1").unwrap(), "answered stays seen");
        assert!(!inbox.seen("$3").unwrap());
        inbox.prune();
        assert!(inbox.seen("$1").unwrap(), "fresh marks survive pruning");
    }
}
