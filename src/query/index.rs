//! Ranked retrieval over the facts: a compact in-memory inverted index.
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
//!
//! Two searches give the same answer: [`Index::search_exhaustive`] scores
//! every fact that shares a word with the question (term at a time, the
//! reference), and [`Index::search`] walks the posting lists document at a
//! time with MaxScore pruning: a question word whose best possible
//! contribution cannot lift any fact into the top `limit` (or to the
//! coverage asked for) only adds to facts found through the others, and a
//! fact is dropped as soon as the bound on what it can still reach falls
//! below the current `limit`-th best. On a large store where every word is
//! common, that is what keeps a question under a millisecond. Pruning only
//! skips facts that could not be returned: the hits, their scores and their
//! order are exactly those of the exhaustive search (a property test checks
//! it on random questions over the synthetic store).
//!
//! Memory: posting lists live in flat arrays (4 bytes of fact number and
//! 2 bytes of term frequency a posting, 4 bytes a bigram posting), terms in
//! one string table. The index can be written to and read from a file
//! ([`Index::encode`], [`Index::decode`]) so a large store loads it instead
//! of rebuilding it at every start.

use std::cell::RefCell;
use std::collections::BinaryHeap;
use std::io::{Read, Write};
use std::ops::Range;

use rustc_hash::FxHashMap;

use super::compact::{CodecError, Decoder, Encoder, StrTable};
use super::fuzzy::{Fuzzy, FuzzyBuilder};
use super::text::{Analyzer, Token, GROUP_PREFIX, INTENT_PREFIX};
use crate::facts::{Fact, Topic, Value};

/// Field weights, in tenths of an occurrence: a word in an alias or a title
/// says more than one in passing. Tenths keep term frequencies exact small
/// integers (2 bytes a posting).
const W_ALIAS: u32 = 25;
const W_TITLE: u32 = 20;
const W_TEXT: u32 = 10;
const W_SOURCE: u32 = 4;
const W_ID: u32 = 10;
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
/// Above this many hits asked for, [`Index::search`] scores exhaustively:
/// pruning pays when the top few are wanted, not a long list.
const PRUNE_MAX_LIMIT: usize = 64;
/// Up to this many postings on a question's lists, [`Index::search`]
/// scores exhaustively: at about 4 ns a posting that is under 0.4 ms, and
/// pruning pays only above it (`cargo bench --bench percentiles` at 100k:
/// "customs union", 65k postings, 0.26 ms exhaustive, 0.37 ms pruned; the
/// common-word questions, 220–250k postings, 1.2–1.3 ms exhaustive,
/// 0.1–0.4 ms pruned).
const EXHAUSTIVE_MAX_POSTINGS: usize = 100_000;
/// Relative slack on every pruning bound, far above f32 rounding: a fact is
/// skipped only when even its bound plus the slack cannot make it.
const BOUND_SLACK: f32 = 1e-3;
/// Identifies the layout written by [`Index::encode`].
const FORMAT: u32 = 1;

type TermId = u32;

/// BM25's saturated weight of a term met `tf` tenths of a time in a fact
/// whose length normalisation is `norm`. One function for building the
/// bounds and for scoring, so a bound is never below a score.
#[inline]
fn term_weight(tf: u16, norm: f32) -> f32 {
    let tf = f32::from(tf) * 0.1;
    tf * (K1 + 1.0) / (tf + norm)
}

