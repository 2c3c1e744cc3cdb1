//! Ranked retrieval over the facts: a small in-memory inverted index.
//!
//! Why not tantivy: the real dataset is ~50 short facts and the goal is
//! microseconds per question; a BM25 index over a few thousand terms, built
//! from the store at start, answers in microseconds and costs little memory
//! (figures in the README, `cargo bench`). It also lets the scorer know
//! *which* question words a fact matched, which is what deciding "I have no
//! fact on that" needs.
//!
//! Each question word is looked up as its stem (weight 1), as its synonym
//! group (0.6) and — when the stem is unknown — as the nearest known words
//! within an edit or two (0.7, see [`super::fuzzy`]), so typos still land.
//! Question words are scored rarest first, and a fact that can no longer
//! reach the coverage the caller asks for is never admitted: on a large
//! store, common words ("Belarus") only add to facts already in the running.

use std::cell::RefCell;
use std::collections::HashMap;

use super::fuzzy::Fuzzy;
use super::text::{Analyzer, Token, GROUP_PREFIX, INTENT_PREFIX};
use crate::facts::{Fact, Topic, Value};

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
/// How much a question word the index does not know counts against
/// answering, relative to the rarest known word. Paraphrases bring generic
/// words no fact contains ("rulebook", "farm equipment"); an off-topic
/// question brings several unknown words at once. Chosen on both quality
/// tables: 1.0 declined 55% of the held-out questions, 0.35 started answering
/// questions the bot must decline.
const UNKNOWN_WEIGHT: f32 = 0.45;
/// A word in more than 1/COMMON_SHARE of the facts is "common": its
/// synonyms are not looked up.
const COMMON_SHARE: usize = 4;
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
    /// Stems, synonym-group and intent terms → term id.
    terms: HashMap<String, TermId>,
    /// Adjacent stem pairs → term id (phrase bonus).
    bigrams: HashMap<(TermId, TermId), TermId>,
    /// Per term: (document, BM25 term weight), by document. The weight
    /// already holds the length normalisation, so scoring is a multiply.
    postings: Vec<Vec<(u32, f32)>>,
    /// Known words (stems and words as written) for typo lookup.
    fuzzy: Fuzzy,
    docs: usize,
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

/// Per-document accumulators, reused between searches on one thread so a
/// search on a large store allocates nothing proportional to the store.
#[derive(Default)]
struct Scratch {
    /// (score, bit mask of the question words matched; 0 = not admitted).
    /// Eight bytes a fact keeps the array cache-friendly on large stores;
    /// a question has at most [`MAX_QUERY_WORDS`] = 32 words, one bit each.
    acc: Vec<(f32, u32)>,
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Builds an index, caching what repeats across facts (stems of a word,
/// the analysis of a source sentence shared by several facts).
struct Builder<'a> {
    ix: Index,
    stems: HashMap<String, String>,
    analysed: HashMap<&'a str, Vec<Token>>,
    acc: HashMap<TermId, f32>,
}

impl<'a> Builder<'a> {
    fn term_id(&mut self, term: &str) -> TermId {
        if let Some(&id) = self.ix.terms.get(term) {
            return id;
        }
        let id = self.ix.postings.len() as TermId;
        self.ix.terms.insert(term.to_string(), id);
        self.ix.postings.push(Vec::new());
        if is_plain_word(term) {
            self.ix.fuzzy.add(term, id);
        }
        id
    }

