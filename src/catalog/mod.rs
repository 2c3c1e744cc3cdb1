//! What answering and notifications read: the facts (or the way to them),
//! their ids, topics and dates, and the search index — and [`Live`], the
//! current catalog, swapped as a whole by a live import.
//!
//! It sits below both `answer` and `notify`, which read it and never each
//! other: an answer ranks and quotes facts from it, a notification renders
//! a changed fact or a digest from it.
//!
//! Two failures this prevents on a large store. Memory: 100,000 facts
//! decoded take about 1.6 KB each, so a store above [`RESIDENT_FACTS`] keeps
//! only ids, topics, dates and the compact index in memory and reads the few
//! facts a reply shows from the store (a sled lookup and a JSON decode,
//! tens of microseconds). Start-up: indexing 100,000 facts takes seconds, so
//! such a store's index is persisted in `catalog.bin` in the store
//! directory, keyed by the dataset digest and a fingerprint of the indexing
//! code, and loaded at the next start. A file that is missing, for another
//! dataset or another indexing, truncated or damaged (checksum, offsets,
//! ids: see `query::compact`) is rebuilt, never trusted. An import changes
//! the digest, so the next catalog is rebuilt and persisted again.
//!
//! The same goes for a follow-up's "and in 1990?": which facts are about
//! which year is held in memory ([`Catalog::by_topic_in_year`]), so a year
//! no fact has is answered without reading every fact from the store
//! (320–360 ms median at 100k facts when it did).
//!
//! A small store (the real dataset) keeps its facts decoded in memory, so an
//! answer in flight during a live import keeps the facts it ranked; on a
//! large store such an answer may show a fact's new text.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::facts::{
    paragraphs, Dataset, Fact, ImportReport, PartialDate, Store, StoreError, Topic,
};
use crate::query::{CodecError, Decoder, Encoder, Index, IndexStats, SearchResult, StrTable};

/// Stores with more facts than this read facts from the store on demand
/// and persist their index; smaller ones hold every fact in memory and
/// index at start (under 0.3 s at this size).
pub const RESIDENT_FACTS: usize = 5_000;
/// Ids of one namespace a mistyped id is compared with, at most (each a
/// Levenshtein distance, about 0.1 µs): `/fact syn.1234x` on the synthetic
/// store, whose 100,000 ids are all `syn.N`, took 12 ms median and 20 ms
/// p99 comparing them all (`cargo bench --bench percentiles -- big "/fact
/// typo"`). A larger namespace is searched around where the mistyped id
/// sorts: the typos that keep an id's beginning (most: a wrong, missing
/// or extra character near its end) are found as before.
pub const MAX_ID_CANDIDATES: usize = 2_048;
/// The persisted catalog's file name in the store directory.
pub const CATALOG_FILE: &str = "catalog.bin";
const MAGIC: &[u8] = b"factbot catalog";
/// Bumped when the layout of `catalog.bin` changes (2: the years table).
const CATALOG_FORMAT: u32 = 2;

/// Where a catalog's facts are.
enum Facts {
    /// Decoded, in dataset order.
    Resident(Vec<Arc<Fact>>),
    /// In the store; read on demand by id.
    Stored(Store),
}

/// Per fact, in dataset order: what listing and lookup need without the
/// fact itself.
#[derive(Default)]
struct Docs {
    ids: StrTable,
    topics: Vec<u8>,
    /// Packed dates (see [`pack_date`]); 0 for none.
    dates: Vec<u64>,
    /// The years each fact is about ([`Fact::years`]): fact `d`'s are
    /// `years[year_starts[d]..year_starts[d + 1]]` (as `u32`, two's
    /// complement), so `year_starts` has one entry more than there are
    /// facts.
    year_starts: Vec<u32>,
    years: Vec<u32>,
}

/// How the catalog was made (logs and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Indexed at this start; facts held in memory.
    Built,
    /// Indexed at this start and persisted for the next.
    BuiltAndSaved,
    /// Loaded from `catalog.bin`.
    Loaded,
}

/// Everything answering needs in memory, rebuilt as a whole after an import.
pub struct Catalog {
    facts: Facts,
    docs: Docs,
    /// Fact numbers in ascending order of id.
    by_id: Vec<u32>,
    /// Per topic, its facts in reading order (milestones by date).
    by_topic: HashMap<Topic, Vec<u32>>,
    /// Per topic and year, the topic's facts about that year, in the
    /// topic's reading order.
    by_topic_year: HashMap<(Topic, i32), Vec<u32>>,
    /// Per id namespace (the part before the first '.'), its facts in
    /// ascending order of id.
    by_namespace: HashMap<String, Vec<u32>>,
    index: Index,
    /// The article's headline, named when a source is quoted.
    headline: String,
    origin: Origin,
    /// Who the People facts are (a follow-up's "who did he meet?" needs the
    /// people an answer names): scanning the People facts per answer cost
    /// 14 ms median at 100k facts. Built when a resident catalog is
    /// assembled (its answers run on runtime threads), on first use for a
    /// stored one.
    people: OnceLock<People>,
}

impl Catalog {
    /// A catalog over `facts` (in dataset order), held in memory.
    pub fn build(facts: Vec<Fact>, synonyms: &[Vec<String>], headline: String) -> Catalog {
        let index = Index::build(&facts, synonyms);
        let docs = Docs::of(&facts);
        let facts = Facts::Resident(facts.into_iter().map(Arc::new).collect());
        Catalog::assemble(facts, docs, index, headline, Origin::Built)
    }