fn idf_of(docs: usize, df: usize) -> f32 {
    let n = docs as f32;
    let df = df as f32;
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// Posting lists in three flat arrays.
#[derive(Default)]
struct Lists {
    /// List `i` is `docs[starts[i]..starts[i + 1]]`.
    starts: Vec<u64>,
    /// Fact numbers, strictly ascending within a list.
    docs: Vec<u32>,
    /// Per posting, the term's frequency in tenths (see the field weights);
    /// empty for bigram lists, which only say "present".
    tfs: Vec<u16>,
}

impl Lists {
    fn count(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    fn range(&self, i: u32) -> Range<usize> {
        self.starts[i as usize] as usize..self.starts[i as usize + 1] as usize
    }

    fn docs(&self, i: u32) -> &[u32] {
        &self.docs[self.range(i)]
    }

    fn tfs(&self, i: u32) -> &[u16] {
        &self.tfs[self.range(i)]
    }

    fn df(&self, i: u32) -> usize {
        let r = self.range(i);
        r.end - r.start
    }

    fn heap_bytes(&self) -> usize {
        self.starts.capacity() * 8 + self.docs.capacity() * 4 + self.tfs.capacity() * 2
    }

    fn encode<W: Write>(&self, e: &mut Encoder<W>) {
        e.u64s(&self.starts);
        e.u32s(&self.docs);
        e.u16s(&self.tfs);
    }

    /// Decodes lists over `n_docs` facts, checking every offset and fact
    /// number; `with_tfs`: whether postings carry frequencies.
    fn decode<R: Read>(
        d: &mut Decoder<R>,
        n_docs: usize,
        with_tfs: bool,
    ) -> Result<Lists, CodecError> {
        let l = Lists {
            starts: d.u64s()?,
            docs: d.u32s()?,
            tfs: d.u16s()?,
        };
        let bad = |m| Err(CodecError::Corrupt(m));
        if l.starts.first() != Some(&0) || l.starts.last() != Some(&(l.docs.len() as u64)) {
            return bad("posting list offsets");
        }
        if with_tfs != (l.tfs.len() == l.docs.len()) || (!with_tfs && !l.tfs.is_empty()) {
            return bad("posting frequencies");
        }
        for w in l.starts.windows(2) {
            if w[0] > w[1] || w[1] > l.docs.len() as u64 {
                return bad("posting list offsets");
            }
            let docs = &l.docs[w[0] as usize..w[1] as usize];
            if docs.windows(2).any(|p| p[0] >= p[1])
                || docs.last().is_some_and(|&x| x as usize >= n_docs)
            {
                return bad("posting list order");
            }
        }
        if l.tfs.contains(&0) {
            return bad("zero term frequency");
        }
        Ok(l)
    }
}

/// The inverted index.
pub struct Index {
    /// Analyses fact text and questions alike.
    analyzer: Analyzer,
    /// Stems, synonym-group and intent terms, in ascending order: a term's
    /// id is its position.
    terms: StrTable,
    /// Per term, the facts that contain it.
    postings: Lists,
    /// Per term, its largest weight in any fact: the most a question word
    /// can add through it (MaxScore's bound). Derived on build and decode,
    /// never stored.
    max_tw: Vec<f32>,
    /// Adjacent term pairs (`first << 32 | second`), ascending: pair `i`'s
    /// facts are `bigram_postings` list `i` (phrase bonus).
    bigrams: Vec<u64>,
    bigram_postings: Lists,
    /// Per fact, its weighted length in tenths.
    lens: Vec<u32>,
    /// Per fact, BM25's length normalisation `K1 (1 − B + B·len/avg)`.
    /// Derived from `lens`.
    norms: Vec<f32>,
    /// Known words (stems and words as written) for typo lookup.
    fuzzy: Fuzzy,
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
    /// Facts whose full score was computed (the work a search did; pruning
    /// keeps it far below the facts that share a word with the question).
    pub scored: usize,
}

/// Sizes of an index, for benchmarks and logs.
#[derive(Clone, Debug, Default)]
pub struct IndexStats {
    pub docs: usize,
    pub terms: usize,
    pub postings: usize,
    pub bigrams: usize,
    pub bigram_postings: usize,
    /// Heap bytes held (approximate: capacities of the arrays).
    pub heap_bytes: usize,
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

/// How a search scores its candidates.
#[derive(Clone, Copy)]
enum Method {
    Auto,
    Exhaustive,
    Pruned,
}

/// A question, analysed and looked up, ready to be scored either way.
struct Prepared {
    words: Vec<QueryWord>,
    /// Sum of the words' IDFs: coverage is a share of it.
    total: f32,
    /// Word indices, rarest first (intents, with no weight, last).
    order: Vec<usize>,
    /// Per position in `order`: whether a fact first met at that word can
    /// still reach the coverage asked for. A fact that cannot is never
    /// scored; both searches apply the same rule.
    admit: Vec<bool>,
    /// Phrase bonuses: (bigram list, bonus, index of the pair's second word).
    phrases: Vec<(u32, f32, usize)>,
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
    analyzer: Analyzer,
    /// Term → id in order of first appearance (renumbered at the end).
    terms: FxHashMap<Box<str>, TermId>,
    names: Vec<Box<str>>,
    /// Per term, (fact, frequency in tenths) in fact order.
    lists: Vec<Vec<(u32, u32)>>,
    bigrams: FxHashMap<(TermId, TermId), u32>,
    bigram_lists: Vec<Vec<u32>>,
    fuzzy: FuzzyBuilder,
    stems: FxHashMap<Box<str>, Box<str>>,
    /// Analyses of source sentences (shared by the facts of a sentence;
    /// other fields are mostly unique and not worth keeping).
    sources: FxHashMap<&'a str, Vec<Token>>,
    /// The current fact's terms and frequencies, and its bigrams.
    acc: FxHashMap<TermId, u32>,
    doc_bigrams: Vec<u32>,
}

impl<'a> Builder<'a> {
    fn new(synonyms: &[Vec<String>]) -> Builder<'a> {
        Builder {
            analyzer: Analyzer::new(synonyms),
            terms: FxHashMap::default(),
            names: Vec::new(),
            lists: Vec::new(),
            bigrams: FxHashMap::default(),
            bigram_lists: Vec::new(),
            fuzzy: FuzzyBuilder::default(),
            stems: FxHashMap::default(),
            sources: FxHashMap::default(),
            acc: FxHashMap::default(),
            doc_bigrams: Vec::new(),
        }
    }

    /// Adds fact `doc`'s fields to the posting lists; its length.
    fn add_fact(&mut self, doc: u32, f: &'a Fact) -> u32 {
        self.acc.clear();
        self.doc_bigrams.clear();
        let mut len = 0;
        len += self.add(&f.title.en, W_TITLE, false);
        len += self.add(&f.title.ru, W_TITLE, false);
        len += self.add(&f.text.en, W_TEXT, false);
        len += self.add(&f.text.ru, W_TEXT, false);
        len += self.add(&f.source, W_SOURCE, true);
        len += self.add(&f.id, W_ID, false);
        for a in &f.aliases {
            len += self.add(a, W_ALIAS, false);
        }
        for intent in fact_intents(f) {
            let id = self.term_id(intent);
            *self.acc.entry(id).or_default() += W_ALIAS;
        }
        for (&term, &tf) in &self.acc {
            self.lists[term as usize].push((doc, tf));
        }
        self.doc_bigrams.sort_unstable();
        self.doc_bigrams.dedup();
        for &bid in &self.doc_bigrams {
            self.bigram_lists[bid as usize].push(doc);
        }
        len
    }

    /// The compact index: terms renumbered in ascending order (a term is
    /// found by binary search and its id is its position), posting lists
    /// and bigram lists flattened in that order.
    fn finish(self, lens: Vec<u32>) -> Index {
        let Builder {
            analyzer,
            names,
            mut lists,
            bigrams,
            mut bigram_lists,
            fuzzy,
            ..
        } = self;
        let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut remap = vec![0u32; names.len()];
        for (new, &old) in by_name.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let mut terms = StrTable::default();
        let mut postings = Lists {
            starts: vec![0],
            ..Lists::default()
        };
        for &old in &by_name {
            terms.push(&names[old as usize]);
            let list = std::mem::take(&mut lists[old as usize]);
            for (doc, tf) in list {
                postings.docs.push(doc);
                postings.tfs.push(u16::try_from(tf).unwrap_or(u16::MAX));
            }
            postings.starts.push(postings.docs.len() as u64);
        }
        drop(lists);
        let (bigrams, mut bigram_postings) = flatten_bigrams(bigrams, &mut bigram_lists, &remap);
        let fuzzy = fuzzy.finish(|t| remap[t as usize]);
        terms.shrink_to_fit();
        for l in [&mut postings, &mut bigram_postings] {
            l.docs.shrink_to_fit();
            l.tfs.shrink_to_fit();
        }
        Index {
            analyzer,
            terms,
            postings,
            max_tw: Vec::new(),
            bigrams,
            bigram_postings,
            lens,
            norms: Vec::new(),
            fuzzy,
        }
    }
}

/// Bigrams keyed by their two renumbered term ids, sorted, with their fact
/// lists flattened in that order.
fn flatten_bigrams(
    bigrams: FxHashMap<(TermId, TermId), u32>,
    lists: &mut [Vec<u32>],
    remap: &[u32],
) -> (Vec<u64>, Lists) {
    let mut pairs: Vec<(u64, u32)> = bigrams
        .into_iter()
        .map(|((a, b), id)| {
            (
                (u64::from(remap[a as usize]) << 32) | u64::from(remap[b as usize]),
                id,
            )
        })
        .collect();
    pairs.sort_unstable();
    let mut postings = Lists {
        starts: vec![0],
        ..Lists::default()
    };
    for &(_, id) in &pairs {
        postings
            .docs
            .extend(std::mem::take(&mut lists[id as usize]));
        postings.starts.push(postings.docs.len() as u64);
    }
    (pairs.into_iter().map(|p| p.0).collect(), postings)
}

impl<'a> Builder<'a> {
    fn term_id(&mut self, term: &str) -> TermId {
        if let Some(&id) = self.terms.get(term) {
            return id;
        }
        let id = self.names.len() as TermId;
        self.terms.insert(term.into(), id);
        self.names.push(term.into());
        self.lists.push(Vec::new());
        if is_plain_word(term) {
            self.fuzzy.add(term, id);
        }
        id
    }

    fn analyze(&mut self, text: &str) -> Vec<Token> {
        let stems = &mut self.stems;
        let analyzer = &self.analyzer;
        analyzer.analyze_with(text, |word| {
            if let Some(s) = stems.get(word) {
                return s.to_string();
            }
            let s = analyzer.stem(word);
            stems.insert(word.into(), s.as_str().into());
            s
        })
    }

    /// Adds `text` with field weight `w` (tenths) to the current fact;
    /// returns the weight it adds to the fact's length.
    fn add(&mut self, text: &'a str, w: u32, shared: bool) -> u32 {
        let toks = if shared {
            match self.sources.get(text) {
                Some(t) => t.clone(),
                None => {
                    let t = self.analyze(text);
                    self.sources.insert(text, t.clone());
                    t
                }
            }
        } else {
            self.analyze(text)
        };
        let mut prev: Option<TermId> = None;
        for t in &toks {
            let id = self.term_id(&t.stem);
            *self.acc.entry(id).or_default() += w;
            if is_plain_word(&t.word) {
                self.fuzzy.add(&t.word, id);
            }
            for g in &t.groups {
                let gid = self.term_id(g);
                *self.acc.entry(gid).or_default() += w;
            }
            if let Some(p) = prev {
                let next = self.bigram_lists.len() as u32;
                let bid = *self.bigrams.entry((p, id)).or_insert(next);
                if bid == next {
                    self.bigram_lists.push(Vec::new());
                }
                self.doc_bigrams.push(bid);
            }
            prev = Some(id);
        }
        w * toks.len() as u32
    }
}

impl Index {
    /// Indexes `facts`; hit `doc` numbers are positions in that slice.
    pub fn build(facts: &[Fact], synonyms: &[Vec<String>]) -> Index {
        Self::build_with_progress(facts, synonyms, &mut |_| {})
    }

    /// [`Index::build`], calling `progress` with the number of facts done
    /// every few thousand facts and at the end.
    pub fn build_with_progress(
        facts: &[Fact],
        synonyms: &[Vec<String>],
        progress: &mut dyn FnMut(usize),
    ) -> Index {
        let mut b = Builder::new(synonyms);
        let mut lens = Vec::with_capacity(facts.len());
        for (doc, f) in facts.iter().enumerate() {
            lens.push(b.add_fact(doc as u32, f));
            if doc % 4096 == 4095 {
                progress(doc + 1);
            }
        }
        progress(facts.len());
        let mut ix = b.finish(lens);
        ix.derive();
        ix
    }

    /// Computes what is derived from the stored arrays: length norms and
    /// per-term bounds.
    fn derive(&mut self) {
        let n = self.lens.len().max(1) as f64;
        let avg = (self.lens.iter().map(|&l| u64::from(l)).sum::<u64>() as f64 / n) as f32;
        self.norms = self
            .lens
            .iter()
            .map(|&len| K1 * (1.0 - B + B * len as f32 / avg.max(f32::EPSILON)))
            .collect();
        self.max_tw = (0..self.postings.count() as u32)
            .map(|t| {
                let r = self.postings.range(t);
                self.postings.docs[r.clone()]
                    .iter()
                    .zip(&self.postings.tfs[r])
                    .map(|(&d, &tf)| term_weight(tf, self.norms[d as usize]))
                    .fold(0.0, f32::max)
            })
            .collect();
    }

    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    pub fn stats(&self) -> IndexStats {
        IndexStats {
            docs: self.len(),
            terms: self.terms.len(),
            postings: self.postings.docs.len(),
            bigrams: self.bigrams.len(),
            bigram_postings: self.bigram_postings.docs.len(),
            heap_bytes: self.terms.heap_bytes()
                + self.postings.heap_bytes()
                + self.bigram_postings.heap_bytes()
                + (self.max_tw.capacity() + self.lens.capacity() + self.norms.capacity()) * 4
                + self.bigrams.capacity() * 8
                + self.fuzzy.heap_bytes(),
        }
    }

    /// Writes the index (everything but the analyzer, which is rebuilt
    /// from the synonyms on decode).
    pub fn encode<W: Write>(&self, e: &mut Encoder<W>) {
        e.u32(FORMAT);
        e.u32s(&self.lens);
        self.terms.encode(e);
        self.postings.encode(e);
        e.u64s(&self.bigrams);
        self.bigram_postings.encode(e);
        self.fuzzy.encode(e);
    }

    /// Reads an index written by [`Index::encode`] for a dataset with these
    /// `synonyms`, checking every offset, id and order it relies on.
    pub fn decode<R: Read>(
        d: &mut Decoder<R>,
        synonyms: &[Vec<String>],
    ) -> Result<Index, CodecError> {
        if d.u32()? != FORMAT {
            return Err(CodecError::Corrupt("index format"));
        }
        let lens = d.u32s()?;
        let n_docs = lens.len();
        let terms = StrTable::decode(d)?;
        let postings = Lists::decode(d, n_docs, true)?;
        let bigrams = d.u64s()?;
        let bigram_postings = Lists::decode(d, n_docs, false)?;
        let fuzzy = Fuzzy::decode(d, terms.len())?;
        let n_terms = terms.len() as u64;
        if postings.count() != terms.len()
            || !terms.is_sorted_strictly()
            || bigram_postings.count() != bigrams.len()
            || bigrams.windows(2).any(|w| w[0] >= w[1])
            || bigrams
                .iter()
                .any(|&p| p >> 32 >= n_terms || (p & 0xffff_ffff) >= n_terms)
        {
            return Err(CodecError::Corrupt("index tables"));
        }
        let mut ix = Index {
            analyzer: Analyzer::new(synonyms),
            terms,
            postings,
            max_tw: Vec::new(),
            bigrams,
            bigram_postings,
            lens,
            norms: Vec::new(),
            fuzzy,
        };
        ix.derive();
        Ok(ix)
    }

    fn term(&self, s: &str) -> Option<TermId> {
        self.terms.find_sorted(s).map(|i| i as TermId)
    }

    fn bigram(&self, a: TermId, b: TermId) -> Option<u32> {
        let key = (u64::from(a) << 32) | u64::from(b);
        self.bigrams.binary_search(&key).ok().map(|i| i as u32)
    }

    fn idf(&self, term: TermId) -> f32 {
        idf_of(self.len(), self.postings.df(term))
    }

    /// The IDF of the rarest possible term (one no fact has).
    fn max_idf(&self) -> f32 {
        idf_of(self.len(), 0)
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
                        .term(&t.stem)
                        .map(|id| (id, W_INTENT))
                        .into_iter()
                        .collect();
                    return QueryWord {
                        alts,
                        idf: 0.0,
                        intent: true,
                    };
                }
                let mut alts = Vec::new();
                match self.term(&t.stem) {
                    Some(id) => alts.push((id, 1.0)),
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
                    w == 1.0 && self.postings.df(id) * COMMON_SHARE > self.len()
                });
                if !common {
                    for g in &t.groups {
                        if let Some(id) = self.term(g) {
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

    /// Analyses and looks up a question; `None` when nothing can match.
    fn prepare(
        &self,
        query: &str,
        min_coverage: f32,
        result: &mut SearchResult,
    ) -> Option<Prepared> {
        let mut tokens = self.analyzer.analyze(query);
        let mut seen = std::collections::HashSet::new();
        tokens.retain(|t| seen.insert(t.stem.clone()));
        tokens.truncate(MAX_QUERY_WORDS);
        let words = self.query_words(&tokens);
        let total: f32 = words.iter().map(|w| w.idf).sum();
        result.words = words.iter().filter(|w| !w.intent).count();
        result.known_words = words
            .iter()
            .filter(|w| !w.intent && !w.alts.is_empty())
            .count();
        if words.is_empty() || total <= 0.0 || self.is_empty() {
            return None;
        }
        let mut order: Vec<usize> = (0..words.len()).collect();
        order.sort_by(|&a, &b| words[b].idf.total_cmp(&words[a].idf));
        let mut admit = Vec::with_capacity(order.len());
        let mut remaining = total;
        for &wi in &order {
            // A fact first met now can match at most the words left.
            admit.push(remaining >= min_coverage * total - 1e-6);
            remaining -= words[wi].idf;
        }
        // Phrases: adjacent question words adjacent in the fact.
        let mut phrases = Vec::new();
        for (i, pair) in tokens.windows(2).enumerate() {
            let (Some(a), Some(b)) = (self.term(&pair[0].stem), self.term(&pair[1].stem)) else {
                continue;
            };
            if let Some(list) = self.bigram(a, b) {
                let bonus = W_BIGRAM * idf_of(self.len(), self.bigram_postings.df(list));
                phrases.push((list, bonus, i + 1));
            }
        }
        Some(Prepared {
            words,
            total,
            order,
            admit,
            phrases,
        })
    }

    /// How many content words `query` has and how many of them the index
    /// knows (exactly, by synonym or by typo): [`SearchResult::words`] and
    /// [`SearchResult::known_words`] without ranking anything.
    pub fn known_words(&self, query: &str) -> (usize, usize) {
        let r = self.search_with(query, 0, 0.0, Method::Auto);
        (r.words, r.known_words)
    }

    /// Ranks facts for a question: at most `limit` hits, best first, each
    /// covering at least `min_coverage` of the question (0 for all).
    /// Scores every fact sharing a word with the question when that is
    /// cheap (few postings, or a long list asked for), else prunes; both
    /// give exactly the same hits.
    pub fn search(&self, query: &str, limit: usize, min_coverage: f32) -> SearchResult {
        self.search_with(query, limit, min_coverage, Method::Auto)
    }

    /// [`Index::search`] without pruning: scores every fact that shares a
    /// word with the question (term at a time). The reference the pruned
    /// search is tested against.
    pub fn search_exhaustive(&self, query: &str, limit: usize, min_coverage: f32) -> SearchResult {
        self.search_with(query, limit, min_coverage, Method::Exhaustive)
    }

    /// [`Index::search`] with pruning whatever the question (tests and
    /// benchmarks compare it with [`Index::search_exhaustive`]).
    pub fn search_pruned(&self, query: &str, limit: usize, min_coverage: f32) -> SearchResult {
        self.search_with(query, limit, min_coverage, Method::Pruned)
    }

    fn search_with(
        &self,
        query: &str,
        limit: usize,
        min_coverage: f32,
        method: Method,
    ) -> SearchResult {
        let mut result = SearchResult::default();
        let Some(p) = self.prepare(query, min_coverage, &mut result) else {
            return result;
        };
        if limit == 0 {
            return result;
        }
        let prune = match method {
            Method::Exhaustive => false,
            Method::Pruned => true,
            Method::Auto => {
                let postings: usize = p
                    .words
                    .iter()
                    .flat_map(|w| &w.alts)
                    .map(|&(t, _)| self.postings.df(t))
                    .chain(
                        p.phrases
                            .iter()
                            .map(|&(l, _, _)| self.bigram_postings.df(l)),
                    )
                    .sum();
                limit <= PRUNE_MAX_LIMIT && postings > EXHAUSTIVE_MAX_POSTINGS
            }
        };
        if prune {
            let (hits, scored) = self.pruned(&p, limit, min_coverage);
            result.hits = hits;
            result.scored = scored;
        } else {
            self.exhaustive(&p, limit, min_coverage, &mut result);
        }
        result
    }

    /// Term-at-a-time scoring of every fact the question's lists name.
    fn exhaustive(&self, p: &Prepared, limit: usize, min_coverage: f32, result: &mut SearchResult) {
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let Scratch { acc, touched } = &mut *scratch;
            if acc.len() < self.len() {
                acc.resize(self.len(), (0.0, 0));
            }
            for (k, &wi) in p.order.iter().enumerate() {
                let w = &p.words[wi];
                let admit = p.admit[k];
                let bit = 1u32 << wi;
                for &(term, weight) in &w.alts {
                    let s = weight * self.idf(term);
                    let docs = self.postings.docs(term);
                    let tfs = self.postings.tfs(term);
                    for (&doc, &tf) in docs.iter().zip(tfs) {
                        let e = &mut acc[doc as usize];
                        if e.1 == 0 {
                            if !admit {
                                continue;
                            }
                            touched.push(doc);
                        }
                        e.0 += s * term_weight(tf, self.norms[doc as usize]);
                        e.1 |= bit;
                    }
                }
            }
            for &(list, bonus, _) in &p.phrases {
                for &doc in self.bigram_postings.docs(list) {
                    let e = &mut acc[doc as usize];
                    if e.1 != 0 {
                        e.0 += bonus;
                    }
                }
            }
            // The best `limit` hits, kept in a small heap (worst on top)
            // rather than collecting every touched fact.
            let mut heap = TopK::new(limit);
            result.scored = touched.len();
            let mut bar = f32::NEG_INFINITY;
            for &doc in touched.iter() {
                let (s, mask) = acc[doc as usize];
                acc[doc as usize] = (0.0, 0);
                // A hit's score is at most its raw score (full coverage):
                // below the worst of a full heap it cannot get in. Most of
                // a common word's 64k facts stop here (a third of a
                // `/search belarus` at 100k went to offering them).
                if s < bar {
                    continue;
                }
                if let Some(hit) = p.hit(doc, s, mask, min_coverage) {
                    heap.offer(hit);
                    bar = heap.threshold().unwrap_or(f32::NEG_INFINITY);
                }
            }
            touched.clear();
            result.hits = heap.into_sorted();
        });
    }

    /// Document-at-a-time MaxScore over the question's posting lists.
    /// Returns the hits and how many facts were fully scored.
    ///
    /// The units of the bound are the lists: each alternative of a question
    /// word, and each phrase (adjacent question words adjacent in a fact),
    /// with the most it can add to a fact's score. The facts on the
    /// shortest lists — usually the rarest phrases, where the best facts
    /// are — are looked at first ("seeds"): the `limit`-th best of them is a
    /// high bar from the start, and those lists, fully looked at, drop out of
    /// the walk over the others, which then only scores facts that can
    /// still pass the bar.
    fn pruned(&self, p: &Prepared, limit: usize, min_coverage: f32) -> (Vec<Hit>, usize) {
        let (mut cursors, mut units, word_cursors) = self.open_lists(p);
        let walk = Walk {
            p,
            word_cursors: &word_cursors,
            phrases: word_cursors.last().map_or(0, |r| r.end)..cursors.len(),
            min_coverage,
        };
        let bound = Bound {
            total: p.total,
            min_coverage,
        };
        let mut top = Top {
            heap: TopK::new(limit),
            scored: 0,
            theta: f32::NEG_INFINITY,
        };
        units.sort_by(|a, b| a.ub.total_cmp(&b.ub));
        let seeds = self.score_seeds(&cursors, &mut units, &walk, &bound, &mut top);
        self.walk_lists(&mut cursors, &units, &seeds, &walk, &bound, &mut top);
        (top.heap.into_sorted(), top.scored)
    }

    /// One cursor per list — each alternative of each question word, then
    /// each phrase — and its unit with the most it can add to a score;
    /// also, per word, the range of its cursors.
    fn open_lists<'s>(&'s self, p: &Prepared) -> (Vec<Cursor<'s>>, Vec<Unit>, Vec<Range<usize>>) {
        let mut cursors: Vec<Cursor> = Vec::new();
        let mut units: Vec<Unit> = Vec::new();
        let mut word_cursors: Vec<Range<usize>> = Vec::with_capacity(p.words.len());
        for w in &p.words {
            let start = cursors.len();
            for &(term, weight) in &w.alts {
                let s = weight * self.idf(term);
                units.push(Unit {
                    cursor: cursors.len(),
                    ub: s * self.max_tw[term as usize],
                    idf: w.idf,
                });
                cursors.push(Cursor {
                    docs: self.postings.docs(term),
                    tfs: self.postings.tfs(term),
                    pos: 0,
                    s,
                    tw: -1.0,
                });
            }
            word_cursors.push(start..cursors.len());
        }
        for &(list, bonus, _) in &p.phrases {
            units.push(Unit {
                cursor: cursors.len(),
                ub: bonus,
                idf: 0.0,
            });
            cursors.push(Cursor {
                docs: self.bigram_postings.docs(list),
                tfs: &[],
                pos: 0,
                s: bonus,
                tw: -1.0,
            });
        }
        (cursors, units, word_cursors)
    }

    /// Scores every fact on the shortest lists, phrases first (up to
    /// [`SEED_CAP`] facts), which sets a high bar early; those lists, fully
    /// looked at, leave `units`. Returns the seeds, sorted.
    fn score_seeds(
        &self,
        cursors: &[Cursor],
        units: &mut Vec<Unit>,
        walk: &Walk,
        bound: &Bound,
        top: &mut Top,
    ) -> Vec<u32> {
        let mut by_len: Vec<usize> = (0..units.len()).collect();
        by_len.sort_by_key(|&u| {
            let c = &cursors[units[u].cursor];
            (!c.tfs.is_empty(), c.docs.len())
        });
        let mut seeded = vec![false; units.len()];
        let mut seeds: Vec<u32> = Vec::new();
        for u in by_len {
            let docs = cursors[units[u].cursor].docs;
            if seeds.len() + docs.len() > SEED_CAP {
                continue;
            }
            seeds.extend_from_slice(docs);
            seeded[u] = true;
        }
        seeds.sort_unstable();
        seeds.dedup();
        if !seeds.is_empty() {
            let sums = Sums::new(units);
            let mut probe: Vec<Cursor> = cursors.to_vec();
            for &d in &seeds {
                for c in probe.iter_mut() {
                    c.tw = -1.0;
                }
                if let Some(hit) = walk.consider(
                    &mut probe,
                    units,
                    &sums,
                    units.len(),
                    d,
                    0.0,
                    0.0,
                    bound,
                    top.theta,
                    &self.norms,
                ) {
                    top.scored += 1;
                    top.heap.offer(hit);
                    top.theta = top.heap.threshold().unwrap_or(top.theta);
                }
            }
        }
        // The seeded lists are done: no other fact is on them.
        let mut i = 0;
        units.retain(|_| {
            i += 1;
            !seeded[i - 1]
        });
        seeds
    }

    /// The MaxScore walk over the lists left: the next candidate is the
    /// smallest fact on an essential list; lists whose bounds together
    /// cannot lift a fact over the bar are non-essential and only probed.
    fn walk_lists(
        &self,
        cursors: &mut [Cursor],
        units: &[Unit],
        seeds: &[u32],
        walk: &Walk,
        bound: &Bound,
        top: &mut Top,
    ) {
        let sums = Sums::new(units);
        let mut ne = sums.essential_from(0, bound, top.theta);
        let mut next_seed = 0;
        loop {
            let mut d = u32::MAX;
            for u in &units[ne..] {
                d = d.min(cursors[u.cursor].doc());
            }
            if d == u32::MAX {
                break;
            }
            while seeds.get(next_seed).is_some_and(|&x| x < d) {
                next_seed += 1;
            }
            let seed = seeds.get(next_seed) == Some(&d);
            let mut s_ub = 0.0f32;
            let mut m_ub = 0.0f32;
            for u in &units[ne..] {
                let c = &mut cursors[u.cursor];
                if c.doc() == d {
                    if !seed {
                        s_ub += c.probe(d, &self.norms);
                        m_ub += u.idf;
                    }
                    c.pos += 1;
                } else {
                    c.tw = -1.0;
                }
            }
            if seed {
                continue;
            }
            let Some(hit) = walk.consider(
                cursors,
                units,
                &sums,
                ne,
                d,
                s_ub,
                m_ub,
                bound,
                top.theta,
                &self.norms,
            ) else {
                continue;
            };
            if top.keep(hit) {
                ne = sums.essential_from(ne, bound, top.theta);
            }
        }
    }
}

/// The best hits so far of a pruned search, the bar a fact must pass to
/// join them, and how many facts were fully scored.
struct Top {
    heap: TopK,
    scored: usize,
    /// The worst kept score once the heap is full (−∞ before).
    theta: f32,
}

impl Top {
    /// Counts `hit` as scored and keeps it if it is among the best so far;
    /// true when that raised the bar.
    #[inline]
    fn keep(&mut self, hit: Hit) -> bool {
        self.scored += 1;
        self.heap.offer(hit);
        match self.heap.threshold() {
            Some(worst) if worst > self.theta => {
                self.theta = worst;
                true
            }
            _ => false,
        }
    }
}

/// Prefix sums of the units' bounds, in the units' order.
struct Sums {
    ub: Vec<f32>,
    idf: Vec<f32>,
}

impl Sums {
    fn new(units: &[Unit]) -> Sums {
        let mut s = Sums {
            ub: vec![0.0; units.len() + 1],
            idf: vec![0.0; units.len() + 1],
        };
        for (j, u) in units.iter().enumerate() {
            s.ub[j + 1] = s.ub[j] + u.ub;
            s.idf[j + 1] = s.idf[j] + u.idf;
        }
        s
    }

    /// The first essential list at or after `ne`: the lists before it
    /// together cannot lift a fact over `theta`, so they are only probed.
    #[inline]
    fn essential_from(&self, mut ne: usize, bound: &Bound, theta: f32) -> usize {
        let lists = self.ub.len() - 1;
        while ne < lists && bound.excludes(self.ub[ne + 1], self.idf[ne + 1], theta) {
            ne += 1;
        }
        ne
    }
}

/// Facts on the rarest phrases scored before the walk, at most.
const SEED_CAP: usize = 2048;

/// A unit of the pruning bound: one list (a question word's alternative,
/// or a phrase).
struct Unit {
    cursor: usize,
    /// The most it adds to a fact's raw score.
    ub: f32,
    /// The most it adds to coverage: its word's IDF (a fact matching two
    /// alternatives of one word counts it twice here, which only loosens
    /// the bound); 0 for intents and phrases.
    idf: f32,
}

/// A posting list being walked: a word's alternative or a phrase.
#[derive(Clone)]
struct Cursor<'a> {
    docs: &'a [u32],
    /// Frequencies; empty for a phrase.
    tfs: &'a [u16],
    pos: usize,
    /// An alternative's weight times its term's IDF; a phrase's bonus.
    s: f32,
    /// At the fact last probed: the term weight (1 for a phrase), or
    /// negative when the list does not have it.
    tw: f32,
}

