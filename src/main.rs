//! The `factbot` command line: console chat, one-shot questions, dataset
//! import and inspection, and running the configured transports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use factbot::answer::Request;
use factbot::app::{open_app, open_indexed, App, Removals};
use factbot::config::Config;
use factbot::facts::{ChatKey, Dataset, Lang, Store, SCHEMA_VERSION};
use factbot::progress;
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
    /// Log lines on stderr: `text` for people, `json` (one object a line)
    /// for log shippers.
    #[arg(
        long,
        global = true,
        env = "FACTBOT_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
        /// Import even if the dataset is empty or removes more than a
        /// quarter of the stored facts (refused otherwise: a cut-off
        /// facts.toml must not wipe the bot).
        #[arg(long)]
        allow_removals: bool,
        /// Benchmarks: first write a synthetic dataset of N facts (the
        /// built-in facts' words reshuffled) into DIR, which must not exist
        /// or be empty.
        #[arg(long, hide = true, value_name = "N", requires = "dir")]
        synthetic: Option<usize>,
    },
    /// Render a chart as a PNG: trade, milestones or investment.
    Chart {
        /// Which chart: trade, milestones or investment (Russian names too).
        name: String,
        /// Where to write the PNG (`-` for standard output); default
        /// NAME-LANG.png in the current directory.
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Label language: en or ru.
        #[arg(long, default_value = "en")]
        lang: String,
    },
    /// List the stored facts.
    Facts {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check the store's consistency.
    Check,
    /// Run the transports the config enables.
    Run {
        /// Import the configured dataset at start even if it is empty or
        /// removes more than a quarter of the stored facts.
        #[arg(long)]
        allow_removals: bool,
        /// Start the Matrix bot as a new device: the saved session and the
        /// end-to-end encryption store are moved aside (never deleted) to
        /// `<store>/matrix/old-<time>/`. Messages encrypted for the old
        /// device cannot be read by the new one.
        #[arg(long)]
        reset_matrix_device: bool,
    },
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
    /// Ask the running bot whether it is healthy (its `/healthz` at
    /// `[metrics] listen`) and print the answer: exit 0 healthy, 1
    /// unhealthy, 2 when no bot answers there or the config has no
    /// `[metrics]`.
    Status {
        /// Give up waiting for the answer after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
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
    // Everything factbot creates (the store, sled's files, the Matrix SDK's
    // sqlite stores, the console history) is for this user only.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let default_level = match cli.command {
        Some(Cmd::Run { .. }) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Fields at the top level beside `timestamp`, `level`, `target` and
        // `message`, as shippers (Vector, Loki, Elasticsearch) expect.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
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
            let (app, _) = open_app(&cfg, &db, Removals::KeepStored)?;
            console::run(
                &app,
                Some(db.join("console_history.txt")),
                Some(db.join("charts")),
            )?;
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
            let (app, _) = open_app(&cfg, &db, Removals::KeepStored)?;
            ask(&app, &question, force_lang, format)?;
            if explain {
                let cat = app.engine().catalog();
                let r = cat.explain(&question, 10);
                eprintln!("words: {} content, {} known", r.words, r.known_words);
                for h in r.hits {
                    eprintln!("{:8.3} cov {:.2}  {}", h.score, h.coverage, cat.id(h.doc));
                }
            }
        }
        Cmd::Import {
            dir,
            allow_removals,
            synthetic,
        } => {
            if let (Some(n), Some(d)) = (synthetic, &dir) {
                write_synthetic(n, d)?;
            }
            import(&cfg, &db, dir, allow_removals)?
        }
        Cmd::Chart { name, out, lang } => chart(&cfg, &db, &name, out, &lang)?,
        Cmd::Facts { format } => {
            // Like every start, bring the store up to date first (a new
            // store is seeded), then list what it holds.
            let (app, _) = open_app(&cfg, &db, Removals::KeepStored)?;
            list_facts(app.store(), format)?;
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
        Cmd::Run {
            allow_removals,
            reset_matrix_device,
        } => {
            let mut cfg = cfg;
            match (&mut cfg.matrix, reset_matrix_device) {
                (Some(m), true) => m.reset_device = true,
                (None, true) => {
                    return Err(usage(
                        "--reset-matrix-device: the config has no [matrix] section",
                    ))
                }
                _ => {}
            }
            let removals = if allow_removals {
                Removals::Allow
            } else {
                Removals::Refuse
            };
            run_transports(&cfg, cli.config.as_deref(), &db, removals)?
        }
        Cmd::Announce {
            topic,
            timeout,
            text,
        } => announce(&cfg, topic.as_deref(), &text.join(" "), timeout)?,
        Cmd::Notifications { format } => notifications(&cfg, &db, format)?,
        Cmd::Status { timeout } => status(&cfg, timeout)?,
        Cmd::Subscriptions { import } => subscriptions(&db, import.as_deref())?,
    }
    Ok(())
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
        Format::Json => {
            let cat = app.engine().catalog();
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
                "chart": reply.image,
            });
            outln!("{out:#}")?;
        }
    }
    Ok(())
}

