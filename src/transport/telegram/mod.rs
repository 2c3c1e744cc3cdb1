//! The Telegram transport (teloxide).
//!
//! - [`route`]: whether a message is for the bot (pure, tested beside it);
//! - [`listener`]: the durable inbox both modes store updates in until they
//!   are answered (nothing lost or answered twice across crashes), and long
//!   polling through it;
//! - [`dispatch`]: runs the handlers, one update of a chat at a time with a
//!   short queue per chat, and stops within a bound;
//! - [`handlers`]: the endpoints;
//! - [`send`]: replies as HTML with inline keyboards, retries and failures;
//! - [`photo`]: charts as `sendPhoto`, each uploaded once per dataset
//!   version and then sent by its stored `file_id`;
//! - [`webhook`]: webhook mode, answering Telegram once an update is stored;
//! - [`deliver`]: notifications to chats and configured channels.
//!
//! Start-up: check the token with `getMe` (a wrong token is a clear error),
//! register the command list in English and Russian, then dispatch until
//! SIGTERM or Ctrl-C. SIGTERM cuts short every wait, start-up included;
//! replies in flight get [`dispatch::SHUTDOWN_GRACE`] (3 s), the rest are
//! left in the inbox for the restart.

pub mod deliver;
pub mod dispatch;
pub mod handlers;
pub mod listener;
pub mod photo;
pub mod route;
pub mod send;
pub mod webhook;

use std::sync::Arc;

use anyhow::{anyhow, Context};
use teloxide::adaptors::throttle::{Limits, Settings, Throttle};
use teloxide::prelude::*;
use teloxide::types::BotCommand;
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use teloxide::{ApiError, RequestError};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::{TelegramConfig, TelegramMode};
use crate::reply::{Msg, COMMANDS};
use handlers::Ctx;
use listener::{Inbox, InboxPolling};

/// The bot as handlers see it: every request goes through the throttle.
pub type TgBot = Throttle<Bot>;

/// Telegram's published limits. teloxide's default for supergroups and
/// channels is 10 a minute; Telegram documents 20 a minute for any group,
/// and the bot obeys 429 `retry_after` should Telegram enforce less.
pub const LIMITS: Limits = Limits {
    messages_per_sec_chat: 1,
    messages_per_min_chat: 20,
    messages_per_min_channel_or_supergroup: 20,
    messages_per_sec_overall: 30,
};

/// The throttle's settings: [`LIMITS`], and no retry of its own. On a 429
/// it still holds every send for the `retry_after`; the request comes back
/// as an error and [`send::with_retry`] sends it again, so each 429 is
/// counted (`factbot_rate_limited_total{path="reply"}`) where teloxide's
/// own retry would hide it.
pub fn throttle_settings() -> Settings {
    Settings::default().limits(LIMITS).no_retry()
}

/// The command list for Telegram's menu, from the core's command table.
pub fn bot_commands(lang: crate::facts::Lang) -> Vec<BotCommand> {
    COMMANDS
        .iter()
        .map(|(name, _, _)| BotCommand::new(*name, Msg::CommandHelp(name).text(lang)))
        .collect()
}

/// The dispatcher's routing: one endpoint per kind of update.
pub fn handler_tree<B: handlers::TgRequester>() -> teloxide::dispatching::UpdateHandler<RequestError>
{
    dptree::entry()
        .branch(Update::filter_message().endpoint(handlers::on_message::<B>))
        .branch(Update::filter_callback_query().endpoint(handlers::on_callback::<B>))
        .branch(Update::filter_inline_query().endpoint(handlers::on_inline::<B>))
}

