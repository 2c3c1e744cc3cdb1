//! Charts: the store's figures and dates as PNG pictures, rendered
//! in-process.
//!
//! Three charts — `trade` (turnover bars, the implied first half of 2011
//! drawn as derived with both readings of "+116 %"), `milestones` (the
//! integration timeline with the visit marked) and `investment` (plants and
//! projects as countable squares, the inflow as a figure) — each drawn from
//! the facts' typed `values` and `date`, never from numbers written here, so
//! an edited dataset redraws them. Labels are in the chat's language; every
//! chart has a caption citing its paragraphs and an alt text stating the
//! figures (Matrix's `body`, screen readers, and the fallback wherever a
//! picture cannot be sent).
//!
//! The failure this layout prevents: a chart that disagrees with the text
//! answers, or shows a stale figure after an import. A [`ChartKey`] names a
//! chart by kind, language and a digest of exactly the facts it draws (and
//! [`RENDER_VERSION`]); the [`Cache`] holds PNGs by that key, and transports
//! keep a platform's file id / content URI under the same key, so a changed
//! fact means a new key — a fresh render and a fresh upload — while an
//! unrelated edit keeps the old one.
//!
//! Core-level: it reads facts through [`FactSource`] (the answering
//! catalog implements it) and knows nothing of chats or transports.
//! Rendering is CPU work of a few milliseconds (`cargo bench --bench
//! charts`): async callers run it on a blocking thread.

mod draw;
pub mod font;

pub use draw::encode_png;
mod investment;
mod milestones;
mod trade;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::facts::{Fact, Lang, Topic};

/// Bumped whenever a chart's drawing changes, so keys (and the file ids
/// transports store under them) of pictures drawn by an older binary are
/// not reused.
pub const RENDER_VERSION: u32 = 1;
/// Every chart's size in pixels: 16:10, under Telegram's 1280-pixel photo
/// side (so it is not rescaled) and large enough to stay sharp in Matrix.
pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 750;
/// Rendered PNGs kept in memory: three charts in two languages for the
/// current dataset and the one before it (each 75–115 KB, so at most about
/// 1.4 MB).
pub const CACHE_ENTRIES: usize = 12;

/// Which chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    Trade,
    Milestones,
    Investment,
}

impl ChartKind {
    pub const ALL: [ChartKind; 3] = [
        ChartKind::Trade,
        ChartKind::Milestones,
        ChartKind::Investment,
    ];

    /// The name `/chart NAME` takes and keys use.
    pub fn name(self) -> &'static str {
        match self {
            ChartKind::Trade => "trade",
            ChartKind::Milestones => "milestones",
            ChartKind::Investment => "investment",
        }
    }

    /// The name in a language: what a button's `/chart …` action says, so
    /// a Russian answer's button asks for the Russian chart.
    pub fn local_name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (k, Lang::En) => k.name(),
            (ChartKind::Trade, Lang::Ru) => "торговля",
            (ChartKind::Milestones, Lang::Ru) => "хронология",
            (ChartKind::Investment, Lang::Ru) => "инвестиции",
        }
    }

    /// Parses a chart name as people type it (English or Russian).
    pub fn parse(word: &str) -> Option<ChartKind> {
        let w = word.trim().trim_start_matches(['/', '!']).to_lowercase();
        Some(match w.as_str() {
            "trade" | "turnover" | "торговля" | "товарооборот" => {
                ChartKind::Trade
            }
            "milestones" | "timeline" | "integration" | "хронология" | "этапы" | "интеграция" => {
                ChartKind::Milestones
            }
            "investment" | "investments" | "инвестиции" => ChartKind::Investment,
            _ => return None,
        })
    }

    /// A short name for buttons and the chart list.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (ChartKind::Trade, Lang::En) => "trade",
            (ChartKind::Trade, Lang::Ru) => "торговля",
            (ChartKind::Milestones, Lang::En) => "timeline",
            (ChartKind::Milestones, Lang::Ru) => "хронология",
            (ChartKind::Investment, Lang::En) => "investment",
            (ChartKind::Investment, Lang::Ru) => "инвестиции",
        }
    }

    /// What the chart shows, for the `/chart` list.
    pub fn blurb(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (ChartKind::Trade, Lang::En) => {
                "trade turnover as bars, with the derived first half of 2011"
            }
            (ChartKind::Trade, Lang::Ru) => {
                "товарооборот столбиками, с расчётным первым полугодием 2011"
            }
            (ChartKind::Milestones, Lang::En) => {
                "the integration timeline 2007 → 2015, with the visit marked"
            }
            (ChartKind::Milestones, Lang::Ru) => {
                "хронология интеграции 2007 → 2015 с отмеченным визитом"
            }
            (ChartKind::Investment, Lang::En) => "joint plants and projects, investment inflows",
            (ChartKind::Investment, Lang::Ru) => {
                "совместные производства и проекты, приток инвестиций"
            }
        }
    }

    /// The topic whose text view shows the same facts.
    pub fn topic(self) -> Topic {
        match self {
            ChartKind::Trade => Topic::Trade,
            ChartKind::Milestones => Topic::Milestones,
            ChartKind::Investment => Topic::Investment,
        }
    }

    /// Whether this chart draws `f` (answers stating it get a chart button).
    pub fn draws(self, f: &Fact) -> bool {
        match self {
            ChartKind::Trade => trade::draws(f),
            ChartKind::Milestones => milestones::draws(f),
            ChartKind::Investment => investment::draws(f),
        }
    }

    /// The chart that draws `f`, if any.
    pub fn for_fact(f: &Fact) -> Option<ChartKind> {
        ChartKind::ALL.into_iter().find(|k| k.draws(f))
    }
}

