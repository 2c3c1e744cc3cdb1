//! HTML for Telegram (`parse_mode = HTML`) and Matrix (`formatted_body`).
//!
//! Every string from the dataset or a user passes through [`escape_html`];
//! nothing else in the crate writes markup.

use super::{plain, split, Block, ChartRef, Inline, Reply};

/// Escapes text for HTML bodies and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn inline(i: &Inline) -> String {
    match i {
        Inline::Text(t) => escape_html(t),
        Inline::Bold(t) => format!("<b>{}</b>", escape_html(t)),
        Inline::Italic(t) => format!("<i>{}</i>", escape_html(t)),
        Inline::Code(t) => format!("<code>{}</code>", escape_html(t)),
        Inline::Link { text, url } => {
            format!("<a href=\"{}\">{}</a>", escape_html(url), escape_html(text))
        }
    }
}

fn inlines(items: &[Inline]) -> String {
    items.iter().map(inline).collect()
}

/// Telegram's HTML subset has no lists or headings: bullets and bold stand in.
fn telegram_block(b: &Block) -> String {
    match b {
        Block::Heading(i) => format!("<b>{}</b>", inlines(i)),
        Block::Paragraph(i) => inlines(i),
        Block::List(items) => items
            .iter()
            .map(|i| format!("• {}", inlines(i)))
            .collect::<Vec<_>>()
            .join("\n"),
        Block::Quote(i) => format!("<blockquote>{}</blockquote>", inlines(i)),
    }
}

/// Matrix clients render real HTML lists and headings.
fn matrix_block(b: &Block) -> String {
    match b {
        Block::Heading(i) => format!("<h4>{}</h4>", inlines(i)),
        Block::Paragraph(i) => format!("<p>{}</p>", inlines(i)),
        Block::List(items) => format!(
            "<ul>{}</ul>",
            items
                .iter()
                .map(|i| format!("<li>{}</li>", inlines(i)))
                .collect::<String>()
        ),
        Block::Quote(i) => format!("<blockquote>{}</blockquote>", inlines(i)),
    }
}

/// Telegram messages (HTML parse mode), each within `limit` UTF-16 code
/// units (Telegram's measure; markup counted too, so the text Telegram
/// sees is shorter still); the buttons are the transport's to attach to
/// the last one.
pub fn render_telegram_html(reply: &Reply, limit: usize) -> Vec<String> {
    split::split_blocks_by(
        &reply.text_blocks(),
        limit,
        "\n\n",
        telegram_block,
        split::utf16_len,
    )
}

/// A chart's caption as HTML, for a picture's caption (Telegram
/// `sendPhoto`, parse mode HTML) or the Matrix message beside an `m.image`.
/// Captions are a few hundred characters: Telegram's limit is 1024.
pub fn render_caption_html(image: &ChartRef) -> String {
    inlines(&image.caption)
}

/// Matrix messages as (`body`, `formatted_body`) pairs. Buttons, which
/// Matrix lacks, become a line of commands to type.
pub fn render_matrix(reply: &Reply, limit: usize) -> Vec<(String, String)> {
    // Commands are typed with `!` in Matrix (Element keeps `/` for itself).
    let mut blocks: Vec<Block> = reply.text_blocks().iter().map(bang_commands).collect();
    let actions: Vec<Inline> = reply
        .buttons
        .iter()
        .flatten()
        .flat_map(|b| {
            [
                Inline::Code(b.action.replacen('/', "!", 1)),
                Inline::Text(" ".into()),
            ]
        })
        .collect();
    if !actions.is_empty() {
        let mut line = vec![Inline::Text("→ ".into())];
        line.extend(actions);
        blocks.push(Block::Paragraph(line));
    }
    let html = split::split_blocks(&blocks, limit, "", matrix_block);
    let plain = split::split_blocks(&blocks, limit, "\n\n", plain::block);
    // Both splits pack the same blocks; pair them up chunk by chunk, falling
    // back to a body per HTML chunk if the packing differs.
    if html.len() == plain.len() {
        plain.into_iter().zip(html).collect()
    } else {
        html.into_iter().map(|h| (strip_tags(&h), h)).collect()
    }
}

/// `/trade` becomes `!trade`: in code spans always, in plain text when the
/// word after `/` is one of the bot's commands and the `/` starts a word
/// (so `a/b` and URLs stay as they are).
fn bang_commands(b: &Block) -> Block {
    let fix = |i: &Inline| match i {
        Inline::Code(c)
            if c.starts_with('/') && c[1..].starts_with(|ch: char| ch.is_alphabetic()) =>
        {
            Inline::Code(c.replacen('/', "!", 1))
        }
        Inline::Text(t) if t.contains('/') => Inline::Text(bang_text(t)),
        other => other.clone(),
    };
    let line = |v: &Vec<Inline>| v.iter().map(fix).collect::<Vec<_>>();
    match b {
        Block::Heading(v) => Block::Heading(line(v)),
        Block::Paragraph(v) => Block::Paragraph(line(v)),
        Block::List(items) => Block::List(items.iter().map(line).collect()),
        Block::Quote(v) => Block::Quote(line(v)),
    }
}

