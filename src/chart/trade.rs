//! The trade chart: turnover as bars, one per trade fact with an amount
//! (2011, H1 2012, and the implied H1 2011), ordered by period.
//!
//! A derived fact is drawn so nobody mistakes it for a reported figure:
//! pale, hatched, dashed outline, "derived" under its label — and when it
//! has two values (the two readings of "+116%"), as two such bars side by
//! side, each saying which reading it is. The growth percentage, when the
//! dataset states one, joins the derived bar to the bar it was derived from.

use super::draw::{colors, Align, Canvas};
use super::{
    font, in_unit, money_unit, period_label, unit_for, Body, ChartError, FactSource, Text, SCAN,
};
use std::sync::Arc;

use crate::facts::{Fact, Lang, Topic, Value};

/// Bars drawn at most (a store with many trade figures shows the first in
/// reading order; the text answers list them all).
const MAX_BARS: usize = 6;

pub(super) fn draws(f: &Fact) -> bool {
    f.topic == Topic::Trade
        && f.values
            .iter()
            .any(|v| matches!(v, Value::Amount { .. } | Value::Percent { .. }))
}

struct Bar {
    fact: Arc<Fact>,
    period: String,
    /// One value, or a derived fact's alternative readings, ascending.
    amounts: Vec<u64>,
}

pub(super) struct Data {
    bars: Vec<Bar>,
    currency: String,
    /// The stated growth (percent) a derived bar rests on, and its fact.
    growth: Option<(Arc<Fact>, f64)>,
    unit: f64,
}

impl Data {
    pub(super) fn extract(src: &dyn FactSource) -> Result<Data, ChartError> {
        let facts: Vec<Arc<Fact>> = src.topic_facts(Topic::Trade, SCAN).collect();
        let mut currency = None;
        let mut bars: Vec<Bar> = Vec::new();
        for f in &facts {
            let mut amounts = Vec::new();
            let mut period = None;
            for v in &f.values {
                if let Value::Amount {
                    amount,
                    currency: c,
                    period: p,
                } = v
                {
                    // One currency per chart: the first one found.
                    if currency.get_or_insert_with(|| c.clone()) == c
                        && period.get_or_insert_with(|| p.clone()) == p
                    {
                        amounts.push(*amount);
                    }
                }
            }
            if let Some(period) = period.filter(|_| !amounts.is_empty()) {
                amounts.sort_unstable();
                amounts.dedup();
                bars.push(Bar {
                    fact: Arc::clone(f),
                    period,
                    amounts,
                });
            }
            if bars.len() == MAX_BARS {
                break;
            }
        }
        if bars.is_empty() {
            return Err(ChartError::Missing("trade figures"));
        }
        bars.sort_by(|a, b| a.period.cmp(&b.period));
        let growth = facts.iter().find_map(|f| {
            f.values.iter().find_map(|v| match v {
                Value::Percent { percent } if percent.is_finite() => {
                    Some((Arc::clone(f), *percent))
                }
                _ => None,
            })
        });
        let max = bars
            .iter()
            .flat_map(|b| b.amounts.iter().copied())
            .max()
            .unwrap_or(0);
        Ok(Data {
            bars,
            currency: currency.unwrap_or_default(),
            growth,
            unit: unit_for(max),
        })
    }

    pub(super) fn facts(&self) -> Vec<Arc<Fact>> {
        let mut v: Vec<Arc<Fact>> = self.bars.iter().map(|b| Arc::clone(&b.fact)).collect();
        if let Some((f, _)) = &self.growth {
            v.push(Arc::clone(f));
        }
        v
    }

    /// The growth as the article writes it: "+116%".
    fn growth_label(&self) -> Option<String> {
        self.growth
            .as_ref()
            .map(|(_, p)| format!("+{}%", trim_num(*p)))
    }

