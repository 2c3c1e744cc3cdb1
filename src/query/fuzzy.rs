//! Typo lookup: which known words are within an edit or two of a word.
//!
//! A symmetric-delete index (the idea behind SymSpell): every known word is
//! stored under the hashes of the strings left by deleting up to one or two
//! of its characters; a word looks up its own deletions and verifies the few
//! candidates with a real Damerau–Levenshtein distance. A lookup costs tens
//! of hash probes instead of a distance computation against every word of
//! similar length, which is what made typo questions the slowest ones.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};

use rustc_hash::{FxHashSet, FxHasher};

use super::compact::{CodecError, Decoder, Encoder, StrTable};

/// How many edits a word may have and still be a typo of a known one;
/// `None` for words too short to guess at.
pub fn typo_budget(word: &str) -> Option<usize> {
    match word.chars().count() {
        0..=3 => None,
        4..=7 => Some(1),
        _ => Some(2),
    }
}

/// The index. Built once, then read-only.
///
/// Compact: the known words in one string table, and per deletion variant
/// 8 bytes (a 32-bit hash and the word it came from, in two sorted
/// arrays). A hash collision only costs one more distance check, never a
/// wrong answer: every candidate is verified.
#[derive(Default)]
pub struct Fuzzy {
    /// Known words; word `i` stands for term `terms[i]`.
    words: StrTable,
    terms: Vec<u32>,
    /// Hashes of every deletion variant of every word, ascending.
    hashes: Vec<u32>,
    /// Per entry of `hashes`, the word it is a variant of.
    owners: Vec<u32>,
    /// Length in chars of the longest known word: a longer word (beyond the
    /// budget) cannot be a typo of any, and its variants are never made.
    max_len: u32,
}

/// Collects the known words while an index is built.
#[derive(Default)]
pub struct FuzzyBuilder {
    words: Vec<(Box<str>, u32)>,
    known: FxHashSet<Box<str>>,
}

fn hash(s: &str) -> u32 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    let v = h.finish();
    (v ^ (v >> 32)) as u32
}

/// Every distinct string made by deleting up to `max` characters of `word`
/// (the word itself included).
fn variants(word: &str, max: usize) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::new();
    seen.insert(word.to_string());
    let mut frontier: Vec<String> = vec![word.to_string()];
    for _ in 0..max {
        let mut next = Vec::new();
        for w in &frontier {
            for (i, c) in w.char_indices() {
                let mut v = String::with_capacity(w.len());
                v.push_str(&w[..i]);
                v.push_str(&w[i + c.len_utf8()..]);
                if seen.insert(v.clone()) {
                    next.push(v);
                }
            }
        }
        frontier = next;
    }
    seen.into_iter().collect()
}

/// Deletions a known word of `len` chars is stored under: a query of
/// budget 2 (8+ chars) may match a word of 6+ chars.
fn stored_edits(len: usize) -> usize {
    if len >= 6 {
        2
    } else {
        1
    }
}

impl FuzzyBuilder {
    /// Adds a known word standing for `term` (a word already known keeps
    /// its first term).
    pub fn add(&mut self, word: &str, term: u32) {
        if word.chars().count() < 3 || self.known.contains(word) {
            return;
        }
        let word: Box<str> = word.into();
        self.known.insert(word.clone());
        self.words.push((word, term));
    }

