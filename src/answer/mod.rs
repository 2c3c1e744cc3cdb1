//! The answering service: a line of chat in, a [`Reply`] out.
//!
//! This is the one entry point every transport calls. It owns the store and
//! an in-memory [`Catalog`] (facts + search index) rebuilt from the store
//! after each import, decides the answer language, routes commands, and
//! decides when to say "I have no fact on that" rather than guess.

mod compose;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::facts::{paragraphs, Dataset, Fact, ImportReport, Lang, Store, StoreError, Topic};
use crate::query::{self, Command, Index, Input};
use crate::reply::Reply;

/// A question must match at least this share (IDF-weighted) of its content
/// words for the bot to answer; below it, the bot declines. Tuned on the
/// answer-quality table (`tests/quality.toml`).
pub const MIN_COVERAGE: f32 = 0.5;
/// Facts covering less than this are never scored (a large-store speed-up:
/// facts sharing only a common word with the question are skipped). Lower
/// than [`MIN_COVERAGE`] so that a strong partial match still ranks first
/// and makes the bot decline, as it should ("Who is the president of
/// Russia?" best matches the presidents, not the Customs Union with Russia).
const ADMIT_COVERAGE: f32 = 0.3;
/// Facts in one free-text answer, at most.
pub const MAX_ANSWER_FACTS: usize = 3;
/// Results of `/search`, at most.
pub const MAX_SEARCH_RESULTS: usize = 5;
/// Facts within this share of the best score join it in an answer.
const RELATIVE_CUTOFF: f32 = 0.55;

/// Everything answering needs in memory, rebuilt as a whole after an import.
pub struct Catalog {
    /// Facts in dataset order.
    pub facts: Vec<Fact>,
    by_id: HashMap<String, usize>,
    /// Per topic, its facts in reading order (milestones by date).
    by_topic: HashMap<Topic, Vec<usize>>,
    /// Per id namespace (the part before the first '.'), its facts.
    by_namespace: HashMap<String, Vec<usize>>,
    index: Index,
    /// The article's headline, named when a source is quoted.
    headline: String,
}

impl Catalog {
    pub fn build(facts: Vec<Fact>, synonyms: &[Vec<String>], headline: String) -> Catalog {
        let index = Index::build(&facts, synonyms);
        let by_id = facts
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id.clone(), i))
            .collect();
        let mut by_topic: HashMap<Topic, Vec<usize>> = HashMap::new();
        for (i, f) in facts.iter().enumerate() {
            by_topic.entry(f.topic).or_default().push(i);
        }
        let mut by_namespace: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, f) in facts.iter().enumerate() {
            by_namespace
                .entry(namespace(&f.id).to_string())
                .or_default()
                .push(i);
        }
        if let Some(m) = by_topic.get_mut(&Topic::Milestones) {
            m.sort_by_key(|&i| (facts[i].date.is_none(), facts[i].date, facts[i].order));
        }
        Catalog {
            facts,
            by_id,
            by_topic,
            by_namespace,
            index,
            headline,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Fact> {
        self.by_id.get(id).map(|&i| &self.facts[i])
    }

    /// A topic's facts in reading order (milestones by date, undated last).
    pub fn by_topic(&self, topic: Topic) -> impl Iterator<Item = &Fact> {
        self.by_topic
            .get(&topic)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|&i| &self.facts[i])
    }

    /// How many facts a topic has.
    pub fn topic_len(&self, topic: Topic) -> usize {
        self.by_topic.get(&topic).map_or(0, Vec::len)
    }

    /// The raw ranked candidates for a question, before the answer cut-offs.
    pub fn explain(&self, question: &str, limit: usize) -> query::SearchResult {
        self.index.search(question, limit, 0.0)
    }

    /// The fact id closest to a mistyped one, for "did you mean". Only ids
    /// of the same namespace (`trade.` in `trade.2011`) are compared — or of
    /// the namespace closest to a mistyped one — so the cost stays small on
    /// a large store.
    fn closest_id(&self, id: &str) -> Option<&str> {
        let ns = namespace(id);
        let candidates = match self.by_namespace.get(ns) {
            Some(c) => c,
            None => {
                let (_, near) = self
                    .by_namespace
                    .keys()
                    .map(|k| (strsim::levenshtein(k, ns), k))
                    .filter(|(d, _)| *d <= 2)
                    .min()?;
                self.by_namespace.get(near)?
            }
        };
        candidates
            .iter()
            .map(|&i| {
                (
                    strsim::levenshtein(&self.facts[i].id, id),
                    self.facts[i].id.as_str(),
                )
            })
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, id)| id)
    }
}

/// The namespace of a fact id: `trade` for `trade.2011`.
fn namespace(id: &str) -> &str {
    id.split('.').next().unwrap_or(id)
}

