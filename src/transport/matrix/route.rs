//! Whether the bot answers a Matrix message, and with what text.
//!
//! A pure function, so the addressing rules — the part most likely to annoy
//! a room if wrong — are tested beside it:
//! - the bot's own messages and every `m.notice` (what bots send) are
//!   ignored, so two bots can never talk to each other in a loop;
//! - one-to-one rooms: every message is for the bot;
//! - group rooms: commands (`!trade` or `/trade`, but not commands the bot
//!   does not know, which are likely another bot's), messages that mention
//!   the bot, and replies to the bot's messages.

use crate::query::{self, Command, Input};

/// Characters that start a command in Matrix: `!` (the Matrix bot
/// convention; Element keeps `/` for its own commands) and `/`.
pub const PREFIXES: &[char] = &['!', '/'];

/// What the transport knows about an incoming message.
#[derive(Clone, Copy, Debug)]
pub struct Incoming<'a> {
    /// The sender is the bot itself.
    pub from_self: bool,
    /// An `m.notice`: another bot (or this one) speaking.
    pub notice: bool,
    /// A one-to-one room: the bot and the sender are its only members.
    pub direct: bool,
    /// The body, reply fallback already removed.
    pub text: &'a str,
    /// The sender mentioned the bot in `m.mentions` (or in a pill).
    pub mentions_bot: bool,
    /// The message replies to one of the bot's own messages.
    pub reply_to_bot: bool,
}

/// How the bot is named in a room: `@factbot:example.org`, its localpart
/// `factbot` and its display name.
#[derive(Clone, Debug)]
pub struct Names {
    pub user_id: String,
    pub localpart: String,
    pub display_name: Option<String>,
}

impl Names {
    pub fn new(user_id: &str, display_name: Option<String>) -> Names {
        let localpart = user_id
            .trim_start_matches('@')
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        Names {
            user_id: user_id.to_string(),
            localpart,
            display_name,
        }
    }
}

/// The routing decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Answer, passing this text (mention removed) to the app.
    Answer(String),
    /// `!leave`: leave the room if the sender may ask for it.
    Leave,
    /// Not for this bot: stay quiet.
    Ignore,
}

/// Decides whether and what to answer.
pub fn route(msg: Incoming, names: &Names) -> Route {
    if msg.from_self || msg.notice {
        return Route::Ignore;
    }
    let (text, named) = match strip_mention(msg.text.trim(), names) {
        Some(rest) => (rest, true),
        None => (msg.text.trim().to_string(), false),
    };
    let addressed = msg.direct || named || msg.mentions_bot || msg.reply_to_bot;
    if is_leave(&text) {
        return Route::Leave;
    }
    if let Input::Command { command, addressee } = query::parse(&text, PREFIXES) {
        return match (addressee, command) {
            // `!trade@otherbot` is Telegram style; nobody writes it here,
            // but if someone does, it is not for us unless it names us.
            (Some(a), _) if !names_us(&a, names) => Route::Ignore,
            (_, Command::Unknown(_)) if !addressed => Route::Ignore,
            _ => Route::Answer(text),
        };
    }
    if addressed && !text.is_empty() {
        return Route::Answer(text);
    }
    if addressed {
        // A bare mention: greet, as a person would expect.
        return Route::Answer("!help".to_string());
    }
    Route::Ignore
}

fn is_leave(text: &str) -> bool {
    let word = text.split_whitespace().next().unwrap_or("");
    PREFIXES.iter().any(|p| {
        word.strip_prefix(*p)
            .is_some_and(|w| w.eq_ignore_ascii_case("leave"))
    }) && text.split_whitespace().count() == 1
}

fn names_us(addressee: &str, names: &Names) -> bool {
    addressee.eq_ignore_ascii_case(&names.localpart)
        || addressee.eq_ignore_ascii_case(names.user_id.trim_start_matches('@'))
}

/// The text without the bot's mention, if it has one: the full user id
/// anywhere, or the localpart or display name at the start followed by `:`
/// or `,` (how Element and most clients insert a mention into `body`).
fn strip_mention(text: &str, names: &Names) -> Option<String> {
    // ASCII lower-casing keeps byte offsets (user ids are ASCII).
    let lower = text.to_ascii_lowercase();
    let id = names.user_id.to_ascii_lowercase();
    if let Some(pos) = lower.find(&id) {
        let rest = format!("{} {}", &text[..pos], &text[pos + id.len()..]);
        return Some(tidy(&rest));
    }
    let mut candidates: Vec<&str> = vec![&names.localpart];
    if let Some(d) = &names.display_name {
        candidates.push(d);
    }
    for name in candidates {
        if name.is_empty() {
            continue;
        }
        for prefix in [name.to_string(), format!("@{name}")] {
            if let Some(rest) = strip_prefix_ci(text, &prefix) {
                if let Some(rest) = rest.strip_prefix([':', ',']) {
                    return Some(tidy(rest));
                }
            }
        }
    }
    None
}

fn strip_prefix_ci<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let n = prefix.len();
    if text.len() >= n
        && text.is_char_boundary(n)
        && text[..n].to_lowercase() == prefix.to_lowercase()
    {
        Some(&text[n..])
    } else {
        None
    }
}