/// `factbot chart NAME [--out FILE] [--lang ru]`.
fn chart(
    cfg: &Config,
    db: &Path,
    name: &str,
    out: Option<PathBuf>,
    lang: &str,
) -> Result<(), Failure> {
    use factbot::chart::ChartKind;
    let names = || {
        ChartKind::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kind = ChartKind::parse(name).ok_or_else(|| {
        usage(format!(
            "unknown chart {name:?}; the charts are {}",
            names()
        ))
    })?;
    let lang = Lang::parse(lang)
        .ok_or_else(|| usage(format!("unknown language {lang:?}; use en or ru")))?;
    let (app, _) = open_app(cfg, db, Removals::KeepStored)?;
    let png = app.engine().chart_png(kind, lang)?;
    let out = out.unwrap_or_else(|| PathBuf::from(png.key.file_name()));
    if out.as_os_str() == "-" {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&png.bytes)?;
        stdout.flush()?;
        return Ok(());
    }
    // Written beside the target and renamed: a reader never sees half a PNG.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = out
        .file_name()
        .ok_or_else(|| usage(format!("{} is not a file name", out.display())))?;
    let tmp = dir.join(format!(".{}.tmp", file.to_string_lossy()));
    std::fs::write(&tmp, &png.bytes)
        .and_then(|()| std::fs::rename(&tmp, &out))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    outln!(
        "{}: {}×{} PNG, {} KB, chart {}",
        out.display(),
        png.width,
        png.height,
        png.bytes.len().div_ceil(1024),
        png.key
    )?;
    Ok(())
}

/// A failure of the store: a refused import is the operator's input (2).
fn store_failure(e: factbot::facts::StoreError) -> Failure {
    match e {
        e @ factbot::facts::StoreError::Shrink { .. } => usage(e.to_string()),
        e => e.into(),
    }
}

/// `factbot import --synthetic N DIR`: writes the benchmark dataset.
fn write_synthetic(n: usize, dir: &Path) -> Result<(), Failure> {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(usage(format!(
            "{} is not empty; --synthetic writes a new dataset directory",
            dir.display()
        )));
    }
    let ds = progress::spin(&format!("generating {n} synthetic facts"), || {
        factbot::facts::synthetic::generate(n, 1)
    });
    factbot::facts::synthetic::write_dir(&ds, dir)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dir.display()))?;
    Ok(())
}

