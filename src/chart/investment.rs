//! The investment chart: counts as countable squares, money as a figure.
//!
//! Twelve plants and thirteen projects are small numbers that people count;
//! a row of squares shows them exactly, and the seven state-supported
//! projects are the first seven of the thirteen, in a second colour. The
//! inflow (USD 73 million in 2011) is a different unit, so it stands beside
//! them as a figure rather than on a shared axis it would dwarf or vanish on.

use super::draw::{colors, Align, Canvas};
use std::sync::Arc;

use super::{font, in_unit, money, money_unit, unit_for, Body, ChartError, FactSource, Text, SCAN};
use crate::facts::{Fact, Lang, Topic, Value};

/// Counts drawn at most, and amounts.
const MAX_COUNTS: usize = 4;
const MAX_AMOUNTS: usize = 2;
/// Beyond this a count is drawn as a bar: squares stop being countable.
const MAX_SQUARES: u64 = 30;

/// Counts that are a part of another count: (part, whole). The article's
/// "13 joint projects …, seven of them with support from state programs".
const PART_OF: &[(&str, &str)] = &[("investment.state_support", "investment.joint_projects")];

/// Labels that read after the number, by fact id: English (one, many),
/// Russian (one, few, many). A fact not listed is labelled by its title.
const LABELS: &[(&str, [&str; 2], [&str; 3])] = &[
    (
        "investment.assembly_plants",
        [
            "joint assembly plant making farm machinery",
            "joint assembly plants making farm machinery",
        ],
        [
            "совместное сборочное производство сельхозтехники",
            "совместных сборочных производства сельхозтехники",
            "совместных сборочных производств сельхозтехники",
        ],
    ),
    (
        "investment.joint_projects",
        [
            "further joint project under way",
            "further joint projects under way",
        ],
        [
            "совместный проект в работе",
            "совместных проекта в работе",
            "совместных проектов в работе",
        ],
    ),
    (
        "investment.state_support",
        [
            "with support from Kazakhstan’s state development programs",
            "with support from Kazakhstan’s state development programs",
        ],
        [
            "при поддержке госпрограмм развития Казахстана",
            "при поддержке госпрограмм развития Казахстана",
            "при поддержке госпрограмм развития Казахстана",
        ],
    ),
];

pub(super) fn draws(f: &Fact) -> bool {
    f.topic == Topic::Investment
        && f.values
            .iter()
            .any(|v| matches!(v, Value::Count { .. } | Value::Amount { .. }))
}

/// Russian plural form index for `n`: 0 one, 1 few, 2 many.
fn ru_form(n: u64) -> usize {
    match (n % 10, n % 100) {
        (1, r) if r != 11 => 0,
        (2..=4, r) if !(12..=14).contains(&r) => 1,
        _ => 2,
    }
}

fn label(f: &Fact, n: u64, lang: Lang) -> String {
    match LABELS.iter().find(|(id, _, _)| *id == f.id) {
        Some((_, en, ru)) => match lang {
            Lang::En => en[usize::from(n != 1)].to_string(),
            Lang::Ru => ru[ru_form(n)].to_string(),
        },
        None => f.title.get(lang).to_string(),
    }
}

struct Count {
    fact: Arc<Fact>,
    count: u64,
    /// Index of a count within this one (drawn as its first squares).
    part: Option<usize>,
    /// Whether it is drawn inside another count rather than on its own row.
    is_part: bool,
}

struct Amount {
    fact: Arc<Fact>,
    amount: u64,
    currency: String,
    period: String,
}

pub(super) struct Data {
    counts: Vec<Count>,
    amounts: Vec<Amount>,
}

/// "in 2011" / "в 2011 году" for a year; the period as given otherwise.
fn period_phrase(period: &str, lang: Lang) -> String {
    match (period.parse::<i32>().is_ok(), lang) {
        (true, Lang::En) => format!("in {period}"),
        (true, Lang::Ru) => format!("в {period} году"),
        (false, _) => super::period_label(period, lang),
    }
}