    /// The catalog of the store's current dataset: loaded from
    /// `catalog.bin` when that matches, else built (and, for a large
    /// store, persisted). `progress(done, total)` follows a build.
    pub fn open(
        store: &Store,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Catalog, StoreError> {
        Self::open_with(store, RESIDENT_FACTS, progress)
    }

    /// [`Catalog::open`] with the size above which facts stay in the store
    /// (tests use a small one).
    pub fn open_with(
        store: &Store,
        resident_facts: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Catalog, StoreError> {
        let article = store.article()?;
        let headline = paragraphs(&article)
            .first()
            .copied()
            .unwrap_or("")
            .to_string();
        let synonyms = store.synonyms()?;
        let digest = store.dataset_digest()?.unwrap_or_default();
        let file = persisted_path(store);
        if let Some(path) = file.as_deref().filter(|p| p.exists()) {
            if let Some((docs, index)) = load_saved(path, &digest, &synonyms) {
                let facts = Facts::Stored(store.clone());
                return Ok(Catalog::assemble(
                    facts,
                    docs,
                    index,
                    headline,
                    Origin::Loaded,
                ));
            }
        }
        let facts = store.facts()?;
        if facts.len() <= resident_facts {
            if let Some(path) = file.as_deref().filter(|p| p.exists()) {
                let _ = std::fs::remove_file(path);
            }
            return Ok(Catalog::resident(facts, &synonyms, headline, progress));
        }
        let (docs, index) = index_large(facts, &synonyms, progress);
        let origin = match &file {
            Some(path) => persist(store, path, &digest, &docs, &index)?,
            None => Origin::Built,
        };
        Ok(Catalog::assemble(
            Facts::Stored(store.clone()),
            docs,
            index,
            headline,
            origin,
        ))
    }

    /// A small store's catalog: indexed now, its facts held in memory.
    fn resident(
        facts: Vec<Fact>,
        synonyms: &[Vec<String>],
        headline: String,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Catalog {
        let total = facts.len();
        let index = Index::build_with_progress(&facts, synonyms, &mut |done| progress(done, total));
        let docs = Docs::of(&facts);
        let facts = Facts::Resident(facts.into_iter().map(Arc::new).collect());
        Catalog::assemble(facts, docs, index, headline, Origin::Built)
    }

    fn assemble(
        facts: Facts,
        docs: Docs,
        index: Index,
        headline: String,
        origin: Origin,
    ) -> Catalog {
        let n = docs.ids.len() as u32;
        let mut by_id: Vec<u32> = (0..n).collect();
        by_id.sort_unstable_by(|&a, &b| docs.ids.get(a as usize).cmp(docs.ids.get(b as usize)));
        let mut by_topic: HashMap<Topic, Vec<u32>> = HashMap::new();
        let mut by_namespace: HashMap<String, Vec<u32>> = HashMap::new();
        for doc in 0..n {
            if let Some(&t) = Topic::ALL.get(docs.topics[doc as usize] as usize) {
                by_topic.entry(t).or_default().push(doc);
            }
        }
        // In id order, taken from `by_id` (see `closest_id`).
        for &doc in &by_id {
            let ns = namespace(docs.ids.get(doc as usize));
            match by_namespace.get_mut(ns) {
                Some(v) => v.push(doc),
                None => {
                    by_namespace.insert(ns.to_string(), vec![doc]);
                }
            }
        }
        if let Some(m) = by_topic.get_mut(&Topic::Milestones) {
            // By date, undated last; dataset order within a date.
            m.sort_by_key(|&d| {
                let date = unpack_date(docs.dates[d as usize]);
                (date.is_none(), date, d)
            });
        }
        let mut by_topic_year: HashMap<(Topic, i32), Vec<u32>> = HashMap::new();
        for (&t, in_topic) in &by_topic {
            for &d in in_topic {
                for &y in docs.years_of(d) {
                    by_topic_year.entry((t, y as i32)).or_default().push(d);
                }
            }
        }
        let cat = Catalog {
            facts,
            docs,
            by_id,
            by_topic,
            by_topic_year,
            by_namespace,
            index,
            headline,
            origin,
            people: OnceLock::new(),
        };
        if cat.is_resident() {
            // Built now, not by the first answer that needs it: answers
            // from a resident catalog run on a transport's async runtime
            // thread (`Engine::answer_in_memory`), which must not stall on
            // a build. A stored catalog's answers run on blocking threads.
            cat.people();
        }
        cat
    }

    /// The people of the People topic and the spellings an answer may
    /// name them by, matched in one pass (see [`People`]).
    pub fn people(&self) -> &People {
        self.people.get_or_init(|| {
            let docs = self
                .by_topic
                .get(&Topic::People)
                .map_or(&[][..], Vec::as_slice);
            People::of(docs.iter().filter_map(|&d| Some((d, self.fact(d)?))))
        })
    }

    /// The article's headline, named when a source is quoted.
    pub fn headline(&self) -> &str {
        &self.headline
    }

    /// How this catalog was made.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Whether every fact is in memory (a store of at most
    /// [`RESIDENT_FACTS`]): then showing a fact reads no disk.
    pub fn is_resident(&self) -> bool {
        matches!(self.facts, Facts::Resident(_))
    }

    /// Number of facts.
    pub fn len(&self) -> usize {
        self.docs.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every fact id, in dataset order.
    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.docs.ids.iter()
    }

    /// The id of fact number `doc` (a search hit's `doc`).
    pub fn id(&self, doc: u32) -> &str {
        self.docs.ids.get(doc as usize)
    }

    /// Fact number `doc`; `None` if the store no longer has it (a live
    /// import removed it) or cannot read it (logged).
    pub fn fact(&self, doc: u32) -> Option<Arc<Fact>> {
        match &self.facts {
            Facts::Resident(v) => v.get(doc as usize).cloned(),
            Facts::Stored(store) => {
                let id = self.docs.ids.get(doc as usize);
                match store.fact(id) {
                    Ok(f) => f.map(Arc::new),
                    Err(e) => {
                        tracing::warn!(id, error = %e, "cannot read a fact from the store");
                        None
                    }
                }
            }
        }
    }

    fn doc_of(&self, id: &str) -> Option<u32> {
        let i = self
            .by_id
            .partition_point(|&d| self.docs.ids.get(d as usize) < id);
        self.by_id
            .get(i)
            .copied()
            .filter(|&d| self.docs.ids.get(d as usize) == id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Fact>> {
        self.fact(self.doc_of(id)?)
    }

    /// A topic's facts in reading order (milestones by date, undated last).
    pub fn by_topic(&self, topic: Topic) -> impl Iterator<Item = Arc<Fact>> + '_ {
        self.by_topic
            .get(&topic)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|&d| self.fact(d))
    }

    /// A topic's facts about `year` ([`Fact::years`]), in reading order:
    /// the same as filtering [`Catalog::by_topic`] by year, reading only
    /// the facts it yields.
    pub fn by_topic_in_year(
        &self,
        topic: Topic,
        year: i32,
    ) -> impl Iterator<Item = Arc<Fact>> + '_ {
        self.by_topic_year
            .get(&(topic, year))
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|&d| self.fact(d))
    }

    /// How many facts a topic has.
    pub fn topic_len(&self, topic: Topic) -> usize {
        self.by_topic.get(&topic).map_or(0, Vec::len)
    }

    /// The first `n` facts in dataset order.
    pub fn first(&self, n: usize) -> Vec<Arc<Fact>> {
        (0..self.len().min(n) as u32)
            .filter_map(|d| self.fact(d))
            .collect()
    }

    /// Every dated fact: (id, date), in dataset order.
    pub fn dated(&self) -> impl Iterator<Item = (&str, PartialDate)> + '_ {
        self.docs
            .dates
            .iter()
            .enumerate()
            .filter_map(|(d, &p)| Some((self.docs.ids.get(d), unpack_date(p)?)))
    }

