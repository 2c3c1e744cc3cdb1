//! What the benchmarks share: the query set and the stores they run on.
//!
//! Lives in a subdirectory so cargo does not take it for a bench target;
//! both `answer.rs` (criterion) and `percentiles.rs` include it with
//! `mod common;`, so the two measure exactly the same calls.

use std::time::{Duration, Instant};

use factbot::answer::Engine;
use factbot::facts::{synthetic, Dataset, Store};

/// Facts in the big synthetic store the goals are stated for.
pub const BIG: usize = 100_000;
/// Facts in the synthetic store of a smoke run (`cargo test --benches`),
/// where only whether the code runs matters.
pub const SMOKE: usize = 1_000;

/// The queries, as `(label, text)`: every topic command, the id commands,
/// `/search`, a chart, and free-text questions (English, Russian, a typo,
/// one the bot must decline, and one asking for an attribute the article
/// does not give), taken from `tests/quality.toml`.
pub const QUERIES: &[(&str, &str)] = &[
    ("/visit", "/visit"),
    ("/people", "/people"),
    ("/relations", "/relations"),
    ("/milestones", "/milestones"),
    ("/trade", "/trade"),
    ("/exports", "/exports"),
    ("/investment", "/investment"),
    ("/meetings", "/meetings"),
    ("/agreements", "/agreements"),
    ("/fact", "/fact trade.2011"),
    ("/source", "/source trade.h1_2011"),
    // A mistyped id: "did you mean" compares it with the ids of its
    // namespace (the synthetic store's 100,000 are all `syn.N`).
    ("/fact typo", "/fact syn.1234x"),
    ("/search", "/search customs union"),
    // One common word: every fact holding it scored (no pruning helps).
    ("/search word", "/search belarus"),
    ("/chart", "/chart milestones"),
    (
        "q_en",
        "How much was trade between Belarus and Kazakhstan in 2011?",
    ),
    (
        "q_ru",
        "Каким был товарооборот в первом полугодии 2011 года?",
    ),
    ("q_typo", "exprots from kazakstan to belarus"),
    ("q_decline", "What is the capital of France?"),
    ("q_attr", "How old is Serik Akhmetov?"),
];

/// Follow-ups, as `(label, after, text)`: `text` asked right after
/// `after` in the same chat, so it continues that answer (only `text` is
/// timed). A period the topic has, one nothing has (every topic searched
/// for it), "more", the sources, another subject in the same frame.
pub const FOLLOW_UPS: &[(&str, &str, &str)] = &[
    ("f_period", "/trade", "and in 2011?"),
    ("f_period_none", "/trade", "and in 1990?"),
    ("f_more", "/trade", "more"),
    ("f_source", "/trade", "source?"),
    (
        "f_elliptic",
        "How much was trade between Belarus and Kazakhstan in 2011?",
        "а экспорт?",
    ),
    (
        "f_resolved",
        "When did Myasnikovich visit Kazakhstan?",
        "who did he meet?",
    ),
];

/// Whether the binary runs as a benchmark (`cargo bench` passes `--bench`)
/// rather than as a smoke test (`cargo test --benches` passes nothing;
/// `cargo bench -- --test` and `-- --list` add a flag), as criterion decides.
pub fn bench_mode() -> bool {
    let has = |flag: &str| std::env::args().any(|a| a == flag);
    has("--bench") && !has("--test") && !has("--list")
}

/// The synthetic store size for this run: [`BIG`] when benchmarking,
/// [`SMOKE`] otherwise.
pub fn big_size() -> usize {
    if bench_mode() {
        BIG
    } else {
        SMOKE
    }
}

/// A temporary store holding `ds`, and how long the import took.
pub fn store_with(ds: &Dataset) -> (Store, Duration) {
    let store = Store::temporary().expect("temporary store");
    let t = Instant::now();
    store.import(ds).expect("import");
    (store, t.elapsed())
}

/// The engine over the real (embedded) dataset.
pub fn real_engine() -> Engine {
    let ds = Dataset::embedded().expect("embedded dataset");
    let (store, _) = store_with(&ds);
    Engine::new(store).expect("engine")
}

/// The synthetic dataset of `n` facts (salt 1).
pub fn synthetic_dataset(n: usize) -> Dataset {
    synthetic::generate(n, 1)
}
