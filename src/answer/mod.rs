//! The answering service: a line of chat in, a [`Reply`] out.
//!
//! This is the one entry point every transport calls. It owns the store and
//! an in-memory [`Catalog`] (facts + search index) rebuilt from the store
//! after each import, decides the answer language, routes commands, and
//! decides when to say "I have no fact on that" rather than guess.

mod compose;
mod context;
mod converse;
mod smalltalk;

pub use context::{CONTEXT_TTL, MAX_CONTEXTS, MAX_SENT, SENT_TTL};
pub use converse::{deep_link, Link};

use std::sync::Arc;

use crate::catalog::{Catalog, Live};
use crate::chart::{self, ChartError, ChartKind};
use crate::facts::{ChatKey, Dataset, Fact, ImportReport, Lang, Store, StoreError};
use crate::query::{self, Command, Input};
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
pub(crate) const ADMIT_COVERAGE: f32 = 0.3;
/// Facts in one free-text answer, at most.
pub const MAX_ANSWER_FACTS: usize = 3;
/// Results of `/search`, at most.
pub const MAX_SEARCH_RESULTS: usize = 5;
/// Facts within this share of the best score join it in an answer.
const RELATIVE_CUTOFF: f32 = 0.55;

/// Who asks, where, and what.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The chat (`console`, `tg:42`, `mx:!id:server`); per-chat settings
    /// and conversation context are kept under it.
    pub chat: &'a ChatKey,
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
    /// Who writes, within the chat (a platform user id): in a group each
    /// person's follow-ups continue their own last answer. `None`: the
    /// chat is one conversation (console, CLI).
    pub person: Option<&'a str>,
    /// The id of the bot's message this line replies to, if any: the
    /// follow-up continues the answer that message carried (see
    /// [`Engine::note_sent`]).
    pub reply_to: Option<&'a str>,
    /// A one-shot question (`factbot ask`): nothing it asks is stored —
    /// no setting changed or read, no conversation remembered.
    pub read_only: bool,
}

impl<'a> Request<'a> {
    pub fn new(chat: &'a ChatKey, text: &'a str) -> Self {
        Request {
            chat,
            text,
            user_lang: None,
            force_lang: None,
            prefixes: &['/'],
            chat_admin: false,
            bot_admin: false,
            private: false,
            person: None,
            reply_to: None,
            read_only: false,
        }
    }
}

impl Request<'_> {
    /// The request with its parts owned, to send to another thread.
    pub fn owned(&self) -> OwnedRequest {
        OwnedRequest {
            chat: self.chat.clone(),
            text: self.text.to_string(),
            user_lang: self.user_lang,
            force_lang: self.force_lang,
            prefixes: self.prefixes.to_vec(),
            chat_admin: self.chat_admin,
            bot_admin: self.bot_admin,
            private: self.private,
            person: self.person.map(str::to_string),
            reply_to: self.reply_to.map(str::to_string),
            read_only: self.read_only,
        }
    }
}

/// A [`Request`] owning its parts ([`Request::owned`]), so that a transport
/// can hand it to a blocking thread. The fields are [`Request`]'s.
#[derive(Clone, Debug)]
pub struct OwnedRequest {
    chat: ChatKey,
    text: String,
    user_lang: Option<Lang>,
    force_lang: Option<Lang>,
    prefixes: Vec<char>,
    chat_admin: bool,
    bot_admin: bool,
    private: bool,
    person: Option<String>,
    reply_to: Option<String>,
    read_only: bool,
}

impl OwnedRequest {
    /// The request, borrowing from here.
    pub fn request(&self) -> Request<'_> {
        Request {
            chat: &self.chat,
            text: &self.text,
            user_lang: self.user_lang,
            force_lang: self.force_lang,
            prefixes: &self.prefixes,
            chat_admin: self.chat_admin,
            bot_admin: self.bot_admin,
            private: self.private,
            person: self.person.as_deref(),
            reply_to: self.reply_to.as_deref(),
            read_only: self.read_only,
        }
    }
}

/// The answering service. Share it behind an `Arc`; `handle` takes `&self`.
pub struct Engine {
    store: Store,
    /// The facts and index answers are made from; swapped by live imports.
    catalog: Arc<Live>,
    /// Rendered charts, by chart, language and digest of the facts drawn.
    charts: chart::Cache,
    /// Recent answers per chat and person, and per sent message: the
    /// context follow-ups continue (bounded; see [`context::Memory`]).
    memory: context::Memory,
}

