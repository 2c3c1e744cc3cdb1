//! Free text as a conversation: small talk, follow-ups of the last answer,
//! deep links, and the two ways a confident wrong answer used to slip out.
//!
//! Failures this prevents:
//! - "hi" answered "I have no fact on that"; "and in 2011?" answered as a
//!   question on its own (see [`super::context`]);
//! - a year alone picking a fact: "сколько наторговали в 2011?", whose
//!   other word no fact knows, answered with whatever is dated 2011. When a
//!   question's words other than its years match nothing, the bot declines;
//! - an attribute the article never gives (an age, a birth date, a
//!   population) answered with an unrelated fact about the entity named.
//!   The bot says the article does not give that, then offers what it does
//!   say about the entity.

use std::sync::Arc;
use std::time::Instant;

use super::compose::Composer;
use super::context::{self, Context, FollowUp};
use super::smalltalk::{self, SmallTalk};
use super::{Engine, Request, MAX_ANSWER_FACTS};
use crate::catalog::Catalog;
use crate::chart::ChartKind;
use crate::facts::{ChatKey, Fact, Topic};
use crate::query;
use crate::reply::{Block, Button, Inline, Msg, Reply, ReplyKind};

/// Words asking for an attribute of a person or a place that a news
/// article often does not give. Exact words (English) and word beginnings
/// (Russian, which inflects): `("old", Some("how"))` counts only beside
/// "how". When a fact contains the word, the question is answered as
/// usual; otherwise the bot says the article does not give it.
const ATTRIBUTES: &[(&str, Option<&str>)] = &[
    ("age", None),
    ("aged", None),
    ("old", Some("how")),
    ("born", None),
    ("birth", None),
    ("birthday", None),
    ("birthplace", None),
    ("birthdate", None),
    ("population", None),
    ("populated", None),
    ("inhabitants", None),
    ("capital", None),
    ("wife", None),
    ("husband", None),
    ("spouse", None),
    ("married", None),
    ("children", None),
    ("kids", None),
    ("height", None),
    ("tall", Some("how")),
    ("salary", None),
    ("religion", None),
    ("died", None),
    ("death", None),
    ("gdp", None),
    ("currency", None),
    ("weather", None),
    ("climate", None),
    ("education", None),
    ("возраст", None),
    ("лет", Some("сколько")),
    ("родил", None),
    ("рожд", None),
    ("населен", None),
    ("жител", None),
    ("столиц", None),
    ("жена", None),
    ("жену", None),
    ("женат", None),
    ("муж", None),
    ("дети", None),
    ("детей", None),
    ("зарплат", None),
    ("религи", None),
    ("умер", None),
    ("ввп", None),
    ("валют", None),
    ("погод", None),
    ("климат", None),
    ("образовани", None),
];

/// Whether word `w` is attribute `(a, beside)` (English, or one that
/// needs a word beside it: the word itself; else a Russian word beginning
/// with it).
fn is_form((a, beside): &(&str, Option<&str>), w: &str) -> bool {
    if a.is_ascii() || beside.is_some() {
        w == *a
    } else {
        w.starts_with(a)
    }
}

/// Whether `w` is an attribute word of [`ATTRIBUTES`] in `words`.
fn is_attribute(w: &str, words: &[String]) -> bool {
    ATTRIBUTES
        .iter()
        .any(|at| is_form(at, w) && at.1.is_none_or(|b| words.iter().any(|x| x == b)))
}

/// The entries of [`ATTRIBUTES`] that `attrs` (a question's attribute
/// words) are forms of: found once per question, so that [`mentions`]
/// compares each word of a fact with these few rather than running the
/// whole table for each (that was a tenth of the answers' time in the
/// Telegram profile, from one question in twenty that asks for an
/// attribute).
fn entries_asked(attrs: &[&String]) -> Vec<&'static (&'static str, Option<&'static str>)> {
    ATTRIBUTES
        .iter()
        .filter(|at| attrs.iter().any(|a| is_form(at, a)))
        .collect()
}

