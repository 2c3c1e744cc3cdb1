//! The fact model: what one thing the bot knows looks like.
//!
//! A fact is the unit the bot answers with, cites and notifies about. It is
//! deliberately self-contained — both languages, the verbatim source sentence,
//! typed values, and (for derived facts) the arithmetic — so that any reply,
//! on any transport, can be built from facts alone without going back to the
//! dataset file.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A language the bot answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    /// The ISO 639-1 code, as used by `/lang` and Telegram's `language_code`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// Parses a language code leniently (`en`, `EN`, `en-US`, `ru_RU`, `рус`).
    pub fn parse(code: &str) -> Option<Lang> {
        let c = code.trim().to_lowercase();
        let head: String = c.chars().take_while(|ch| ch.is_alphabetic()).collect();
        match head.as_str() {
            "en" | "eng" | "english" | "англ" | "английский" => Some(Lang::En),
            "ru" | "rus" | "russian" | "рус" | "ру" | "русский" => Some(Lang::Ru),
            _ => None,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A string in both languages the bot speaks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bilingual {
    pub en: String,
    pub ru: String,
}

impl Bilingual {
    pub fn new(en: impl Into<String>, ru: impl Into<String>) -> Self {
        Bilingual {
            en: en.into(),
            ru: ru.into(),
        }
    }

    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::Ru => &self.ru,
        }
    }
}

/// What a fact is about. Commands (`/trade`), notification topics and the
/// topic buttons are all keyed by this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    Visit,
    People,
    Relations,
    Milestones,
    Trade,
    Exports,
    Investment,
    Meetings,
    Agreements,
}

impl Topic {
    pub const ALL: [Topic; 9] = [
        Topic::Visit,
        Topic::People,
        Topic::Relations,
        Topic::Milestones,
        Topic::Trade,
        Topic::Exports,
        Topic::Investment,
        Topic::Meetings,
        Topic::Agreements,
    ];

    /// The command word and stored name (`trade` for `/trade`).
    pub fn name(self) -> &'static str {
        match self {
            Topic::Visit => "visit",
            Topic::People => "people",
            Topic::Relations => "relations",
            Topic::Milestones => "milestones",
            Topic::Trade => "trade",
            Topic::Exports => "exports",
            Topic::Investment => "investment",
            Topic::Meetings => "meetings",
            Topic::Agreements => "agreements",
        }
    }

    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The heading shown above a topic's facts.
    pub fn title(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Topic::Visit, Lang::En) => "The visit",
            (Topic::Visit, Lang::Ru) => "Визит",
            (Topic::People, Lang::En) => "People",
            (Topic::People, Lang::Ru) => "Люди",
            (Topic::Relations, Lang::En) => "Bilateral relations",
            (Topic::Relations, Lang::Ru) => "Двусторонние отношения",
            (Topic::Milestones, Lang::En) => "Eurasian integration timeline",
            (Topic::Milestones, Lang::Ru) => "Хронология евразийской интеграции",
            (Topic::Trade, Lang::En) => "Trade",
            (Topic::Trade, Lang::Ru) => "Торговля",
            (Topic::Exports, Lang::En) => "Exports",
            (Topic::Exports, Lang::Ru) => "Экспорт",
            (Topic::Investment, Lang::En) => "Investment",
            (Topic::Investment, Lang::Ru) => "Инвестиции",
            (Topic::Meetings, Lang::En) => "Meetings during the visit",
            (Topic::Meetings, Lang::Ru) => "Встречи во время визита",
            (Topic::Agreements, Lang::En) => "Agreements",
            (Topic::Agreements, Lang::Ru) => "Соглашения",
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A date known to the year, the month or the day, as the article gives it
/// ("in 2010", "in January 2012", "by January 1 2015").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartialDate {
    pub year: i32,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_RU_NOM: [&str; 12] = [
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
];
const MONTHS_RU_GEN: [&str; 12] = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
];

impl PartialDate {
    /// Human form: "2010", "January 2012", "1 January 2015" (and Russian).
    pub fn display(&self, lang: Lang) -> String {
        let m = self.month.map(|m| usize::from(m.saturating_sub(1)).min(11));
        match (self.day, m, lang) {
            (Some(d), Some(m), Lang::En) => format!("{d} {} {}", MONTHS_EN[m], self.year),
            (Some(d), Some(m), Lang::Ru) => format!("{d} {} {}", MONTHS_RU_GEN[m], self.year),
            (None, Some(m), Lang::En) => format!("{} {}", MONTHS_EN[m], self.year),
            (None, Some(m), Lang::Ru) => format!("{} {}", MONTHS_RU_NOM[m], self.year),
            _ => self.year.to_string(),
        }
    }
}

impl TryFrom<String> for PartialDate {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PartialDate> for String {
    fn from(d: PartialDate) -> String {
        d.to_string()
    }
}

impl std::str::FromStr for PartialDate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid date {s:?}: expected YYYY, YYYY-MM or YYYY-MM-DD");
        let mut parts = s.split('-');
        let year: i32 = parts.next().and_then(|y| y.parse().ok()).ok_or_else(bad)?;
        let month: Option<u8> = match parts.next() {
            Some(m) => Some(
                m.parse()
                    .ok()
                    .filter(|m| (1..=12).contains(m))
                    .ok_or_else(bad)?,
            ),
            None => None,
        };
        let day: Option<u8> = match parts.next() {
            Some(d) => Some(
                d.parse()
                    .ok()
                    .filter(|d| (1..=31).contains(d))
                    .ok_or_else(bad)?,
            ),
            None => None,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(PartialDate { year, month, day })
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
        }
        if let Some(d) = self.day {
            write!(f, "-{d:02}")?;
        }
        Ok(())
    }
}

