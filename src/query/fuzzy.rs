//! Typo lookup: which known words are within an edit or two of a word.
//!
//! A symmetric-delete index (the idea behind SymSpell): every known word is
//! stored under the hashes of the strings left by deleting up to one or two
//! of its characters; a word looks up its own deletions and verifies the few
//! candidates with a real Damerau–Levenshtein distance. A lookup costs tens
//! of hash probes instead of a distance computation against every word of
//! similar length, which is what made typo questions the slowest ones.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

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
#[derive(Default)]
pub struct Fuzzy {
    /// Known words and the term each stands for.
    words: Vec<(String, u32)>,
    known: HashSet<String>,
    /// (hash of a deletion variant, index into `words`), sorted.
    deletes: Vec<(u64, u32)>,
    /// Length in chars of the longest known word: a longer word (beyond the
    /// budget) cannot be a typo of any, and its variants are never made.
    max_len: usize,
}

fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
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

impl Fuzzy {
    /// Adds a known word standing for `term` (duplicates are ignored).
    pub fn add(&mut self, word: &str, term: u32) {
        let len = word.chars().count();
        if len < 3 || !self.known.insert(word.to_string()) {
            return;
        }
        // A query of budget 2 (8+ chars) may match a word of 6+ chars.
        let max = if len >= 6 { 2 } else { 1 };
        let idx = self.words.len() as u32;
        self.max_len = self.max_len.max(len);
        self.words.push((word.to_string(), term));
        for v in variants(word, max) {
            self.deletes.push((hash(&v), idx));
        }
    }

    /// Call once after the last `add`.
    pub fn finish(&mut self) {
        self.deletes.sort_unstable();
        self.deletes.dedup();
        self.known = HashSet::new();
    }

    /// Known words within the typo budget of `word`: (distance, term).
    pub fn lookup(&self, word: &str) -> Vec<(usize, u32)> {
        let Some(budget) = typo_budget(word) else {
            return Vec::new();
        };
        if word.chars().count() > self.max_len + budget {
            return Vec::new();
        }
        let mut seen: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        for v in variants(word, budget) {
            let h = hash(&v);
            let start = self.deletes.partition_point(|&(k, _)| k < h);
            for &(k, idx) in &self.deletes[start..] {
                if k != h {
                    break;
                }
                if seen.contains(&idx) {
                    continue;
                }
                seen.push(idx);
                let (cand, term) = &self.words[idx as usize];
                let d = strsim::damerau_levenshtein(word, cand);
                if d <= budget {
                    out.push((d, *term));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(words: &[&str]) -> Fuzzy {
        let mut f = Fuzzy::default();
        for (i, w) in words.iter().enumerate() {
            f.add(w, i as u32);
        }
        f.finish();
        f
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