    /// Ranked candidates for a question (see [`Index::search`]).
    pub fn search(&self, question: &str, limit: usize, min_coverage: f32) -> SearchResult {
        self.index.search(question, limit, min_coverage)
    }

    /// A question's content words and how many the index knows (see
    /// [`Index::known_words`]).
    pub fn known_words(&self, question: &str) -> (usize, usize) {
        self.index.known_words(question)
    }

    /// The raw ranked candidates for a question, before the answer cut-offs.
    pub fn explain(&self, question: &str, limit: usize) -> SearchResult {
        self.index.search(question, limit, 0.0)
    }

    pub fn index_stats(&self) -> IndexStats {
        self.index.stats()
    }

    /// The fact id closest to a mistyped one, for "did you mean". Only ids
    /// of the same namespace (`trade.` in `trade.2011`) are compared — or of
    /// the namespace closest to a mistyped one — and of a namespace larger
    /// than [`MAX_ID_CANDIDATES`] only those around where the mistyped id
    /// sorts, so the cost stays small on a large store.
    pub fn closest_id(&self, id: &str) -> Option<&str> {
        // No id is longer than MAX_ID_LEN, and at most 3 edits are offered:
        // a pasted essay is compared with nothing.
        if id.len() > crate::facts::MAX_ID_LEN + 3 {
            return None;
        }
        let ns = namespace(id);
        let candidates = match self.by_namespace.get(ns) {
            Some(c) => c,
            None => {
                let (_, near) = self
                    .by_namespace
                    .keys()
                    .map(|k| (strsim::levenshtein(k, ns), k))
                    .filter(|(d, _)| *d <= 2)
                    .min()?;
                self.by_namespace.get(near)?
            }
        };
        let near = if candidates.len() <= MAX_ID_CANDIDATES {
            &candidates[..]
        } else {
            let at = candidates.partition_point(|&d| self.docs.ids.get(d as usize) < id);
            let start = at
                .saturating_sub(MAX_ID_CANDIDATES / 2)
                .min(candidates.len() - MAX_ID_CANDIDATES);
            &candidates[start..start + MAX_ID_CANDIDATES]
        };
        near.iter()
            .map(|&d| {
                let fid = self.docs.ids.get(d as usize);
                (strsim::levenshtein(fid, id), fid)
            })
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, id)| id)
    }
}

/// The current catalog of a store: readers take it (an `Arc`, cheap) and
/// keep it for the whole of an answer or a send; a live import swaps in a
/// new one as a whole, so nobody sees half of each.
pub struct Live {
    store: Store,
    current: RwLock<Arc<Catalog>>,
    /// One live import at a time, from the store write to the swap: two at
    /// once could leave the catalog of the one that committed first.
    importing: Mutex<()>,
}

impl Live {
    /// The catalog of `store`'s current dataset (see [`Catalog::open`]).
    pub fn open(store: Store, progress: &mut dyn FnMut(usize, usize)) -> Result<Live, StoreError> {
        let catalog = Catalog::open(&store, progress)?;
        Ok(Live {
            store,
            current: RwLock::new(Arc::new(catalog)),
            importing: Mutex::new(()),
        })
    }

