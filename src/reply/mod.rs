//! The transport-neutral reply and its renderers.
//!
//! The core answers with a [`Reply`]: structured rich text plus optional
//! buttons and an optional chart. Each transport picks a renderer — plain
//! text (console, CLI), Telegram HTML, Matrix `body` + `formatted_body` — so
//! no answer-building code ever writes markup, and escaping lives in exactly
//! one place per format.
//!
//! A chart travels as a [`ChartRef`] (which chart, its caption and alt
//! text), never as bytes: whoever sends it fetches the PNG by its key
//! (`Engine::chart_png`). The text renderers show a chart's alt text in its
//! place, so a reply reads completely where no picture is sent; a transport
//! that sends the picture takes `image` out of the reply first and renders
//! the caption with [`render_caption_html`].

mod html;
mod messages;
mod plain;
mod split;

pub use html::{escape_html, render_caption_html, render_matrix, render_telegram_html};
pub use messages::{Msg, COMMANDS};
pub use plain::{render_caption_plain, render_plain};
pub use split::{split_blocks, split_blocks_by, utf16_len, TELEGRAM_LIMIT};

use std::borrow::Cow;

use serde::Serialize;

use crate::chart::ChartKey;
use crate::facts::Lang;

/// Characters of user text a reply echoes back at most (an unknown command
/// name, a mistyped fact id, a search, a topic word).
///
/// Why: a reply that repeats what it was sent grows with it — 4,000 `"`
/// after `/fact` become 24,000 characters of `&quot;` once escaped, several
/// messages for one — so a stranger could make the bot send more than it
/// receives. Cut before escaping, one incoming message yields one reply.
pub const ECHO_MAX: usize = 64;

/// `text` as a reply may echo it: at most [`ECHO_MAX`] characters, and an
/// ellipsis when it was longer.
pub fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO_MAX) {
        None => text.to_string(),
        Some((i, _)) => format!("{}…", &text[..i]),
    }
}

/// A run of inline text with one style.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "style", content = "text", rename_all = "lowercase")]
pub enum Inline {
    Text(String),
    Bold(String),
    Italic(String),
    Code(String),
    Link { text: String, url: String },
}

impl Inline {
    /// The text a reader sees.
    pub fn text(&self) -> &str {
        match self {
            Inline::Text(t) | Inline::Bold(t) | Inline::Italic(t) | Inline::Code(t) => t,
            Inline::Link { text, .. } => text,
        }
    }

    /// The same style around other text.
    pub fn with_text(&self, text: String) -> Inline {
        match self {
            Inline::Text(_) => Inline::Text(text),
            Inline::Bold(_) => Inline::Bold(text),
            Inline::Italic(_) => Inline::Italic(text),
            Inline::Code(_) => Inline::Code(text),
            Inline::Link { url, .. } => Inline::Link {
                text,
                url: url.clone(),
            },
        }
    }
}

/// A block of a reply; blocks are separated by a blank line.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "block", content = "content", rename_all = "lowercase")]
pub enum Block {
    Heading(Vec<Inline>),
    Paragraph(Vec<Inline>),
    /// A bulleted list; each item a line of inlines.
    List(Vec<Vec<Inline>>),
    /// A quotation (the article's own words).
    Quote(Vec<Inline>),
}

/// A button under a reply; pressing it runs `action` as if typed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Button {
    pub label: String,
    /// A command line such as `/source trade.2011`, at most 64 bytes so it
    /// fits Telegram's callback data.
    pub action: String,
}

/// What kind of answer this is; transports and tests act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// Facts answering the request.
    Answer,
    /// The bot has no fact on the subject.
    NoAnswer,
    /// Help, greetings, settings.
    Info,
    /// The request was malformed (unknown command, missing argument).
    Error,
}

/// A chart attached to a reply: what to fetch and what to say with it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChartRef {
    /// Which chart, language and data: fetch the PNG by it, and key a
    /// platform's stored file id / content URI by it (its `Display` form).
    pub key: ChartKey,
    /// Shown with the picture (Telegram caption, Matrix message): the
    /// title, the figures in one line, and the paragraphs cited (¶N).
    pub caption: Vec<Inline>,
    /// The figures in sentences: Matrix `m.image` `body`, screen readers,
    /// and what text-only renderers show instead of the picture.
    pub alt: String,
    /// The article paragraphs the chart draws from.
    pub paragraphs: Vec<u32>,
    /// Pixel size of the PNG (Matrix `info.w` / `info.h`).
    pub width: u32,
    pub height: u32,
}

impl ChartRef {
    /// What stands in for the picture where none is sent.
    pub fn fallback(&self) -> Block {
        Block::Paragraph(vec![
            Inline::Text(format!("📊 {}", self.alt)),
            Inline::Text(format!(" [{}]", crate::chart::cite(&self.paragraphs))),
        ])
    }
}

/// A reply, before any transport formats it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reply {
    pub kind: ReplyKind,
    /// The language it is written in.
    pub lang: Lang,
    pub blocks: Vec<Block>,
    /// Rows of buttons.
    pub buttons: Vec<Vec<Button>>,
    /// Ids of the facts it states, in order.
    pub facts: Vec<String>,
    /// A chart to show with it (`/chart`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ChartRef>,
}

impl Reply {
    pub fn new(kind: ReplyKind, lang: Lang) -> Reply {
        Reply {
            kind,
            lang,
            blocks: Vec::new(),
            buttons: Vec::new(),
            facts: Vec::new(),
            image: None,
        }
    }

    /// The blocks a text-only renderer shows: the reply's own, then the
    /// chart's stand-in if a chart is attached.
    pub fn text_blocks(&self) -> Cow<'_, [Block]> {
        match &self.image {
            None => Cow::Borrowed(&self.blocks),
            Some(img) => {
                let mut b = self.blocks.clone();
                b.push(img.fallback());
                Cow::Owned(b)
            }
        }
    }

    pub fn block(mut self, b: Block) -> Reply {
        self.blocks.push(b);
        self
    }

    pub fn text(self, t: impl Into<String>) -> Reply {
        self.block(Block::Paragraph(vec![Inline::Text(t.into())]))
    }

    /// A paragraph of one message (see [`Msg`]).
    pub fn say(self, line: Vec<Inline>) -> Reply {
        self.block(Block::Paragraph(line))
    }
}