impl Engine {
    /// Builds the engine over an already imported store.
    pub fn new(store: Store) -> Result<Engine, StoreError> {
        Self::open(store, &mut |_, _| {})
    }

    /// [`Engine::new`], reporting the progress of an index build as
    /// `progress(facts done, facts)` (a large store whose saved index is
    /// missing or stale builds one; see [`Catalog::open`]).
    pub fn open(
        store: Store,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Engine, StoreError> {
        let catalog = Arc::new(Live::open(store.clone(), progress)?);
        Ok(Engine {
            store,
            catalog,
            charts: chart::Cache::default(),
            memory: context::Memory::default(),
        })
    }

    /// Imports `ds` into the store and, if anything changed, swaps in a new
    /// catalog; answers in flight keep the old one. An empty or drastically
    /// smaller dataset is refused (see [`Store::import`]).
    pub fn import(&self, ds: &Dataset) -> Result<ImportReport, StoreError> {
        self.import_with(ds, false)
    }

    /// [`Engine::import`], with `allow_removals` lifting the shrink guard.
    pub fn import_with(
        &self,
        ds: &Dataset,
        allow_removals: bool,
    ) -> Result<ImportReport, StoreError> {
        self.catalog.import_with(ds, allow_removals)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The catalog behind the answers, swapped by live imports (the
    /// notification service renders and imports through it too).
    pub fn live(&self) -> &Arc<Live> {
        &self.catalog
    }

    /// The current catalog (cheap: an `Arc` clone).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.get()
    }

    /// The PNG of `kind` in `lang` from the current facts, rendered once
    /// per key and then served from memory. CPU-bound (milliseconds) on a
    /// miss: async callers use a blocking thread. The PNG's own `key` is the
    /// one to store a platform file id under: after a live import it may be
    /// newer than the key of a reply composed before.
    pub fn chart_png(&self, kind: ChartKind, lang: Lang) -> Result<Arc<chart::Png>, ChartError> {
        let cat = self.catalog();
        let key = chart::describe(kind, lang, &*cat)?.key;
        self.charts
            .get_or_render(&key, || chart::render(kind, lang, &*cat))
    }

    /// The chart cache (tests, benchmarks).
    pub fn chart_cache(&self) -> &chart::Cache {
        &self.charts
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
        self.answer_with(self.catalog(), req, input)
    }

    /// [`Engine::handle_input`] on catalog `cat`.
    fn answer_with(&self, cat: Arc<Catalog>, req: &Request, input: Input) -> Reply {
        let settings = self.settings(req);
        let lang = Self::decide_lang(req, &settings, &input);
        let c = compose::Composer { cat: &cat, lang };
        match input {
            Input::Empty => c.empty(),
            Input::Text(t) => self.converse(&c, req, &t),
            Input::Command { command, .. } if req.read_only && command.changes_chat() => {
                c.one_shot(&command)
            }
            Input::Command { command, .. } => match command {
                Command::Start(payload) => self.remembered(req, &c, self.start(&c, &payload)),
                Command::Help => c.help(),
                Command::Topic(t) => self.remembered(req, &c, c.topic(t)),
                Command::Search(q) if q.trim().is_empty() => c.usage("search", "customs union"),
                Command::Search(q) => {
                    let hits = self.hits(&cat, &q, MAX_SEARCH_RESULTS);
                    c.search(&q, &hits)
                }
                Command::Chart(name) => self.remembered(req, &c, c.chart(&name)),
                Command::Fact(id) => {
                    self.remembered(req, &c, c.fact(id.trim(), || cat.closest_id(id.trim())))
                }
                Command::Source(id) => c.source(id.trim(), || cat.closest_id(id.trim())),
                Command::Lang(Some(_)) if !(req.private || req.chat_admin) => c.lang_refused(),
                Command::Lang(arg) => self.set_lang(&c, req.chat, settings, arg),
                // The application routes these to the notification hub;
                // an engine on its own (benchmarks, quality tests) has none.
                Command::Notify(_) => c.no_notifications(),
                Command::Unknown(name) => c.unknown(&name),
            },
        }
    }

    /// Answers `input` if that takes neither the disk nor long: a question
    /// or a command that writes nothing ([`in_memory`]) on a catalog that
    /// holds its facts ([`Catalog::is_resident`]; chat settings are always
    /// in memory, see [`Store::chat_settings`]). Such an answer takes
    /// microseconds, so a transport may run it on its async runtime's
    /// thread instead of paying a blocking thread's hand-off (and an
    /// allocator arena) per reply. Anything else is handed back, for
    /// [`Engine::handle_input`] on a blocking thread.
    pub fn answer_in_memory(&self, req: &Request, input: Input) -> Result<Reply, Input> {
        if !in_memory(&input) {
            return Err(input);
        }
        let cat = self.catalog();
        if !cat.is_resident() {
            return Err(input);
        }
        Ok(self.answer_with(cat, req, input))
    }

    /// The answer language: `--lang`, then the chat's `/lang`, then the
    /// question's script, then the user's interface language, else English.
    pub fn lang(&self, req: &Request, input: &Input) -> Lang {
        Self::decide_lang(req, &self.settings(req), input)
    }

    /// The chat's stored settings; none for a one-shot request
    /// (`Request::read_only`: `factbot ask` reads and stores nothing).
    fn settings(&self, req: &Request) -> crate::facts::ChatSettings {
        if req.read_only {
            return Default::default();
        }
        self.chat_settings(req.chat)
    }

    fn chat_settings(&self, chat: &ChatKey) -> crate::facts::ChatSettings {
        self.store.chat_settings(chat).unwrap_or_else(|e| {
            tracing::warn!(%chat, error = %e, "cannot read chat settings");
            Default::default()
        })
    }

    fn decide_lang(req: &Request, settings: &crate::facts::ChatSettings, input: &Input) -> Lang {
        let text_lang = match input {
            Input::Text(t) => query::detect_lang(t),
            Input::Command {
                command: Command::Search(t),
                ..
            } => query::detect_lang(t),
            // `/график`, `/chart торговля` (a Russian answer's button) ask
            // in Russian; a Latin name decides nothing, so a button pressed
            // by a Russian-speaking user still follows their language.
            Input::Command {
                command: Command::Chart(_),
                ..
            } => query::detect_lang(req.text).filter(|l| *l == Lang::Ru),
            _ => None,
        };
        req.force_lang
            .or(settings.lang)
            .or(text_lang)
            .or(req.user_lang)
            .unwrap_or(Lang::En)
    }

    /// The note a chat gets, once per burst, when a transport skipped `n`
    /// of its earlier questions to answer the latest ones; in the chat's
    /// language, else the question's, else the user's.
    pub fn skipped_note(
        &self,
        chat: &ChatKey,
        text: &str,
        user_lang: Option<Lang>,
        n: usize,
    ) -> Reply {
        let lang = self
            .chat_settings(chat)
            .lang
            .or_else(|| query::detect_lang(text))
            .or(user_lang)
            .unwrap_or(Lang::En);
        let cat = self.catalog();
        compose::Composer { cat: &cat, lang }.skipped(n)
    }

    /// The facts that answer a question, best first; empty when the bot has
    /// no fact on the subject.
    pub fn hits(&self, cat: &Catalog, question: &str, limit: usize) -> Vec<Arc<Fact>> {
        let r = self.search(cat, question, limit);
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
            .filter_map(|h| cat.fact(h.doc))
            .collect()
    }

    /// The ranked candidates [`Engine::hits`] chooses from (benchmarks read
    /// how many facts a search scored).
    pub fn search(&self, cat: &Catalog, question: &str, limit: usize) -> query::SearchResult {
        cat.search(question, limit.max(MAX_ANSWER_FACTS) * 2, ADMIT_COVERAGE)
    }

    fn set_lang(
        &self,
        c: &compose::Composer,
        chat: &ChatKey,
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
            tracing::error!(%chat, error = %e, "cannot save chat settings");
            return c.store_failed();
        }
        let lang = new.unwrap_or(c.lang);
        compose::Composer { cat: c.cat, lang }.lang_set(new)
    }
}

/// Whether answering `input` stays in memory on a resident catalog:
/// everything but what may write the store (`/lang` with an argument) and
/// the notification commands (the hub reads and writes its own trees).
/// Pure; tested below.
pub fn in_memory(input: &Input) -> bool {
    !matches!(
        input,
        Input::Command {
            command: Command::Lang(Some(_)) | Command::Notify(_),
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Topic;
    use crate::reply::render_plain;

    /// An engine over the embedded dataset in a temporary store.
    pub(super) fn engine() -> Engine {
        let store = Store::temporary().unwrap();
        store.import(&Dataset::embedded().unwrap()).unwrap();
        Engine::new(store).unwrap()
    }

    /// What is answered in memory is answered exactly as on the blocking
    /// path (conversation state included: the same lines in the same order
    /// to two engines); what may write or needs the hub is handed back.
    #[test]
    fn answers_in_memory_are_the_same_answers_and_writes_are_handed_back() {
        let (fast, slow) = (engine(), engine());
        assert!(fast.catalog().is_resident());
        let chat = ChatKey::Telegram(5);
        for line in [
            "trade in 2011",
            "and in 2012?",
            "товарооборот",
            "/trade",
            "/search customs union",
            "/fact nope",
            "/chart trade",
            "/lang",
            "/help",
            "/start",
            "",
            "what is the weather",
        ] {
            let req = Request {
                private: true,
                person: Some("u1"),
                ..Request::new(&chat, line)
            };
            let input = query::parse(line, &['/']);
            assert!(in_memory(&input), "{line}");
            let got = fast.answer_in_memory(&req, input.clone()).unwrap();
            let want = slow.handle_input(&req, input);
            assert_eq!(render_plain(&got), render_plain(&want), "{line}");
            assert_eq!(got.buttons, want.buttons, "{line}");
        }
        for line in [
            "/lang ru",
            "/lang auto",
            "/subscribe trade",
            "/subscriptions",
            "/announce hi",
        ] {
            let req = Request::new(&chat, line);
            let input = query::parse(line, &['/']);
            assert!(!in_memory(&input), "{line}");
            assert_eq!(
                fast.answer_in_memory(&req, input.clone()),
                Err(input),
                "{line}"
            );
        }
        assert_eq!(
            fast.store().chat_settings(&chat).unwrap().lang,
            None,
            "nothing written"
        );
    }

    #[test]
    fn a_live_import_swaps_the_catalog_answers_use() {
        let e = engine();
        let ask = |e: &Engine| {
            render_plain(&e.handle(&Request::new(&ChatKey::Console, "/fact trade.2011")))
        };
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

    /// Live imports can arrive together (the admin endpoint serves requests
    /// concurrently): they are serialised, so each change is logged once,
    /// against the fact as the previous import left it, in commit order,
    /// and the catalog ends as the store does.
    #[test]
    fn concurrent_live_imports_log_each_change_once_in_order() {
        let e = engine();
        let edited = |tag: String| {
            let mut ds = Dataset::embedded().unwrap();
            let f = ds.facts.iter_mut().find(|f| f.id == "trade.2011").unwrap();
            f.text.en = format!("{} ({tag})", f.text.en);
            ds.digest = tag;
            ds
        };
        for round in 0..10 {
            let go = std::sync::Barrier::new(2);
            std::thread::scope(|s| {
                for who in 0..2 {
                    let (e, go, ds) = (&e, &go, edited(format!("r{round}w{who}")));
                    s.spawn(move || {
                        go.wait();
                        e.import(&ds).unwrap();
                    });
                }
            });
        }
        let log = e.store().changes_since(0).unwrap();
        assert_eq!(log.len(), 20, "one entry per import");
        for w in log.windows(2) {
            assert!(w[0].seq < w[1].seq);
            assert_eq!(
                w[0].new.as_ref().map(|f| &f.text.en),
                w[1].old.as_ref().map(|f| &f.text.en),
                "an import diffed against a stale store"
            );
        }
        let last = log.last().unwrap().new.as_ref().unwrap().text.en.clone();
        assert_eq!(e.catalog().get("trade.2011").unwrap().text.en, last);
        let stored = e.store().facts().unwrap();
        let stored = stored.iter().find(|f| f.id == "trade.2011").unwrap();
        assert_eq!(stored.text.en, last);
    }

    fn actions(r: &Reply) -> Vec<&str> {
        r.buttons
            .iter()
            .flatten()
            .map(|b| b.action.as_str())
            .collect()
    }

    #[test]
    fn chart_command_attaches_a_chart_with_caption_and_buttons() {
        let e = engine();
        let r = e.handle(&Request::new(&ChatKey::Console, "/chart trade"));
        assert_eq!(r.kind, crate::reply::ReplyKind::Answer);
        let img = r.image.as_ref().expect("a chart");
        assert_eq!((img.key.kind, img.key.lang), (ChartKind::Trade, Lang::En));
        assert_eq!((img.width, img.height), (chart::WIDTH, chart::HEIGHT));
        let caption = crate::reply::render_caption_plain(img);
        assert!(
            caption.contains("769") && caption.ends_with("[¶4]"),
            "{caption}"
        );
        assert!(img.alt.contains("not stated"), "{}", img.alt);
        assert!(r.facts.contains(&"trade.h1_2011".to_string()));
        assert_eq!(
            actions(&r),
            ["/trade", "/chart milestones", "/chart investment"]
        );
        // The key is the one the PNG is cached and stored under.
        let png = e.chart_png(ChartKind::Trade, Lang::En).unwrap();
        assert_eq!(png.key, img.key);
        assert!(Arc::ptr_eq(
            &png,
            &e.chart_png(ChartKind::Trade, Lang::En).unwrap()
        ));
        assert_eq!(e.chart_cache().len(), 1);
    }

    #[test]
    fn chart_list_unknown_names_and_languages() {
        let e = engine();
        let r = e.handle(&Request::new(&ChatKey::Console, "/chart"));
        assert_eq!(r.kind, crate::reply::ReplyKind::Info);
        assert!(r.image.is_none());
        assert_eq!(
            actions(&r),
            ["/chart trade", "/chart milestones", "/chart investment"]
        );
        let r = e.handle(&Request::new(&ChatKey::Console, "/chart pie<b>chart</b>"));
        assert_eq!(r.kind, crate::reply::ReplyKind::Error);
        let out = render_plain(&r);
        assert!(
            out.contains("no chart by that name") && out.contains("/chart milestones"),
            "{out}"
        );
        assert!(
            !out.contains("pie") && !out.contains("<b>"),
            "the name is not echoed: {out}"
        );
        // A Russian command or name answers in Russian, and Russian buttons
        // name the chart in Russian so pressing them stays Russian.
        let r = e.handle(&Request::new(&ChatKey::Console, "/график торговля"));
        assert_eq!(r.image.as_ref().unwrap().key.lang, Lang::Ru);
        assert!(
            actions(&r).contains(&"/chart хронология"),
            "{:?}",
            actions(&r)
        );
        let r = e.handle(&Request::new(&ChatKey::Console, "/chart хронология"));
        assert_eq!(r.image.as_ref().unwrap().key.kind, ChartKind::Milestones);
        assert_eq!(r.lang, Lang::Ru);
        // A Latin name decides nothing: the user's language still does.
        let mut req = Request::new(&ChatKey::Console, "/chart trade");
        req.user_lang = Some(Lang::Ru);
        assert_eq!(e.handle(&req).image.unwrap().key.lang, Lang::Ru);
    }

    #[test]
    fn answers_about_figures_and_dates_offer_their_chart() {
        let e = engine();
        let ask = |q: &str| e.handle(&Request::new(&ChatKey::Console, q));
        let r = ask("How much was trade between Belarus and Kazakhstan in 2011?");
        assert!(actions(&r).contains(&"/chart trade"), "{:?}", actions(&r));
        let r = ask("Какой был товарооборот в 2011 году?");
        assert!(
            actions(&r).contains(&"/chart торговля"),
            "{:?}",
            actions(&r)
        );
        let r = ask("When was the Single Economic Space launched?");
        assert!(
            actions(&r).contains(&"/chart milestones"),
            "{:?}",
            actions(&r)
        );
        let r = ask("/fact investment.inflows_2011");
        assert!(
            actions(&r).contains(&"/chart investment"),
            "{:?}",
            actions(&r)
        );
        let r = ask("/milestones");
        assert!(
            actions(&r).contains(&"/chart milestones"),
            "{:?}",
            actions(&r)
        );
        // No figure, no chart.
        let r = ask("/people");
        assert!(
            !actions(&r).iter().any(|a| a.starts_with("/chart")),
            "{:?}",
            actions(&r)
        );
        let r = ask("/fact trade.gateways");
        assert!(
            !actions(&r).iter().any(|a| a.starts_with("/chart")),
            "{:?}",
            actions(&r)
        );
    }

    #[test]
    fn a_live_import_redraws_the_chart_under_a_new_key() {
        let e = engine();
        let old = e.chart_png(ChartKind::Trade, Lang::En).unwrap();
        let mut ds = Dataset::embedded().unwrap();
        let f = ds.facts.iter_mut().find(|f| f.id == "trade.2011").unwrap();
        f.values = vec![crate::facts::Value::Amount {
            amount: 770_000_000,
            currency: "USD".into(),
            period: "2011".into(),
        }];
        ds.digest = "edited".into();
        e.import(&ds).unwrap();
        let r = e.handle(&Request::new(&ChatKey::Console, "/chart trade"));
        let img = r.image.unwrap();
        assert_ne!(img.key, old.key);
        assert!(img.alt.contains("770"), "{}", img.alt);
        let new = e.chart_png(ChartKind::Trade, Lang::En).unwrap();
        assert_eq!(new.key, img.key);
        assert_ne!(new.bytes, old.bytes);
        // Milestones drew nothing that changed: same key as before.
        let before =
            chart::describe(ChartKind::Milestones, Lang::En, &*engine().catalog()).unwrap();
        assert_eq!(
            e.handle(&Request::new(&ChatKey::Console, "/chart milestones"))
                .image
                .unwrap()
                .key,
            before.key
        );
    }

    #[test]
    fn a_dataset_without_figures_says_so_instead_of_a_chart() {
        let store = Store::temporary().unwrap();
        let mut ds = Dataset::embedded().unwrap();
        ds.facts.retain(|f| f.topic != Topic::Investment);
        store.import(&ds).unwrap();
        let e = Engine::new(store).unwrap();
        let r = e.handle(&Request::new(&ChatKey::Console, "/chart investment"));
        assert_eq!(r.kind, crate::reply::ReplyKind::NoAnswer);
        assert!(r.image.is_none());
        assert!(render_plain(&r).contains("no figures for this chart"));
        assert!(matches!(
            e.chart_png(ChartKind::Investment, Lang::En),
            Err(ChartError::Missing(_))
        ));
    }

    #[test]
    fn did_you_mean_stays_within_a_namespace() {
        let e = engine();
        let out = render_plain(&e.handle(&Request::new(&ChatKey::Console, "/fact trade.201")));
        assert!(out.contains("/fact trade.2011"), "{out}");
        let out = render_plain(&e.handle(&Request::new(&ChatKey::Console, "/source trde.2011")));
        assert!(out.contains("/source trade.2011"), "{out}");
        let out =
            render_plain(&e.handle(&Request::new(&ChatKey::Console, "/fact nothing.like.it")));
        assert!(!out.contains("Did you mean"), "{out}");
    }

    /// In a group only its administrators change its language; anyone may
    /// look at the setting, and in a private chat the sender decides.
    #[test]
    fn a_groups_language_is_set_by_its_admins_only() {
        let e = engine();
        let req = |text, chat_admin, private| Request {
            chat_admin,
            private,
            ..Request::new(&ChatKey::Telegram(-5), text)
        };
        let r = e.handle(&req("/lang ru", false, false));
        assert_eq!(r.kind, crate::reply::ReplyKind::Error);
        assert!(render_plain(&r).contains("Only an administrator"));
        assert_eq!(
            e.store()
                .chat_settings(&ChatKey::Telegram(-5))
                .unwrap()
                .lang,
            None
        );
        let shown = render_plain(&e.handle(&req("/lang", false, false)));
        assert!(shown.contains("follow the language"), "{shown}");
        e.handle(&req("/lang ru", true, false));
        assert_eq!(
            e.store()
                .chat_settings(&ChatKey::Telegram(-5))
                .unwrap()
                .lang,
            Some(Lang::Ru)
        );
        let private = Request {
            private: true,
            ..Request::new(&ChatKey::Telegram(5), "/lang ru")
        };
        e.handle(&private);
        assert_eq!(
            e.store().chat_settings(&ChatKey::Telegram(5)).unwrap().lang,
            Some(Lang::Ru)
        );
    }

    /// User text echoed back is cut to `ECHO_MAX` characters, so the reply
    /// to a huge message is as small as to a short one.
    #[test]
    fn echoed_user_text_is_cut_short() {
        let e = engine();
        let long = "\"".repeat(60_000);
        for text in [
            format!("/fact {long}"),
            format!("/source {long}"),
            format!("/search {long}"),
            format!("/{}", "x".repeat(60_000)),
        ] {
            let req = Request {
                private: true,
                chat_admin: true,
                ..Request::new(&ChatKey::Telegram(5), &text)
            };
            let out = render_plain(&e.handle(&req));
            assert!(
                out.chars().count() < 1_000,
                "{} chars for {}…",
                out.len(),
                &text[..12]
            );
            assert!(out.contains('…'), "{out}");
            let html =
                crate::reply::render_telegram_html(&e.handle(&req), crate::reply::TELEGRAM_LIMIT);
            assert_eq!(html.len(), 1, "one message");
        }
    }
}
