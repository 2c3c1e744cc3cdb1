//! Building replies from facts: what each command shows, in both languages.
//!
//! Every fact is shown with its paragraph mark (¶N), derived facts with their
//! arithmetic and caveat, so each statement can be traced to the article.
//! Only [`Block`]s and [`Inline`]s are produced here; markup is the
//! renderers' business.

use std::sync::Arc;

use super::Catalog;
use crate::chart::{self, ChartKind};
use crate::facts::{Fact, Lang, Topic};
use crate::reply::{echo, Block, Button, ChartRef, Inline, Msg, Reply, ReplyKind, COMMANDS};

/// Topics offered as navigation buttons, in order.
const NAV: [Topic; 6] = [
    Topic::Visit,
    Topic::Trade,
    Topic::Exports,
    Topic::Investment,
    Topic::Milestones,
    Topic::Meetings,
];
/// Facts a topic view lists at most; a topic view is one message, and a
/// store with thousands of facts on a topic is searched, not listed.
const MAX_TOPIC_FACTS: usize = 12;
/// Longest button label, in characters.
const LABEL_MAX: usize = 28;

pub(super) struct Composer<'a> {
    pub cat: &'a Catalog,
    pub lang: Lang,
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

impl Composer<'_> {
    pub(super) fn reply(&self, kind: ReplyKind) -> Reply {
        Reply::new(kind, self.lang)
    }

    /// A message of the catalogue in the reply's language.
    pub(super) fn say(&self, m: Msg) -> Vec<Inline> {
        m.render(self.lang)
    }

    /// A message as one string (a button's label, a heading's text).
    pub(super) fn word(&self, m: Msg) -> String {
        m.text(self.lang)
    }

    /// A fact's statement with its paragraph mark; derived facts say so.
    pub(super) fn fact_line(&self, f: &Fact) -> Vec<Inline> {
        let mut line = vec![Inline::Text(f.text.get(self.lang).to_string())];
        if f.is_derived() {
            line.extend(Msg::DerivedMark.italic(self.lang));
        }
        line.push(Inline::Text(format!(" [¶{}]", f.paragraph)));
        line
    }

    /// Derivation notes for a derived fact: arithmetic, then caveat.
    pub(super) fn derivation(&self, f: &Fact) -> Vec<Block> {
        let Some(d) = &f.derivation else {
            return Vec::new();
        };
        vec![
            Block::Paragraph(vec![
                Inline::Italic(self.word(Msg::HowDerived)),
                Inline::Text(d.arithmetic.get(self.lang).to_string()),
            ]),
            Block::Paragraph(vec![
                Inline::Italic(self.word(Msg::Caveat)),
                Inline::Text(d.caveat.get(self.lang).to_string()),
            ]),
        ]
    }

    fn source_button(&self, f: &Fact) -> Button {
        Button {
            label: shorten(
                &format!("¶{} {}", f.paragraph, f.title.get(self.lang)),
                LABEL_MAX,
            ),
            action: format!("/source {}", f.id),
        }
    }

    /// Source buttons, two per row.
    pub(super) fn source_rows(&self, facts: &[Arc<Fact>]) -> Vec<Vec<Button>> {
        facts
            .chunks(2)
            .map(|c| c.iter().map(|f| self.source_button(f)).collect())
            .collect()
    }

    /// Navigation to the other topics, three per row.
    pub(super) fn nav_rows(&self, current: Option<Topic>) -> Vec<Vec<Button>> {
        NAV.iter()
            .filter(|&&tp| Some(tp) != current)
            .map(|&tp| Button {
                label: shorten(tp.title(self.lang), LABEL_MAX),
                action: format!("/{}", tp.name()),
            })
            .collect::<Vec<_>>()
            .chunks(3)
            .map(<[Button]>::to_vec)
            .collect()
    }

    /// A button opening `kind`'s chart; the action names the chart in the
    /// reply's language, so pressing it keeps the language.
    fn chart_button(&self, kind: ChartKind) -> Button {
        Button {
            label: shorten(
                &self.word(Msg::ChartButton(kind.label(self.lang))),
                LABEL_MAX,
            ),
            action: format!("/chart {}", kind.local_name(self.lang)),
        }
    }

    /// "Chart" buttons for the charts that draw any of `facts`.
    pub(super) fn chart_row(&self, facts: &[Arc<Fact>]) -> Option<Vec<Button>> {
        let mut kinds: Vec<ChartKind> = Vec::new();
        for k in facts.iter().filter_map(|f| ChartKind::for_fact(f)) {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        (!kinds.is_empty()).then(|| kinds.into_iter().map(|k| self.chart_button(k)).collect())
    }

    /// `/chart NAME`: the chart as a picture with its caption; `/chart`
    /// alone lists the charts.
    pub fn chart(&self, name: &str) -> Reply {
        let name = name.trim();
        if name.is_empty() {
            return self.chart_list(ReplyKind::Info);
        }
        let Some(kind) = ChartKind::parse(name) else {
            // The unknown name is not echoed: the list says what exists.
            let mut r = self.chart_list(ReplyKind::Error);
            r.blocks
                .insert(0, Block::Paragraph(self.say(Msg::NoSuchChart)));
            return r;
        };
        let d = match chart::describe(kind, self.lang, self.cat) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(chart = kind.name(), error = %e, "chart unavailable");
                let mut r = self
                    .reply(ReplyKind::NoAnswer)
                    .say(self.say(Msg::NoChartFigures));
                r.buttons = self.nav_rows(None);
                return r;
            }
        };
        self.chart_reply(kind, d)
    }

    /// A drawn chart as the reply: the picture with its caption, the facts
    /// it draws, and buttons to its topic as text and to the other charts.
    fn chart_reply(&self, kind: ChartKind, d: chart::Description) -> Reply {
        let mut r = self.reply(ReplyKind::Answer);
        r.image = Some(ChartRef {
            caption: vec![
                Inline::Bold(d.title.clone()),
                Inline::Text(format!(". {} [{}]", d.summary, chart::cite(&d.paragraphs))),
            ],
            key: d.key,
            alt: d.alt,
            paragraphs: d.paragraphs,
            width: d.width,
            height: d.height,
        });
        r.facts = d.facts;
        let topic = kind.topic();
        let mut row = vec![Button {
            label: shorten(&self.word(Msg::AsText(topic.title(self.lang))), LABEL_MAX),
            action: format!("/{}", topic.name()),
        }];
        row.extend(
            ChartKind::ALL
                .into_iter()
                .filter(|k| *k != kind)
                .map(|k| self.chart_button(k)),
        );
        r.buttons = vec![row];
        r
    }

    fn chart_list(&self, kind: ReplyKind) -> Reply {
        let items = ChartKind::ALL
            .into_iter()
            .map(|k| {
                vec![
                    Inline::code_command("chart", k.local_name(self.lang)),
                    Inline::Text(format!(" — {}", k.blurb(self.lang))),
                ]
            })
            .collect();
        let mut r = self
            .reply(kind)
            .block(Block::Heading(self.say(Msg::ChartsHeading)))
            .block(Block::List(items));
        r.buttons = vec![ChartKind::ALL
            .into_iter()
            .map(|k| self.chart_button(k))
            .collect()];
        r
    }

    pub fn topic(&self, topic: Topic) -> Reply {
        let facts: Vec<Arc<Fact>> = self.cat.by_topic(topic).take(MAX_TOPIC_FACTS).collect();
        let more = self.cat.topic_len(topic).saturating_sub(facts.len());
        let mut r = self.reply(ReplyKind::Answer);
        r.blocks.push(Block::Heading(vec![Inline::Text(
            topic.title(self.lang).into(),
        )]));
        if facts.is_empty() {
            r.kind = ReplyKind::NoAnswer;
            return r.say(self.say(Msg::NoTopicFacts));
        }
        let items: Vec<Vec<Inline>> = if topic == Topic::Milestones {
            facts
                .iter()
                .map(|f| {
                    let mut line = Vec::new();
                    if let Some(d) = f.date {
                        line.push(Inline::Bold(d.display(self.lang)));
                        line.push(Inline::Text(" — ".into()));
                    }
                    line.extend(self.fact_line(f));
                    line
                })
                .collect()
        } else {
            facts.iter().map(|f| self.fact_line(f)).collect()
        };
        r.blocks.push(Block::List(items));
        if more > 0 {
            r.blocks
                .push(Block::Paragraph(Msg::TopicMore(more).italic(self.lang)));
        }
        for f in facts.iter().filter(|f| f.is_derived()) {
            r.blocks.push(Block::Paragraph(vec![Inline::Bold(format!(
                "{}:",
                f.title.get(self.lang)
            ))]));
            r.blocks.extend(self.derivation(f));
        }
        r.facts = facts.iter().map(|f| f.id.clone()).collect();
        r.buttons = self.source_rows(&facts);
        r.buttons.extend(self.chart_row(&facts));
        r.buttons.extend(self.nav_rows(Some(topic)));
        r
    }

    pub fn answer(&self, facts: &[Arc<Fact>]) -> Reply {
        let mut r = self.reply(ReplyKind::Answer);
        for f in facts {
            let mut line = vec![
                Inline::Bold(f.title.get(self.lang).to_string()),
                Inline::Text(": ".into()),
            ];
            line.extend(self.fact_line(f));
            r.blocks.push(Block::Paragraph(line));
            r.blocks.extend(self.derivation(f));
        }
        r.facts = facts.iter().map(|f| f.id.clone()).collect();
        r.buttons = self.source_rows(facts);
        r.buttons.extend(self.chart_row(facts));
        r
    }

    pub fn search(&self, query: &str, facts: &[Arc<Fact>]) -> Reply {
        // The query is echoed; a pasted essay is shortened, not repeated.
        let query = &echo(query);
        if facts.is_empty() {
            let mut r = self.no_answer();
            r.blocks
                .insert(0, Block::Paragraph(self.say(Msg::NothingFound(query))));
            return r;
        }
        let mut r = self.reply(ReplyKind::Answer);
        r.blocks
            .push(Block::Heading(self.say(Msg::SearchHeading(query))));
        r.blocks.push(Block::List(
            facts
                .iter()
                .map(|f| {
                    let mut line = vec![Inline::Code(f.id.clone()), Inline::Text(" ".into())];
                    line.extend(self.fact_line(f));
                    line
                })
                .collect(),
        ));
        r.facts = facts.iter().map(|f| f.id.clone()).collect();
        r.buttons = self.source_rows(facts);
        r
    }

    fn missing_fact(&self, cmd: &str, id: &str, closest: Option<&str>) -> Reply {
        if id.is_empty() {
            return self.usage(cmd, "trade.2011");
        }
        let mut r = self
            .reply(ReplyKind::Error)
            .say(self.say(Msg::NoSuchFact(&echo(id))));
        if let Some(c) = closest {
            r = r.say(self.say(Msg::DidYouMean(cmd, c)));
        }
        r.say(self.say(Msg::IdsHint))
    }

    /// `closest` is asked only when the id is unknown (it scans all ids).
    pub fn fact<'c>(&self, id: &str, closest: impl FnOnce() -> Option<&'c str>) -> Reply {
        let Some(f) = self.cat.get(id) else {
            return self.missing_fact("fact", id, closest());
        };
        let f: &Fact = &f;
        let mut r = self.reply(ReplyKind::Answer);
        r.blocks.push(Block::Heading(vec![Inline::Text(
            f.title.get(self.lang).to_string(),
        )]));
        r.blocks.push(Block::Paragraph(self.fact_line(f)));
        if !f.values.is_empty() {
            r.blocks.push(Block::List(
                f.values
                    .iter()
                    .map(|v| vec![Inline::Text(v.display(self.lang))])
                    .collect(),
            ));
        }
        r.blocks.extend(self.derivation(f));
        r.blocks
            .push(Block::Quote(vec![Inline::Text(f.source.clone())]));
        r.blocks.push(self.source_ref(f));
        r.facts = vec![f.id.clone()];
        let mut row = vec![Button {
            label: shorten(f.topic.title(self.lang), LABEL_MAX),
            action: format!("/{}", f.topic.name()),
        }];
        row.extend(ChartKind::for_fact(f).map(|k| self.chart_button(k)));
        r.buttons = vec![row];
        r
    }

    pub(super) fn source_ref(&self, f: &Fact) -> Block {
        let place = if f.paragraph == 0 {
            self.word(Msg::Headline)
        } else {
            self.word(Msg::Paragraph(f.paragraph))
        };
        Block::Paragraph(vec![
            Inline::Text(format!("— {}, ", place)),
            Inline::Italic(self.cat.headline().to_string()),
            Inline::Text(format!(" (id {})", f.id)),
        ])
    }

    pub fn source<'c>(&self, id: &str, closest: impl FnOnce() -> Option<&'c str>) -> Reply {
        let Some(f) = self.cat.get(id) else {
            return self.missing_fact("source", id, closest());
        };
        let f: &Fact = &f;
        let mut r = self
            .reply(ReplyKind::Answer)
            .block(Block::Quote(vec![Inline::Text(f.source.clone())]))
            .block(self.source_ref(f));
        if f.is_derived() {
            r = r.say(Msg::SourceDerived.italic(self.lang));
        }
        r.facts = vec![f.id.clone()];
        r.buttons = vec![vec![Button {
            label: self.word(Msg::FullFact),
            action: format!("/fact {}", f.id),
        }]];
        r
    }

    pub fn no_answer(&self) -> Reply {
        let mut r = self
            .reply(ReplyKind::NoAnswer)
            .say(self.say(Msg::NoFact))
            .say(self.say(Msg::NoFactGuide));
        r.buttons = self.nav_rows(None);
        r
    }

    pub fn help(&self) -> Reply {
        let items = COMMANDS
            .iter()
            .map(|(name, _, _)| {
                vec![
                    Inline::code_command(name, ""),
                    Inline::Text(format!(" — {}", self.word(Msg::CommandHelp(name)))),
                ]
            })
            .collect();
        let mut r = self
            .reply(ReplyKind::Info)
            .block(Block::Heading(self.say(Msg::CommandsHeading)))
            .block(Block::List(items))
            .say(self.say(Msg::HelpAsk));
        r.buttons = self.nav_rows(None);
        r
    }

    pub fn start(&self) -> Reply {
        let mut r = self
            .reply(ReplyKind::Info)
            .block(Block::Heading(self.say(Msg::HelloHeading)))
            .say(self.say(Msg::Intro))
            .say(self.say(Msg::StartHint));
        r.buttons = self.nav_rows(None);
        r
    }

    pub fn empty(&self) -> Reply {
        self.reply(ReplyKind::Info).say(self.say(Msg::Empty))
    }

    /// A notification command where the engine runs without the
    /// application's notification hub (benchmarks, the quality tests).
    pub fn no_notifications(&self) -> Reply {
        self.reply(ReplyKind::Error)
            .say(self.say(Msg::NoNotifications))
    }

    pub fn unknown(&self, name: &str) -> Reply {
        self.reply(ReplyKind::Error)
            .say(self.say(Msg::UnknownCommand(&echo(name))))
            .say(self.say(Msg::SendHelp))
    }

    pub fn usage(&self, cmd: &str, example: &str) -> Reply {
        self.reply(ReplyKind::Error)
            .say(self.say(Msg::Usage(cmd, example)))
    }

    pub fn lang_status(&self, set: Option<Lang>) -> Reply {
        let msg = match set {
            Some(l) => Msg::LangFixed(l.code()),
            None => Msg::LangFollows,
        };
        self.reply(ReplyKind::Info).say(self.say(msg))
    }

    pub fn lang_set(&self, set: Option<Lang>) -> Reply {
        let msg = match set {
            Some(_) => Msg::LangSetFixed,
            None => Msg::LangSetAuto,
        };
        self.reply(ReplyKind::Info).say(self.say(msg))
    }

    /// `/lang xx` in a group from someone who does not administer it.
    pub fn lang_refused(&self) -> Reply {
        self.reply(ReplyKind::Error).say(self.say(Msg::LangRefused))
    }

    /// Questions sent faster than the chat's replies can go out: the
    /// earlier ones were skipped.
    pub fn skipped(&self, n: usize) -> Reply {
        self.reply(ReplyKind::Info).say(self.say(Msg::Skipped(n)))
    }

    pub fn store_failed(&self) -> Reply {
        self.reply(ReplyKind::Error)
            .say(self.say(Msg::SettingNotSaved))
    }
}
