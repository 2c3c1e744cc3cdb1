//! Conversation context: what a chat was just told, so "and in 2011?",
//! "а экспорт?", "who did he meet?", "why?" and "more" continue it.
//!
//! Failures this prevents: a follow-up answered as if it stood alone ("and
//! in 2011?" after the 2010 milestone answered with the 2011 trade figures
//! because a year alone matched them), and the opposite — a question that
//! stands on its own bent by whatever was asked before.
//!
//! Two parts:
//! - [`classify`], a pure function: is this line a follow-up of that
//!   context, and what does it inherit? Only a few shapes are follow-ups (a
//!   period alone, "why"/"source" alone, "more" alone, an elliptical "and
//!   …?"/"а …?", a pronoun with no name of its own); anything else is
//!   answered on its own, context or not.
//! - [`Memory`], the contexts themselves, bounded in number and in age:
//!   the last answer per person in a chat (a group's members each have
//!   their own), and the answer each sent message carried, so a reply to
//!   an older answer continues *that* answer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hashlink::LruCache;

use crate::catalog::Catalog;
use crate::facts::{ChatKey, Fact, Topic};

/// How long a chat's last answer stays the context of its next question.
/// A follow-up comes within a minute or two; after a pause, "and in 2011?"
/// is more likely about something else, so a stale context is forgotten
/// rather than guessed from.
pub const CONTEXT_TTL: Duration = Duration::from_secs(5 * 60);
/// Chats × people whose last answer is remembered at once, least recently
/// used dropped first. A context is a few fact ids and a few words (well
/// under 1 KiB), so the cap bounds this memory to a few MiB however many
/// chats write to the bot.
pub const MAX_CONTEXTS: usize = 10_000;
/// How long the answer a sent message carried can be replied to. Longer
/// than [`CONTEXT_TTL`]: replying to an answer names it explicitly, so it
/// stays unambiguous after a pause.
pub const SENT_TTL: Duration = Duration::from_secs(60 * 60);
/// Sent messages whose answer is remembered at once (least recently used
/// dropped first); the same size argument as [`MAX_CONTEXTS`].
pub const MAX_SENT: usize = 10_000;
/// Fact ids a context keeps: an answer has at most a few, "more" adds to
/// them; the cap keeps a long "more, more, more" thread bounded.
const MAX_CONTEXT_FACTS: usize = 24;
/// Content words of an elliptical follow-up ("and what about exports?"),
/// at most; a longer question brings its own subject.
const MAX_ELLIPTIC_WORDS: usize = 3;

/// What the last answer was about.
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    /// Facts shown so far in this thread, in order (the last answer's first
    /// … "more" appends): "why?" cites the last answer's, "more" skips all.
    pub shown: Vec<String>,
    /// The last answer's facts.
    pub facts: Vec<String>,
    /// Its topic (the first fact's).
    pub topic: Option<Topic>,
    /// The years its facts are about ("and in 2011?" changes it).
    pub years: Vec<i32>,
    /// Surnames of the people it mentions, the first two ("who did he
    /// meet?" resolves "he" when there is exactly one).
    pub people: Vec<String>,
    /// When it was answered.
    pub at: Instant,
}

impl Context {
    /// The context an answer stating `ids` leaves, or `None` when it
    /// states no fact (a refusal or small talk leaves the context as it
    /// was).
    pub fn of_answer(cat: &Catalog, ids: &[String], earlier: Option<&Context>) -> Option<Context> {
        let facts: Vec<std::sync::Arc<Fact>> = ids.iter().filter_map(|id| cat.get(id)).collect();
        let first = facts.first()?;
        let mut years = Vec::new();
        for f in &facts {
            for y in f.years() {
                if !years.contains(&y) {
                    years.push(y);
                }
            }
        }
        let named: Vec<(&str, &str, &str)> = facts
            .iter()
            .map(|f| (f.id.as_str(), f.text.en.as_str(), f.source.as_str()))
            .collect();
        // Follow-ups need to know whether the answer names exactly one.
        let people = cat.people().named_first(&named, 2);
        let mut shown: Vec<String> = match earlier {
            Some(e) if e.topic == Some(first.topic) => e.shown.clone(),
            _ => Vec::new(),
        };
        for id in ids {
            if !shown.contains(id) {
                shown.push(id.clone());
            }
        }
        let cut = shown.len().saturating_sub(MAX_CONTEXT_FACTS);
        shown.drain(..cut);
        Some(Context {
            shown,
            facts: ids.to_vec(),
            topic: Some(first.topic),
            years,
            people,
            at: Instant::now(),
        })
    }
}

