//! The milestones chart: the integration timeline on a proportional time
//! axis, one row per dated milestone, with the visit marked across it.
//!
//! A row shows its date's precision honestly: a date known to the year is a
//! bar across that year, a span (2010–2012) a bar across the span, a month
//! or a day a dot; a milestone after the visit (the 2015 target) is a ring,
//! still to come. Labels sit above their marks, moved left where they would
//! run off the picture, so long Russian titles never overlap.

use super::draw::{colors, Align, Canvas};
use std::sync::Arc;

use super::{font, Body, ChartError, FactSource, Text, SCAN};
use crate::facts::{Fact, Lang, PartialDate, Topic, Value};

/// Rows drawn at most (the topic view lists as many).
const MAX_ROWS: usize = 12;

pub(super) fn draws(f: &Fact) -> bool {
    (f.topic == Topic::Milestones && f.date.is_some()) || is_visit(f)
}

/// The visit's own dated fact: stated, in the visit topic, with a date
/// value known to the day.
fn is_visit(f: &Fact) -> bool {
    f.topic == Topic::Visit && !f.is_derived() && visit_span(f).is_some()
}

fn visit_span(f: &Fact) -> Option<(PartialDate, Option<PartialDate>)> {
    f.values.iter().find_map(|v| match v {
        Value::Date { date, until } if date.day.is_some() => Some((*date, *until)),
        _ => None,
    })
}

struct Row {
    fact: Arc<Fact>,
    date: PartialDate,
    until: Option<PartialDate>,
}

pub(super) struct Data {
    rows: Vec<Row>,
    /// The visit's fact, and its dates (from, until).
    visit_fact: Option<Arc<Fact>>,
    visit: Option<(PartialDate, Option<PartialDate>)>,
}

/// A date's start as a fractional year.
fn start(d: PartialDate) -> f64 {
    let m = f64::from(d.month.unwrap_or(1).clamp(1, 12) - 1);
    let day = f64::from(d.day.unwrap_or(1).clamp(1, 31) - 1);
    f64::from(d.year) + m / 12.0 + day / 365.25
}

/// The end of the period a date names (its year, month or day).
fn end(d: PartialDate) -> f64 {
    match (d.month, d.day) {
        (None, _) => f64::from(d.year) + 1.0,
        (Some(_), None) => start(d) + 1.0 / 12.0,
        (Some(_), Some(_)) => start(d) + 1.0 / 365.25,
    }
}

/// "9–10 November 2012" for a span within a month, else "A – B".
fn span_label(date: PartialDate, until: Option<PartialDate>, lang: Lang) -> String {
    match until {
        None => date.display(lang),
        Some(u)
            if u.year == date.year
                && u.month == date.month
                && date.day.is_some()
                && u.day.is_some() =>
        {
            let tail = u.display(lang);
            let (_, rest) = tail.split_once(' ').unwrap_or(("", &tail));
            format!("{}–{} {rest}", date.day.unwrap_or(1), u.day.unwrap_or(1))
        }
        Some(u) if date.month.is_none() && u.month.is_none() => format!("{}–{}", date.year, u.year),
        Some(u) => format!("{} – {}", date.display(lang), u.display(lang)),
    }
}

/// A title without the date it repeats: "… (January 2012)" and "… к 1
/// января 2015" lose the date, since the row shows it.
fn bare_title(title: &str, date: PartialDate, lang: Lang) -> String {
    let t = title.trim();
    if let Some(open) = t.rfind(" (") {
        if t.ends_with(')') && t[open..].chars().any(|c| c.is_ascii_digit()) {
            return t[..open].trim_end().to_string();
        }
    }
    let shown = date.display(lang);
    if let Some(head) = t.strip_suffix(shown.as_str()) {
        let head = head.trim_end();
        for prep in [" к", " в", " by", " in", " on"] {
            if let Some(h) = head.strip_suffix(prep) {
                return h.trim_end().to_string();
            }
        }
        return head.to_string();
    }
    t.to_string()
}

