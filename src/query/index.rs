//! Ranked retrieval over the facts: a small in-memory inverted index.
//!
//! Why not tantivy: the real dataset is ~50 short facts and the goal is
//! microseconds per question; a BM25 index over a few thousand terms, built
//! from the store at start, answers in a few microseconds and costs a few
//! hundred kilobytes (figures in the README, `cargo bench`). It also lets the
//! scorer know *which* question words a fact matched, which is what deciding
//! "I have no fact on that" needs.
//!
//! Each question word is looked up as its stem (weight 1), as its synonym
//! group (0.6) and — when the stem is unknown — as the nearest known stems
//! within a small edit distance (0.7), so typos still land.

use std::collections::HashMap;

use super::text::{Analyzer, Token, GROUP_PREFIX, INTENT_PREFIX};
use crate::facts::Fact;
use crate::facts::{Topic, Value};

/// Field weights: a word in an alias or a title says more than one in passing.
const W_ALIAS: f32 = 2.5;
const W_TITLE: f32 = 2.0;
const W_TEXT: f32 = 1.0;
const W_SOURCE: f32 = 0.4;
const W_ID: f32 = 1.0;
/// How much a synonym or a fuzzy match counts against the word itself.
const W_GROUP: f32 = 0.6;
const W_FUZZY: f32 = 0.7;
/// Weight of a question word's intent ("when") met by a fact that answers it.
const W_INTENT: f32 = 0.8;
/// Bonus for two question words that stand side by side in the fact too.
const W_BIGRAM: f32 = 0.5;
/// Distinct words of a question that are looked at; the rest are ignored,
/// which bounds the work for any input (a pasted 100 KB text included).
pub const MAX_QUERY_WORDS: usize = 32;
/// BM25 parameters.
const K1: f32 = 1.2;
const B: f32 = 0.5;

type TermId = u32;

/// The inverted index.
pub struct Index {
    /// Analyses fact text and questions alike.
    analyzer: Analyzer,
    terms: HashMap<String, TermId>,
    /// Per term: (document, weighted term frequency), by document.
    postings: Vec<Vec<(u32, f32)>>,
    /// Per document: its weighted length.
    doc_len: Vec<f32>,
    avg_len: f32,
    /// Plain-word stems by length in chars, for typo lookup.
    by_len: Vec<Vec<TermId>>,
    /// Words as written in the facts → their stem's term; typos are looked
    /// up among these too, since a misspelt word may stem differently
    /// ("eurasion" → "euras", but "eurasian" → "eurasian").
    surface: HashMap<String, TermId>,
    /// Keys of `surface` by length in chars.
    surface_by_len: Vec<Vec<String>>,
    term_text: Vec<String>,
}

/// One ranked document.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Position of the fact in the slice the index was built from.
    pub doc: u32,
    pub score: f32,
    /// Share (0–1, IDF-weighted) of the question's words this fact matched.
    pub coverage: f32,
}

/// What a search found.
#[derive(Clone, Debug, Default)]
pub struct SearchResult {
    /// Best first.
    pub hits: Vec<Hit>,
    /// How many content words the question had.
    pub words: usize,
    /// Question words the index knew (exactly, by synonym or by typo).
    pub known_words: usize,
}

/// A question word's ways into the index.
struct QueryWord {
    /// (term, weight) alternatives.
    alts: Vec<(TermId, f32)>,
    /// Its importance: the best IDF among its alternatives, or the maximum
    /// for a word the index does not know at all.
    idf: f32,
    /// A question word ("when"): ranks, but is not a word of the subject.
    intent: bool,
}

impl Index {
    /// Indexes `facts`; hit `doc` numbers are positions in that slice.
    pub fn build(facts: &[Fact], synonyms: &[Vec<String>]) -> Index {
        let mut ix = Index {
            analyzer: Analyzer::new(synonyms),
            terms: HashMap::new(),
            postings: Vec::new(),
            doc_len: Vec::with_capacity(facts.len()),
            avg_len: 0.0,
            by_len: Vec::new(),
            surface: HashMap::new(),
            surface_by_len: Vec::new(),
            term_text: Vec::new(),
        };
        let mut acc: HashMap<TermId, f32> = HashMap::new();
        for (doc, f) in facts.iter().enumerate() {
            acc.clear();
            let mut len = 0.0;
            let mut add = |ix: &mut Index, text: &str, w: f32| {
                let toks = ix.analyzer.analyze(text);
                for (i, t) in toks.iter().enumerate() {
                    let id = ix.term_id(&t.stem);
                    if is_plain_word(&t.word) && !ix.surface.contains_key(&t.word) {
                        ix.surface.insert(t.word.clone(), id);
                        let len = t.word.chars().count();
                        if ix.surface_by_len.len() <= len {
                            ix.surface_by_len.resize(len + 1, Vec::new());
                        }
                        ix.surface_by_len[len].push(t.word.clone());
                    }
                    *acc.entry(id).or_default() += w;
                    for g in &t.groups {
                        let id = ix.term_id(g);
                        *acc.entry(id).or_default() += w;
                    }
                    if let Some(next) = toks.get(i + 1) {
                        let id = ix.term_id(&bigram(&t.stem, &next.stem));
                        *acc.entry(id).or_default() += w;
                    }
                    len += w;
                }
            };
            add(&mut ix, &f.title.en, W_TITLE);
            add(&mut ix, &f.title.ru, W_TITLE);
            add(&mut ix, &f.text.en, W_TEXT);
            add(&mut ix, &f.text.ru, W_TEXT);
            add(&mut ix, &f.source, W_SOURCE);
            add(&mut ix, &f.id, W_ID);
            for a in &f.aliases {
                add(&mut ix, a, W_ALIAS);
            }
            for intent in fact_intents(f) {
                let id = ix.term_id(intent);
                *acc.entry(id).or_default() += W_ALIAS;
            }
            for (&term, &tf) in &acc {
                ix.postings[term as usize].push((doc as u32, tf));
            }
            ix.doc_len.push(len);
        }
        let n = ix.doc_len.len().max(1) as f32;
        ix.avg_len = ix.doc_len.iter().sum::<f32>() / n;
        for p in &mut ix.postings {
            p.sort_unstable_by_key(|&(d, _)| d);
        }
        ix
    }

