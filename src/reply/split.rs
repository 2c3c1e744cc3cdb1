//! Splitting long replies to fit a platform's message limit.
//!
//! Splitting happens on the reply's *blocks*, before rendering, so a cut can
//! never fall inside a tag or an escape: blocks are packed into messages at
//! paragraph boundaries, and a single block too long for one message is
//! first broken into smaller blocks (list items, then words).

use super::{Block, Inline};

/// Telegram's limit on a message's text, in characters (UTF-16 code units
/// in fact; we count chars and keep a margin for astral-plane text).
pub const TELEGRAM_LIMIT: usize = 4096;

/// Renders `blocks` with `render` and packs them, joined by `sep`, into
/// chunks of at most `limit` characters each.
pub fn split_blocks(
    blocks: &[Block],
    limit: usize,
    sep: &str,
    render: impl Fn(&Block) -> String,
) -> Vec<String> {
    let limit = limit.max(64);
    let mut rendered: Vec<String> = Vec::new();
    for b in blocks {
        for small in fit(b.clone(), limit, &render) {
            rendered.push(render(&small));
        }
    }
    let sep_len = sep.chars().count();
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    for r in rendered {
        let len = r.chars().count();
        if !cur.is_empty() && cur_len + sep_len + len > limit {
            out.push(std::mem::take(&mut cur));
            cur_len = 0;
        }
        if !cur.is_empty() {
            cur.push_str(sep);
            cur_len += sep_len;
        }
        cur.push_str(&r);
        cur_len += len;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Breaks one block into blocks that each render within `limit`.
fn fit(block: Block, limit: usize, render: &impl Fn(&Block) -> String) -> Vec<Block> {
    if render(&block).chars().count() <= limit {
        return vec![block];
    }
    match block {
        Block::List(items) if items.len() > 1 => {
            let mut out = Vec::new();
            let mut cur: Vec<Vec<Inline>> = Vec::new();
            for item in items {
                let mut trial = cur.clone();
                trial.push(item.clone());
                if !cur.is_empty() && render(&Block::List(trial.clone())).chars().count() > limit {
                    out.extend(fit(Block::List(std::mem::take(&mut cur)), limit, render));
                    cur.push(item);
                } else {
                    cur = trial;
                }
            }
            if !cur.is_empty() {
                out.extend(fit(Block::List(cur), limit, render));
            }
            out
        }
        Block::List(mut items) => {
            let item = items.pop().unwrap_or_default();
            split_inlines(item, limit, render, |i| Block::List(vec![i]))
        }
        Block::Heading(i) => split_inlines(i, limit, render, Block::Heading),
        Block::Paragraph(i) => split_inlines(i, limit, render, Block::Paragraph),
        Block::Quote(i) => split_inlines(i, limit, render, Block::Quote),
    }
}

/// Splits a line of inlines at white space (or anywhere, for a word longer
/// than a message) into pieces that render within `limit` once wrapped.
fn split_inlines(
    items: Vec<Inline>,
    limit: usize,
    render: &impl Fn(&Block) -> String,
    wrap: impl Fn(Vec<Inline>) -> Block,
) -> Vec<Block> {
    // Markup and escaping can grow text up to ~6x ("&quot;"); size pieces by
    // the rendered length of the piece itself, shrinking until it fits.
    let mut out = Vec::new();
    let mut cur: Vec<Inline> = Vec::new();
    for item in items {
        for word in pieces(item.text()) {
            let piece = item.with_text(word);
            let mut trial = cur.clone();
            push_merged(&mut trial, piece.clone());
            if render(&wrap(trial.clone())).chars().count() <= limit {
                cur = trial;
                continue;
            }
            if !cur.is_empty() {
                out.push(wrap(std::mem::take(&mut cur)));
            }
            // The piece alone may still be too long: cut it by characters.
            // A character whose markup alone overflows (a link with a huge
            // URL) keeps its text and loses the markup.
            let fits = |i: &Inline| render(&wrap(vec![i.clone()])).chars().count() <= limit;
            let mut chunk = String::new();
            for c in piece.text().chars() {
                let mut trial = chunk.clone();
                trial.push(c);
                if fits(&piece.with_text(trial.clone())) {
                    chunk = trial;
                    continue;
                }
                if !chunk.is_empty() {
                    out.push(wrap(vec![piece.with_text(std::mem::take(&mut chunk))]));
                }
                if fits(&piece.with_text(c.to_string())) {
                    chunk.push(c);
                } else {
                    out.push(wrap(vec![Inline::Text(c.to_string())]));
                }
            }
            if !chunk.is_empty() {
                cur.push(piece.with_text(chunk));
            }
        }
    }
    if !cur.is_empty() {
        out.push(wrap(cur));
    }
    out
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
        if std::mem::discriminant(last) == std::mem::discriminant(&i) {
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
    fn breaks_an_oversized_paragraph_by_words_keeping_all_text() {
        let text = "word ".repeat(500);
        let blocks = vec![Block::Paragraph(vec![Inline::Bold(text.clone())])];
        let out = split_blocks(&blocks, 100, "\n\n", plain::block);
        assert!(out.len() > 20);
        assert!(out.iter().all(|c| c.chars().count() <= 100));
        assert_eq!(out.concat(), text);
    }
}