/// What a line does with the context before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowUp {
    /// Answered on its own.
    Standalone,
    /// "and in 2011?": the same topic, another year.
    Period(i32),
    /// "why?", "source?", "откуда?": the sources of the last answer.
    Source,
    /// "more", "ещё": what else the article says on the topic.
    More,
    /// "а экспорт?", "what about investment?": a new subject in the same
    /// frame — answered from its own words, the context's years preferred.
    Elliptic,
    /// "who did he meet?": the question with the person it refers to
    /// named (the text to search).
    Resolved(String),
}

/// Words that carry no subject in a follow-up ("and in 2011?", "а что в
/// 2011 году?").
const FILLERS: &[&str] = &[
    // What a period question asks, not its subject.
    "much",
    "many",
    "сколько",
    "and",
    "what",
    "about",
    "how",
    "in",
    "the",
    "for",
    "year",
    "then",
    "so",
    "ok",
    "okay",
    "is",
    "was",
    "it",
    "of",
    "a",
    "s",
    "please",
    "tell",
    "me",
    "same",
    "а",
    "и",
    "в",
    "во",
    "что",
    "как",
    "насчет",
    "на",
    "счет",
    "году",
    "год",
    "года",
    "за",
    "ну",
    "тогда",
    "про",
    "м",
    "ом",
    "же",
    "там",
    "с",
    "со",
    "по",
    "это",
    "а",
];
/// "What happened in 2011?" asks about the year itself; "and what
/// happened in 2011?" continues the last answer's topic.
const EVENT_WORDS: &[&str] = &[
    "happened",
    "happen",
    "happening",
    "было",
    "был",
    "была",
    "произошло",
    "случилось",
    "происходило",
];
/// Words asking where an answer comes from ("why?", "source?").
const SOURCE_WORDS: &[&str] = &[
    "why",
    "source",
    "sources",
    "proof",
    "evidence",
    "cite",
    "citation",
    "reference",
    "почему",
    "источник",
    "источники",
    "откуда",
    "пруф",
    "доказательство",
    "докажи",
    "ссылка",
    "say",
    "says",
    "said",
    "сказано",
    "написано",
];
/// Words that may stand beside a source word ("where does it say so?").
const SOURCE_FILLERS: &[&str] = &[
    "where",
    "does",
    "do",
    "say",
    "says",
    "said",
    "that",
    "this",
    "so",
    "from",
    "the",
    "is",
    "it",
    "what",
    "s",
    "your",
    "где",
    "взято",
    "это",
    "так",
    "такое",
    "знаешь",
    "известно",
    "а",
    "и",
];
/// Words asking for more of the same.
const MORE_WORDS: &[&str] = &[
    "more",
    "else",
    "details",
    "detail",
    "continue",
    "next",
    "further",
    "еще",
    "подробнее",
    "подробней",
    "больше",
    "дальше",
    "продолжай",
    "детали",
];
/// Words that may stand beside a "more" word ("tell me more", "что ещё?").
const MORE_FILLERS: &[&str] = &[
    "about",
    "that",
    "this",
    "it",
    "об",
    "о",
    "этом",
    "про",
    "это",
    "tell",
    "me",
    "give",
    "some",
    "any",
    "anything",
    "what",
    "go",
    "on",
    "please",
    "and",
    "is",
    "there",
    "расскажи",
    "расскажите",
    "что",
    "а",
    "и",
    "пожалуйста",
    "давай",
    "есть",
];
/// Words that start an elliptical follow-up ("and …?", "а …?").
const ELLIPTIC_LEADS: &[&str] = &["and", "а", "и"];
/// "what about …", "how about …", "а как насчёт …".
const ELLIPTIC_PAIRS: &[(&str, &str)] = &[
    ("what", "about"),
    ("how", "about"),
    ("as", "for"),
    ("как", "насчет"),
    ("что", "насчет"),
    ("что", "с"),
    ("что", "по"),
];
/// Pronouns standing for a person.
const PERSON_PRONOUNS: &[&str] = &[
    "he", "him", "his", "she", "her", "он", "его", "ему", "него", "нему", "им", "ним", "она", "ее",
    "ей", "ней",
];

