//! The subscription and announcement commands, answered for any transport.
//!
//! The application (`crate::app`) routes `/subscribe`, `/unsubscribe`, `/subscriptions` and
//! `/announce` here with what the transport found out about the sender
//! ([`Who`]); nothing here calls a platform. An announcement is a draft
//! first (stored, so the confirm button works across a restart) and is
//! enqueued only when its button is pressed — once: the draft is removed in
//! the transaction that commits its notification, so a double press sends
//! nothing twice and a store error neither loses the draft nor marks it
//! sent. Only the admin who wrote a draft may send or cancel it (its id is
//! guessable), and a draft not sent within [`DRAFT_TTL_SECS`] expires.

use serde::{Deserialize, Serialize};

use super::outbox::unix_ms;
use super::subscriptions::{parse_topics, Topics, ALL};
use super::{Commit, Content, Entry, Hub, MAX_ANNOUNCEMENT_CHARS};
use crate::facts::{ChatKey, Lang, Topic};
use crate::query::NotifyCommand;
use crate::reply::{commands_in, Block, Button, Msg, Reply, ReplyKind};

/// Who asks, as the transport established it.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    pub chat: &'a ChatKey,
    /// The sender administers this chat (always true in a private chat).
    pub chat_admin: bool,
    /// The sender is one of the bot's configured admins.
    pub bot_admin: bool,
    /// A one-to-one chat with the bot.
    pub private: bool,
}

/// How long a draft waits for its *Send*: a preview left in a chat for
/// days would announce stale news when pressed.
pub const DRAFT_TTL_SECS: u64 = 24 * 3600;

#[derive(Serialize, Deserialize)]
struct Draft {
    topic: Option<Topic>,
    text: String,
    /// The private chat (= the admin) that wrote it: only they may send or
    /// cancel it.
    by: ChatKey,
    /// Unix seconds; drafts from before this field existed count as
    /// expired.
    #[serde(default)]
    created: u64,
}

impl Draft {
    fn expired(&self, now_secs: u64) -> bool {
        self.created.saturating_add(DRAFT_TTL_SECS) < now_secs
    }
}

fn list(topics: &Topics, lang: Lang) -> String {
    match topics {
        Topics::All => Msg::AllTopics.text(lang),
        Topics::Only(_) => topics.names().join(", "),
    }
}

fn topic_names() -> String {
    Topic::ALL
        .iter()
        .map(|t| t.name())
        .chain([ALL])
        .collect::<Vec<_>>()
        .join(", ")
}

fn info(lang: Lang, m: Msg) -> Reply {
    Reply::new(ReplyKind::Info, lang).say(m.render(lang))
}

fn error(lang: Lang, m: Msg) -> Reply {
    Reply::new(ReplyKind::Error, lang).say(m.render(lang))
}

fn store_failed(lang: Lang, e: impl std::fmt::Display) -> Reply {
    tracing::error!(error = %e, "notify: store failure in a command");
    error(lang, Msg::NotSaved)
}