/// Checks the token; retries network failures
/// ([`crate::retry::TELEGRAM_START`]), fails fast on a bad token.
async fn get_me(bot: &Bot) -> anyhow::Result<teloxide::types::Me> {
    let mut pauses = crate::retry::TELEGRAM_START.pauses();
    loop {
        match bot.get_me().await {
            Ok(me) => return Ok(me),
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                return Err(anyhow!(
                    "telegram: the bot token was rejected (getMe answered Unauthorized/Not Found); check [telegram] token or TELOXIDE_TOKEN"
                ))
            }
            Err(e) if matches!(send::classify(&e), send::Failure::Transient | send::Failure::RetryAfter(_)) => {
                crate::ops::record::poll_failed(
                    crate::ops::Transport::Telegram,
                    "getMe",
                    send::health_reason(&e),
                );
                let wait = pauses.next_or_last();
                tracing::warn!(error = %e, retry_in = ?wait, "telegram: getMe failed, retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(anyhow!("telegram: getMe failed: {e}")),
        }
    }
}

/// The clients: one for requests (teloxide's default 17 s timeout), one
/// for long polls (which must wait longer than the poll).
struct Clients {
    plain: Bot,
    poller: Bot,
}

impl Clients {
    fn new(cfg: &TelegramConfig) -> anyhow::Result<Clients> {
        let token = cfg.token.as_ref().ok_or_else(|| {
            anyhow!("telegram: no bot token: set [telegram] token or TELOXIDE_TOKEN")
        })?;
        let mut plain = Bot::new(token.expose());
        // Long polls wait up to POLL_TIMEOUT for an update: their client must
        // wait longer than that (see POLL_HTTP_TIMEOUT).
        let poll_client = teloxide::net::default_reqwest_settings()
            .timeout(listener::POLL_HTTP_TIMEOUT)
            .build()
            .context("telegram: cannot build the HTTP client")?;
        let mut poller = Bot::with_client(token.expose(), poll_client);
        if let Some(url) = &cfg.api_url {
            let url = url
                .parse()
                .with_context(|| format!("telegram: api_url {url:?} is not a URL"))?;
            plain = plain.set_api_url(url);
            poller = poller.set_api_url(plain.api_url());
        }
        Ok(Clients { plain, poller })
    }
}

/// Where updates come from, ready to run.
enum Source {
    Polling(InboxPolling<Bot>),
    Webhook(webhook::WebhookListener),
}

/// What start-up gives the dispatcher.
struct Started {
    me: teloxide::types::Me,
    bot: TgBot,
    ctx: Arc<Ctx>,
    source: Source,
}

/// Runs the Telegram bot until `stop` resolves. `stop` cuts every wait
/// short — start-up retries, long polls, backoff, replies held by flood
/// control — and the bot then stops within [`dispatch::SHUTDOWN_GRACE`] and
/// returns (replies still in flight are left to the restart).
pub async fn run(
    cfg: &TelegramConfig,
    app: Arc<App>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let on_stop = shutdown.clone();
    let signal = tokio::spawn(async move {
        stop.await;
        tracing::info!("telegram: shutting down, finishing replies in flight");
        on_stop.cancel();
    });
    let clients = Clients::new(cfg)?;
    let started = tokio::select! {
        started = start(cfg, app, &clients) => started?,
        _ = shutdown.cancelled() => {
            tracing::info!("telegram: stopped during start-up");
            return Ok(());
        }
    };
    let Started {
        me,
        bot,
        ctx,
        source,
    } = started;
    let inbox = ctx.inbox.clone();
    let replay = {
        let inbox = inbox.clone();
        tokio::task::spawn_blocking(move || inbox.pending())
            .await
            .unwrap_or_default()
    };
    crate::ops::record::inbox_depth(crate::ops::Transport::Telegram, replay.len());
    match source {
        Source::Polling(mut listener) => {
            let stop_listener = listener.stop_token();
            let updates = listener.as_stream();
            dispatch::run(ctx, bot, me, replay, updates, stop_listener, shutdown).await;
        }
        Source::Webhook(mut listener) => {
            let probe = tokio::spawn(webhook::probe(clients.plain.clone()));
            let stop_listener = listener.stop_token();
            let updates = listener.as_stream();
            dispatch::run(ctx, bot, me, replay, updates, stop_listener, shutdown).await;
            probe.abort();
        }
    }
    signal.abort();
    inbox.write_answered_async().await;
    tracing::info!("telegram: stopped");
    Ok(())
}

/// Start-up: the token, the command menu, notifications, the inbox, and
/// the polling or webhook listener. Every step may wait on the network;
/// [`run`] abandons it on shutdown.
async fn start(cfg: &TelegramConfig, app: Arc<App>, clients: &Clients) -> anyhow::Result<Started> {
    let plain = &clients.plain;
    let me = get_me(plain).await?;
    tracing::info!(
        username = me.username(),
        id = me.id.0,
        "telegram: logged in"
    );
    set_commands(plain).await;

    let bot: TgBot = Throttle::spawn_with_settings(plain.clone(), throttle_settings());
    app.hub()
        .register(Arc::new(deliver::TgDeliver::new(plain.clone())));
    deliver::subscribe_channels(&bot, &me, &app, &cfg.channels).await;
    let inbox = Inbox::open(app.store())?;
    tokio::spawn(inbox.clone().writer());
    let photos = photo::Photos::new(
        Arc::clone(&app),
        crate::transport::media::MediaIds::open(app.store(), photo::TREE)?,
        cfg.chart_cache_chat.map(ChatId),
    );
    let ctx = Arc::new(Ctx {
        app,
        photos,
        inbox: inbox.clone(),
        admins: cfg.admins.clone(),
    });
    let source = match cfg.mode {
        TelegramMode::Polling => {
            // A webhook left from webhook mode would make getUpdates fail.
            if let Err(e) = plain.delete_webhook().await {
                tracing::warn!(error = %e, "telegram: deleteWebhook failed");
            }
            Source::Polling(InboxPolling::new(clients.poller.clone(), inbox))
        }
        TelegramMode::Webhook => Source::Webhook(listen(cfg, plain, inbox).await?),
    };
    Ok(Started {
        me,
        bot,
        ctx,
        source,
    })
}

/// The command menu in English and Russian (a failure only leaves the menu
/// stale).
async fn set_commands(plain: &Bot) {
    for (lang, code) in [
        (crate::facts::Lang::En, None),
        (crate::facts::Lang::Ru, Some("ru")),
    ] {
        let mut req = plain.set_my_commands(bot_commands(lang));
        if let Some(c) = code {
            req = req.language_code(c);
        }
        if let Err(e) = req.await {
            tracing::warn!(error = %e, "telegram: setMyCommands failed (the menu may be stale)");
        }
    }
}

/// Webhook mode: listens on `[telegram] listen`, then tells Telegram where
/// to deliver (`public_url` + `path`, with the secret token).
async fn listen(
    cfg: &TelegramConfig,
    plain: &Bot,
    inbox: Inbox,
) -> anyhow::Result<webhook::WebhookListener> {
    let listen = cfg
        .listen
        .as_deref()
        .ok_or_else(|| anyhow!("telegram: webhook mode needs [telegram] listen"))?
        .parse()
        .context("telegram: [telegram] listen is not an address:port")?;
    let public = cfg
        .public_url
        .as_deref()
        .ok_or_else(|| anyhow!("telegram: webhook mode needs [telegram] public_url"))?;
    let path = cfg.path.clone().unwrap_or_else(|| "/telegram".to_string());
    let url = format!("{}{}", public.trim_end_matches('/'), path)
        .parse()
        .context("telegram: public_url + path is not a URL")?;
    let secret = cfg
        .secret_token
        .as_ref()
        .ok_or_else(|| anyhow!("telegram: webhook mode needs [telegram] secret_token"))?;
    // Listen first, then tell Telegram where to deliver.
    let listener = webhook::serve(listen, &path, secret.expose(), inbox)
        .await
        .with_context(|| format!("telegram: cannot listen on {listen}"))?;
    let set = plain
        .set_webhook(url)
        .secret_token(secret.expose().to_string())
        .max_connections(webhook::TELEGRAM_CONNECTIONS);
    set.await.context("telegram: setWebhook failed")?;
    Ok(listener)
}
