//! The `factbot` subcommands: each one's arguments, its work and its
//! output, one file per subcommand or family, so `main.rs` is only the
//! clap front and a dispatcher.
//!
//! This module owns what every subcommand shares: the exit code a failure
//! carries ([`Failure`]: 2 for the operator's input, 1 otherwise), printing
//! to a stdout whose reader may go away (`factbot facts | head` ends
//! quietly instead of panicking), the log set-up, and the [`Context`]
//! (config and store directory) every subcommand starts from.
//!
//! It sits at the top, beside `transport`: it calls `app`, `transport`,
//! `notify`'s admin client and the stores; nothing in the library calls it.
//!
//! - [`ask`]: `factbot ask`, one question answered as text or JSON.
//! - [`chart`]: `factbot chart`, a chart written as a PNG.
//! - [`facts`]: `factbot facts` and `factbot check`, the store's contents.
//! - [`import`]: `factbot import`, into the store or the running bot.
//! - [`run`]: `factbot run` and `factbot console`, the bot itself.
//! - [`notify`]: `factbot announce`, `subscriptions` and `notifications`.
//! - [`status`]: `factbot status`, the running bot's `/healthz`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

/// `println!` that returns the error of a closed stdout (`factbot facts |
/// head`) instead of panicking; [`exit_code`] ends such a command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

pub mod ask;
pub mod chart;
pub mod facts;
pub mod import;
pub mod notify;
pub mod run;
pub mod status;

/// The output format of the subcommands that print data.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// The format of log lines on stderr.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A failure with its exit code: 2 for bad usage or input, 1 otherwise.
pub struct Failure {
    /// The process's exit code.
    code: u8,
    /// What `main` prints on stderr, after `factbot: `.
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

/// A failure of the operator's input: exit code 2.
pub fn usage(msg: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        error: anyhow::anyhow!(msg.into()),
    }
}

/// What every subcommand starts from.
pub struct Context {
    /// The config file's settings, or the defaults without `--config`.
    pub cfg: Config,
    /// The `--config` file: `run` names it in its complaints and checks its
    /// permissions.
    pub file: Option<PathBuf>,
    /// The store directory: `--db`, else `[store] path`.
    pub db: PathBuf,
}

impl Context {
    /// Loads `--config` (a config that does not parse is the operator's
    /// input: exit 2) and settles the store directory.
    pub fn load(file: Option<PathBuf>, db: Option<PathBuf>) -> Result<Context, Failure> {
        let cfg = match &file {
            Some(path) => Config::load(path).map_err(|e| usage(e.to_string()))?,
            None => Config::default(),
        };
        let db = db.unwrap_or_else(|| cfg.store.path.clone());
        Ok(Context { cfg, file, db })
    }
}

/// Everything factbot creates (the store, sled's files, the Matrix SDK's
/// sqlite stores, the console history) is for this user only.
pub fn private_files() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Log lines on stderr at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Fields at the top level beside `timestamp`, `level`, `target` and
        // `message`, as shippers (Vector, Loki, Elasticsearch) expect.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// A subcommand's outcome as the process's exit code; a failure is printed
/// on stderr, except a closed stdout.
pub fn exit_code(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if closed_stdout(&f.error) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("factbot: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

/// The reader of our stdout went away (`| head`): not a failure of the
/// command, and nothing more to say, as Unix tools do.
fn closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
