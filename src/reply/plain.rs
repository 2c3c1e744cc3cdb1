//! Plain text: the console and `factbot ask`. Buttons become a "→" line of
//! the commands they would run, so a terminal user can type them.

use super::{with_prefix, Block, ChartRef, Inline, Reply};

/// Commands as typed on the console (and shown by `factbot ask`).
pub const CONSOLE_PREFIX: char = '/';

/// The reply as text; an attached chart appears as its alt text.
pub fn render_plain(reply: &Reply) -> String {
    let mut parts: Vec<String> = with_prefix(&reply.text_blocks(), CONSOLE_PREFIX)
        .iter()
        .map(block)
        .collect();
    let actions: Vec<&str> = reply
        .buttons
        .iter()
        .flatten()
        .map(|b| b.action.as_str())
        .collect();
    if !actions.is_empty() {
        parts.push(format!("→ {}", actions.join("  ")));
    }
    parts.join("\n\n")
}

/// One block as plain text.
pub(super) fn block(b: &Block) -> String {
    match b {
        Block::Heading(i) => inlines(i).to_uppercase(),
        Block::Paragraph(i) => inlines(i),
        Block::List(items) => items
            .iter()
            .map(|i| format!("• {}", inlines(i)))
            .collect::<Vec<_>>()
            .join("\n"),
        Block::Quote(i) => inlines(i)
            .lines()
            .map(|l| format!("> {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

pub(super) fn inlines(items: &[Inline]) -> String {
    items
        .iter()
        .map(|i| match i {
            Inline::Link { text, url } if text != url => format!("{text} ({url})"),
            other => other.text().to_string(),
        })
        .collect()
}

/// A chart's caption as plain text (shown beside the picture's file).
pub fn render_caption_plain(image: &ChartRef) -> String {
    inlines(&image.caption)
}
