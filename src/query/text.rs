//! Text analysis shared by indexing and querying: one function decides what
//! a "word" is, so a fact and a question about it meet on the same terms.
//!
//! Steps: lower-case (and `ё` → `е`), split into letter runs and digit runs,
//! drop stop words, stem with the Snowball stemmer of the word's script
//! (English for Latin, Russian for Cyrillic), and map words that belong to a
//! synonym group to that group's term as well.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};

use super::lang::is_cyrillic;

/// Prefix of synonym-group terms; cannot occur in a word.
pub const GROUP_PREFIX: char = '~';
/// Prefix of question-intent terms ("?when"); cannot occur in a word.
pub const INTENT_PREFIX: char = '?';

/// What a question word asks for. Facts carry the matching intent term
/// when they can answer it (a date answers "when"), so "When did he visit?"
/// prefers the dated fact among facts about the visit.
pub const INTENTS: &[(&str, &str)] = &[
    ("when", "?when"),
    ("когда", "?when"),
    ("who", "?who"),
    ("whom", "?who"),
    ("кто", "?who"),
    ("кого", "?who"),
    ("кем", "?who"),
    ("where", "?where"),
    ("где", "?where"),
    ("куда", "?where"),
    ("much", "?qty"),
    ("many", "?qty"),
    ("сколько", "?qty"),
    ("скока", "?qty"),
    ("скоко", "?qty"),
];

