//! HTML for Telegram (`parse_mode = HTML`) and Matrix (`formatted_body`).
//!
//! Every string from the dataset or a user passes through [`escape_html`];
//! nothing else in the crate writes markup.

use super::{plain, split, with_prefix, Block, ChartRef, Inline, Reply};

/// Commands as Telegram users type them.
pub const TELEGRAM_PREFIX: char = '/';
/// Commands as Matrix users type them: Element and other clients take a
/// line starting with `/` as their own command.
pub const MATRIX_PREFIX: char = '!';

/// Escapes text for HTML bodies and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_into(&mut out, s);
    out
}

/// [`escape_html`] appended to `out`: the runs between the four special
/// characters are copied whole, not a character at a time (these are
/// ASCII, so a byte index next to one is always a character boundary).
fn escape_into(out: &mut String, s: &str) {
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => continue,
        };
        out.push_str(&s[from..i]);
        out.push_str(entity);
        from = i + 1;
    }
    out.push_str(&s[from..]);
}

/// `<tag>`, what `body` writes, `</tag>`, appended to `out`.
fn wrap(out: &mut String, tag: &str, body: impl FnOnce(&mut String)) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    body(out);
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

/// One inline item appended to `out`. Rendering writes into one string per
/// block rather than a string per item: a Telegram reply is rendered for
/// every answer, and the per-item strings were most of its cost.
fn inline_into(out: &mut String, i: &Inline) {
    match i {
        Inline::Text(t) => escape_into(out, t),
        Inline::Bold(t) => wrap(out, "b", |out| escape_into(out, t)),
        Inline::Italic(t) => wrap(out, "i", |out| escape_into(out, t)),
        Inline::Code(t) => wrap(out, "code", |out| escape_into(out, t)),
        Inline::Link { text, url } => {
            out.push_str("<a href=\"");
            escape_into(out, url);
            out.push_str("\">");
            escape_into(out, text);
            out.push_str("</a>");
        }
        // The renderers write commands before they get here; one left
        // over is written as Telegram would.
        Inline::Command { .. } => inline_into(out, &i.lowered(TELEGRAM_PREFIX)),
    }
}

fn inlines_into(out: &mut String, items: &[Inline]) {
    for i in items {
        inline_into(out, i);
    }
}

fn inlines(items: &[Inline]) -> String {
    let mut out = String::new();
    inlines_into(&mut out, items);
    out
}

/// `<tag>items</tag>` appended to `out`.
fn wrapped(out: &mut String, tag: &str, items: &[Inline]) {
    wrap(out, tag, |out| inlines_into(out, items));
}

/// Telegram's HTML subset has no lists or headings: bullets and bold stand in.
fn telegram_block(b: &Block) -> String {
    let mut out = String::new();
    match b {
        Block::Heading(i) => wrapped(&mut out, "b", i),
        Block::Paragraph(i) => inlines_into(&mut out, i),
        Block::List(items) => {
            for (n, i) in items.iter().enumerate() {
                if n > 0 {
                    out.push('\n');
                }
                out.push_str("• ");
                inlines_into(&mut out, i);
            }
        }
        Block::Quote(i) => wrapped(&mut out, "blockquote", i),
    }
    out
}

/// Matrix clients render real HTML lists and headings.
fn matrix_block(b: &Block) -> String {
    let mut out = String::new();
    match b {
        Block::Heading(i) => wrapped(&mut out, "h4", i),
        Block::Paragraph(i) => wrapped(&mut out, "p", i),
        Block::List(items) => {
            out.push_str("<ul>");
            for i in items {
                wrapped(&mut out, "li", i);
            }
            out.push_str("</ul>");
        }
        Block::Quote(i) => wrapped(&mut out, "blockquote", i),
    }
    out
}

