//! The Telegram transport (teloxide).
//!
//! - [`route`]: whether a message is for the bot (pure, tested beside it);
//! - [`listener`]: long polling through a durable inbox (nothing lost or
//!   answered twice across crashes);
//! - [`handlers`]: the dispatcher's endpoints;
//! - [`send`]: replies as HTML with inline keyboards, retries and failures;
//! - [`webhook`]: webhook mode, answering Telegram once an update is handled;
//! - [`deliver`]: notifications to chats and configured channels.
//!
//! Start-up: check the token with `getMe` (a wrong token is a clear error),
//! register the command list in English and Russian, then dispatch until
//! SIGTERM or Ctrl-C, finishing replies in flight (at most 5 s).

pub mod deliver;
pub mod handlers;
pub mod listener;
pub mod route;
pub mod send;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use teloxide::adaptors::throttle::{Limits, Throttle};
use teloxide::prelude::*;
use teloxide::types::BotCommand;
use teloxide::{ApiError, RequestError};

use crate::answer::Engine;
use crate::config::{TelegramConfig, TelegramMode};
use crate::query::COMMANDS;
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

/// How long shutdown may wait for replies in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The command list for Telegram's menu, from the core's command table.
pub fn bot_commands(lang: crate::facts::Lang) -> Vec<BotCommand> {
    COMMANDS
        .iter()
        .map(|(name, en, ru)| {
            let d = match lang {
                crate::facts::Lang::En => en,
                crate::facts::Lang::Ru => ru,
            };
            BotCommand::new(*name, *d)
        })
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

/// Checks the token; retries network failures, fails fast on a bad token.
async fn get_me(bot: &Bot) -> anyhow::Result<teloxide::types::Me> {
    let mut wait = Duration::from_millis(500);
    loop {
        match bot.get_me().await {
            Ok(me) => return Ok(me),
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                return Err(anyhow!(
                    "telegram: the bot token was rejected (getMe answered Unauthorized/Not Found); check [telegram] token or TELOXIDE_TOKEN"
                ))
            }
            Err(e) if matches!(send::classify(&e), send::Failure::Transient | send::Failure::RetryAfter(_)) => {
                tracing::warn!(error = %e, retry_in = ?wait, "telegram: getMe failed, retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(anyhow!("telegram: getMe failed: {e}")),
        }
    }
}

/// Runs the Telegram bot until `stop` resolves.
pub async fn run(
    cfg: &TelegramConfig,
    engine: Arc<Engine>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = cfg
        .token
        .as_ref()
        .ok_or_else(|| anyhow!("telegram: no bot token: set [telegram] token or TELOXIDE_TOKEN"))?;
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
    let me = get_me(&plain).await?;
    tracing::info!(
        username = me.username(),
        id = me.id.0,
        "telegram: logged in"
    );
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

    let bot: TgBot = plain.clone().throttle(LIMITS);
    engine
        .hub()
        .register(Arc::new(deliver::TgDeliver::new(plain.clone())));
    deliver::subscribe_channels(&bot, &me, &engine, &cfg.channels).await;
    let inbox = Inbox::open(engine.store())?;
    tokio::spawn(inbox.clone().writer());
    let ctx = Arc::new(Ctx {
        engine,
        inbox: inbox.clone(),
        waiters: webhook::Waiters::default(),
        admins: cfg.admins.clone(),
    });
    let handler = handler_tree::<TgBot>();
    let default_ctx = Arc::clone(&ctx);
    let mut dispatcher = Dispatcher::builder(bot.clone(), handler)
        .dependencies(dptree::deps![me, Arc::clone(&ctx)])
        .default_handler(move |upd| {
            let ctx = Arc::clone(&default_ctx);
            async move { ctx.finish(&upd) }
        })
        .error_handler(LoggingErrorHandler::with_custom_text(
            "telegram: handler failed",
        ))
        .build();

    let token = dispatcher.shutdown_token();
    tokio::spawn(async move {
        stop.await;
        tracing::info!("telegram: shutting down, finishing replies in flight");
        if let Ok(done) = token.shutdown() {
            if tokio::time::timeout(SHUTDOWN_GRACE, done).await.is_err() {
                tracing::warn!("telegram: replies still in flight after {SHUTDOWN_GRACE:?}; leaving them to the restart");
                std::process::exit(0);
            }
        }
    });

    match cfg.mode {
        TelegramMode::Polling => {
            // A webhook left from webhook mode would make getUpdates fail.
            if let Err(e) = plain.delete_webhook().await {
                tracing::warn!(error = %e, "telegram: deleteWebhook failed");
            }
            let listener = InboxPolling::new(poller, inbox.clone());
            dispatcher
                .dispatch_with_listener(
                    listener,
                    LoggingErrorHandler::with_custom_text("telegram: polling error"),
                )
                .await;
        }
        TelegramMode::Webhook => {
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
            // Listen first, then tell Telegram where to deliver.
            let listener = webhook::serve(
                listen,
                &path,
                cfg.secret_token.as_ref().map(|s| s.expose().to_string()),
                ctx.waiters.clone(),
            )
            .await
            .with_context(|| format!("telegram: cannot listen on {listen}"))?;
            let mut set = plain.set_webhook(url);
            if let Some(secret) = &cfg.secret_token {
                set = set.secret_token(secret.expose().to_string());
            }
            set.await.context("telegram: setWebhook failed")?;
            dispatcher
                .dispatch_with_listener(
                    listener,
                    LoggingErrorHandler::with_custom_text("telegram: webhook error"),
                )
                .await;
        }
    }
    inbox.write_answered_async().await;
    tracing::info!("telegram: stopped");
    Ok(())
}
