//! A bare teloxide echo bot: the baseline of `scripts/bench-telegram.sh`.
//!
//! It answers every text message with the same text, as a reply to it,
//! through teloxide's plain `repl` (default long polling, no throttle, no
//! store). Whatever factbot spends beyond this per reply is factbot's own.
//!
//! ```sh
//! TELOXIDE_TOKEN=123456:TEST ECHO_API_URL=http://127.0.0.1:9000/ \
//!     cargo run --release --example echo_bot
//! ```
//!
//! (`scripts/bench-telegram.sh` builds this file as a package of its own
//! with factbot's teloxide and tokio features: as an example, cargo would
//! build it with the dev-dependencies' features unified in.)
//!
//! `ECHO_THROTTLE=1` wraps the bot in teloxide's `Throttle` adaptor with
//! factbot's limits (1 message/s per chat, 30/s overall), to tell the
//! throttle's cost from the rest of factbot's (not the baseline).

use teloxide::adaptors::throttle::{Limits, Throttle};
use teloxide::prelude::*;
use teloxide::types::ReplyParameters;

async fn echo<B>(bot: B, msg: Message) -> ResponseResult<()>
where
    B: Requester<Err = teloxide::RequestError>,
{
    if let Some(text) = msg.text() {
        bot.send_message(msg.chat.id, text)
            .reply_parameters(ReplyParameters::new(msg.id))
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let token = std::env::var("TELOXIDE_TOKEN").expect("TELOXIDE_TOKEN is not set");
    let mut bot = Bot::new(token);
    if let Ok(url) = std::env::var("ECHO_API_URL") {
        bot = bot.set_api_url(url.parse().expect("ECHO_API_URL is not a URL"));
    }
    if std::env::var("ECHO_THROTTLE").is_ok_and(|v| v == "1") {
        let limits = Limits {
            messages_per_sec_chat: 1,
            messages_per_min_chat: 20,
            messages_per_min_channel_or_supergroup: 20,
            messages_per_sec_overall: 30,
        };
        teloxide::repl(bot.throttle(limits), echo::<Throttle<Bot>>).await;
    } else {
        teloxide::repl(bot, echo::<Bot>).await;
    }
}
