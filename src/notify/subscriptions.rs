//! Which chats want which news.
//!
//! One sled tree, `subscriptions`: chat key (a [`ChatKey`]'s string form,
//! as for `ChatSettings`: `tg:-100123`, `mx:!room:server`) → JSON list of
//! topic names, `all` standing for every topic. A chat with no topics left
//! has no entry, so "who is subscribed" is one scan of the tree. Every change
//! is flushed before it is confirmed to the chat, and made by
//! compare-and-swap (or, for a move, a transaction), so two admins changing
//! one chat at once never lose each other's change.

use std::collections::BTreeSet;

use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::facts::{ChatKey, Store, StoreError, Topic, Tree};

/// The topic word that means every topic.
pub const ALL: &str = "all";

/// What a chat is subscribed to. Stored as the JSON list of names it always
/// was (`["all"]`, `["milestones","trade"]`); a stored name this version
/// does not know is dropped when read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "Vec<String>", from = "Vec<String>")]
pub enum Topics {
    /// Every topic, including ones a later dataset adds.
    All,
    /// These topics (empty: not subscribed).
    Only(BTreeSet<Topic>),
}

impl Default for Topics {
    fn default() -> Topics {
        Topics::none()
    }
}

impl Topics {
    /// Not subscribed.
    pub fn none() -> Topics {
        Topics::Only(BTreeSet::new())
    }

    /// Exactly these topics.
    pub fn only(topics: impl IntoIterator<Item = Topic>) -> Topics {
        Topics::Only(topics.into_iter().collect())
    }

    /// Not subscribed to anything.
    pub fn is_empty(&self) -> bool {
        matches!(self, Topics::Only(t) if t.is_empty())
    }

    /// Whether a chat with these topics gets news of `topic` (`None`: news
    /// for every subscriber, such as an announcement to all).
    pub fn wants(&self, topic: Option<Topic>) -> bool {
        match (self, topic) {
            (Topics::All, _) => true,
            (Topics::Only(t), None) => !t.is_empty(),
            (Topics::Only(t), Some(one)) => t.contains(&one),
        }
    }

    /// These topics and `more`.
    pub fn add(&mut self, more: &Topics) {
        match (&mut *self, more) {
            (Topics::All, _) => {}
            (_, Topics::All) => *self = Topics::All,
            (Topics::Only(t), Topics::Only(m)) => t.extend(m.iter().copied()),
        }
    }

    /// These topics without `fewer`: every topic minus trade is every
    /// other topic; minus all is none.
    pub fn remove(&mut self, fewer: &Topics) {
        let Topics::Only(drop) = fewer else {
            *self = Topics::none();
            return;
        };
        if let Topics::All = self {
            *self = Topics::only(Topic::ALL);
        }
        if let Topics::Only(t) = self {
            t.retain(|x| !drop.contains(x));
        }
    }

    /// The names as stored and listed: `all`, or topic names.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Topics::All => vec![ALL],
            Topics::Only(t) => t.iter().map(|t| t.name()).collect(),
        }
    }
}

impl From<Topics> for Vec<String> {
    fn from(t: Topics) -> Vec<String> {
        t.names().into_iter().map(str::to_string).collect()
    }
}

impl From<Vec<String>> for Topics {
    fn from(names: Vec<String>) -> Topics {
        if names.iter().any(|n| n == ALL) {
            return Topics::All;
        }
        Topics::only(names.iter().filter_map(|n| Topic::parse(n)))
    }
}

/// Parses topic words as a chat types them (`trade milestones`, `торговля`,
/// `all`, commas allowed). Empty input means all topics. On an unknown
/// word, returns it.
pub fn parse_topics(args: &str) -> Result<Topics, String> {
    let mut all = false;
    let mut only = BTreeSet::new();
    for w in args
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
    {
        let w = w.to_lowercase();
        match w.as_str() {
            "all" | "все" | "всё" => all = true,
            other => match Topic::parse(other).or_else(|| crate::query::russian_topic(other)) {
                Some(t) => {
                    only.insert(t);
                }
                None => return Err(w),
            },
        }
    }
    Ok(if all || only.is_empty() {
        Topics::All
    } else {
        Topics::Only(only)
    })
}

/// The subscriptions tree. Cheap to clone.
#[derive(Clone)]
pub struct Subscriptions {
    tree: sled::Tree,
    /// For its serialised flush.
    store: Store,
}

impl Subscriptions {
    pub fn open(store: &Store) -> Result<Subscriptions, StoreError> {
        Ok(Subscriptions {
            tree: store.tree(Tree::Subscriptions)?,
            store: store.clone(),
        })
    }

