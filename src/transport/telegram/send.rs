//! Sending to Telegram: the core's reply as HTML messages with an inline
//! keyboard, and what to do when Telegram says no.
//!
//! Pacing is the `Throttle` adaptor's job: it keeps under Telegram's limits
//! and, on a 429, holds every send for its `retry_after`. Here:
//! - trying a request again after flood control (the throttle is built
//!   without its own retry, [`super::throttle_settings`], so each 429 is
//!   seen and counted here) and, with backoff, after transient failures
//!   (network, 5xx, unreadable answers);
//! - following a group's migration to a supergroup;
//! - giving up quietly, with a log line, when the bot was blocked or kicked
//!   or may not post there for now, because retrying cannot succeed.

use std::time::Duration;

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode, ReplyParameters,
};
use teloxide::{ApiError, RequestError};

use crate::ops::record as ops;
use crate::reply::{render_telegram_html, Reply, TELEGRAM_LIMIT};
use crate::retry;

/// Attempts before giving up (migrations count; flood control does not:
/// it is waited out however often it comes, as the throttle did when it
/// retried by itself): those of [`retry::TELEGRAM_REQUEST`].
const ATTEMPTS: u32 = 5;

/// How a failed request should be treated.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth another try after a pause.
    Transient,
    /// Wait this long, then try again (flood control).
    RetryAfter(Duration),
    /// The chat moved to a new id (group → supergroup).
    Migrated(ChatId),
    /// The bot cannot write there any more (blocked, kicked, chat gone).
    Gone,
    /// The bot is still there but may not post for now: restricted in a
    /// group, or its right to post in a channel taken away. An admin can
    /// give it back, so notifications pause rather than unsubscribe.
    Muted,
    /// Our request was wrong; retrying will not help.
    Permanent,
}

/// Answers and notifications quote the article, not web pages: no link
/// previews.
pub fn no_link_preview() -> teloxide::types::LinkPreviewOptions {
    teloxide::types::LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

/// Classifies a teloxide error.
pub fn classify(e: &RequestError) -> Failure {
    match e {
        RequestError::Network(_) | RequestError::InvalidJson { .. } | RequestError::Io(_) => {
            Failure::Transient
        }
        RequestError::RetryAfter(s) => Failure::RetryAfter(s.duration()),
        RequestError::MigrateToChatId(id) => Failure::Migrated(*id),
        RequestError::Api(api) => match api {
            ApiError::BotBlocked
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel
            | ApiError::ChatNotFound
            | ApiError::UserDeactivated
            | ApiError::CantInitiateConversation
            | ApiError::CantTalkWithBots
            | ApiError::GroupDeactivated => Failure::Gone,
            ApiError::NotEnoughRightsToPostMessages => Failure::Muted,
            // teloxide has no variant for a group's "not enough rights to
            // send text messages to the chat".
            ApiError::Unknown(msg) if is_no_rights(msg) => Failure::Muted,
            // Telegram's own "Internal Server Error", "Bad Gateway", …: the
            // request may well succeed later.
            ApiError::Unknown(msg) if is_server_side(msg) => Failure::Transient,
            _ => Failure::Permanent,
        },
    }
}

/// A failure in words from a fixed set, for `/healthz` (never the error's
/// text: a client error quotes the request URL, which holds the token).
pub fn health_reason(e: &RequestError) -> &'static str {
    match e {
        RequestError::Network(_) | RequestError::Io(_) => "Telegram API unreachable",
        RequestError::InvalidJson { .. } => "unreadable answer from the Telegram API",
        RequestError::RetryAfter(_) => "flood control (429)",
        RequestError::Api(ApiError::InvalidToken) => "the bot token was rejected",
        RequestError::Api(_) | RequestError::MigrateToChatId(_) => {
            "the Telegram API refused the request"
        }
    }
}

fn is_no_rights(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("not enough rights to send") || m.contains("have no rights to send")
}

fn is_server_side(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "internal server error",
        "bad gateway",
        "gateway",
        "service unavailable",
        "timeout",
        "restart",
    ]
    .iter()
    .any(|s| m.contains(s))
}

