//! Whether the bot answers a Telegram message, and with what text.
//!
//! A pure function, so the addressing rules — the part most likely to annoy a
//! group if wrong — are tested exhaustively beside it:
//! - private chat: every message is for the bot;
//! - group: commands (`/trade`, `/trade@ThisBot`; never `/trade@OtherBot`,
//!   and not commands the bot does not know, which are likely another bot's),
//!   messages that mention `@ThisBot`, and replies to the bot's messages.

use crate::query::{self, Command, Input};

/// What the transport knows about an incoming message.
#[derive(Clone, Copy, Debug)]
pub struct Incoming<'a> {
    /// A one-to-one chat with the bot.
    pub private: bool,
    pub text: &'a str,
    /// The message replies to one of the bot's own messages.
    pub reply_to_bot: bool,
}

/// The routing decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Answer, passing this text (addressing removed) to the app.
    Answer(String),
    /// Not for this bot: stay quiet.
    Ignore,
}

/// Decides whether and what to answer. `bot_username` has no `@`.
pub fn route(msg: Incoming, bot_username: &str) -> Route {
    let text = msg.text.trim();
    if let Input::Command { command, addressee } = query::parse(text, &['/']) {
        return match addressee {
            Some(a) if !a.eq_ignore_ascii_case(bot_username) => Route::Ignore,
            Some(_) => Route::Answer(strip_addressee(text)),
            // An unaddressed command the bot does not know is, in a group,
            // most likely another bot's.
            None if !msg.private && matches!(command, Command::Unknown(_)) => Route::Ignore,
            None => Route::Answer(text.to_string()),
        };
    }
    if msg.private {
        return Route::Answer(text.to_string());
    }
    if let Some(rest) = strip_mention(text, bot_username) {
        return Route::Answer(rest);
    }
    if msg.reply_to_bot {
        return Route::Answer(text.to_string());
    }
    Route::Ignore
}

/// `/trade@Bot args` → `/trade args`.
fn strip_addressee(text: &str) -> String {
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let word = word.split('@').next().unwrap_or(word);
    format!("{word} {}", rest.trim()).trim_end().to_string()
}

/// The text without `@bot_username`, if a word of it is that mention
/// (punctuation around the mention goes with it).
fn strip_mention(text: &str, bot_username: &str) -> Option<String> {
    let needle = format!("@{bot_username}");
    let words: Vec<&str> = text.split_whitespace().collect();
    let pos = words.iter().position(|w| {
        w.trim_matches(|c: char| c.is_ascii_punctuation() && c != '@' && c != '_')
            .eq_ignore_ascii_case(&needle)
    })?;
    let rest: Vec<&str> = words
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != pos)
        .map(|(_, w)| *w)
        .collect();
    Some(rest.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "FactBot";

    fn group(text: &str) -> Route {
        route(
            Incoming {
                private: false,
                text,
                reply_to_bot: false,
            },
            BOT,
        )
    }

    fn answer(s: &str) -> Route {
        Route::Answer(s.to_string())
    }

    #[test]
    fn private_chats_answer_everything() {
        let r = |t| {
            route(
                Incoming {
                    private: true,
                    text: t,
                    reply_to_bot: false,
                },
                BOT,
            )
        };
        assert_eq!(r("how much trade?"), answer("how much trade?"));
        assert_eq!(r("/nosuch"), answer("/nosuch"));
        assert_eq!(r("/trade@OtherBot"), Route::Ignore);
    }

    #[test]
    fn groups_answer_commands_for_this_bot_only() {
        assert_eq!(group("/trade"), answer("/trade"));
        assert_eq!(group("/trade@FactBot"), answer("/trade"));
        assert_eq!(group("/trade@factbot"), answer("/trade"));
        assert_eq!(
            group("/search@FactBot customs union"),
            answer("/search customs union")
        );
        assert_eq!(group("/trade@OtherBot"), Route::Ignore);
        assert_eq!(group("/kick"), Route::Ignore, "unknown unaddressed command");
        assert_eq!(group("/kick@FactBot"), answer("/kick"));
    }

    #[test]
    fn groups_answer_mentions_and_replies_and_nothing_else() {
        assert_eq!(group("just chatting about trade"), Route::Ignore);
        assert_eq!(
            group("@FactBot how much trade in 2011?"),
            answer("how much trade in 2011?")
        );
        assert_eq!(
            group("what about exports, @factbot?"),
            answer("what about exports,")
        );
        assert_eq!(
            group("@FactBotFan hi"),
            Route::Ignore,
            "a longer name is not a mention"
        );
        assert_eq!(
            group("Привет @FactBot, товарооборот?"),
            answer("Привет товарооборот?")
        );
        let reply = route(
            Incoming {
                private: false,
                text: "and in 2012?",
                reply_to_bot: true,
            },
            BOT,
        );
        assert_eq!(reply, answer("and in 2012?"));
    }
}