impl fmt::Display for ChartKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One rendering of a chart: kind, language and the digest of the facts it
/// draws. The in-memory cache is keyed by it, and so will be the platform
/// file ids / content URIs transports store (its [`Display`](std::fmt::Display) form,
/// `trade/en/1f0c…`, is a stable string key).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ChartKey {
    pub kind: ChartKind,
    pub lang: Lang,
    /// 16 hex digits of SHA-256 over [`RENDER_VERSION`], the kind and the
    /// JSON of every fact drawn.
    pub digest: String,
}

impl ChartKey {
    /// `trade-en.png`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.png", self.kind.name(), self.lang.code())
    }
}

impl fmt::Display for ChartKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.kind.name(),
            self.lang.code(),
            self.digest
        )
    }
}

/// What a chart says in words, without drawing it (cheap: the engine builds
/// one for every `/chart` reply).
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    pub key: ChartKey,
    /// The chart's title, as drawn.
    pub title: String,
    /// The figures in one line, for the caption.
    pub summary: String,
    /// Paragraphs of the article the facts come from, ascending.
    pub paragraphs: Vec<u32>,
    /// The figures in sentences: alt text and text-only fallback.
    pub alt: String,
    /// Ids of the facts drawn.
    pub facts: Vec<String>,
    pub width: u32,
    pub height: u32,
}

/// A rendered chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Png {
    pub key: ChartKey,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChartError {
    /// The dataset has no facts this chart draws.
    #[error("the dataset has no {0} for this chart")]
    Missing(&'static str),
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(String),
}

/// Where charts read facts from: the [`Catalog`](crate::catalog::Catalog),
/// or a test's own facts.
pub trait FactSource {
    fn fact(&self, id: &str) -> Option<Arc<Fact>>;
    /// A topic's first `limit` facts in reading order (milestones by date),
    /// read as the caller takes them: a chart that needs only the first
    /// few dated ones reads only those from a large store.
    fn topic_facts<'a>(
        &'a self,
        topic: Topic,
        limit: usize,
    ) -> Box<dyn Iterator<Item = Arc<Fact>> + 'a>;
}

/// Charts read the catalog's facts (resident or read from the store).
impl FactSource for crate::catalog::Catalog {
    fn fact(&self, id: &str) -> Option<Arc<Fact>> {
        self.get(id)
    }

    fn topic_facts<'a>(
        &'a self,
        topic: Topic,
        limit: usize,
    ) -> Box<dyn Iterator<Item = Arc<Fact>> + 'a> {
        Box::new(self.by_topic(topic).take(limit))
    }
}

/// Facts of a topic a chart reads at most: a chart shows a handful, and a
/// large store (whose facts are read from disk when shown) is searched,
/// not charted.
const SCAN: usize = 64;

/// Text every chart provides: drawn (title, subtitle, footer) and told
/// (summary, alt).
struct Text {
    title: String,
    subtitle: String,
    summary: String,
    alt: String,
}

/// A chart's facts, extracted and checked, ready to describe or draw.
enum Data {
    Trade(trade::Data),
    Milestones(milestones::Data),
    Investment(investment::Data),
}

impl Data {
    fn extract(kind: ChartKind, src: &dyn FactSource) -> Result<Data, ChartError> {
        Ok(match kind {
            ChartKind::Trade => Data::Trade(trade::Data::extract(src)?),
            ChartKind::Milestones => Data::Milestones(milestones::Data::extract(src)?),
            ChartKind::Investment => Data::Investment(investment::Data::extract(src)?),
        })
    }