    /// Whether `bar` is the derived one the growth figure explains (it has
    /// two readings and rests on the growth fact).
    fn explained_by_growth(&self, bar: &Bar) -> bool {
        match (&bar.fact.derivation, &self.growth) {
            (Some(d), Some((g, _))) => bar.amounts.len() == 2 && d.from.contains(&g.id),
            _ => false,
        }
    }

    /// The stated bar a derived one was derived from (for the growth arrow).
    fn base_of(&self, bar: &Bar) -> Option<usize> {
        let d = bar.fact.derivation.as_ref()?;
        self.bars
            .iter()
            .position(|b| !b.fact.is_derived() && d.from.contains(&b.fact.id))
    }

    /// What each of a derived bar's two readings means, lower first.
    fn readings(&self, lang: Lang) -> [String; 2] {
        let p = self
            .growth
            .as_ref()
            .map(|(_, p)| trim_num(*p))
            .unwrap_or_default();
        match lang {
            Lang::En => [format!("if it grew by {p}%"), format!("if {p}% of it")],
            Lang::Ru => [format!("если рост на {p}%"), format!("если {p}% от него")],
        }
    }

    /// The readings in full, for the alt text: "if trade grew by 116%",
    /// "if 479 is 116% of it" (`base`: the figure the growth was reported
    /// for).
    fn readings_long(&self, lang: Lang, base: Option<&str>) -> [String; 2] {
        let p = self
            .growth
            .as_ref()
            .map(|(_, p)| trim_num(*p))
            .unwrap_or_default();
        let base = base.unwrap_or("the later figure");
        match lang {
            Lang::En => [
                format!("if trade grew by {p}%"),
                format!("if {base} is {p}% of it"),
            ],
            Lang::Ru => [
                format!("если товарооборот вырос на {p}%"),
                format!("если {base} — это {p}% от него"),
            ],
        }
    }

    fn amount(&self, a: u64) -> String {
        in_unit(a, self.unit)
    }

    pub(super) fn text(&self, lang: Lang) -> Text {
        let unit = money_unit(&self.currency, self.unit, lang);
        let title = match lang {
            Lang::En => format!("Belarus–Kazakhstan trade turnover, {unit}"),
            Lang::Ru => format!("Товарооборот Беларуси и Казахстана, {unit}"),
        };
        let mut summary = Vec::new();
        let mut alt = vec![match lang {
            Lang::En => format!("Bar chart: Belarus–Kazakhstan trade turnover, {unit}."),
            Lang::Ru => {
                format!("Столбчатая диаграмма: товарооборот Беларуси и Казахстана, {unit}.")
            }
        }];
        let bases: Vec<usize> = self
            .bars
            .iter()
            .filter(|d| self.explained_by_growth(d))
            .filter_map(|d| self.base_of(d))
            .collect();
        for (i, b) in self.bars.iter().enumerate() {
            let (s, a) = if b.fact.is_derived() {
                self.derived_text(b, lang)
            } else {
                self.stated_text(b, bases.contains(&i), lang)
            };
            summary.push(s);
            alt.push(a);
        }
        Text {
            title,
            subtitle: self.subtitle(lang),
            summary: summary.join(" · "),
            alt: alt.join(" "),
        }
    }

    /// What the bars are: reported, or which one is derived and from what.
    fn subtitle(&self, lang: Lang) -> String {
        let derived = self.bars.iter().find(|b| b.fact.is_derived());
        match (derived, self.growth_label(), lang) {
            (Some(b), Some(g), Lang::En) => format!(
                "{} is not in the article: derived from “{g}”, which reads two ways (hatched)",
                period_label(&b.period, lang)
            ),
            (Some(b), Some(g), Lang::Ru) => format!(
                "{} в статье нет: это расчёт из «{g}», который читается двояко (штриховка)",
                period_label(&b.period, lang)
            ),
            (Some(_), None, Lang::En) => {
                "Hatched bars are derived, not stated in the article".into()
            }
            (Some(_), None, Lang::Ru) => "Штриховка — расчёт, а не данные статьи".into(),
            (None, _, Lang::En) => "As reported in the article".into(),
            (None, _, Lang::Ru) => "По данным статьи".into(),
        }
    }