/// Telegram messages (HTML parse mode), each within `limit` UTF-16 code
/// units (Telegram's measure; markup counted too, so the text Telegram
/// sees is shorter still); the buttons are the transport's to attach to
/// the last one.
pub fn render_telegram_html(reply: &Reply, limit: usize) -> Vec<String> {
    split::split_blocks_by(
        &with_prefix(&reply.text_blocks(), TELEGRAM_PREFIX),
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
    let mut blocks: Vec<Block> = reply.text_blocks().into_owned();
    let actions: Vec<Inline> = reply
        .buttons
        .iter()
        .flatten()
        .flat_map(|b| [Inline::code_action(&b.action), Inline::Text(" ".into())])
        .collect();
    if !actions.is_empty() {
        let mut line = vec![Inline::Text("→ ".into())];
        line.extend(actions);
        blocks.push(Block::Paragraph(line));
    }
    let blocks = with_prefix(&blocks, MATRIX_PREFIX);
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

    /// Each renderer writes a command with its platform's prefix, in its
    /// look, joined to the running text around it; prose is never scanned.
    #[test]
    fn each_renderer_writes_commands_with_its_prefix() {
        let r = Reply::new(ReplyKind::Answer, Lang::En)
            .say(vec![
                Inline::Text("Subscribe with ".into()),
                Inline::command("subscribe", "[topics]"),
                Inline::Text("; see ".into()),
                Inline::command("help", ""),
                Inline::Text(", not a/b or /etc or http://x/help".into()),
            ])
            .say(vec![
                Inline::Italic("narrow it down with ".into()),
                Inline::command("search", "").italic(),
                Inline::Italic(".".into()),
            ])
            .say(vec![
                Inline::Text("Try ".into()),
                Inline::code_command("fact", "trade.2011"),
            ]);
        let (body, html) = render_matrix(&r, 4000).remove(0);
        assert_eq!(
            body,
            "Subscribe with !subscribe [topics]; see !help, not a/b or /etc or http://x/help\n\n\
             narrow it down with !search.\n\nTry !fact trade.2011"
        );
        assert_eq!(
            html,
            "<p>Subscribe with !subscribe [topics]; see !help, not a/b or /etc or http://x/help</p>\
             <p><i>narrow it down with !search.</i></p><p>Try <code>!fact trade.2011</code></p>"
        );
        assert_eq!(
            render_telegram_html(&r, 4096).join(""),
            "Subscribe with /subscribe [topics]; see /help, not a/b or /etc or http://x/help\n\n\
             <i>narrow it down with /search.</i>\n\nTry <code>/fact trade.2011</code>"
        );
        assert!(crate::reply::render_plain(&r).starts_with("Subscribe with /subscribe [topics]"));
    }

    /// Former bugs of the prose rewrite this replaced: a command in an
    /// italic sentence kept its `/` in Matrix, an unknown command starting
    /// with a digit was echoed with `/`, and a mistyped fact id the user
    /// sent starting with `/` came back with a `!` it never had.
    #[test]
    fn matrix_writes_exactly_the_commands_a_reply_names() {
        let r = Reply::new(ReplyKind::Error, Lang::En)
            .say(crate::reply::Msg::TopicMore(3).italic(Lang::En))
            .say(crate::reply::Msg::UnknownCommand("1abc").render(Lang::En))
            .say(crate::reply::Msg::NoSuchFact("/help").render(Lang::En));
        let (body, _) = render_matrix(&r, 4000).remove(0);
        assert!(body.contains("narrow it down with !search."), "{body}");
        assert!(body.contains("the command !1abc."), "{body}");
        assert!(body.contains("with id /help."), "{body}");
    }

    /// An announcement is a person's prose: the commands it names are
    /// found when it is composed, with the rule the Matrix renderer used.
    #[test]
    fn commands_in_an_announcement_are_found() {
        let r = Reply::new(ReplyKind::Info, Lang::En).say(crate::reply::commands_in(
            "Send /subscribe trade, see /help or a/b /etc http://x/help (/fact x) «/lang ru» /announce_send 1 /Help",
        ));
        let (body, _) = render_matrix(&r, 4000).remove(0);
        assert_eq!(
            body,
            "Send !subscribe trade, see !help or a/b /etc http://x/help (!fact x) «!lang ru» !announce_send 1 /Help"
        );
        assert_eq!(
            crate::reply::render_plain(&r),
            "Send /subscribe trade, see /help or a/b /etc http://x/help (/fact x) «/lang ru» /announce_send 1 /Help"
        );
        assert_eq!(
            crate::reply::commands_in(""),
            vec![Inline::Text(String::new())]
        );
    }
    use crate::facts::Lang;
    use crate::reply::ReplyKind;

    /// The escaper copies runs between special characters whole: the
    /// result is the character-by-character one, next to multi-byte
    /// letters, at both ends, and in a row.
    #[test]
    fn escaping_runs_is_escaping_each_character() {
        fn one_by_one(s: &str) -> String {
            s.chars()
                .map(|c| match c {
                    '&' => "&amp;".to_string(),
                    '<' => "&lt;".to_string(),
                    '>' => "&gt;".to_string(),
                    '"' => "&quot;".to_string(),
                    c => c.to_string(),
                })
                .collect()
        }
        for s in [
            "",
            "plain",
            "&",
            "<<>>\"\"&&",
            "Товарооборот <составил> \"1,5 млрд\" & вырос",
            "&é<ж>😀\"",
            "😀&😀",
            "a&amp;b",
        ] {
            assert_eq!(escape_html(s), one_by_one(s), "{s:?}");
        }
    }

    /// Each block kind in each renderer's markup (rendering writes into
    /// one string per block).
    #[test]
    fn each_block_kind_renders_as_before() {
        let line = vec![
            Inline::Text("a ".into()),
            Inline::Bold("b".into()),
            Inline::Italic("<i>".into()),
            Inline::Code("c".into()),
            Inline::Link {
                text: "t".into(),
                url: "u".into(),
            },
        ];
        let html = "a <b>b</b><i>&lt;i&gt;</i><code>c</code><a href=\"u\">t</a>";
        let blocks = [
            Block::Heading(line.clone()),
            Block::Paragraph(line.clone()),
            Block::List(vec![line.clone(), vec![Inline::Text("2".into())]]),
            Block::Quote(line.clone()),
        ];
        let telegram: Vec<String> = blocks.iter().map(telegram_block).collect();
        assert_eq!(
            telegram,
            [
                format!("<b>{html}</b>"),
                html.to_string(),
                format!("• {html}\n• 2"),
                format!("<blockquote>{html}</blockquote>"),
            ]
        );
        let matrix: Vec<String> = blocks.iter().map(matrix_block).collect();
        assert_eq!(
            matrix,
            [
                format!("<h4>{html}</h4>"),
                format!("<p>{html}</p>"),
                format!("<ul><li>{html}</li><li>2</li></ul>"),
                format!("<blockquote>{html}</blockquote>"),
            ]
        );
    }

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