    fn facts(&self) -> Vec<Arc<Fact>> {
        match self {
            Data::Trade(d) => d.facts(),
            Data::Milestones(d) => d.facts(),
            Data::Investment(d) => d.facts(),
        }
    }

    fn text(&self, lang: Lang) -> Text {
        match self {
            Data::Trade(d) => d.text(lang),
            Data::Milestones(d) => d.text(lang),
            Data::Investment(d) => d.text(lang),
        }
    }

    fn draw(&self, lang: Lang, c: &draw::Canvas, body: Body) -> Result<(), ChartError> {
        match self {
            Data::Trade(d) => d.draw(lang, c, body),
            Data::Milestones(d) => d.draw(lang, c, body),
            Data::Investment(d) => d.draw(lang, c, body),
        }
    }
}

/// The part of the picture below the title and above the footer.
#[derive(Clone, Copy, Debug)]
struct Body {
    left: i32,
    top: i32,
    right: i32,
    bottom: i32,
}

const MARGIN: i32 = 40;
const TITLE_SIZE: f64 = 34.0;
const SUBTITLE_SIZE: f64 = 21.0;
const FOOTER_SIZE: f64 = 18.0;

fn key(kind: ChartKind, lang: Lang, facts: &[Arc<Fact>]) -> ChartKey {
    let mut h = Sha256::new();
    h.update(RENDER_VERSION.to_le_bytes());
    h.update(kind.name().as_bytes());
    for f in facts {
        // A fact always serialises; an error would only mean a weaker key.
        h.update(serde_json::to_vec(&**f).unwrap_or_default());
        h.update([0]);
    }
    let digest = h.finalize();
    ChartKey {
        kind,
        lang,
        digest: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn paragraphs(facts: &[Arc<Fact>]) -> Vec<u32> {
    let mut p: Vec<u32> = facts.iter().map(|f| f.paragraph).collect();
    p.sort_unstable();
    p.dedup();
    p
}

/// "¶4" or "¶1, ¶3".
pub fn cite(paragraphs: &[u32]) -> String {
    paragraphs
        .iter()
        .map(|p| format!("¶{p}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `kind` in `lang` shows, and its key, without drawing it.
pub fn describe(
    kind: ChartKind,
    lang: Lang,
    src: &dyn FactSource,
) -> Result<Description, ChartError> {
    let data = Data::extract(kind, src)?;
    let facts = data.facts();
    let text = data.text(lang);
    Ok(Description {
        key: key(kind, lang, &facts),
        title: text.title,
        summary: text.summary,
        paragraphs: paragraphs(&facts),
        alt: text.alt,
        facts: facts.iter().map(|f| f.id.clone()).collect(),
        width: WIDTH,
        height: HEIGHT,
    })
}

/// Draws `kind` in `lang` as a PNG.
pub fn render(kind: ChartKind, lang: Lang, src: &dyn FactSource) -> Result<Png, ChartError> {
    render_traced(kind, lang, src).map(|(png, _)| png)
}

/// [`render`], also returning every text drawn.
fn render_traced(
    kind: ChartKind,
    lang: Lang,
    src: &dyn FactSource,
) -> Result<(Png, Vec<String>), ChartError> {
    let data = Data::extract(kind, src)?;
    let facts = data.facts();
    let text = data.text(lang);
    let mut buf = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    let drawn = {
        let c = draw::Canvas::new(&mut buf, WIDTH, HEIGHT)?;
        frame(&c, &text, lang, &paragraphs(&facts))?;
        let body = Body {
            left: MARGIN,
            top: 130,
            right: WIDTH as i32 - MARGIN,
            bottom: HEIGHT as i32 - 48,
        };
        data.draw(lang, &c, body)?;
        let drawn = c.drawn.take();
        c.present()?;
        drawn
    };
    let png = Png {
        key: key(kind, lang, &facts),
        bytes: draw::encode_png(&buf, WIDTH, HEIGHT)?,
        width: WIDTH,
        height: HEIGHT,
    };
    Ok((png, drawn))
}

/// Title, subtitle, a rule under them, and the source line at the bottom.
fn frame(c: &draw::Canvas, text: &Text, lang: Lang, paragraphs: &[u32]) -> Result<(), ChartError> {
    use draw::{colors, Align};
    let w = f64::from(c.width - 2 * MARGIN);
    let title = font::fit(&text.title, w, TITLE_SIZE, true);
    c.text(
        &title,
        (MARGIN, 56),
        TITLE_SIZE,
        true,
        colors::INK,
        Align::Left,
    )?;
    let sub = font::fit(&text.subtitle, w, SUBTITLE_SIZE, false);
    c.text(
        &sub,
        (MARGIN, 92),
        SUBTITLE_SIZE,
        false,
        colors::MUTED,
        Align::Left,
    )?;
    c.fill((MARGIN, 110), (c.width - MARGIN, 111), colors::GRID)?;
    let source = match lang {
        Lang::En => format!("Source: the article, {}", cite(paragraphs)),
        Lang::Ru => format!("Источник: статья, {}", cite(paragraphs)),
    };
    let y = c.height - 18;
    c.text(
        &source,
        (MARGIN, y),
        FOOTER_SIZE,
        false,
        colors::MUTED,
        Align::Left,
    )?;
    c.text(
        "factbot",
        (c.width - MARGIN, y),
        FOOTER_SIZE,
        true,
        colors::AXIS,
        Align::Right,
    )?;
    Ok(())
}

/// Rendered charts by key, the most recently used last; at most
/// [`CACHE_ENTRIES`]. Rendering happens outside the lock, so two requests
/// for the same new chart may both render it (harmless, and rarer than
/// making every reader wait behind one render).
#[derive(Default)]
pub struct Cache {
    entries: Mutex<VecDeque<Arc<Png>>>,
}

impl Cache {
    pub fn get(&self, key: &ChartKey) -> Option<Arc<Png>> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let i = e.iter().position(|p| &p.key == key)?;
        let hit = e.remove(i)?;
        e.push_back(Arc::clone(&hit));
        Some(hit)
    }

    /// The cached PNG for `key`, or `render`'s, which is then cached under
    /// its own key (the one it was drawn from).
    pub fn get_or_render(
        &self,
        key: &ChartKey,
        render: impl FnOnce() -> Result<Png, ChartError>,
    ) -> Result<Arc<Png>, ChartError> {
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        let png = Arc::new(render()?);
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|p| p.key != png.key);
        e.push_back(Arc::clone(&png));
        while e.len() > CACHE_ENTRIES {
            e.pop_front();
        }
        Ok(png)
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Formats an amount in the unit the chart uses (769000000 in millions →
/// "769"; fractions to one decimal).
fn in_unit(amount: u64, unit: f64) -> String {
    let v = amount as f64 / unit;
    if (v - v.round()).abs() < 0.05 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A year, half or quarter as the article's periods are written
/// (`2011`, `2012-H1`, `2011-Q3`), in words; anything else as given.
fn period_label(period: &str, lang: Lang) -> String {
    let (year, part) = match period.split_once('-') {
        Some((y, p)) => (y, Some(p)),
        None => (period, None),
    };
    if year.parse::<i32>().is_err() {
        return period.to_string();
    }
    match (part, lang) {
        (None, Lang::En) => format!("{year}, full year"),
        (None, Lang::Ru) => format!("{year} год"),
        (Some("H1"), Lang::En) => format!("H1 {year}"),
        (Some("H2"), Lang::En) => format!("H2 {year}"),
        (Some("H1"), Lang::Ru) => format!("I полугодие {year}"),
        (Some("H2"), Lang::Ru) => format!("II полугодие {year}"),
        (Some(q), Lang::En) if q.starts_with('Q') => format!("{q} {year}"),
        (Some(q), Lang::Ru) if q.starts_with('Q') => format!("{} квартал {year}", &q[1..]),
        _ => period.to_string(),
    }
}

/// A currency's unit in words ("USD million", "млн долларов США").
fn money_unit(currency: &str, unit: f64, lang: Lang) -> String {
    let (en, ru) = if unit >= 1e9 {
        ("billion", "млрд")
    } else if unit >= 1e6 {
        ("million", "млн")
    } else {
        ("", "")
    };
    match lang {
        Lang::En if en.is_empty() => currency.to_string(),
        Lang::En => format!("{currency} {en}"),
        Lang::Ru => {
            let cur = if currency == "USD" {
                "долларов США"
            } else {
                currency
            };
            if ru.is_empty() {
                cur.to_string()
            } else {
                format!("{ru} {cur}")
            }
        }
    }
}

/// An amount in words: "USD 73 million", "73 млн долларов США".
fn money(amount: u64, currency: &str, lang: Lang) -> String {
    let unit = unit_for(amount);
    let n = in_unit(amount, unit);
    match lang {
        Lang::En => {
            let scale = money_unit("", unit, lang);
            format!("{currency} {n} {}", scale.trim())
                .trim_end()
                .to_string()
        }
        Lang::Ru => format!("{n} {}", money_unit(currency, unit, lang)),
    }
}

/// The unit (1, 1e6, 1e9) that shows `max` in at most three or four digits.
fn unit_for(max: u64) -> f64 {
    if max >= 10_000_000_000 {
        1e9
    } else if max >= 1_000_000 {
        1e6
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests;