/// Whether fact `f` mentions one of the `asked` attributes: then it may
/// well give the attribute, and the question is answered as usual.
fn mentions(f: &Fact, asked: &[&(&str, Option<&str>)]) -> bool {
    [&f.text.en, &f.text.ru, &f.title.en, &f.title.ru]
        .iter()
        .any(|t| {
            query::words(t)
                .iter()
                .any(|w| asked.iter().any(|at| is_form(at, w)))
        })
}

/// Letters a word must share with a topic's name or title word to name
/// the topic in any form ("экспорта", "exports", "инвестиций").
const TOPIC_PREFIX: usize = 5;

/// Whether word `w` names a topic ("экспорт", "investment", "встречи").
fn names_a_topic(w: &str) -> bool {
    let head = |s: &str| s.chars().take(TOPIC_PREFIX).collect::<String>();
    if w.chars().count() < TOPIC_PREFIX {
        return false;
    }
    let w = head(w);
    Topic::ALL.iter().any(|t| {
        std::iter::once(t.name())
            .chain([
                t.title(crate::facts::Lang::En),
                t.title(crate::facts::Lang::Ru),
            ])
            .flat_map(query::words)
            .filter(|x| x.chars().count() >= TOPIC_PREFIX)
            .any(|x| head(&x) == w)
    })
}

fn is_year(w: &str) -> bool {
    w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit())
}

impl Engine {
    /// Answers a line of free text in its conversation.
    pub(super) fn converse(&self, c: &Composer, req: &Request, question: &str) -> Reply {
        let words = query::words(question);
        if let Some(kind) = smalltalk::classify(&words) {
            return c.small_talk(kind);
        }
        let person = req.person.unwrap_or("");
        let ctx = if req.read_only {
            None
        } else {
            self.memory
                .recall(req.chat, person, req.reply_to, Instant::now(), |ids| {
                    Context::of_answer(c.cat, ids, None)
                })
        };
        let follow = context::classify(&words, ctx.as_ref());
        let reply = match (&follow, ctx.as_ref()) {
            (FollowUp::Period(year), Some(x)) => self.period(c, x, *year),
            (FollowUp::Source, Some(x)) => c.sources(&facts_of(c.cat, &x.facts)),
            (FollowUp::More, Some(x)) => self.more(c, x),
            (FollowUp::Resolved(q), _) => self.free_text(c, q, None),
            (FollowUp::Elliptic, Some(x)) => self.free_text(c, question, Some(x)),
            _ => self.free_text(c, question, None),
        };
        let earlier = ctx.as_ref().filter(|_| follow != FollowUp::Standalone);
        self.remember(req, c, &reply, earlier);
        reply
    }

    /// Makes `reply` (a command's: a topic, a fact, a chart) the sender's
    /// context, so "and in 2011?" after `/trade` continues it.
    pub(super) fn remembered(&self, req: &Request, c: &Composer, reply: Reply) -> Reply {
        self.remember(req, c, &reply, None);
        reply
    }

    fn remember(&self, req: &Request, c: &Composer, reply: &Reply, earlier: Option<&Context>) {
        if req.read_only || reply.kind != ReplyKind::Answer {
            return;
        }
        if let Some(next) = Context::of_answer(c.cat, &reply.facts, earlier) {
            self.memory
                .remember(req.chat, req.person.unwrap_or(""), next);
        }
    }

    /// Remembers that message `message` (the platform's id) sent to `chat`
    /// carried `reply`, so a reply to that message continues that answer.
    /// Transports call it after sending an answer; replies that state no
    /// fact are not remembered. An in-memory insert of the reply's fact
    /// ids, no store read: safe on the async runtime's threads.
    pub fn note_sent(&self, chat: &ChatKey, message: &str, reply: &Reply) {
        if reply.kind != ReplyKind::Answer || reply.facts.is_empty() {
            return;
        }
        self.memory
            .note_sent(chat, message, reply.facts.clone(), Instant::now());
    }

    /// Contexts held: (last answers, sent messages). For tests and logs.
    pub fn contexts_held(&self) -> (usize, usize) {
        self.memory.len()
    }