/// A typed value a fact states, so answers and notifications can show
/// numbers and dates without parsing prose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Value {
    /// A sum of money over a period ("USD 769 million in 2011").
    Amount {
        amount: u64,
        currency: String,
        /// "2011", "2012-H1", …
        period: String,
    },
    /// A number of things ("12 joint assembly plants").
    Count { count: u64, unit: String },
    /// A percentage ("+116%").
    Percent { percent: f64 },
    /// A date or a span of dates.
    Date {
        date: PartialDate,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<PartialDate>,
    },
}

impl Value {
    /// A short human form of the value ("USD 769 million (2011)").
    pub fn display(&self, lang: Lang) -> String {
        match self {
            Value::Amount {
                amount,
                currency,
                period,
            } => {
                let (n, unit) = if *amount >= 1_000_000_000 {
                    (
                        *amount as f64 / 1e9,
                        if lang == Lang::En {
                            "billion"
                        } else {
                            "млрд"
                        },
                    )
                } else if *amount >= 1_000_000 {
                    (
                        *amount as f64 / 1e6,
                        if lang == Lang::En {
                            "million"
                        } else {
                            "млн"
                        },
                    )
                } else {
                    (*amount as f64, "")
                };
                let n = if n.fract() == 0.0 {
                    format!("{n:.0}")
                } else {
                    format!("{n:.1}")
                };
                if unit.is_empty() {
                    format!("{currency} {n} ({period})")
                } else {
                    format!("{currency} {n} {unit} ({period})")
                }
            }
            Value::Count { count, unit } => format!("{count} {unit}"),
            Value::Percent { percent } => format!("{percent}%"),
            Value::Date { date, until } => match until {
                Some(u) => format!("{} – {}", date.display(lang), u.display(lang)),
                None => date.display(lang),
            },
        }
    }
}

/// How a derived fact was obtained from stated ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Derivation {
    /// Ids of the stated facts it rests on.
    pub from: Vec<String>,
    /// The arithmetic or reasoning, shown with the fact.
    pub arithmetic: Bilingual,
    /// What the reader must keep in mind (ambiguity, inference).
    pub caveat: Bilingual,
}

/// One fact the bot knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// Stable id (`trade.2011`): what `/fact`, `/source`, buttons and the
    /// change log refer to. Never reused for another fact.
    pub id: String,
    /// What it is about; decides which command lists it.
    pub topic: Topic,
    /// Position in the dataset, so topic views read in the article's order.
    pub order: u32,
    /// Short title, shown in lists and on buttons.
    pub title: Bilingual,
    /// The statement itself, self-contained, in both languages.
    pub text: Bilingual,
    /// The exact sentence of the source article it comes from.
    pub source: String,
    /// Body paragraph of the article that sentence stands in (headline = 0).
    pub paragraph: u32,
    /// Words people type for this fact that its text does not contain.
    pub aliases: Vec<String>,
    /// When it happened, for timelines and anniversaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<PartialDate>,
    /// Typed values the fact states.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
    /// Present when the fact is derived rather than stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derivation: Option<Derivation>,
}

impl Fact {
    pub fn is_derived(&self) -> bool {
        self.derivation.is_some()
    }

    /// The years the fact is about: its date's, and its values' (an
    /// amount's period, a date), each once, in that order. "and in 2011?"
    /// looks for these.
    pub fn years(&self) -> Vec<i32> {
        let mut out: Vec<i32> = self.date.iter().map(|d| d.year).collect();
        for v in &self.values {
            let y = match v {
                Value::Amount { period, .. } => period.get(..4).and_then(|s| s.parse().ok()),
                Value::Date { date, .. } => Some(date.year),
                _ => None,
            };
            if let Some(y) = y {
                if !out.contains(&y) {
                    out.push(y);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates_parse_display_and_order() {
        let y: PartialDate = "2010".parse().unwrap();
        let m: PartialDate = "2012-01".parse().unwrap();
        let d: PartialDate = "2015-01-01".parse().unwrap();
        assert!(y < m && m < d);
        assert_eq!(m.display(Lang::En), "January 2012");
        assert_eq!(m.display(Lang::Ru), "январь 2012");
        assert_eq!(d.display(Lang::Ru), "1 января 2015");
        assert_eq!(d.to_string(), "2015-01-01");
        for bad in ["", "20x0", "2012-13", "2012-01-32", "2012-01-01-01"] {
            assert!(bad.parse::<PartialDate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn lang_codes_are_lenient() {
        assert_eq!(Lang::parse("en-US"), Some(Lang::En));
        assert_eq!(Lang::parse("RU"), Some(Lang::Ru));
        assert_eq!(Lang::parse("рус"), Some(Lang::Ru));
        assert_eq!(Lang::parse("de"), None);
    }

    #[test]
    fn amounts_read_like_the_article() {
        let v = Value::Amount {
            amount: 769_000_000,
            currency: "USD".into(),
            period: "2011".into(),
        };
        assert_eq!(v.display(Lang::En), "USD 769 million (2011)");
        assert_eq!(v.display(Lang::Ru), "USD 769 млн (2011)");
    }
}
