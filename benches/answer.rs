//! Answer latency, start-up cost of a big store, and rendering (criterion).
//!
//! ```text
//! cargo bench --bench answer                 # everything, ~4.5 minutes
//! cargo bench --bench answer -- answer/      # answers only, ~1.5 minutes
//! cargo bench --bench answer -- answer/real  # one group
//! ```
//!
//! Groups:
//! - `answer/real`: `Engine::handle` on the embedded dataset (~50 facts);
//! - `answer/100k`: the same queries on a synthetic store of 100,000 facts;
//! - `startup/100k`: `Index::build` and `Engine::new` (store read + index)
//!   at 100,000 facts — what opening a big store costs;
//! - `render`: a topic reply rendered for Telegram and as plain text.
//!
//! Criterion reports means and medians; the goals are stated for p99, which
//! `cargo bench --bench percentiles` measures.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};

use factbot::answer::{Engine, Request};
use factbot::facts::ChatKey;
use factbot::query::Index;
use factbot::reply::{render_plain, render_telegram_html, TELEGRAM_LIMIT};

mod common;
use common::{big_size, real_engine, store_with, synthetic_dataset, FOLLOW_UPS, QUERIES};

/// The topic reply the rendering benchmarks render.
const RENDER_QUERY: &str = "/milestones";

fn answer_real(c: &mut Criterion) {
    let engine = real_engine();
    let mut g = c.benchmark_group("answer/real");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50);
    bench_queries(&mut g, &engine);
    g.finish();
}

fn answer_big(c: &mut Criterion) {
    let n = big_size();
    let ds = synthetic_dataset(n);
    let (store, _) = store_with(&ds);
    drop(ds);
    let engine = Engine::new(store).expect("engine");
    let mut g = c.benchmark_group("answer/100k");
    // Some queries take tens of milliseconds here: few, flat samples keep
    // the group under a minute.
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    bench_queries(&mut g, &engine);
    g.finish();
}

fn bench_queries(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    e: &Engine,
) {
    for &(label, text) in QUERIES {
        g.bench_with_input(BenchmarkId::from_parameter(label), text, |b, text| {
            b.iter(|| e.handle(&Request::new(&ChatKey::Console, black_box(text))))
        });
    }
    // Each follow-up timed alone, right after the answer it continues.
    for &(label, after, text) in FOLLOW_UPS {
        g.bench_with_input(BenchmarkId::from_parameter(label), text, |b, text| {
            b.iter_batched(
                || e.handle(&Request::new(&ChatKey::Console, after)),
                |_| e.handle(&Request::new(&ChatKey::Console, black_box(text))),
                // One opener before each: the context is the chat's last answer.
                criterion::BatchSize::PerIteration,
            )
        });
    }
}

fn startup_big(c: &mut Criterion) {
    let n = big_size();
    let ds = synthetic_dataset(n);
    let (store, _) = store_with(&ds);
    let mut g = c.benchmark_group("startup/100k");
    // Each call takes seconds: criterion's minimum of ten samples, one call
    // each (plus one to warm up), ~1.5 minutes per function.
    g.warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(10))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    g.bench_function("Index::build", |b| {
        b.iter_with_large_drop(|| Index::build(black_box(&ds.facts), black_box(&ds.synonyms)))
    });
    g.bench_function("Engine::new", |b| {
        b.iter_with_large_drop(|| Engine::new(store.clone()).expect("engine"))
    });
    g.finish();
}

fn render(c: &mut Criterion) {
    let engine = real_engine();
    let reply = engine.handle(&Request::new(&ChatKey::Console, RENDER_QUERY));
    let mut g = c.benchmark_group("render");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    g.bench_function("telegram_html/milestones", |b| {
        b.iter(|| render_telegram_html(black_box(&reply), TELEGRAM_LIMIT))
    });
    g.bench_function("plain/milestones", |b| {
        b.iter(|| render_plain(black_box(&reply)))
    });
    g.finish();
}

criterion_group!(benches, answer_real, answer_big, startup_big, render);
criterion_main!(benches);
