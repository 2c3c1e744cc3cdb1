//! Chart tests: every label's glyphs exist in the embedded font, the PNGs
//! are real and not blank, a changed fact changes the chart (and an
//! unrelated one does not), hostile data draws without panicking, and the
//! cache is bounded.

use std::cell::Cell;

use super::*;
use crate::catalog::Catalog;
use crate::facts::{Dataset, PartialDate, Value};

fn catalog(facts: Vec<Fact>) -> Catalog {
    Catalog::build(facts, &[], String::new())
}

fn embedded_facts() -> Vec<Fact> {
    Dataset::embedded().unwrap().facts
}

fn embedded() -> Catalog {
    catalog(embedded_facts())
}

fn edit(facts: &mut [Fact], id: &str, f: impl FnOnce(&mut Fact)) {
    f(facts.iter_mut().find(|x| x.id == id).unwrap());
}

/// A decoded PNG: size and RGB pixels.
fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a readable PNG header");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).expect("readable pixels");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn every_label_in_both_languages_has_its_glyphs() {
    let cat = embedded();
    for kind in ChartKind::ALL {
        for lang in [Lang::En, Lang::Ru] {
            let (_, drawn) = render_traced(kind, lang, &cat).unwrap();
            assert!(drawn.len() > 5, "{kind}/{lang}: {drawn:?}");
            for text in &drawn {
                for c in text.chars() {
                    // Bold and regular faces cover the same characters here;
                    // check both so a label may use either.
                    assert!(
                        font::covers(c, false) && font::covers(c, true),
                        "{kind}/{lang}: {c:?} (U+{:04X}) in {text:?} has no glyph",
                        c as u32
                    );
                }
            }
            let all = drawn.concat();
            let cyrillic = all.chars().any(|c| ('\u{400}'..='\u{4FF}').contains(&c));
            match lang {
                Lang::En => assert!(!cyrillic, "{kind}/en has Russian text: {drawn:?}"),
                Lang::Ru => assert!(cyrillic, "{kind}/ru has no Russian text: {drawn:?}"),
            }
        }
    }
}

#[test]
fn pngs_are_real_sized_and_not_blank() {
    let cat = embedded();
    for kind in ChartKind::ALL {
        for lang in [Lang::En, Lang::Ru] {
            let png = render(kind, lang, &cat).unwrap();
            let (w, h, rgb) = decode(&png.bytes);
            assert_eq!((w, h), (WIDTH, HEIGHT), "{kind}/{lang}");
            assert_eq!((png.width, png.height), (WIDTH, HEIGHT));
            let pixels = rgb.chunks_exact(3);
            let total = pixels.len();
            let inked = pixels.filter(|p| *p != [0xFF, 0xFF, 0xFF]).count();
            // Bars, marks and text: several percent of the picture, and
            // far from all of it.
            assert!(
                inked * 100 > total * 4 && inked * 100 < total * 60,
                "{kind}/{lang}: {inked} of {total} pixels drawn"
            );
            // The chart colours really appear (not a grey smudge).
            let has = |c: [u8; 3]| rgb.chunks_exact(3).any(|p| p == c);
            assert!(has([0x1F, 0x5F, 0xA8]), "{kind}/{lang}: no primary colour");
        }
    }
}

