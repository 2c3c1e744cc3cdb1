//! What a notification says, kept transport- and language-neutral.
//!
//! A notification is stored as data (the change, the digest's facts and
//! countdowns, the announcement's text), not as text: each chat gets it
//! rendered at send time, in that chat's language, as the core's [`Reply`],
//! which every transport already knows how to format.

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::facts::{Change, Fact, Lang, Topic};
use crate::reply::{commands_in, Block, Inline, Msg, Reply, ReplyKind};

/// One countdown line of a digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountdownLine {
    pub en: String,
    pub ru: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Days from the digest's date to `date` (> 0).
    pub days: i64,
}

/// A fact whose date falls on the digest's day, some years ago.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anniversary {
    pub fact_id: String,
    pub year: i32,
}

/// A fact an import removed, as a removal summary names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemovedFact {
    pub id: String,
    pub topic: Topic,
    pub title_en: String,
    pub title_ru: String,
}

impl RemovedFact {
    pub fn of(f: &Fact) -> RemovedFact {
        RemovedFact {
            id: f.id.clone(),
            topic: f.topic,
            title_en: f.title.en.clone(),
            title_ru: f.title.ru.clone(),
        }
    }
}

/// Removed facts a summary lists by name; the rest are counted.
const REMOVED_LISTED: usize = 20;

/// What a notification is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Content {
    /// A fact added, changed or removed by an import.
    Change { change: Box<Change> },
    /// The daily digest of `date` (`YYYY-MM-DD`, local).
    Digest {
        date: String,
        anniversaries: Vec<Anniversary>,
        countdowns: Vec<CountdownLine>,
    },
    /// An operator's announcement.
    Announcement { text: String },
    /// Facts removed by an import (those of the chat's topics), in one
    /// message rather than one per fact.
    Removed { facts: Vec<RemovedFact> },
}

impl Content {
    /// A short name for listings (`change`, `digest`, `announcement`).
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Change { .. } => "change",
            Content::Digest { .. } => "digest",
            Content::Announcement { .. } => "announcement",
            Content::Removed { .. } => "removed",
        }
    }

    /// One line describing it, for `factbot notifications`.
    pub fn summary(&self) -> String {
        let mut s = match self {
            Content::Change { change } => format!("change of {}", change.fact_id),
            Content::Digest { date, .. } => format!("digest of {date}"),
            Content::Announcement { text } => text.clone(),
            Content::Removed { facts } => format!("{} facts removed", facts.len()),
        };
        if s.chars().count() > 60 {
            s = s.chars().take(57).collect::<String>() + "…";
        }
        s
    }

    /// The message a chat reading `lang` receives.
    pub fn render(&self, lang: Lang, cat: &Catalog) -> Reply {
        let r = Reply::new(ReplyKind::Info, lang);
        match self {
            Content::Change { change } => render_change(r, change, lang),
            Content::Digest {
                date,
                anniversaries,
                countdowns,
            } => render_digest(r, date, anniversaries, countdowns, lang, cat),
            Content::Announcement { text } => render_announcement(r, text, lang),
            Content::Removed { facts } => render_removed(r, facts, lang),
        }
    }
}

/// "New fact / Updated / Removed: title", what changed, and the source.
fn render_change(mut r: Reply, c: &Change, lang: Lang) -> Reply {
    let (head, fact) = match (&c.old, &c.new) {
        (_, Some(new)) if c.old.is_none() => (Msg::FactAdded(new.title.get(lang)), new),
        (_, Some(new)) => (Msg::FactUpdated(new.title.get(lang)), new),
        (Some(old), None) => (Msg::FactRemoved(old.title.get(lang)), old),
        (None, None) => return r.text(c.fact_id.clone()),
    };
    r = r.block(Block::Heading(head.render(lang)));
    if let (Some(old), Some(new)) = (&c.old, &c.new) {
        let was = value_line(old, lang);
        let now = value_line(new, lang);
        if !was.is_empty() && was != now {
            r = r.block(Block::Paragraph(vec![
                Inline::Text(was),
                Inline::Text(" → ".into()),
                Inline::Bold(now),
            ]));
        }
        if old.text.get(lang) != new.text.get(lang) {
            r = r.block(Block::Paragraph(vec![
                Inline::Italic(Msg::Was.text(lang)),
                Inline::Text(old.text.get(lang).to_string()),
            ]));
        }
        r = r.block(Block::Paragraph(vec![
            Inline::Italic(Msg::Now.text(lang)),
            Inline::Text(new.text.get(lang).to_string()),
        ]));
    } else {
        r = r.text(fact.text.get(lang).to_string());
    }
    r = r.block(Block::Paragraph(Msg::SourceLabel.italic(lang)));
    r = r.block(Block::Quote(vec![Inline::Text(fact.source.clone())]));
    r.facts.push(fact.id.clone());
    r
}

/// The day's anniversaries and countdowns as one list.
fn render_digest(
    mut r: Reply,
    date: &str,
    anniversaries: &[Anniversary],
    countdowns: &[CountdownLine],
    lang: Lang,
    cat: &Catalog,
) -> Reply {
    let day = date
        .parse::<crate::facts::PartialDate>()
        .map(|d| d.display(lang))
        .unwrap_or_else(|_| date.to_string());
    r = r.block(Block::Heading(Msg::DigestHeading(&day).render(lang)));
    let mut items = Vec::new();
    for a in anniversaries {
        let Some(f) = cat.get(&a.fact_id) else {
            continue;
        };
        items.push(vec![
            Inline::Bold(Msg::OnThisDay(a.year).text(lang)),
            Inline::Text(f.text.get(lang).to_string()),
        ]);
        r.facts.push(f.id.clone());
    }
    for c in countdowns {
        let what = match lang {
            Lang::En => &c.en,
            Lang::Ru => &c.ru,
        };
        let d = c
            .date
            .parse::<crate::facts::PartialDate>()
            .map(|d| d.display(lang))
            .unwrap_or_else(|_| c.date.clone());
        items.push(Msg::DaysUntil(c.days, what, &d).render(lang));
    }
    r = r.block(Block::List(items));
    r
}

fn render_announcement(mut r: Reply, text: &str, lang: Lang) -> Reply {
    r = r.block(Block::Heading(Msg::AnnouncementHeading.render(lang)));
    // The admin's prose: the commands it names, each platform writes.
    r = r.say(commands_in(text));
    r
}

/// "Facts removed: N", the first [`REMOVED_LISTED`] by title and id, the
/// rest counted.
fn render_removed(mut r: Reply, facts: &[RemovedFact], lang: Lang) -> Reply {
    r = r.block(Block::Heading(
        Msg::RemovedHeading(facts.len()).render(lang),
    ));
    let mut items: Vec<Vec<Inline>> = facts
        .iter()
        .take(REMOVED_LISTED)
        .map(|f| {
            vec![
                Inline::Text(match lang {
                    Lang::En => f.title_en.clone(),
                    Lang::Ru => f.title_ru.clone(),
                }),
                Inline::Text(" ".into()),
                Inline::Code(f.id.clone()),
            ]
        })
        .collect();
    let more = facts.len().saturating_sub(REMOVED_LISTED);
    if more > 0 {
        items.push(Msg::AndMore(more).italic(lang));
    }
    r = r.block(Block::List(items));
    r
}

/// A fact's typed values in one line ("USD 769 million (2011)").
fn value_line(f: &Fact, lang: Lang) -> String {
    f.values
        .iter()
        .map(|v| v.display(lang))
        .collect::<Vec<_>>()
        .join(", ")
}
