//! The message catalogue: every sentence the bot writes to a chat, in
//! English and Russian, in one table.
//!
//! Failure it prevents: a reply added in one language only, or a Russian
//! reply that is the English one pasted twice. Each message is a [`Msg`]
//! variant and [`Msg::render`] matches every variant for both languages, so
//! a missing translation does not compile; the tests render every message
//! in both languages and check the scripts (Latin English, Cyrillic
//! Russian).
//!
//! What is *not* here: the facts themselves and their titles (`data/`), the
//! names of topics, charts and months (`facts`, `chart`: labels of the data
//! model), the words the bot recognises (`query`, `answer::smalltalk`), and
//! log lines.
//!
//! A message renders to inline elements, not a string: the commands it
//! mentions are [`Inline::Command`]s, so each renderer writes them with its
//! platform's prefix, and its user-supplied parts (a search, a mistyped id)
//! keep their own style.

use std::borrow::Cow;

use super::Inline;
use crate::facts::Lang;

/// Every command word with its help line (English, Russian), in help
/// order: `/help`, usage lines and Telegram's command menu.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "start",
        "greeting and a short guide",
        "приветствие и краткая справка",
    ),
    ("help", "this list", "этот список"),
    (
        "visit",
        "the official visit of 9–10 November",
        "официальный визит 9–10 ноября",
    ),
    ("people", "who is who", "кто есть кто"),
    (
        "relations",
        "bilateral relations, the 20th anniversary",
        "двусторонние отношения, 20-летие",
    ),
    ("trade", "trade turnover figures", "товарооборот"),
    (
        "exports",
        "what each country exports to the other",
        "что страны экспортируют друг другу",
    ),
    (
        "investment",
        "joint plants, projects, investment",
        "совместные заводы, проекты, инвестиции",
    ),
    (
        "milestones",
        "Eurasian integration timeline",
        "хронология евразийской интеграции",
    ),
    (
        "meetings",
        "meetings held during the visit",
        "встречи во время визита",
    ),
    (
        "agreements",
        "agreements to be amended",
        "соглашения, которые изменят",
    ),
    (
        "chart",
        "trade|milestones|investment — a chart",
        "trade|milestones|investment — график",
    ),
    (
        "search",
        "TEXT — search all facts",
        "ТЕКСТ — поиск по всем фактам",
    ),
    ("fact", "ID — one fact in full", "ID — факт целиком"),
    (
        "source",
        "ID — the article sentence behind a fact",
        "ID — предложение статьи, на котором основан факт",
    ),
    (
        "lang",
        "en|ru|auto — answer language for this chat",
        "en|ru|auto — язык ответов в этом чате",
    ),
    (
        "subscribe",
        "[TOPICS] — news of these topics (or all) in this chat",
        "[ТЕМЫ] — новости этих тем (или всех) в этом чате",
    ),
    (
        "unsubscribe",
        "[TOPICS] — stop news of these topics (or all)",
        "[ТЕМЫ] — отключить новости этих тем (или все)",
    ),
    (
        "subscriptions",
        "this chat's subscriptions",
        "подписки этого чата",
    ),
    (
        "announce",
        "[TOPIC] TEXT — announce to subscribed chats (bot admins)",
        "[ТЕМА] ТЕКСТ — объявление подписанным чатам (админы бота)",
    ),
];