    /// The current catalog (cheap: an `Arc` clone).
    pub fn get(&self) -> Arc<Catalog> {
        match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Imports `ds` into the store and, if anything changed, swaps in a new
    /// catalog; readers keep the one they hold. An empty or drastically
    /// smaller dataset is refused unless `allow_removals` (see
    /// [`Store::import_with`]).
    pub fn import_with(
        &self,
        ds: &Dataset,
        allow_removals: bool,
    ) -> Result<ImportReport, StoreError> {
        let _one = self.importing.lock().unwrap_or_else(|p| p.into_inner());
        let report = self.store.import_with(ds, allow_removals)?;
        if report.written {
            let fresh = Arc::new(Catalog::open(&self.store, &mut |_, _| {})?);
            match self.current.write() {
                Ok(mut c) => *c = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            }
        }
        Ok(report)
    }
}

/// The namespace of a fact id: `trade` for `trade.2011`.
fn namespace(id: &str) -> &str {
    id.split('.').next().unwrap_or(id)
}

impl Docs {
    fn of(facts: &[Fact]) -> Docs {
        let mut d = Docs {
            year_starts: vec![0],
            ..Docs::default()
        };
        for f in facts {
            d.ids.push(&f.id);
            d.topics
                .push(Topic::ALL.iter().position(|&t| t == f.topic).unwrap_or(0) as u8);
            d.dates.push(pack_date(f.date));
            d.years.extend(f.years().into_iter().map(|y| y as u32));
            d.year_starts.push(d.years.len() as u32);
        }
        d.ids.shrink_to_fit();
        d.years.shrink_to_fit();
        d
    }