/// Removes punctuation left around a removed mention and extra spaces.
fn tidy(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.trim_start_matches([':', ',']).trim().to_string()
}

/// The body without a reply fallback: older clients quote the message
/// replied to as `> <@user:server> text` lines and a blank line.
pub fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    let mut rest = body;
    while let Some(line_end) = rest.find('\n') {
        if rest.starts_with("> ") || rest.starts_with(">\n") {
            rest = &rest[line_end + 1..];
        } else {
            break;
        }
    }
    rest.trim_start_matches('\n')
}

/// Whether an invite from `inviter` is accepted: `allowed` holds user ids
/// and `*:server` patterns (`*` alone: anyone); empty means anyone.
pub fn invite_allowed(inviter: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let server = inviter.split_once(':').map(|(_, s)| s).unwrap_or("");
    allowed.iter().any(|a| {
        let a = a.trim();
        a == "*"
            || a.eq_ignore_ascii_case(inviter)
            || a.strip_prefix("*:")
                .is_some_and(|s| !server.is_empty() && s.eq_ignore_ascii_case(server))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::new("@factbot:example.org", Some("FactBot".into()))
    }

    fn msg(text: &str) -> Incoming<'_> {
        Incoming {
            from_self: false,
            notice: false,
            direct: false,
            text,
            mentions_bot: false,
            reply_to_bot: false,
        }
    }

    fn answer(s: &str) -> Route {
        Route::Answer(s.to_string())
    }

    #[test]
    fn own_messages_and_notices_are_never_answered() {
        let n = names();
        let mut m = msg("!trade");
        m.from_self = true;
        assert_eq!(route(m, &n), Route::Ignore);
        let mut m = msg("!trade");
        m.notice = true;
        m.direct = true;
        assert_eq!(route(m, &n), Route::Ignore);
    }

    #[test]
    fn direct_rooms_answer_everything() {
        let n = names();
        let d = |t| {
            let mut m = msg(t);
            m.direct = true;
            route(m, &n)
        };
        assert_eq!(d("how much trade?"), answer("how much trade?"));
        assert_eq!(d("!nosuch"), answer("!nosuch"));
        assert_eq!(d("/trade"), answer("/trade"));
        assert_eq!(d("!leave"), Route::Leave);
    }

    #[test]
    fn groups_answer_commands_mentions_and_replies_only() {
        let n = names();
        assert_eq!(route(msg("!trade"), &n), answer("!trade"));
        assert_eq!(route(msg("/help"), &n), answer("/help"));
        assert_eq!(route(msg("!lang ru"), &n), answer("!lang ru"));
        assert_eq!(route(msg("how much trade?"), &n), Route::Ignore);
        // Another bot's command.
        assert_eq!(route(msg("!weather Minsk"), &n), Route::Ignore);
        assert_eq!(route(msg("!leave"), &n), Route::Leave);
        assert_eq!(route(msg("!leave now please"), &n), Route::Ignore);

        assert_eq!(
            route(msg("factbot: how much trade?"), &n),
            answer("how much trade?")
        );
        assert_eq!(
            route(msg("FactBot, сколько товарооборот?"), &n),
            answer("сколько товарооборот?")
        );
        assert_eq!(
            route(msg("what about trade @factbot:example.org ?"), &n),
            answer("what about trade ?")
        );
        assert_eq!(route(msg("factbotics is a word"), &n), Route::Ignore);

        let mut m = msg("how much trade?");
        m.mentions_bot = true;
        assert_eq!(route(m, &n), answer("how much trade?"));
        let mut m = msg("and in 2011?");
        m.reply_to_bot = true;
        assert_eq!(route(m, &n), answer("and in 2011?"));
        let mut m = msg("!weather");
        m.mentions_bot = true;
        assert_eq!(route(m, &n), answer("!weather"));
        // A bare mention gets help.
        assert_eq!(route(msg("@factbot:example.org"), &n), answer("!help"));
    }

    #[test]
    fn reply_fallbacks_are_removed() {
        assert_eq!(
            strip_reply_fallback("> <@factbot:x> Trade was...\n> more\n\nand in 2011?"),
            "and in 2011?"
        );
        assert_eq!(strip_reply_fallback("plain"), "plain");
        assert_eq!(strip_reply_fallback("> only a quote"), "> only a quote");
    }

    #[test]
    fn invite_allow_list() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(invite_allowed("@ann:x.org", &[]));
        assert!(invite_allowed("@ann:x.org", &list(&["@ann:x.org"])));
        assert!(!invite_allowed("@bob:x.org", &list(&["@ann:x.org"])));
        assert!(invite_allowed("@bob:x.org", &list(&["*:x.org"])));
        assert!(!invite_allowed("@bob:evil.org", &list(&["*:x.org"])));
        assert!(!invite_allowed("@bob:x.org.evil", &list(&["*:x.org"])));
        assert!(invite_allowed("@eve:any", &list(&["*"])));
    }

    #[test]
    fn never_panics_on_odd_text() {
        let n = names();
        for t in [
            "",
            " ",
            "!",
            "/",
            "ﬀ@factbot:example.org",
            "İfactbot:",
            "factbot",
        ] {
            let _ = route(msg(t), &n);
        }
    }
}