impl Data {
    pub(super) fn extract(src: &dyn FactSource) -> Result<Data, ChartError> {
        let facts = src.topic_facts(Topic::Investment, SCAN);
        let mut counts: Vec<Count> = Vec::new();
        let mut amounts: Vec<Amount> = Vec::new();
        for f in facts {
            for v in &f.values {
                match v {
                    Value::Count { count, .. } if counts.len() < MAX_COUNTS => counts.push(Count {
                        fact: Arc::clone(&f),
                        count: *count,
                        part: None,
                        is_part: false,
                    }),
                    Value::Amount {
                        amount,
                        currency,
                        period,
                    } if amounts.len() < MAX_AMOUNTS => amounts.push(Amount {
                        fact: Arc::clone(&f),
                        amount: *amount,
                        currency: currency.clone(),
                        period: period.clone(),
                    }),
                    _ => {}
                }
            }
        }
        if counts.is_empty() && amounts.is_empty() {
            return Err(ChartError::Missing("investment figures"));
        }
        for (part, whole) in PART_OF {
            let p = counts.iter().position(|c| c.fact.id == *part);
            let w = counts.iter().position(|c| c.fact.id == *whole);
            if let (Some(p), Some(w)) = (p, w) {
                // Only a real part: not more than the whole.
                if counts[p].count <= counts[w].count && counts[w].part.is_none() {
                    counts[w].part = Some(p);
                    counts[p].is_part = true;
                }
            }
        }
        Ok(Data { counts, amounts })
    }

    pub(super) fn facts(&self) -> Vec<Arc<Fact>> {
        let mut v: Vec<Arc<Fact>> = Vec::new();
        for f in self
            .counts
            .iter()
            .map(|c| &c.fact)
            .chain(self.amounts.iter().map(|a| &a.fact))
        {
            if !v.iter().any(|g| g.id == f.id) {
                v.push(Arc::clone(f));
            }
        }
        v
    }

    fn amount_text(&self, a: &Amount, lang: Lang) -> (String, String) {
        let unit = unit_for(a.amount);
        (in_unit(a.amount, unit), money_unit(&a.currency, unit, lang))
    }

    fn amount_label(a: &Amount, lang: Lang) -> String {
        let what = match (a.fact.id.as_str(), lang) {
            ("investment.inflows_2011", Lang::En) => {
                "investment inflows from Belarus to Kazakhstan".to_string()
            }
            ("investment.inflows_2011", Lang::Ru) => {
                "приток инвестиций из Беларуси в Казахстан".to_string()
            }
            _ => a.fact.title.get(lang).to_string(),
        };
        format!("{what} {}", period_phrase(&a.period, lang))
    }

    pub(super) fn text(&self, lang: Lang) -> Text {
        let title = match lang {
            Lang::En => "Belarusian investment in Kazakhstan",
            Lang::Ru => "Белорусские инвестиции в Казахстане",
        }
        .to_string();
        let subtitle = match lang {
            Lang::En => {
                "Each square is one plant or project; the inflow is money, shown as a figure"
            }
            Lang::Ru => {
                "Каждый квадрат — одно производство или проект; приток инвестиций — в деньгах"
            }
        }
        .to_string();
        let mut items = Vec::new();
        for c in self.counts.iter().filter(|c| !c.is_part) {
            let mut s = format!("{} {}", c.count, label(&c.fact, c.count, lang));
            if let Some(p) = c.part.map(|i| &self.counts[i]) {
                s += match lang {
                    Lang::En => format!(", {} of them {}", p.count, label(&p.fact, p.count, lang)),
                    Lang::Ru => format!(", из них {} {}", p.count, label(&p.fact, p.count, lang)),
                }
                .as_str();
            }
            items.push(s);
        }
        for a in &self.amounts {
            items.push(format!(
                "{}: {}",
                Self::amount_label(a, lang),
                money(a.amount, &a.currency, lang)
            ));
        }
        let alt = match lang {
            Lang::En => format!("{title}: {}.", items.join("; ")),
            Lang::Ru => format!("{title}: {}.", items.join("; ")),
        };
        Text {
            title,
            subtitle,
            summary: items.join(" · "),
            alt,
        }
    }

