//! Command parsing: what a line of chat asks the bot to do.
//!
//! Pure and transport-neutral: Telegram passes `/` commands (maybe with
//! `@BotName`), Matrix `!` commands; both end up as the same [`Command`].
//! Whether a command addressed to another bot is ignored is the transport's
//! decision, so the addressee is returned rather than checked here.

use crate::facts::Topic;

/// A command the core understands. Doc comments are the help text's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Greeting and a short guide; with a deep-link payload (`/start
    /// trade`, `/start chart_trade`), then that topic or chart.
    Start(String),
    /// The list of commands.
    Help,
    /// The facts of one topic (`/trade`, `/milestones`, …).
    Topic(Topic),
    /// Ranked search over all facts.
    Search(String),
    /// A chart by name (`trade`, `milestones`, `investment`, or a Russian
    /// name); empty: the list of charts.
    Chart(String),
    /// One fact in full, by id.
    Fact(String),
    /// The source sentence of a fact, with its paragraph.
    Source(String),
    /// Show (`None`) or set the chat's answer language (`en`, `ru`, `auto`).
    Lang(Option<String>),
    /// Subscriptions and announcements: the application hands these to the
    /// notification hub, not to the answering engine.
    Notify(NotifyCommand),
    /// A command word the bot does not know.
    Unknown(String),
}

impl Command {
    /// Whether it changes what is stored for the chat (its language, its
    /// subscriptions, an announcement): refused to a one-shot question.
    pub fn changes_chat(&self) -> bool {
        matches!(
            self,
            Command::Lang(Some(_))
                | Command::Notify(
                    NotifyCommand::Subscribe(_)
                        | NotifyCommand::Unsubscribe(_)
                        | NotifyCommand::Announce(_)
                        | NotifyCommand::AnnounceSend(_)
                        | NotifyCommand::AnnounceCancel(_)
                )
        )
    }

    /// Whether only a chat's administrators may run it in a group (the
    /// transport then asks its platform and sets `Request::chat_admin`):
    /// what changes the chat for everyone in it — its subscriptions and its
    /// language (`/lang` alone only shows the setting).
    pub fn needs_chat_admin(&self) -> bool {
        matches!(
            self,
            Command::Notify(NotifyCommand::Subscribe(_) | NotifyCommand::Unsubscribe(_))
                | Command::Lang(Some(_))
        )
    }
}

/// A command about notifications (see [`Command::Notify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyCommand {
    /// Subscribe this chat to topics (words as typed; empty: all).
    Subscribe(String),
    /// Unsubscribe this chat from topics (empty: from everything).
    Unsubscribe(String),
    /// This chat's subscriptions.
    Subscriptions,
    /// A bot admin's announcement draft: `[topic] TEXT`.
    Announce(String),
    /// Confirms (sends) announcement draft `id` (a button's action).
    AnnounceSend(String),
    /// Drops announcement draft `id` (a button's action).
    AnnounceCancel(String),
}

/// A parsed line of input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Nothing but white space.
    Empty,
    /// A command, and the bot it names after `@`, if any (`/trade@FactBot`).
    Command {
        command: Command,
        addressee: Option<String>,
    },
    /// Free text: a question.
    Text(String),
}

impl Input {
    /// Whether answering needs to know if the sender administers the chat.
    pub fn needs_chat_admin(&self) -> bool {
        matches!(self, Input::Command { command, .. } if command.needs_chat_admin())
    }
}

/// Parses a line. `prefixes` are the characters that start a command
/// (`/` everywhere; Matrix adds `!`).
pub fn parse(text: &str, prefixes: &[char]) -> Input {
    let text = text.trim();
    if text.is_empty() {
        return Input::Empty;
    }
    let Some(first) = text.chars().next() else {
        return Input::Empty;
    };
    if !prefixes.contains(&first) {
        return Input::Text(text.to_string());
    }
    let body = &text[first.len_utf8()..];
    let (word, rest) = match body.find(char::is_whitespace) {
        Some(i) => (&body[..i], body[i..].trim()),
        None => (body, ""),
    };
    // "/ what?" or "!!!" is not a command: treat it as text.
    if word.is_empty() || !word.chars().next().is_some_and(char::is_alphanumeric) {
        return Input::Text(text.to_string());
    }
    let (name, addressee) = match word.split_once('@') {
        Some((n, a)) => (n, Some(a.to_string())),
        None => (word, None),
    };
    let name = name.to_lowercase();
    let arg = rest.to_string();
    let command = match name.as_str() {
        "start" | "старт" => Command::Start(arg),
        "help" | "помощь" | "справка" => Command::Help,
        "search" | "поиск" | "find" => Command::Search(arg),
        "chart" | "charts" | "график" | "графики" | "диаграмма" => {
            Command::Chart(arg)
        }
        "fact" | "факт" => Command::Fact(arg),
        "source" | "источник" => Command::Source(arg),
        "lang" | "language" | "язык" => Command::Lang((!arg.is_empty()).then_some(arg)),
        "subscribe" | "подписаться" => Command::Notify(NotifyCommand::Subscribe(arg)),
        "unsubscribe" | "отписаться" => Command::Notify(NotifyCommand::Unsubscribe(arg)),
        "subscriptions" | "подписки" => Command::Notify(NotifyCommand::Subscriptions),
        "announce" | "объявить" => Command::Notify(NotifyCommand::Announce(arg)),
        "announce_send" => Command::Notify(NotifyCommand::AnnounceSend(arg)),
        "announce_cancel" => Command::Notify(NotifyCommand::AnnounceCancel(arg)),
        other => match Topic::parse(other).or_else(|| russian_topic(other)) {
            Some(t) => Command::Topic(t),
            None => Command::Unknown(name.clone()),
        },
    };
    Input::Command { command, addressee }
}