/// Who asks, where, and what.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// Transport-qualified chat key (`console`, `tg:42`, `mx:!id:server`);
    /// per-chat settings are stored under it.
    pub chat: &'a str,
    /// The line as the user typed it (command addressees already checked).
    pub text: &'a str,
    /// The user's interface language, if the platform tells it; used when
    /// neither the chat's `/lang` nor the question's script decides.
    pub user_lang: Option<Lang>,
    /// A language that overrides everything (`factbot ask --lang`).
    pub force_lang: Option<Lang>,
    /// Characters that start a command on this transport.
    pub prefixes: &'a [char],
    /// The sender administers this chat (Telegram: creator/administrator;
    /// Matrix: power level ≥ 50). Transports find out only when
    /// `Input::needs_chat_admin()`; a private chat counts as administered.
    pub chat_admin: bool,
    /// The sender is one of the bot's configured admins (`/announce`).
    pub bot_admin: bool,
    /// A one-to-one chat with the bot.
    pub private: bool,
}

impl<'a> Request<'a> {
    pub fn new(chat: &'a str, text: &'a str) -> Self {
        Request {
            chat,
            text,
            user_lang: None,
            force_lang: None,
            prefixes: &['/'],
            chat_admin: false,
            bot_admin: false,
            private: false,
        }
    }
}

/// The answering service. Share it behind an `Arc`; `handle` takes `&self`.
pub struct Engine {
    store: Store,
    catalog: RwLock<Arc<Catalog>>,
    /// Subscriptions and the outbox (notification commands, deliveries).
    hub: crate::notify::Hub,
}

impl Engine {
    /// Builds the engine over an already imported store.
    pub fn new(store: Store) -> Result<Engine, StoreError> {
        let catalog = Self::load(&store)?;
        let hub = crate::notify::Hub::open(&store)?;
        Ok(Engine {
            store,
            catalog: RwLock::new(Arc::new(catalog)),
            hub,
        })
    }

    fn load(store: &Store) -> Result<Catalog, StoreError> {
        let article = store.article()?;
        let headline = paragraphs(&article)
            .first()
            .copied()
            .unwrap_or("")
            .to_string();
        Ok(Catalog::build(store.facts()?, &store.synonyms()?, headline))
    }