/// Words that carry no subject, in both languages (question words, fillers).
const STOPWORDS: &[&str] = &[
    // English
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "am",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "from",
    "by",
    "with",
    "about",
    "as",
    "into",
    "onto",
    "and",
    "or",
    "but",
    "nor",
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "much",
    "many",
    "did",
    "do",
    "does",
    "done",
    "doing",
    "has",
    "have",
    "had",
    "having",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "there",
    "their",
    "they",
    "them",
    "he",
    "she",
    "his",
    "her",
    "him",
    "i",
    "me",
    "my",
    "we",
    "our",
    "us",
    "you",
    "your",
    "tell",
    "please",
    "know",
    "can",
    "could",
    "would",
    "should",
    "will",
    "shall",
    "may",
    "might",
    "any",
    "some",
    "so",
    "than",
    "then",
    "also",
    "just",
    "give",
    "show",
    "list",
    "info",
    "information",
    "let",
    "s",
    "t",
    "between",
    "happen",
    "happened",
    "get",
    "got",
    "say",
    "said",
    "says",
    "mean",
    "means",
    "meant",
    "kind",
    "sort",
    "thing",
    "things",
    "anything",
    "something",
    "explain",
    "describe",
    "details",
    "detail",
    "hey",
    "hi",
    "hello",
    "ok",
    "okay",
    "thanks",
    "thank",
    "each",
    "other",
    "both",
    "two",
    "out",
    "up",
    "if",
    "not",
    "no",
    "yes",
    "all",
    "more",
    "most",
    "very",
    "such",
    "own",
    "same",
    "there's",
    "what's",
    "whats",
    "who's",
    "whos",
    "were",
    "amount",
    "amounted",
    "total",
    "totalled",
    "number",
    "figure",
    "figures",
    "main",
    "major",
    "key",
    "like",
    "want",
    "need",
    "talk",
    "talked",
    "happening",
    // Fillers of spoken questions, and words about the article itself (the
    // bot knows one article: "the article", "this story" name no subject).
    "actually",
    "really",
    "exactly",
    "ever",
    "still",
    "again",
    "well",
    "come",
    "came",
    "gave",
    "numbers",
    "together",
    "article",
    "story",
    "news",
    "piece",
    "report",
    "reported",
    "mentioned",
    "mention",
    "state",
    "stated",
    "involved",
    "take",
    "took",
    "place",
    "via",
    "due",
    "expected",
    "supposed",
    "planned",
    // Russian
    "и",
    "в",
    "во",
    "не",
    "что",
    "чем",
    "он",
    "на",
    "я",
    "с",
    "со",
    "как",
    "а",
    "то",
    "все",
    "всё",
    "она",
    "так",
    "его",
    "но",
    "да",
    "ты",
    "к",
    "у",
    "же",
    "вы",
    "за",
    "бы",
    "по",
    "только",
    "ее",
    "её",
    "мне",
    "было",
    "вот",
    "от",
    "меня",
    "еще",
    "ещё",
    "нет",
    "о",
    "об",
    "обо",
    "из",
    "ему",
    "теперь",
    "когда",
    "даже",
    "ну",
    "ли",
    "если",
    "уже",
    "или",
    "ни",
    "быть",
    "был",
    "была",
    "были",
    "него",
    "до",
    "вас",
    "нибудь",
    "уж",
    "вам",
    "ведь",
    "там",
    "потом",
    "себя",
    "ей",
    "может",
    "они",
    "тут",
    "где",
    "есть",
    "надо",
    "ней",
    "для",
    "мы",
    "тебя",
    "их",
    "сам",
    "чтоб",
    "без",
    "чего",
    "тоже",
    "себе",
    "под",
    "будет",
    "ж",
    "тогда",
    "кто",
    "этот",
    "того",
    "потому",
    "этого",
    "какой",
    "какая",
    "какие",
    "каким",
    "каких",
    "какое",
    "какую",
    "каков",
    "какова",
    "каково",
    "каковы",
    "ним",
    "здесь",
    "этом",
    "тем",
    "чтобы",
    "нее",
    "сейчас",
    "куда",
    "зачем",
    "всех",
    "можно",
    "при",
    "над",
    "тот",
    "через",
    "эти",
    "нас",
    "про",
    "всего",
    "них",
    "много",
    "эту",
    "этой",
    "перед",
    "том",
    "такой",
    "им",
    "между",
    "расскажи",
    "расскажите",
    "скажи",
    "скажите",
    "пожалуйста",
    "такое",
    "это",
    "ли",
    "друг",
    "другу",
    "другом",
    "оба",
    "обе",
    "привет",
    "спасибо",
    "каком",
    "какого",
    "какому",
    "какими",
    "чём",
    "кого",
    "кому",
    "составил",
    "составила",
    "составило",
    "составили",
    "был",
    "прошел",
    "прошла",
    "прошли",
    "состоялся",
    "состоялась",
    "состоялись",
    "произошло",
    "значит",
    "означает",
    "главные",
    "основные",
    "должны",
    "должен",
    "должна",
    "должно",
    "будет",
    "планируется",
    "такие",
    "такая",
    "такого",
    "вообще",
    "именно",
    "раньше",
    "статья",
    "статье",
    "статьи",
    "новость",
    "новости",
    "истории",
    "история",
    "говорится",
    "сказано",
    "написано",
    "указан",
    "указано",
    "упоминается",
    "объем",
    "объём",
    "сумма",
    "величина",
    // Spoken Russian: fillers, and "I want to know" phrasing.
    "короче",
    "типа",
    "блин",
    "чё",
    "че",
    "чо",
    "ваще",
    "слушай",
    "слушайте",
    "подскажи",
    "подскажите",
    "плиз",
    "пжлст",
    "пж",
    "хочу",
    "хотел",
    "хотела",
    "знать",
    "узнать",
    "интересно",
    "интересует",
    "вообщем",
    "кстати",
    // Spoken English: the same.
    "pls",
    "plz",
    "u",
    "ur",
    "gonna",
    "wanna",
    "btw",
    "lol",
    "um",
    "uh",
    "hmm",
    "yeah",
    "guys",
    "wondering",
];

/// Turns text into terms. Built once; cheap to share.
pub struct Analyzer {
    en: Stemmer,
    ru: Stemmer,
    stop: HashSet<&'static str>,
    /// First stem of a synonym phrase → (the phrase's stems, group term).
    groups: HashMap<String, Vec<(Vec<String>, String)>>,
}

/// One analysed word of a text.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The word as typed, lower-cased.
    pub word: String,
    /// Its stem: the term it is indexed and looked up under.
    pub stem: String,
    /// Synonym-group terms this word (or the phrase it starts) belongs to.
    pub groups: Vec<String>,
}

impl Token {
    /// A question word ("when"), not a word of the subject.
    pub fn is_intent(&self) -> bool {
        self.stem.starts_with(INTENT_PREFIX)
    }
}

impl Analyzer {
    pub fn new(synonyms: &[Vec<String>]) -> Analyzer {
        let mut a = Analyzer {
            en: Stemmer::create(Algorithm::English),
            ru: Stemmer::create(Algorithm::Russian),
            stop: STOPWORDS.iter().copied().collect(),
            groups: HashMap::new(),
        };
        for (i, group) in synonyms.iter().enumerate() {
            let term = format!("{GROUP_PREFIX}{i}");
            for member in group {
                let stems: Vec<String> = words(member).iter().map(|w| a.stem(w)).collect();
                if let Some(first) = stems.first() {
                    a.groups
                        .entry(first.clone())
                        .or_default()
                        .push((stems.clone(), term.clone()));
                }
            }
        }
        a
    }

