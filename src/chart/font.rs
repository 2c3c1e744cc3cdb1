//! The font every chart draws with, built into the binary.
//!
//! Hosts often have no fonts at all (containers, minimal servers), and
//! plotters' `ttf` feature would look them up through font-kit and
//! fontconfig. So DejaVu Sans (regular and bold, from Debian's
//! `fonts-dejavu-core` 2.37; licence in `data/fonts/LICENSE-DejaVu.txt`) is
//! embedded and read from bytes with `ab_glyph`, which measures labels for
//! layout, rasterises them (see `draw` for why not through plotters' own
//! text) and answers whether a character has a glyph, so a label never
//! shows a missing-glyph box: characters the font lacks become `?`. It
//! covers Latin, Cyrillic and the punctuation the labels use (–, →, ≈, ¶,
//! «», “”).

use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, ScaleFont};

/// DejaVu Sans 2.37 (Debian `fonts-dejavu-core`), 760 KB.
pub static REGULAR_TTF: &[u8] = include_bytes!("../../data/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold 2.37, 709 KB: titles and figures.
pub static BOLD_TTF: &[u8] = include_bytes!("../../data/fonts/DejaVuSans-Bold.ttf");

struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

/// Parses the embedded fonts, once per process; `None` if either is
/// unreadable (it never is: a unit test parses both), and charts then fail
/// with an error instead of drawing boxes.
fn fonts() -> Option<&'static Fonts> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let regular = FontRef::try_from_slice(REGULAR_TTF).ok()?;
            let bold = FontRef::try_from_slice(BOLD_TTF).ok()?;
            Some(Fonts { regular, bold })
        })
        .as_ref()
}

/// Whether the fonts are usable.
pub fn loaded() -> bool {
    fonts().is_some()
}

fn face(bold: bool) -> Option<&'static FontRef<'static>> {
    fonts().map(|f| if bold { &f.bold } else { &f.regular })
}

/// Whether the chart font has a real glyph for `c` (glyph 0 is the
/// missing-glyph box).
pub fn covers(c: char, bold: bool) -> bool {
    face(bold).is_some_and(|f| f.glyph_id(c).0 != 0)
}

/// `text` with what a chart label cannot show replaced: control characters
/// (line breaks included) by spaces, characters without a glyph by `?`.
pub fn clean(text: &str, bold: bool) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if covers(c, bold) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Width in pixels of `text` at `size` px (advances plus kerning), as
/// [`rasterize`] lays it out.
pub fn width(text: &str, size: f64, bold: bool) -> f64 {
    let Some(f) = face(bold) else {
        return 0.0;
    };
    let f = f.as_scaled(size as f32);
    let mut w = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let g = f.glyph_id(c);
        w += f.h_advance(g);
        if let Some(p) = prev {
            w += f.kern(p, g);
        }
        prev = Some(g);
    }
    f64::from(w)
}

/// Rasterises `text` with its pen starting at `x` and its baseline at `y`
/// (fractional positions, kerning, each glyph's own bearings), calling
/// `pixel(x, y, coverage)` for every pixel a glyph touches.
pub fn rasterize(
    text: &str,
    (x, y): (f64, f64),
    size: f64,
    bold: bool,
    mut pixel: impl FnMut(i32, i32, f32),
) {
    let Some(face) = face(bold) else {
        return;
    };
    let scaled = face.as_scaled(size as f32);
    let mut caret = x as f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            caret += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(size as f32, point(caret, y as f32));
        if let Some(outline) = face.outline_glyph(glyph) {
            let b = outline.px_bounds();
            let (bx, by) = (b.min.x as i32, b.min.y as i32);
            outline.draw(|gx, gy, coverage| pixel(bx + gx as i32, by + gy as i32, coverage));
        }
        caret += scaled.h_advance(id);
        prev = Some(id);
    }
}

/// `text` shortened with "…" to at most `max` pixels wide.
pub fn fit(text: &str, max: f64, size: f64, bold: bool) -> String {
    if width(text, size, bold) <= max {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    // Binary search on the number of characters kept.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let s: String = chars[..mid].iter().collect::<String>() + "…";
        if width(&s, size, bold) <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let kept: String = chars[..lo].iter().collect();
    format!("{}…", kept.trim_end())
}

/// `text` broken at spaces into lines at most `max` pixels wide (a word
/// longer than a line is shortened with "…"); at most `lines` lines, the
/// last one shortened if text remains.
pub fn wrap(text: &str, max: f64, size: f64, bold: bool, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let candidate = if cur.is_empty() {
            word.to_string()
        } else {
            format!("{cur} {word}")
        };
        if width(&candidate, size, bold) <= max || cur.is_empty() {
            cur = candidate;
        } else {
            out.push(std::mem::replace(&mut cur, word.to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if out.len() > lines.max(1) {
        let rest = out.split_off(lines.max(1) - 1).join(" ");
        out.push(rest);
    }
    out.into_iter().map(|l| fit(&l, max, size, bold)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_faces_parse_and_cover_latin_and_cyrillic() {
        assert!(loaded());
        for bold in [false, true] {
            for c in "AZaz09ÀÿЁАЯаяё–—→≈¶«»“”’…·×%".chars() {
                assert!(covers(c, bold), "{c:?} bold={bold}");
            }
            // A character DejaVu lacks really is reported missing.
            assert!(!covers('\u{10FFFD}', bold));
        }
    }

    #[test]
    fn clean_and_fit() {
        assert_eq!(clean("a\nb\u{10FFFD}", false), "a b?");
        let long = "Запуск Единого экономического пространства";
        let short = fit(long, 200.0, 20.0, false);
        assert!(short.ends_with('…') && width(&short, 20.0, false) <= 200.0);
        assert_eq!(fit("2011", 200.0, 20.0, false), "2011");
        assert_eq!(fit("xxxxxxxx", 1.0, 20.0, false), "…");
        let lines = wrap(
            "investment inflows from Belarus to Kazakhstan in 2011",
            200.0,
            20.0,
            false,
            2,
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines.iter().all(|l| width(l, 20.0, false) <= 200.0),
            "{lines:?}"
        );
        assert!(lines[1].ends_with('…'), "{lines:?}");
        assert_eq!(wrap("a b", 200.0, 20.0, false, 2), vec!["a b"]);
    }
}