impl Data {
    pub(super) fn extract(src: &dyn FactSource) -> Result<Data, ChartError> {
        let mut rows: Vec<Row> = src
            .topic_facts(Topic::Milestones, SCAN)
            .filter_map(|f| {
                let date = f.date?;
                // The date value carries the span, if any.
                let until = f.values.iter().find_map(|v| match v {
                    Value::Date { date: d, until } if *d == date => *until,
                    _ => None,
                });
                Some(Row {
                    fact: f,
                    date,
                    until,
                })
            })
            .take(MAX_ROWS)
            .collect();
        if rows.is_empty() {
            return Err(ChartError::Missing("dated milestones"));
        }
        rows.sort_by_key(|r| (r.date, r.fact.order));
        let visit_fact = src.topic_facts(Topic::Visit, SCAN).find(|f| is_visit(f));
        let visit = visit_fact.as_deref().and_then(visit_span);
        Ok(Data {
            rows,
            visit_fact,
            visit,
        })
    }

    pub(super) fn facts(&self) -> Vec<Arc<Fact>> {
        let mut v: Vec<Arc<Fact>> = self.rows.iter().map(|r| Arc::clone(&r.fact)).collect();
        v.extend(self.visit_fact.clone());
        v
    }

    fn range(&self) -> (i32, i32) {
        let mut lo = i32::MAX;
        let mut hi = i32::MIN;
        for r in &self.rows {
            lo = lo.min(r.date.year);
            hi = hi.max(r.until.unwrap_or(r.date).year);
        }
        if let Some((d, u)) = self.visit {
            lo = lo.min(d.year);
            hi = hi.max(u.unwrap_or(d).year);
        }
        (lo, hi.max(lo))
    }

    /// Whether a milestone comes after the visit (a plan, not yet done).
    fn planned(&self, r: &Row) -> bool {
        self.visit.is_some_and(|(d, _)| r.date > d)
    }

