//! Synthetic datasets for benchmarks and stress tests.
//!
//! The real dataset has ~50 facts; benchmarks and the import crash test need
//! stores of 10k–100k. These facts recombine the real ones' words, so the
//! vocabulary and term statistics stay realistic, and cite real sentences
//! of the article, so the dataset passes the same validation.

use super::dataset::{Dataset, Origin};
use super::model::{Bilingual, Fact};

/// A dataset of `n` facts built from the embedded one. Deterministic for a
/// given `n` and `salt` (change `salt` to get a dataset that differs in
/// every fact).
pub fn generate(n: usize, salt: u64) -> Dataset {
    let base = Dataset::embedded().unwrap_or_else(|e| panic!("embedded dataset invalid: {e}"));
    let words_en: Vec<&str> = base
        .facts
        .iter()
        .flat_map(|f| f.text.en.split_whitespace())
        .collect();
    let words_ru: Vec<&str> = base
        .facts
        .iter()
        .flat_map(|f| f.text.ru.split_whitespace())
        .collect();
    let mut rng = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64*: tiny, deterministic, good enough for shuffling words.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut facts = Vec::with_capacity(n);
    for i in 0..n {
        let proto = &base.facts[i % base.facts.len()];
        let mut pick = |words: &[&str], k: usize| {
            (0..k)
                .map(|_| words[(next() % words.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let text = Bilingual::new(pick(&words_en, 14), pick(&words_ru, 14));
        let title = Bilingual::new(pick(&words_en, 3), pick(&words_ru, 3));
        facts.push(Fact {
            id: format!("syn.{i}"),
            order: i as u32,
            title,
            text,
            aliases: vec![pick(&words_en, 1), pick(&words_ru, 1)],
            // Synthetic ids are new, so a derivation cannot name its sources.
            derivation: proto.derivation.clone().map(|mut d| {
                d.from.clear();
                d
            }),
            ..proto.clone()
        });
    }
    Dataset {
        origin: Origin::Embedded,
        digest: format!("synthetic-{n}-{salt}"),
        facts,
        synonyms: base.synonyms,
        article: base.article,
    }
}

/// Serialises a dataset's facts in the `facts.toml` format, so tests can
/// write synthetic datasets to disk and import them through the binary.
pub fn to_toml(ds: &Dataset) -> String {
    // Our own plain strings and numbers: serialising cannot fail.
    super::dataset::facts_toml(&ds.facts).unwrap_or_default()
}

/// Writes `ds` as a dataset directory (`facts.toml`, `article.txt`,
/// `synonyms.toml`) that `factbot import DIR` reads back as the same facts:
/// how a benchmark makes a large store through the real binary.
pub fn write_dir(ds: &Dataset, dir: &std::path::Path) -> std::io::Result<()> {
    use super::dataset::{ARTICLE_FILE, FACTS_FILE, SYNONYMS_FILE};
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(FACTS_FILE), to_toml(ds))?;
    std::fs::write(dir.join(ARTICLE_FILE), &ds.article)?;
    let synonyms = super::dataset::synonyms_toml(&ds.synonyms).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(SYNONYMS_FILE), synonyms)
}