    /// Imports `ds` into the store and, if anything changed, swaps in a new
    /// catalog; answers in flight keep the old one.
    pub fn import(&self, ds: &Dataset) -> Result<ImportReport, StoreError> {
        let report = self.store.import(ds)?;
        if report.written {
            let fresh = Arc::new(Self::load(&self.store)?);
            match self.catalog.write() {
                Ok(mut c) => *c = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            }
        }
        Ok(report)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Notifications: where transports register their deliverer.
    pub fn hub(&self) -> &crate::notify::Hub {
        &self.hub
    }

    /// The current catalog (cheap: an `Arc` clone).
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Answers one line of chat. Never panics on any input; store failures
    /// become an apologetic reply (and a log line), not an error.
    pub fn handle(&self, req: &Request) -> Reply {
        let input = query::parse(req.text, req.prefixes);
        self.handle_input(req, input)
    }

    /// Answers an already parsed line (transports that parsed it to decide
    /// addressing pass it on instead of parsing twice).
    pub fn handle_input(&self, req: &Request, input: Input) -> Reply {
        let cat = self.catalog();
        let settings = self.store.chat_settings(req.chat).unwrap_or_else(|e| {
            tracing::warn!(chat = req.chat, error = %e, "cannot read chat settings");
            Default::default()
        });
        let text_lang = match &input {
            Input::Text(t) => query::detect_lang(t),
            Input::Command {
                command: Command::Search(t),
                ..
            } => query::detect_lang(t),
            _ => None,
        };
        let lang = req
            .force_lang
            .or(settings.lang)
            .or(text_lang)
            .or(req.user_lang)
            .unwrap_or(Lang::En);
        let c = compose::Composer { cat: &cat, lang };
        match input {
            Input::Empty => c.empty(),
            Input::Text(t) => self.answer(&c, &t),
            Input::Command { command, .. } => match command {
                Command::Start => c.start(),
                Command::Help => c.help(),
                Command::Topic(t) => c.topic(t),
                Command::Search(q) if q.trim().is_empty() => c.usage("search", "customs union"),
                Command::Search(q) => {
                    let hits = self.hits(&cat, &q, MAX_SEARCH_RESULTS);
                    c.search(&q, &hits)
                }
                Command::Fact(id) => c.fact(id.trim(), || cat.closest_id(id.trim())),
                Command::Source(id) => c.source(id.trim(), || cat.closest_id(id.trim())),
                Command::Lang(arg) => self.set_lang(&c, req.chat, settings, arg),
                Command::Subscribe(_)
                | Command::Unsubscribe(_)
                | Command::Subscriptions
                | Command::Announce(_)
                | Command::AnnounceSend(_)
                | Command::AnnounceCancel(_) => {
                    let who = crate::notify::commands::Who {
                        chat: req.chat,
                        chat_admin: req.chat_admin,
                        bot_admin: req.bot_admin,
                        private: req.private,
                    };
                    self.hub
                        .command(who, lang, &command)
                        .unwrap_or_else(|| c.unknown("?"))
                }
                Command::Unknown(name) => c.unknown(&name),
            },
        }
    }

    /// The note a chat gets, once per burst, when a transport skipped `n`
    /// of its earlier questions to answer the latest ones; in the chat's
    /// language, else the question's, else the user's.
    pub fn skipped_note(&self, chat: &str, text: &str, user_lang: Option<Lang>, n: usize) -> Reply {
        let settings = self.store.chat_settings(chat).unwrap_or_else(|e| {
            tracing::warn!(chat, error = %e, "cannot read chat settings");
            Default::default()
        });
        let lang = settings
            .lang
            .or_else(|| query::detect_lang(text))
            .or(user_lang)
            .unwrap_or(Lang::En);
        let cat = self.catalog();
        compose::Composer { cat: &cat, lang }.skipped(n)
    }

    /// The facts that answer a question, best first; empty when the bot has
    /// no fact on the subject.
    pub fn hits<'c>(&self, cat: &'c Catalog, question: &str, limit: usize) -> Vec<&'c Fact> {
        let r = cat
            .index
            .search(question, limit.max(MAX_ANSWER_FACTS) * 2, ADMIT_COVERAGE);
        let Some(top) = r.hits.first() else {
            return Vec::new();
        };
        if top.coverage < MIN_COVERAGE {
            return Vec::new();
        }
        let cutoff = top.score * RELATIVE_CUTOFF;
        r.hits
            .iter()
            .filter(|h| h.score >= cutoff && h.coverage >= MIN_COVERAGE)
            .take(limit)
            .map(|h| &cat.facts[h.doc as usize])
            .collect()
    }

    fn answer(&self, c: &compose::Composer, question: &str) -> Reply {
        let hits = self.hits(c.cat, question, MAX_ANSWER_FACTS);
        if hits.is_empty() {
            c.no_answer()
        } else {
            c.answer(&hits)
        }
    }

    fn set_lang(
        &self,
        c: &compose::Composer,
        chat: &str,
        mut settings: crate::facts::ChatSettings,
        arg: Option<String>,
    ) -> Reply {
        let Some(arg) = arg else {
            return c.lang_status(settings.lang);
        };
        let new = match arg.trim().to_lowercase().as_str() {
            "auto" | "авто" => None,
            other => match Lang::parse(other) {
                Some(l) => Some(l),
                None => return c.usage("lang", "ru"),
            },
        };
        settings.lang = new;
        if let Err(e) = self.store.set_chat_settings(chat, &settings) {
            tracing::error!(chat, error = %e, "cannot save chat settings");
            return c.store_failed();
        }
        let lang = new.unwrap_or(c.lang);
        compose::Composer { cat: c.cat, lang }.lang_set(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::render_plain;

    fn engine() -> Engine {
        let store = Store::temporary().unwrap();
        store.import(&Dataset::embedded().unwrap()).unwrap();
        Engine::new(store).unwrap()
    }

    #[test]
    fn a_live_import_swaps_the_catalog_answers_use() {
        let e = engine();
        let ask = |e: &Engine| render_plain(&e.handle(&Request::new("t", "/fact trade.2011")));
        assert!(ask(&e).contains("USD 769 million"));
        let mut ds = Dataset::embedded().unwrap();
        let f = ds.facts.iter_mut().find(|f| f.id == "trade.2011").unwrap();
        f.text.en = f.text.en.replace("769", "770");
        ds.digest = "edited".into();
        let held = e.catalog();
        let report = e.import(&ds).unwrap();
        assert_eq!((report.updated, report.written), (1, true));
        assert!(ask(&e).contains("USD 770 million"));
        // A catalog taken before the import is unchanged (answers in flight).
        assert!(held.get("trade.2011").unwrap().text.en.contains("769"));
    }

    #[test]
    fn did_you_mean_stays_within_a_namespace() {
        let e = engine();
        let out = render_plain(&e.handle(&Request::new("t", "/fact trade.201")));
        assert!(out.contains("/fact trade.2011"), "{out}");
        let out = render_plain(&e.handle(&Request::new("t", "/source trde.2011")));
        assert!(out.contains("/source trade.2011"), "{out}");
        let out = render_plain(&e.handle(&Request::new("t", "/fact nothing.like.it")));
        assert!(!out.contains("Did you mean"), "{out}");
    }
}
