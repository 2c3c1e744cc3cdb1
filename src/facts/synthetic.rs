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
    use std::fmt::Write;
    let mut out = String::new();
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    for f in &ds.facts {
        let _ = writeln!(out, "[[fact]]");
        let _ = writeln!(out, "id = {}", q(&f.id));
        let _ = writeln!(out, "topic = {}", q(f.topic.name()));
        let kind = if f.is_derived() { "derived" } else { "stated" };
        let _ = writeln!(out, "kind = {}", q(kind));
        let _ = writeln!(out, "paragraph = {}", f.paragraph);
        let _ = writeln!(out, "source = {}", q(&f.source));
        let _ = writeln!(out, "title_en = {}", q(&f.title.en));
        let _ = writeln!(out, "title_ru = {}", q(&f.title.ru));
        let _ = writeln!(out, "text_en = {}", q(&f.text.en));
        let _ = writeln!(out, "text_ru = {}", q(&f.text.ru));
        let aliases: Vec<String> = f.aliases.iter().map(|a| q(a)).collect();
        let _ = writeln!(out, "aliases = [{}]", aliases.join(", "));
        if let Some(d) = &f.derivation {
            let from: Vec<String> = d.from.iter().map(|a| q(a)).collect();
            let _ = writeln!(out, "derived_from = [{}]", from.join(", "));
            let _ = writeln!(out, "arithmetic_en = {}", q(&d.arithmetic.en));
            let _ = writeln!(out, "arithmetic_ru = {}", q(&d.arithmetic.ru));
            let _ = writeln!(out, "caveat_en = {}", q(&d.caveat.en));
            let _ = writeln!(out, "caveat_ru = {}", q(&d.caveat.ru));
        }
        out.push('\n');
    }
    out
}

/// Writes `ds` as a dataset directory (`facts.toml`, `article.txt`,
/// `synonyms.toml`) that `factbot import DIR` reads back as the same facts:
/// how a benchmark makes a large store through the real binary.
pub fn write_dir(ds: &Dataset, dir: &std::path::Path) -> std::io::Result<()> {
    use super::dataset::{ARTICLE_FILE, FACTS_FILE, SYNONYMS_FILE};
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(FACTS_FILE), to_toml(ds))?;
    std::fs::write(dir.join(ARTICLE_FILE), &ds.article)?;
    let groups = toml::Value::Array(
        ds.synonyms
            .iter()
            .map(|g| toml::Value::Array(g.iter().cloned().map(toml::Value::String).collect()))
            .collect(),
    );
    std::fs::write(dir.join(SYNONYMS_FILE), format!("group = {groups}\n"))
}