    fn term_id(&mut self, term: &str) -> TermId {
        if let Some(&id) = self.terms.get(term) {
            return id;
        }
        let id = self.term_text.len() as TermId;
        self.terms.insert(term.to_string(), id);
        self.term_text.push(term.to_string());
        self.postings.push(Vec::new());
        if is_plain_word(term) {
            let len = term.chars().count();
            if self.by_len.len() <= len {
                self.by_len.resize(len + 1, Vec::new());
            }
            self.by_len[len].push(id);
        }
        id
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    pub fn len(&self) -> usize {
        self.doc_len.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }

    fn idf(&self, term: TermId) -> f32 {
        let n = self.doc_len.len() as f32;
        let df = self.postings[term as usize].len() as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The IDF of a term no document has: a word the index has never seen
    /// weighs as much as the rarest one it has.
    fn max_idf(&self) -> f32 {
        let n = self.doc_len.len() as f32;
        (1.0 + (n + 0.5) / 0.5).ln()
    }

    /// Nearest known stems to an unknown word, within the typo budget: the
    /// closest among stems (to the word's stem) and among written words (to
    /// the word itself).
    fn fuzzy(&self, word: &str, stem: &str) -> Vec<TermId> {
        let mut best = usize::MAX;
        let mut out: Vec<TermId> = Vec::new();
        let mut consider = |d: usize, id: TermId| {
            if d < best {
                best = d;
                out.clear();
            }
            if d == best && !out.contains(&id) {
                out.push(id);
            }
        };
        if let Some(budget) = typo_budget(stem) {
            for (d, id) in near(stem, budget, &self.by_len, |&id| {
                &self.term_text[id as usize]
            }) {
                consider(d, *id);
            }
        }
        if let Some(budget) = typo_budget(word) {
            for (d, w) in near(word, budget, &self.surface_by_len, |w| w.as_str()) {
                if let Some(&id) = self.surface.get(w.as_str()) {
                    consider(d, id);
                }
            }
        }
        out
    }

    fn query_words(&self, tokens: &[Token]) -> Vec<QueryWord> {
        tokens
            .iter()
            .map(|t| {
                if t.is_intent() {
                    // Ranks among facts on the subject; never decides whether
                    // the subject is known, so it carries no coverage weight.
                    let alts = self
                        .terms
                        .get(&t.stem)
                        .map(|&id| (id, W_INTENT))
                        .into_iter()
                        .collect();
                    return QueryWord {
                        alts,
                        idf: 0.0,
                        intent: true,
                    };
                }
                let mut alts = Vec::new();
                match self.terms.get(&t.stem) {
                    Some(&id) => alts.push((id, 1.0)),
                    None => {
                        for id in self.fuzzy(&t.word, &t.stem) {
                            alts.push((id, W_FUZZY));
                        }
                    }
                }
                for g in &t.groups {
                    if let Some(&id) = self.terms.get(g) {
                        alts.push((id, W_GROUP));
                    }
                }
                let idf = alts
                    .iter()
                    .map(|&(id, _)| self.idf(id))
                    .fold(None, |m: Option<f32>, x| Some(m.map_or(x, |m| m.max(x))))
                    .unwrap_or_else(|| self.max_idf());
                QueryWord {
                    alts,
                    idf,
                    intent: false,
                }
            })
            .collect()
    }

    /// Ranks facts for a question; at most `limit` hits, best first.
    pub fn search(&self, query: &str, limit: usize) -> SearchResult {
        let mut tokens = self.analyzer.analyze(query);
        let mut seen = std::collections::HashSet::new();
        tokens.retain(|t| seen.insert(t.stem.clone()));
        tokens.truncate(MAX_QUERY_WORDS);
        let words = self.query_words(&tokens);
        let total_idf: f32 = words.iter().map(|w| w.idf).sum();
        let mut result = SearchResult {
            words: words.iter().filter(|w| !w.intent).count(),
            known_words: words
                .iter()
                .filter(|w| !w.intent && !w.alts.is_empty())
                .count(),
            ..SearchResult::default()
        };
        if words.is_empty() || total_idf <= 0.0 || self.is_empty() {
            return result;
        }
        // Per document: score, IDF mass of the question words it matched, and
        // the last word (1-based) counted in that mass. Dense arrays beat a
        // hash map once common words touch most of a large store.
        let mut acc: Vec<(f32, f32, u32)> = vec![(0.0, 0.0, 0); self.len()];
        let mut touched: Vec<u32> = Vec::new();
        for (wi, w) in words.iter().enumerate() {
            let mark = wi as u32 + 1;
            for &(term, weight) in &w.alts {
                let idf = self.idf(term);
                for &(doc, tf) in &self.postings[term as usize] {
                    let norm = K1 * (1.0 - B + B * self.doc_len[doc as usize] / self.avg_len);
                    let e = &mut acc[doc as usize];
                    if e.2 == 0 {
                        touched.push(doc);
                    }
                    e.0 += weight * idf * tf * (K1 + 1.0) / (tf + norm);
                    if e.2 != mark {
                        e.1 += w.idf;
                        e.2 = mark;
                    }
                }
            }
        }
        // Phrases: adjacent question words adjacent in the fact.
        for pair in tokens.windows(2) {
            if let Some(&term) = self.terms.get(&bigram(&pair[0].stem, &pair[1].stem)) {
                let idf = self.idf(term);
                for &(doc, _) in &self.postings[term as usize] {
                    acc[doc as usize].0 += W_BIGRAM * idf;
                }
            }
        }
        let mut hits: Vec<Hit> = touched
            .into_iter()
            .map(|doc| {
                let (s, m, _) = acc[doc as usize];
                let coverage = (m / total_idf).min(1.0);
                Hit {
                    doc,
                    score: s * (0.25 + 0.75 * coverage),
                    coverage,
                }
            })
            .collect();
        let by_rank = |a: &Hit, b: &Hit| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc));
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit, by_rank);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(by_rank);
        result.hits = hits;
        result
    }
}

