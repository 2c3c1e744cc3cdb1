//! Chat keys: the one name every part of the bot gives a chat.
//!
//! A chat's `/lang` setting, its subscription, its deliveries and its
//! conversation context are all stored under its key, written as a
//! transport-qualified string — `tg:-100123`, `tg:@news`, `mx:!room:server`,
//! `console`. [`ChatKey`] is the only place that string is built or read,
//! so two modules can never spell one chat two ways (one writes `tg:-5`,
//! the other looks for `tg: -5`, and a subscription silently stops), and a
//! key read back from the store is parsed once, into a value the compiler
//! checks, rather than split on `:` wherever a platform is wanted.
//!
//! The string form is the on-disk form and never changes: existing stores
//! read as they are. Parsing ([`ChatKey::from_str`]) accepts every key this
//! or an earlier version may have written and gives each back byte for byte
//! ([`ChatKey::to_string`]); anything else is a [`ChatKeyError`], never a
//! panic. [`ChatKey::check_subscribable`] is the stricter check for keys an
//! operator types (`factbot subscriptions --import`).
//!
//! No platform crate appears here (the core imports none): a Matrix room
//! id is kept as the string the homeserver gave, and the transports turn
//! keys into their own types.

use std::fmt;
use std::str::FromStr;

/// The chat platform a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    /// `tg:` keys.
    Telegram,
    /// `mx:` keys.
    Matrix,
    /// The console and the one-shot CLI: no chat network, nothing to
    /// deliver to.
    Local,
}

impl Platform {
    /// Its name in logs and metric labels: `telegram`, `matrix`, `local`.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Telegram => "telegram",
            Platform::Matrix => "matrix",
            Platform::Local => "local",
        }
    }
}

/// A chat, as stored and looked up (see the module docs). Ordered as its
/// stored form, as sled orders it: a list of chats sorts as the store
/// lists them, and the delivery worker takes equally due chats in the
/// order it always did.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChatKey {
    /// A Telegram chat by id (`tg:-100123`; users positive, groups negative).
    Telegram(i64),
    /// A public Telegram channel by `@username`, as a config names it
    /// (`tg:@news`); kept without the `@`.
    TelegramChannel(String),
    /// Telegram inline queries (`tg:inline`): no chat of anyone's.
    TelegramInline,
    /// A Matrix room by id, `!` included (`mx:!opaque:server`).
    Matrix(String),
    /// The console chat (`console`).
    Console,
    /// `factbot ask` (`cli`).
    Cli,
}

/// A string that is no chat key; says what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatKeyError(String);

impl fmt::Display for ChatKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChatKeyError {}

const TG: &str = "tg:";
const MX: &str = "mx:";
const INLINE: &str = "inline";
const CONSOLE: &str = "console";
const CLI: &str = "cli";