/// `/announce`'s arguments: an optional first word naming one topic (or
/// `all`) when text follows it, and the text.
fn announce_args(args: &str) -> (Option<Topic>, &str) {
    let args = args.trim();
    let (first, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let rest = rest.trim();
    match parse_topics(first) {
        Ok(Topics::Only(ts)) if !rest.is_empty() && ts.len() == 1 => (ts.first().copied(), rest),
        // `/announce all TEXT`: every subscriber.
        Ok(Topics::All) if !first.is_empty() && !rest.is_empty() => (None, rest),
        _ => (None, args),
    }
}

/// A stored draft as its author sees it: the text, whom it will reach, and
/// the buttons that send or cancel draft `id`.
fn preview(lang: Lang, draft: &Draft, reach: usize, id: u64) -> Reply {
    let mut r = Reply::new(ReplyKind::Info, lang)
        .block(Block::Heading(Msg::AnnouncePreview.render(lang)))
        .block(Block::Quote(commands_in(&draft.text)))
        .say(Msg::WillReach(reach, draft.topic.map(Topic::name)).render(lang));
    r.buttons.push(vec![
        Button {
            label: Msg::Send(reach).text(lang),
            action: format!("/announce_send {id}"),
        },
        Button {
            label: Msg::Cancel.text(lang),
            action: format!("/announce_cancel {id}"),
        },
    ]);
    r
}

impl Hub {
    /// Answers one of the notification commands.
    pub fn command(&self, who: Who, lang: Lang, cmd: &NotifyCommand) -> Reply {
        match cmd {
            NotifyCommand::Subscribe(args) => self.subscribe(who, lang, args, true),
            NotifyCommand::Unsubscribe(args) => self.subscribe(who, lang, args, false),
            NotifyCommand::Subscriptions => match self.subs.get(who.chat) {
                Ok(topics) if topics.is_empty() => info(lang, Msg::NoSubscriptions),
                Ok(topics) => info(lang, Msg::SubscribedTo(&list(&topics, lang))),
                Err(e) => store_failed(lang, e),
            },
            NotifyCommand::Announce(args) => self.draft(who, lang, args),
            NotifyCommand::AnnounceSend(id) => self.confirm(who, lang, id, true),
            NotifyCommand::AnnounceCancel(id) => self.confirm(who, lang, id, false),
        }
    }

    fn subscribe(&self, who: Who, lang: Lang, args: &str, on: bool) -> Reply {
        if !(who.private || who.chat_admin) {
            return error(lang, Msg::SubscribeAdminOnly);
        }
        let topics = match parse_topics(args) {
            Ok(t) => t,
            Err(word) => {
                return error(
                    lang,
                    Msg::UnknownTopic(&crate::reply::echo(&word), &topic_names()),
                )
            }
        };
        let result = if on {
            self.subs.subscribe(who.chat, &topics)
        } else {
            let all = args.trim().is_empty() || topics == Topics::All;
            self.subs.unsubscribe(who.chat, (!all).then_some(&topics))
        };
        match result {
            Ok(now) if now.is_empty() => info(lang, Msg::NoLongerSubscribed),
            Ok(now) => {
                tracing::info!(chat = %who.chat, topics = %list(&now, Lang::En), "notify: subscriptions changed");
                info(lang, Msg::SubscribedNow(&list(&now, lang)))
            }
            Err(e) => store_failed(lang, e),
        }
    }

    fn refuse_announce(lang: Lang) -> Reply {
        error(lang, Msg::AnnounceAdminOnly)
    }

    /// `/announce [topic] TEXT`: checks it, stores the draft, and answers
    /// with its preview and the buttons that send or cancel it.
    fn draft(&self, who: Who, lang: Lang, args: &str) -> Reply {
        if !(who.bot_admin && who.private) {
            return Self::refuse_announce(lang);
        }
        let (topic, text) = announce_args(args);
        if text.is_empty() {
            return error(lang, Msg::AnnounceUsage);
        }
        let n = text.chars().count();
        if n > MAX_ANNOUNCEMENT_CHARS {
            return error(lang, Msg::AnnounceTooLong(n, MAX_ANNOUNCEMENT_CHARS));
        }
        let reach = match self.subs.subscribers_of(topic) {
            Ok(c) => c.len(),
            Err(e) => return store_failed(lang, e),
        };
        let draft = Draft {
            topic,
            text: text.to_string(),
            by: who.chat.clone(),
            created: unix_ms() / 1000,
        };
        match self.save_draft(&draft) {
            Ok(id) => preview(lang, &draft, reach, id),
            Err(e) => store_failed(lang, e),
        }
    }

    fn save_draft(&self, d: &Draft) -> Result<u64, crate::facts::StoreError> {
        // Expired drafts go when a new one comes: the tree stays small.
        let now = d.created;
        for kv in self.drafts.scan_prefix(b"d") {
            let (k, v) = kv?;
            let stale = serde_json::from_slice::<Draft>(&v).map_or(true, |old| old.expired(now));
            if stale {
                self.drafts.remove(k)?;
            }
        }
        let id = crate::facts::next_in_sequence(&self.drafts, "next")?;
        self.drafts
            .insert(format!("d{id}"), serde_json::to_vec(d).unwrap_or_default())?;
        self.store.flush()?;
        Ok(id)
    }

    /// A draft's *Send* or *Cancel* button: only its author's, only
    /// before it expires, only once.
    fn confirm(&self, who: Who, lang: Lang, id: &str, send: bool) -> Reply {
        if !(who.bot_admin && who.private) {
            return Self::refuse_announce(lang);
        }
        let gone = || error(lang, Msg::AnnounceGone);
        let key = format!("d{}", id.trim());
        let draft = match self.load_draft(&key) {
            Ok(Some(d)) => d,
            Ok(None) => return gone(),
            Err(e) => return store_failed(lang, e),
        };
        if draft.by != *who.chat {
            tracing::warn!(draft = %key, by = %draft.by, asked = %who.chat, "notify: an admin pressed another admin's announcement draft");
            return error(lang, Msg::AnnounceOtherAdmin);
        }
        if draft.expired(unix_ms() / 1000) {
            if let Err(e) = self.outbox.take_draft(key.as_bytes()) {
                return store_failed(lang, e);
            }
            return error(lang, Msg::AnnounceExpired);
        }
        if !send {
            return match self.outbox.take_draft(key.as_bytes()) {
                Ok(true) => info(lang, Msg::AnnounceCancelled),
                Ok(false) => gone(),
                Err(e) => store_failed(lang, e),
            };
        }
        self.send_draft(lang, &key, draft)
    }

    /// The stored draft under `key`; `None` when it is gone (sent,
    /// cancelled, expired and removed) or unreadable.
    fn load_draft(&self, key: &str) -> Result<Option<Draft>, crate::facts::StoreError> {
        Ok(self
            .drafts
            .get(key.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Enqueues the draft's notification to its topic's subscribers and
    /// takes the draft in the same transaction.
    fn send_draft(&self, lang: Lang, key: &str, draft: Draft) -> Reply {
        let chats = match self.subs.subscribers_of(draft.topic) {
            Ok(c) => c,
            Err(e) => return store_failed(lang, e),
        };
        let entry = Entry {
            topic: draft.topic,
            content: Content::Announcement { text: draft.text },
            chats,
        };
        let commit = Commit {
            mark: None,
            draft: Some(key.as_bytes()),
        };
        match self.notify_all(vec![entry], commit) {
            Ok(None) => error(lang, Msg::AnnounceGone),
            Ok(Some(made)) => match made.first() {
                Some(n) => info(lang, Msg::AnnounceSending(n.id, n.targets)),
                None => info(lang, Msg::AnnounceNoChat),
            },
            Err(e) => store_failed(lang, e),
        }
    }

    /// Enqueues an announcement to the subscribers of `topic` (`None`: all).
    pub fn announce(
        &self,
        topic: Option<Topic>,
        text: &str,
    ) -> Result<Option<super::Notification>, crate::facts::StoreError> {
        self.notify(
            topic,
            Content::Announcement {
                text: text.to_string(),
            },
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Store;
    use crate::reply::render_plain;

    fn who(chat: &ChatKey, chat_admin: bool, bot_admin: bool, private: bool) -> Who<'_> {
        Who {
            chat,
            chat_admin,
            bot_admin,
            private,
        }
    }

    #[test]
    fn only_chat_admins_change_a_groups_subscriptions() {
        let hub = Hub::open(&Store::temporary().unwrap()).unwrap();
        let r = hub.command(
            who(&ChatKey::Telegram(-1), false, false, false),
            Lang::En,
            &NotifyCommand::Subscribe("trade".into()),
        );
        assert_eq!(r.kind, ReplyKind::Error);
        assert!(hub.subs.get(&ChatKey::Telegram(-1)).unwrap().is_empty());
        let r = hub.command(
            who(&ChatKey::Telegram(-1), true, false, false),
            Lang::En,
            &NotifyCommand::Subscribe("trade".into()),
        );
        assert!(render_plain(&r).contains("trade"), "{}", render_plain(&r));
        let r = hub.command(
            who(&ChatKey::Telegram(7), false, false, true),
            Lang::Ru,
            &NotifyCommand::Subscribe(String::new()),
        );
        assert!(render_plain(&r).contains("все темы"));
    }

    #[test]
    fn an_announcement_is_sent_once_on_confirmation() {
        let hub = Hub::open(&Store::temporary().unwrap()).unwrap();
        hub.subs
            .subscribe(&ChatKey::Telegram(-1), &parse_topics("trade").unwrap())
            .unwrap();
        hub.subs
            .subscribe(&ChatKey::Telegram(-2), &parse_topics("visit").unwrap())
            .unwrap();
        let admin = who(&ChatKey::Telegram(9), true, true, true);
        let refused = hub.command(
            who(&ChatKey::Telegram(8), true, false, true),
            Lang::En,
            &NotifyCommand::Announce("hi".into()),
        );
        assert_eq!(refused.kind, ReplyKind::Error);
        let preview = hub.command(
            admin,
            Lang::En,
            &NotifyCommand::Announce("trade New figures".into()),
        );
        assert!(render_plain(&preview).contains("Chats it will reach: 1"));
        let send = preview.buttons[0][0].action.clone();
        let id = send.trim_start_matches("/announce_send ").to_string();
        assert!(
            hub.outbox.notifications().unwrap().is_empty(),
            "nothing before confirmation"
        );
        hub.command(admin, Lang::En, &NotifyCommand::AnnounceSend(id.clone()));
        let again = hub.command(admin, Lang::En, &NotifyCommand::AnnounceSend(id));
        assert_eq!(again.kind, ReplyKind::Error);
        let ns = hub.outbox.notifications().unwrap();
        assert_eq!(ns.len(), 1);
        assert_eq!(
            hub.outbox.deliveries(ns[0].id).unwrap()[0].chat,
            ChatKey::Telegram(-1)
        );
    }

    #[test]
    fn announce_takes_one_topic_word_only_when_text_follows() {
        assert_eq!(
            announce_args(" trade New figures "),
            (Some(Topic::Trade), "New figures")
        );
        assert_eq!(announce_args("all New figures"), (None, "New figures"));
        assert_eq!(announce_args("trade"), (None, "trade"));
        assert_eq!(
            announce_args("trade milestones x"),
            (Some(Topic::Trade), "milestones x")
        );
        assert_eq!(announce_args("Hello all"), (None, "Hello all"));
        assert_eq!(announce_args("  "), (None, ""));
    }

    fn draft_id(preview: &Reply) -> String {
        preview.buttons[0][0]
            .action
            .trim_start_matches("/announce_send ")
            .to_string()
    }

    #[test]
    fn only_the_author_sends_or_cancels_a_draft_and_drafts_expire() {
        let hub = Hub::open(&Store::temporary().unwrap()).unwrap();
        hub.subs
            .subscribe(&ChatKey::Telegram(-1), &parse_topics("all").unwrap())
            .unwrap();
        let ann = who(&ChatKey::Telegram(9), true, true, true);
        let bob = who(&ChatKey::Telegram(8), true, true, true);
        let preview = hub.command(ann, Lang::En, &NotifyCommand::Announce("Ann's news".into()));
        let id = draft_id(&preview);
        for cmd in [
            NotifyCommand::AnnounceSend(id.clone()),
            NotifyCommand::AnnounceCancel(id.clone()),
        ] {
            let r = hub.command(bob, Lang::En, &cmd);
            assert_eq!(r.kind, ReplyKind::Error);
            assert!(
                render_plain(&r).contains("another admin"),
                "{}",
                render_plain(&r)
            );
        }
        assert!(hub.outbox.notifications().unwrap().is_empty());
        let r = hub.command(ann, Lang::En, &NotifyCommand::AnnounceSend(id));
        assert!(
            render_plain(&r).contains("sending to chats: 1"),
            "{}",
            render_plain(&r)
        );

        // A draft older than a day is refused and removed.
        let stale = Draft {
            topic: None,
            text: "stale news".into(),
            by: ChatKey::Telegram(9),
            created: unix_ms() / 1000 - DRAFT_TTL_SECS - 60,
        };
        let id = hub.save_draft(&stale).unwrap().to_string();
        let r = hub.command(ann, Lang::En, &NotifyCommand::AnnounceSend(id.clone()));
        assert!(render_plain(&r).contains("expired"), "{}", render_plain(&r));
        let r = hub.command(ann, Lang::En, &NotifyCommand::AnnounceSend(id));
        assert!(render_plain(&r).contains("already sent or cancelled"));
        assert_eq!(hub.outbox.notifications().unwrap().len(), 1);
    }

    #[test]
    fn an_announcement_longer_than_one_message_is_refused() {
        let hub = Hub::open(&Store::temporary().unwrap()).unwrap();
        let admin = who(&ChatKey::Telegram(9), true, true, true);
        let r = hub.command(
            admin,
            Lang::En,
            &NotifyCommand::Announce("x".repeat(12_001)),
        );
        assert_eq!(r.kind, ReplyKind::Error);
        assert!(
            render_plain(&r).contains("12001 characters"),
            "{}",
            render_plain(&r)
        );
        assert!(render_plain(&r).len() < 500, "the text is not echoed");
        let r = hub.command(
            admin,
            Lang::En,
            &NotifyCommand::Announce("x".repeat(12_000)),
        );
        assert_eq!(r.buttons.len(), 1, "a preview: {}", render_plain(&r));
    }

    /// The draft is taken in the commit: when it is already gone (sent or
    /// cancelled by a concurrent press) nothing is committed at all — no
    /// notification, no watermark.
    #[test]
    fn a_notification_whose_draft_is_gone_is_not_committed() {
        let hub = Hub::open(&Store::temporary().unwrap()).unwrap();
        let entry = Entry {
            topic: None,
            content: Content::Announcement { text: "x".into() },
            chats: vec![ChatKey::Telegram(1)],
        };
        let commit = Commit {
            mark: Some(("k", b"v".to_vec())),
            draft: Some(b"d404"),
        };
        assert!(hub
            .outbox
            .enqueue_all(vec![entry], commit)
            .unwrap()
            .is_none());
        assert!(hub.outbox.notifications().unwrap().is_empty());
        assert_eq!(hub.outbox.mark("k").unwrap(), None);
    }
}
