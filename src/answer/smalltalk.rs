//! Small talk: greetings, thanks, "who are you", "what can you do",
//! goodbyes, in English and Russian, typos and all.
//!
//! Failure this prevents: "hi" answered with "I have no fact on that" — the
//! first thing a new user sees. A line is small talk only when *every*
//! word of it belongs to small talk ("hi!", "thanks a lot", "кто ты?"), so
//! "hi, how much was trade in 2011?" is still a question and gets its fact.

/// What a small-talk line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmallTalk {
    Greeting,
    Thanks,
    WhoAreYou,
    WhatCanYouDo,
    HowAreYou,
    Goodbye,
}

/// Per kind, in priority order ("hi, thanks!" is thanks), the sets of
/// words that make a line that kind: all words of one set must appear.
const KINDS: &[(SmallTalk, &[&[&str]])] = &[
    (
        SmallTalk::Thanks,
        &[
            &["thanks"],
            &["thank"],
            &["thx"],
            &["ty"],
            &["cheers"],
            &["спасибо"],
            &["благодарю"],
            &["спс"],
            &["пасиб"],
            &["пасибо"],
        ],
    ),
    (
        SmallTalk::Goodbye,
        &[
            &["bye"],
            &["goodbye"],
            &["cya"],
            &["see", "you"],
            &["good", "night"],
            &["пока"],
            &["свидания"],
            &["до", "встречи"],
            &["всего", "доброго"],
            &["спокойной", "ночи"],
        ],
    ),
    (
        SmallTalk::WhatCanYouDo,
        &[
            &["what", "can", "you"],
            &["what", "you", "do"],
            &["what", "you", "know"],
            &["what", "can", "i", "ask"],
            &["how", "do", "i", "use"],
            &["how", "does", "work"],
            &["что", "умеешь"],
            &["что", "можешь"],
            &["что", "знаешь"],
            &["что", "умеете"],
            &["что", "можно", "спросить"],
            &["о", "чем", "ты"],
            &["как", "пользоваться"],
        ],
    ),
    (
        SmallTalk::WhoAreYou,
        &[
            &["who", "you"],
            &["what", "are", "you"],
            &["are", "you", "bot"],
            &["your", "name"],
            &["кто", "ты"],
            &["кто", "вы"],
            &["ты", "бот"],
            &["как", "тебя", "зовут"],
        ],
    ),
    (
        SmallTalk::HowAreYou,
        &[
            &["how", "are", "you"],
            &["how", "is", "it", "going"],
            &["whats", "up"],
            &["what", "s", "up"],
            &["как", "дела"],
            &["как", "ты"],
            &["как", "поживаешь"],
        ],
    ),
    (
        SmallTalk::Greeting,
        &[
            &["hi"],
            &["hello"],
            &["hey"],
            &["hiya"],
            &["howdy"],
            &["greetings"],
            &["yo"],
            &["good", "morning"],
            &["good", "afternoon"],
            &["good", "evening"],
            &["привет"],
            &["приветствую"],
            &["здравствуй"],
            &["здравствуйте"],
            &["здрасте"],
            &["добрый", "день"],
            &["добрый", "вечер"],
            &["доброе", "утро"],
            &["хай"],
            &["салют"],
        ],
    ),
];

/// Words that may stand beside small talk without making it a question.
const FILLERS: &[&str] = &[
    "bot",
    "factbot",
    "there",
    "so",
    "much",
    "very",
    "a",
    "lot",
    "again",
    "all",
    "the",
    "ok",
    "okay",
    "and",
    "for",
    "that",
    "this",
    "it",
    "is",
    "are",
    "you",
    "your",
    "i",
    "me",
    "do",
    "my",
    "friend",
    "mate",
    "dear",
    "everyone",
    "guys",
    "folks",
    "great",
    "nice",
    "cool",
    "awesome",
    "good",
    "well",
    "help",
    "oh",
    "hm",
    "hmm",
    "just",
    "then",
    "now",
    "got",
    "понятно",
    "ясно",
    "бот",
    "тебе",
    "вам",
    "тебя",
    "большое",
    "огромное",
    "очень",
    "ну",
    "и",
    "а",
    "ты",
    "вы",
    "всем",
    "всех",
    "ребята",
    "друг",
    "ок",
    "хорошо",
    "отлично",
    "класс",
    "супер",
    "же",
    "за",
    "помощь",
    "всё",
    "все",
    "тогда",
    "ладно",
    "factbot",
    "фактбот",
];

/// Words of a small-talk line, at most ("thank you very much for the
/// help" is seven).
const MAX_WORDS: usize = 8;
/// Shortest word a typo is forgiven in: shorter ones are too close to
/// other words ("hi" ↔ "his").
const TYPO_MIN_LEN: usize = 4;

fn vocabulary() -> impl Iterator<Item = &'static str> {
    KINDS
        .iter()
        .flat_map(|(_, sets)| sets.iter().flat_map(|s| s.iter().copied()))
        .chain(FILLERS.iter().copied())
}

/// `w` as a small-talk word: itself if known, else the known word one
/// typo away ("helo", "спасибр", "привте"), else `None`.
fn known(w: &str) -> Option<&'static str> {
    if let Some(k) = vocabulary().find(|k| *k == w) {
        return Some(k);
    }
    let len = w.chars().count();
    if len < TYPO_MIN_LEN {
        return None;
    }
    // One edit changes the length by one at most: only words of about the
    // same length are compared, so a question pays a few comparisons.
    vocabulary()
        .filter(|k| {
            let n = k.chars().count();
            n >= TYPO_MIN_LEN && n.abs_diff(len) <= 1
        })
        .find(|k| one_edit_apart(k, w))
}

