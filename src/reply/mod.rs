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

pub use html::{
    escape_html, render_caption_html, render_matrix, render_telegram_html, MATRIX_PREFIX,
    TELEGRAM_PREFIX,
};
pub use messages::{Msg, COMMANDS};
pub use plain::{render_caption_plain, render_plain, CONSOLE_PREFIX};
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
    Link {
        text: String,
        url: String,
    },
    /// A command the reader can type (`/help`, `/chart trade`), without
    /// its prefix: each renderer writes the prefix its platform uses — `/`
    /// in Telegram and the console, `!` in Matrix, where clients keep `/`
    /// for themselves. No renderer looks for commands in prose.
    Command {
        /// The command word: `chart`.
        name: String,
        /// What follows it, maybe empty: `trade`.
        args: String,
        /// How it is set: in the running text (`Text`, `Italic`) or as a
        /// line to copy (`Code`).
        look: Look,
    },
}

/// How an [`Inline::Command`] is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Look {
    Text,
    Italic,
    Code,
}

impl Inline {
    /// A command in the running text: `/name`, `/name args`.
    pub fn command(name: &str, args: &str) -> Inline {
        Inline::Command {
            name: name.to_string(),
            args: args.to_string(),
            look: Look::Text,
        }
    }

    /// A command as code, a line to copy: `/name args`.
    pub fn code_command(name: &str, args: &str) -> Inline {
        Inline::Command {
            name: name.to_string(),
            args: args.to_string(),
            look: Look::Code,
        }
    }

    /// A command line as a button's action holds it (`/source trade.2011`),
    /// as code.
    pub fn code_action(action: &str) -> Inline {
        let line = action.strip_prefix('/').unwrap_or(action);
        let (name, args) = line.split_once(' ').unwrap_or((line, ""));
        Inline::code_command(name, args)
    }

    /// The text a reader sees; a command as Telegram and the console
    /// write it (`/`).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Inline::Text(t) | Inline::Bold(t) | Inline::Italic(t) | Inline::Code(t) => {
                Cow::Borrowed(t)
            }
            Inline::Link { text, .. } => Cow::Borrowed(text),
            Inline::Command { .. } => Cow::Owned(self.lowered('/').text().into_owned()),
        }
    }

    /// The same style around other text (a command's look).
    pub fn with_text(&self, text: String) -> Inline {
        match self {
            Inline::Text(_)
            | Inline::Command {
                look: Look::Text, ..
            } => Inline::Text(text),
            Inline::Bold(_) => Inline::Bold(text),
            Inline::Italic(_)
            | Inline::Command {
                look: Look::Italic, ..
            } => Inline::Italic(text),
            Inline::Code(_)
            | Inline::Command {
                look: Look::Code, ..
            } => Inline::Code(text),
            Inline::Link { url, .. } => Inline::Link {
                text,
                url: url.clone(),
            },
        }
    }

    /// The same in italics: running text and the commands in it.
    pub fn italic(self) -> Inline {
        match self {
            Inline::Text(t) => Inline::Italic(t),
            Inline::Command {
                name,
                args,
                look: Look::Text,
            } => Inline::Command {
                name,
                args,
                look: Look::Italic,
            },
            other => other,
        }
    }

    /// A command written with `prefix`, in its look; anything else as it
    /// is.
    fn lowered(&self, prefix: char) -> Inline {
        match self {
            Inline::Command { name, args, .. } => {
                let mut line = String::with_capacity(1 + name.len() + 1 + args.len());
                line.push(prefix);
                line.push_str(name);
                if !args.is_empty() {
                    line.push(' ');
                    line.push_str(args);
                }
                self.with_text(line)
            }
            other => other.clone(),
        }
    }
}

/// `blocks` as a platform writes them: every command with `prefix` and
/// joined to the running text beside it of the same style, so a command
/// inside an italic sentence stays one italic run. Borrowed when there is
/// no command.
pub(crate) fn with_prefix(blocks: &[Block], prefix: char) -> Cow<'_, [Block]> {
    let has = |line: &[Inline]| line.iter().any(|i| matches!(i, Inline::Command { .. }));
    let any = blocks.iter().any(|b| match b {
        Block::Heading(l) | Block::Paragraph(l) | Block::Quote(l) => has(l),
        Block::List(items) => items.iter().any(|l| has(l)),
    });
    if !any {
        return Cow::Borrowed(blocks);
    }
    let line = |l: &Vec<Inline>| lower_line(l, prefix);
    Cow::Owned(
        blocks
            .iter()
            .map(|b| match b {
                Block::Heading(l) => Block::Heading(line(l)),
                Block::Paragraph(l) => Block::Paragraph(line(l)),
                Block::List(items) => Block::List(items.iter().map(line).collect()),
                Block::Quote(l) => Block::Quote(line(l)),
            })
            .collect(),
    )
}

/// One line of [`with_prefix`]: a written command joins the text or
/// italic run before and after it; other neighbours stay apart.
fn lower_line(items: &[Inline], prefix: char) -> Vec<Inline> {
    let mut out: Vec<Inline> = Vec::with_capacity(items.len());
    let mut joinable = false;
    for i in items {
        let is_command = matches!(i, Inline::Command { .. });
        let written = i.lowered(prefix);
        let joined = (is_command || joinable)
            && match (out.last_mut(), &written) {
                (Some(Inline::Text(a)), Inline::Text(b))
                | (Some(Inline::Italic(a)), Inline::Italic(b)) => {
                    a.push_str(b);
                    true
                }
                _ => false,
            };
        if !joined {
            out.push(written);
        }
        joinable = is_command;
    }
    out
}

/// A person's prose (an admin's announcement) with the commands it names
/// (`/subscribe`, `/help`: a known command word after white space or an
/// opening bracket or quote) as [`Inline::Command`]s, so each platform
/// shows them with its prefix; `a/b`, URLs and unknown words stay text.
pub fn commands_in(text: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut prev: Option<char> = None;
    let mut rest = text.char_indices().peekable();
    while let Some((i, c)) = rest.next() {
        if c == '/' && prev.is_none_or(|p| p.is_whitespace() || "([«\"'".contains(p)) {
            let word: String = text[i + 1..]
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect();
            let known =
                COMMANDS.iter().any(|(name, _, _)| *name == word) || word.starts_with("announce_");
            if known {
                if !plain.is_empty() {
                    out.push(Inline::Text(std::mem::take(&mut plain)));
                }
                out.push(Inline::command(&word, ""));
                // The word is ASCII: one char per byte.
                for _ in 0..word.len() {
                    rest.next();
                }
                prev = word.chars().last();
                continue;
            }
        }
        plain.push(c);
        prev = Some(c);
    }
    if !plain.is_empty() || out.is_empty() {
        out.push(Inline::Text(plain));
    }
    out
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
