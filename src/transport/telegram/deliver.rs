//! Notifications to Telegram chats and channels: the [`Deliver`] the
//! notification worker sends through, and the config-subscribed channels.
//!
//! Notifications do not go through teloxide's `Throttle`: it releases queued
//! requests in batches every 250 ms, and a broadcast through it tripped a
//! sliding-window flood control (24–44 429s per 300–600 sends, each freezing
//! the bot for a second, +22–54% over the ideal time; scripts/bench-notify.sh).
//! Instead the worker spreads deliveries evenly at 29/s
//! ([`Deliver::min_gap`]), paces each chat (1 message/s, one per 3 s in
//! groups and channels = 20 a minute — between the parts of a long
//! notification too), and on a 429 pauses all Telegram deliveries for
//! `retry_after`. Interactive replies keep their `Throttle`;
//! during a broadcast the two together may briefly exceed 30/s, and each
//! side obeys the 429 it then gets.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::*;
use teloxide::types::{Me, ParseMode, Recipient};

use super::send::{classify, no_link_preview, Failure};
use super::TgBot;
use crate::app::App;
use crate::config::{ChannelConfig, ChannelId};
use crate::facts::{ChatKey, Platform};
use crate::notify::subscriptions::parse_topics;
use crate::notify::{Deliver, Outcome, Part};
use crate::reply::{render_telegram_html, Reply, TELEGRAM_LIMIT};
use teloxide::Bot;

/// Sends notifications with the bot's plain (unthrottled) client; the
/// worker paces them.
pub struct TgDeliver {
    bot: Bot,
}

impl TgDeliver {
    pub fn new(bot: Bot) -> TgDeliver {
        TgDeliver { bot }
    }
}

/// The recipient of a Telegram chat (`tg:-100123`, `tg:@channel`).
pub fn recipient(chat: &ChatKey) -> Option<Recipient> {
    match chat {
        ChatKey::Telegram(id) => Some(Recipient::Id(ChatId(*id))),
        ChatKey::TelegramChannel(name) => Some(Recipient::ChannelUsername(format!("@{name}"))),
        _ => None,
    }
}

/// The chat key of a configured channel.
pub fn channel_key(c: &ChannelId) -> ChatKey {
    match c {
        ChannelId::Id(n) => ChatKey::Telegram(*n),
        ChannelId::Username(u) => ChatKey::telegram_channel(u),
    }
}

impl Deliver for TgDeliver {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }

    fn chat_interval(&self, chat: &ChatKey) -> Duration {
        match recipient(chat) {
            Some(Recipient::Id(id)) if id.0 > 0 => Duration::from_secs(1),
            // Groups, supergroups and channels: 20 a minute.
            _ => Duration::from_secs(3),
        }
    }

    /// 29 a second: under Telegram's 30/s with room for jitter, so a
    /// broadcast never trips flood control (measured: scripts/bench-notify.sh).
    fn min_gap(&self) -> Duration {
        Duration::from_micros(1_000_000 / 29)
    }

    /// Two: a server that stalls gets at most two queued sends at once
    /// afterwards, not a burst that trips its sliding window.
    fn max_in_flight(&self) -> usize {
        2
    }

    fn parts(&self, _chat: &ChatKey, reply: &Reply) -> usize {
        render_telegram_html(reply, TELEGRAM_LIMIT).len()
    }

    fn deliver<'a>(&'a self, part: Part<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let chat = part.chat;
            let Some(to) = recipient(chat) else {
                return Outcome::Rejected(format!("not a Telegram chat key: {chat}"));
            };
            let Some(html) = render_telegram_html(part.reply, TELEGRAM_LIMIT)
                .into_iter()
                .nth(part.index)
            else {
                return Outcome::Delivered;
            };
            let res = self
                .bot
                .send_message(to, html)
                .parse_mode(ParseMode::Html)
                .link_preview_options(no_link_preview())
                .await;
            match res {
                Ok(_) => Outcome::Delivered,
                Err(e) => match classify(&e) {
                    Failure::Transient => Outcome::Transient(e.to_string()),
                    Failure::RetryAfter(d) => Outcome::RetryAfter(d),
                    Failure::Migrated(id) => Outcome::Migrated(ChatKey::Telegram(id.0)),
                    Failure::Gone => Outcome::Gone(e.to_string()),
                    Failure::Muted => Outcome::Blocked(e.to_string()),
                    Failure::Permanent => Outcome::Rejected(e.to_string()),
                },
            }
        })
    }
}

/// Subscribes the configured channels and checks, for each, that the bot
/// is an administrator there (else it cannot post; said loudly at start).
pub async fn subscribe_channels(bot: &TgBot, me: &Me, app: &Arc<App>, channels: &[ChannelConfig]) {
    for c in channels {
        let key = channel_key(&c.chat);
        let topics = match parse_topics(&c.topics.join(" ")) {
            Ok(t) => t,
            Err(w) => {
                tracing::error!(channel = %key, topic = %w, "telegram: [telegram] channels: unknown topic; channel not subscribed");
                continue;
            }
        };
        let Some(to) = recipient(&key) else {
            continue;
        };
        match bot.get_chat_member(to, me.id).await {
            Ok(m) if m.is_privileged() => {}
            Ok(_) => {
                tracing::error!(
                    channel = %key,
                    "telegram: the bot is NOT an administrator of this channel, so it cannot post there; make it an administrator with the right to post messages (not subscribed)"
                );
                continue;
            }
            // Unknown: subscribe anyway; a delivery that finds the bot
            // cannot post drops the subscription (and says so).
            Err(e) => {
                tracing::error!(channel = %key, error = %e, "telegram: cannot check the bot's rights in this channel (is it a member?)")
            }
        }
        // Off the runtime's threads: it flushes.
        let (hub, k, t) = (app.hub().clone(), key.clone(), topics.clone());
        match tokio::task::spawn_blocking(move || hub.subscribe_channel(&k, &t)).await {
            Ok(Ok(())) => {
                tracing::info!(channel = %key, topics = ?topics, "telegram: channel subscribed")
            }
            Ok(Err(e)) => {
                tracing::error!(channel = %key, error = %e, "telegram: cannot subscribe a channel")
            }
            Err(e) => {
                tracing::error!(channel = %key, error = %e, "telegram: cannot subscribe a channel")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_keys_map_to_recipients() {
        assert_eq!(
            recipient(&ChatKey::Telegram(-100123)),
            Some(Recipient::Id(ChatId(-100123)))
        );
        assert_eq!(
            recipient(&ChatKey::telegram_channel("news")),
            Some(Recipient::ChannelUsername("@news".into()))
        );
        assert_eq!(recipient(&ChatKey::matrix("!a:b")), None);
        assert_eq!(recipient(&ChatKey::TelegramInline), None);
        // Stored under the keys they always were.
        let key = |c| channel_key(&c).to_string();
        assert_eq!(key(ChannelId::Username("@news".into())), "tg:@news");
        assert_eq!(key(ChannelId::Username("news".into())), "tg:@news");
        assert_eq!(key(ChannelId::Id(-1001)), "tg:-1001");
    }
}