/// Runs `op` until it succeeds, retrying transient failures with backoff and
/// following a chat migration. Returns the final error otherwise.
pub async fn with_retry<T, F, Fut>(
    mut chat: ChatId,
    what: &str,
    mut op: F,
) -> Result<T, RequestError>
where
    F: FnMut(ChatId) -> Fut,
    Fut: std::future::Future<Output = Result<T, RequestError>>,
{
    let mut pauses = retry::TELEGRAM_REQUEST.pauses();
    let mut attempt = 1;
    loop {
        let err = match op(chat).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        match classify(&err) {
            Failure::Transient if attempt < ATTEMPTS => {
                ops::retry(ops::Transport::Telegram, ops::Path::Reply);
                tracing::warn!(chat = chat.0, what, attempt, error = %err, "telegram: transient failure, retrying");
                tokio::time::sleep(pauses.next_or_last()).await;
            }
            Failure::RetryAfter(d) => {
                ops::rate_limited(ops::Transport::Telegram, ops::Path::Reply);
                ops::retry(ops::Transport::Telegram, ops::Path::Reply);
                tracing::warn!(chat = chat.0, what, wait = ?d, "telegram: flood control");
                tokio::time::sleep(d).await;
                continue;
            }
            Failure::Migrated(to) if attempt < ATTEMPTS => {
                tracing::info!(
                    from = chat.0,
                    to = to.0,
                    "telegram: group migrated to a supergroup"
                );
                chat = to;
            }
            Failure::Gone | Failure::Muted => {
                tracing::warn!(chat = chat.0, what, error = %err, "telegram: cannot write to this chat (now)");
                return Err(err);
            }
            _ => {
                tracing::error!(chat = chat.0, what, error = %err, "telegram: request failed");
                return Err(err);
            }
        }
        attempt += 1;
    }
}

/// The reply's buttons as an inline keyboard; `None` without buttons.
pub fn keyboard(reply: &Reply) -> Option<InlineKeyboardMarkup> {
    if reply.buttons.is_empty() {
        return None;
    }
    Some(InlineKeyboardMarkup::new(reply.buttons.iter().map(|row| {
        row.iter()
            .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.action.clone()))
            .collect::<Vec<_>>()
    })))
}

/// Sends a reply as one or more HTML messages answering `to` (the keyboard
/// goes under the last one); returns the ids of the messages sent, so a
/// later reply to any of them continues this answer.
pub async fn send_reply<B>(
    bot: &B,
    chat: ChatId,
    to: Option<MessageId>,
    reply: &Reply,
) -> Result<Vec<MessageId>, RequestError>
where
    B: Requester<Err = RequestError>,
{
    let chunks = render_telegram_html(reply, TELEGRAM_LIMIT);
    let last = chunks.len().saturating_sub(1);
    let mut sent = Vec::with_capacity(chunks.len());
    for (i, text) in chunks.iter().enumerate() {
        let markup = if i == last { keyboard(reply) } else { None };
        let msg = with_retry(chat, "sendMessage", |chat| {
            let mut req = bot
                .send_message(chat, text.clone())
                .parse_mode(ParseMode::Html)
                .link_preview_options(no_link_preview());
            if let Some(id) = to {
                req = req.reply_parameters(ReplyParameters::new(id).allow_sending_without_reply());
            }
            if let Some(m) = markup.clone() {
                req = req.reply_markup(m);
            }
            req.send()
        })
        .await?;
        sent.push(msg.id);
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flood control is waited out every time it comes (the attempts are
    /// for other failures), and a transient failure is tried again only up
    /// to [`ATTEMPTS`].
    #[tokio::test(start_paused = true)]
    async fn flood_control_is_waited_out_and_transient_failures_are_bounded() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let sent = with_retry(ChatId(1), "sendMessage", |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 8 {
                    Err(RequestError::RetryAfter(
                        teloxide::types::Seconds::from_seconds(2),
                    ))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(sent.ok(), Some(8), "sent after eight 429s");
        assert!(
            started.elapsed() >= Duration::from_secs(16),
            "each retry_after waited"
        );

        let calls = AtomicU32::new(0);
        let failed = with_retry(ChatId(1), "sendMessage", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(RequestError::Io(std::io::Error::other("reset").into())) }
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
    }

    #[test]
    fn classifies_what_to_retry() {
        assert_eq!(
            classify(&RequestError::Api(ApiError::BotKicked)),
            Failure::Gone
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::BotBlocked)),
            Failure::Gone
        );
        assert_eq!(
            classify(&RequestError::MigrateToChatId(ChatId(-100123))),
            Failure::Migrated(ChatId(-100123))
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::Unknown(
                "Internal Server Error".into()
            ))),
            Failure::Transient
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::MessageTextIsEmpty)),
            Failure::Permanent
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::NotEnoughRightsToPostMessages)),
            Failure::Muted
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::Unknown(
                "Bad Request: not enough rights to send text messages to the chat".into()
            ))),
            Failure::Muted
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::Unknown(
                "Bad Request: not enough rights to pin a message".into()
            ))),
            Failure::Permanent
        );
    }
}
