//! The `factbot` command line: console chat, one-shot questions, dataset
//! import and inspection, and running the configured transports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use factbot::answer::{Engine, Request};
use factbot::app::open_engine;
use factbot::config::Config;
use factbot::facts::{Dataset, Lang, Store, SCHEMA_VERSION};
use factbot::reply::render_plain;
use factbot::transport::console;

/// A fact-answering chat bot about the 2012 Belarus–Kazakhstan visit, trade
/// and Eurasian integration. With no subcommand: a console chat.
#[derive(Parser)]
#[command(name = "factbot", version, about)]
struct Cli {
    /// Configuration file (see config.example.toml).
    #[arg(long, global = true, env = "FACTBOT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Store directory; overrides `[store] path`.
    #[arg(long, global = true, env = "FACTBOT_DB", value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Chat with the bot in the terminal (the default).
    Console,
    /// Answer one question and print the reply.
    Ask {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Answer language (en or ru); default: the question's.
        #[arg(long)]
        lang: Option<String>,
        /// Also print the ranked candidates with scores (dataset tuning).
        #[arg(long)]
        explain: bool,
        /// The question (several words are joined with spaces).
        #[arg(required = true, num_args = 1..)]
        question: Vec<String>,
    },
    /// Import a dataset directory (default: the configured one, else the
    /// built-in dataset); only changed facts are written.
    Import {
        /// Directory with facts.toml, article.txt and synonyms.toml.
        dir: Option<PathBuf>,
    },
    /// List the stored facts.
    Facts {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check the store's consistency.
    Check,
    /// Run the transports the config enables.
    Run,
    /// Announce to subscribed chats through the running bot (its admin
    /// endpoint, `[notify] admin_listen`), printing progress until every
    /// chat has it.
    Announce {
        /// Only chats subscribed to this topic (default: every subscribed chat).
        #[arg(long)]
        topic: Option<String>,
        /// Give up waiting for delivery after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// The announcement (several words are joined with spaces).
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// List subscribed chats (bot stopped); `--import FILE` first adds the
    /// subscriptions in FILE, one `CHAT_KEY [TOPIC…]` a line (`tg:-100123
    /// trade`), e.g. to move them from another store or seed a benchmark.
    Subscriptions {
        #[arg(long, value_name = "FILE")]
        import: Option<PathBuf>,
    },
    /// List notifications with their pending, delivered and failed
    /// deliveries (from the running bot, else from the store).
    Notifications {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// A failure with its exit code: 2 for bad usage or input, 1 otherwise.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 1,
            error: e.into(),
        }
    }
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        error: anyhow::anyhow!(msg.into()),
    }
}

/// `println!` that returns the error of a closed stdout (`factbot facts |
/// head`) instead of panicking; `main` ends such a command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// The reader of our stdout went away (`| head`): not a failure of the
/// command, and nothing more to say, as Unix tools do.
fn closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Some(Cmd::Run) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if closed_stdout(&f.error) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("factbot: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let cfg = match &cli.config {
        Some(path) => Config::load(path).map_err(|e| usage(e.to_string()))?,
        None => Config::default(),
    };
    let db = cli.db.clone().unwrap_or_else(|| cfg.store.path.clone());
    match cli.command.unwrap_or(Cmd::Console) {
        Cmd::Console => {
            let (engine, _) = open_engine(&cfg, &db)?;
            console::run(&engine, Some(db.join("console_history.txt")))?;
        }
        Cmd::Ask {
            format,
            lang,
            explain,
            question,
        } => {
            let question = question.join(" ");
            if question.trim().is_empty() {
                return Err(usage(
                    "the question is empty; try: factbot ask \"How much was trade in 2011?\"",
                ));
            }
            let force_lang = match lang.as_deref() {
                None => None,
                Some(l) => Some(
                    Lang::parse(l)
                        .ok_or_else(|| usage(format!("unknown language {l:?}; use en or ru")))?,
                ),
            };
            let (engine, _) = open_engine(&cfg, &db)?;
            ask(&engine, &question, force_lang, format)?;
            if explain {
                let cat = engine.catalog();
                let r = cat.explain(&question, 10);
                eprintln!("words: {} content, {} known", r.words, r.known_words);
                for h in r.hits {
                    eprintln!(
                        "{:8.3} cov {:.2}  {}",
                        h.score, h.coverage, cat.facts[h.doc as usize].id
                    );
                }
            }
        }
        Cmd::Import { dir } => import(&cfg, &db, dir)?,
        Cmd::Facts { format } => {
            // Like every start, bring the store up to date first (a new
            // store is seeded), then list what it holds.
            let (engine, _) = open_engine(&cfg, &db)?;
            list_facts(engine.store(), format)?;
        }
        Cmd::Check => {
            let store = Store::open(&db)?;
            let n = store.verify()?;
            outln!(
                "ok: {n} facts, schema {SCHEMA_VERSION}, dataset {} ({})",
                store.dataset_digest()?.unwrap_or_else(|| "none".into()),
                store
                    .dataset_origin()?
                    .map(|o| o.to_meta())
                    .unwrap_or_else(|| "none".into())
            )?;
        }
        Cmd::Run => run_transports(&cfg, &db)?,
        Cmd::Announce {
            topic,
            timeout,
            text,
        } => announce(&cfg, topic.as_deref(), &text.join(" "), timeout)?,
        Cmd::Notifications { format } => notifications(&cfg, &db, format)?,
        Cmd::Subscriptions { import } => subscriptions(&db, import.as_deref())?,
    }
    Ok(())
}