/// Whether `a` becomes `b` by exactly one edit: a letter changed, added or
/// dropped, or two neighbours swapped (`strsim::damerau_levenshtein(a, b)
/// == 1`, as the test checks). Every question's first unknown word is
/// compared with the vocabulary, and strsim's general distance (a table
/// and a hash map per pair) was a fifth of an answer's time in the
/// Telegram profile; this strips what the two share at both ends and looks
/// at the rest, without allocating.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let shared = |x: &mut dyn Iterator<Item = (char, char)>| -> usize {
        x.take_while(|(p, q)| p == q)
            .map(|(p, _)| p.len_utf8())
            .sum()
    };
    let head = shared(&mut a.chars().zip(b.chars()));
    let (a, b) = (&a[head..], &b[head..]);
    let tail = shared(&mut a.chars().rev().zip(b.chars().rev()));
    let (a, b) = (&a[..a.len() - tail], &b[..b.len() - tail]);
    match (a.chars().count(), b.chars().count()) {
        (1, 1) | (1, 0) | (0, 1) => true,
        // What is left starts with different letters: "xy" against "yx".
        (2, 2) => a.chars().rev().eq(b.chars()),
        _ => false,
    }
}

/// Whether `words` (the line's lower-case words, [`crate::query::words`])
/// are small talk, and which.
pub fn classify(words: &[String]) -> Option<SmallTalk> {
    // Small talk is short; a longer line is a question (and costs no
    // lookups here).
    if words.is_empty() || words.len() > MAX_WORDS {
        return None;
    }
    let mut seen: Vec<&'static str> = Vec::with_capacity(words.len());
    for w in words {
        seen.push(known(w)?);
    }
    KINDS
        .iter()
        .find(|(_, sets)| sets.iter().any(|s| s.iter().all(|k| seen.contains(k))))
        .map(|(kind, _)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::words;

    fn of(s: &str) -> Option<SmallTalk> {
        classify(&words(s))
    }

    #[test]
    fn greetings_thanks_and_the_rest_in_both_languages() {
        use SmallTalk::*;
        for (s, k) in [
            ("hi", Greeting),
            ("Hello there!", Greeting),
            ("good morning", Greeting),
            ("Привет!", Greeting),
            ("Здравствуйте", Greeting),
            ("добрый день", Greeting),
            ("thanks!", Thanks),
            ("thank you very much", Thanks),
            ("hi, thanks", Thanks),
            ("Спасибо большое", Thanks),
            ("who are you?", WhoAreYou),
            ("Кто ты?", WhoAreYou),
            ("are you a bot?", WhoAreYou),
            ("what can you do?", WhatCanYouDo),
            ("Что ты умеешь?", WhatCanYouDo),
            ("how are you?", HowAreYou),
            ("как дела?", HowAreYou),
            ("bye", Goodbye),
            ("До свидания!", Goodbye),
            ("пока", Goodbye),
        ] {
            assert_eq!(of(s), Some(k), "{s}");
        }
    }

    /// The one-edit check agrees with strsim's distance on every pair of
    /// vocabulary words and on the typos one edit makes of each (changed,
    /// added, dropped and swapped letters, Cyrillic included), and on
    /// pairs that share letters at both ends.
    #[test]
    fn one_edit_apart_is_a_distance_of_one() {
        let mut words: Vec<String> = vocabulary().map(str::to_string).collect();
        for w in vocabulary() {
            let c: Vec<char> = w.chars().collect();
            for i in 0..c.len() {
                let mut dropped = c.clone();
                dropped.remove(i);
                words.push(dropped.iter().collect());
                let mut changed = c.clone();
                changed[i] = if c[i].is_ascii() { 'z' } else { 'ж' };
                words.push(changed.iter().collect());
                let mut added = c.clone();
                added.insert(i, c[i]);
                words.push(added.iter().collect());
                if i + 1 < c.len() {
                    let mut swapped = c.clone();
                    swapped.swap(i, i + 1);
                    words.push(swapped.iter().collect());
                }
            }
        }
        let odd = [
            "", "a", "ab", "ba", "abab", "baba", "aab", "aba", "baa", "ёж", "жё",
        ];
        let (mut ones, mut pairs) = (0, 0);
        let mut check = |a: &str, b: &str| {
            let expected = strsim::damerau_levenshtein(a, b) == 1;
            assert_eq!(one_edit_apart(a, b), expected, "{a:?} {b:?}");
            assert_eq!(one_edit_apart(b, a), expected, "{b:?} {a:?}");
            pairs += 1;
            ones += usize::from(expected);
        };
        for a in &words {
            for b in vocabulary() {
                check(a, b);
            }
        }
        for a in odd {
            for b in odd {
                check(a, b);
            }
        }
        assert!(
            pairs > 100_000 && ones > 1_000,
            "{pairs} pairs, {ones} one edit apart"
        );
    }

    #[test]
    fn common_typos_are_forgiven() {
        use SmallTalk::*;
        for (s, k) in [
            ("helo", Greeting),
            ("hellp", Greeting),
            ("thnaks", Thanks),
            ("thnks", Thanks),
            ("привте", Greeting),
            ("здраствуйте", Greeting),
            ("спасибр", Thanks),
            ("до свиданья", Goodbye),
        ] {
            assert_eq!(of(s), Some(k), "{s}");
        }
    }

    #[test]
    fn a_question_with_a_greeting_is_still_a_question() {
        for s in [
            "hi, how much was trade in 2011?",
            "привет, когда был визит?",
            "who is Akhmetov?",
            "what can Belarus export?",
            "thanks for the trade figures",
            "",
            "history",
            "who are they?",
            "what can Belarus and Kazakhstan do?",
        ] {
            assert_eq!(of(s), None, "{s}");
        }
    }
}
