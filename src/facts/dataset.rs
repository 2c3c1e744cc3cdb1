//! The dataset in `data/`: the human-edited source of every fact.
//!
//! `facts.toml` is written for people (flat keys, one `[[fact]]` per fact);
//! this module turns it into the stored [`Fact`] model and refuses a dataset
//! that breaks the project's one promise — every fact traces to a sentence of
//! `article.txt` — before anything reaches the store. The dataset is also
//! built into the binary, so a fresh checkout chats with no files at hand.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::{Bilingual, Derivation, Fact, PartialDate, Topic, Value};

/// The file names a dataset directory holds.
pub const FACTS_FILE: &str = "facts.toml";
pub const ARTICLE_FILE: &str = "article.txt";
pub const SYNONYMS_FILE: &str = "synonyms.toml";

const EMBEDDED_FACTS: &str = include_str!("../../data/facts.toml");
const EMBEDDED_ARTICLE: &str = include_str!("../../data/article.txt");
const EMBEDDED_SYNONYMS: &str = include_str!("../../data/synonyms.toml");

/// Where a dataset came from; the store remembers it so that a later start
/// re-imports from the same place when it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The copy of `data/` compiled into the binary.
    Embedded,
    /// A directory on disk.
    Dir(PathBuf),
}

impl Origin {
    /// The form stored in the store's metadata.
    pub fn to_meta(&self) -> String {
        match self {
            Origin::Embedded => "embedded".to_string(),
            Origin::Dir(p) => format!("dir:{}", p.display()),
        }
    }

    pub fn from_meta(s: &str) -> Option<Origin> {
        if s == "embedded" {
            Some(Origin::Embedded)
        } else {
            s.strip_prefix("dir:")
                .map(|p| Origin::Dir(PathBuf::from(p)))
        }
    }
}

/// A validated dataset, ready to import.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub origin: Origin,
    /// Facts in file order (`order` numbers them).
    pub facts: Vec<Fact>,
    /// Groups of words that mean the same thing to a reader.
    pub synonyms: Vec<Vec<String>>,
    /// The source article, verbatim.
    pub article: String,
    /// SHA-256 over the three files: equal digests mean nothing to import.
    pub digest: String,
}

/// Why a dataset was refused. Each message names the fact and the problem.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file} is not valid: {message}")]
    Syntax { file: String, message: String },
    #[error("dataset is not valid:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
    #[error(
        "the dataset directory {} has no {SYNONYMS_FILE}: importing it would remove every synonym group and change the answers; add the file (an empty one means no synonyms)",
        .0.display()
    )]
    NoSynonyms(PathBuf),
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    fact: Vec<RawFact>,
}

/// One `[[fact]]` of `facts.toml` as written (serialised back by
/// [`facts_toml`]; optional fields left out when empty).
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawFact {
    id: String,
    topic: Topic,
    kind: RawKind,
    paragraph: u32,
    source: String,
    title_en: String,
    title_ru: String,
    text_en: String,
    text_ru: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    date: Option<PartialDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    values: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    derived_from: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arithmetic_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arithmetic_ru: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caveat_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caveat_ru: Option<String>,
}

#[derive(Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Stated,
    Derived,
}

impl RawFact {
    fn of(f: &Fact) -> RawFact {
        let d = f.derivation.as_ref();
        RawFact {
            id: f.id.clone(),
            topic: f.topic,
            kind: if d.is_some() {
                RawKind::Derived
            } else {
                RawKind::Stated
            },
            paragraph: f.paragraph,
            source: f.source.clone(),
            title_en: f.title.en.clone(),
            title_ru: f.title.ru.clone(),
            text_en: f.text.en.clone(),
            text_ru: f.text.ru.clone(),
            aliases: f.aliases.clone(),
            date: f.date,
            values: f.values.clone(),
            derived_from: d.map(|d| d.from.clone()).unwrap_or_default(),
            arithmetic_en: d.map(|d| d.arithmetic.en.clone()),
            arithmetic_ru: d.map(|d| d.arithmetic.ru.clone()),
            caveat_en: d.map(|d| d.caveat.en.clone()),
            caveat_ru: d.map(|d| d.caveat.ru.clone()),
        }
    }
}