#[test]
fn the_derived_bar_is_drawn_differently_from_stated_ones() {
    let png = render(ChartKind::Trade, Lang::En, &embedded()).unwrap();
    let (w, _, rgb) = decode(&png.bytes);
    let px = |x: u32, y: u32| {
        let i = ((y * w + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    };
    // Scan the row just above the baseline: stated bars are solid primary,
    // the derived ones pale with hatching and a dashed outline.
    let y = 600;
    let row: Vec<[u8; 3]> = (0..w).map(|x| px(x, y)).collect();
    let solid = row.iter().filter(|p| **p == [0x1F, 0x5F, 0xA8]).count();
    let pale = row.iter().filter(|p| **p == [0xDC, 0xE8, 0xF5]).count();
    assert!(solid > 200, "two stated bars: {solid}");
    assert!(pale > 60, "derived bars are pale: {pale}");
}

#[test]
fn a_changed_fact_changes_the_chart_and_an_unrelated_one_does_not() {
    let before = embedded();
    let mut facts = embedded_facts();
    edit(&mut facts, "trade.2011", |f| {
        f.values = vec![Value::Amount {
            amount: 770_000_000,
            currency: "USD".into(),
            period: "2011".into(),
        }]
    });
    let after = catalog(facts);
    let (a, b) = (
        describe(ChartKind::Trade, Lang::En, &before).unwrap(),
        describe(ChartKind::Trade, Lang::En, &after).unwrap(),
    );
    assert_ne!(a.key, b.key, "the key follows the facts drawn");
    assert!(a.alt.contains("769") && !a.alt.contains("770"), "{}", a.alt);
    assert!(b.alt.contains("770") && !b.alt.contains("769"), "{}", b.alt);
    assert!(b.summary.contains("770"), "{}", b.summary);
    let (pa, pb) = (
        render(ChartKind::Trade, Lang::En, &before).unwrap(),
        render(ChartKind::Trade, Lang::En, &after).unwrap(),
    );
    assert_ne!(
        decode(&pa.bytes).2,
        decode(&pb.bytes).2,
        "the picture changed"
    );
    assert_eq!(pb.key, b.key, "render and describe agree on the key");

    // An edit to a fact no chart draws keeps every key (and so the file ids
    // transports stored): nothing is re-rendered or re-uploaded.
    let mut facts = embedded_facts();
    edit(&mut facts, "visit.who", |f| f.text.en.push_str(" Edited."));
    let unrelated = catalog(facts);
    for kind in ChartKind::ALL {
        assert_eq!(
            describe(kind, Lang::En, &before).unwrap().key,
            describe(kind, Lang::En, &unrelated).unwrap().key,
            "{kind}"
        );
    }
    // Language is part of the key, the digest is not language-specific.
    let ru = describe(ChartKind::Trade, Lang::Ru, &before).unwrap();
    assert_ne!(ru.key, a.key);
    assert_eq!(ru.key.digest, a.key.digest);
}

#[test]
fn captions_and_alt_texts_state_the_figures_and_paragraphs() {
    let cat = embedded();
    let t = describe(ChartKind::Trade, Lang::En, &cat).unwrap();
    assert_eq!(t.paragraphs, vec![4]);
    for figure in ["769", "479", "222", "413", "116"] {
        assert!(t.alt.contains(figure), "{figure}: {}", t.alt);
    }
    assert!(t.alt.contains("not stated"), "{}", t.alt);
    let t = describe(ChartKind::Trade, Lang::Ru, &cat).unwrap();
    assert!(
        t.alt.contains("расчёт") && t.alt.contains("222"),
        "{}",
        t.alt
    );

    let m = describe(ChartKind::Milestones, Lang::En, &cat).unwrap();
    assert_eq!(m.paragraphs, vec![1, 3]);
    for s in [
        "2007",
        "January 2012",
        "July 2012",
        "1 January 2015",
        "9–10 November 2012",
    ] {
        assert!(m.alt.contains(s), "{s}: {}", m.alt);
    }
    assert!(m.facts.contains(&"visit.dates".to_string()));
    let m = describe(ChartKind::Milestones, Lang::Ru, &cat).unwrap();
    assert!(m.alt.contains("9–10 ноября 2012"), "{}", m.alt);

    let i = describe(ChartKind::Investment, Lang::En, &cat).unwrap();
    assert_eq!(i.paragraphs, vec![5]);
    for s in [
        "12 joint assembly plants",
        "13 further joint projects",
        "7 of them",
        "USD 73 million",
    ] {
        assert!(i.alt.contains(s), "{s}: {}", i.alt);
    }
    let i = describe(ChartKind::Investment, Lang::Ru, &cat).unwrap();
    for s in [
        "12 совместных",
        "из них 7",
        "73 млн долларов США",
        "в 2011 году",
    ] {
        assert!(i.alt.contains(s), "{s}: {}", i.alt);
    }
}

#[test]
fn names_parse_in_both_languages_and_keys_are_stable_strings() {
    assert_eq!(ChartKind::parse("Trade"), Some(ChartKind::Trade));
    assert_eq!(ChartKind::parse("торговля"), Some(ChartKind::Trade));
    assert_eq!(ChartKind::parse("хронология"), Some(ChartKind::Milestones));
    assert_eq!(ChartKind::parse("/investment"), Some(ChartKind::Investment));
    assert_eq!(ChartKind::parse("pie"), None);
    for k in ChartKind::ALL {
        for l in [Lang::En, Lang::Ru] {
            assert_eq!(ChartKind::parse(k.local_name(l)), Some(k));
        }
    }
    let d = describe(ChartKind::Trade, Lang::Ru, &embedded()).unwrap();
    assert_eq!(d.key.file_name(), "trade-ru.png");
    let s = d.key.to_string();
    assert!(
        s.starts_with("trade/ru/") && s.len() == "trade/ru/".len() + 16,
        "{s}"
    );
}

#[test]
fn charts_say_which_facts_they_draw() {
    let cat = embedded();
    let kind_of = |id: &str| ChartKind::for_fact(&cat.get(id).unwrap());
    assert_eq!(kind_of("trade.2011"), Some(ChartKind::Trade));
    assert_eq!(kind_of("trade.h1_growth"), Some(ChartKind::Trade));
    assert_eq!(kind_of("milestones.ses"), Some(ChartKind::Milestones));
    assert_eq!(kind_of("visit.dates"), Some(ChartKind::Milestones));
    assert_eq!(
        kind_of("investment.inflows_2011"),
        Some(ChartKind::Investment)
    );
    assert_eq!(kind_of("trade.gateways"), None, "no figure, no chart");
    assert_eq!(
        kind_of("visit.year"),
        None,
        "derived year: not on the timeline"
    );
    assert_eq!(kind_of("milestones.eeu_framework"), None, "undated");
    // What `draws` promises, describe delivers.
    for kind in ChartKind::ALL {
        for id in describe(kind, Lang::En, &cat).unwrap().facts {
            assert_eq!(kind_of(&id), Some(kind), "{id}");
        }
    }
}

#[test]
fn hostile_data_draws_without_panicking() {
    let mut facts = embedded_facts();
    let long = "Very long title ".repeat(40) + "\u{10FFFD}🚀\n\t<b>";
    edit(&mut facts, "trade.2011", |f| {
        f.values = vec![Value::Amount {
            amount: u64::MAX,
            currency: "<XBT>".into(),
            period: "not-a-period".into(),
        }]
    });
    edit(&mut facts, "trade.h1_2012", |f| {
        f.values = vec![Value::Amount {
            amount: 0,
            currency: "USD".into(),
            period: "2012-H1".into(),
        }]
    });
    edit(&mut facts, "trade.h1_growth", |f| {
        f.values = vec![Value::Percent { percent: f64::NAN }]
    });
    edit(&mut facts, "milestones.customs_union", |f| {
        f.date = Some(PartialDate {
            year: 1,
            month: None,
            day: None,
        });
        f.title.en = long.clone();
        f.title.ru = long.clone();
    });
    edit(&mut facts, "milestones.eeu_target", |f| {
        f.date = Some(PartialDate {
            year: i32::MAX,
            month: Some(12),
            day: Some(31),
        });
    });
    edit(&mut facts, "investment.assembly_plants", |f| {
        f.values = vec![Value::Count {
            count: 1_000_000,
            unit: "x".into(),
        }]
    });
    edit(&mut facts, "investment.state_support", |f| {
        f.values = vec![Value::Count {
            count: 5_000_000,
            unit: "more than the whole".into(),
        }]
    });
    let cat = catalog(facts);
    for kind in ChartKind::ALL {
        for lang in [Lang::En, Lang::Ru] {
            let png = render(kind, lang, &cat).unwrap_or_else(|e| panic!("{kind}/{lang}: {e}"));
            let (w, h, _) = decode(&png.bytes);
            assert_eq!((w, h), (WIDTH, HEIGHT));
            describe(kind, lang, &cat).unwrap();
        }
    }
}

#[test]
fn a_dataset_without_the_figures_says_so() {
    let facts: Vec<Fact> = embedded_facts()
        .into_iter()
        .filter(|f| {
            f.topic != Topic::Trade && f.topic != Topic::Milestones && f.topic != Topic::Investment
        })
        .collect();
    let cat = catalog(facts);
    for kind in ChartKind::ALL {
        assert!(
            matches!(describe(kind, Lang::En, &cat), Err(ChartError::Missing(_))),
            "{kind}"
        );
        assert!(
            matches!(render(kind, Lang::En, &cat), Err(ChartError::Missing(_))),
            "{kind}"
        );
    }
}

#[test]
fn the_cache_renders_once_per_key_and_stays_bounded() {
    let cat = embedded();
    let cache = Cache::default();
    let renders = Cell::new(0);
    let get = |kind, lang| {
        let key = describe(kind, lang, &cat).unwrap().key;
        cache
            .get_or_render(&key, || {
                renders.set(renders.get() + 1);
                render(kind, lang, &cat)
            })
            .unwrap()
    };
    let a = get(ChartKind::Trade, Lang::En);
    let b = get(ChartKind::Trade, Lang::En);
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(renders.get(), 1);
    get(ChartKind::Trade, Lang::Ru);
    assert_eq!(renders.get(), 2);
    // Fill past the bound with keys of other "datasets": the oldest go.
    for i in 0..CACHE_ENTRIES + 3 {
        let mut key = a.key.clone();
        key.digest = format!("{i:016x}");
        cache
            .get_or_render(&key, || {
                Ok(Png {
                    key: key.clone(),
                    bytes: vec![],
                    width: 0,
                    height: 0,
                })
            })
            .unwrap();
    }
    assert_eq!(cache.len(), CACHE_ENTRIES);
    assert!(cache.get(&a.key).is_none(), "least recently used evicted");
}