    /// The years fact `doc` is about (as stored: `u32`).
    fn years_of(&self, doc: u32) -> &[u32] {
        let d = doc as usize;
        match (self.year_starts.get(d), self.year_starts.get(d + 1)) {
            (Some(&a), Some(&b)) => self.years.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// A date in 8 bytes: bit 63 set when present, the year in bits 16–47,
/// month and day (0 = not given) in bits 8–15 and 0–7.
fn pack_date(d: Option<PartialDate>) -> u64 {
    match d {
        None => 0,
        Some(d) => {
            (1 << 63)
                | (u64::from(d.year as u32) << 16)
                | (u64::from(d.month.unwrap_or(0)) << 8)
                | u64::from(d.day.unwrap_or(0))
        }
    }
}

fn unpack_date(p: u64) -> Option<PartialDate> {
    if p >> 63 == 0 {
        return None;
    }
    let nonzero = |v: u8| (v != 0).then_some(v);
    Some(PartialDate {
        year: ((p >> 16) & 0xffff_ffff) as u32 as i32,
        month: nonzero(((p >> 8) & 0xff) as u8),
        day: nonzero((p & 0xff) as u8),
    })
}

/// The index and docs saved in `path`, if they are for this dataset and
/// this indexing code; else `None`, logged, and the caller rebuilds.
fn load_saved(path: &Path, digest: &str, synonyms: &[Vec<String>]) -> Option<(Docs, Index)> {
    match load(path, &key(digest), synonyms) {
        Ok(Some((docs, index))) => {
            tracing::debug!(facts = docs.ids.len(), "search index loaded");
            return Some((docs, index));
        }
        Ok(None) => tracing::info!(
            file = %path.display(),
            "the saved search index is for another dataset or factbot version; rebuilding it"
        ),
        Err(e) => tracing::warn!(
            file = %path.display(),
            error = %e,
            "the saved search index is unreadable; rebuilding it"
        ),
    }
    None
}

/// A large store's index and docs, built now (logged: it takes seconds);
/// the facts are dropped once indexed.
fn index_large(
    facts: Vec<Fact>,
    synonyms: &[Vec<String>],
    progress: &mut dyn FnMut(usize, usize),
) -> (Docs, Index) {
    let total = facts.len();
    tracing::info!(facts = total, "building the search index");
    let start = std::time::Instant::now();
    let index = Index::build_with_progress(&facts, synonyms, &mut |done| progress(done, total));
    let docs = Docs::of(&facts);
    drop(facts);
    tracing::info!(
        facts = total,
        seconds = format!("{:.1}", start.elapsed().as_secs_f64()),
        "search index built"
    );
    (docs, index)
}

/// Saves a large store's index for the next start, if the dataset is still
/// the one indexed; `BuiltAndSaved` when saved, else `Built`.
fn persist(
    store: &Store,
    path: &Path,
    digest: &str,
    docs: &Docs,
    index: &Index,
) -> Result<Origin, StoreError> {
    // The dataset may have changed while we read it (a concurrent
    // import): persist only an index known to match its key.
    if store.dataset_digest()?.unwrap_or_default() != digest {
        return Ok(Origin::Built);
    }
    match save(path, &key(digest), docs, index) {
        Ok(()) => Ok(Origin::BuiltAndSaved),
        Err(e) => {
            tracing::warn!(
                file = %path.display(),
                error = %e,
                "cannot save the search index; the next start rebuilds it"
            );
            Ok(Origin::Built)
        }
    }
}

/// `catalog.bin` of an on-disk store (none for a temporary one).
fn persisted_path(store: &Store) -> Option<PathBuf> {
    let dir = store.dir();
    (!dir.as_os_str().is_empty()).then(|| dir.join(CATALOG_FILE))
}

/// What a persisted catalog must have been made for: this dataset, and
/// this indexing code.
fn key(digest: &str) -> String {
    format!("{digest}\n{}", fingerprint())
}

/// A fingerprint of how this build indexes: a hash of the index it makes
/// of the built-in dataset. Any change to analysis (stemming, stop words,
/// synonyms handling), weights or the index layout changes it, so a
/// catalog persisted by another factbot is never taken for a current one.
/// Costs one index of ~50 facts, once per process.
fn fingerprint() -> &'static str {
    static F: OnceLock<String> = OnceLock::new();
    F.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let ds = match Dataset::embedded() {
            Ok(ds) => ds,
            // Unreachable for a released binary (tests check the data);
            // a constant still keys nothing stale: the format is in the key.
            Err(_) => return format!("format-{CATALOG_FORMAT}"),
        };
        let mut e = Encoder::new(Sha256Writer(Sha256::new()));
        Index::build(&ds.facts, &ds.synonyms).encode(&mut e);
        let h = match e.finish() {
            Ok(w) => w.0.finalize(),
            Err(_) => return format!("format-{CATALOG_FORMAT}"),
        };
        format!("{CATALOG_FORMAT}-{}", hex(&h[..16]))
    })
}

struct Sha256Writer(sha2::Sha256);

impl std::io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes the catalog next to the store, atomically: a temporary file
/// renamed over the old one (a crash leaves the old file or the new one;
/// a file cut short by power loss fails its checksum and is rebuilt).
fn save(path: &Path, key: &str, docs: &Docs, index: &Index) -> Result<(), std::io::Error> {
    let tmp = path.with_extension("bin.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let file = opts.open(&tmp)?;
    let mut e = Encoder::new(BufWriter::new(file));
    e.bytes(MAGIC);
    e.u32(CATALOG_FORMAT);
    e.bytes(key.as_bytes());
    docs.ids.encode(&mut e);
    e.u16s(
        &docs
            .topics
            .iter()
            .map(|&t| u16::from(t))
            .collect::<Vec<_>>(),
    );
    e.u64s(&docs.dates);
    e.u32s(&docs.year_starts);
    e.u32s(&docs.years);
    index.encode(&mut e);
    let w = e.finish()?;
    w.into_inner().map_err(|e| e.into_error())?;
    std::fs::rename(&tmp, path)
}

/// Reads `catalog.bin`: `Ok(None)` when it was made for another key.
fn load(
    path: &Path,
    key: &str,
    synonyms: &[Vec<String>],
) -> Result<Option<(Docs, Index)>, CodecError> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut d = Decoder::new(BufReader::with_capacity(1 << 16, file), len);
    if d.bytes()? != MAGIC || d.u32()? != CATALOG_FORMAT || d.bytes()? != key.as_bytes() {
        return Ok(None);
    }
    let ids = StrTable::decode(&mut d)?;
    let topics: Vec<u8> = d
        .u16s()?
        .into_iter()
        .map(|t| u8::try_from(t).unwrap_or(u8::MAX))
        .collect();
    let dates = d.u64s()?;
    let year_starts = d.u32s()?;
    let years = d.u32s()?;
    let index = Index::decode(&mut d, synonyms)?;
    d.finish()?;
    let n = ids.len();
    if topics.len() != n
        || dates.len() != n
        || year_starts.len() != n + 1
        || year_starts.first() != Some(&0)
        || year_starts.windows(2).any(|w| w[0] > w[1])
        || year_starts.last().map(|&l| l as usize) != Some(years.len())
        || index.len() != n
        || topics.iter().any(|&t| t as usize >= Topic::ALL.len())
        || dates.iter().any(|&p| {
            unpack_date(p)
                .is_some_and(|d| d.month.is_some_and(|m| m > 12) || d.day.is_some_and(|x| x > 31))
        })
    {
        return Err(CodecError::Corrupt("catalog tables"));
    }
    Ok(Some((
        Docs {
            ids,
            topics,
            dates,
            year_starts,
            years,
        },
        index,
    )))
}

/// The People facts as one multi-pattern matcher: which people a set of
/// facts names (their id, or one of a person's first two spellings in the
/// text or the source), in the People facts' reading order, each surname
/// once — what a scan of every People fact per answer found, in one pass
/// over the answer's text instead. A large dataset repeats spellings
/// across many people (the synthetic 100k one: thousands per surname), so
/// each distinct spelling is one pattern that names its surnames, each at
/// the first person carrying it: a match costs its few surnames, not the
/// thousands of people behind them.
pub struct People {
    /// Every distinct spelling; `None` when there are none.
    matcher: Option<aho_corasick::AhoCorasick>,
    /// Per pattern, the surnames it names: (first person's number,
    /// surname), each surname once, in ascending order of person.
    names: Vec<Vec<(usize, usize)>>,
    /// Per distinct surname, its text.
    surnames: Vec<String>,
    /// Per People fact id, (its number in reading order, its surname).
    by_id: HashMap<String, (usize, usize)>,
    /// Per person in reading order, its fact.
    docs: Vec<u32>,
    /// Every distinct one-word alias (as `query::words` reads it) and the
    /// people carrying it, in reading order.
    words: Vec<(String, Vec<usize>)>,
}

impl People {
    fn of(people: impl Iterator<Item = (u32, Arc<Fact>)>) -> People {
        let mut pattern_of: HashMap<String, usize> = HashMap::new();
        let (mut docs, mut word_of) = (Vec::new(), HashMap::<String, usize>::new());
        let mut words: Vec<(String, Vec<usize>)> = Vec::new();
        let mut names: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut surname_of: HashMap<String, usize> = HashMap::new();
        let mut surnames = Vec::new();
        let mut by_id = HashMap::new();
        for (n, (doc, p)) in people.enumerate() {
            docs.push(doc);
            for a in &p.aliases {
                let w = crate::query::words(a);
                if let [w] = &w[..] {
                    let next = words.len();
                    let i = *word_of.entry(w.clone()).or_insert(next);
                    if i == next {
                        words.push((w.clone(), Vec::new()));
                    }
                    if words[i].1.last() != Some(&n) {
                        words[i].1.push(n);
                    }
                }
            }
            let Some(surname) = p.aliases.first() else {
                continue;
            };
            let next = surnames.len();
            let s = *surname_of.entry(surname.clone()).or_insert(next);
            if s == next {
                surnames.push(surname.clone());
            }
            by_id.insert(p.id.clone(), (n, s));
            for a in p.aliases.iter().take(2) {
                let next = names.len();
                let pat = *pattern_of.entry(a.clone()).or_insert(next);
                if pat == next {
                    names.push(Vec::new());
                }
                // People come in reading order: the first is the earliest.
                if !names[pat].iter().any(|&(_, known)| known == s) {
                    names[pat].push((n, s));
                }
            }
        }
        let mut patterns = vec![String::new(); names.len()];
        for (a, i) in pattern_of {
            patterns[i] = a;
        }
        People {
            matcher: aho_corasick::AhoCorasick::new(&patterns).ok(),
            names,
            surnames,
            by_id,
            docs,
            words,
        }
    }