/// `facts` in the `facts.toml` format, read back by [`Dataset::parse`] as
/// the same facts (tests and benchmarks write synthetic datasets with it).
pub fn facts_toml(facts: &[Fact]) -> Result<String, toml::ser::Error> {
    toml::to_string(&RawFile {
        fact: facts.iter().map(RawFact::of).collect(),
    })
}

/// `synonyms.toml` for `groups`.
pub fn synonyms_toml(groups: &[Vec<String>]) -> Result<String, toml::ser::Error> {
    toml::to_string(&RawSynonyms {
        group: groups.to_vec(),
    })
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawSynonyms {
    #[serde(default)]
    group: Vec<Vec<String>>,
}

/// The longest id accepted: ids travel in Telegram callback data (64 bytes)
/// behind a command word.
pub const MAX_ID_LEN: usize = 40;

impl Dataset {
    /// The dataset compiled into the binary.
    pub fn embedded() -> Result<Dataset, DatasetError> {
        Dataset::parse(
            Origin::Embedded,
            EMBEDDED_FACTS,
            EMBEDDED_ARTICLE,
            EMBEDDED_SYNONYMS,
        )
    }

    /// The digest of the built-in dataset, without parsing it: a start
    /// whose store already holds it skips parsing altogether.
    pub fn embedded_digest() -> String {
        digest(EMBEDDED_FACTS, EMBEDDED_ARTICLE, EMBEDDED_SYNONYMS)
    }

    /// Reads `facts.toml`, `article.txt` and `synonyms.toml` (all three:
    /// a directory without synonyms is refused, not read as "no synonyms").
    pub fn from_dir(dir: &Path) -> Result<Dataset, DatasetError> {
        let (facts, article, synonyms) = read_dir(dir)?;
        let origin = Origin::Dir(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
        Dataset::parse(origin, &facts, &article, &synonyms)
    }

    /// The digest of a dataset directory, without parsing it.
    pub fn dir_digest(dir: &Path) -> Result<String, DatasetError> {
        let (facts, article, synonyms) = read_dir(dir)?;
        Ok(digest(&facts, &article, &synonyms))
    }

    /// Parses and validates the three files' contents.
    pub fn parse(
        origin: Origin,
        facts_toml: &str,
        article: &str,
        synonyms_toml: &str,
    ) -> Result<Dataset, DatasetError> {
        let raw: RawFile = toml::from_str(facts_toml).map_err(|e| DatasetError::Syntax {
            file: FACTS_FILE.into(),
            message: e.to_string(),
        })?;
        let syn: RawSynonyms = toml::from_str(synonyms_toml).map_err(|e| DatasetError::Syntax {
            file: SYNONYMS_FILE.into(),
            message: e.to_string(),
        })?;
        let paragraphs = paragraphs(article);
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        let mut facts = Vec::with_capacity(raw.fact.len());
        for (i, r) in raw.fact.into_iter().enumerate() {
            let id = r.id.clone();
            let mut bad = |m: String| problems.push(format!("fact {id:?}: {m}"));
            if !valid_id(&r.id) {
                bad(format!(
                    "id must be 1–{MAX_ID_LEN} bytes of a-z, 0-9, '.', '_' or '-'"
                ));
            }
            if !seen.insert(r.id.clone()) {
                bad("id is used twice".into());
            }
            r.check(&paragraphs, article, &mut bad);
            facts.push(r.into_fact(i as u32, &mut bad));
        }
        problems.extend(unknown_derivations(&facts, &seen));
        if !problems.is_empty() {
            return Err(DatasetError::Invalid(problems));
        }
        let digest = digest(facts_toml, article, synonyms_toml);
        Ok(Dataset {
            origin,
            facts,
            synonyms: syn.group,
            article: article.to_string(),
            digest,
        })
    }
}

impl RawFact {
    /// Reports what is wrong with the fact as written (where its source
    /// sentence is, empty texts) through `bad`.
    fn check(&self, paragraphs: &[&str], article: &str, bad: &mut impl FnMut(String)) {
        match paragraphs.get(self.paragraph as usize) {
            None => bad(format!(
                "paragraph {} does not exist (the article has 0–{})",
                self.paragraph,
                paragraphs.len().saturating_sub(1)
            )),
            Some(p) if !p.contains(self.source.as_str()) => {
                if article.contains(self.source.as_str()) {
                    bad(format!(
                        "source sentence is not in paragraph {}",
                        self.paragraph
                    ))
                } else {
                    bad("source sentence does not occur verbatim in the article".into())
                }
            }
            Some(_) => {}
        }
        if self.source.trim().is_empty() {
            bad("source sentence is empty".into());
        }
        for (name, v) in [
            ("title_en", &self.title_en),
            ("title_ru", &self.title_ru),
            ("text_en", &self.text_en),
            ("text_ru", &self.text_ru),
        ] {
            if v.trim().is_empty() {
                bad(format!("{name} is empty"));
            }
        }
    }

    /// The fact, `order`-th in the file; a kind that contradicts the
    /// derivation fields is reported through `bad`.
    fn into_fact(self, order: u32, bad: &mut impl FnMut(String)) -> Fact {
        let derivation = match self.kind {
            RawKind::Stated => {
                if !self.derived_from.is_empty() || self.arithmetic_en.is_some() {
                    bad("a stated fact has derivation fields; set kind = \"derived\"".into());
                }
                None
            }
            RawKind::Derived => match (
                self.arithmetic_en,
                self.arithmetic_ru,
                self.caveat_en,
                self.caveat_ru,
            ) {
                (Some(ae), Some(ar), Some(ce), Some(cr)) => Some(Derivation {
                    from: self.derived_from,
                    arithmetic: Bilingual::new(ae, ar),
                    caveat: Bilingual::new(ce, cr),
                }),
                _ => {
                    bad("a derived fact needs arithmetic_en/_ru and caveat_en/_ru".into());
                    None
                }
            },
        };
        Fact {
            id: self.id,
            topic: self.topic,
            order,
            title: Bilingual::new(self.title_en, self.title_ru),
            text: Bilingual::new(self.text_en, self.text_ru),
            source: self.source,
            paragraph: self.paragraph,
            aliases: self.aliases,
            date: self.date,
            values: self.values,
            derivation,
        }
    }
}

/// Derived facts that name a fact the dataset does not have.
fn unknown_derivations(facts: &[Fact], ids: &HashSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for f in facts {
        for from in f.derivation.iter().flat_map(|d| &d.from) {
            if !ids.contains(from) {
                problems.push(format!(
                    "fact {:?}: derived_from names unknown fact {from:?}",
                    f.id
                ));
            }
        }
    }
    problems
}

fn read_dir(dir: &Path) -> Result<(String, String, String), DatasetError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| DatasetError::Io { path, source })
    };
    let facts = read(FACTS_FILE)?;
    let article = read(ARTICLE_FILE)?;
    if !dir.join(SYNONYMS_FILE).exists() {
        return Err(DatasetError::NoSynonyms(dir.to_path_buf()));
    }
    Ok((facts, article, read(SYNONYMS_FILE)?))
}