impl Cursor<'_> {
    fn doc(&self) -> u32 {
        self.docs.get(self.pos).copied().unwrap_or(u32::MAX)
    }

    /// Moves to fact `d` and records what the list has there; returns
    /// what it adds to the fact's raw score (0 if the fact is not on it).
    fn probe(&mut self, d: u32, norms: &[f32]) -> f32 {
        self.pos = seek(self.docs, self.pos, d);
        if self.doc() != d {
            self.tw = -1.0;
            return 0.0;
        }
        self.tw = match self.tfs.get(self.pos) {
            Some(&tf) => term_weight(tf, norms[d as usize]),
            None => 1.0,
        };
        self.s * self.tw
    }
}

/// What scoring a fact from the cursors needs.
struct Walk<'a> {
    p: &'a Prepared,
    word_cursors: &'a [Range<usize>],
    phrases: Range<usize>,
    min_coverage: f32,
}

impl Walk<'_> {
    /// Fact `d`, already looked up in the units from `ne` on (raw score
    /// at most `s`, coverage weight at most `m` so far): looks it up in the
    /// others, largest bound first, while it can still make the result
    /// (`theta`), and returns its hit if it has one.
    #[allow(clippy::too_many_arguments)]
    fn consider(
        &self,
        cursors: &mut [Cursor],
        units: &[Unit],
        sums: &Sums,
        ne: usize,
        d: u32,
        mut s: f32,
        mut m: f32,
        bound: &Bound,
        theta: f32,
        norms: &[f32],
    ) -> Option<Hit> {
        for j in (0..ne).rev() {
            if bound.excludes(s + sums.ub[j + 1], m + sums.idf[j + 1], theta) {
                return None;
            }
            let add = cursors[units[j].cursor].probe(d, norms);
            if add > 0.0 {
                s += add;
                m += units[j].idf;
            }
        }
        self.score(cursors, d)
    }

    /// Fact `d`'s hit from what the cursors recorded, computed exactly as
    /// the exhaustive search does (words rarest first, alternatives in
    /// order, then phrase bonuses), with its admission rule.
    fn score(&self, cursors: &[Cursor], d: u32) -> Option<Hit> {
        let mut s = 0.0f32;
        let mut mask = 0u32;
        let mut admitted = true;
        for (k, &wi) in self.p.order.iter().enumerate() {
            let mut matched = false;
            for c in &cursors[self.word_cursors[wi].clone()] {
                if c.tw >= 0.0 {
                    s += c.s * c.tw;
                    matched = true;
                }
            }
            if matched {
                if mask == 0 {
                    admitted = self.p.admit[k];
                }
                mask |= 1 << wi;
            }
        }
        if !admitted || mask == 0 {
            return None;
        }
        for c in &cursors[self.phrases.clone()] {
            if c.tw >= 0.0 {
                s += c.s;
            }
        }
        self.p.hit(d, s, mask, self.min_coverage)
    }
}

