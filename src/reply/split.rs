//! Splitting long replies to fit a platform's message limit.
//!
//! Splitting happens on the reply's *blocks*, before rendering, so a cut can
//! never fall inside a tag or an escape: blocks are packed into messages at
//! paragraph boundaries, and a single block too long for one message is
//! first broken into smaller blocks (list items, then words).

use super::{Block, Inline};

/// Telegram's limit on a message's text, in UTF-16 code units as Telegram
/// counts them (an emoji outside the Basic Multilingual Plane is two), so
/// Telegram chunks are measured with [`utf16_len`].
pub const TELEGRAM_LIMIT: usize = 4096;

/// Length in characters (Unicode scalar values).
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Length in UTF-16 code units: how Telegram measures a message.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Renders `blocks` with `render` and packs them, joined by `sep`, into
/// chunks of at most `limit` characters each.
pub fn split_blocks(
    blocks: &[Block],
    limit: usize,
    sep: &str,
    render: impl Fn(&Block) -> String,
) -> Vec<String> {
    split_blocks_by(blocks, limit, sep, render, char_len)
}

/// [`split_blocks`] with `limit` in the unit `len` measures (e.g.
/// [`utf16_len`] for Telegram).
pub fn split_blocks_by(
    blocks: &[Block],
    limit: usize,
    sep: &str,
    render: impl Fn(&Block) -> String,
    len: fn(&str) -> usize,
) -> Vec<String> {
    let limit = limit.max(64);
    let sep_len = len(sep);
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    let add =
        |r: String, r_len: usize, out: &mut Vec<String>, cur: &mut String, cur_len: &mut usize| {
            if !cur.is_empty() && *cur_len + sep_len + r_len > limit {
                out.push(std::mem::take(cur));
                *cur_len = 0;
            }
            if !cur.is_empty() {
                cur.push_str(sep);
                *cur_len += sep_len;
            }
            cur.push_str(&r);
            *cur_len += r_len;
        };
    for b in blocks {
        // Most blocks fit in a message as they are: rendered and measured
        // once, not cloned (what `fit` would return for them).
        let rendered = render(b);
        let r_len = len(&rendered);
        if r_len <= limit {
            add(rendered, r_len, &mut out, &mut cur, &mut cur_len);
            continue;
        }
        let mut rest = b.clone();
        // A block too long for a message starts in the room left in the
        // current one (unless that is under a quarter of a message), so
        // a heading is never sent alone before a long text.
        let room = limit.saturating_sub(cur_len + sep_len);
        if !cur.is_empty() && room >= limit / 4 {
            let mut pieces = fit(b.clone(), room, &render, len).into_iter();
            if let (Some(first), Some(more)) = (pieces.next(), join(pieces.collect())) {
                let r = render(&first);
                let r_len = len(&r);
                add(r, r_len, &mut out, &mut cur, &mut cur_len);
                rest = more;
            }
        }
        for small in fit(rest, limit, &render, len) {
            let r = render(&small);
            let r_len = len(&r);
            add(r, r_len, &mut out, &mut cur, &mut cur_len);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The pieces [`fit`] cut from one block, as one block again (`None` when
/// there are none or they are not all of one kind).
fn join(pieces: Vec<Block>) -> Option<Block> {
    let mut it = pieces.into_iter();
    let mut acc = it.next()?;
    for p in it {
        acc = match (acc, p) {
            (Block::List(mut a), Block::List(b)) => {
                a.extend(b);
                Block::List(a)
            }
            (Block::Paragraph(a), Block::Paragraph(b)) => Block::Paragraph(concat(a, b)),
            (Block::Heading(a), Block::Heading(b)) => Block::Heading(concat(a, b)),
            (Block::Quote(a), Block::Quote(b)) => Block::Quote(concat(a, b)),
            _ => return None,
        };
    }
    Some(acc)
}

fn concat(mut a: Vec<Inline>, b: Vec<Inline>) -> Vec<Inline> {
    for i in b {
        push_merged(&mut a, i);
    }
    a
}

/// Breaks one block into blocks that each render within `limit`.
fn fit(
    block: Block,
    limit: usize,
    render: &impl Fn(&Block) -> String,
    len: fn(&str) -> usize,
) -> Vec<Block> {
    if len(&render(&block)) <= limit {
        return vec![block];
    }
    match block {
        Block::List(items) if items.len() > 1 => {
            let mut out = Vec::new();
            let mut cur: Vec<Vec<Inline>> = Vec::new();
            for item in items {
                let mut trial = cur.clone();
                trial.push(item.clone());
                if !cur.is_empty() && len(&render(&Block::List(trial.clone()))) > limit {
                    out.extend(fit(
                        Block::List(std::mem::take(&mut cur)),
                        limit,
                        render,
                        len,
                    ));
                    cur.push(item);
                } else {
                    cur = trial;
                }
            }
            if !cur.is_empty() {
                out.extend(fit(Block::List(cur), limit, render, len));
            }
            out
        }
        Block::List(mut items) => {
            let item = items.pop().unwrap_or_default();
            split_inlines(item, limit, render, len, |i| Block::List(vec![i]))
        }
        Block::Heading(i) => split_inlines(i, limit, render, len, Block::Heading),
        Block::Paragraph(i) => split_inlines(i, limit, render, len, Block::Paragraph),
        Block::Quote(i) => split_inlines(i, limit, render, len, Block::Quote),
    }
}

/// Splits a line of inlines at white space (or anywhere, for a word longer
/// than a message) into pieces that render within `limit` once wrapped.
///
/// Markup and escaping can grow text up to ~6x ("&quot;"), so pieces are
/// sized by their rendered length. Each message takes the longest run of
/// words that fits, found by galloping search: O(n log n) renders' worth of
/// work, not one render per word (a 17,000-character announcement: 14 ms
/// in a debug build, against 290 ms rendering the message so far after
/// each word — and the worker splits once per part it sends).
fn split_inlines(
    items: Vec<Inline>,
    limit: usize,
    render: &impl Fn(&Block) -> String,
    len: fn(&str) -> usize,
    wrap: impl Fn(Vec<Inline>) -> Block,
) -> Vec<Block> {
    let fits = |line: Vec<Inline>| len(&render(&wrap(line))) <= limit;
    let mut words: Vec<Inline> = Vec::new();
    for item in items {
        for word in pieces(&item.text()) {
            let piece = item.with_text(word);
            if fits(vec![piece.clone()]) {
                words.push(piece);
                continue;
            }
            // A word too long for a message: cut it into the longest runs
            // of characters that fit. A character whose markup alone
            // overflows (a link with a huge URL) keeps its text and loses
            // the markup.
            let chars: Vec<char> = piece.text().chars().collect();
            let mut start = 0;
            while start < chars.len() {
                let cut = |k: usize| piece.with_text(chars[start..start + k].iter().collect());
                let take = longest(chars.len() - start, |k| fits(vec![cut(k)]));
                if take == 0 {
                    words.push(Inline::Text(chars[start].to_string()));
                    start += 1;
                } else {
                    words.push(cut(take));
                    start += take;
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < words.len() {
        let take = longest(words.len() - start, |k| {
            fits(merged(&words[start..start + k]))
        })
        .max(1);
        out.push(wrap(merged(&words[start..start + take])));
        start += take;
    }
    out
}

/// The largest `k` in `1..=max` with `fits(k)`, for a `fits` that holds up
/// to some `k` and fails beyond; 0 when even 1 does not fit.
fn longest(max: usize, fits: impl Fn(usize) -> bool) -> usize {
    if max == 0 || !fits(1) {
        return 0;
    }
    // Gallop to a failing bound, then bisect.
    let (mut ok, mut bad) = (1, max + 1);
    let mut step = 2;
    while step <= max {
        if fits(step) {
            ok = step;
            step *= 2;
        } else {
            bad = step;
            break;
        }
    }
    if bad == max + 1 && ok < max && fits(max) {
        return max;
    }
    while bad - ok > 1 {
        let mid = ok + (bad - ok) / 2;
        if mid <= max && fits(mid) {
            ok = mid;
        } else {
            bad = mid;
        }
    }
    ok
}

/// Inlines with neighbours of the same style merged.
fn merged(items: &[Inline]) -> Vec<Inline> {
    let mut v = Vec::with_capacity(items.len());
    for i in items {
        push_merged(&mut v, i.clone());
    }
    v
}

/// Words with their trailing white space, so joining them restores the text.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for c in text.chars() {
        if in_space && !c.is_whitespace() {
            out.push(std::mem::take(&mut cur));
        }
        in_space = c.is_whitespace();
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Appends, merging with the last inline when the style is the same.
fn push_merged(v: &mut Vec<Inline>, i: Inline) {
    if let Some(last) = v.last_mut() {
        let command = |x: &Inline| matches!(x, Inline::Command { .. });
        if std::mem::discriminant(last) == std::mem::discriminant(&i) && !command(&i) {
            if let (Inline::Link { url: a, .. }, Inline::Link { url: b, .. }) = (&*last, &i) {
                if a != b {
                    v.push(i);
                    return;
                }
            }
            let merged = format!("{}{}", last.text(), i.text());
            *last = last.with_text(merged);
            return;
        }
    }
    v.push(i);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::plain;

    #[test]
    fn packs_blocks_at_boundaries() {
        let blocks: Vec<Block> = (0..10)
            .map(|i| Block::Paragraph(vec![Inline::Text(format!("{i}").repeat(30))]))
            .collect();
        let out = split_blocks(&blocks, 100, "\n\n", plain::block);
        assert!(out.iter().all(|c| c.chars().count() <= 100));
        assert_eq!(out.len(), 4);
        assert_eq!(
            out.join("\n\n"),
            split_blocks(&blocks, 10_000, "\n\n", plain::block).join("")
        );
    }

    #[test]
    fn a_long_text_starts_right_after_its_heading() {
        let text = "word ".repeat(500);
        let blocks = vec![
            Block::Heading(vec![Inline::Text("Title".into())]),
            Block::Paragraph(vec![Inline::Text(text.clone())]),
        ];
        let out = split_blocks(&blocks, 1000, "\n\n", plain::block);
        assert!(out[0].starts_with("TITLE\n\nword word"), "{:?}", out[0]);
        assert!(out.iter().all(|c| c.chars().count() <= 1000));
        assert_eq!(
            out.len(),
            3,
            "{:?}",
            out.iter().map(|c| c.len()).collect::<Vec<_>>()
        );
        let strip = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(strip(&out.concat()), format!("TITLE{}", strip(&text)));
    }

    #[test]
    fn the_longest_run_that_fits_is_found() {
        for max in 0..40 {
            for edge in 0..=max + 1 {
                assert_eq!(
                    longest(max, |k| k <= edge),
                    edge.min(max),
                    "max {max} edge {edge}"
                );
            }
        }
    }

    #[test]
    fn utf16_splitting_counts_emoji_as_telegram_does() {
        // 2,100 emoji: 2,100 characters, 4,200 UTF-16 code units.
        let text = "🎉".repeat(2_100);
        let blocks = vec![Block::Paragraph(vec![Inline::Text(text.clone())])];
        assert_eq!(split_blocks(&blocks, 4096, "\n\n", plain::block).len(), 1);
        let out = split_blocks_by(&blocks, 4096, "\n\n", plain::block, utf16_len);
        assert_eq!(out.len(), 2);
        assert!(
            out.iter().all(|c| utf16_len(c) <= 4096),
            "{:?}",
            out.iter().map(|c| utf16_len(c)).collect::<Vec<_>>()
        );
        assert_eq!(out.concat(), text);
    }

    #[test]
    fn breaks_an_oversized_paragraph_by_words_keeping_all_text() {
        let text = "word ".repeat(500);
        let blocks = vec![Block::Paragraph(vec![Inline::Bold(text.clone())])];
        let out = split_blocks(&blocks, 100, "\n\n", plain::block);
        assert!(out.len() > 20);
        assert!(out.iter().all(|c| c.chars().count() <= 100));
        assert_eq!(out.concat(), text);
    }
}
