//! Per-call latency percentiles of `Engine::handle`, against the goals:
//! p99 under 100 µs on the real dataset and under 1 ms at 100,000 facts.
//!
//! ```text
//! cargo bench --bench percentiles
//! ```
//!
//! Criterion (`benches/answer.rs`) times batches and reports medians; this
//! harness times every call on its own, after a warm-up, and prints per
//! query: calls timed, median, p99, max, and how many facts the ranker
//! scored for it (free text and `/search`: every fact sharing a term with
//! the question, which is what a search costs). Follow-ups ("and in
//! 2011?" after `/trade`) are timed alone, each right after its opener. Then the cost of opening
//! the big store (import, `Index::build`, `Engine::new`) and the process's
//! peak RSS.
//!
//! Each query gets [`REAL_CALLS`] / [`BIG_CALLS`] calls, or fewer if it
//! exhausts [`QUERY_BUDGET`] first (slow queries at 100k); the `calls`
//! column says how many were timed. Run as a test (`cargo test --benches`)
//! it only checks that every query runs, on a small store.
//!
//! Arguments after `--` select what runs (for profiling one query with
//! `perf`): query labels (`/fact`, `q_typo`), `real`/`big` for one store
//! only, `build` for the store-opening timings only; e.g.
//! `cargo bench --bench percentiles -- big q_en`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use factbot::answer::{Engine, Request};
use factbot::facts::{ChatKey, Store};
use factbot::query::Index;

mod common;
use common::{
    bench_mode, big_size, real_engine, store_with, synthetic_dataset, FOLLOW_UPS, QUERIES,
};

/// Timed calls per query on the real dataset.
const REAL_CALLS: usize = 20_000;
/// Timed calls per query at 100k facts.
const BIG_CALLS: usize = 2_000;
/// Untimed calls per query before timing.
const WARMUP_CALLS: usize = 200;
/// Wall-clock budget per query (warm-up included); a query that exhausts it
/// is reported with the calls it got.
const QUERY_BUDGET: Duration = Duration::from_secs(8);
/// Timed repetitions of `Index::build` and `Engine::new` at 100k.
const BUILD_RUNS: usize = 5;

const GOAL_REAL: Duration = Duration::from_micros(100);
const GOAL_BIG: Duration = Duration::from_millis(1);

struct Row {
    label: &'static str,
    /// Facts sharing a term with the question (what an exhaustive search
    /// scores); `None` for commands that do not search.
    matched: Option<usize>,
    /// Facts the engine's search fully scored (after pruning).
    scored: Option<usize>,
    calls: usize,
    median: Duration,
    p99: Duration,
    max: Duration,
}

/// What the command line selects; empty lists select everything.
struct Selection {
    queries: Vec<String>,
    stores: Vec<String>,
    build: bool,
}

impl Selection {
    fn from_args() -> Selection {
        let mut sel = Selection {
            queries: Vec::new(),
            stores: Vec::new(),
            build: false,
        };
        for a in std::env::args().skip(1).filter(|a| !a.starts_with("--")) {
            match a.as_str() {
                "real" | "big" => sel.stores.push(a),
                "build" => sel.build = true,
                _ => sel.queries.push(a),
            }
        }
        sel
    }

    fn all(&self) -> bool {
        self.queries.is_empty() && self.stores.is_empty() && !self.build
    }

    fn store(&self, name: &str) -> bool {
        self.all()
            || self.stores.iter().any(|s| s == name)
            || (self.stores.is_empty() && !self.queries.is_empty())
    }

    fn query(&self, label: &str) -> bool {
        self.queries.is_empty() || self.queries.iter().any(|q| q == label)
    }

    fn build(&self) -> bool {
        self.all() || self.build
    }
}

/// Times each selected query `calls` times, one call at a time; a
/// follow-up is asked right after its `after` each time (untimed).
fn measure(
    engine: &Engine,
    sel: &Selection,
    calls: usize,
    warmup: usize,
    budget: Duration,
) -> Vec<Row> {
    let queries = QUERIES.iter().map(|&(label, text)| (label, None, text));
    let follow_ups = FOLLOW_UPS
        .iter()
        .map(|&(label, after, text)| (label, Some(after), text));
    queries
        .chain(follow_ups)
        .filter(|(label, _, _)| sel.query(label))
        .map(|(label, after, text)| {
            let start = Instant::now();
            let req = Request::new(&ChatKey::Console, text);
            let before = after.map(|a| Request::new(&ChatKey::Console, a));
            let ask = || {
                if let Some(b) = &before {
                    black_box(engine.handle(black_box(b)));
                }
                let t = Instant::now();
                let reply = engine.handle(black_box(&req));
                let took = t.elapsed();
                // Dropping the reply is part of the caller's cost, not ours.
                drop(black_box(reply));
                took
            };
            for _ in 0..warmup {
                ask();
                if start.elapsed() > budget / 4 {
                    break;
                }
            }
            let mut times = Vec::with_capacity(calls);
            while times.len() < calls && (times.is_empty() || start.elapsed() < budget) {
                times.push(ask());
            }
            times.sort_unstable();
            // What a search for the text costs; follow-ups are not
            // searched as they stand.
            let question = match text.strip_prefix("/search ") {
                Some(q) => Some(q),
                None if text.starts_with('/') || after.is_some() => None,
                None => Some(text),
            };
            let cat = engine.catalog();
            // The engine's own limits: 3 facts an answer, 5 a /search.
            let limit = if text.starts_with("/search") { 5 } else { 3 };
            Row {
                label,
                matched: question.map(|q| cat.explain(q, usize::MAX).hits.len()),
                scored: question.map(|q| engine.search(&cat, q, limit).scored),
                calls: times.len(),
                median: percentile(&times, 0.50),
                p99: percentile(&times, 0.99),
                max: times[times.len() - 1],
            }
        })
        .collect()
}