impl Prepared {
    /// The hit for fact `doc` with raw score `s` and matched words `mask`,
    /// if it covers enough of the question.
    fn hit(&self, doc: u32, s: f32, mask: u32, min_coverage: f32) -> Option<Hit> {
        let mut m = 0.0;
        let mut bits = mask;
        while bits != 0 {
            m += self.words[bits.trailing_zeros() as usize].idf;
            bits &= bits - 1;
        }
        let coverage = (m / self.total).min(1.0);
        if coverage + 1e-6 < min_coverage {
            return None;
        }
        Some(Hit {
            doc,
            score: s * (0.25 + 0.75 * coverage),
            coverage,
        })
    }
}

/// Which facts can no longer make the result.
struct Bound {
    total: f32,
    min_coverage: f32,
}

impl Bound {
    /// Whether a fact whose raw score is at most `s` and whose matched
    /// words weigh at most `m` is out: it cannot reach the coverage asked
    /// for, or its final score cannot reach `theta` (the `limit`-th best so
    /// far; a tie may still win on the fact number, so only a score below
    /// it is out).
    fn excludes(&self, s: f32, m: f32, theta: f32) -> bool {
        let coverage = (m / self.total).min(1.0);
        coverage * (1.0 + BOUND_SLACK) + 1e-5 < self.min_coverage
            || s * (0.25 + 0.75 * coverage) * (1.0 + BOUND_SLACK) < theta
    }
}

