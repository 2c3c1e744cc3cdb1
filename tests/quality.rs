//! The answer-quality table: every question in `tests/quality.toml` with the
//! facts its answer must contain (or that the bot must decline). Fails when
//! fewer than 95% of the cases pass, and prints every miss either way.

use factbot::answer::{Engine, Request};
use factbot::facts::{ChatKey, Dataset, Lang, Store};
use factbot::reply::ReplyKind;
use serde::Deserialize;

/// The held-out table's floor. First measured untouched at 37.5% (15/40);
/// generic fixes prompted by its misses (more filler stop words, a lower
/// weight for unknown words) brought it to 60%, so it is no longer a pure
/// held-out measure; the floor guards against sliding back.
const HELD_OUT_FLOOR: f64 = 0.55;

/// The second held-out table's floor. Written at 33/60 (55%: no follow-ups,
/// small talk or "the article does not say" yet); the conversation work
/// (issue 12), done without reading the table, brought it to 41/60 = 68.3%.
/// The floor guards against sliding back.
const HELD_OUT_2_FLOOR: f64 = 0.68;

#[derive(Deserialize)]
struct Table {
    #[serde(default)]
    case: Vec<Case>,
    /// Follow-up sequences: turns asked in order in one chat.
    #[serde(default)]
    dialogue: Vec<Dialogue>,
}

#[derive(Deserialize)]
struct Dialogue {
    turn: Vec<Case>,
}

/// One question and what its answer must be: exactly one of `expect`
/// (facts the answer contains), `decline` (no fact on that; with `offer`:
/// and the facts the article does give about what was asked) or
/// `smalltalk` (a short friendly reply, neither facts nor "no fact").
#[derive(Deserialize)]
struct Case {
    q: String,
    lang: Lang,
    #[serde(default)]
    expect: Vec<String>,
    #[serde(default)]
    decline: bool,
    #[serde(default)]
    offer: Vec<String>,
    #[serde(default)]
    smalltalk: bool,
}

/// Why a reply misses its case (empty: it passes).
fn judge(c: &Case, r: &factbot::reply::Reply) -> Vec<String> {
    let mut why = Vec::new();
    if r.lang != c.lang {
        why.push(format!("answered in {} not {}", r.lang, c.lang));
    }
    if c.decline {
        if r.kind != ReplyKind::NoAnswer {
            why.push(format!("should decline, answered {:?}", r.facts));
        }
        for id in &c.offer {
            if !r.facts.contains(id) {
                why.push(format!("should offer {id}, offered {:?}", r.facts));
            }
        }
    } else if c.smalltalk {
        if r.kind != ReplyKind::Info || !r.facts.is_empty() {
            why.push(format!(
                "should be small talk, got {:?} {:?}",
                r.kind, r.facts
            ));
        }
    } else {
        for id in &c.expect {
            if !r.facts.contains(id) {
                why.push(format!("missing {id}, got {:?}", r.facts));
            }
        }
    }
    why
}

/// Runs every case of a table, each in a chat of its own, and every
/// dialogue's turns in order in one chat; returns (passed, total, misses).
fn evaluate(table: &str) -> (usize, usize, Vec<String>) {
    let table: Table = toml::from_str(table).expect("the table parses");
    let store = Store::temporary().unwrap();
    store.import(&Dataset::embedded().unwrap()).unwrap();
    let engine = Engine::new(store).unwrap();
    let known: Vec<String> = engine.catalog().ids().map(String::from).collect();
    let sequences: Vec<(String, &[Case])> = table
        .case
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("quality-{i}"), std::slice::from_ref(c)))
        .chain(
            table
                .dialogue
                .iter()
                .enumerate()
                .map(|(i, d)| (format!("quality-dialogue-{i}"), d.turn.as_slice())),
        )
        .collect();
    let mut misses = Vec::new();
    let mut total = 0;
    for (k, (chat, turns)) in sequences.iter().enumerate() {
        // A chat of its own per case and per dialogue.
        let key = ChatKey::Telegram(k as i64 + 1);
        for (n, c) in turns.iter().enumerate() {
            for id in c.expect.iter().chain(&c.offer) {
                assert!(known.contains(id), "case {:?} names unknown fact {id}", c.q);
            }
            let kinds = usize::from(!c.expect.is_empty())
                + usize::from(c.decline)
                + usize::from(c.smalltalk);
            assert!(
                kinds == 1 && (c.offer.is_empty() || c.decline),
                "case {:?}: give one of expect, decline (with offer) or smalltalk",
                c.q
            );
            total += 1;
            let r = engine.handle(&Request::new(&key, &c.q));
            let why = judge(c, &r);
            if !why.is_empty() {
                let at = if turns.len() > 1 {
                    format!(" (turn {} of {chat})", n + 1)
                } else {
                    String::new()
                };
                misses.push(format!("{:?}{at}: {}", c.q, why.join("; ")));
            }
        }
    }
    (total - misses.len(), total, misses)
}

fn report(name: &str, (passed, total, misses): &(usize, usize, Vec<String>)) -> f64 {
    let share = *passed as f64 / *total as f64;
    eprintln!("{name}: {passed}/{total} = {:.1}%", share * 100.0);
    for m in misses {
        eprintln!("  MISS {m}");
    }
    share
}

/// The tuning table: the engine was tuned on it, so it must stay at 95%+.
#[test]
fn answer_quality_is_at_least_95_percent() {
    let r = evaluate(include_str!("quality.toml"));
    assert!(r.1 >= 60, "the table must have at least 60 questions");
    let share = report("answer quality", &r);
    assert!(
        share >= 0.95,
        "answer quality {:.1}% is under 95%",
        share * 100.0
    );
}

/// A held-out table written by someone who never saw the tuning table, and
/// never tuned against: it measures how well the tuning generalises. Its
/// floor is lower and its misses are the to-do list for the dataset.
#[test]
fn held_out_answer_quality_is_reported() {
    let r = evaluate(include_str!("quality_holdout.toml"));
    let share = report("held-out answer quality", &r);
    assert!(
        share >= HELD_OUT_FLOOR,
        "held-out answer quality {:.1}% is under {:.0}%",
        share * 100.0,
        HELD_OUT_FLOOR * 100.0
    );
}

/// A second held-out table (60 cases), written by a helper who saw only
/// the article and the fact ids with their titles: paraphrases, colloquial
/// Russian, typos, questions the article cannot answer (some about people
/// and things it does mention, whose answer should offer what it does
/// say), small talk and follow-up dialogues.
#[test]
fn second_held_out_answer_quality_is_reported() {
    let r = evaluate(include_str!("quality_holdout_2.toml"));
    assert_eq!(r.1, 60, "the table has 60 cases");
    let share = report("held-out answer quality, set 2", &r);
    assert!(
        share >= HELD_OUT_2_FLOOR,
        "held-out set 2 answer quality {:.1}% is under {:.0}%",
        share * 100.0,
        HELD_OUT_2_FLOOR * 100.0
    );
}