fn bang_text(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut prev: Option<char> = None;
    for (i, c) in t.char_indices() {
        if c == '/' && prev.is_none_or(|p| p.is_whitespace() || "([«\"'".contains(p)) {
            let word: String = t[i + 1..]
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect();
            let known = super::COMMANDS.iter().any(|(name, _, _)| *name == word)
                || word.starts_with("announce_");
            if known {
                out.push('!');
                prev = Some(c);
                continue;
            }
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_shows_commands_with_a_bang() {
        let r = Reply::new(crate::reply::ReplyKind::Answer, crate::facts::Lang::En).text(
            "Subscribe with /subscribe [topics]; see /help, not a/b or /etc or http://x/help",
        );
        let (body, html) = render_matrix(&r, 4000).remove(0);
        assert!(
            body.contains("with !subscribe [topics]; see !help"),
            "{body}"
        );
        assert!(body.contains("a/b or /etc or http://x/help"), "{body}");
        assert!(html.contains("!subscribe"), "{html}");
    }
    use crate::facts::Lang;
    use crate::reply::ReplyKind;

    #[test]
    fn escapes_everything_from_data() {
        let r = Reply::new(ReplyKind::Answer, Lang::En)
            .block(Block::Heading(vec![Inline::Text("<b>&".into())]))
            .block(Block::Paragraph(vec![Inline::Link {
                text: "x<y".into(),
                url: "http://e/?a=1&b=\"2\"".into(),
            }]));
        let out = render_telegram_html(&r, 4096).join("");
        assert_eq!(
            out,
            "<b>&lt;b&gt;&amp;</b>\n\n<a href=\"http://e/?a=1&amp;b=&quot;2&quot;\">x&lt;y</a>"
        );
    }

    fn with_chart() -> Reply {
        let mut r = Reply::new(ReplyKind::Answer, Lang::En);
        r.image = Some(crate::reply::ChartRef {
            key: crate::chart::ChartKey {
                kind: crate::chart::ChartKind::Trade,
                lang: Lang::En,
                digest: "0123456789abcdef".into(),
            },
            caption: vec![
                Inline::Bold("Trade <USD>".into()),
                Inline::Text(". 2011: 769 [¶4]".into()),
            ],
            alt: "Bar chart: trade & more. 2011: 769.".into(),
            paragraphs: vec![4],
            width: 1200,
            height: 750,
        });
        r.buttons = vec![vec![crate::reply::Button {
            label: "Chart".into(),
            action: "/chart milestones".into(),
        }]];
        r
    }

    #[test]
    fn a_chart_reads_as_its_alt_text_where_no_picture_is_sent() {
        let r = with_chart();
        let plain = crate::reply::render_plain(&r);
        assert!(
            plain.starts_with("📊 Bar chart: trade & more. 2011: 769. [¶4]"),
            "{plain}"
        );
        let tg = render_telegram_html(&r, 4096).join("");
        assert!(
            tg.contains("📊 Bar chart: trade &amp; more. 2011: 769. [¶4]"),
            "{tg}"
        );
        let (body, html) = render_matrix(&r, 4096).remove(0);
        assert!(
            body.contains("trade & more") && html.contains("trade &amp; more"),
            "{html}"
        );
        assert!(body.contains("!chart milestones"), "{body}");
        // A transport that sends the picture takes it out and captions it.
        let mut r = r;
        let image = r.image.take().unwrap();
        assert!(!crate::reply::render_plain(&r).contains("Bar chart"));
        assert_eq!(
            render_caption_html(&image),
            "<b>Trade &lt;USD&gt;</b>. 2011: 769 [¶4]"
        );
        assert_eq!(
            crate::reply::render_caption_plain(&image),
            "Trade <USD>. 2011: 769 [¶4]"
        );
    }

    #[test]
    fn matrix_gets_body_and_formatted_body() {
        let r = Reply::new(ReplyKind::Answer, Lang::En)
            .block(Block::List(vec![vec![Inline::Bold("a&b".into())]]));
        let out = render_matrix(&r, 4096);
        assert_eq!(
            out,
            vec![(
                "• a&b".to_string(),
                "<ul><li><b>a&amp;b</b></li></ul>".to_string()
            )]
        );
    }
}