    /// Adds `text` with field weight `w` to the current document; returns
    /// the weight it adds to the document's length.
    fn add(&mut self, text: &'a str, w: f32) -> f32 {
        let toks = match self.analysed.get(text) {
            Some(t) => t.clone(),
            None => {
                let stems = &mut self.stems;
                let analyzer = &self.ix.analyzer;
                let t = analyzer.analyze_with(text, |word| {
                    if let Some(s) = stems.get(word) {
                        return s.clone();
                    }
                    let s = analyzer.stem(word);
                    stems.insert(word.to_string(), s.clone());
                    s
                });
                self.analysed.insert(text, t.clone());
                t
            }
        };
        let mut prev: Option<TermId> = None;
        for t in &toks {
            let id = self.term_id(&t.stem);
            *self.acc.entry(id).or_default() += w;
            if is_plain_word(&t.word) {
                self.ix.fuzzy.add(&t.word, id);
            }
            for g in &t.groups {
                let gid = self.term_id(g);
                *self.acc.entry(gid).or_default() += w;
            }
            if let Some(p) = prev {
                let next = self.ix.postings.len() as TermId;
                let bid = *self.ix.bigrams.entry((p, id)).or_insert(next);
                if bid == next {
                    self.ix.postings.push(Vec::new());
                }
                *self.acc.entry(bid).or_default() += w;
            }
            prev = Some(id);
        }
        w * toks.len() as f32
    }
}

impl Index {
    /// Indexes `facts`; hit `doc` numbers are positions in that slice.
    pub fn build(facts: &[Fact], synonyms: &[Vec<String>]) -> Index {
        let mut b = Builder {
            ix: Index {
                analyzer: Analyzer::new(synonyms),
                terms: HashMap::new(),
                bigrams: HashMap::new(),
                postings: Vec::new(),
                fuzzy: Fuzzy::default(),
                docs: facts.len(),
            },
            stems: HashMap::new(),
            analysed: HashMap::new(),
            acc: HashMap::new(),
        };
        let mut doc_len = Vec::with_capacity(facts.len());
        for (doc, f) in facts.iter().enumerate() {
            b.acc.clear();
            let mut len = 0.0;
            len += b.add(&f.title.en, W_TITLE);
            len += b.add(&f.title.ru, W_TITLE);
            len += b.add(&f.text.en, W_TEXT);
            len += b.add(&f.text.ru, W_TEXT);
            len += b.add(&f.source, W_SOURCE);
            len += b.add(&f.id, W_ID);
            for a in &f.aliases {
                len += b.add(a, W_ALIAS);
            }
            for intent in fact_intents(f) {
                let id = b.term_id(intent);
                *b.acc.entry(id).or_default() += W_ALIAS;
            }
            let acc = std::mem::take(&mut b.acc);
            for (&term, &tf) in &acc {
                b.ix.postings[term as usize].push((doc as u32, tf));
            }
            b.acc = acc;
            doc_len.push(len);
        }
        let mut ix = b.ix;
        let avg = doc_len.iter().sum::<f32>() / doc_len.len().max(1) as f32;
        for p in &mut ix.postings {
            p.sort_unstable_by_key(|&(d, _)| d);
            for (doc, w) in p.iter_mut() {
                let norm = K1 * (1.0 - B + B * doc_len[*doc as usize] / avg.max(f32::EPSILON));
                *w = *w * (K1 + 1.0) / (*w + norm);
            }
            p.shrink_to_fit();
        }
        ix.fuzzy.finish();
        ix
    }

    pub fn len(&self) -> usize {
        self.docs
    }

    pub fn is_empty(&self) -> bool {
        self.docs == 0
    }

