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
use crate::reply::{Block, Button, Inline, Reply, ReplyKind};

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

fn t(lang: Lang, en: &str, ru: &str) -> String {
    if lang == Lang::En { en } else { ru }.to_string()
}

fn list(topics: &Topics, lang: Lang) -> String {
    match topics {
        Topics::All => t(lang, "all topics", "все темы"),
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

fn info(lang: Lang, text: String) -> Reply {
    Reply::new(ReplyKind::Info, lang).text(text)
}

fn error(lang: Lang, text: String) -> Reply {
    Reply::new(ReplyKind::Error, lang).text(text)
}

fn store_failed(lang: Lang, e: impl std::fmt::Display) -> Reply {
    tracing::error!(error = %e, "notify: store failure in a command");
    error(
        lang,
        t(
            lang,
            "Sorry, I could not save that. Please try again later.",
            "Не удалось сохранить. Попробуйте позже.",
        ),
    )
}

impl Hub {
    /// Answers one of the notification commands.
    pub fn command(&self, who: Who, lang: Lang, cmd: &NotifyCommand) -> Reply {
        match cmd {
            NotifyCommand::Subscribe(args) => self.subscribe(who, lang, args, true),
            NotifyCommand::Unsubscribe(args) => self.subscribe(who, lang, args, false),
            NotifyCommand::Subscriptions => match self.subs.get(who.chat) {
                Ok(topics) if topics.is_empty() => info(
                    lang,
                    t(
                        lang,
                        "This chat has no subscriptions. Subscribe with /subscribe [topics].",
                        "У этого чата нет подписок. Подписаться: /subscribe [темы].",
                    ),
                ),
                Ok(topics) => info(
                    lang,
                    format!(
                        "{} {}.",
                        t(lang, "This chat is subscribed to:", "Этот чат подписан на:"),
                        list(&topics, lang)
                    ),
                ),
                Err(e) => store_failed(lang, e),
            },
            NotifyCommand::Announce(args) => self.draft(who, lang, args),
            NotifyCommand::AnnounceSend(id) => self.confirm(who, lang, id, true),
            NotifyCommand::AnnounceCancel(id) => self.confirm(who, lang, id, false),
        }
    }

    fn subscribe(&self, who: Who, lang: Lang, args: &str, on: bool) -> Reply {
        if !(who.private || who.chat_admin) {
            return error(
                lang,
                t(
                    lang,
                    "Only an administrator of this chat can change its subscriptions.",
                    "Менять подписки этого чата может только его администратор.",
                ),
            );
        }
        let topics = match parse_topics(args) {
            Ok(t) => t,
            Err(word) => {
                return error(
                    lang,
                    format!(
                        "{} “{}”. {} {}.",
                        t(lang, "Unknown topic", "Неизвестная тема"),
                        crate::reply::echo(&word),
                        t(lang, "Topics:", "Темы:"),
                        topic_names()
                    ),
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
            Ok(now) if now.is_empty() => info(
                lang,
                t(
                    lang,
                    "This chat is no longer subscribed to anything.",
                    "Этот чат больше ни на что не подписан.",
                ),
            ),
            Ok(now) => {
                tracing::info!(chat = %who.chat, topics = %list(&now, Lang::En), "notify: subscriptions changed");
                info(
                    lang,
                    format!(
                        "{} {}. {}",
                        t(lang, "This chat is subscribed to:", "Этот чат подписан на:"),
                        list(&now, lang),
                        t(lang, "Stop with /unsubscribe.", "Отписаться: /unsubscribe.")
                    ),
                )
            }
            Err(e) => store_failed(lang, e),
        }
    }

    fn refuse_announce(lang: Lang) -> Reply {
        error(
            lang,
            t(
                lang,
                "Only the bot's administrators can announce, in a private chat with the bot.",
                "Объявления может делать только администратор бота, в личном чате с ботом.",
            ),
        )
    }

    fn draft(&self, who: Who, lang: Lang, args: &str) -> Reply {
        if !(who.bot_admin && who.private) {
            return Self::refuse_announce(lang);
        }
        let args = args.trim();
        let (first, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        let (topic, text) = match parse_topics(first) {
            Ok(Topics::Only(ts)) if !rest.trim().is_empty() && ts.len() == 1 => {
                (ts.first().copied(), rest.trim())
            }
            // `/announce all TEXT`: every subscriber.
            Ok(Topics::All) if !first.is_empty() && !rest.trim().is_empty() => (None, rest.trim()),
            _ => (None, args),
        };
        if text.is_empty() {
            return error(
                lang,
                t(
                    lang,
                    "Usage: /announce [topic] TEXT",
                    "Использование: /announce [тема] ТЕКСТ",
                ),
            );
        }
        let n = text.chars().count();
        if n > MAX_ANNOUNCEMENT_CHARS {
            return error(
                lang,
                if lang == Lang::En {
                    format!("This announcement is {n} characters long; at most {MAX_ANNOUNCEMENT_CHARS} are sent (three messages). Please shorten it.")
                } else {
                    format!("В объявлении {n} символов; отправляется не больше {MAX_ANNOUNCEMENT_CHARS} (три сообщения). Сократите его.")
                },
            );
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
        let id = match self.save_draft(&draft) {
            Ok(id) => id,
            Err(e) => return store_failed(lang, e),
        };
        let whom = match topic {
            Some(tp) => format!(
                "{} {}",
                t(lang, "subscribers of", "подписчики темы"),
                tp.name()
            ),
            None => t(lang, "all subscribed chats", "все подписанные чаты"),
        };
        let mut r = Reply::new(ReplyKind::Info, lang)
            .block(Block::Heading(vec![Inline::Text(t(
                lang,
                "Announcement preview",
                "Предпросмотр объявления",
            ))]))
            .block(Block::Quote(vec![Inline::Text(text.to_string())]))
            .text(format!(
                "{} {reach} ({whom}).",
                t(lang, "Chats it will reach:", "Получат чатов:")
            ));
        r.buttons.push(vec![
            Button {
                label: format!("{} ({reach})", t(lang, "Send", "Отправить")),
                action: format!("/announce_send {id}"),
            },
            Button {
                label: t(lang, "Cancel", "Отмена"),
                action: format!("/announce_cancel {id}"),
            },
        ]);
        r
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

    fn confirm(&self, who: Who, lang: Lang, id: &str, send: bool) -> Reply {
        if !(who.bot_admin && who.private) {
            return Self::refuse_announce(lang);
        }
        let gone = || {
            error(
                lang,
                t(
                    lang,
                    "This announcement was already sent or cancelled.",
                    "Это объявление уже отправлено или отменено.",
                ),
            )
        };
        let key = format!("d{}", id.trim());
        let draft: Draft = match self.drafts.get(key.as_bytes()) {
            Ok(Some(v)) => match serde_json::from_slice(&v) {
                Ok(d) => d,
                Err(_) => return gone(),
            },
            Ok(None) => return gone(),
            Err(e) => return store_failed(lang, e),
        };
        if draft.by != *who.chat {
            tracing::warn!(draft = %key, by = %draft.by, asked = %who.chat, "notify: an admin pressed another admin's announcement draft");
            return error(
                lang,
                t(
                    lang,
                    "This announcement was drafted by another admin: only they can send or cancel it.",
                    "Это объявление подготовил другой администратор: отправить или отменить его может только он.",
                ),
            );
        }
        if draft.expired(unix_ms() / 1000) {
            if let Err(e) = self.outbox.take_draft(key.as_bytes()) {
                return store_failed(lang, e);
            }
            return error(
                lang,
                t(
                    lang,
                    "This announcement draft has expired (drafts are kept 24 hours). Write /announce again.",
                    "Срок черновика истёк (черновики хранятся 24 часа). Напишите /announce заново.",
                ),
            );
        }
        if !send {
            return match self.outbox.take_draft(key.as_bytes()) {
                Ok(true) => info(
                    lang,
                    t(lang, "Announcement cancelled.", "Объявление отменено."),
                ),
                Ok(false) => gone(),
                Err(e) => store_failed(lang, e),
            };
        }
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
            Ok(None) => gone(),
            Ok(Some(made)) => match made.first() {
                Some(n) => info(
                    lang,
                    format!(
                        "{} #{} — {} {}.",
                        t(lang, "Announcement", "Объявление"),
                        n.id,
                        t(lang, "sending to chats:", "отправляется в чаты:"),
                        n.targets
                    ),
                ),
                None => info(
                    lang,
                    t(
                        lang,
                        "No chat is subscribed to that; nothing was sent.",
                        "На это не подписан ни один чат; ничего не отправлено.",
                    ),
                ),
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