/// A message the bot writes, with what it says about (counts, names, the
/// user's own words, already shortened by [`super::echo`] where echoed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Msg<'a> {
    // ── facts and their sources (answer) ──
    /// After a derived fact's statement.
    DerivedMark,
    /// Label before a derived fact's arithmetic.
    HowDerived,
    /// Label before a derived fact's caveat.
    Caveat,
    /// Where a fact stands in the article: the headline.
    Headline,
    /// Where a fact stands in the article: paragraph N.
    Paragraph(u32),
    /// `/source` of a derived fact.
    SourceDerived,
    /// Button opening a fact in full.
    FullFact,
    /// Button opening a fact in full, with its paragraph.
    FullFactAt(u32),
    /// A topic view cut at its limit; `more` facts not listed.
    TopicMore(usize),
    NoTopicFacts,
    /// A search's heading, with the query.
    SearchHeading(&'a str),
    /// A search without hits, with the query.
    NothingFound(&'a str),
    /// `/fact ID` of an unknown id.
    NoSuchFact(&'a str),
    /// The closest id: `command`, `id`.
    DidYouMean(&'a str, &'a str),
    IdsHint,
    NoFact,
    NoFactGuide,

    // ── charts ──
    /// A chart button and inline result's title, with the chart's label.
    ChartButton(&'a str),
    /// A chart's button back to its topic as text, with the topic's title.
    AsText(&'a str),
    ChartsHeading,
    NoSuchChart,
    NoChartFigures,
    /// `factbot ask --charts`: where the PNG went.
    ChartSaved(&'a str),

    // ── commands, help, settings ──
    /// A command's help line (its name).
    CommandHelp(&'a str),
    CommandsHeading,
    HelpAsk,
    HelloHeading,
    Intro,
    StartHint,
    Empty,
    NoNotifications,
    /// An unknown command word, echoed.
    UnknownCommand(&'a str),
    SendHelp,
    /// `command`, `example`.
    Usage(&'a str, &'a str),
    /// The chat's answer language is fixed (its code).
    LangFixed(&'a str),
    LangFollows,
    /// Written in the language just fixed.
    LangSetFixed,
    LangSetAuto,
    LangRefused,
    /// Questions skipped in a burst.
    Skipped(usize),
    /// A chat setting could not be stored.
    SettingNotSaved,
    /// A one-shot question asked to change a setting; `true`: it was
    /// `/lang`, so the CLI's flag is named.
    OneShot(bool),

    // ── conversation ──
    Greeting,
    Thanks,
    WhoAreYou,
    WhatCanYouDo,
    HowAreYou,
    Goodbye,
    /// Nothing for a year: the topic's title (`None`: "this"), the year.
    NothingInPeriod(Option<&'a str>, i32),
    /// What the article says about a year.
    SaysAboutYear(i32),
    NoMore,
    NotGiven,
    WhatItSays,
    /// Above a deep link's answer.
    GreetThen,

    // ── subscriptions and announcements (notify) ──
    AllTopics,
    /// A subscription or draft could not be stored.
    NotSaved,
    NoSubscriptions,
    /// The chat's topics, listed.
    SubscribedTo(&'a str),
    /// The chat's topics after a change, and how to stop.
    SubscribedNow(&'a str),
    NoLongerSubscribed,
    SubscribeAdminOnly,
    /// The word not understood (echoed), the topic names.
    UnknownTopic(&'a str, &'a str),
    AnnounceAdminOnly,
    AnnounceUsage,
    /// Characters, the limit.
    AnnounceTooLong(usize, usize),
    AnnouncePreview,
    /// Chats reached, and the topic's name (`None`: every subscribed chat).
    WillReach(usize, Option<&'a str>),
    /// The send button, with the chats reached.
    Send(usize),
    Cancel,
    AnnounceGone,
    AnnounceOtherAdmin,
    AnnounceExpired,
    AnnounceCancelled,
    /// The notification's id, chats.
    AnnounceSending(u64, usize),
    AnnounceNoChat,

    // ── notifications (notify::content) ──
    /// Heading of an added fact (its title).
    FactAdded(&'a str),
    FactUpdated(&'a str),
    FactRemoved(&'a str),
    Was,
    Now,
    SourceLabel,
    /// The digest's heading with its day.
    DigestHeading(&'a str),
    /// An anniversary's lead, with the year.
    OnThisDay(i32),
    /// Days, what (in the language), the date.
    DaysUntil(i64, &'a str, &'a str),
    AnnouncementHeading,
    /// How many facts an import removed.
    RemovedHeading(usize),
    /// Items not listed.
    AndMore(usize),

    // ── transports ──
    /// Matrix `!leave` from someone who may not.
    LeaveRefused,
    /// Matrix `!leave` obeyed.
    Leaving,
}

/// Text in the running style.
fn t(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

/// A command mentioned in running text: `/name`.
fn cmd(name: &str) -> Inline {
    Inline::command(name, "")
}

/// A command line mentioned in running text: `/name args`.
fn cmd_args(name: &str, args: &str) -> Inline {
    Inline::command(name, args)
}

/// A command line set as code, to copy: `/name args`.
fn code_cmd(name: &str, args: &str) -> Inline {
    Inline::code_command(name, args)
}

/// One sentence in each language, without commands.
fn pick<'s>(lang: Lang, en: &'s str, ru: &'s str) -> Vec<Inline> {
    vec![t(match lang {
        Lang::En => en,
        Lang::Ru => ru,
    })]
}

impl Msg<'_> {
    /// The message in `lang`, as inline elements.
    pub fn render(&self, lang: Lang) -> Vec<Inline> {
        use Lang::{En, Ru};
        use Msg::*;
        let l = lang;
        match (*self, lang) {
            (DerivedMark, _) => pick(l, " (derived)", " (вывод)"),
            (HowDerived, _) => pick(l, "How it is derived: ", "Как получено: "),
            (Caveat, _) => pick(l, "Caveat: ", "Оговорка: "),
            (Headline, _) => pick(l, "the headline", "заголовок"),
            (Paragraph(n), En) => vec![t(format!("paragraph {n}"))],
            (Paragraph(n), Ru) => vec![t(format!("абзац {n}"))],
            (SourceDerived, En) => vec![
                t("This fact is derived from the sentence above, not stated in it: see "),
                cmd("fact"),
                t(" for the arithmetic."),
            ],
            (SourceDerived, Ru) => vec![
                t("Этот факт выведен из предложения выше, а не сказан в нём: расчёт — в "),
                cmd("fact"),
                t("."),
            ],
            (FullFact, _) => pick(l, "Full fact", "Факт целиком"),
            (FullFactAt(n), En) => vec![t(format!("Full fact ¶{n}"))],
            (FullFactAt(n), Ru) => vec![t(format!("Факт целиком ¶{n}"))],
            (TopicMore(n), En) => vec![
                t(format!("…and {n} more on this topic: narrow it down with ")),
                cmd("search"),
                t("."),
            ],
            (TopicMore(n), Ru) => vec![
                t(format!("…и ещё {n} по этой теме: уточните через ")),
                cmd("search"),
                t("."),
            ],
            (NoTopicFacts, _) => pick(
                l,
                "No facts on this topic yet.",
                "По этой теме фактов пока нет.",
            ),
            (SearchHeading(q), _) => vec![
                t(pick_str(l, "Search: ", "Поиск: ")),
                Inline::Bold(q.to_string()),
            ],
            (NothingFound(q), _) => vec![
                t(pick_str(
                    l,
                    "Nothing found for ",
                    "Ничего не найдено по запросу ",
                )),
                Inline::Bold(q.to_string()),
                t("."),
            ],
            (NoSuchFact(id), _) => vec![
                t(pick_str(
                    l,
                    "There is no fact with id ",
                    "Нет факта с идентификатором ",
                )),
                Inline::Code(id.to_string()),
                t("."),
            ],
            (DidYouMean(command, id), _) => vec![
                t(pick_str(l, "Did you mean ", "Возможно, вы имели в виду ")),
                code_cmd(command, id),
                t("?"),
            ],
            (IdsHint, En) => vec![
                t("Ids are shown by "),
                cmd("search"),
                t("; every answer has source buttons."),
            ],
            (IdsHint, Ru) => vec![
                t("Идентификаторы показывает "),
                cmd("search"),
                t("; у каждого ответа есть кнопки источников."),
            ],
            (NoFact, _) => pick(l, "I have no fact on that.", "У меня нет фактов об этом."),
            (NoFactGuide, En) => vec![
                t("I know about the November 2012 visit of Belarus's Prime Minister to Kazakhstan: the meetings, trade and exports, investment, and the milestones of Eurasian integration. Try a topic below, "),
                cmd("search"),
                t(" or "),
                cmd("help"),
                t("."),
            ],
            (NoFactGuide, Ru) => vec![
                t("Я знаю о визите премьер-министра Беларуси в Казахстан в ноябре 2012 года: встречи, торговля и экспорт, инвестиции и этапы евразийской интеграции. Выберите тему ниже, "),
                cmd("search"),
                t(" или "),
                cmd("help"),
                t("."),
            ],

            (ChartButton(label), En) => vec![t(format!("📊 Chart: {label}"))],
            (ChartButton(label), Ru) => vec![t(format!("📊 График: {label}"))],
            (AsText(topic), En) => vec![t(format!("As text: {topic}"))],
            (AsText(topic), Ru) => vec![t(format!("Текстом: {topic}"))],
            (ChartsHeading, _) => pick(l, "Charts", "Графики"),
            (NoSuchChart, _) => pick(
                l,
                "I have no chart by that name.",
                "Такого графика у меня нет.",
            ),
            (NoChartFigures, _) => pick(
                l,
                "The dataset has no figures for this chart.",
                "В наборе данных нет цифр для этого графика.",
            ),
            (ChartSaved(path), En) => vec![t(format!("Chart saved to {path}"))],
            (ChartSaved(path), Ru) => vec![t(format!("График сохранён: {path}"))],

            (CommandHelp(name), _) => {
                let (_, en, ru) = COMMANDS
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .copied()
                    .unwrap_or((name, "", ""));
                pick(l, en, ru)
            }
            (CommandsHeading, _) => pick(l, "Commands", "Команды"),
            (HelpAsk, _) => pick(
                l,
                "Or just ask, in English or Russian: “How much was trade in 2011?”, «Когда создан Таможенный союз?»",
                "Или просто спросите, по-русски или по-английски: «Какой товарооборот в 2011 году?», “When was the Customs Union set up?”",
            ),
            (HelloHeading, _) => pick(l, "Hello! I am factbot.", "Здравствуйте! Я factbot."),
            (Intro, _) => pick(
                l,
                "I answer questions about the official visit of Belarus's Prime Minister to Kazakhstan on 9–10 November 2012, Belarus–Kazakhstan trade and investment, and the milestones of Eurasian integration. Every answer cites the sentence of the article it comes from.",
                "Я отвечаю на вопросы об официальном визите премьер-министра Беларуси в Казахстан 9–10 ноября 2012 года, о торговле и инвестициях между Беларусью и Казахстаном и об этапах евразийской интеграции. Каждый ответ ссылается на предложение статьи, из которого он взят.",
            ),
            (StartHint, En) => vec![
                t("Ask in your own words, pick a topic below, or send "),
                cmd("help"),
                t(" for all commands."),
            ],
            (StartHint, Ru) => vec![
                t("Спросите своими словами, выберите тему ниже или отправьте "),
                cmd("help"),
                t("."),
            ],
            (Empty, En) => vec![
                t("Ask me a question about the visit, trade, investment or Eurasian integration — or send "),
                cmd("help"),
                t("."),
            ],
            (Empty, Ru) => vec![
                t("Задайте вопрос о визите, торговле, инвестициях или евразийской интеграции — или отправьте "),
                cmd("help"),
                t("."),
            ],
            (NoNotifications, _) => pick(
                l,
                "Notifications are not available here.",
                "Уведомления здесь недоступны.",
            ),
            (UnknownCommand(name), _) => vec![
                t(pick_str(l, "I don't know the command ", "Я не знаю команду ")),
                code_cmd(name, ""),
                t("."),
            ],
            (SendHelp, En) => vec![t("Send "), cmd("help"), t(" for the list.")],
            (SendHelp, Ru) => vec![t("Отправьте "), cmd("help"), t(", чтобы увидеть список.")],
            (Usage(command, example), _) => {
                let help = Msg::CommandHelp(command).text(l);
                vec![
                    t(pick_str(l, "Usage: ", "Использование: ")),
                    code_cmd(command, ""),
                    t(format!(" {help}. ")),
                    t(pick_str(l, "For example: ", "Например: ")),
                    code_cmd(command, example),
                ]
            }
            (LangFixed(code), En) => vec![
                t(format!("Answers in this chat are always in {code}. ")),
                cmd_args("lang", "auto"),
                t(" follows each question again."),
            ],
            (LangFixed(code), Ru) => vec![
                t(format!("В этом чате ответы всегда на языке {code}. ")),
                cmd_args("lang", "auto"),
                t(" — снова по языку вопроса."),
            ],
            (LangFollows, En) => vec![
                t("Answers follow the language of each question. Fix one with "),
                cmd_args("lang", "en"),
                t(" or "),
                cmd_args("lang", "ru"),
                t("."),
            ],
            (LangFollows, Ru) => vec![
                t("Ответы — на языке вопроса. Закрепить язык: "),
                cmd_args("lang", "ru"),
                t(" или "),
                cmd_args("lang", "en"),
                t("."),
            ],
            (LangSetFixed, _) => pick(
                l,
                "Done: I will answer in English in this chat.",
                "Готово: в этом чате я буду отвечать по-русски.",
            ),
            (LangSetAuto, _) => pick(
                l,
                "Done: I will answer in the language of each question.",
                "Готово: я буду отвечать на языке вопроса.",
            ),
            (LangRefused, En) => vec![
                t("Only an administrator of this chat can change its language. "),
                cmd("lang"),
                t(" alone shows the current setting."),
            ],
            (LangRefused, Ru) => vec![
                t("Менять язык этого чата может только его администратор. "),
                cmd("lang"),
                t(" без параметров показывает текущую настройку."),
            ],
            (Skipped(n), En) => vec![t(format!(
                "Too many questions at once: I skipped the {n} earlier ones and answer only the latest."
            ))],
            (Skipped(n), Ru) => vec![t(format!(
                "Слишком много вопросов сразу: я пропустил {n} предыдущих и отвечаю только на последние."
            ))],
            (SettingNotSaved, _) => pick(
                l,
                "Sorry, I could not save that. Please try again later.",
                "Не удалось сохранить настройку. Попробуйте позже.",
            ),
            (OneShot(lang_hint), En) => {
                let hint = if lang_hint {
                    " For the answer language use --lang en or --lang ru."
                } else {
                    ""
                };
                vec![t(format!("A one-shot question changes no settings, so this command does nothing here.{hint}"))]
            }
            (OneShot(lang_hint), Ru) => {
                let hint = if lang_hint {
                    " Язык ответа задаёт --lang ru или --lang en."
                } else {
                    ""
                };
                vec![t(format!("Разовый вопрос не меняет настроек, поэтому эта команда здесь ничего не делает.{hint}"))]
            }

            (Greeting, _) => pick(
                l,
                "Hello! Ask me about the November 2012 visit of Belarus's Prime Minister to Kazakhstan — trade, investment, the meetings, Eurasian integration — or pick a topic below.",
                "Здравствуйте! Спросите меня о визите премьер-министра Беларуси в Казахстан в ноябре 2012 года — о торговле, инвестициях, встречах, евразийской интеграции — или выберите тему ниже.",
            ),
            (Thanks, _) => pick(
                l,
                "You're welcome! Ask me anything else, or pick a topic below.",
                "Пожалуйста! Спрашивайте ещё или выберите тему ниже.",
            ),
            (WhoAreYou, _) => pick(
                l,
                "I am factbot: I answer questions from one news article — the official visit of Belarus's Prime Minister to Kazakhstan on 9–10 November 2012 — and cite the sentence each answer comes from.",
                "Я factbot: я отвечаю на вопросы по одной новостной статье — об официальном визите премьер-министра Беларуси в Казахстан 9–10 ноября 2012 года — и привожу предложение, из которого взят каждый ответ.",
            ),
            (WhatCanYouDo, En) => vec![
                t("Ask me in your own words, in English or Russian: who visited and whom he met, trade and export figures, joint plants and investment, the milestones of Eurasian integration. Follow-ups work too: “and in 2011?”, “why?”, “more”. "),
                cmd("help"),
                t(" lists the commands."),
            ],
            (WhatCanYouDo, Ru) => vec![
                t("Спрашивайте своими словами, по-русски или по-английски: кто приезжал и с кем встречался, товарооборот и экспорт, совместные заводы и инвестиции, этапы евразийской интеграции. Можно уточнять: «а в 2011?», «почему?», «ещё». Команды — в "),
                cmd("help"),
                t("."),
            ],
            (HowAreYou, _) => pick(
                l,
                "All well, thank you! What would you like to know about the visit?",
                "Всё хорошо, спасибо! Что вы хотите узнать о визите?",
            ),
            (Goodbye, _) => pick(
                l,
                "Goodbye! Come back with more questions any time.",
                "До свидания! Возвращайтесь с вопросами в любое время.",
            ),
            (NothingInPeriod(what, year), En) => {
                let what = what.unwrap_or("this");
                vec![t(format!("The article gives nothing on {what} for {year}."))]
            }
            (NothingInPeriod(what, year), Ru) => {
                let what = what.unwrap_or("этой теме");
                vec![t(format!(
                    "В статье нет сведений по теме «{what}» за {year} год."
                ))]
            }
            (SaysAboutYear(year), En) => vec![t(format!("What it says about {year}:"))],
            (SaysAboutYear(year), Ru) => vec![t(format!("Что в ней сказано о {year} годе:"))],
            (NoMore, _) => pick(
                l,
                "That is all the article says on this. Pick another topic below.",
                "Это всё, что сказано в статье на эту тему. Выберите другую тему ниже.",
            ),
            (NotGiven, _) => pick(l, "The article does not give that.", "В статье этого нет."),
            (WhatItSays, _) => pick(l, "What it does say:", "Что в ней сказано:"),
            (GreetThen, En) => vec![
                t("Hello! I am factbot: I answer questions about the November 2012 visit of Belarus's Prime Minister to Kazakhstan. Here is what you opened; ask me anything else, or send "),
                cmd("help"),
                t("."),
            ],
            (GreetThen, Ru) => vec![
                t("Здравствуйте! Я factbot: отвечаю на вопросы о визите премьер-министра Беларуси в Казахстан в ноябре 2012 года. Вот то, что вы открыли; спрашивайте ещё или отправьте "),
                cmd("help"),
                t("."),
            ],

            (AllTopics, _) => pick(l, "all topics", "все темы"),
            (NotSaved, _) => pick(
                l,
                "Sorry, I could not save that. Please try again later.",
                "Не удалось сохранить. Попробуйте позже.",
            ),
            (NoSubscriptions, En) => vec![
                t("This chat has no subscriptions. Subscribe with "),
                cmd_args("subscribe", "[topics]"),
                t("."),
            ],
            (NoSubscriptions, Ru) => vec![
                t("У этого чата нет подписок. Подписаться: "),
                cmd_args("subscribe", "[темы]"),
                t("."),
            ],
            (SubscribedTo(list), En) => vec![t(format!("This chat is subscribed to: {list}."))],
            (SubscribedTo(list), Ru) => vec![t(format!("Этот чат подписан на: {list}."))],
            (SubscribedNow(list), En) => vec![
                t(format!("This chat is subscribed to: {list}. Stop with ")),
                cmd("unsubscribe"),
                t("."),
            ],
            (SubscribedNow(list), Ru) => vec![
                t(format!("Этот чат подписан на: {list}. Отписаться: ")),
                cmd("unsubscribe"),
                t("."),
            ],
            (NoLongerSubscribed, _) => pick(
                l,
                "This chat is no longer subscribed to anything.",
                "Этот чат больше ни на что не подписан.",
            ),
            (SubscribeAdminOnly, _) => pick(
                l,
                "Only an administrator of this chat can change its subscriptions.",
                "Менять подписки этого чата может только его администратор.",
            ),
            (UnknownTopic(word, names), En) => {
                vec![t(format!("Unknown topic “{word}”. Topics: {names}."))]
            }
            (UnknownTopic(word, names), Ru) => {
                vec![t(format!("Неизвестная тема “{word}”. Темы: {names}."))]
            }
            (AnnounceAdminOnly, _) => pick(
                l,
                "Only the bot's administrators can announce, in a private chat with the bot.",
                "Объявления может делать только администратор бота, в личном чате с ботом.",
            ),
            (AnnounceUsage, En) => vec![t("Usage: "), cmd_args("announce", "[topic] TEXT")],
            (AnnounceUsage, Ru) => vec![
                t("Использование: "),
                cmd_args("announce", "[тема] ТЕКСТ"),
            ],
            (AnnounceTooLong(n, max), En) => vec![t(format!(
                "This announcement is {n} characters long; at most {max} are sent (three messages). Please shorten it."
            ))],
            (AnnounceTooLong(n, max), Ru) => vec![t(format!(
                "В объявлении {n} символов; отправляется не больше {max} (три сообщения). Сократите его."
            ))],
            (AnnouncePreview, _) => pick(l, "Announcement preview", "Предпросмотр объявления"),
            (WillReach(n, Some(topic)), En) => vec![t(format!(
                "Chats it will reach: {n} (subscribers of {topic})."
            ))],
            (WillReach(n, Some(topic)), Ru) => vec![t(format!(
                "Получат чатов: {n} (подписчики темы {topic})."
            ))],
            (WillReach(n, None), En) => vec![t(format!(
                "Chats it will reach: {n} (all subscribed chats)."
            ))],
            (WillReach(n, None), Ru) => vec![t(format!(
                "Получат чатов: {n} (все подписанные чаты)."
            ))],
            (Send(n), En) => vec![t(format!("Send ({n})"))],
            (Send(n), Ru) => vec![t(format!("Отправить ({n})"))],
            (Cancel, _) => pick(l, "Cancel", "Отмена"),
            (AnnounceGone, _) => pick(
                l,
                "This announcement was already sent or cancelled.",
                "Это объявление уже отправлено или отменено.",
            ),
            (AnnounceOtherAdmin, _) => pick(
                l,
                "This announcement was drafted by another admin: only they can send or cancel it.",
                "Это объявление подготовил другой администратор: отправить или отменить его может только он.",
            ),
            (AnnounceExpired, En) => vec![
                t("This announcement draft has expired (drafts are kept 24 hours). Write "),
                cmd("announce"),
                t(" again."),
            ],
            (AnnounceExpired, Ru) => vec![
                t("Срок черновика истёк (черновики хранятся 24 часа). Напишите "),
                cmd("announce"),
                t(" заново."),
            ],
            (AnnounceCancelled, _) => pick(l, "Announcement cancelled.", "Объявление отменено."),
            (AnnounceSending(id, n), En) => {
                vec![t(format!("Announcement #{id} — sending to chats: {n}."))]
            }
            (AnnounceSending(id, n), Ru) => {
                vec![t(format!("Объявление #{id} — отправляется в чаты: {n}."))]
            }
            (AnnounceNoChat, _) => pick(
                l,
                "No chat is subscribed to that; nothing was sent.",
                "На это не подписан ни один чат; ничего не отправлено.",
            ),

            (FactAdded(title), En) => vec![t(format!("New fact: {title}"))],
            (FactAdded(title), Ru) => vec![t(format!("Новый факт: {title}"))],
            (FactUpdated(title), En) => vec![t(format!("Updated: {title}"))],
            (FactUpdated(title), Ru) => vec![t(format!("Обновлено: {title}"))],
            (FactRemoved(title), En) => vec![t(format!("Removed: {title}"))],
            (FactRemoved(title), Ru) => vec![t(format!("Удалено: {title}"))],
            (Was, _) => pick(l, "Was: ", "Было: "),
            (Now, _) => pick(l, "Now: ", "Стало: "),
            (SourceLabel, _) => pick(l, "Source:", "Источник:"),
            (DigestHeading(day), En) => vec![t(format!("Daily digest, {day}"))],
            (DigestHeading(day), Ru) => vec![t(format!("Дайджест дня, {day}"))],
            (OnThisDay(year), En) => vec![t(format!("On this day in {year}: "))],
            (OnThisDay(year), Ru) => vec![t(format!("В этот день в {year} году: "))],
            (DaysUntil(days, what, date), En) => {
                vec![t(format!("{days} days until {what} ({date})"))]
            }
            (DaysUntil(days, what, date), Ru) => vec![t(format!("{days} дн. до: {what} ({date})"))],
            (AnnouncementHeading, _) => pick(l, "Announcement", "Объявление"),
            (RemovedHeading(n), En) => vec![t(format!("Facts removed from the dataset: {n}"))],
            (RemovedHeading(n), Ru) => {
                vec![t(format!("Факты, удалённые из набора данных: {n}"))]
            }
            (AndMore(n), En) => vec![t(format!("…and {n} more"))],
            (AndMore(n), Ru) => vec![t(format!("…и ещё {n}"))],

            (LeaveRefused, _) => pick(
                l,
                "Only a room admin (power level 50 or more) can ask me to leave.",
                "Попросить меня выйти может только администратор комнаты.",
            ),
            (Leaving, _) => pick(l, "Leaving the room. Bye!", "Выхожу из комнаты."),
        }
    }

    /// The message as one string, for what is not a [`super::Reply`] (a
    /// button's label, an inline result's title, a Matrix notice); a
    /// command in it is written with `/`.
    pub fn text(&self, lang: Lang) -> String {
        self.render(lang).iter().map(Inline::text).collect()
    }

    /// The message in both languages, English first: where the bot cannot
    /// know the reader's language (a Matrix room it leaves).
    pub fn bilingual(&self) -> String {
        format!("{} / {}", self.text(Lang::En), self.text(Lang::Ru))
    }

    /// The message in italics, the commands it names too.
    pub fn italic(&self, lang: Lang) -> Vec<Inline> {
        self.render(lang).into_iter().map(Inline::italic).collect()
    }
}

fn pick_str(lang: Lang, en: &'static str, ru: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(match lang {
        Lang::En => en,
        Lang::Ru => ru,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every message; the match below stops compiling when a
    /// variant is added without being listed here.
    fn every() -> Vec<Msg<'static>> {
        use Msg::*;
        let all = vec![
            DerivedMark,
            HowDerived,
            Caveat,
            Headline,
            Paragraph(4),
            SourceDerived,
            FullFact,
            FullFactAt(4),
            TopicMore(3),
            NoTopicFacts,
            SearchHeading("q"),
            NothingFound("q"),
            NoSuchFact("x.1"),
            DidYouMean("fact", "x.1"),
            IdsHint,
            NoFact,
            NoFactGuide,
            ChartButton("x"),
            AsText("x"),
            ChartsHeading,
            NoSuchChart,
            NoChartFigures,
            ChartSaved("/tmp/x.png"),
            CommandHelp("help"),
            CommandsHeading,
            HelpAsk,
            HelloHeading,
            Intro,
            StartHint,
            Empty,
            NoNotifications,
            UnknownCommand("x"),
            SendHelp,
            Usage("fact", "x.1"),
            LangFixed("ru"),
            LangFollows,
            LangSetFixed,
            LangSetAuto,
            LangRefused,
            Skipped(2),
            SettingNotSaved,
            OneShot(true),
            OneShot(false),
            Greeting,
            Thanks,
            WhoAreYou,
            WhatCanYouDo,
            HowAreYou,
            Goodbye,
            NothingInPeriod(None, 2015),
            NothingInPeriod(Some("x"), 2015),
            SaysAboutYear(2015),
            NoMore,
            NotGiven,
            WhatItSays,
            GreetThen,
            AllTopics,
            NotSaved,
            NoSubscriptions,
            SubscribedTo("x"),
            SubscribedNow("x"),
            NoLongerSubscribed,
            SubscribeAdminOnly,
            UnknownTopic("x", "y"),
            AnnounceAdminOnly,
            AnnounceUsage,
            AnnounceTooLong(9, 8),
            AnnouncePreview,
            WillReach(1, Some("x")),
            WillReach(1, None),
            Send(1),
            Cancel,
            AnnounceGone,
            AnnounceOtherAdmin,
            AnnounceExpired,
            AnnounceCancelled,
            AnnounceSending(1, 2),
            AnnounceNoChat,
            FactAdded("x"),
            FactUpdated("x"),
            FactRemoved("x"),
            Was,
            Now,
            SourceLabel,
            DigestHeading("x"),
            OnThisDay(2012),
            DaysUntil(3, "x", "y"),
            AnnouncementHeading,
            RemovedHeading(2),
            AndMore(2),
            LeaveRefused,
            Leaving,
        ];
        for m in &all {
            match m {
                DerivedMark | HowDerived | Caveat | Headline | Paragraph(_) | SourceDerived
                | FullFact | FullFactAt(_) | TopicMore(_) | NoTopicFacts | SearchHeading(_)
                | NothingFound(_) | NoSuchFact(_) | DidYouMean(..) | IdsHint | NoFact
                | NoFactGuide | ChartButton(_) | AsText(_) | ChartsHeading | NoSuchChart
                | NoChartFigures | ChartSaved(_) | CommandHelp(_) | CommandsHeading | HelpAsk
                | HelloHeading | Intro | StartHint | Empty | NoNotifications
                | UnknownCommand(_) | SendHelp | Usage(..) | LangFixed(_) | LangFollows
                | LangSetFixed | LangSetAuto | LangRefused | Skipped(_) | SettingNotSaved
                | OneShot(_) | Greeting | Thanks | WhoAreYou | WhatCanYouDo | HowAreYou
                | Goodbye | NothingInPeriod(..) | SaysAboutYear(_) | NoMore | NotGiven
                | WhatItSays | GreetThen | AllTopics | NotSaved | NoSubscriptions
                | SubscribedTo(_) | SubscribedNow(_) | NoLongerSubscribed | SubscribeAdminOnly
                | UnknownTopic(..) | AnnounceAdminOnly | AnnounceUsage | AnnounceTooLong(..)
                | AnnouncePreview | WillReach(..) | Send(_) | Cancel | AnnounceGone
                | AnnounceOtherAdmin | AnnounceExpired | AnnounceCancelled
                | AnnounceSending(..) | AnnounceNoChat | FactAdded(_) | FactUpdated(_)
                | FactRemoved(_) | Was | Now | SourceLabel | DigestHeading(_) | OnThisDay(_)
                | DaysUntil(..) | AnnouncementHeading | RemovedHeading(_) | AndMore(_)
                | LeaveRefused | Leaving => {}
            }
        }
        all
    }

    fn letters(s: &str, cyrillic: bool) -> usize {
        s.chars()
            .filter(|c| c.is_alphabetic() && (('\u{0400}'..='\u{04FF}').contains(c) == cyrillic))
            .count()
    }

    /// Every message says something in both languages, the English one
    /// mostly in Latin letters and the Russian one mostly in Cyrillic: a
    /// message pasted in the wrong language, or twice in one, fails.
    #[test]
    fn every_message_renders_in_both_languages_and_scripts() {
        for m in every() {
            let en = m.text(Lang::En);
            let ru = m.text(Lang::Ru);
            assert!(!en.trim().is_empty(), "{m:?}: empty in English");
            assert!(!ru.trim().is_empty(), "{m:?}: empty in Russian");
            assert!(
                letters(&en, false) > letters(&en, true),
                "{m:?}: the English is not mostly Latin: {en}"
            );
            assert!(
                letters(&ru, true) > letters(&ru, false),
                "{m:?}: the Russian is not mostly Cyrillic: {ru}"
            );
        }
    }

    #[test]
    fn every_command_has_help_in_both_languages() {
        for (name, en, ru) in COMMANDS {
            assert!(!en.is_empty() && !ru.is_empty(), "{name}");
            assert_eq!(letters(en, true), 0, "{name}: {en}");
            assert!(letters(ru, true) > 0, "{name}: {ru}");
        }
    }
}
