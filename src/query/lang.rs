//! Which language a question is in.
//!
//! Only two languages matter and they use different scripts, so counting
//! Cyrillic against Latin letters is both exact enough and free. Questions
//! with no letters at all ("2011?") carry no signal and return `None`, so the
//! caller falls back to the chat's or the user's preference.

use crate::facts::Lang;

/// The language a text is written in, by script; `None` when it has no letters.
pub fn detect(text: &str) -> Option<Lang> {
    let (mut cyr, mut lat) = (0usize, 0usize);
    for c in text.chars() {
        if is_cyrillic(c) {
            cyr += 1;
        } else if c.is_ascii_alphabetic() || ('\u{00C0}'..='\u{024F}').contains(&c) {
            lat += 1;
        }
    }
    match (cyr, lat) {
        (0, 0) => None,
        (c, l) if c >= l => Some(Lang::Ru),
        _ => Some(Lang::En),
    }
}

pub fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}' | '\u{0500}'..='\u{052F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_script() {
        assert_eq!(detect("Какой товарооборот?"), Some(Lang::Ru));
        assert_eq!(detect("What about trade?"), Some(Lang::En));
        assert_eq!(detect("ЕАЭС и EAEU 2015"), Some(Lang::Ru));
        assert_eq!(detect("Trade with Казахстан in 2011"), Some(Lang::En));
        assert_eq!(detect("2011?"), None);
        assert_eq!(detect(""), None);
    }
}
