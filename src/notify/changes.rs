//! The store's change log becomes "Updated: …" notifications.
//!
//! Every import (`factbot import` while the bot is stopped, the automatic
//! import at start, or one made by the running process) appends to the
//! store's `changes` log. A watermark in `notify_meta` — the next change
//! sequence to send — is written in the same transaction as the
//! notification a change produced, so each change goes out exactly once,
//! whenever the bot next looks. The first time the bot ever looks, history
//! is skipped: only changes made after notifications existed are news.

use super::{Content, Hub};
use crate::facts::{Store, StoreError};

const WATERMARK: &str = "changes_next";

fn be(v: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes)
}

/// Enqueues every change not yet notified; returns how many changes were
/// looked at.
pub fn pump(hub: &Hub, store: &Store) -> Result<usize, StoreError> {
    let from = match hub.outbox.mark(WATERMARK)?.as_deref().and_then(be) {
        Some(n) => n,
        None => {
            let next = store.changes_since(0)?.last().map_or(0, |c| c.seq + 1);
            hub.outbox.set_mark(WATERMARK, &next.to_be_bytes())?;
            return Ok(0);
        }
    };
    let changes = store.changes_since(from)?;
    for c in &changes {
        let Some(topic) = c.new.as_ref().or(c.old.as_ref()).map(|f| f.topic) else {
            continue;
        };
        let mark = (WATERMARK, (c.seq + 1).to_be_bytes().to_vec());
        let n = hub.notify(
            Some(topic),
            Content::Change {
                change: Box::new(c.clone()),
            },
            Some(mark),
        )?;
        if n.is_none() {
            tracing::debug!(fact = %c.fact_id, "notify: change of a topic nobody subscribes to");
        }
    }
    Ok(changes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Dataset;
    use crate::notify::subscriptions::parse_topics;

    #[test]
    fn each_change_goes_once_to_its_topics_subscribers() {
        let store = Store::temporary().unwrap();
        store.import(&Dataset::embedded().unwrap()).unwrap();
        let hub = Hub::open(&store).unwrap();
        hub.subs
            .subscribe("tg:-1", &parse_topics("trade").unwrap())
            .unwrap();
        hub.subs
            .subscribe("tg:-2", &parse_topics("visit").unwrap())
            .unwrap();
        assert_eq!(
            pump(&hub, &store).unwrap(),
            0,
            "first look sets the watermark"
        );
        let mut ds = Dataset::embedded().unwrap();
        let f = ds.facts.iter_mut().find(|f| f.id == "trade.2011").unwrap();
        f.text.en = f.text.en.replace("769", "770");
        ds.digest = "edited".into();
        store.import(&ds).unwrap();
        assert_eq!(pump(&hub, &store).unwrap(), 1);
        assert_eq!(pump(&hub, &store).unwrap(), 0, "sent once");
        let ns = hub.outbox.notifications().unwrap();
        assert_eq!(ns.len(), 1);
        let ds = hub.outbox.deliveries(ns[0].id).unwrap();
        assert_eq!(
            ds.iter().map(|d| d.chat.as_str()).collect::<Vec<_>>(),
            ["tg:-1"]
        );
    }
}