    pub(super) fn draw(&self, lang: Lang, c: &Canvas, body: Body) -> Result<(), ChartError> {
        let split = if self.amounts.is_empty() {
            body.right
        } else {
            body.right - 380
        };
        let rows: Vec<&Count> = self.counts.iter().filter(|c| !c.is_part).collect();
        let grid = Grid::new(body, split, &rows);
        // Lay every row out first, to centre the block vertically.
        let layouts: Vec<Layout> = rows
            .iter()
            .map(|cnt| self.layout(cnt, lang, &grid))
            .collect();
        let total: i32 = layouts.iter().map(|l| l.height(&grid)).sum::<i32>()
            + ROW_GAP * (layouts.len() as i32 - 1).max(0);
        let mut top = body.top + ((body.bottom - body.top - total) / 2).max(0);
        for (cnt, lay) in rows.iter().zip(&layouts) {
            let part = cnt.part.map(|p| &self.counts[p]);
            grid.draw_count(c, cnt, part, top)?;
            grid.draw_caption(c, lay, top)?;
            top += lay.height(&grid) + ROW_GAP;
        }
        // The money: a figure on a card to the right, centred vertically.
        if !self.amounts.is_empty() {
            let (px0, px1) = (split + 10, body.right);
            let card_h = 300;
            let n = self.amounts.len() as i32;
            let gap = 24;
            let all = card_h * n + gap * (n - 1);
            let mut y0 = body.top + ((body.bottom - body.top - all) / 2).max(0);
            for a in &self.amounts {
                self.draw_card(c, lang, a, (px0, px1), (y0, y0 + card_h))?;
                y0 = y0 + card_h + gap;
            }
        }
        Ok(())
    }

    /// A row's lines of squares, its label and the legend of its part.
    fn layout(&self, cnt: &Count, lang: Lang, grid: &Grid) -> Layout {
        let per_line = grid.per_line;
        let lines = if cnt.count <= MAX_SQUARES {
            ((cnt.count as i32) + per_line - 1) / per_line
        } else {
            1
        };
        let legend = cnt
            .part
            .map(|p| &self.counts[p])
            .map_or_else(Vec::new, |p| {
                let text = match lang {
                    Lang::En => {
                        format!("{} of them {}", p.count, label(&p.fact, p.count, lang))
                    }
                    Lang::Ru => {
                        format!("из них {} {}", p.count, label(&p.fact, p.count, lang))
                    }
                };
                font::wrap(&text, f64::from(grid.avail - 28), LEGEND_SIZE, true, 2)
            });
        Layout {
            lines: lines.max(1),
            label: font::fit(
                &label(&cnt.fact, cnt.count, lang),
                f64::from(grid.avail),
                LABEL_SIZE,
                false,
            ),
            legend,
        }
    }

    /// One amount's card: the figure, its unit and what it is.
    fn draw_card(
        &self,
        c: &Canvas,
        lang: Lang,
        a: &Amount,
        (px0, px1): (i32, i32),
        (y0, y1): (i32, i32),
    ) -> Result<(), ChartError> {
        c.fill((px0, y0), (px1, y1), colors::PALE)?;
        let cx = (px0 + px1) / 2;
        let (number, unit) = self.amount_text(a, lang);
        c.text(
            &number,
            (cx, y0 + 124),
            110.0,
            true,
            colors::PRIMARY,
            Align::Center,
        )?;
        c.text(
            &unit,
            (cx, y0 + 170),
            26.0,
            true,
            colors::INK,
            Align::Center,
        )?;
        let lines = font::wrap(
            &Self::amount_label(a, lang),
            f64::from(px1 - px0 - 40),
            LABEL_SIZE,
            false,
            3,
        );
        for (k, l) in lines.iter().enumerate() {
            c.text(
                l,
                (cx, y0 + 214 + 28 * k as i32),
                LABEL_SIZE,
                false,
                colors::INK,
                Align::Center,
            )?;
        }
        Ok(())
    }
}

const NUMBER_SIZE: f64 = 54.0;
const LABEL_SIZE: f64 = 22.0;
const LEGEND_SIZE: f64 = 21.0;
/// Between squares.
const GAP: i32 = 9;
/// Between rows.
const ROW_GAP: i32 = 88;

