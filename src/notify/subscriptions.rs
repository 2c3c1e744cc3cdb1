//! Which chats want which news.
//!
//! One sled tree, `subscriptions`: chat key (the same transport-qualified
//! key as `ChatSettings`: `tg:-100123`, `mx:!room:server`) → JSON list of
//! topic names, `all` standing for every topic. A chat with no topics left
//! has no entry, so "who is subscribed" is one scan of the tree. Every change
//! is flushed before it is confirmed to the chat.

use std::collections::BTreeSet;

use crate::facts::{Store, StoreError, Topic};

/// The topic word that means every topic.
pub const ALL: &str = "all";

/// A chat's topics: topic names and/or [`ALL`].
pub type Topics = BTreeSet<String>;

/// Parses topic words as a chat types them (`trade milestones`, `торговля`,
/// `all`, commas allowed). Empty input means all topics. On an unknown
/// word, returns it.
pub fn parse_topics(args: &str) -> Result<Topics, String> {
    let mut out = Topics::new();
    for w in args
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
    {
        let w = w.to_lowercase();
        let name = match w.as_str() {
            "all" | "все" | "всё" => ALL,
            other => match Topic::parse(other).or_else(|| crate::query::russian_topic(other)) {
                Some(t) => t.name(),
                None => return Err(w),
            },
        };
        out.insert(name.to_string());
    }
    if out.is_empty() {
        out.insert(ALL.to_string());
    }
    Ok(out)
}

/// Whether a chat with `topics` gets news of `topic` (`None`: news for
/// every subscriber, such as an announcement to all).
pub fn wants(topics: &Topics, topic: Option<Topic>) -> bool {
    match topic {
        None => !topics.is_empty(),
        Some(t) => topics.contains(ALL) || topics.contains(t.name()),
    }
}

/// The subscriptions tree. Cheap to clone.
#[derive(Clone)]
pub struct Subscriptions {
    tree: sled::Tree,
}

impl Subscriptions {
    pub fn open(store: &Store) -> Result<Subscriptions, StoreError> {
        Ok(Subscriptions {
            tree: store.tree("subscriptions")?,
        })
    }

    fn decode(chat: &[u8], v: &[u8]) -> Result<Topics, StoreError> {
        serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
            tree: "subscriptions",
            message: format!("{}: {e}", String::from_utf8_lossy(chat)),
        })
    }

    /// A chat's topics (empty: not subscribed).
    pub fn get(&self, chat: &str) -> Result<Topics, StoreError> {
        match self.tree.get(chat)? {
            Some(v) => Self::decode(chat.as_bytes(), &v),
            None => Ok(Topics::new()),
        }
    }

    fn put(&self, chat: &str, topics: &Topics) -> Result<(), StoreError> {
        if topics.is_empty() {
            self.tree.remove(chat)?;
        } else {
            let v = serde_json::to_vec(topics).unwrap_or_default();
            self.tree.insert(chat, v)?;
        }
        self.tree.flush()?;
        Ok(())
    }

    /// Adds topics; returns the chat's topics after.
    pub fn subscribe(&self, chat: &str, topics: &Topics) -> Result<Topics, StoreError> {
        let mut now = self.get(chat)?;
        now.extend(topics.iter().cloned());
        self.put(chat, &now)?;
        Ok(now)
    }

    /// Adds many chats' topics with one flush at the end (bulk import).
    pub fn subscribe_many(&self, items: &[(String, Topics)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (chat, topics) in items {
            let mut now = self.get(chat)?;
            now.extend(topics.iter().cloned());
            batch.insert(
                chat.as_bytes(),
                serde_json::to_vec(&now).unwrap_or_default(),
            );
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Replaces a chat's topics (config-subscribed channels).
    pub fn set(&self, chat: &str, topics: &Topics) -> Result<(), StoreError> {
        self.put(chat, topics)
    }

    /// Removes topics (`None`: all of them); returns the topics left.
    /// Leaving `all` while naming topics keeps the others: `all` minus
    /// `trade` becomes every topic but trade.
    pub fn unsubscribe(&self, chat: &str, topics: Option<&Topics>) -> Result<Topics, StoreError> {
        let Some(drop) = topics.filter(|t| !t.contains(ALL)) else {
            self.put(chat, &Topics::new())?;
            return Ok(Topics::new());
        };
        let mut now = self.get(chat)?;
        if now.remove(ALL) {
            now.extend(Topic::ALL.iter().map(|t| t.name().to_string()));
        }
        for t in drop {
            now.remove(t);
        }
        self.put(chat, &now)?;
        Ok(now)
    }

    /// Every subscribed chat with its topics, in key order.
    pub fn list(&self) -> Result<Vec<(String, Topics)>, StoreError> {
        self.tree
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    Self::decode(&k, &v)?,
                ))
            })
            .collect()
    }

    /// The chats that get news of `topic` (`None`: every subscribed chat).
    pub fn subscribers_of(&self, topic: Option<Topic>) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|(_, t)| wants(t, topic))
            .map(|(c, _)| c)
            .collect())
    }

    /// A chat got a new id (Telegram group → supergroup): its topics join
    /// the new key's.
    pub fn move_chat(&self, old: &str, new: &str) -> Result<(), StoreError> {
        let topics = self.get(old)?;
        if topics.is_empty() {
            return Ok(());
        }
        self.subscribe(new, &topics)?;
        self.put(old, &Topics::new())
    }

    /// Drops a chat's subscription; whether it had one.
    pub fn remove(&self, chat: &str) -> Result<bool, StoreError> {
        let had = self.tree.remove(chat)?.is_some();
        self.tree.flush()?;
        Ok(had)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[&str]) -> Topics {
        words.iter().map(|s| s.to_string()).collect()
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
        s.subscribe("tg:-1", &set(&["trade"])).unwrap();
        s.subscribe("tg:-2", &set(&["all"])).unwrap();
        s.subscribe("tg:-3", &set(&["milestones", "visit"]))
            .unwrap();
        assert_eq!(
            s.subscribers_of(Some(Topic::Trade)).unwrap(),
            vec!["tg:-1", "tg:-2"]
        );
        assert_eq!(s.subscribers_of(None).unwrap().len(), 3);
        // `all` minus trade: every other topic.
        let left = s.unsubscribe("tg:-2", Some(&set(&["trade"]))).unwrap();
        assert!(!left.contains("trade") && left.contains("visit"));
        assert_eq!(s.subscribers_of(Some(Topic::Trade)).unwrap(), vec!["tg:-1"]);
        assert!(s.unsubscribe("tg:-1", None).unwrap().is_empty());
        assert!(s.get("tg:-1").unwrap().is_empty());
        assert_eq!(s.list().unwrap().len(), 2);
    }

    #[test]
    fn a_moved_chat_keeps_its_topics_and_a_removed_one_loses_them() {
        let s = Subscriptions::open(&Store::temporary().unwrap()).unwrap();
        s.subscribe("tg:-5", &set(&["trade"])).unwrap();
        s.move_chat("tg:-5", "tg:-1005").unwrap();
        assert!(s.get("tg:-5").unwrap().is_empty());
        assert_eq!(s.get("tg:-1005").unwrap(), set(&["trade"]));
        assert!(s.remove("tg:-1005").unwrap());
        assert!(!s.remove("tg:-1005").unwrap());
        assert!(s.subscribers_of(None).unwrap().is_empty());
    }
}
