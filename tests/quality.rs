//! The answer-quality table: every question in `tests/quality.toml` with the
//! facts its answer must contain (or that the bot must decline). Fails when
//! fewer than 95% of the cases pass, and prints every miss either way.

use factbot::answer::{Engine, Request};
use factbot::facts::{Dataset, Lang, Store};
use factbot::reply::ReplyKind;
use serde::Deserialize;

#[derive(Deserialize)]
struct Table {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    q: String,
    lang: Lang,
    #[serde(default)]
    expect: Vec<String>,
    #[serde(default)]
    decline: bool,
}

#[test]
fn answer_quality_is_at_least_95_percent() {
    let table: Table = toml::from_str(include_str!("quality.toml")).expect("quality.toml parses");
    assert!(
        table.case.len() >= 60,
        "the table must have at least 60 questions"
    );
    let store = Store::temporary().unwrap();
    store.import(&Dataset::embedded().unwrap()).unwrap();
    let engine = Engine::new(store).unwrap();
    let known: Vec<String> = engine
        .catalog()
        .facts
        .iter()
        .map(|f| f.id.clone())
        .collect();
    let mut misses = Vec::new();
    for c in &table.case {
        for id in &c.expect {
            assert!(
                known.contains(id),
                "case {:?} expects unknown fact {id}",
                c.q
            );
        }
        assert!(
            c.decline == c.expect.is_empty(),
            "case {:?}: give expect or decline",
            c.q
        );
        let r = engine.handle(&Request::new("quality", &c.q));
        let mut why = Vec::new();
        if r.lang != c.lang {
            why.push(format!("answered in {} not {}", r.lang, c.lang));
        }
        if c.decline {
            if r.kind != ReplyKind::NoAnswer {
                why.push(format!("should decline, answered {:?}", r.facts));
            }
        } else {
            for id in &c.expect {
                if !r.facts.contains(id) {
                    why.push(format!("missing {id}, got {:?}", r.facts));
                }
            }
        }
        if !why.is_empty() {
            misses.push(format!("{:?}: {}", c.q, why.join("; ")));
        }
    }
    let total = table.case.len();
    let passed = total - misses.len();
    let share = passed as f64 / total as f64;
    eprintln!("answer quality: {passed}/{total} = {:.1}%", share * 100.0);
    for m in &misses {
        eprintln!("  MISS {m}");
    }
    assert!(
        share >= 0.95,
        "answer quality {:.1}% is under 95%",
        share * 100.0
    );
}