/// The first position at or after `pos` whose fact is ≥ `target`
/// (galloping, then binary search: cheap for near and far targets alike).
fn seek(docs: &[u32], pos: usize, target: u32) -> usize {
    if docs.get(pos).is_none_or(|&d| d >= target) {
        return pos;
    }
    let mut lo = pos;
    let mut step = 1;
    while lo + step < docs.len() && docs[lo + step] < target {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(docs.len());
    lo + 1 + docs[lo + 1..hi].partition_point(|&d| d < target)
}

/// The best `limit` hits seen, worst on top.
struct TopK {
    heap: BinaryHeap<Ranked>,
    limit: usize,
}

impl TopK {
    fn new(limit: usize) -> TopK {
        TopK {
            heap: BinaryHeap::with_capacity(limit.min(1024) + 1),
            limit,
        }
    }

    fn offer(&mut self, hit: Hit) {
        let hit = Ranked(hit);
        if self.heap.len() < self.limit {
            self.heap.push(hit);
        } else if self.heap.peek().is_some_and(|worst| hit < *worst) {
            self.heap.pop();
            self.heap.push(hit);
        }
    }

    /// The score a new hit must beat, once `limit` hits are held.
    fn threshold(&self) -> Option<f32> {
        if self.heap.len() < self.limit {
            return None;
        }
        self.heap.peek().map(|w| w.0.score)
    }

    fn into_sorted(self) -> Vec<Hit> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
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
        // The same counts without ranking, for any question.
        for q in [
            "population of kazakhstan",
            "сколько наторговали",
            "exprots from kazakstan",
            "qwerty zxcvb",
            "",
        ] {
            let r = ix.search(q, 3, 0.3);
            assert_eq!(ix.known_words(q), (r.words, r.known_words), "{q}");
        }
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
    fn pruned_and_exhaustive_agree_on_the_quality_questions() {
        let (_, ix) = index();
        let table = include_str!("../../tests/quality.toml");
        let questions: Vec<&str> = table
            .lines()
            .filter_map(|l| l.trim().strip_prefix("q = "))
            .map(|q| q.trim_matches('"'))
            .collect();
        assert!(questions.len() > 50, "{}", questions.len());
        for q in questions {
            for (limit, min) in [(6, 0.3), (10, 0.3), (1, 0.0), (3, 0.5)] {
                let a = ix.search_pruned(q, limit, min);
                let b = ix.search_exhaustive(q, limit, min);
                assert_eq!(a.hits, b.hits, "{q} limit {limit} min {min}");
            }
        }
    }

    /// The synthetic store the pruning property runs on: every word of
    /// the question vocabulary is in a large share of its facts.
    fn synthetic() -> &'static Index {
        static IX: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
        IX.get_or_init(|| {
            let ds = crate::facts::synthetic::generate(3_000, 7);
            Index::build(&ds.facts, &ds.synonyms)
        })
    }

    /// Words questions are made of: the dataset's own words (so they are
    /// common in the synthetic store), question words that become intents,
    /// stop words, words no fact has, and numbers.
    fn vocabulary() -> &'static [String] {
        static V: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        V.get_or_init(|| {
            let ds = Dataset::embedded().unwrap();
            let mut v: Vec<String> = ds
                .facts
                .iter()
                .flat_map(|f| {
                    [&f.title.en, &f.title.ru, &f.text.en, &f.text.ru]
                        .into_iter()
                        .flat_map(|t| crate::query::words(t))
                        .collect::<Vec<_>>()
                })
                .collect();
            v.sort();
            v.dedup();
            for w in [
                "when",
                "how",
                "much",
                "who",
                "сколько",
                "когда",
                "кто",
                "the",
                "of",
                "what",
                "population",
                "capital",
                "france",
                "zzyzx",
                "погода",
                "2011",
                "2012",
                "1",
            ] {
                v.push(w.to_string());
            }
            v
        })
    }

    /// A word of the vocabulary, possibly misspelt (a character dropped,
    /// doubled or two swapped), so typo lookups join in.
    fn word(i: usize, typo: u8) -> String {
        let v = vocabulary();
        let mut w: Vec<char> = v[i % v.len()].chars().collect();
        let at = i % w.len().max(1);
        match typo % 8 {
            0 if w.len() > 4 => {
                w.remove(at);
            }
            1 if w.len() > 4 => w.insert(at, w[at]),
            2 if w.len() > 4 && at + 1 < w.len() => w.swap(at, at + 1),
            _ => {}
        }
        w.into_iter().collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        /// Pruning never changes a search: the same facts, scores and order
        /// as scoring every fact, so the engine's answer and its decline
        /// decision (taken on these hits) are the same too.
        #[test]
        fn pruned_search_equals_exhaustive_search(
            picks in proptest::collection::vec((0usize..100_000, proptest::prelude::any::<u8>()), 1..9),
            limit in 1usize..=12,
            min in proptest::prop_oneof![
                proptest::prelude::Just(0.0f32),
                proptest::prelude::Just(0.3f32),
                proptest::prelude::Just(0.5f32),
                0.0f32..1.0,
            ],
        ) {
            let ix = synthetic();
            let q: Vec<String> = picks.iter().map(|&(i, t)| word(i, t)).collect();
            let q = q.join(" ");
            let pruned = ix.search_pruned(&q, limit, min);
            let all = ix.search_exhaustive(&q, limit, min);
            proptest::prop_assert_eq!(&ix.search(&q, limit, min).hits, &all.hits);
            proptest::prop_assert_eq!(&pruned.hits, &all.hits, "{}", q);
            proptest::prop_assert_eq!(pruned.words, all.words);
            proptest::prop_assert_eq!(pruned.known_words, all.known_words);
            proptest::prop_assert!(pruned.scored <= all.scored.max(1));
        }
    }

    #[test]
    fn pruning_scores_far_fewer_facts_on_common_words() {
        let ix = synthetic();
        let q = "How much was trade between Belarus and Kazakhstan in 2011?";
        let pruned = ix.search_pruned(q, 6, 0.3);
        let all = ix.search_exhaustive(q, 6, 0.3);
        assert_eq!(pruned.hits, all.hits);
        assert!(!all.hits.is_empty());
        assert!(
            pruned.scored * 4 < all.scored,
            "pruned scored {} of {}",
            pruned.scored,
            all.scored
        );
    }

    #[test]
    fn a_decoded_index_searches_like_the_built_one() {
        let ds = crate::facts::synthetic::generate(500, 3);
        let built = Index::build(&ds.facts, &ds.synonyms);
        let mut e = Encoder::new(Vec::new());
        built.encode(&mut e);
        let bytes = e.finish().unwrap();
        let mut d = Decoder::new(&bytes[..], bytes.len() as u64);
        let loaded = Index::decode(&mut d, &ds.synonyms).unwrap();
        d.finish().unwrap();
        for q in [
            "trade between belarus and kazakhstan in 2011",
            "когда создан таможенный союз",
            "exprots from kazakstan",
            "population of france",
        ] {
            assert_eq!(
                built.search(q, 10, 0.3).hits,
                loaded.search(q, 10, 0.3).hits,
                "{q}"
            );
            assert_eq!(
                built.search_exhaustive(q, 100, 0.0).hits,
                loaded.search_exhaustive(q, 100, 0.0).hits
            );
        }
        let (a, b) = (built.stats(), loaded.stats());
        assert_eq!(
            (a.docs, a.terms, a.postings, a.bigrams),
            (b.docs, b.terms, b.postings, b.bigrams)
        );
    }

    #[test]
    fn a_damaged_index_is_refused() {
        let ds = crate::facts::synthetic::generate(200, 3);
        let built = Index::build(&ds.facts, &ds.synonyms);
        let mut e = Encoder::new(Vec::new());
        built.encode(&mut e);
        let good = e.finish().unwrap();
        let load = |b: &[u8]| {
            let mut d = Decoder::new(b, b.len() as u64);
            Index::decode(&mut d, &ds.synonyms).and_then(|ix| d.finish().map(|()| ix))
        };
        assert!(load(&good).is_ok());
        for i in (0..good.len()).step_by(good.len() / 50 + 1) {
            let mut bad = good.clone();
            bad[i] = bad[i].wrapping_add(1);
            assert!(load(&bad).is_err(), "byte {i} of {}", good.len());
        }
    }

    #[test]
    fn empty_and_stopword_only_queries_find_nothing() {
        let (_, ix) = index();
        assert!(ix.search("", 3, 0.0).hits.is_empty());
        assert!(ix.search("what is the", 3, 0.0).hits.is_empty());
    }
}