/// The intents a fact can answer, from what it states.
fn fact_intents(f: &Fact) -> Vec<&'static str> {
    let mut out = Vec::new();
    if f.date.is_some() || f.values.iter().any(|v| matches!(v, Value::Date { .. })) {
        out.push("?when");
    }
    if f.values.iter().any(|v| !matches!(v, Value::Date { .. })) {
        out.push("?qty");
    }
    if f.topic == Topic::People {
        out.push("?who");
    }
    out
}

/// How many edits a word of this length may have and still be a typo of a
/// known one; `None` for words too short to guess at.
fn typo_budget(word: &str) -> Option<usize> {
    let len = word.chars().count();
    match len {
        _ if !is_plain_word(word) => None,
        0..=3 => None,
        4..=7 => Some(1),
        _ => Some(2),
    }
}

/// Candidates within `budget` edits of `word`, from length buckets.
fn near<'a, T>(
    word: &str,
    budget: usize,
    by_len: &'a [Vec<T>],
    text: impl Fn(&'a T) -> &'a str,
) -> Vec<(usize, &'a T)> {
    let len = word.chars().count();
    let mut out = Vec::new();
    for l in len.saturating_sub(budget)..=len + budget {
        for cand in by_len.get(l).map(Vec::as_slice).unwrap_or(&[]) {
            let d = strsim::damerau_levenshtein(word, text(cand));
            if d <= budget {
                out.push((d, cand));
            }
        }
    }
    out
}

fn bigram(a: &str, b: &str) -> String {
    format!("{a} {b}")
}

fn is_plain_word(term: &str) -> bool {
    !term.starts_with(GROUP_PREFIX)
        && !term.starts_with(INTENT_PREFIX)
        && !term.contains(' ')
        && term.chars().all(char::is_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Dataset;

    fn index() -> (Vec<Fact>, Index) {
        let ds = Dataset::embedded().unwrap();
        let ix = Index::build(&ds.facts, &ds.synonyms);
        (ds.facts, ix)
    }

    fn top(q: &str) -> String {
        let (facts, ix) = index();
        let r = ix.search(q, 3);
        r.hits
            .first()
            .map(|h| facts[h.doc as usize].id.clone())
            .unwrap_or_default()
    }

    #[test]
    fn finds_by_word_synonym_and_typo() {
        assert!(top("trade turnover 2011").starts_with("trade."));
        assert!(top("товарооборот 2011").starts_with("trade."));
        assert!(top("exprots from kazakstan").starts_with("exports."));
    }

    #[test]
    fn unknown_words_lower_coverage() {
        let (_, ix) = index();
        let r = ix.search("population of kazakhstan", 3);
        assert!(r.hits.iter().all(|h| h.coverage < 0.5), "{:?}", r.hits);
        assert_eq!(r.words, 2);
        assert_eq!(r.known_words, 1);
    }

    #[test]
    fn empty_and_stopword_only_queries_find_nothing() {
        let (_, ix) = index();
        assert!(ix.search("", 3).hits.is_empty());
        assert!(ix.search("what is the", 3).hits.is_empty());
    }
}