    /// A question answered from its own words; with `prefer`, among the
    /// facts found, those of the context's years come first (an elliptical
    /// "а экспорт?" after a 2011 answer).
    fn free_text(&self, c: &Composer, question: &str, prefer: Option<&Context>) -> Reply {
        let words = query::words(question);
        if let Some(r) = self.not_given(c, &words) {
            return r;
        }
        let mut hits = self.hits(c.cat, question, MAX_ANSWER_FACTS);
        if !hits.is_empty() && year_alone_picks(c.cat, &words) {
            tracing::debug!("a year alone matched; declining");
            hits.clear();
        }
        // "and Kazakhstan?" after Belarus's exports: another subject in
        // the same topic — unless the line names a topic itself ("а
        // экспорт?" after trade is a new topic).
        if let Some(topic) = prefer.and_then(|x| x.topic) {
            let elsewhere = !hits.iter().any(|f| f.topic == topic);
            if elsewhere && !words.iter().any(|w| names_a_topic(w)) {
                let framed = format!(
                    "{question} {} {}",
                    topic.title(crate::facts::Lang::En),
                    topic.title(crate::facts::Lang::Ru)
                );
                let within: Vec<Arc<Fact>> = self
                    .hits(c.cat, &framed, MAX_ANSWER_FACTS)
                    .into_iter()
                    .filter(|f| f.topic == topic)
                    .collect();
                if !within.is_empty() {
                    hits = within;
                }
            }
        }
        if let Some(ctx) = prefer {
            if !words.iter().any(|w| is_year(w)) && !ctx.years.is_empty() {
                let same: Vec<Arc<Fact>> = hits
                    .iter()
                    .filter(|f| f.years().iter().any(|y| ctx.years.contains(y)))
                    .cloned()
                    .collect();
                if !same.is_empty() {
                    hits = same;
                }
            }
        }
        if hits.is_empty() {
            c.no_answer()
        } else {
            c.answer(&hits)
        }
    }

    /// "How old is Akhmetov?": when the question asks for an attribute no
    /// fact mentions, the reply says so and offers what the article says
    /// about the rest of the question; `None` when it asks for no such
    /// attribute.
    fn not_given(&self, c: &Composer, words: &[String]) -> Option<Reply> {
        let attrs: Vec<&String> = words.iter().filter(|w| is_attribute(w, words)).collect();
        if attrs.is_empty() {
            return None;
        }
        let rest: Vec<&str> = words
            .iter()
            .filter(|w| !is_attribute(w, words))
            .map(String::as_str)
            .collect();
        // What the article says about the subject, the entry of a person
        // it names first ("сколько лет Назарбаеву?": the facts naming him
        // rank above his own entry when asked in Russian).
        let mut about = self.hits(c.cat, &rest.join(" "), MAX_ANSWER_FACTS + 2);
        for p in people_named(c.cat, words, MAX_ANSWER_FACTS) {
            about.retain(|f| f.id != p.id);
            about.insert(0, p);
        }
        about.truncate(MAX_ANSWER_FACTS);
        // A subject the article does not mention ("the capital of
        // France"): the plain "no fact on that". Facts about the subject
        // that mention the attribute ("сколько лет отношениям?" — the 20
        // years): answered as usual.
        let asked = entries_asked(&attrs);
        if about.is_empty() || about.iter().any(|f| mentions(f, &asked)) {
            return None;
        }
        Some(c.not_given(&about))
    }

    /// "and in 2011?": the context's topic in `year`.
    fn period(&self, c: &Composer, ctx: &Context, year: i32) -> Reply {
        let facts: Vec<Arc<Fact>> = match ctx.topic {
            Some(t) => c
                .cat
                .by_topic_in_year(t, year)
                .take(MAX_ANSWER_FACTS)
                .collect(),
            None => Vec::new(),
        };
        if !facts.is_empty() {
            return c.answer(&facts);
        }
        let elsewhere: Vec<Arc<Fact>> = Topic::ALL
            .iter()
            .flat_map(|&t| c.cat.by_topic_in_year(t, year))
            .take(4)
            .collect();
        c.nothing_in_period(ctx.topic, year, &elsewhere)
    }

    /// "more": the facts of the context's topic not shown yet.
    fn more(&self, c: &Composer, ctx: &Context) -> Reply {
        let rest: Vec<Arc<Fact>> = match ctx.topic {
            Some(t) => c
                .cat
                .by_topic(t)
                .filter(|f| !ctx.shown.contains(&f.id))
                .take(MAX_ANSWER_FACTS)
                .collect(),
            None => Vec::new(),
        };
        if rest.is_empty() {
            c.no_more(ctx.topic)
        } else {
            c.answer(&rest)
        }
    }