fn ask(
    engine: &Engine,
    question: &str,
    force_lang: Option<Lang>,
    format: Format,
) -> Result<(), Failure> {
    let mut req = Request::new("cli", question);
    req.force_lang = force_lang;
    let reply = engine.handle(&req);
    match format {
        Format::Text => outln!("{}", render_plain(&reply))?,
        Format::Json => {
            let cat = engine.catalog();
            let facts: Vec<_> = reply
                .facts
                .iter()
                .filter_map(|id| cat.get(id))
                .map(|f| {
                    json!({
                        "id": f.id,
                        "topic": f.topic,
                        "kind": if f.is_derived() { "derived" } else { "stated" },
                        "title": f.title.get(reply.lang),
                        "text": f.text.get(reply.lang),
                        "values": f.values,
                        "derivation": f.derivation,
                        "source": { "paragraph": f.paragraph, "sentence": f.source },
                    })
                })
                .collect();
            let out = json!({
                "kind": reply.kind,
                "lang": reply.lang,
                "text": render_plain(&reply),
                "facts": facts,
            });
            outln!("{out:#}")?;
        }
    }
    Ok(())
}

fn import(cfg: &Config, db: &Path, dir: Option<PathBuf>) -> Result<(), Failure> {
    let dir = dir.or_else(|| cfg.store.dataset.clone());
    let ds = match &dir {
        Some(d) => Dataset::from_dir(d).map_err(|e| usage(e.to_string()))?,
        None => Dataset::embedded()?,
    };
    let store = match Store::open(db) {
        Ok(s) => s,
        // The running bot holds the store: hand the import to it (its
        // admin endpoint), so the changes go out as notifications now.
        Err(e @ factbot::facts::StoreError::Locked { .. }) => {
            let Some(client) = factbot::notify::admin::Client::from_config(&cfg.notify) else {
                return Err(e.into());
            };
            let abs = dir
                .as_ref()
                .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()));
            let r = client.import(abs.as_deref().and_then(Path::to_str))?;
            outln!(
                "imported into the running bot: {} added, {} updated, {} removed, {} unchanged",
                r.added,
                r.updated,
                r.removed,
                r.unchanged
            )?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let r = store.import(&ds)?;
    if r.written {
        outln!(
            "imported {} facts into {}: {} added, {} updated, {} removed, {} unchanged",
            ds.facts.len(),
            db.display(),
            r.added,
            r.updated,
            r.removed,
            r.unchanged
        )?;
    } else {
        outln!(
            "nothing to import: {} already holds this dataset ({} facts)",
            db.display(),
            r.unchanged
        )?;
    }
    Ok(())
}

fn list_facts(store: &Store, format: Format) -> Result<(), Failure> {
    let facts = store.facts()?;
    match format {
        Format::Text => {
            let w = facts.iter().map(|f| f.id.len()).max().unwrap_or(0);
            for f in &facts {
                let mark = if f.is_derived() { " (derived)" } else { "" };
                outln!("{:w$}  {:10}  {}{mark}", f.id, f.topic.name(), f.title.en)?;
            }
        }
        Format::Json => outln!("{}", serde_json::to_string_pretty(&facts)?)?,
    }
    Ok(())
}

fn run_transports(cfg: &Config, db: &Path) -> Result<(), Failure> {
    if cfg.telegram.is_none() && cfg.matrix.is_none() {
        return Err(usage(
            "the config enables no transport: add a [telegram] or [matrix] section (see config.example.toml)",
        ));
    }
    if let Some(m) = &cfg.matrix {
        let problems = m.problems();
        if !problems.is_empty() {
            return Err(usage(problems.join("; ")));
        }
    }
    let (engine, _) = open_engine(cfg, db)?;
    let engine = std::sync::Arc::new(engine);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(cfg, engine))?;
    Ok(())
}