fn word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A Telegram `@username` as a config may name a channel (letters, digits,
/// `_`; the config check allows any length).
fn channel_name_ok(name: &str) -> bool {
    !name.is_empty() && name.chars().all(word)
}

/// A Matrix room id: `!`, an opaque part, and (before room version 12) a
/// `:server`; no blanks.
fn room_id_ok(room: &str) -> bool {
    room.strip_prefix('!').is_some_and(|rest| {
        let (opaque, server) = rest.split_once(':').unwrap_or((rest, "x"));
        !opaque.is_empty()
            && !server.is_empty()
            && !rest.contains(|c: char| c.is_whitespace() || c.is_control())
    })
}

impl ChatKey {
    /// A Matrix room's key from its id (`!opaque:server`), as the homeserver
    /// gives it. A transport passes a parsed room id, which always fits.
    pub fn matrix(room_id: impl fmt::Display) -> ChatKey {
        ChatKey::Matrix(room_id.to_string())
    }

    /// A Telegram channel's key from its `@username` (the `@` optional).
    pub fn telegram_channel(username: &str) -> ChatKey {
        ChatKey::TelegramChannel(username.trim_start_matches('@').to_string())
    }

    /// The platform it belongs to.
    pub fn platform(&self) -> Platform {
        match self {
            ChatKey::Telegram(_) | ChatKey::TelegramChannel(_) | ChatKey::TelegramInline => {
                Platform::Telegram
            }
            ChatKey::Matrix(_) => Platform::Matrix,
            ChatKey::Console | ChatKey::Cli => Platform::Local,
        }
    }

    /// The Matrix room id, for a Matrix key.
    pub fn matrix_room(&self) -> Option<&str> {
        match self {
            ChatKey::Matrix(r) => Some(r),
            _ => None,
        }
    }

    /// The key as stored in sled (its string form, as bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// A key read back from sled.
    pub fn from_bytes(b: &[u8]) -> Result<ChatKey, ChatKeyError> {
        std::str::from_utf8(b)
            .map_err(|_| ChatKeyError(format!("{:?}: not UTF-8", String::from_utf8_lossy(b))))?
            .parse()
    }

    /// Checks a key an operator typed for a chat to subscribe, stricter
    /// than [`ChatKey::from_str`]: `tg:` and a chat id other than 0
    /// (`tg:-100123`) or a public `@username` (`tg:@news`, 4–32 letters,
    /// digits or `_`, starting with a letter); `mx:` and a room id
    /// (`mx:!opaque:server`, or `mx:!opaque` for room version 12, which
    /// names no server). The error says what is wrong.
    pub fn check_subscribable(key: &str) -> Result<ChatKey, ChatKeyError> {
        let bad = |why: &str| ChatKeyError(format!("{key:?}: {why}"));
        let tg_id = "a Telegram chat is tg: and a chat id (tg:-100123) or @username";
        let tg_name = "a Telegram @username has 4 to 32 letters, digits or _";
        let mx = "a Matrix room is mx: and a room id (mx:!abc:example.org)";
        match key.parse::<ChatKey>() {
            Ok(ChatKey::Telegram(n)) if n != 0 => Ok(ChatKey::Telegram(n)),
            Ok(ChatKey::TelegramChannel(name))
                if (4..=32).contains(&name.len())
                    && name.starts_with(|c: char| c.is_ascii_alphabetic()) =>
            {
                Ok(ChatKey::TelegramChannel(name))
            }
            Ok(k @ ChatKey::Matrix(_)) => Ok(k),
            _ if key.starts_with("tg:@") => Err(bad(tg_name)),
            _ if key.starts_with(TG) => Err(bad(tg_id)),
            _ if key.starts_with(MX) => Err(bad(mx)),
            _ => Err(bad("not a chat key: tg:… (Telegram) or mx:… (Matrix)")),
        }
    }
}

impl Ord for ChatKey {
    fn cmp(&self, other: &ChatKey) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for ChatKey {
    fn partial_cmp(&self, other: &ChatKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ChatKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatKey::Telegram(id) => write!(f, "{TG}{id}"),
            ChatKey::TelegramChannel(name) => write!(f, "{TG}@{name}"),
            ChatKey::TelegramInline => write!(f, "{TG}{INLINE}"),
            ChatKey::Matrix(room) => write!(f, "{MX}{room}"),
            ChatKey::Console => f.write_str(CONSOLE),
            ChatKey::Cli => f.write_str(CLI),
        }
    }
}

impl FromStr for ChatKey {
    type Err = ChatKeyError;

    /// Every key this or an earlier version may have stored, and nothing
    /// else; a Telegram id only in its one decimal spelling, so the key
    /// written back is the key read.
    fn from_str(s: &str) -> Result<ChatKey, ChatKeyError> {
        let bad = |why: &str| Err(ChatKeyError(format!("{s:?}: {why}")));
        if let Some(id) = s.strip_prefix(TG) {
            if id == INLINE {
                return Ok(ChatKey::TelegramInline);
            }
            if let Some(name) = id.strip_prefix('@') {
                return match channel_name_ok(name) {
                    true => Ok(ChatKey::TelegramChannel(name.to_string())),
                    false => bad("a Telegram @username has letters, digits or _"),
                };
            }
            return match id.parse::<i64>() {
                Ok(n) if n.to_string() == id => Ok(ChatKey::Telegram(n)),
                _ => bad("a Telegram chat is tg: and a chat id (tg:-100123) or @username"),
            };
        }
        if let Some(room) = s.strip_prefix(MX) {
            return match room_id_ok(room) {
                true => Ok(ChatKey::Matrix(room.to_string())),
                false => bad("a Matrix room is mx: and a room id (mx:!abc:example.org)"),
            };
        }
        match s {
            CONSOLE => Ok(ChatKey::Console),
            CLI => Ok(ChatKey::Cli),
            _ => bad("not a chat key: tg:… (Telegram) or mx:… (Matrix)"),
        }
    }
}

impl TryFrom<String> for ChatKey {
    type Error = ChatKeyError;

    fn try_from(s: String) -> Result<ChatKey, ChatKeyError> {
        s.parse()
    }
}

impl From<ChatKey> for String {
    fn from(k: ChatKey) -> String {
        k.to_string()
    }
}

/// Stored and sent as its string form (`"tg:-100123"`), as chat keys always
/// were in JSON records; a record whose key does not parse fails to decode.
impl serde::Serialize for ChatKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ChatKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ChatKey, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of key a store of today holds, in its stored spelling.
    const STORED: [&str; 10] = [
        "tg:-100123",
        "tg:42",
        "tg:-9223372036854775808",
        "tg:@news_2024",
        "tg:@ab",
        "tg:inline",
        "mx:!AbC:example.org",
        "mx:!aGVsbG8gd29ybGQ",
        "console",
        "cli",
    ];

    #[test]
    fn stored_keys_read_back_byte_for_byte() {
        for s in STORED {
            let k: ChatKey = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(k.to_string(), s);
            assert_eq!(k.to_bytes(), s.as_bytes(), "the sled key is unchanged");
            assert_eq!(ChatKey::from_bytes(s.as_bytes()), Ok(k.clone()));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, serde_json::to_string(s).unwrap(), "JSON as before");
            assert_eq!(serde_json::from_str::<ChatKey>(&json).unwrap(), k);
        }
    }

    /// The keys the transports build are spelled exactly as they were by
    /// hand (`format!("tg:{}", chat.0)`, `format!("mx:{}", room_id)`).
    #[test]
    fn built_keys_are_spelled_as_before() {
        assert_eq!(ChatKey::Telegram(-1001).to_string(), "tg:-1001");
        assert_eq!(ChatKey::Telegram(7).to_string(), "tg:7");
        assert_eq!(ChatKey::telegram_channel("@news").to_string(), "tg:@news");
        assert_eq!(ChatKey::telegram_channel("news").to_string(), "tg:@news");
        assert_eq!(ChatKey::matrix("!r:x.org").to_string(), "mx:!r:x.org");
        assert_eq!(ChatKey::TelegramInline.to_string(), "tg:inline");
        assert_eq!(ChatKey::Console.to_string(), "console");
        assert_eq!(ChatKey::Cli.to_string(), "cli");
    }

    /// Chats sort as their stored keys do (`tg:-10` < `tg:-9` < `tg:@a`),
    /// the order sled lists them in.
    #[test]
    fn keys_sort_as_their_stored_form() {
        let mut keys: Vec<ChatKey> = STORED.iter().map(|s| s.parse().unwrap()).collect();
        keys.extend([
            ChatKey::Telegram(-9),
            ChatKey::Telegram(9),
            ChatKey::Telegram(10),
        ]);
        let mut strings: Vec<String> = keys.iter().map(ChatKey::to_string).collect();
        keys.sort();
        strings.sort();
        let sorted: Vec<String> = keys.iter().map(ChatKey::to_string).collect();
        assert_eq!(sorted, strings);
    }

    #[test]
    fn platforms() {
        assert_eq!(ChatKey::Telegram(1).platform(), Platform::Telegram);
        assert_eq!(
            ChatKey::telegram_channel("n").platform(),
            Platform::Telegram
        );
        assert_eq!(ChatKey::TelegramInline.platform(), Platform::Telegram);
        assert_eq!(ChatKey::matrix("!a:b").platform(), Platform::Matrix);
        assert_eq!(ChatKey::Console.platform(), Platform::Local);
        assert_eq!(ChatKey::matrix("!a:b").matrix_room(), Some("!a:b"));
        assert_eq!(ChatKey::Telegram(1).matrix_room(), None);
    }

    /// Malformed keys are errors (never a panic), and no two spellings
    /// read as one key: a key written back is always the key read.
    #[test]
    fn malformed_keys_are_errors() {
        for bad in [
            "",
            "tg",
            "tg:",
            "tg:abc",
            "tg:1.5",
            "tg:+5",
            "tg:007",
            "tg:-0",
            "tg: 5",
            "tg:99999999999999999999",
            "tg:@",
            "tg:@a-b",
            "tg:@@news",
            "mx:",
            "mx:room",
            "mx:!",
            "mx:!:x",
            "mx:!a:",
            "mx:!a b:x",
            "mx:#alias:x",
            "xx:1",
            "fk:a",
            "Console",
            "TG:5",
        ] {
            assert!(bad.parse::<ChatKey>().is_err(), "{bad:?}");
            assert!(serde_json::from_str::<ChatKey>(&format!("{bad:?}")).is_err());
        }
        assert!(ChatKey::from_bytes(b"tg:\xff").is_err());
        assert!(serde_json::from_str::<ChatKey>("42").is_err());
    }

    #[test]
    fn subscribable_keys_are_checked_strictly() {
        for ok in [
            "tg:-100123",
            "tg:42",
            "tg:@news_2024",
            "mx:!AbC:example.org",
            "mx:!abc:localhost:8448",
            "mx:!aGVsbG8gd29ybGQ",
        ] {
            let k = ChatKey::check_subscribable(ok).unwrap();
            assert_eq!(k.to_string(), ok);
        }
        for bad in [
            "tg:",
            "tg:0",
            "tg:abc",
            "tg:@",
            "tg:@ab",
            "tg:@1abc",
            "tg:@a-b-c",
            "tg:1.5",
            "tg:inline",
            "mx:",
            "mx:room",
            "mx:!",
            "mx:!:x",
            "mx:!a:",
            "mx:!a b:x",
            "mx:#alias:x",
            "xx:1",
            "tg",
            "console",
            "cli",
        ] {
            let e = ChatKey::check_subscribable(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{bad:?}: ")), "{bad}: {e}");
        }
        assert!(ChatKey::check_subscribable("tg:@ab")
            .unwrap_err()
            .to_string()
            .contains("4 to 32"));
    }
}