    /// The finished index; `remap` gives each term's final id.
    pub fn finish(self, remap: impl Fn(u32) -> u32) -> Fuzzy {
        let mut f = Fuzzy::default();
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (i, (word, term)) in self.words.iter().enumerate() {
            let len = word.chars().count();
            f.max_len = f.max_len.max(len as u32);
            f.words.push(word);
            f.terms.push(remap(*term));
            for v in variants(word, stored_edits(len)) {
                pairs.push((hash(&v), i as u32));
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        f.hashes = pairs.iter().map(|p| p.0).collect();
        f.owners = pairs.iter().map(|p| p.1).collect();
        f.words.shrink_to_fit();
        f.terms.shrink_to_fit();
        f
    }
}

impl Fuzzy {
    /// Known words within the typo budget of `word`: (distance, term).
    pub fn lookup(&self, word: &str) -> Vec<(usize, u32)> {
        let Some(budget) = typo_budget(word) else {
            return Vec::new();
        };
        if word.chars().count() > self.max_len as usize + budget {
            return Vec::new();
        }
        let mut seen: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        for v in variants(word, budget) {
            let h = hash(&v);
            let start = self.hashes.partition_point(|&k| k < h);
            for (&k, &idx) in self.hashes[start..].iter().zip(&self.owners[start..]) {
                if k != h {
                    break;
                }
                if seen.contains(&idx) {
                    continue;
                }
                seen.push(idx);
                let cand = self.words.get(idx as usize);
                let d = strsim::damerau_levenshtein(word, cand);
                if d <= budget {
                    out.push((d, self.terms[idx as usize]));
                }
            }
        }
        out
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.words.heap_bytes()
            + (self.terms.capacity() + self.hashes.capacity() + self.owners.capacity()) * 4
    }

    pub fn encode<W: Write>(&self, e: &mut Encoder<W>) {
        self.words.encode(e);
        e.u32s(&self.terms);
        e.u32s(&self.hashes);
        e.u32s(&self.owners);
    }

    /// Decodes and checks a table for an index of `n_terms` terms.
    pub fn decode<R: Read>(d: &mut Decoder<R>, n_terms: usize) -> Result<Fuzzy, CodecError> {
        let words = StrTable::decode(d)?;
        let terms = d.u32s()?;
        let hashes = d.u32s()?;
        let owners = d.u32s()?;
        if terms.len() != words.len()
            || terms.iter().any(|&t| t as usize >= n_terms)
            || hashes.len() != owners.len()
            || owners.iter().any(|&o| o as usize >= words.len())
            || hashes.windows(2).any(|w| w[0] > w[1])
        {
            return Err(CodecError::Corrupt("typo table"));
        }
        let max_len = words.iter().map(|w| w.chars().count()).max().unwrap_or(0) as u32;
        Ok(Fuzzy {
            words,
            terms,
            hashes,
            owners,
            max_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(words: &[&str]) -> Fuzzy {
        let mut f = FuzzyBuilder::default();
        for (i, w) in words.iter().enumerate() {
            f.add(w, i as u32);
        }
        f.finish(|t| t)
    }

    #[test]
    fn finds_substitutions_insertions_deletions_and_transpositions() {
        let f = index(&["export", "kazakhstan", "eurasian", "union"]);
        assert_eq!(f.lookup("exprot"), vec![(1, 0)]);
        assert_eq!(f.lookup("kazakstan"), vec![(1, 1)]);
        assert_eq!(f.lookup("eurasion"), vec![(1, 2)]);
        assert_eq!(f.lookup("unoin"), vec![(1, 3)]);
        assert!(f.lookup("kzakstan").iter().any(|&(d, t)| d == 2 && t == 1));
    }

    #[test]
    fn a_word_longer_than_any_known_one_costs_nothing() {
        let f = index(&["trade"]);
        assert!(f.lookup(&"a".repeat(100_000)).is_empty());
    }

    #[test]
    fn respects_the_budget() {
        let f = index(&["people", "trade"]);
        assert!(f.lookup("popul").is_empty(), "two edits on a short word");
        assert!(f.lookup("tra").is_empty(), "too short to guess");
        assert_eq!(f.lookup("trade"), vec![(0, 1)]);
    }

    #[test]
    fn agrees_with_a_brute_force_scan() {
        let words = [
            "customs",
            "territory",
            "commission",
            "intergovernmental",
            "tractors",
            "wheat",
            "союз",
            "товарооборот",
            "инвестиции",
        ];
        let f = index(&words);
        for q in [
            "custms",
            "teritory",
            "comission",
            "intergovermental",
            "tractrs",
            "weat",
            "союзз",
            "тоговарооборот",
            "инвестици",
            "zzzz",
        ] {
            let mut got: Vec<u32> = f.lookup(q).into_iter().map(|(_, t)| t).collect();
            got.sort_unstable();
            let budget = typo_budget(q).unwrap();
            let want: Vec<u32> = words
                .iter()
                .enumerate()
                .filter(|(_, w)| strsim::damerau_levenshtein(q, w) <= budget)
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(got, want, "{q}");
        }
    }
}