/// `factbot announce`: hands the text to the running bot, then follows it.
fn announce(cfg: &Config, topic: Option<&str>, text: &str, timeout: u64) -> Result<(), Failure> {
    use factbot::notify::admin::{parse_topic, Client};
    if text.trim().is_empty() {
        return Err(usage("the announcement is empty"));
    }
    parse_topic(topic).map_err(|w| usage(format!("unknown topic {w:?}")))?;
    let client = Client::from_config(&cfg.notify).ok_or_else(|| {
        usage("announcing needs the running bot's admin endpoint: set [notify] admin_listen and admin_token (or FACTBOT_ADMIN_TOKEN)")
    })?;
    let a = client.announce(topic, text)?;
    let Some(id) = a.id else {
        outln!("no chat is subscribed to that; nothing was sent")?;
        return Ok(());
    };
    outln!("announcement #{id}: {} chats", a.chats)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
    let mut shown = None;
    loop {
        let p = client.progress(id)?;
        let now = (p.delivered, p.failed, p.pending);
        if shown != Some(now) {
            outln!(
                "delivered {}/{}, failed {}, pending {}",
                p.delivered,
                p.total,
                p.failed,
                p.pending
            )?;
            shown = Some(now);
        }
        if p.pending == 0 {
            return if p.failed == 0 {
                Ok(())
            } else {
                Err(
                    anyhow::anyhow!("{} of {} chats could not be reached", p.failed, p.total)
                        .into(),
                )
            };
        }
        if std::time::Instant::now() >= deadline {
            return Err(anyhow::anyhow!(
                "still {} deliveries pending after {timeout} s; the bot keeps sending them (see `factbot notifications`)",
                p.pending
            )
            .into());
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// `factbot subscriptions [--import FILE]`.
fn subscriptions(db: &Path, import: Option<&Path>) -> Result<(), Failure> {
    use factbot::notify::subscriptions::parse_topics;
    let store = Store::open(db)?;
    let subs = factbot::notify::Subscriptions::open(&store)?;
    if let Some(file) = import {
        let text = std::fs::read_to_string(file)
            .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
        let mut items = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (chat, topics) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            if !chat.contains(':') {
                return Err(usage(format!(
                    "{}:{}: {chat:?} is not a chat key such as tg:-100123",
                    file.display(),
                    i + 1
                )));
            }
            let topics = parse_topics(topics)
                .map_err(|w| usage(format!("{}:{}: unknown topic {w:?}", file.display(), i + 1)))?;
            items.push((chat.to_string(), topics));
        }
        subs.subscribe_many(&items)?;
        eprintln!("imported {} subscriptions", items.len());
        return Ok(());
    }
    for (chat, topics) in subs.list()? {
        outln!(
            "{chat}\t{}",
            topics.into_iter().collect::<Vec<_>>().join(" ")
        )?;
    }
    Ok(())
}

/// `factbot notifications`: from the running bot if it answers, else from the store.
fn notifications(cfg: &Config, db: &Path, format: Format) -> Result<(), Failure> {
    use factbot::notify::admin::{Client, ClientError};
    let from_bot = match Client::from_config(&cfg.notify).map(|c| c.list()) {
        Some(Ok(p)) => Some(p),
        Some(Err(ClientError::NotRunning(_))) | None => None,
        Some(Err(e)) => return Err(e.into()),
    };
    let list = match from_bot {
        Some(p) => p,
        None => {
            let store = Store::open(db)?;
            factbot::notify::Outbox::open(&store)?.all_progress()?
        }
    };
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&list)?)?,
        Format::Text => {
            if list.is_empty() {
                outln!("no notifications")?;
            }
            for p in &list {
                outln!(
                    "#{:<5} {:12} pending {:>6}  delivered {:>6}  failed {:>4}  {}",
                    p.id,
                    p.kind,
                    p.pending,
                    p.delivered,
                    p.failed,
                    p.summary
                )?;
            }
        }
    }
    Ok(())
}

/// Serves every configured transport, and the notifications they deliver,
/// from one process and one store until SIGTERM or Ctrl-C. If one transport
/// fails (at start: a wrong token, a refused login), the others are stopped
/// and the error is returned.
async fn serve(cfg: &Config, engine: std::sync::Arc<Engine>) -> anyhow::Result<()> {
    let notify = factbot::notify::Service::start(std::sync::Arc::clone(&engine), cfg).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut transports = tokio::task::JoinSet::new();
    if let Some(tg) = cfg.telegram.clone() {
        let engine = std::sync::Arc::clone(&engine);
        let stop = stopped(stop_rx.clone());
        transports.spawn(async move {
            factbot::transport::telegram::run(&tg, engine, stop)
                .await
                .map_err(|e| e.context("telegram"))
        });
    }
    if let Some(mx) = cfg.matrix.clone() {
        let engine = std::sync::Arc::clone(&engine);
        let stop = stopped(stop_rx.clone());
        transports.spawn(async move {
            factbot::transport::matrix::run(&mx, engine, stop)
                .await
                .map_err(|e| e.context("matrix"))
        });
    }
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut result = Ok(());
    loop {
        tokio::select! {
            _ = &mut signal, if !*stop_tx.borrow() => {
                let _ = stop_tx.send(true);
            }
            done = transports.join_next() => match done {
                None => break,
                Some(Ok(Ok(()))) => {
                    let _ = stop_tx.send(true);
                }
                Some(Ok(Err(e))) => {
                    let _ = stop_tx.send(true);
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
                Some(Err(join)) => {
                    let _ = stop_tx.send(true);
                    if result.is_ok() {
                        result = Err(anyhow::anyhow!("a transport crashed: {join}"));
                    }
                }
            },
        }
    }
    notify.stop().await;
    result
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