    /// A derived bar's summary item and alt-text sentence: its values, and
    /// what each reading means.
    fn derived_text(&self, b: &Bar, lang: Lang) -> (String, String) {
        let period = period_label(&b.period, lang);
        let values: Vec<String> = b.amounts.iter().map(|&a| self.amount(a)).collect();
        let two = self.explained_by_growth(b);
        let base = self
            .base_of(b)
            .and_then(|j| self.bars[j].amounts.first())
            .map(|&a| self.amount(a));
        let readings = self.readings_long(lang, base.as_deref());
        let summary = match lang {
            Lang::En => format!("{period} (derived): ≈{}", values.join(" or ≈")),
            Lang::Ru => format!("{period} (расчёт): ≈{}", values.join(" или ≈")),
        };
        let alt = match (lang, two) {
            (Lang::En, true) => format!(
                "{period}: not stated in the article; derived: about {} ({}) or about {} ({}).",
                values[0], readings[0], values[1], readings[1]
            ),
            (Lang::Ru, true) => format!(
                "{period}: в статье не указано; расчёт: около {} ({}) или около {} ({}).",
                values[0], readings[0], values[1], readings[1]
            ),
            (Lang::En, false) => format!(
                "{period}: not stated in the article; derived: about {}.",
                values.join(" or about ")
            ),
            (Lang::Ru, false) => format!(
                "{period}: в статье не указано; расчёт: около {}.",
                values.join(" или около ")
            ),
        };
        (summary, alt)
    }

    /// A stated bar's summary item and alt-text sentence, with the growth
    /// when it was reported for this bar (`is_base`).
    fn stated_text(&self, b: &Bar, is_base: bool, lang: Lang) -> (String, String) {
        let period = period_label(&b.period, lang);
        let values: Vec<String> = b.amounts.iter().map(|&a| self.amount(a)).collect();
        let growth = self.growth_label().filter(|_| is_base);
        let summary = match &growth {
            Some(g) => format!("{period}: {} ({g})", values.join("/")),
            None => format!("{period}: {}", values.join("/")),
        };
        let alt = match (&growth, lang) {
            (Some(g), Lang::En) => format!(
                "{period}: {}, reported as {g} on the same period a year earlier.",
                values.join("/")
            ),
            (Some(g), Lang::Ru) => format!(
                "{period}: {}, по статье {g} к тому же периоду годом раньше.",
                values.join("/")
            ),
            (None, _) => format!("{period}: {}.", values.join("/")),
        };
        (summary, alt)
    }

    pub(super) fn draw(&self, lang: Lang, c: &Canvas, body: Body) -> Result<(), ChartError> {
        let plot = self.plot(body);
        plot.draw_grid(c)?;
        let n = self.bars.len() as i32;
        let slot = (plot.x1 - plot.x0) / n.max(1);
        let mut tops = Vec::new();
        for (i, b) in self.bars.iter().enumerate() {
            let cx = plot.x0 + slot * i as i32 + slot / 2;
            draw_period(c, lang, &plot, b, cx, slot)?;
            tops.push((cx, self.draw_bar(c, lang, &plot, b, cx, slot)?));
        }
        if let Some(g) = self.growth_label() {
            self.draw_growth(c, body, &g, &tops)?;
        }
        Ok(())
    }

    /// The plot box (room for axis labels on the left, period labels
    /// below) and a round value axis over the largest bar.
    fn plot(&self, body: Body) -> Plot {
        let max = self
            .bars
            .iter()
            .flat_map(|b| b.amounts.iter().copied())
            .max()
            .unwrap_or(1) as f64
            / self.unit;
        let (step, top_value) = nice_axis(max * 1.18);
        Plot {
            step,
            top_value,
            x0: body.left + 70,
            x1: body.right - 10,
            y_top: body.top + 30,
            y_base: body.bottom - 78,
        }
    }