    pub(super) fn text(&self, lang: Lang) -> Text {
        let (lo, hi) = self.range();
        let title = format!("{}, {lo} → {hi}", Topic::Milestones.title(lang));
        let subtitle = match (self.visit, lang) {
            (Some((d, u)), Lang::En) => format!(
                "The visit of {} is marked in orange; a ring is a target still ahead",
                span_label(d, u, lang)
            ),
            (Some((d, u)), Lang::Ru) => format!(
                "Оранжевым отмечен визит {}; кольцо — цель, которая ещё впереди",
                span_label(d, u, lang)
            ),
            (None, Lang::En) => "Dated milestones of Eurasian integration".into(),
            (None, Lang::Ru) => "Этапы евразийской интеграции по датам".into(),
        };
        let items: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                format!(
                    "{}: {}",
                    span_label(r.date, r.until, lang),
                    bare_title(r.fact.title.get(lang), r.date, lang)
                )
            })
            .collect();
        let visit = self.visit.map(|(d, u)| match lang {
            Lang::En => format!("the visit: {}", span_label(d, u, lang)),
            Lang::Ru => format!("визит: {}", span_label(d, u, lang)),
        });
        let mut summary = items.clone();
        summary.extend(visit.clone());
        let alt = match lang {
            Lang::En => format!(
                "Timeline, {lo} to {hi}: {}.{}",
                items.join("; "),
                visit.map(|v| format!(" Marked: {v}.")).unwrap_or_default()
            ),
            Lang::Ru => format!(
                "Хронология, {lo}–{hi}: {}.{}",
                items.join("; "),
                visit.map(|v| format!(" Отмечен {v}.")).unwrap_or_default()
            ),
        };
        Text {
            title,
            subtitle,
            summary: summary.join(" · "),
            alt,
        }
    }

    /// Where a row's mark goes, in fractional years: a span or a year as
    /// (start, end), a month or a day as one point.
    fn mark(r: &Row) -> (f64, f64) {
        match r.until {
            Some(u) => (start(r.date), end(u)),
            None if r.date.month.is_none() => (start(r.date), end(r.date)),
            None => {
                let t = (start(r.date) + end(r.date)) / 2.0;
                (t, t)
            }
        }
    }

    pub(super) fn draw(&self, lang: Lang, c: &Canvas, body: Body) -> Result<(), ChartError> {
        let frame = self.frame(body);
        frame.draw_years(c)?;
        // Rows laid out first: the visit band must not strike through labels.
        let placed = self.place(lang, &frame, body);
        if let Some((d, u)) = self.visit {
            draw_visit(c, lang, &frame, body, &placed, (d, u))?;
        }
        self.draw_rows(c, &placed)
    }

    /// The axis runs from the first year to a little after the last mark.
    fn frame(&self, body: Body) -> Frame {
        let (lo, _) = self.range();
        let last = self
            .rows
            .iter()
            .map(|r| Self::mark(r).1)
            .chain(self.visit.map(|(d, u)| end(u.unwrap_or(d))))
            .fold(f64::from(lo) + 1.0, f64::max);
        Frame {
            lo,
            t: (f64::from(lo), last + 0.35),
            x: (body.left + 30, body.right - 30),
            axis_y: body.bottom - 34,
            rows_top: body.top + 44,
        }
    }

    /// Each row's mark and label, laid out: a label above its mark from the
    /// mark's start, moved left if it would run off the picture.
    fn place(&self, lang: Lang, frame: &Frame, body: Body) -> Vec<Placed> {
        let n = self.rows.len() as i32;
        let row_h = ((frame.axis_y - 12 - frame.rows_top) / n.max(1)).min(66);
        let sep_w = font::width(SEP, LABEL_SIZE, false);
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mark_y = frame.rows_top + row_h * i as i32 + row_h - 18;
                let (ta, tb) = Self::mark(r);
                let date = span_label(r.date, r.until, lang);
                let date_w = font::width(&date, LABEL_SIZE, true);
                let room = f64::from(body.right - body.left) - date_w - sep_w;
                let title = font::fit(
                    &bare_title(r.fact.title.get(lang), r.date, lang),
                    room,
                    LABEL_SIZE,
                    false,
                );
                let width =
                    (date_w + sep_w + font::width(&title, LABEL_SIZE, false)).round() as i32;
                let a = frame.x_of(ta);
                // Above the mark from its start, moved left if it would run
                // off the picture.
                let x = (a - 10).min(body.right - width).max(body.left);
                Placed {
                    mark_y,
                    span: (a, frame.x_of(tb)),
                    date,
                    title,
                    x,
                    width,
                }
            })
            .collect()
    }

    /// Each row's mark (a bar, a dot, a ring if still to come) and label.
    fn draw_rows(&self, c: &Canvas, placed: &[Placed]) -> Result<(), ChartError> {
        let sep_w = font::width(SEP, LABEL_SIZE, false);
        for (r, p) in self.rows.iter().zip(placed) {
            let planned = self.planned(r);
            let (a, b) = p.span;
            if b > a {
                let (a, b) = (a + 2, b - 2);
                c.fill(
                    (a, p.mark_y - 8),
                    (b, p.mark_y + 8),
                    if planned {
                        colors::PALE
                    } else {
                        colors::PRIMARY
                    },
                )?;
            } else if planned {
                c.disc((a, p.mark_y), 11, colors::PRIMARY)?;
                c.disc((a, p.mark_y), 6, colors::BACKGROUND)?;
            } else {
                c.disc((a, p.mark_y), 10, colors::PRIMARY)?;
            }
            let ly = p.mark_y - 20;
            let dx = c.text(
                &p.date,
                (p.x, ly),
                LABEL_SIZE,
                true,
                if planned { colors::MUTED } else { colors::INK },
                Align::Left,
            )?;
            c.text(
                &p.title,
                (p.x + dx + sep_w.round() as i32, ly),
                LABEL_SIZE,
                false,
                colors::INK,
                Align::Left,
            )?;
        }
        Ok(())
    }
}

const LABEL_SIZE: f64 = 20.0;
const YEAR_SIZE: f64 = 20.0;
/// Between a row's date and its title.
const SEP: &str = "  ";

/// The time axis and where things sit on the picture.
struct Frame {
    /// The first year shown.
    lo: i32,
    /// The axis's span in fractional years (from, to) …
    t: (f64, f64),
    /// … and in pixels.
    x: (i32, i32),
    axis_y: i32,
    rows_top: i32,
}

impl Frame {
    /// The pixel column of a fractional year.
    fn x_of(&self, t: f64) -> i32 {
        let ((t0, t1), (x0, x1)) = (self.t, self.x);
        x0 + (((t - t0) / (t1 - t0)) * f64::from(x1 - x0)).round() as i32
    }