    fn decode(chat: &[u8], v: &[u8]) -> Result<Topics, StoreError> {
        serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
            tree: "subscriptions",
            message: format!("{}: {e}", String::from_utf8_lossy(chat)),
        })
    }

    /// A chat's topics (empty: not subscribed).
    pub fn get(&self, chat: &ChatKey) -> Result<Topics, StoreError> {
        let key = chat.to_bytes();
        match self.tree.get(&key)? {
            Some(v) => Self::decode(&key, &v),
            None => Ok(Topics::none()),
        }
    }

    fn put(&self, chat: &ChatKey, topics: &Topics) -> Result<(), StoreError> {
        if topics.is_empty() {
            self.tree.remove(chat.to_bytes())?;
        } else {
            let v = serde_json::to_vec(topics).unwrap_or_default();
            self.tree.insert(chat.to_bytes(), v)?;
        }
        self.store.flush()?;
        Ok(())
    }

    /// Changes a chat's topics by compare-and-swap, not flushed: when
    /// another change to the same chat lands in between, `change` runs
    /// again on its result, so concurrent `/subscribe` and `/unsubscribe`
    /// never lose each other's topics. Returns the topics after.
    fn update(&self, chat: &ChatKey, change: impl Fn(&mut Topics)) -> Result<Topics, StoreError> {
        let mut corrupt = None;
        let mut after = Topics::none();
        let key = chat.to_bytes();
        self.tree.update_and_fetch(&key, |old| {
            let mut topics = match old.map(|v| Self::decode(&key, v)) {
                None => Topics::none(),
                Some(Ok(t)) => t,
                Some(Err(e)) => {
                    // Leave the record as it is and report it.
                    corrupt = Some(e);
                    return old.map(<[u8]>::to_vec);
                }
            };
            corrupt = None;
            change(&mut topics);
            let v = (!topics.is_empty()).then(|| serde_json::to_vec(&topics).unwrap_or_default());
            after = topics;
            v
        })?;
        match corrupt {
            Some(e) => Err(e),
            None => Ok(after),
        }
    }

    /// Adds topics; returns the chat's topics after.
    pub fn subscribe(&self, chat: &ChatKey, topics: &Topics) -> Result<Topics, StoreError> {
        let now = self.update(chat, |t| t.add(topics))?;
        self.store.flush()?;
        Ok(now)
    }

    /// Adds many chats' topics with one flush at the end (bulk import).
    pub fn subscribe_many(&self, items: &[(ChatKey, Topics)]) -> Result<(), StoreError> {
        for (chat, topics) in items {
            self.update(chat, |t| t.add(topics))?;
        }
        self.store.flush()?;
        Ok(())
    }

    /// Replaces a chat's topics (config-subscribed channels).
    pub fn set(&self, chat: &ChatKey, topics: &Topics) -> Result<(), StoreError> {
        self.put(chat, topics)
    }

    /// Removes topics (`None`: all of them); returns the topics left.
    /// Leaving `all` while naming topics keeps the others: `all` minus
    /// `trade` becomes every topic but trade.
    pub fn unsubscribe(
        &self,
        chat: &ChatKey,
        topics: Option<&Topics>,
    ) -> Result<Topics, StoreError> {
        let Some(drop) = topics.filter(|t| **t != Topics::All) else {
            self.put(chat, &Topics::none())?;
            return Ok(Topics::none());
        };
        let now = self.update(chat, |now| now.remove(drop))?;
        self.store.flush()?;
        Ok(now)
    }

    /// Every subscribed chat with its topics, in key order. A stored key
    /// that is no chat key (no version writes one) is logged and passed
    /// over, so it costs that entry alone, never every chat's news.
    pub fn list(&self) -> Result<Vec<(ChatKey, Topics)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree.iter() {
            let (k, v) = kv?;
            match ChatKey::from_bytes(&k) {
                Ok(chat) => out.push((chat, Self::decode(&k, &v)?)),
                Err(e) => {
                    tracing::error!(error = %e, "notify: a subscription under a malformed chat key is skipped")
                }
            }
        }
        Ok(out)
    }

    /// The chats that get news of `topic` (`None`: every subscribed chat).
    pub fn subscribers_of(&self, topic: Option<Topic>) -> Result<Vec<ChatKey>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|(_, t)| t.wants(topic))
            .map(|(c, _)| c)
            .collect())
    }

    /// A chat got a new id (Telegram group → supergroup, a Matrix room
    /// upgraded): its topics join the new key's, in one transaction.
    pub fn move_chat(&self, old: &ChatKey, new: &ChatKey) -> Result<(), StoreError> {
        let (old, new) = (old.to_bytes(), new.to_bytes());
        let r: Result<(), TransactionError<StoreError>> = self.tree.transaction(|t| {
            let Some(v) = t.get(&old)? else {
                return Ok(());
            };
            let abort = ConflictableTransactionError::Abort;
            let mut topics = Self::decode(&old, &v).map_err(abort)?;
            if let Some(n) = t.get(&new)? {
                topics.add(&Self::decode(&new, &n).map_err(abort)?);
            }
            t.insert(
                new.as_slice(),
                serde_json::to_vec(&topics).unwrap_or_default(),
            )?;
            t.remove(old.as_slice())?;
            Ok(())
        });
        match r {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        }
        self.store.flush()
    }

    /// Drops a chat's subscription; whether it had one.
    pub fn remove(&self, chat: &ChatKey) -> Result<bool, StoreError> {
        let had = self.tree.remove(chat.to_bytes())?.is_some();
        self.store.flush()?;
        Ok(had)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[&str]) -> Topics {
        Topics::from(words.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    /// Stored lists read as before, `all` and names alike; names this
    /// version does not know are dropped; writing gives the same lists.
    #[test]
    fn topics_are_stored_as_the_lists_they_always_were() {
        let read = |json: &str| serde_json::from_str::<Topics>(json).unwrap();
        assert_eq!(read(r#"["all"]"#), Topics::All);
        assert_eq!(read(r#"["trade","all"]"#), Topics::All);
        assert_eq!(
            read(r#"["visit","trade","weather"]"#),
            Topics::only([Topic::Trade, Topic::Visit])
        );
        assert!(read("[]").is_empty());
        assert_eq!(serde_json::to_string(&Topics::All).unwrap(), r#"["all"]"#);
        let two = serde_json::to_string(&Topics::only([Topic::Trade, Topic::Milestones])).unwrap();
        assert_eq!(read(&two), Topics::only([Topic::Trade, Topic::Milestones]));
    }

    #[test]
    fn all_minus_a_topic_is_every_other_topic() {
        let mut t = Topics::All;
        t.remove(&Topics::only([Topic::Trade]));
        assert!(!t.wants(Some(Topic::Trade)));
        assert!(Topic::ALL
            .iter()
            .filter(|x| **x != Topic::Trade)
            .all(|x| t.wants(Some(*x))));
        t.add(&Topics::All);
        assert_eq!(t, Topics::All);
        t.remove(&Topics::All);
        assert!(t.is_empty() && !t.wants(None));
    }

    #[test]
    fn topic_words_parse_in_both_languages() {
        assert_eq!(parse_topics("").unwrap(), set(&["all"]));
        assert_eq!(
            parse_topics("Trade, торговля milestones").unwrap(),
            set(&["milestones", "trade"])
        );
        assert_eq!(parse_topics("trade weather").unwrap_err(), "weather");
    }

    #[test]
    fn subscribe_unsubscribe_list_and_select() {
        let s = Subscriptions::open(&Store::temporary().unwrap()).unwrap();
        s.subscribe(&ChatKey::Telegram(-1), &set(&["trade"]))
            .unwrap();
        s.subscribe(&ChatKey::Telegram(-2), &set(&["all"])).unwrap();
        s.subscribe(&ChatKey::Telegram(-3), &set(&["milestones", "visit"]))
            .unwrap();
        assert_eq!(
            s.subscribers_of(Some(Topic::Trade)).unwrap(),
            vec![ChatKey::Telegram(-1), ChatKey::Telegram(-2)]
        );
        assert_eq!(s.subscribers_of(None).unwrap().len(), 3);
        // `all` minus trade: every other topic.
        let left = s
            .unsubscribe(&ChatKey::Telegram(-2), Some(&set(&["trade"])))
            .unwrap();
        assert!(!left.wants(Some(Topic::Trade)) && left.wants(Some(Topic::Visit)));
        assert_eq!(
            s.subscribers_of(Some(Topic::Trade)).unwrap(),
            vec![ChatKey::Telegram(-1)]
        );
        assert!(s
            .unsubscribe(&ChatKey::Telegram(-1), None)
            .unwrap()
            .is_empty());
        assert!(s.get(&ChatKey::Telegram(-1)).unwrap().is_empty());
        assert_eq!(s.list().unwrap().len(), 2);
    }

    /// Eight threads change one chat's topics at once, many times over:
    /// no change is lost (a read-modify-write would drop some).
    #[test]
    fn concurrent_changes_to_one_chat_all_take_effect() {
        let s = Subscriptions::open(&Store::temporary().unwrap()).unwrap();
        let topics: Vec<&str> = Topic::ALL.iter().map(|t| t.name()).take(8).collect();
        assert_eq!(topics.len(), 8);
        for round in 0..40 {
            let chat = ChatKey::Telegram(-1 - round);
            // Half the topics start subscribed; those are dropped while the
            // other half are added.
            s.subscribe(&chat, &set(&topics[4..])).unwrap();
            let go = std::sync::Barrier::new(topics.len());
            std::thread::scope(|sc| {
                for (i, t) in topics.iter().enumerate() {
                    let (s, chat, go) = (&s, &chat, &go);
                    sc.spawn(move || {
                        go.wait();
                        if i < 4 {
                            s.subscribe(chat, &set(&[t])).unwrap();
                        } else {
                            s.unsubscribe(chat, Some(&set(&[t]))).unwrap();
                        }
                    });
                }
            });
            assert_eq!(
                s.get(&chat).unwrap(),
                set(&topics[..4]),
                "round {round}: a concurrent change was lost"
            );
        }
    }

    #[test]
    fn concurrent_moves_and_subscriptions_keep_every_topic() {
        let s = Subscriptions::open(&Store::temporary().unwrap()).unwrap();
        for round in 0..40 {
            let (old, new) = (
                ChatKey::Telegram(-1 - round),
                ChatKey::Telegram(-1000 - round),
            );
            s.subscribe(&old, &set(&["trade"])).unwrap();
            let go = std::sync::Barrier::new(3);
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    go.wait();
                    s.move_chat(&old, &new).unwrap();
                });
                sc.spawn(|| {
                    go.wait();
                    s.subscribe(&new, &set(&["visit"])).unwrap();
                });
                sc.spawn(|| {
                    go.wait();
                    s.subscribe(&new, &set(&["people"])).unwrap();
                });
            });
            assert_eq!(
                s.get(&new).unwrap(),
                set(&["people", "trade", "visit"]),
                "round {round}"
            );
            assert!(s.get(&old).unwrap().is_empty());
        }
    }

    /// A store written before `ChatKey` reads as it was: the same key
    /// bytes on disk, found by the typed key; a key that is no chat key
    /// costs only its own entry.
    #[test]
    fn subscriptions_are_stored_under_the_keys_they_always_were() {
        let s = Subscriptions::open(&Store::temporary().unwrap()).unwrap();
        s.tree
            .insert("tg:-100123", br#"["trade"]"#.to_vec())
            .unwrap();
        s.tree
            .insert("mx:!r:example.org", br#"["all"]"#.to_vec())
            .unwrap();
        s.tree.insert("xx:bad", br#"["all"]"#.to_vec()).unwrap();
        let room = ChatKey::matrix("!r:example.org");
        assert_eq!(s.get(&ChatKey::Telegram(-100123)).unwrap(), set(&["trade"]));
        assert_eq!(
            s.subscribers_of(None).unwrap(),
            vec![room.clone(), ChatKey::Telegram(-100123)]
        );
        s.subscribe(&ChatKey::telegram_channel("@news"), &set(&["visit"]))
            .unwrap();
        assert_eq!(
            s.tree.get("tg:@news").unwrap().as_deref(),
            Some(&br#"["visit"]"#[..])
        );
        assert!(s.remove(&room).unwrap());
        assert!(s.tree.get("mx:!r:example.org").unwrap().is_none());
    }

    #[test]
    fn a_moved_chat_keeps_its_topics_and_a_removed_one_loses_them() {
        let s = Subscriptions::open(&Store::temporary().unwrap()).unwrap();
        s.subscribe(&ChatKey::Telegram(-5), &set(&["trade"]))
            .unwrap();
        s.move_chat(&ChatKey::Telegram(-5), &ChatKey::Telegram(-1005))
            .unwrap();
        assert!(s.get(&ChatKey::Telegram(-5)).unwrap().is_empty());
        assert_eq!(s.get(&ChatKey::Telegram(-1005)).unwrap(), set(&["trade"]));
        assert!(s.remove(&ChatKey::Telegram(-1005)).unwrap());
        assert!(!s.remove(&ChatKey::Telegram(-1005)).unwrap());
        assert!(s.subscribers_of(None).unwrap().is_empty());
    }
}