fn is_year(w: &str) -> Option<i32> {
    (w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()))
        .then(|| w.parse().ok())
        .flatten()
        .filter(|y| (1900..=2100).contains(y))
}

/// Decides whether `words` (the line's lower-case words, see
/// [`crate::query::words`]) continue `ctx`, and how. Without a context,
/// or with an expired one (the caller drops those), every line stands
/// alone.
pub fn classify(words: &[String], ctx: Option<&Context>) -> FollowUp {
    let Some(ctx) = ctx else {
        return FollowUp::Standalone;
    };
    if words.is_empty() {
        return FollowUp::Standalone;
    }
    let has = |set: &[&str], w: &str| set.contains(&w);
    // "why?", "source?", "where does it say that?", "откуда это?"
    if words.iter().any(|w| has(SOURCE_WORDS, w))
        && words
            .iter()
            .all(|w| has(SOURCE_WORDS, w) || has(SOURCE_FILLERS, w))
    {
        return FollowUp::Source;
    }
    // "more", "tell me more", "что ещё?"
    if words.iter().any(|w| has(MORE_WORDS, w))
        && words
            .iter()
            .all(|w| has(MORE_WORDS, w) || has(MORE_FILLERS, w))
    {
        return FollowUp::More;
    }
    let lead = has(ELLIPTIC_LEADS, &words[0])
        || words
            .windows(2)
            .take(2)
            .any(|p| ELLIPTIC_PAIRS.contains(&(p[0].as_str(), p[1].as_str())));
    let content: Vec<&String> = words
        .iter()
        .filter(|w| !has(FILLERS, w) && !has(EVENT_WORDS, w))
        .collect();
    let event = words.iter().any(|w| has(EVENT_WORDS, w));
    // "and in 2011?", "а в 2011-м?", "what about 2012?", "and what
    // happened in 2011?" — but not "what happened in 2011?".
    if let [only] = content.as_slice() {
        if let Some(y) = is_year(only) {
            if lead || !event {
                return FollowUp::Period(y);
            }
        }
    }
    // "who did he meet?": name the person the pronoun stands for, unless
    // the question names someone itself.
    if let [person] = ctx.people.as_slice() {
        let names_one = words.iter().any(|w| person.to_lowercase() == *w);
        if words.iter().any(|w| has(PERSON_PRONOUNS, w)) && !names_one {
            return FollowUp::Resolved(format!("{} {person}", words.join(" ")));
        }
    }
    if lead && !content.is_empty() && content.len() <= MAX_ELLIPTIC_WORDS {
        return FollowUp::Elliptic;
    }
    FollowUp::Standalone
}

/// The contexts of recent answers, bounded in number and age.
pub struct Memory {
    inner: Mutex<Inner>,
}

struct Inner {
    /// By chat and person: the last answer each was given.
    recent: LruCache<(ChatKey, String), Context>,
    /// By chat and sent message id: the answer that message carried.
    sent: LruCache<(ChatKey, String), Sent>,
}

/// What a sent message carried: the ids of the facts it stated. Only ids,
/// so noting a sent message costs a transport no store read (it is done on
/// the async runtime's threads); the context is derived when a reply to it
/// arrives, on the engine's thread.
struct Sent {
    facts: Vec<String>,
    at: Instant,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            inner: Mutex::new(Inner {
                recent: LruCache::new(MAX_CONTEXTS),
                sent: LruCache::new(MAX_SENT),
            }),
        }
    }
}