    /// `/start PAYLOAD` (a Telegram deep link, `t.me/Bot?start=trade`): the
    /// greeting, then the topic or chart the payload names. A payload
    /// outside Telegram's charset (`A-Z a-z 0-9 _ -`, at most 64) or naming
    /// nothing just greets.
    pub(super) fn start(&self, c: &Composer, payload: &str) -> Reply {
        match deep_link(payload) {
            Some(Link::Topic(t)) => c.greet_then(c.topic(t)),
            Some(Link::Chart(k)) => c.greet_then(c.chart(k.name())),
            None => c.start(),
        }
    }
}

/// What a deep link's payload opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Topic(Topic),
    Chart(ChartKind),
}

/// Longest deep-link payload Telegram allows.
const PAYLOAD_MAX: usize = 64;

/// Parses a `/start` payload: `trade`, `milestones`, … (a topic's command
/// name) or `chart_trade`, `chart_milestones`, `chart_investment`.
pub fn deep_link(payload: &str) -> Option<Link> {
    let p = payload.trim();
    if p.is_empty()
        || p.len() > PAYLOAD_MAX
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let p = p.to_ascii_lowercase();
    if let Some(name) = p
        .strip_prefix("chart_")
        .or_else(|| p.strip_prefix("chart-"))
    {
        return ChartKind::parse(name).map(Link::Chart);
    }
    Topic::parse(&p).map(Link::Topic)
}

/// Whether the only words of a question that any fact knows are years:
/// "сколько наторговали в 2011?" — its verb unknown — must not be answered
/// with whatever is dated 2011. A question of a year alone ("what happened
/// in 2010?") is not caught: it has no other content word.
fn year_alone_picks(cat: &Catalog, words: &[String]) -> bool {
    if !words.iter().any(|w| is_year(w)) {
        return false;
    }
    // "году", "year" go with the year: they name no subject.
    let rest: Vec<&str> = words
        .iter()
        .filter(|w| !is_year(w) && !w.starts_with("год") && !w.starts_with("year"))
        .map(String::as_str)
        .collect();
    // Which words are known, not which facts match: no ranking (a second
    // search cost a sixth of a Russian question's time at 100k facts).
    let (words, known) = cat.known_words(&rest.join(" "));
    words > 0 && known == 0
}

/// Letters two words must share at the start to name the same person in
/// any case ("Назарбаеву", "Назарбаев"): five keeps surnames apart.
const NAME_PREFIX: usize = 5;

/// The people's entries (topic People) whose surnames a question's words
/// name, in any grammatical case: the `last` of them in reading order
/// (the caller puts each in front of the answer, so these are the ones it
/// keeps).
fn people_named(cat: &Catalog, words: &[String], last: usize) -> Vec<Arc<Fact>> {
    let prefix = |w: &str| w.chars().take(NAME_PREFIX).collect::<String>();
    let asked: Vec<String> = words
        .iter()
        .filter(|w| w.chars().count() >= NAME_PREFIX)
        .map(|w| prefix(w))
        .collect();
    // One-word aliases are the surname's spellings; longer ones ("Prime
    // Minister of Kazakhstan") name more than the person.
    let docs = cat
        .people()
        .with_word(|w| w.chars().count() >= NAME_PREFIX && asked.contains(&prefix(w)));
    // Only the facts the caller keeps are read: on a large store a
    // surname can name thousands of people, each a store read.
    docs[docs.len().saturating_sub(last)..]
        .iter()
        .filter_map(|&doc| cat.fact(doc))
        .collect()
}

fn facts_of(cat: &Catalog, ids: &[String]) -> Vec<Arc<Fact>> {
    ids.iter().filter_map(|id| cat.get(id)).collect()
}

