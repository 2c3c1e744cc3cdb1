//! The subscription and announcement commands, answered for any transport.
//!
//! The engine routes `/subscribe`, `/unsubscribe`, `/subscriptions` and
//! `/announce` here with what the transport found out about the sender
//! ([`Who`]); nothing here calls a platform. An announcement is a draft
//! first (stored, so the confirm button works across a restart) and is
//! enqueued only when its button is pressed — once: the draft is taken out
//! of the store atomically, so a double press sends nothing twice.

use serde::{Deserialize, Serialize};

use super::subscriptions::{parse_topics, Topics, ALL};
use super::{Content, Hub};
use crate::facts::{Lang, Topic};
use crate::query::Command;
use crate::reply::{Block, Button, Inline, Reply, ReplyKind};

/// Who asks, as the transport established it.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    pub chat: &'a str,
    /// The sender administers this chat (always true in a private chat).
    pub chat_admin: bool,
    /// The sender is one of the bot's configured admins.
    pub bot_admin: bool,
    /// A one-to-one chat with the bot.
    pub private: bool,
}

#[derive(Serialize, Deserialize)]
struct Draft {
    topic: Option<Topic>,
    text: String,
    by: String,
}

fn t(lang: Lang, en: &str, ru: &str) -> String {
    if lang == Lang::En { en } else { ru }.to_string()
}

fn list(topics: &Topics, lang: Lang) -> String {
    if topics.contains(ALL) {
        return t(lang, "all topics", "все темы");
    }
    topics.iter().cloned().collect::<Vec<_>>().join(", ")
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
    /// Answers one of the notification commands; `None` for other commands.
    pub fn command(&self, who: Who, lang: Lang, cmd: &Command) -> Option<Reply> {
        Some(match cmd {
            Command::Subscribe(args) => self.subscribe(who, lang, args, true),
            Command::Unsubscribe(args) => self.subscribe(who, lang, args, false),
            Command::Subscriptions => match self.subs.get(who.chat) {
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
            Command::Announce(args) => self.draft(who, lang, args),
            Command::AnnounceSend(id) => self.confirm(who, lang, id, true),
            Command::AnnounceCancel(id) => self.confirm(who, lang, id, false),
            _ => return None,
        })
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
                        "{} “{word}”. {} {}.",
                        t(lang, "Unknown topic", "Неизвестная тема"),
                        t(lang, "Topics:", "Темы:"),
                        topic_names()
                    ),
                )
            }
        };
        let result = if on {
            self.subs.subscribe(who.chat, &topics)
        } else {
            let all = args.trim().is_empty() || topics.contains(ALL);
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
                tracing::info!(chat = who.chat, topics = %list(&now, Lang::En), "notify: subscriptions changed");
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
            Ok(ts) if !first.is_empty() && !rest.trim().is_empty() && ts.len() == 1 => {
                let name = ts.iter().next().cloned().unwrap_or_default();
                (Topic::parse(&name), rest.trim())
            }
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
        let reach = match self.subs.subscribers_of(topic) {
            Ok(c) => c.len(),
            Err(e) => return store_failed(lang, e),
        };
        let draft = Draft {
            topic,
            text: text.to_string(),
            by: who.chat.to_string(),
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
        let draft: Draft = match self.drafts.remove(key.as_bytes()) {
            Ok(Some(v)) => match serde_json::from_slice(&v) {
                Ok(d) => d,
                Err(_) => return gone(),
            },
            Ok(None) => return gone(),
            Err(e) => return store_failed(lang, e),
        };
        if !send {
            let _ = self.store.flush();
            return info(
                lang,
                t(lang, "Announcement cancelled.", "Объявление отменено."),
            );
        }
        match self.announce(draft.topic, &draft.text) {
            Ok(Some(n)) => info(
                lang,
                format!(
                    "{} #{} — {} {}.",
                    t(lang, "Announcement", "Объявление"),
                    n.id,
                    t(lang, "sending to chats:", "отправляется в чаты:"),
                    n.targets
                ),
            ),
            Ok(None) => info(
                lang,
                t(
                    lang,
                    "No chat is subscribed to that; nothing was sent.",
                    "На это не подписан ни один чат; ничего не отправлено.",
                ),
            ),
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

    fn who(chat: &str, chat_admin: bool, bot_admin: bool, private: bool) -> Who<'_> {
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
        let r = hub
            .command(
                who("tg:-1", false, false, false),
                Lang::En,
                &Command::Subscribe("trade".into()),
            )
            .unwrap();
        assert_eq!(r.kind, ReplyKind::Error);
        assert!(hub.subs.get("tg:-1").unwrap().is_empty());
        let r = hub
            .command(
                who("tg:-1", true, false, false),
                Lang::En,
                &Command::Subscribe("trade".into()),
            )
            .unwrap();
        assert!(render_plain(&r).contains("trade"), "{}", render_plain(&r));
        let r = hub
            .command(
                who("tg:7", false, false, true),
                Lang::Ru,
                &Command::Subscribe(String::new()),
            )
            .unwrap();
        assert!(render_plain(&r).contains("все темы"));
    }

    #[test]
    fn an_announcement_is_sent_once_on_confirmation() {
        let hub = Hub::open(&Store::temporary().unwrap()).unwrap();
        hub.subs
            .subscribe("tg:-1", &parse_topics("trade").unwrap())
            .unwrap();
        hub.subs
            .subscribe("tg:-2", &parse_topics("visit").unwrap())
            .unwrap();
        let admin = who("tg:9", true, true, true);
        let refused = hub
            .command(
                who("tg:8", true, false, true),
                Lang::En,
                &Command::Announce("hi".into()),
            )
            .unwrap();
        assert_eq!(refused.kind, ReplyKind::Error);
        let preview = hub
            .command(
                admin,
                Lang::En,
                &Command::Announce("trade New figures".into()),
            )
            .unwrap();
        assert!(render_plain(&preview).contains("Chats it will reach: 1"));
        let send = preview.buttons[0][0].action.clone();
        let id = send.trim_start_matches("/announce_send ").to_string();
        assert!(
            hub.outbox.notifications().unwrap().is_empty(),
            "nothing before confirmation"
        );
        hub.command(admin, Lang::En, &Command::AnnounceSend(id.clone()))
            .unwrap();
        let again = hub
            .command(admin, Lang::En, &Command::AnnounceSend(id))
            .unwrap();
        assert_eq!(again.kind, ReplyKind::Error);
        let ns = hub.outbox.notifications().unwrap();
        assert_eq!(ns.len(), 1);
        assert_eq!(hub.outbox.deliveries(ns[0].id).unwrap()[0].chat, "tg:-1");
    }
}