    /// Years (or steps of years on a long axis): every other one shaded,
    /// a tick and label at each 1 January; then the axis line.
    fn draw_years(&self, c: &Canvas) -> Result<(), ChartError> {
        let (lo, (x0, x1), axis_y) = (self.lo, self.x, self.axis_y);
        let last_year = self.t.1.floor() as i32;
        let label_every = ((last_year - lo) / 12 + 1).max(1);
        for y in (lo..=last_year).step_by(label_every as usize) {
            let (a, b) = (
                self.x_of(f64::from(y)),
                self.x_of(f64::from(y.saturating_add(label_every))).min(x1),
            );
            if (y - lo) / label_every % 2 == 1 && b > a {
                c.fill((a, self.rows_top - 8), (b, axis_y), colors::ZEBRA)?;
            }
            c.fill((a, axis_y), (a, axis_y + 8), colors::AXIS)?;
            c.text(
                &y.to_string(),
                (a, axis_y + 30),
                YEAR_SIZE,
                false,
                colors::MUTED,
                Align::Center,
            )?;
        }
        c.fill((x0, axis_y), (x1, axis_y + 1), colors::AXIS)?;
        Ok(())
    }
}

/// A row laid out: where its mark and its label go.
struct Placed {
    mark_y: i32,
    /// The mark's pixel columns (equal for a point).
    span: (i32, i32),
    date: String,
    title: String,
    /// The label's left edge and width.
    x: i32,
    width: i32,
}

/// The visit: a band from the top to the axis, with gaps where labels
/// sit, and its label above.
fn draw_visit(
    c: &Canvas,
    lang: Lang,
    frame: &Frame,
    body: Body,
    placed: &[Placed],
    (d, u): (PartialDate, Option<PartialDate>),
) -> Result<(), ChartError> {
    let (a, b) = (frame.x_of(start(d)), frame.x_of(end(u.unwrap_or(d))));
    let (a, b) = if b - a < 4 {
        ((a + b) / 2 - 2, (a + b) / 2 + 2)
    } else {
        (a, b)
    };
    // The band from top to axis, with gaps where labels sit.
    let mut y = frame.rows_top - 14;
    for p in placed {
        let (ly0, ly1) = (p.mark_y - 20 - 19, p.mark_y - 20 + 6);
        if p.x - 4 <= b && a <= p.x + p.width + 4 {
            if ly0 > y {
                c.fill((a, y), (b, ly0), colors::ACCENT)?;
            }
            y = ly1;
        }
    }
    c.fill((a, y), (b, frame.axis_y), colors::ACCENT)?;
    let label = match lang {
        Lang::En => format!("Visit, {}", span_label(d, u, lang)),
        Lang::Ru => format!("Визит, {}", span_label(d, u, lang)),
    };
    let w = font::width(&label, LABEL_SIZE, true).round() as i32;
    let cx = ((a + b) / 2).clamp(body.left + w / 2, body.right - w / 2);
    c.text(
        &label,
        (cx, body.top + 22),
        LABEL_SIZE,
        true,
        colors::ACCENT,
        Align::Center,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> PartialDate {
        s.parse().unwrap()
    }

    #[test]
    fn dates_place_and_name_their_precision() {
        assert_eq!(start(d("2012")), 2012.0);
        assert_eq!(end(d("2012")), 2013.0);
        assert!((start(d("2012-07")) - 2012.5).abs() < 1e-9);
        assert_eq!(
            span_label(d("2012-11-09"), Some(d("2012-11-10")), Lang::En),
            "9–10 November 2012"
        );
        assert_eq!(
            span_label(d("2012-11-09"), Some(d("2012-11-10")), Lang::Ru),
            "9–10 ноября 2012"
        );
        assert_eq!(
            span_label(d("2010"), Some(d("2012")), Lang::En),
            "2010–2012"
        );
    }

    #[test]
    fn titles_lose_the_date_they_repeat() {
        assert_eq!(
            bare_title(
                "Single Economic Space launched (January 2012)",
                d("2012-01"),
                Lang::En
            ),
            "Single Economic Space launched"
        );
        assert_eq!(
            bare_title(
                "Цель — Евразийский экономический союз к 1 января 2015",
                d("2015-01-01"),
                Lang::Ru
            ),
            "Цель — Евразийский экономический союз"
        );
        assert_eq!(
            bare_title("Plain (no date)", d("2012"), Lang::En),
            "Plain (no date)"
        );
    }
}