impl Composer<'_> {
    /// A short friendly answer to small talk, with the topic buttons.
    pub fn small_talk(&self, kind: SmallTalk) -> Reply {
        let line = match kind {
            SmallTalk::Greeting => Msg::Greeting,
            SmallTalk::Thanks => Msg::Thanks,
            SmallTalk::WhoAreYou => Msg::WhoAreYou,
            SmallTalk::WhatCanYouDo => Msg::WhatCanYouDo,
            SmallTalk::HowAreYou => Msg::HowAreYou,
            SmallTalk::Goodbye => Msg::Goodbye,
        };
        let mut r = self.reply(ReplyKind::Info).say(self.say(line));
        r.buttons = self.nav_rows(None);
        r
    }

    /// "why?" / "source?": the sentences behind the last answer's facts.
    pub fn sources(&self, facts: &[Arc<Fact>]) -> Reply {
        let mut r = self.reply(ReplyKind::Answer);
        for f in facts {
            r.blocks.push(Block::Paragraph(vec![Inline::Bold(format!(
                "{}:",
                f.title.get(self.lang)
            ))]));
            r.blocks
                .push(Block::Quote(vec![Inline::Text(f.source.clone())]));
            r.blocks.push(self.source_ref(f));
            r.blocks.extend(self.derivation(f));
        }
        r.facts = facts.iter().map(|f| f.id.clone()).collect();
        r.buttons = facts
            .chunks(2)
            .map(|ch| {
                ch.iter()
                    .map(|f| Button {
                        label: self.word(Msg::FullFactAt(f.paragraph)),
                        action: format!("/fact {}", f.id),
                    })
                    .collect()
            })
            .collect();
        r
    }

    /// "and in 2011?" when the topic has nothing for that year: says so,
    /// and offers what the article has for the year elsewhere.
    pub fn nothing_in_period(
        &self,
        topic: Option<Topic>,
        year: i32,
        elsewhere: &[Arc<Fact>],
    ) -> Reply {
        let what = topic.map(|t| t.title(self.lang));
        let mut r = self
            .reply(ReplyKind::NoAnswer)
            .say(self.say(Msg::NothingInPeriod(what, year)));
        if !elsewhere.is_empty() {
            r = r.say(self.say(Msg::SaysAboutYear(year)));
            r.buttons = self.source_rows(elsewhere);
        }
        r.buttons.extend(self.nav_rows(topic));
        r
    }

    /// "more" when every fact of the topic was shown.
    pub fn no_more(&self, topic: Option<Topic>) -> Reply {
        let mut r = self.reply(ReplyKind::Info).say(self.say(Msg::NoMore));
        r.buttons = self.nav_rows(topic);
        r
    }

    /// A question about an attribute the article does not give: says so,
    /// then what it does say about the subject (`about`, maybe empty).
    pub fn not_given(&self, about: &[Arc<Fact>]) -> Reply {
        let mut r = self.reply(ReplyKind::NoAnswer).say(self.say(Msg::NotGiven));
        if about.is_empty() {
            r.buttons = self.nav_rows(None);
            return r;
        }
        r = r.say(self.say(Msg::WhatItSays));
        for f in about {
            let mut line = vec![
                Inline::Bold(f.title.get(self.lang).to_string()),
                Inline::Text(": ".into()),
            ];
            line.extend(self.fact_line(f));
            r.blocks.push(Block::Paragraph(line));
        }
        r.facts = about.iter().map(|f| f.id.clone()).collect();
        r.buttons = self.source_rows(about);
        r
    }

    /// A command that would change what is stored for the chat, asked
    /// as a one-shot question (`factbot ask "/lang ru"`): refused.
    pub fn one_shot(&self, command: &query::Command) -> Reply {
        let lang_hint = matches!(command, query::Command::Lang(_));
        self.reply(ReplyKind::Error)
            .say(self.say(Msg::OneShot(lang_hint)))
    }

    /// A deep link's answer: a one-line greeting above it.
    pub fn greet_then(&self, mut answer: Reply) -> Reply {
        answer
            .blocks
            .insert(0, Block::Paragraph(self.say(Msg::GreetThen)));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::tests::engine;
    use crate::facts::Lang;
    use crate::reply::render_plain;

    /// Asks `q` as `person` in chat `t`.
    fn ask(e: &Engine, person: &str, q: &str) -> Reply {
        e.handle(&Request {
            person: Some(person),
            ..Request::new(&ChatKey::Console, q)
        })
    }

    fn ids(r: &Reply) -> Vec<&str> {
        r.facts.iter().map(String::as_str).collect()
    }

    #[test]
    fn and_in_another_year_keeps_the_topic() {
        let e = engine();
        let r = ask(&e, "a", "What happened in 2010?");
        assert!(
            ids(&r).contains(&"milestones.customs_territory"),
            "{:?}",
            ids(&r)
        );
        let r = ask(&e, "a", "and in 2011?");
        assert_eq!(ids(&r), ["milestones.borders"]);
        let r = ask(&e, "a", "а в 2015?");
        assert_eq!(ids(&r), ["milestones.eeu_target"]);
        // Trade, then another year of trade.
        let r = ask(
            &e,
            "b",
            "How much was trade between Belarus and Kazakhstan in 2011?",
        );
        assert!(ids(&r).contains(&"trade.2011"), "{:?}", ids(&r));
        let r = ask(&e, "b", "what about 2012?");
        assert!(
            !r.facts.is_empty() && r.facts.iter().all(|f| f.starts_with("trade.")),
            "{:?}",
            ids(&r)
        );
        assert!(ids(&r).contains(&"trade.h1_2012"), "{:?}", ids(&r));
        // A year the topic has nothing for: said plainly, not another topic.
        let r = ask(&e, "b", "and in 2007?");
        assert_eq!(r.kind, ReplyKind::NoAnswer);
        assert!(
            render_plain(&r).contains("nothing on Trade"),
            "{}",
            render_plain(&r)
        );
    }

    #[test]
    fn why_source_and_more_continue_the_last_answer() {
        let e = engine();
        let first = ask(&e, "a", "When was the Single Economic Space launched?");
        assert_eq!(ids(&first)[0], "milestones.ses");
        let r = ask(&e, "a", "why?");
        assert_eq!(r.kind, ReplyKind::Answer);
        assert_eq!(r.facts, first.facts);
        let out = render_plain(&r);
        let f = e.catalog().get("milestones.ses").unwrap();
        assert!(out.contains(&f.source), "{out}");
        assert_eq!(ids(&ask(&e, "a", "откуда?")), ids(&first));
        // "more": the rest of the topic, never what was shown, until done.
        let mut shown: Vec<String> = first.facts.clone();
        let total = e.catalog().topic_len(Topic::Milestones);
        for _ in 0..total {
            let r = ask(&e, "a", "more");
            if r.kind != ReplyKind::Answer {
                assert!(
                    render_plain(&r).contains("That is all"),
                    "{}",
                    render_plain(&r)
                );
                break;
            }
            for id in &r.facts {
                assert!(!shown.contains(id), "{id} shown twice");
                assert!(id.starts_with("milestones."), "{id}");
                shown.push(id.clone());
            }
        }
        assert_eq!(shown.len(), total, "every milestone, once");
    }

    #[test]
    fn elliptical_and_pronoun_follow_ups() {
        let e = engine();
        let r = ask(&e, "a", "Какой был товарооборот в 2011 году?");
        assert!(ids(&r).contains(&"trade.2011"), "{:?}", ids(&r));
        let r = ask(&e, "a", "а экспорт?");
        assert_eq!(r.lang, Lang::Ru);
        assert!(
            !r.facts.is_empty() && r.facts.iter().all(|f| f.starts_with("exports.")),
            "{:?}",
            ids(&r)
        );
        let r = ask(&e, "b", "When did Myasnikovich visit Kazakhstan?");
        assert!(ids(&r).contains(&"visit.dates"), "{:?}", ids(&r));
        let r = ask(&e, "b", "who did he meet?");
        assert!(ids(&r).contains(&"visit.host"), "{:?}", ids(&r));
        // Another subject in the same topic.
        let r = ask(&e, "c", "What does Belarus export to Kazakhstan?");
        assert_eq!(ids(&r).first(), Some(&"exports.by_to_kz"), "{:?}", ids(&r));
        let r = ask(&e, "c", "and Kazakhstan?");
        assert_eq!(ids(&r).first(), Some(&"exports.kz_to_by"), "{:?}", ids(&r));
        // A topic named outright is a new topic.
        let r = ask(&e, "c", "and investment?");
        assert!(
            r.facts.iter().all(|f| f.starts_with("investment.")),
            "{:?}",
            ids(&r)
        );
    }

    #[test]
    fn a_question_that_stands_alone_ignores_the_context() {
        let e = engine();
        ask(&e, "a", "What happened in 2010?");
        let r = ask(
            &e,
            "a",
            "How much was trade between Belarus and Kazakhstan in 2011?",
        );
        assert!(ids(&r).contains(&"trade.2011"), "{:?}", ids(&r));
        let r = ask(&e, "a", "Who is Serik Akhmetov?");
        assert_eq!(ids(&r)[0], "people.akhmetov");
    }

    #[test]
    fn in_a_group_each_person_has_their_own_context_and_a_reply_picks_the_answer() {
        let e = engine();
        let chat = &ChatKey::Telegram(-100);
        let req = |person, q, reply_to| Request {
            person: Some(person),
            reply_to,
            ..Request::new(chat, q)
        };
        let m = e.handle(&req("alice", "What happened in 2010?", None));
        e.note_sent(chat, "501", &m);
        let t = e.handle(&req("bob", "How much was trade in 2011?", None));
        e.note_sent(chat, "502", &t);
        // Bob's "and in 2012?" continues Bob's answer (trade), not Alice's.
        let r = e.handle(&req("bob", "and in 2012?", None));
        assert!(
            r.facts.iter().all(|f| f.starts_with("trade.")),
            "{:?}",
            ids(&r)
        );
        // Bob replying to Alice's answer continues that one (milestones).
        let r = e.handle(&req("bob", "and in 2011?", Some("501")));
        assert_eq!(ids(&r), ["milestones.borders"]);
        // Carol, who asked nothing, gets a question on its own.
        let r = e.handle(&req("carol", "and in 2011?", None));
        assert!(!ids(&r).contains(&"milestones.borders") || r.facts.len() > 1);
        // A reply to a message that carried no answer falls back to the
        // person's own context.
        let r = e.handle(&req("alice", "and in 2011?", Some("999")));
        assert_eq!(ids(&r), ["milestones.borders"]);
        assert_eq!(e.contexts_held().1, 2);
    }

    #[test]
    fn small_talk_gets_a_friendly_answer_with_topics() {
        let e = engine();
        for (q, lang) in [
            ("hi", Lang::En),
            ("helo!", Lang::En),
            ("thanks", Lang::En),
            ("who are you?", Lang::En),
            ("what can you do?", Lang::En),
            ("bye", Lang::En),
            ("Привет", Lang::Ru),
            ("спасибо!", Lang::Ru),
            ("кто ты?", Lang::Ru),
            ("что ты умеешь?", Lang::Ru),
            ("пока", Lang::Ru),
        ] {
            let r = ask(&e, "a", q);
            assert_eq!((r.kind, r.lang), (ReplyKind::Info, lang), "{q}");
            assert!(r.facts.is_empty(), "{q}");
            assert!(
                r.buttons.iter().flatten().any(|b| b.action == "/trade"),
                "{q}"
            );
            let out = render_plain(&r);
            assert!(
                !out.contains("no fact") && !out.contains("нет фактов"),
                "{q}: {out}"
            );
        }
    }

    #[test]
    fn attributes_the_article_does_not_give_are_declined_with_what_it_does_say() {
        let e = engine();
        for (q, about) in [
            ("How old is Akhmetov?", "people.akhmetov"),
            ("When was Lukashenko born?", "people.lukashenko"),
            ("Сколько лет Назарбаеву?", "people.nazarbayev"),
            ("What is the population of Kazakhstan?", ""),
        ] {
            let r = ask(&e, "a", q);
            assert_eq!(r.kind, ReplyKind::NoAnswer, "{q}: {:?}", ids(&r));
            let out = render_plain(&r);
            assert!(
                out.contains("does not give") || out.contains("этого нет"),
                "{q}: {out}"
            );
            if !about.is_empty() {
                assert!(ids(&r).contains(&about), "{q}: {:?}", ids(&r));
            }
        }
        // An attribute the facts do mention is answered as usual.
        let r = ask(
            &e,
            "a",
            "How old are relations between Belarus and Kazakhstan?",
        );
        assert_ne!(r.kind, ReplyKind::Error);
    }

    #[test]
    fn a_year_alone_does_not_pick_an_unrelated_fact() {
        let e = engine();
        // The colloquial verb is known (a synonym of trade): the right fact.
        let r = ask(&e, "a", "сколько наторговали в 2011 году?");
        assert_eq!(ids(&r).first(), Some(&"trade.2011"), "{:?}", ids(&r));
        // A verb no fact knows: declined, not whatever is dated 2011.
        let r = ask(&e, "a", "how much did they flibbergast in 2011?");
        assert_eq!(r.kind, ReplyKind::NoAnswer, "{:?}", ids(&r));
        for q in [
            "сколько наторговали в 2011?",
            "сколько наторговали в 2011 году",
            "how much did they flibbergast in 2011?",
        ] {
            let r = ask(&e, "a", q);
            assert!(
                r.kind == ReplyKind::NoAnswer
                    || (ids(&r).contains(&"trade.2011")
                        && r.facts.iter().all(|f| f.starts_with("trade."))),
                "{q}: {:?}",
                ids(&r)
            );
        }
        // A year that is the whole question still answers.
        let r = ask(&e, "a", "What happened in 2011?");
        assert_eq!(r.kind, ReplyKind::Answer);
    }

    #[test]
    fn deep_links_greet_then_answer() {
        assert_eq!(deep_link("trade"), Some(Link::Topic(Topic::Trade)));
        assert_eq!(
            deep_link("Milestones"),
            Some(Link::Topic(Topic::Milestones))
        );
        assert_eq!(
            deep_link("chart_trade"),
            Some(Link::Chart(ChartKind::Trade))
        );
        assert_eq!(
            deep_link("chart-investment"),
            Some(Link::Chart(ChartKind::Investment))
        );
        for bad in [
            "",
            "nope",
            "chart_pie",
            "trade!",
            "<b>trade</b>",
            &"a".repeat(65),
            "торговля",
        ] {
            assert_eq!(deep_link(bad), None, "{bad}");
        }
        let e = engine();
        let r = ask(&e, "a", "/start trade");
        let out = render_plain(&r);
        assert!(out.starts_with("Hello!") && out.contains("769"), "{out}");
        assert!(ids(&r).contains(&"trade.2011"));
        // The topic a link opened is the context of the next question.
        let r = ask(&e, "a", "and in 2012?");
        assert!(ids(&r).contains(&"trade.h1_2012"), "{:?}", ids(&r));
        let r = ask(&e, "a", "/start chart_trade");
        assert!(r.image.is_some());
        assert!(render_plain(&r).starts_with("Hello!"));
        for q in ["/start", "/start nope", "/start <script>"] {
            let r = ask(&e, "a", q);
            assert_eq!(r.kind, ReplyKind::Info, "{q}");
            assert!(r.facts.is_empty() && r.image.is_none(), "{q}");
        }
    }

    #[test]
    fn a_one_shot_question_stores_and_reads_no_settings() {
        let e = engine();
        let one_shot = |q| Request {
            read_only: true,
            private: true,
            chat_admin: true,
            ..Request::new(&ChatKey::Cli, q)
        };
        let r = e.handle(&one_shot("/lang ru"));
        assert_eq!(r.kind, ReplyKind::Error);
        assert!(render_plain(&r).contains("--lang"));
        assert_eq!(e.store().chat_settings(&ChatKey::Cli).unwrap().lang, None);
        // A setting stored before (by an older version) is not read either.
        let mut s = e.store().chat_settings(&ChatKey::Cli).unwrap();
        s.lang = Some(Lang::Ru);
        e.store().set_chat_settings(&ChatKey::Cli, &s).unwrap();
        assert_eq!(e.handle(&one_shot("trade in 2011")).lang, Lang::En);
        // Nor is a conversation remembered.
        e.handle(&one_shot("What happened in 2010?"));
        assert_eq!(e.contexts_held(), (0, 0));
        let r = e.handle(&one_shot("/subscribe"));
        assert_eq!(r.kind, ReplyKind::Error);
    }
}
