//! The `factbot` command line: console chat, one-shot questions, dataset
//! import and inspection, and running the configured transports. Only the
//! clap front and the dispatcher live here; each subcommand's arguments,
//! work and output are in the library's `cli` module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use factbot::cli::{self, Context, Failure, LogFormat};

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

#[derive(Subcommand)]
enum Cmd {
    /// Chat with the bot in the terminal (the default).
    Console,
    /// Answer one question and print the reply.
    Ask(cli::ask::Args),
    /// Import a dataset directory (default: the configured one, else the
    /// built-in dataset); only changed facts are written.
    Import(cli::import::Args),
    /// Render a chart as a PNG: trade, milestones or investment.
    Chart(cli::chart::Args),
    /// List the stored facts.
    Facts(cli::facts::Args),
    /// Check the store's consistency.
    Check,
    /// Run the transports the config enables.
    Run(cli::run::Args),
    /// Announce to subscribed chats through the running bot (its admin
    /// endpoint, `[notify] admin_listen`), printing progress until every
    /// chat has it.
    Announce(cli::notify::AnnounceArgs),
    /// Ask the running bot whether it is healthy (its `/healthz` at
    /// `[metrics] listen`) and print the answer: exit 0 healthy, 1
    /// unhealthy, 2 when no bot answers there or the config has no
    /// `[metrics]`.
    Status(cli::status::Args),
    /// List subscribed chats (bot stopped); `--import FILE` first adds the
    /// subscriptions in FILE, one `CHAT_KEY [TOPIC…]` a line (`tg:-100123
    /// trade`), e.g. to move them from another store or seed a benchmark.
    Subscriptions(cli::notify::SubscriptionsArgs),
    /// List notifications with their pending, delivered and failed
    /// deliveries (from the running bot, else from the store).
    Notifications(cli::notify::NotificationsArgs),
}

fn main() -> ExitCode {
    cli::private_files();
    let args = Cli::parse();
    // The running bot says what it does; a one-shot command only warns.
    let level = match args.command {
        Some(Cmd::Run(_)) => "info",
        _ => "warn",
    };
    cli::init_logging(args.log_format, level);
    cli::exit_code(dispatch(args))
}

/// Loads the config, then runs the subcommand (the console without one).
fn dispatch(args: Cli) -> Result<(), Failure> {
    let ctx = Context::load(args.config, args.db)?;
    match args.command.unwrap_or(Cmd::Console) {
        Cmd::Console => cli::run::console(&ctx),
        Cmd::Ask(args) => cli::ask::run(&ctx, args),
        Cmd::Import(args) => cli::import::run(&ctx, args),
        Cmd::Chart(args) => cli::chart::run(&ctx, args),
        Cmd::Facts(args) => cli::facts::list(&ctx, args),
        Cmd::Check => cli::facts::check(&ctx),
        Cmd::Run(args) => cli::run::run(ctx, args),
        Cmd::Announce(args) => cli::notify::announce(&ctx, args),
        Cmd::Status(args) => cli::status::run(&ctx, args),
        Cmd::Subscriptions(args) => cli::notify::subscriptions(&ctx, args),
        Cmd::Notifications(args) => cli::notify::notifications(&ctx, args),
    }
}