/// Russian command words, for the console and Matrix (Telegram's command
/// list only allows Latin letters, but typing them there works too).
pub(crate) fn russian_topic(word: &str) -> Option<Topic> {
    Some(match word {
        "визит" => Topic::Visit,
        "люди" => Topic::People,
        "отношения" => Topic::Relations,
        "торговля" => Topic::Trade,
        "экспорт" => Topic::Exports,
        "инвестиции" => Topic::Investment,
        "этапы" | "хронология" => Topic::Milestones,
        "встречи" => Topic::Meetings,
        "соглашения" => Topic::Agreements,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(text: &str) -> (Command, Option<String>) {
        match parse(text, &['/', '!']) {
            Input::Command { command, addressee } => (command, addressee),
            other => panic!("{text:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn topic_commands_with_and_without_addressee() {
        assert_eq!(cmd("/trade"), (Command::Topic(Topic::Trade), None));
        assert_eq!(
            cmd("/trade@FactBot"),
            (Command::Topic(Topic::Trade), Some("FactBot".into()))
        );
        assert_eq!(
            cmd("!Milestones"),
            (Command::Topic(Topic::Milestones), None)
        );
        assert_eq!(cmd("/торговля"), (Command::Topic(Topic::Trade), None));
    }

    #[test]
    fn arguments() {
        assert_eq!(
            cmd("/search  customs union ").0,
            Command::Search("customs union".into())
        );
        assert_eq!(
            cmd("/fact trade.2011").0,
            Command::Fact("trade.2011".into())
        );
        assert_eq!(cmd("/chart trade").0, Command::Chart("trade".into()));
        assert_eq!(cmd("!chart").0, Command::Chart(String::new()));
        assert_eq!(cmd("/график торговля").0, Command::Chart("торговля".into()));
        assert_eq!(cmd("/lang").0, Command::Lang(None));
        assert_eq!(cmd("/start").0, Command::Start(String::new()));
        assert_eq!(
            cmd("/start chart_trade").0,
            Command::Start("chart_trade".into())
        );
        assert!(cmd("/lang ru").0.changes_chat() && !cmd("/lang").0.changes_chat());
        assert!(cmd("/subscribe").0.changes_chat() && !cmd("/trade").0.changes_chat());
        assert_eq!(cmd("/lang ru").0, Command::Lang(Some("ru".into())));
        assert_eq!(
            cmd("/subscribe trade milestones").0,
            Command::Notify(NotifyCommand::Subscribe("trade milestones".into()))
        );
        assert!(parse("/unsubscribe", &['/']).needs_chat_admin());
        assert!(!parse("/subscriptions", &['/']).needs_chat_admin());
        assert!(!parse("/trade", &['/']).needs_chat_admin());
        assert!(parse("/lang ru", &['/']).needs_chat_admin());
        assert!(!parse("/lang", &['/']).needs_chat_admin());
        assert_eq!(
            cmd("/frobnicate x").0,
            Command::Unknown("frobnicate".into())
        );
    }

    #[test]
    fn text_and_empty() {
        assert_eq!(parse("   ", &['/']), Input::Empty);
        assert_eq!(
            parse("what about trade?", &['/']),
            Input::Text("what about trade?".into())
        );
        assert_eq!(parse("!trade", &['/']), Input::Text("!trade".into()));
        assert_eq!(parse("/ hello", &['/']), Input::Text("/ hello".into()));
        assert_eq!(parse("/", &['/']), Input::Text("/".into()));
    }
}