/// Nearest-rank percentile of sorted, non-empty `times`.
fn percentile(times: &[Duration], q: f64) -> Duration {
    let rank = (q * times.len() as f64).ceil() as usize;
    times[rank.clamp(1, times.len()) - 1]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

fn print_table(title: &str, rows: &[Row], goal: Duration) {
    println!("\n{title} (goal: p99 < {})", fmt(goal));
    println!(
        "{:<12} {:>7} {:>11} {:>11} {:>11} {:>7} {:>7}  p99 vs goal",
        "query", "calls", "median", "p99", "max", "matched", "scored"
    );
    for r in rows {
        println!(
            "{:<12} {:>7} {:>11} {:>11} {:>11} {:>7} {:>7}  {}",
            r.label,
            r.calls,
            fmt(r.median),
            fmt(r.p99),
            fmt(r.max),
            r.matched.map_or("-".into(), |n| n.to_string()),
            r.scored.map_or("-".into(), |n| n.to_string()),
            if r.p99 < goal { "ok" } else { "MISSED" }
        );
    }
}

/// A field of /proc/self/status (`VmHWM`, `VmRSS`), as printed there.
fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .map(|l| l[field.len() + 1..].trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}

/// Median and minimum of `runs` timed calls of `f`.
fn time_runs<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = f();
            let d = t.elapsed();
            drop(black_box(out));
            d
        })
        .collect();
    times.sort_unstable();
    (percentile(&times, 0.5), times[0])
}

fn main() {
    let bench = bench_mode();
    let sel = Selection::from_args();
    let (real_calls, big_calls, warmup, runs) = if bench {
        (REAL_CALLS, BIG_CALLS, WARMUP_CALLS, BUILD_RUNS)
    } else {
        (3, 3, 1, 1)
    };
    if !bench {
        println!("smoke run (no --bench): few calls, small synthetic store");
    }

    if sel.store("real") {
        let engine = real_engine();
        let n_real = engine.catalog().len();
        let rows = measure(&engine, &sel, real_calls, warmup, QUERY_BUDGET);
        print_table(
            &format!("Engine::handle, real dataset ({n_real} facts)"),
            &rows,
            GOAL_REAL,
        );
    }
    let hwm_real = proc_status("VmHWM");

    if !sel.store("big") && !sel.build() {
        return;
    }
    let n = big_size();
    let t = Instant::now();
    let ds = synthetic_dataset(n);
    let generate = t.elapsed();
    let (store, import) = store_with(&ds);
    if sel.build() {
        let (build_med, build_min) = time_runs(runs, || Index::build(&ds.facts, &ds.synonyms));
        let (engine_med, engine_min) =
            time_runs(runs, || Engine::new(store.clone()).expect("engine"));
        println!("\nOpening the synthetic store ({n} facts)");
        println!("{:<40} {:>11} {:>11}", "step", "median", "min");
        let row = |step: &str, med: Duration, min: Option<Duration>| {
            let min = min.map(fmt).unwrap_or_else(|| "-".into());
            println!("{step:<40} {:>11} {min:>11}", fmt(med));
        };
        row("synthetic::generate (once)", generate, None);
        row("Store::import, temporary store (once)", import, None);
        row(
            &format!("Index::build ({runs} runs)"),
            build_med,
            Some(build_min),
        );
        row(
            &format!("Engine::new: read store + index ({runs} runs)"),
            engine_med,
            Some(engine_min),
        );
        // An on-disk store keeps its index: the first open builds and
        // saves it, later ones load it.
        let dir = tempfile::tempdir().expect("temporary directory");
        let disk = Store::open(dir.path()).expect("store");
        disk.import(&ds).expect("import");
        let t = Instant::now();
        let first = Engine::new(disk.clone()).expect("engine");
        let saved = t.elapsed();
        let stats = first.catalog().index_stats();
        drop(first);
        let (load_med, load_min) = time_runs(runs, || Engine::new(disk.clone()).expect("engine"));
        row("Engine::new, on disk: build + save (once)", saved, None);
        row(
            &format!("Engine::new, on disk: load saved index ({runs} runs)"),
            load_med,
            Some(load_min),
        );
        let file = std::fs::metadata(dir.path().join(factbot::catalog::CATALOG_FILE))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "index: {} terms, {} postings, {} bigrams ({} postings), {:.1} MiB in memory, {:.1} MiB saved",
            stats.terms,
            stats.postings,
            stats.bigrams,
            stats.bigram_postings,
            stats.heap_bytes as f64 / 1048576.0,
            file as f64 / 1048576.0
        );
    }
    drop(ds);
    if sel.store("big") {
        let engine = Engine::new(store).expect("engine");
        let rows = measure(&engine, &sel, big_calls, warmup, QUERY_BUDGET);
        print_table(
            &format!("Engine::handle, synthetic store ({n} facts)"),
            &rows,
            GOAL_BIG,
        );
        println!(
            "\nVmRSS with the {n}-fact engine and its store open: {}",
            proc_status("VmRSS")
        );
    }

    println!("\nMemory (/proc/self/status)");
    println!(
        "{:<40} {:>11}",
        "VmHWM after the real-dataset part", hwm_real
    );
    println!(
        "{:<40} {:>11}",
        "VmHWM at the end (peak RSS)",
        proc_status("VmHWM")
    );
}