fn import(
    cfg: &Config,
    db: &Path,
    dir: Option<PathBuf>,
    allow_removals: bool,
) -> Result<(), Failure> {
    let dir = dir.or_else(|| cfg.store.dataset.clone());
    let ds = progress::spin("reading the dataset", || match &dir {
        Some(d) => Dataset::from_dir(d).map_err(|e| usage(e.to_string())),
        None => Dataset::embedded().map_err(Failure::from),
    })?;
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
            let r = match client.import(abs.as_deref().and_then(Path::to_str), allow_removals) {
                Ok(r) => r,
                // Refused by the bot (the shrink guard, a bad dataset).
                Err(factbot::notify::admin::ClientError::Status(400 | 409, msg)) => {
                    return Err(usage(msg))
                }
                Err(e) => return Err(e.into()),
            };
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
    let r = progress::spin(
        &format!("importing {} facts into {}", ds.facts.len(), db.display()),
        || store.import_with(&ds, allow_removals),
    )
    .map_err(store_failure)?;
    let n = ds.facts.len();
    drop(ds);
    // Index now, so the next start loads the saved index (a large store)
    // instead of building it.
    open_indexed(store)?;
    if r.written {
        outln!(
            "imported {} facts into {}: {} added, {} updated, {} removed, {} unchanged",
            n,
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

fn run_transports(
    cfg: &Config,
    file: Option<&Path>,
    db: &Path,
    removals: Removals,
) -> Result<(), Failure> {
    // A section whose transport this build lacks, before its keys.
    let configured: Vec<&str> = [
        cfg.telegram.as_ref().map(|_| "telegram"),
        cfg.matrix.as_ref().map(|_| "matrix"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(e) = factbot::transport::missing(&configured) {
        return Err(usage(e));
    }
    // Every mistake at once, before anything connects or is imported.
    let problems = cfg.validate();
    if !problems.is_empty() {
        let what = match file {
            Some(p) => format!("config {} is not usable:", p.display()),
            None => "the config is not usable (no --config given):".to_string(),
        };
        return Err(usage(format!("{what}\n  - {}", problems.join("\n  - "))));
    }
    if let Some(f) = file.filter(|f| factbot::facts::private::is_loose(f)) {
        tracing::warn!(
            config = %f.display(),
            "the config file is readable by other users and may hold secrets; chmod 600 it"
        );
    }
    let (app, _) = open_app(cfg, db, removals).map_err(|e| {
        match e.downcast_ref::<factbot::facts::StoreError>() {
            Some(factbot::facts::StoreError::Shrink { .. }) => Failure { code: 2, error: e },
            _ => Failure { code: 1, error: e },
        }
    })?;
    let app = std::sync::Arc::new(app);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(factbot::app::serve(cfg, app))?;
    Ok(())
}

/// `factbot announce`: hands the text to the running bot, then follows it.
fn announce(cfg: &Config, topic: Option<&str>, text: &str, timeout: u64) -> Result<(), Failure> {
    use factbot::notify::admin::{parse_topic, Client};
    if text.trim().is_empty() {
        return Err(usage("the announcement is empty"));
    }
    if let Some(m) = factbot::notify::announcement_too_long(text) {
        return Err(usage(m));
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

/// `factbot status`: the running bot's `/healthz`, printed; the exit code
/// says healthy (0), unhealthy (1) or no answer (2).
fn status(cfg: &Config, timeout: u64) -> Result<(), Failure> {
    let m = cfg.metrics.as_ref().ok_or_else(|| {
        usage("factbot status asks the running bot's /healthz: set [metrics] listen in the config and pass it with --config (or FACTBOT_CONFIG)")
    })?;
    let mut addr: std::net::SocketAddr = m.listen.parse().map_err(|_| {
        usage(format!(
            "[metrics] listen {:?} is not an address:port",
            m.listen
        ))
    })?;
    // A bot listening on every address answers on loopback too.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/healthz");
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(timeout.max(1)))
        .redirects(0)
        .build();
    match agent.get(&url).call() {
        Ok(r) => {
            outln!("{}", r.into_string()?.trim_end())?;
            Ok(())
        }
        Err(ureq::Error::Status(503, r)) => {
            outln!("{}", r.into_string()?.trim_end())?;
            Err(Failure {
                code: 1,
                error: anyhow::anyhow!("the bot at {addr} is unhealthy"),
            })
        }
        Err(ureq::Error::Status(code, _)) => Err(usage(format!(
            "{url} answered HTTP {code}: is [metrics] listen this bot's address?"
        ))),
        Err(ureq::Error::Transport(e)) => Err(usage(format!(
            "no bot answers at {addr} ([metrics] listen): {e}"
        ))),
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
            let chat = ChatKey::check_subscribable(chat)
                .map_err(|e| usage(format!("{}:{}: {e}", file.display(), i + 1)))?;
            let topics = parse_topics(topics)
                .map_err(|w| usage(format!("{}:{}: unknown topic {w:?}", file.display(), i + 1)))?;
            items.push((chat, topics));
        }
        subs.subscribe_many(&items)?;
        eprintln!("imported {} subscriptions", items.len());
        return Ok(());
    }
    for (chat, topics) in subs.list()? {
        outln!("{chat}\t{}", topics.names().join(" "))?;
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