    /// A bar (or a derived bar's two readings side by side) with its value
    /// above; returns the highest point drawn, where the growth bracket
    /// may start.
    fn draw_bar(
        &self,
        c: &Canvas,
        lang: Lang,
        plot: &Plot,
        b: &Bar,
        cx: i32,
        slot: i32,
    ) -> Result<i32, ChartError> {
        let y_base = plot.y_base;
        let bar_w = (slot * 11 / 20).min(220);
        let k = b.amounts.len() as i32;
        let gap = 14;
        let sub_w = (bar_w - gap * (k - 1)) / k.max(1);
        let readings = self.readings(lang);
        let two = self.explained_by_growth(b);
        let mut top_y = y_base;
        for (j, &a) in b.amounts.iter().enumerate() {
            let left = cx - bar_w / 2 + (sub_w + gap) * j as i32;
            let right = left + sub_w;
            let y = plot.y_of(a as f64 / self.unit);
            top_y = top_y.min(y);
            if !b.fact.is_derived() {
                c.fill((left, y), (right, y_base - 1), colors::PRIMARY)?;
                c.text(
                    &self.amount(a),
                    ((left + right) / 2, y - 10),
                    VALUE_SIZE,
                    true,
                    colors::INK,
                    Align::Center,
                )?;
                top_y = top_y.min(y - 10 - 26);
                continue;
            }
            c.fill((left, y), (right, y_base - 1), colors::PALE)?;
            c.hatch((left, y), (right, y_base - 1), 12, 2, colors::HATCH)?;
            c.dashed_box((left, y), (right, y_base), 3, colors::PRIMARY)?;
            let value = format!("≈{}", self.amount(a));
            let reading = two.then(|| (readings[j.min(1)].as_str(), sub_w + gap));
            let vy = draw_derived_value(c, &value, reading, (left + right) / 2, y)?;
            top_y = top_y.min(vy - 26);
        }
        Ok(top_y)
    }

    /// The growth: a bracket from the derived bar to the one it rests on.
    fn draw_growth(
        &self,
        c: &Canvas,
        body: Body,
        g: &str,
        tops: &[(i32, i32)],
    ) -> Result<(), ChartError> {
        for (i, b) in self.bars.iter().enumerate() {
            if !self.explained_by_growth(b) {
                continue;
            }
            let Some(j) = self.base_of(b) else { continue };
            let ((xa, ta), (xb, tb)) = (tops[i], tops[j]);
            let y = ta.min(tb) - 30;
            if y < body.top {
                continue;
            }
            c.line((xa, ta - 8), (xa, y), 2, colors::ACCENT)?;
            c.line((xa, y), (xb, y), 2, colors::ACCENT)?;
            c.line((xb, y), (xb, tb - 8), 2, colors::ACCENT)?;
            // Arrow head at the bar the growth was reported for.
            c.polygon(
                vec![(xb - 7, tb - 18), (xb + 7, tb - 18), (xb, tb - 6)],
                colors::ACCENT,
            )?;
            let mid = (xa + xb) / 2;
            let w = font::width(g, 22.0, true).round() as i32;
            c.fill(
                (mid - w / 2 - 10, y - 16),
                (mid + w / 2 + 10, y + 14),
                colors::BACKGROUND,
            )?;
            c.outline(
                (mid - w / 2 - 10, y - 16),
                (mid + w / 2 + 10, y + 14),
                2,
                colors::ACCENT,
            )?;
            c.text(g, (mid, y + 8), 22.0, true, colors::ACCENT, Align::Center)?;
        }
        Ok(())
    }
}

const VALUE_SIZE: f64 = 26.0;
const READING_SIZE: f64 = 18.0;
const LABEL_SIZE: f64 = 22.0;
const NOTE_SIZE: f64 = 18.0;