    /// The stem of one lower-case word, by its script.
    pub fn stem(&self, word: &str) -> String {
        if word.chars().all(|c| c.is_ascii_digit()) {
            word.to_string()
        } else if word.chars().any(is_cyrillic) {
            self.ru.stem(word).into_owned()
        } else {
            self.en.stem(word).into_owned()
        }
    }

    pub fn is_stopword(&self, word: &str) -> bool {
        self.stop.contains(word)
    }

    /// Content tokens of a text: stop words dropped, stems and groups set.
    pub fn analyze(&self, text: &str) -> Vec<Token> {
        self.analyze_with(text, |w| self.stem(w))
    }

    /// [`Analyzer::analyze`] with the stemming supplied (indexing passes a
    /// caching one).
    pub fn analyze_with(&self, text: &str, mut stem: impl FnMut(&str) -> String) -> Vec<Token> {
        let all: Vec<String> = words(text);
        // Stems of every word, stop words included, so that phrases such as
        // "head of government" still match their group.
        let stems: Vec<String> = all.iter().map(|w| stem(w)).collect();
        let mut out = Vec::new();
        for (i, word) in all.iter().enumerate() {
            let mut groups = Vec::new();
            if let Some(cands) = self.groups.get(&stems[i]) {
                for (phrase, term) in cands {
                    if stems[i..].starts_with(phrase) && !groups.contains(term) {
                        groups.push(term.clone());
                    }
                }
            }
            if let Some((_, intent)) = INTENTS.iter().find(|(w, _)| w == word) {
                out.push(Token {
                    word: word.clone(),
                    stem: (*intent).to_string(),
                    groups: Vec::new(),
                });
                continue;
            }
            if self.is_stopword(word) && groups.is_empty() {
                continue;
            }
            out.push(Token {
                word: word.clone(),
                stem: stems[i].clone(),
                groups,
            });
        }
        out
    }
}

/// Splits text into lower-case words: runs of letters, runs of digits.
/// `ё` folds to `е`; apostrophes end a word ("Belarus's" → "belarus", "s").
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_digit = false;
    for c in text.chars() {
        let c = match c {
            'ё' | 'Ё' => 'е',
            c => c,
        };
        if c.is_alphanumeric() {
            let digit = c.is_ascii_digit();
            if !cur.is_empty() && digit != cur_digit {
                out.push(std::mem::take(&mut cur));
            }
            cur_digit = digit;
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_letters_digits_and_fold_yo() {
        assert_eq!(
            words("Belarus's USD 73m, в 2011-м!"),
            ["belarus", "s", "usd", "73", "m", "в", "2011", "м"]
        );
        assert_eq!(words("Объём ЕЭП"), ["объем", "еэп"]);
    }

    #[test]
    fn stems_by_script_and_drops_stopwords() {
        let a = Analyzer::new(&[]);
        let t: Vec<String> = a
            .analyze("What are the exports of Kazakhstan?")
            .into_iter()
            .map(|t| t.stem)
            .collect();
        assert_eq!(t, ["export", "kazakhstan"]);
        let t: Vec<String> = a
            .analyze("When did he arrive?")
            .into_iter()
            .map(|t| t.stem)
            .collect();
        assert_eq!(t, ["?when", "arriv"]);
        let t: Vec<String> = a
            .analyze("Какие инвестиции из Беларуси?")
            .into_iter()
            .map(|t| t.stem)
            .collect();
        assert_eq!(t, ["инвестиц", "беларус"]);
    }

    #[test]
    fn synonym_groups_match_words_and_phrases() {
        let a = Analyzer::new(&[
            vec!["trade".into(), "товарооборот".into()],
            vec!["first half".into(), "H1".into(), "первое полугодие".into()],
        ]);
        let toks = a.analyze("товарооборот в первом полугодии");
        assert_eq!(toks[0].groups, ["~0"]);
        assert_eq!(toks[1].groups, ["~1"], "{toks:?}");
        let toks = a.analyze("trade in H1");
        assert_eq!(toks[0].groups, ["~0"]);
        assert_eq!(toks[1].groups, ["~1"]);
    }
}
