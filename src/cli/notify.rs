//! The notification subcommands: `factbot announce` (through the running
//! bot's admin endpoint, following delivery until every chat has it),
//! `factbot subscriptions` (list, or import a file of them, bot stopped)
//! and `factbot notifications` (from the running bot, else the store).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{usage, Context, Failure, Format};
use crate::facts::{ChatKey, Store};
use crate::notify::admin::{parse_topic, Client, ClientError};
use crate::notify::subscriptions::parse_topics;
use crate::notify::Topics;

// No `///` here: the `announce` variant's doc comment in main.rs is the help.
#[derive(clap::Args)]
pub struct AnnounceArgs {
    /// Only chats subscribed to this topic (default: every subscribed chat).
    #[arg(long)]
    pub topic: Option<String>,
    /// Give up waiting for delivery after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// The announcement (several words are joined with spaces).
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
}

// No `///` here: the `subscriptions` variant's doc comment in main.rs is the help.
#[derive(clap::Args)]
pub struct SubscriptionsArgs {
    #[arg(long, value_name = "FILE")]
    pub import: Option<PathBuf>,
}

// No `///` here: the `notifications` variant's doc comment in main.rs is the help.
#[derive(clap::Args)]
pub struct NotificationsArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `factbot announce [--topic T] [--timeout S] TEXT…`: hands the text to
/// the running bot, then follows it.
pub fn announce(ctx: &Context, args: AnnounceArgs) -> Result<(), Failure> {
    let text = args.text.join(" ");
    let topic = args.topic.as_deref();
    if text.trim().is_empty() {
        return Err(usage("the announcement is empty"));
    }
    if let Some(m) = crate::notify::announcement_too_long(&text) {
        return Err(usage(m));
    }
    parse_topic(topic).map_err(|w| usage(format!("unknown topic {w:?}")))?;
    let client = Client::from_config(&ctx.cfg.notify).ok_or_else(|| {
        usage("announcing needs the running bot's admin endpoint: set [notify] admin_listen and admin_token (or FACTBOT_ADMIN_TOKEN)")
    })?;
    let a = client.announce(topic, &text)?;
    let Some(id) = a.id else {
        outln!("no chat is subscribed to that; nothing was sent")?;
        return Ok(());
    };
    outln!("announcement #{id}: {} chats", a.chats)?;
    follow(&client, id, args.timeout)
}

/// Prints each change of the announcement's progress until nothing is
/// pending (a failure if some chat could not be reached) or the timeout.
fn follow(client: &Client, id: u64, timeout: u64) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
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
        if Instant::now() >= deadline {
            return Err(anyhow::anyhow!(
                "still {} deliveries pending after {timeout} s; the bot keeps sending them (see `factbot notifications`)",
                p.pending
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `factbot subscriptions [--import FILE]`.
pub fn subscriptions(ctx: &Context, args: SubscriptionsArgs) -> Result<(), Failure> {
    let store = Store::open(&ctx.db)?;
    let subs = crate::notify::Subscriptions::open(&store)?;
    if let Some(file) = args.import.as_deref() {
        let items = read_subscriptions(file)?;
        subs.subscribe_many(&items)?;
        eprintln!("imported {} subscriptions", items.len());
        return Ok(());
    }
    for (chat, topics) in subs.list()? {
        outln!("{chat}\t{}", topics.names().join(" "))?;
    }
    Ok(())
}

/// The subscriptions of FILE, one `CHAT_KEY [TOPIC…]` a line (blank lines
/// and `#` comments skipped); the first bad line is exit 2 with its number.
fn read_subscriptions(file: &Path) -> Result<Vec<(ChatKey, Topics)>, Failure> {
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
    Ok(items)
}

/// `factbot notifications [--format json]`: from the running bot if it
/// answers, else from the store.
pub fn notifications(ctx: &Context, args: NotificationsArgs) -> Result<(), Failure> {
    let from_bot = match Client::from_config(&ctx.cfg.notify).map(|c| c.list()) {
        Some(Ok(p)) => Some(p),
        Some(Err(ClientError::NotRunning(_))) | None => None,
        Some(Err(e)) => return Err(e.into()),
    };
    let list = match from_bot {
        Some(p) => p,
        None => {
            let store = Store::open(&ctx.db)?;
            crate::notify::Outbox::open(&store)?.all_progress()?
        }
    };
    match args.format {
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
