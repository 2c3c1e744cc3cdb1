//! Chart render time (criterion).
//!
//! ```text
//! cargo bench --bench charts                   # everything, ~1 minute
//! cargo bench --bench charts -- chart/render   # uncached renders only
//! ```
//!
//! Groups:
//! - `chart/render`: every chart in both languages drawn and PNG-encoded
//!   from the embedded dataset, uncached — what the first request for a
//!   chart (per language and dataset version) costs; the goal is under
//!   20 ms;
//! - `chart/stages`: the trade chart's parts — `describe` (the words and the
//!   key, built for every `/chart` reply) and the PNG encoding alone, as
//!   charts encode (zlib level 1, Up filter) and with png's `Fast` and
//!   default `Balanced` presets, each size printed;
//! - `chart/cached`: `Engine::chart_png` when the chart is in the cache —
//!   what every later request costs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use factbot::answer::Engine;
use factbot::chart::{self, ChartKind};
use factbot::facts::{Dataset, Lang, Store};

fn engine() -> Engine {
    let store = Store::temporary().expect("store");
    store
        .import(&Dataset::embedded().expect("dataset"))
        .expect("import");
    Engine::new(store).expect("engine")
}

fn render(c: &mut Criterion) {
    let engine = engine();
    let cat = engine.catalog();
    let mut g = c.benchmark_group("chart/render");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    for kind in ChartKind::ALL {
        for lang in [Lang::En, Lang::Ru] {
            g.bench_function(BenchmarkId::new(kind.name(), lang.code()), |b| {
                b.iter(|| chart::render(black_box(kind), lang, &*cat).expect("render"))
            });
        }
    }
    g.finish();
}

fn stages(c: &mut Criterion) {
    let engine = engine();
    let cat = engine.catalog();
    let mut g = c.benchmark_group("chart/stages");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("describe/trade", |b| {
        b.iter(|| chart::describe(black_box(ChartKind::Trade), Lang::En, &*cat).expect("describe"))
    });
    let png = chart::render(ChartKind::Trade, Lang::En, &*cat).expect("render");
    let mut reader = png::Decoder::new(std::io::Cursor::new(png.bytes))
        .read_info()
        .expect("png");
    let mut rgb = vec![0; reader.output_buffer_size().expect("size")];
    reader.next_frame(&mut rgb).expect("pixels");
    // What charts use, against png's Fast and default (Balanced) presets.
    let size = chart::encode_png(&rgb, png.width, png.height)
        .expect("encode")
        .len();
    eprintln!("encode_png/chart: {size} bytes");
    g.bench_function("encode_png/chart", |b| {
        b.iter(|| chart::encode_png(black_box(&rgb), png.width, png.height).expect("encode"))
    });
    for (name, level) in [
        ("encode_png/fast", png::Compression::Fast),
        ("encode_png/balanced", png::Compression::Balanced),
    ] {
        let size = encode(&rgb, png.width, png.height, level).len();
        eprintln!("{name}: {size} bytes");
        g.bench_function(name, |b| {
            b.iter(|| encode(black_box(&rgb), png.width, png.height, level))
        });
    }
    g.finish();
}

fn encode(rgb: &[u8], width: u32, height: u32, level: png::Compression) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_compression(level);
    let mut w = enc.write_header().expect("header");
    w.write_image_data(rgb).expect("data");
    w.finish().expect("finish");
    out
}

fn cached(c: &mut Criterion) {
    let engine = engine();
    engine
        .chart_png(ChartKind::Trade, Lang::En)
        .expect("first render");
    let mut g = c.benchmark_group("chart/cached");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("chart_png/trade", |b| {
        b.iter(|| {
            engine
                .chart_png(black_box(ChartKind::Trade), Lang::En)
                .expect("png")
        })
    });
    g.finish();
}

criterion_group!(benches, render, stages, cached);
criterion_main!(benches);