/// The plot box and its value axis.
struct Plot {
    /// The value axis: a gridline every `step` up to `top_value`.
    step: f64,
    top_value: f64,
    x0: i32,
    x1: i32,
    y_top: i32,
    /// The bars' base line.
    y_base: i32,
}

impl Plot {
    /// The pixel row of a value.
    fn y_of(&self, v: f64) -> i32 {
        self.y_base - ((v / self.top_value) * f64::from(self.y_base - self.y_top)).round() as i32
    }

    /// Grid and axis labels.
    fn draw_grid(&self, c: &Canvas) -> Result<(), ChartError> {
        let mut v = 0.0;
        while v <= self.top_value + 1e-9 {
            let y = self.y_of(v);
            c.fill(
                (self.x0, y),
                (self.x1, y),
                if v == 0.0 { colors::AXIS } else { colors::GRID },
            )?;
            c.text(
                &trim_num(v),
                (self.x0 - 12, y + 7),
                19.0,
                false,
                colors::MUTED,
                Align::Right,
            )?;
            v += self.step;
        }
        Ok(())
    }
}

/// A bar's period under it, and "derived" under that for a derived bar.
fn draw_period(
    c: &Canvas,
    lang: Lang,
    plot: &Plot,
    b: &Bar,
    cx: i32,
    slot: i32,
) -> Result<(), ChartError> {
    let label = font::fit(
        &period_label(&b.period, lang),
        f64::from(slot - 12),
        LABEL_SIZE,
        true,
    );
    c.text(
        &label,
        (cx, plot.y_base + 34),
        LABEL_SIZE,
        true,
        colors::INK,
        Align::Center,
    )?;
    if b.fact.is_derived() {
        let note = match lang {
            Lang::En => "derived, not stated",
            Lang::Ru => "расчёт, нет в статье",
        };
        c.text(
            note,
            (cx, plot.y_base + 62),
            NOTE_SIZE,
            false,
            colors::ACCENT,
            Align::Center,
        )?;
    }
    Ok(())
}

/// A derived bar's "≈value" above its top `y`, with the reading it stands
/// for (text, room) wrapped between them when there are two; returns the
/// value's baseline.
fn draw_derived_value(
    c: &Canvas,
    value: &str,
    reading: Option<(&str, i32)>,
    x: i32,
    y: i32,
) -> Result<i32, ChartError> {
    let Some((reading, room)) = reading else {
        c.text(
            value,
            (x, y - 10),
            VALUE_SIZE,
            true,
            colors::PRIMARY,
            Align::Center,
        )?;
        return Ok(y - 10);
    };
    let lines = font::wrap(reading, f64::from(room), READING_SIZE, false, 2);
    let n = lines.len() as i32;
    for (k, l) in lines.iter().enumerate() {
        let ly = y - 10 - 21 * (n - 1 - k as i32);
        c.text(
            l,
            (x, ly),
            READING_SIZE,
            false,
            colors::MUTED,
            Align::Center,
        )?;
    }
    let vy = y - 10 - 21 * n - 8;
    c.text(
        value,
        (x, vy),
        VALUE_SIZE,
        true,
        colors::PRIMARY,
        Align::Center,
    )?;
    Ok(vy)
}

/// A round axis step and top for values up to `max` (4–7 gridlines).
fn nice_axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (step, (max / step).ceil() * step)
}

/// 116.0 → "116", 2.5 → "2.5".
fn trim_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round() {
        assert_eq!(nice_axis(907.0), (200.0, 1000.0));
        assert_eq!(nice_axis(1.0), (0.2, 1.0));
        assert_eq!(nice_axis(f64::NAN), (0.2, 1.0));
        assert_eq!(trim_num(116.0), "116");
        assert_eq!(trim_num(2.5), "2.5");
    }
}