    /// The facts of the people with a one-word alias `pick` accepts, in
    /// reading order (a question naming a person: "сколько лет Назарбаеву?").
    pub fn with_word(&self, pick: impl Fn(&str) -> bool) -> Vec<u32> {
        let mut people: Vec<usize> = Vec::new();
        for (w, who) in &self.words {
            if pick(w) {
                people.extend_from_slice(who);
            }
        }
        people.sort_unstable();
        people.dedup();
        people.into_iter().map(|n| self.docs[n]).collect()
    }

    /// The first `n` surnames named by `facts`, each `(id, English text,
    /// source)`, in the order of the first person carrying each: on a large
    /// dataset an answer names thousands, and a caller that needs to know
    /// whether it names exactly one asks for two.
    pub fn named_first(&self, facts: &[(&str, &str, &str)], n: usize) -> Vec<String> {
        // (first person naming it, surname)
        let pairs = facts.iter().flat_map(|(id, text, source)| {
            let by_id = self.by_id.get(*id).copied();
            let found = self.matcher.iter().flat_map(move |m| {
                [text, source]
                    .into_iter()
                    .flat_map(move |s| m.find_overlapping_iter(*s))
            });
            // A pattern's surnames are distinct and in the order of their
            // first person: past its first `n`, none can be among the `n`
            // earliest.
            let named = found.flat_map(move |f| self.names[f.pattern().as_usize()].iter().take(n));
            by_id.into_iter().chain(named.copied())
        });
        earliest(pairs, n)
            .into_iter()
            .map(|(_, s)| self.surnames[s].clone())
            .collect()
    }
}

/// The `n` surnames named earliest, each once, as `(first person, surname)`
/// in that order: what sorting every pair and keeping each surname's first
/// gives. A large dataset's answer names thousands of pairs, and the one
/// caller asks for two, so the earliest are kept as they come, without
/// collecting or sorting them (comparing each surname with those already
/// found was most of a 100k-fact answer's time); the work is the pairs
/// times `n`.
fn earliest(pairs: impl Iterator<Item = (usize, usize)>, n: usize) -> Vec<(usize, usize)> {
    // Each kept surname with the earliest person seen for it. One that is
    // dropped (or never kept) had n others before it, which stay before
    // it, so it cannot come back into the first n.
    let mut best: Vec<(usize, usize)> = Vec::new();
    for (p, s) in pairs {
        if let Some(e) = best.iter_mut().find(|e| e.1 == s) {
            e.0 = e.0.min(p);
        } else if best.len() < n {
            best.push((p, s));
        } else if let Some(worst) = best.iter_mut().max() {
            if (p, s) < *worst {
                *worst = (p, s);
            }
        }
    }
    best.sort_unstable();
    best
}

#[cfg(test)]
mod tests {
    /// The scan of every People fact that `People` replaced, as the oracle.
    fn people_by_scan(cat: &Catalog, facts: &[Arc<Fact>]) -> Vec<String> {
        let mut people = Vec::new();
        for p in cat.by_topic(Topic::People) {
            let Some(surname) = p.aliases.first() else {
                continue;
            };
            let named = facts.iter().any(|f| {
                f.id == p.id
                    || p.aliases
                        .iter()
                        .take(2)
                        .any(|a| f.text.en.contains(a.as_str()) || f.source.contains(a.as_str()))
            });
            if named && !people.contains(surname) {
                people.push(surname.clone());
            }
        }
        people
    }

    /// Every pair sorted, each surname's first kept: what `earliest` must
    /// give.
    fn earliest_by_sort(pairs: &[(usize, usize)]) -> Vec<(usize, usize)> {
        let mut all = pairs.to_vec();
        all.sort_unstable();
        let mut seen = std::collections::HashSet::new();
        all.retain(|&(_, s)| seen.insert(s));
        all
    }