/// SHA-256 over the three files, each prefixed by its length.
fn digest(facts_toml: &str, article: &str, synonyms_toml: &str) -> String {
    let mut h = Sha256::new();
    for part in [facts_toml, article, synonyms_toml] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The article's paragraphs: one per non-empty line, the headline first (0).
pub fn paragraphs(article: &str) -> Vec<&str> {
    article
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serialiser writes what the parser reads: the embedded dataset
    /// (stated and derived facts, dates, values) survives the round trip.
    #[test]
    fn facts_and_synonyms_serialise_back_to_the_same_dataset() {
        let ds = Dataset::embedded().unwrap();
        let facts = facts_toml(&ds.facts).unwrap();
        let synonyms = synonyms_toml(&ds.synonyms).unwrap();
        let back = Dataset::parse(Origin::Embedded, &facts, &ds.article, &synonyms).unwrap();
        assert_eq!(back.facts, ds.facts);
        assert_eq!(back.synonyms, ds.synonyms);
        assert!(ds
            .facts
            .iter()
            .any(|f| f.derivation.is_some() && f.date.is_some()));
        assert!(ds.facts.iter().any(|f| !f.values.is_empty()));
    }

    const ARTICLE: &str = "Headline\nFirst sentence here. Second one.\nThird paragraph.\n";

    fn fact(id: &str, paragraph: u32, source: &str) -> String {
        format!(
            "[[fact]]\nid = {id:?}\ntopic = \"trade\"\nkind = \"stated\"\nparagraph = {paragraph}\n\
             source = {source:?}\ntitle_en = \"t\"\ntitle_ru = \"т\"\ntext_en = \"x\"\ntext_ru = \"х\"\n"
        )
    }

    #[test]
    fn embedded_dataset_is_valid() {
        let ds = Dataset::embedded().expect("the dataset in data/ must validate");
        assert!(ds.facts.len() >= 40, "only {} facts", ds.facts.len());
    }

    #[test]
    fn every_source_sentence_occurs_verbatim_in_the_article() {
        let ds = Dataset::embedded().unwrap();
        let paras = paragraphs(&ds.article);
        for f in &ds.facts {
            assert!(
                paras[f.paragraph as usize].contains(&f.source),
                "{}: {:?} not in paragraph {}",
                f.id,
                f.source,
                f.paragraph
            );
        }
        // And every body sentence of the article is the source of some fact.
        for (n, p) in paras.iter().enumerate().skip(1) {
            for sentence in p.split_inclusive(". ").map(str::trim) {
                let head: String = sentence.chars().take(40).collect();
                assert!(
                    ds.facts.iter().any(|f| f.source.contains(head.as_str())),
                    "paragraph {n}: no fact cites {sentence:?}"
                );
            }
        }
    }

    #[test]
    fn refuses_a_sentence_not_in_the_article() {
        let toml = fact("a.b", 1, "Invented sentence.");
        let err = Dataset::parse(Origin::Embedded, &toml, ARTICLE, "").unwrap_err();
        assert!(err.to_string().contains("does not occur verbatim"), "{err}");
    }

    #[test]
    fn refuses_the_wrong_paragraph_duplicate_ids_and_bad_ids() {
        let toml = [
            fact("a.b", 2, "First sentence here."),
            fact("a.c", 1, "Second one."),
            fact("a.c", 1, "Second one."),
            fact("Bad Id", 1, "Second one."),
        ]
        .concat();
        let err = Dataset::parse(Origin::Embedded, &toml, ARTICLE, "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not in paragraph 2"), "{err}");
        assert!(err.contains("used twice"), "{err}");
        assert!(err.contains("\"Bad Id\": id must be"), "{err}");
    }

    #[test]
    fn a_directory_without_synonyms_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FACTS_FILE), fact("a.b", 1, "Second one.")).unwrap();
        std::fs::write(dir.path().join(ARTICLE_FILE), ARTICLE).unwrap();
        let e = Dataset::from_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("no synonyms.toml") && e.contains("synonym"),
            "{e}"
        );
        assert!(Dataset::dir_digest(dir.path()).is_err());
        std::fs::write(dir.path().join(SYNONYMS_FILE), "").unwrap();
        assert!(
            Dataset::from_dir(dir.path()).is_ok(),
            "an empty file is fine"
        );
    }

    #[test]
    fn digest_changes_with_any_file() {
        let toml = fact("a.b", 1, "Second one.");
        let a = Dataset::parse(Origin::Embedded, &toml, ARTICLE, "").unwrap();
        let b =
            Dataset::parse(Origin::Embedded, &toml, ARTICLE, "group = [[\"x\", \"y\"]]").unwrap();
        let c = Dataset::parse(Origin::Embedded, &toml, ARTICLE, "").unwrap();
        assert_ne!(a.digest, b.digest);
        assert_eq!(a.digest, c.digest);
    }
}