    fn idf(&self, term: TermId) -> f32 {
        let n = self.docs as f32;
        let df = self.postings[term as usize].len() as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The IDF of the rarest possible term (one no fact has).
    fn max_idf(&self) -> f32 {
        let n = self.docs as f32;
        (1.0 + (n + 0.5) / 0.5).ln()
    }

    /// Nearest known terms to an unknown word: the closest among words as
    /// written (to the word) and among stems (to its stem), since a misspelt
    /// word may stem differently ("eurasion" → "euras").
    fn fuzzy(&self, word: &str, stem: &str) -> Vec<TermId> {
        let mut found = self.fuzzy.lookup(word);
        if stem != word {
            found.extend(self.fuzzy.lookup(stem));
        }
        let Some(best) = found.iter().map(|&(d, _)| d).min() else {
            return Vec::new();
        };
        let mut out: Vec<TermId> = found
            .into_iter()
            .filter(|&(d, _)| d == best)
            .map(|(_, t)| t)
            .collect();
        out.sort_unstable();
        out.dedup();
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
                    None if is_plain_word(&t.word) => {
                        for id in self.fuzzy(&t.word, &t.stem) {
                            alts.push((id, W_FUZZY));
                        }
                    }
                    None => {}
                }
                // Synonyms of a word most facts contain add next to nothing
                // to the ranking (low IDF) but cost a second pass over a
                // long posting list on a large store: skip them.
                let common = alts.first().is_some_and(|&(id, w)| {
                    w == 1.0 && self.postings[id as usize].len() * COMMON_SHARE > self.docs
                });
                if !common {
                    for g in &t.groups {
                        if let Some(&id) = self.terms.get(g) {
                            alts.push((id, W_GROUP));
                        }
                    }
                }
                let idf = alts
                    .iter()
                    .map(|&(id, _)| self.idf(id))
                    .reduce(f32::max)
                    .unwrap_or_else(|| self.max_idf() * UNKNOWN_WEIGHT);
                QueryWord {
                    alts,
                    idf,
                    intent: false,
                }
            })
            .collect()
    }

    /// Ranks facts for a question: at most `limit` hits, best first, each
    /// covering at least `min_coverage` of the question (0 for all).
    pub fn search(&self, query: &str, limit: usize, min_coverage: f32) -> SearchResult {
        let mut tokens = self.analyzer.analyze(query);
        let mut seen = std::collections::HashSet::new();
        tokens.retain(|t| seen.insert(t.stem.clone()));
        tokens.truncate(MAX_QUERY_WORDS);
        let words = self.query_words(&tokens);
        let total: f32 = words.iter().map(|w| w.idf).sum();
        let mut result = SearchResult {
            words: words.iter().filter(|w| !w.intent).count(),
            known_words: words
                .iter()
                .filter(|w| !w.intent && !w.alts.is_empty())
                .count(),
            ..SearchResult::default()
        };
        if words.is_empty() || total <= 0.0 || self.is_empty() || limit == 0 {
            return result;
        }
        // Rarest first; intents (no weight) last.
        let mut order: Vec<usize> = (0..words.len()).collect();
        order.sort_by(|&a, &b| words[b].idf.total_cmp(&words[a].idf));

        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let Scratch { acc, touched } = &mut *scratch;
            if acc.len() < self.docs {
                acc.resize(self.docs, (0.0, 0));
            }
            let mut remaining = total;
            for &wi in &order {
                let w = &words[wi];
                // A fact first met now can match at most the words left.
                let admit = remaining >= min_coverage * total - 1e-6;
                let bit = 1u32 << wi;
                for &(term, weight) in &w.alts {
                    let s = weight * self.idf(term);
                    for &(doc, tw) in &self.postings[term as usize] {
                        let e = &mut acc[doc as usize];
                        if e.1 == 0 {
                            if !admit {
                                continue;
                            }
                            touched.push(doc);
                        }
                        e.0 += s * tw;
                        e.1 |= bit;
                    }
                }
                remaining -= w.idf;
            }
            // Phrases: adjacent question words adjacent in the fact.
            for pair in tokens.windows(2) {
                let (Some(&a), Some(&b)) =
                    (self.terms.get(&pair[0].stem), self.terms.get(&pair[1].stem))
                else {
                    continue;
                };
                if let Some(&term) = self.bigrams.get(&(a, b)) {
                    let bonus = W_BIGRAM * self.idf(term);
                    for &(doc, _) in &self.postings[term as usize] {
                        let e = &mut acc[doc as usize];
                        if e.1 != 0 {
                            e.0 += bonus;
                        }
                    }
                }
            }
            // The best `limit` hits, kept in a small heap (worst on top)
            // rather than collecting every touched fact.
            let idf: Vec<f32> = words.iter().map(|w| w.idf).collect();
            let mut heap: std::collections::BinaryHeap<Ranked> =
                std::collections::BinaryHeap::with_capacity(limit + 1);
            for &doc in touched.iter() {
                let (s, mask) = acc[doc as usize];
                acc[doc as usize] = (0.0, 0);
                let mut m = 0.0;
                let mut bits = mask;
                while bits != 0 {
                    m += idf[bits.trailing_zeros() as usize];
                    bits &= bits - 1;
                }
                let coverage = (m / total).min(1.0);
                if coverage + 1e-6 < min_coverage {
                    continue;
                }
                let hit = Ranked(Hit {
                    doc,
                    score: s * (0.25 + 0.75 * coverage),
                    coverage,
                });
                if heap.len() < limit {
                    heap.push(hit);
                } else if heap.peek().is_some_and(|worst| hit < *worst) {
                    heap.pop();
                    heap.push(hit);
                }
            }
            touched.clear();
            result.hits = heap.into_sorted_vec().into_iter().map(|r| r.0).collect();
        });
        result
    }
}

/// A hit ordered best first: higher score, then lower document number.
struct Ranked(Hit);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    /// "Less" is better, so a max-heap keeps the worst of the best on top.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .0
            .score
            .total_cmp(&self.0.score)
            .then(self.0.doc.cmp(&other.0.doc))
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

fn is_plain_word(term: &str) -> bool {
    !term.starts_with(GROUP_PREFIX)
        && !term.starts_with(INTENT_PREFIX)
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
        let r = ix.search(q, 3, 0.0);
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
        assert!(top("eurasion economic unoin").starts_with("milestones."));
    }

    #[test]
    fn unknown_words_lower_coverage() {
        let (_, ix) = index();
        let r = ix.search("population of kazakhstan", 3, 0.0);
        assert!(r.hits.iter().all(|h| h.coverage < 0.5), "{:?}", r.hits);
        assert_eq!(r.words, 2);
        assert_eq!(r.known_words, 1);
        assert!(ix
            .search("population of kazakhstan", 3, 0.5)
            .hits
            .is_empty());
    }

    #[test]
    fn min_coverage_prunes_without_changing_the_survivors() {
        let (_, ix) = index();
        for q in [
            "trade between belarus and kazakhstan in 2011",
            "когда создан таможенный союз",
            "exports of wheat",
        ] {
            let all: Vec<Hit> = ix
                .search(q, 100, 0.0)
                .hits
                .into_iter()
                .filter(|h| h.coverage >= 0.5)
                .collect();
            let pruned = ix.search(q, 100, 0.5).hits;
            assert_eq!(all, pruned, "{q}");
        }
    }

    #[test]
    fn empty_and_stopword_only_queries_find_nothing() {
        let (_, ix) = index();
        assert!(ix.search("", 3, 0.0).hits.is_empty());
        assert!(ix.search("what is the", 3, 0.0).hits.is_empty());
    }
}