    /// `earliest` keeping a few as they come = sorting them all.
    #[test]
    fn the_earliest_surnames_kept_as_they_come_are_those_of_a_sort() {
        let mut x: u64 = 7;
        for _ in 0..500 {
            let pairs: Vec<(usize, usize)> = (0..(x % 40) as usize)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (((x >> 33) % 30) as usize, ((x >> 13) % 12) as usize)
                })
                .collect();
            let all = earliest_by_sort(&pairs);
            assert_eq!(earliest(pairs.iter().copied(), usize::MAX), all);
            for n in 0..=8 {
                let few = earliest(pairs.iter().copied(), n);
                assert_eq!(few, all[..n.min(all.len())], "{pairs:?} {n}");
            }
        }
    }

    #[test]
    fn people_named_by_answers_are_what_the_scan_found() {
        let embedded = Catalog::build(
            crate::facts::Dataset::embedded().unwrap().facts,
            &[],
            String::new(),
        );
        let dir = tempfile::tempdir().unwrap();
        let synthetic = Catalog::open(&store_with(dir.path(), 3000, 7), &mut |_, _| {}).unwrap();
        for cat in [&embedded, &synthetic] {
            let all: Vec<Arc<Fact>> = cat.first(cat.len());
            let mut checked = 0;
            for group in all.chunks(1).chain(all.chunks(6)).chain([&all[..]]) {
                let named: Vec<(&str, &str, &str)> = group
                    .iter()
                    .map(|f| (f.id.as_str(), f.text.en.as_str(), f.source.as_str()))
                    .collect();
                let found = cat.people().named_first(&named, usize::MAX);
                assert_eq!(found, people_by_scan(cat, group), "{:?}", named.first());
                for n in [0, 1, 2] {
                    let first = cat.people().named_first(&named, n);
                    assert_eq!(first, found[..n.min(found.len())], "{n}");
                }
                checked += usize::from(!found.is_empty());
            }
            // Questions naming people: the same facts as the scan of one-word aliases.
            let mut people_found = 0;
            for asked in [
                &["nazarbayev"][..],
                &["myasnikovich", "masimov"],
                &["kazakhstan"],
                &[],
            ] {
                let scan: Vec<String> = cat
                    .by_topic(Topic::People)
                    .filter(|p| {
                        p.aliases
                            .iter()
                            .map(|a| crate::query::words(a))
                            .any(|w| w.len() == 1 && asked.contains(&w[0].as_str()))
                    })
                    .map(|p| p.id.clone())
                    .collect();
                let found: Vec<String> = cat
                    .people()
                    .with_word(|w| asked.contains(&w))
                    .into_iter()
                    .map(|d| cat.id(d).to_string())
                    .collect();
                assert_eq!(found, scan, "{asked:?}");
                people_found += found.len();
            }
            assert!(people_found > 0, "the check saw people found");
            assert!(checked > 10, "the check saw people named ({checked})");
        }
    }

    use super::*;
    use crate::facts::synthetic;

    fn store_with(dir: &Path, n: usize, salt: u64) -> Store {
        let store = Store::open(dir).unwrap();
        store.import(&synthetic::generate(n, salt)).unwrap();
        store
    }

    fn answers(cat: &Catalog) -> Vec<Vec<String>> {
        [
            "How much was trade between Belarus and Kazakhstan in 2011?",
            "Каким был товарооборот в первом полугодии 2011 года?",
            "exprots from kazakstan",
            "customs union",
        ]
        .iter()
        .map(|q| {
            cat.search(q, 6, 0.3)
                .hits
                .iter()
                .map(|h| cat.id(h.doc).to_string())
                .collect()
        })
        .collect()
    }

    #[test]
    fn dates_pack_and_unpack() {
        for d in [
            None,
            Some(PartialDate {
                year: 2012,
                month: Some(11),
                day: Some(9),
            }),
            Some(PartialDate {
                year: -44,
                month: None,
                day: None,
            }),
            Some(PartialDate {
                year: 2010,
                month: Some(1),
                day: None,
            }),
        ] {
            assert_eq!(unpack_date(pack_date(d)), d);
        }
    }

    #[test]
    fn a_large_store_persists_its_index_and_loads_it_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 400, 1);
        let built = Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
        assert_eq!(built.origin(), Origin::BuiltAndSaved);
        assert!(dir.path().join(CATALOG_FILE).exists());
        let loaded = Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
        assert_eq!(loaded.origin(), Origin::Loaded);
        assert_eq!(answers(&built), answers(&loaded));
        assert_eq!(loaded.len(), 400);
        // Facts come from the store, lookups and listings from the tables.
        let id = built.id(7).to_string();
        assert_eq!(loaded.get(&id).unwrap().id, id);
        assert_eq!(
            built
                .by_topic(Topic::Trade)
                .map(|f| f.id.clone())
                .collect::<Vec<_>>(),
            loaded
                .by_topic(Topic::Trade)
                .map(|f| f.id.clone())
                .collect::<Vec<_>>()
        );
        assert_eq!(built.dated().count(), loaded.dated().count());
        assert_eq!(loaded.closest_id("syn.12x"), built.closest_id("syn.12x"));
        // The same as a catalog with every fact in memory.
        let resident = Catalog::open_with(&store, 1_000, &mut |_, _| {}).unwrap();
        assert_eq!(answers(&resident), answers(&loaded));
        // Their facts stay in the store (answers read them from disk).
        assert!(!built.is_resident() && !loaded.is_resident());
        // A resident catalog is ready for answers on a runtime thread: its
        // People matcher is built at open, a stored one's on first use.
        std::fs::remove_file(dir.path().join(CATALOG_FILE)).unwrap();
        let resident = Catalog::open_with(&store, 1_000, &mut |_, _| {}).unwrap();
        assert!(resident.is_resident() && resident.people.get().is_some());
        assert!(loaded.people.get().is_none());
    }

    /// A topic's facts about a year, as the scan of the topic that the
    /// table replaced found them (ids, in order).
    fn in_year_by_scan(cat: &Catalog, t: Topic, year: i32) -> Vec<String> {
        cat.by_topic(t)
            .filter(|f| f.years().contains(&year))
            .map(|f| f.id.clone())
            .collect()
    }

    #[test]
    fn a_topics_facts_about_a_year_are_what_the_scan_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 600, 3);
        let built = Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
        let loaded = Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
        assert_eq!(loaded.origin(), Origin::Loaded, "the table is saved too");
        let synthetic = Catalog::open_with(&store, 1_000, &mut |_, _| {}).unwrap();
        let embedded = Catalog::build(
            crate::facts::Dataset::embedded().unwrap().facts,
            &[],
            String::new(),
        );
        for cat in [&embedded, &synthetic, &built, &loaded] {
            let mut years: Vec<i32> = cat
                .first(cat.len())
                .iter()
                .flat_map(|f| f.years())
                .collect();
            years.sort_unstable();
            years.dedup();
            assert!(years.len() > 3, "facts about several years: {years:?}");
            let mut found = 0;
            // Every year some fact is about, and years none is.
            for &year in years.iter().chain(&[1990, -1, i32::MAX]) {
                for t in Topic::ALL {
                    let table: Vec<String> = cat
                        .by_topic_in_year(t, year)
                        .map(|f| f.id.clone())
                        .collect();
                    assert_eq!(table, in_year_by_scan(cat, t, year), "{t:?} {year}");
                    found += table.len();
                }
            }
            assert!(found >= 10, "the check saw facts about years: {found}");
        }
    }

    /// A namespace larger than MAX_ID_CANDIDATES is searched around where
    /// the mistyped id sorts: for typos near the end of an id, an id as
    /// close as the closest of all (ties may pick another of them).
    #[test]
    fn a_mistyped_id_in_a_large_namespace_is_found_near_where_it_sorts() {
        let facts = synthetic::generate(MAX_ID_CANDIDATES * 3, 5).facts;
        let cat = Catalog::build(facts, &[], String::new());
        let distance = |a: Option<&str>, id: &str| a.map(|a| strsim::levenshtein(a, id));
        let every = |id: &str| {
            cat.ids()
                .map(|f| strsim::levenshtein(f, id))
                .filter(|d| *d <= 3)
                .min()
        };
        let mut checked = 0;
        for n in (0..MAX_ID_CANDIDATES * 3).step_by(97) {
            let id = format!("syn.{n}");
            for typo in [
                format!("{id}x"),
                id[..id.len() - 1].to_string(),
                format!("{}o", &id[..id.len() - 1]),
            ] {
                assert_eq!(
                    distance(cat.closest_id(&typo), &typo),
                    every(&typo),
                    "{typo}"
                );
                checked += 1;
            }
        }
        assert!(checked > 100);
        // At either end of the namespace too.
        assert_eq!(cat.closest_id("syn.0x"), Some("syn.0"));
        let last = format!("syn.{}", MAX_ID_CANDIDATES * 3 - 1);
        assert_eq!(cat.closest_id(&format!("{last}x")), Some(last.as_str()));
    }

    #[test]
    fn a_damaged_or_truncated_index_file_is_rebuilt_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 300, 1);
        let first = Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
        let want = answers(&first);
        let path = dir.path().join(CATALOG_FILE);
        let good = std::fs::read(&path).unwrap();
        let mut damaged = Vec::new();
        for at in [good.len() / 3, good.len() / 2, good.len() - 2] {
            let mut b = good.clone();
            b[at] ^= 0x10;
            damaged.push(b);
        }
        damaged.push(good[..good.len() / 2].to_vec());
        damaged.push(Vec::new());
        damaged.push(b"not a catalog at all".to_vec());
        for bad in damaged {
            std::fs::write(&path, &bad).unwrap();
            let cat = Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
            assert_eq!(cat.origin(), Origin::BuiltAndSaved, "{} bytes", bad.len());
            assert_eq!(answers(&cat), want);
            assert_eq!(std::fs::read(&path).unwrap(), good, "rewritten");
        }
    }

    #[test]
    fn an_import_or_another_indexing_makes_the_index_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 300, 1);
        Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
        // Another dataset: the digest in the key differs.
        store.import(&synthetic::generate(300, 2)).unwrap();
        let cat = Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
        assert_eq!(cat.origin(), Origin::BuiltAndSaved);
        let fresh = Catalog::build(
            store.facts().unwrap(),
            &store.synonyms().unwrap(),
            String::new(),
        );
        assert_eq!(answers(&cat), answers(&fresh));
        // A file written for other indexing code (another fingerprint).
        let path = dir.path().join(CATALOG_FILE);
        let (docs, index) = load(&path, &key(&store.dataset_digest().unwrap().unwrap()), &[])
            .unwrap()
            .unwrap();
        save(&path, "digest\nanother-fingerprint", &docs, &index).unwrap();
        let cat = Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
        assert_eq!(cat.origin(), Origin::BuiltAndSaved);
    }

    #[test]
    fn a_small_store_keeps_its_facts_in_memory_and_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.import(&Dataset::embedded().unwrap()).unwrap();
        let cat = Catalog::open(&store, &mut |_, _| {}).unwrap();
        assert_eq!(cat.origin(), Origin::Built);
        assert!(!dir.path().join(CATALOG_FILE).exists());
        assert!(cat.get("trade.2011").is_some());
    }

    #[cfg(unix)]
    #[test]
    fn the_index_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 200, 1);
        Catalog::open_with(&store, 100, &mut |_, _| {}).unwrap();
        let mode = std::fs::metadata(dir.path().join(CATALOG_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