impl Memory {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves maps that are still valid.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The context of `person`'s next line in `chat`: the answer the line
    /// replies to (`reply_to`, a sent message id) if it is remembered —
    /// its context made by `derive` from the facts it stated, outside the
    /// lock — else the person's last answer if it is recent enough.
    pub fn recall(
        &self,
        chat: &ChatKey,
        person: &str,
        reply_to: Option<&str>,
        now: Instant,
        derive: impl FnOnce(&[String]) -> Option<Context>,
    ) -> Option<Context> {
        if let Some(msg) = reply_to {
            let key = (chat.clone(), msg.to_string());
            let facts = {
                let mut inner = self.lock();
                match inner.sent.get(&key) {
                    Some(s) if now.saturating_duration_since(s.at) <= SENT_TTL => {
                        Some(s.facts.clone())
                    }
                    Some(_) => {
                        inner.sent.remove(&key);
                        None
                    }
                    None => None,
                }
            };
            if let Some(ctx) = facts.as_deref().and_then(derive) {
                return Some(ctx);
            }
        }
        let mut inner = self.lock();
        let key = (chat.clone(), person.to_string());
        match inner.recent.get(&key) {
            Some(c) if now.saturating_duration_since(c.at) <= CONTEXT_TTL => Some(c.clone()),
            Some(_) => {
                inner.recent.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers `ctx` as `person`'s last answer in `chat`.
    pub fn remember(&self, chat: &ChatKey, person: &str, ctx: Context) {
        self.lock()
            .recent
            .insert((chat.clone(), person.to_string()), ctx);
    }

    /// Remembers that message `message` sent to `chat` at `at` stated
    /// `facts`.
    pub fn note_sent(&self, chat: &ChatKey, message: &str, facts: Vec<String>, at: Instant) {
        self.lock()
            .sent
            .insert((chat.clone(), message.to_string()), Sent { facts, at });
    }

    /// How many contexts are held (last answers, sent messages).
    pub fn len(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.recent.len(), inner.sent.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::words;

    fn ctx(topic: Topic, years: &[i32], people: &[&str]) -> Context {
        Context {
            shown: vec!["x".into()],
            facts: vec!["x".into()],
            topic: Some(topic),
            years: years.to_vec(),
            people: people.iter().map(|s| s.to_string()).collect(),
            at: Instant::now(),
        }
    }

    fn of(q: &str, c: &Context) -> FollowUp {
        classify(&words(q), Some(c))
    }

    #[test]
    fn periods_alone_change_the_year() {
        let c = ctx(Topic::Milestones, &[2010], &[]);
        for q in [
            "and in 2011?",
            "And 2011?",
            "what about 2011?",
            "а в 2011?",
            "а в 2011-м?",
            "А что было в 2011 году?",
            "а сколько в 2011?",
            "and how much in 2011?",
            "2011?",
        ] {
            assert_eq!(of(q, &c), FollowUp::Period(2011), "{q}");
        }
        // A year with a subject of its own stands alone.
        assert_eq!(of("trade in 2011", &c), FollowUp::Standalone);
        assert_eq!(of("What happened in 2011?", &c), FollowUp::Standalone);
        assert_eq!(of("что было в 2011 году?", &c), FollowUp::Standalone);
        assert_eq!(of("and what happened in 2011?", &c), FollowUp::Period(2011));
    }

    #[test]
    fn sources_and_more() {
        let c = ctx(Topic::Trade, &[2011], &[]);
        for q in [
            "why?",
            "Source?",
            "where does it say that?",
            "Откуда?",
            "почему?",
            "а источник?",
        ] {
            assert_eq!(of(q, &c), FollowUp::Source, "{q}");
        }
        for q in [
            "more",
            "tell me more",
            "tell me more about that",
            "расскажи подробнее об этом",
            "anything else?",
            "ещё",
            "а что ещё?",
            "подробнее",
        ] {
            assert_eq!(of(q, &c), FollowUp::More, "{q}");
        }
        assert_eq!(
            of("why did trade grow in 2012?", &c),
            FollowUp::Standalone,
            "a why-question with a subject stands alone"
        );
        assert_eq!(of("more about the customs union", &c), FollowUp::Standalone);
    }

    #[test]
    fn pronouns_name_the_person_of_the_last_answer() {
        let c = ctx(Topic::Visit, &[2012], &["Myasnikovich"]);
        assert_eq!(
            of("Who did he meet?", &c),
            FollowUp::Resolved("who did he meet Myasnikovich".into())
        );
        assert_eq!(
            of("с кем он встречался?", &c),
            FollowUp::Resolved("с кем он встречался Myasnikovich".into())
        );
        // Naming the person, or no one to refer to, or two candidates:
        // the question stands alone.
        assert_eq!(of("Who did Myasnikovich meet?", &c), FollowUp::Standalone);
        let none = ctx(Topic::Trade, &[2011], &[]);
        assert_eq!(of("Who did he meet?", &none), FollowUp::Standalone);
        let two = ctx(Topic::Visit, &[2012], &["Myasnikovich", "Akhmetov"]);
        assert_eq!(of("Who did he meet?", &two), FollowUp::Standalone);
    }

    #[test]
    fn elliptical_questions_inherit_and_full_ones_stand_alone() {
        let c = ctx(Topic::Trade, &[2011], &[]);
        for q in [
            "а экспорт?",
            "and investment?",
            "What about exports?",
            "а как насчёт инвестиций?",
        ] {
            assert_eq!(of(q, &c), FollowUp::Elliptic, "{q}");
        }
        for q in [
            "What does Belarus export to Kazakhstan?",
            "When was the Customs Union set up?",
            "and when was the customs union set up in the end?",
            "hi",
        ] {
            assert_eq!(of(q, &c), FollowUp::Standalone, "{q}");
        }
    }

    #[test]
    fn without_a_context_everything_stands_alone() {
        for q in [
            "and in 2011?",
            "why?",
            "more",
            "а экспорт?",
            "who did he meet?",
        ] {
            assert_eq!(classify(&words(q), None), FollowUp::Standalone, "{q}");
        }
    }

    fn none(_: &[String]) -> Option<Context> {
        None
    }

    #[test]
    fn memory_expires_and_is_bounded() {
        let m = Memory::default();
        let t0 = Instant::now();
        let mut c = ctx(Topic::Trade, &[2011], &[]);
        c.at = t0;
        m.remember(&ChatKey::Telegram(1), "7", c.clone());
        assert!(m
            .recall(&ChatKey::Telegram(1), "7", None, t0, none)
            .is_some());
        assert!(
            m.recall(&ChatKey::Telegram(1), "8", None, t0, none)
                .is_none(),
            "per person"
        );
        assert!(
            m.recall(&ChatKey::Telegram(2), "7", None, t0, none)
                .is_none(),
            "per chat"
        );
        assert!(m
            .recall(
                &ChatKey::Telegram(1),
                "7",
                None,
                t0 + CONTEXT_TTL + Duration::from_secs(1),
                none
            )
            .is_none());
        assert_eq!(m.len().0, 0, "an expired context is dropped when met");
        // A reply names its answer, and outlives the chat's context.
        let mut old = ctx(Topic::Milestones, &[2010], &[]);
        old.at = t0;
        m.note_sent(&ChatKey::Telegram(1), "55", vec!["m.1".into()], t0);
        m.remember(&ChatKey::Telegram(1), "7", c);
        let later = t0 + CONTEXT_TTL * 2;
        let derive = |ids: &[String]| {
            assert_eq!(ids, ["m.1"]);
            Some(old.clone())
        };
        assert_eq!(
            m.recall(&ChatKey::Telegram(1), "7", Some("55"), later, derive)
                .map(|c| c.topic),
            Some(Some(Topic::Milestones))
        );
        assert!(m
            .recall(
                &ChatKey::Telegram(1),
                "7",
                Some("55"),
                t0 + SENT_TTL * 2,
                derive
            )
            .is_none());
        for i in 0..MAX_CONTEXTS + 10 {
            m.remember(&ChatKey::Telegram(3), &i.to_string(), old.clone());
            m.note_sent(
                &ChatKey::Telegram(3),
                &i.to_string(),
                vec!["m.1".into()],
                t0,
            );
        }
        assert_eq!(m.len(), (MAX_CONTEXTS, MAX_SENT));
    }
}
