//! `factbot ask`: one question answered and printed, as plain text or as
//! JSON with the facts behind the answer; `--explain` adds the ranked
//! candidates on stderr for dataset tuning. One-shot: nothing it asks is
//! stored and no earlier setting colours the answer.

use serde_json::json;

use super::{usage, Context, Failure, Format};
use crate::answer::Request;
use crate::app::{open_app, App, Removals};
use crate::facts::{ChatKey, Fact, Lang};
use crate::reply::{render_plain, Reply};

// No `///` here: the `ask` variant's doc comment in main.rs is the help.
#[derive(clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Answer language (en or ru); default: the question's.
    #[arg(long)]
    pub lang: Option<String>,
    /// Also print the ranked candidates with scores (dataset tuning).
    #[arg(long)]
    pub explain: bool,
    /// The question (several words are joined with spaces).
    #[arg(required = true, num_args = 1..)]
    pub question: Vec<String>,
}

/// `factbot ask [--format json] [--lang ru] [--explain] QUESTION…`.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let question = args.question.join(" ");
    if question.trim().is_empty() {
        return Err(usage(
            "the question is empty; try: factbot ask \"How much was trade in 2011?\"",
        ));
    }
    let force_lang = match args.lang.as_deref() {
        None => None,
        Some(l) => Some(parse_lang(l)?),
    };
    let (app, _) = open_app(&ctx.cfg, &ctx.db, Removals::KeepStored)?;
    ask(&app, &question, force_lang, args.format)?;
    if args.explain {
        explain(&app, &question);
    }
    Ok(())
}

/// `en` or `ru`, else exit 2.
pub(super) fn parse_lang(l: &str) -> Result<Lang, Failure> {
    Lang::parse(l).ok_or_else(|| usage(format!("unknown language {l:?}; use en or ru")))
}

fn ask(app: &App, question: &str, force_lang: Option<Lang>, format: Format) -> Result<(), Failure> {
    let mut req = Request::new(&ChatKey::Cli, question);
    req.force_lang = force_lang;
    // One-shot: the question's language (or --lang) decides, never a
    // setting an earlier `ask` stored, and nothing it asks is stored.
    req.read_only = true;
    let reply = app.handle(&req);
    match format {
        Format::Text => outln!("{}", render_plain(&reply))?,
        Format::Json => outln!("{:#}", reply_json(app, &reply))?,
    }
    Ok(())
}

/// The reply with the facts it rests on, in the reply's language.
fn reply_json(app: &App, reply: &Reply) -> serde_json::Value {
    let cat = app.engine().catalog();
    let facts: Vec<_> = reply
        .facts
        .iter()
        .filter_map(|id| cat.get(id))
        .map(|f| fact_json(&f, reply.lang))
        .collect();
    json!({
        "kind": reply.kind,
        "lang": reply.lang,
        "text": render_plain(reply),
        "facts": facts,
        "chart": reply.image,
    })
}

fn fact_json(f: &Fact, lang: Lang) -> serde_json::Value {
    json!({
        "id": f.id,
        "topic": f.topic,
        "kind": if f.is_derived() { "derived" } else { "stated" },
        "title": f.title.get(lang),
        "text": f.text.get(lang),
        "values": f.values,
        "derivation": f.derivation,
        "source": { "paragraph": f.paragraph, "sentence": f.source },
    })
}

/// `--explain`: the words the question has and the ten best candidates.
fn explain(app: &App, question: &str) {
    let cat = app.engine().catalog();
    let r = cat.explain(question, 10);
    eprintln!("words: {} content, {} known", r.words, r.known_words);
    for h in r.hits {
        eprintln!("{:8.3} cov {:.2}  {}", h.score, h.coverage, cat.id(h.doc));
    }
}