/// Where the rows of squares go and how large the squares are.
struct Grid {
    /// The squares' left edge (the number stands left of it).
    sq_x: i32,
    /// The width a row may take.
    avail: i32,
    square: i32,
    per_line: i32,
}

impl Grid {
    /// Squares as large as the longest row allows, 30 to 44 pixels.
    fn new(body: Body, split: i32, rows: &[&Count]) -> Grid {
        let sq_x = body.left + 120;
        let avail = split - 40 - sq_x;
        let longest = rows
            .iter()
            .map(|c| c.count.min(MAX_SQUARES / 2) as i32)
            .max()
            .unwrap_or(1)
            .max(1);
        let square = ((avail + GAP) / longest - GAP).clamp(30, 44);
        let per_line = ((avail + GAP) / (square + GAP)).max(1);
        Grid {
            sq_x,
            avail,
            square,
            per_line,
        }
    }

    /// A count's number and its squares (its part's first, in the second
    /// colour), or a bar with the part's share when too many to count.
    fn draw_count(
        &self,
        c: &Canvas,
        cnt: &Count,
        part: Option<&Count>,
        top: i32,
    ) -> Result<(), ChartError> {
        let (sq_x, square) = (self.sq_x, self.square);
        // The number, centred on the first line of squares.
        c.text(
            &cnt.count.to_string(),
            (sq_x - 22, top + square / 2 + 20),
            NUMBER_SIZE,
            true,
            colors::PRIMARY,
            Align::Right,
        )?;
        if cnt.count <= MAX_SQUARES {
            for s in 0..cnt.count as i32 {
                let (line, col) = (s / self.per_line, s % self.per_line);
                let x = sq_x + col * (square + GAP);
                let y = top + line * (square + GAP);
                let in_part = part.is_some_and(|p| (s as u64) < p.count);
                c.fill(
                    (x, y),
                    (x + square, y + square),
                    if in_part {
                        colors::SECOND
                    } else {
                        colors::PRIMARY
                    },
                )?;
            }
        } else {
            // Too many to count: a bar, with the part's share.
            let avail = self.avail;
            c.fill((sq_x, top), (sq_x + avail, top + square), colors::PRIMARY)?;
            if let Some(p) = part {
                let pw =
                    (f64::from(avail) * p.count as f64 / cnt.count.max(1) as f64).round() as i32;
                c.fill((sq_x, top), (sq_x + pw, top + square), colors::SECOND)?;
            }
        }
        Ok(())
    }

    /// A row's label under its squares, and the legend of its part.
    fn draw_caption(&self, c: &Canvas, lay: &Layout, top: i32) -> Result<(), ChartError> {
        let sq_x = self.sq_x;
        let sq_h = lay.lines * (self.square + GAP) - GAP;
        let mut y = top + sq_h + 30;
        c.text(
            &lay.label,
            (sq_x, y),
            LABEL_SIZE,
            false,
            colors::INK,
            Align::Left,
        )?;
        if !lay.legend.is_empty() {
            y += 10;
            c.fill((sq_x, y + 28 - 17), (sq_x + 18, y + 28 + 1), colors::SECOND)?;
            for l in &lay.legend {
                y += 28;
                c.text(
                    l,
                    (sq_x + 28, y),
                    LEGEND_SIZE,
                    true,
                    colors::SECOND,
                    Align::Left,
                )?;
            }
        }
        Ok(())
    }
}

/// A row laid out before drawing.
struct Layout {
    /// Lines of squares.
    lines: i32,
    label: String,
    /// The part's legend, wrapped (empty without a part).
    legend: Vec<String>,
}

impl Layout {
    /// The row's height: squares, label, legend.
    fn height(&self, grid: &Grid) -> i32 {
        self.lines * (grid.square + GAP) - GAP
            + 36
            + if self.legend.is_empty() {
                0
            } else {
                10 + 28 * self.legend.len() as i32
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_plurals() {
        let forms: Vec<usize> = [1, 2, 5, 11, 12, 21, 22, 25, 111, 13, 7]
            .map(ru_form)
            .to_vec();
        assert_eq!(forms, vec![0, 1, 2, 2, 2, 0, 1, 2, 2, 2, 2]);
    }
}
