//! The store's change log becomes "Updated: …" notifications.
//!
//! Every import (`factbot import` while the bot is stopped, the automatic
//! import at start, or one made by the running process) appends to the
//! store's `changes` log. A watermark in `notify_meta` — the next change
//! sequence to send — is written in the same transaction as the
//! notification a change produced, so each change goes out exactly once,
//! whenever the bot next looks. The first time the bot ever looks, history
//! is skipped: only changes made after notifications existed are news.
//! Removals are summarised: one message per chat for all the facts an
//! import removed, not one per fact.

use std::collections::BTreeMap;

use super::content::RemovedFact;
use super::{Commit, Content, Entry, Hub};
use crate::facts::{Change, ChatKey, Fact, Store, StoreError};

const WATERMARK: &str = "changes_next";

fn be(v: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes)
}

/// Enqueues every change not yet notified; returns how many changes were
/// looked at. Additions and updates go out one notification per change; a
/// run of removals (an import's removals come after its other changes) goes
/// out as one summary per chat, listing the removed facts of the chat's
/// topics — committed with the watermark in one step, so each chat gets
/// it once.
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
    let removal = |c: &Change| c.new.is_none() && c.old.is_some();
    let mut i = 0;
    while i < changes.len() {
        if removal(&changes[i]) {
            let run = changes[i..].iter().take_while(|c| removal(c)).count();
            summarise_removals(hub, &changes[i..i + run])?;
            i += run;
            continue;
        }
        let c = &changes[i];
        i += 1;
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

/// One notification per distinct set of removed facts a chat cares about;
/// all of them, and the watermark past the run, in one commit.
fn summarise_removals(hub: &Hub, run: &[Change]) -> Result<(), StoreError> {
    let Some(last) = run.last() else {
        return Ok(());
    };
    let removed: Vec<&Fact> = run.iter().filter_map(|c| c.old.as_ref()).collect();
    let mut groups: BTreeMap<Vec<usize>, Vec<ChatKey>> = BTreeMap::new();
    for (chat, topics) in hub.subs.list()? {
        let mine: Vec<usize> = removed
            .iter()
            .enumerate()
            .filter(|(_, f)| topics.wants(Some(f.topic)))
            .map(|(i, _)| i)
            .collect();
        if !mine.is_empty() {
            groups.entry(mine).or_default().push(chat);
        }
    }
    let entries: Vec<Entry> = groups
        .into_iter()
        .map(|(facts, chats)| {
            let first = removed[facts[0]].topic;
            let one_topic = facts.iter().all(|&i| removed[i].topic == first);
            Entry {
                topic: one_topic.then_some(first),
                content: Content::Removed {
                    facts: facts.iter().map(|&i| RemovedFact::of(removed[i])).collect(),
                },
                chats,
            }
        })
        .collect();
    tracing::info!(
        removed = removed.len(),
        summaries = entries.len(),
        "notify: removed facts summarised"
    );
    let mark = (WATERMARK, (last.seq + 1).to_be_bytes().to_vec());
    hub.notify_all(
        entries,
        Commit {
            mark: Some(mark),
            draft: None,
        },
    )?;
    Ok(())
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
            .subscribe(&ChatKey::Telegram(-1), &parse_topics("trade").unwrap())
            .unwrap();
        hub.subs
            .subscribe(&ChatKey::Telegram(-2), &parse_topics("visit").unwrap())
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
            ds.iter().map(|d| d.chat.clone()).collect::<Vec<_>>(),
            [ChatKey::Telegram(-1)]
        );
    }

    /// An import that removes three facts and updates one: each chat gets
    /// one summary of the removed facts of its topics (not one message per
    /// fact), and the update as before — once.
    #[test]
    fn removals_go_out_as_one_summary_per_chat() {
        let store = Store::temporary().unwrap();
        store.import(&Dataset::embedded().unwrap()).unwrap();
        let hub = Hub::open(&store).unwrap();
        for (chat, topics) in [
            (ChatKey::Telegram(-1), "trade"),
            (ChatKey::Telegram(-2), "visit"),
            (ChatKey::Telegram(-3), "all"),
            (ChatKey::Telegram(-4), "meetings"),
        ] {
            hub.subs
                .subscribe(&chat, &parse_topics(topics).unwrap())
                .unwrap();
        }
        pump(&hub, &store).unwrap();
        let mut ds = Dataset::embedded().unwrap();
        let f = ds.facts.iter_mut().find(|f| f.id == "trade.2011").unwrap();
        f.text.en = f.text.en.replace("769", "770");
        let gone = ["trade.gateways", "visit.year", "visit.place"];
        ds.facts.retain(|f| !gone.contains(&f.id.as_str()));
        ds.digest = "edited".into();
        store.import(&ds).unwrap();
        assert_eq!(pump(&hub, &store).unwrap(), 4);
        assert_eq!(pump(&hub, &store).unwrap(), 0, "sent once");

        let mut got: BTreeMap<ChatKey, Vec<Vec<String>>> = BTreeMap::new();
        for n in hub.outbox.notifications().unwrap() {
            let ids = match &n.content {
                Content::Removed { facts } => facts.iter().map(|f| f.id.clone()).collect(),
                Content::Change { change } => vec![format!("updated {}", change.fact_id)],
                other => panic!("{other:?}"),
            };
            for d in hub.outbox.deliveries(n.id).unwrap() {
                got.entry(d.chat).or_default().push(ids.clone());
            }
        }
        let v = |items: &[&[&str]]| -> Vec<Vec<String>> {
            items
                .iter()
                .map(|i| i.iter().map(|s| s.to_string()).collect())
                .collect()
        };
        assert_eq!(
            got[&ChatKey::Telegram(-1)],
            v(&[&["updated trade.2011"], &["trade.gateways"]])
        );
        assert_eq!(
            got[&ChatKey::Telegram(-2)],
            v(&[&["visit.place", "visit.year"]])
        );
        assert_eq!(
            got[&ChatKey::Telegram(-3)],
            v(&[
                &["updated trade.2011"],
                &["trade.gateways", "visit.place", "visit.year"]
            ])
        );
        assert!(
            !got.contains_key(&ChatKey::Telegram(-4)),
            "no news of its topics"
        );
        let summary = Content::Removed {
            facts: vec![RemovedFact::of(&Dataset::embedded().unwrap().facts[0])],
        }
        .render(
            crate::facts::Lang::En,
            &crate::catalog::Catalog::build(vec![], &[], String::new()),
        );
        let shown = crate::reply::render_plain(&summary).to_lowercase();
        assert!(
            shown.contains("facts removed from the dataset: 1"),
            "{shown}"
        );
    }
}
