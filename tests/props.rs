//! Property tests: any input gets an answer without panicking or hanging,
//! and every renderer's output is well-formed whatever the data or the user
//! typed.

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use factbot::answer::{Engine, Request};
use factbot::facts::{ChatKey, Dataset, Lang, Store};
use factbot::reply::{
    render_matrix, render_telegram_html, split_blocks, Block, Inline, Reply, ReplyKind,
    TELEGRAM_LIMIT,
};
use proptest::prelude::*;

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let store = Store::temporary().unwrap();
            store.import(&Dataset::embedded().unwrap()).unwrap();
            Arc::new(Engine::new(store).unwrap())
        })
        .clone()
}

/// Answers on another thread, failing if no answer comes within `limit`:
/// a guard against hangs and pathological slowness, not a speed test.
fn answer_within(text: String, limit: Duration) -> Reply {
    let (tx, rx) = mpsc::channel();
    let e = engine();
    std::thread::spawn(move || {
        let r = e.handle(&Request::new(&ChatKey::Console, &text));
        let _ = tx.send(r);
    });
    rx.recv_timeout(limit)
        .expect("an answer within the bound (or the handler panicked)")
}

const TAGS: &[&str] = &["b", "i", "code", "a", "blockquote", "p", "ul", "li", "h4"];

/// Checks HTML as the renderers write it: only known tags, balanced and
/// properly nested, and every `&` starting one of the four escapes.
fn assert_well_formed(html: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(['<', '&', '>']) {
        let tail = &rest[i..];
        if tail.starts_with('>') {
            panic!("bare '>' in {html:?}");
        }
        if let Some(after) = tail.strip_prefix('&') {
            assert!(
                ["amp;", "lt;", "gt;", "quot;"]
                    .iter()
                    .any(|e| after.starts_with(e)),
                "bare '&' in {html:?}"
            );
            rest = after;
            continue;
        }
        let end = tail.find('>').expect("unclosed tag");
        let tag = &tail[1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mis-nested in {html:?}");
        } else {
            let name = tag.split(' ').next().unwrap_or("");
            assert!(TAGS.contains(&name), "unknown tag {tag:?} in {html:?}");
            if name == "a" {
                assert!(
                    tag.starts_with("a href=\"") && tag.ends_with('"'),
                    "{tag:?}"
                );
                assert!(
                    !tag[8..tag.len() - 1].contains('"'),
                    "quote in href {tag:?}"
                );
            }
            stack.push(name.to_string());
        }
        rest = &tail[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed {stack:?} in {html:?}");
}

/// Any Unicode text, control characters included (`any::<String>()` leaves
/// those out).
fn arb_text() -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(any::<char>(), 0..80).prop_map(|v| v.into_iter().collect())
}

fn arb_inline() -> impl Strategy<Value = Inline> + Clone {
    let text = arb_text();
    prop_oneof![
        text.clone().prop_map(Inline::Text),
        text.clone().prop_map(Inline::Bold),
        text.clone().prop_map(Inline::Italic),
        text.clone().prop_map(Inline::Code),
        (text.clone(), text).prop_map(|(text, url)| Inline::Link { text, url }),
    ]
}

fn arb_block() -> impl Strategy<Value = Block> {
    let line = prop::collection::vec(arb_inline(), 0..4);
    prop_oneof![
        line.clone().prop_map(Block::Heading),
        line.clone().prop_map(Block::Paragraph),
        line.clone().prop_map(Block::Quote),
        prop::collection::vec(line, 0..5).prop_map(Block::List),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_gets_an_answer(text in arb_text(), prefix in prop_oneof![Just(""), Just("/"), Just("/search "), Just("/fact "), Just("/lang ")]) {
        let r = answer_within(format!("{prefix}{text}"), Duration::from_secs(10));
        prop_assert!(!r.blocks.is_empty());
    }

    #[test]
    fn long_inputs_up_to_100kb_get_an_answer(
        word in "[a-zA-Zа-яА-Я0-9 ]{1,40}",
        noise in prop::collection::vec(any::<char>(), 0..2000),
        repeat in 1usize..2500,
    ) {
        let mut text: String = word.repeat(repeat);
        text.extend(noise);
        let text: String = text.chars().take(100_000).collect();
        let r = answer_within(text, Duration::from_secs(20));
        prop_assert!(!r.blocks.is_empty());
    }

    #[test]
    fn user_text_echoed_in_replies_is_escaped(text in arb_text()) {
        // `/search` echoes the query: the one place user text reaches a reply.
        let r = answer_within(format!("/search {text}"), Duration::from_secs(10));
        for chunk in render_telegram_html(&r, TELEGRAM_LIMIT) {
            assert_well_formed(&chunk);
        }
        for (_, html) in render_matrix(&r, TELEGRAM_LIMIT) {
            assert_well_formed(&html);
        }
    }

    #[test]
    fn renderers_are_well_formed_and_split_within_the_limit(
        blocks in prop::collection::vec(arb_block(), 0..6),
        limit in 64usize..600,
    ) {
        let mut reply = Reply::new(ReplyKind::Answer, Lang::En);
        reply.blocks = blocks.clone();
        for chunk in render_telegram_html(&reply, limit) {
            // Telegram counts UTF-16 code units.
            let units = chunk.encode_utf16().count();
            prop_assert!(units <= limit, "chunk of {units} UTF-16 units > {limit}");
            assert_well_formed(&chunk);
        }
        for (body, html) in render_matrix(&reply, limit) {
            prop_assert!(html.chars().count() <= limit);
            prop_assert!(body.chars().count() <= limit);
            assert_well_formed(&html);
        }
        // Splitting loses no text: the chunks hold every character of it.
        fn text_of(b: &Block) -> String {
            let line = |l: &Vec<Inline>| l.iter().map(Inline::text).collect::<String>();
            match b {
                Block::Heading(l) | Block::Paragraph(l) | Block::Quote(l) => line(l),
                Block::List(items) => items.iter().map(line).collect(),
            }
        }
        let plain = split_blocks(&blocks, limit, "", text_of).concat();
        let whole: String = blocks.iter().map(text_of).collect();
        let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        prop_assert_eq!(strip(&plain), strip(&whole));
    }
}

#[test]
fn every_reply_to_every_command_renders_well_formed() {
    let e = engine();
    let mut lines: Vec<String> = factbot::reply::COMMANDS
        .iter()
        .map(|(c, _, _)| format!("/{c}"))
        .collect();
    lines.extend(
        e.catalog()
            .ids()
            .flat_map(|id| [format!("/fact {id}"), format!("/source {id}")]),
    );
    for kind in factbot::chart::ChartKind::ALL {
        for lang in [factbot::facts::Lang::En, factbot::facts::Lang::Ru] {
            lines.push(format!("/chart {}", kind.local_name(lang)));
        }
    }
    for l in &lines {
        let r = e.handle(&Request::new(&ChatKey::Console, l));
        for chunk in render_telegram_html(&r, TELEGRAM_LIMIT) {
            assert_well_formed(&chunk);
        }
        for (_, html) in render_matrix(&r, TELEGRAM_LIMIT) {
            assert_well_formed(&html);
        }
        for row in &r.buttons {
            for b in row {
                assert!(
                    b.action.len() <= 64,
                    "callback data over 64 bytes: {}",
                    b.action
                );
            }
        }
    }
}
