//! The dispatcher's endpoints: messages, button presses, inline queries.
//!
//! Each endpoint turns the update into an app request, sends the reply,
//! and then records the update as answered (see [`super::listener`]).

use std::sync::Arc;

use teloxide::payloads::{AnswerInlineQuerySetters, EditMessageTextSetters};
use teloxide::prelude::*;
use teloxide::requests::Request as _;
use teloxide::types::{
    FileId, InlineQueryResult, InlineQueryResultArticle, InlineQueryResultCachedPhoto,
    InputMessageContent, InputMessageContentText, Me, MessageId, ParseMode, UpdateKind,
};
use teloxide::{ApiError, RequestError};

use super::listener::Inbox;
use super::photo::{inline_charts, send_chart_reply, stale_file_id, Photos};
use super::route::{route, Incoming, Route};
use super::send::{keyboard, send_reply, with_retry};
use crate::answer::Request;
use crate::app::App;
use crate::chart::ChartKind;
use crate::facts::{ChatKey, Lang};
use crate::ops::record as ops;
use crate::query::detect_lang;
use crate::reply::{render_caption_html, render_telegram_html, Block, Msg, Reply, TELEGRAM_LIMIT};

/// Inline results offered at most (Telegram's limit).
const INLINE_RESULTS: usize = 50;

/// The bot as endpoints see it: the throttled bot in production, teloxide's
/// plain `Bot` elsewhere.
pub trait TgRequester: Requester<Err = RequestError> + Clone + Send + Sync + 'static {}
impl<T: Requester<Err = RequestError> + Clone + Send + Sync + 'static> TgRequester for T {}

/// What every endpoint needs.
pub struct Ctx {
    pub app: Arc<App>,
    /// Where the listener keeps updates until they are answered.
    pub inbox: Inbox,
    /// Telegram user ids of the bot's admins (`[telegram] admins`).
    pub admins: Vec<i64>,
    /// Charts: PNGs, stored file ids, one upload per chart at a time.
    pub photos: Photos,
}

/// What the app needs to know about the sender, found out here.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sender {
    pub chat_admin: bool,
    pub bot_admin: bool,
    pub private: bool,
}

/// Finds out who sends `text` in `chat`; asks Telegram (`getChatMember`)
/// only when the command needs a chat admin and the chat is a group.
pub async fn sender<B: TgRequester>(
    bot: &B,
    ctx: &Ctx,
    chat: &teloxide::types::Chat,
    user: Option<&teloxide::types::User>,
    sender_chat: Option<&teloxide::types::Chat>,
    text: &str,
) -> Sender {
    let private = chat.is_private();
    let bot_admin =
        user.is_some_and(|u| i64::try_from(u.id.0).is_ok_and(|id| ctx.admins.contains(&id)));
    let mut chat_admin = private;
    if !private && crate::query::parse(text, &['/']).needs_chat_admin() {
        // An anonymous group admin writes as the group itself.
        if sender_chat.is_some_and(|c| c.id == chat.id) {
            chat_admin = true;
        } else if let Some(u) = user {
            chat_admin = match bot.get_chat_member(chat.id, u.id).await {
                Ok(m) => m.is_privileged(),
                Err(e) => {
                    tracing::warn!(chat = chat.id.0, error = %e, "telegram: getChatMember failed; treating the sender as a plain member");
                    false
                }
            };
        }
    }
    Sender {
        chat_admin,
        bot_admin,
        private,
    }
}

/// App calls running at once on blocking threads. The app answers in
/// microseconds, so more than the cores buys nothing: unbounded, 32
/// questions at once grew tokio's blocking pool to 36 threads (each with
/// its own allocator arena) and the bot's peak memory by about a third
/// (scripts/bench-telegram.sh).
static ENGINE_CALLS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Runs `f` (the app where it may touch the disk: facts read from a large
/// store, the hub's trees, `/lang` or `/subscribe` writes with a flush) on a
/// blocking thread, so the runtime's worker threads never wait for the
/// disk. Questions answered from memory skip it ([`Ctx::answer`]).
async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    // The semaphore is never closed, so a permit always comes.
    let _slot = ENGINE_CALLS.acquire().await.ok();
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Ctx {
    /// The app's reply to `text` written by `user` in `chat`;
    /// `reply_to`: the bot's message it replies to, if any.
    async fn answer(
        &self,
        chat: ChatId,
        text: &str,
        user: Option<&teloxide::types::User>,
        who: Sender,
        reply_to: Option<MessageId>,
    ) -> Reply {
        let key = chat_key(chat);
        // In a group each member has a conversation of their own; an
        // anonymous admin (no user) shares the chat's.
        let person = user.map(|u| u.id.0.to_string());
        let reply_to = reply_to.map(|m| m.0.to_string());
        let req = Request {
            user_lang: user_lang(user),
            prefixes: &['/'],
            chat_admin: who.chat_admin,
            bot_admin: who.bot_admin,
            private: who.private,
            person: person.as_deref(),
            reply_to: reply_to.as_deref(),
            ..Request::new(&key, text)
        };
        // Most questions are answered from memory in microseconds: here,
        // with no hand-off to a blocking thread and back.
        let input = match self
            .app
            .answer_in_memory(&req, crate::query::parse(text, req.prefixes))
        {
            Ok(reply) => return reply,
            Err(input) => input,
        };
        let (app, req) = (Arc::clone(&self.app), req.owned());
        off_runtime(move || app.handle_input(&req.request(), input)).await
    }

    /// Remembers which answer the messages `sent` to `chat` carried (a
    /// cheap in-memory insert; no blocking thread needed).
    fn note_sent(&self, chat: ChatId, sent: &[MessageId], reply: &Reply) {
        let key = chat_key(chat);
        for id in sent {
            self.app.engine().note_sent(&key, &id.0.to_string(), reply);
        }
    }

    /// Records an update as answered, whatever the outcome, so one
    /// poisonous update cannot come back after every restart.
    pub fn finish(&self, update: &Update) {
        self.finish_id(update.id.0 as i32);
    }

    /// [`Ctx::finish`] by update id.
    pub fn finish_id(&self, id: i32) {
        self.inbox.done(id);
    }
}

/// A message as routing sees it; `None` without text.
pub fn incoming<'a>(msg: &'a Message, me: &Me) -> Option<Incoming<'a>> {
    Some(Incoming {
        private: msg.chat.is_private(),
        text: msg.text()?,
        reply_to_bot: msg
            .reply_to_message()
            .and_then(|m| m.from.as_ref())
            .is_some_and(|u| u.id == me.id),
    })
}

/// An update pushed out of its chat's queue by newer ones: recorded as
/// handled with no answer (a pressed button stops spinning).
pub async fn skipped<B: TgRequester>(bot: &B, ctx: &Ctx, update: &Update) {
    if let UpdateKind::CallbackQuery(q) = &update.kind {
        if let Err(e) = bot.answer_callback_query(q.id.clone()).await {
            tracing::warn!(error = %e, "telegram: answerCallbackQuery failed");
        }
    }
    ctx.finish(update);
}

/// Tells the chat of `update`, once per burst, that `n` of its earlier
/// questions were skipped.
pub async fn tell_skipped<B: TgRequester>(bot: &B, ctx: &Ctx, update: &Update, n: usize) {
    let (chat, text, user) = match &update.kind {
        UpdateKind::Message(m) => (m.chat.id, m.text().unwrap_or_default(), m.from.as_ref()),
        UpdateKind::CallbackQuery(q) => match &q.message {
            Some(m) => (m.chat().id, "", Some(&q.from)),
            None => return,
        },
        _ => return,
    };
    let app = Arc::clone(&ctx.app);
    let (key, text, lang) = (chat_key(chat), text.to_string(), user_lang(user));
    let note = off_runtime(move || app.engine().skipped_note(&key, &text, lang, n)).await;
    tracing::info!(
        chat = chat.0,
        skipped = n,
        "telegram: a burst of questions; the earlier ones skipped"
    );
    if let Err(e) = send_reply(bot, chat, None, &note).await {
        tracing::warn!(chat = chat.0, error = %e, "telegram: cannot send the skipped-questions note");
    }
}

/// The chat key under which per-chat settings are stored.
pub fn chat_key(chat: ChatId) -> ChatKey {
    ChatKey::Telegram(chat.0)
}

fn user_lang(user: Option<&teloxide::types::User>) -> Option<Lang> {
    user.and_then(|u| u.language_code.as_deref())
        .and_then(Lang::parse)
}

pub async fn on_message<B: TgRequester>(
    bot: B,
    msg: Message,
    update: Update,
    me: Me,
    ctx: Arc<Ctx>,
) -> ResponseResult<()> {
    let result = answer_message(&bot, &msg, &me, &ctx).await;
    ctx.finish(&update);
    result
}

async fn answer_message<B: TgRequester>(
    bot: &B,
    msg: &Message,
    me: &Me,
    ctx: &Ctx,
) -> ResponseResult<()> {
    let started = std::time::Instant::now();
    if let Some(to) = msg.migrate_to_chat_id() {
        tracing::info!(
            from = msg.chat.id.0,
            to = to.0,
            "telegram: group migrated to a supergroup"
        );
        let hub = ctx.app.hub().clone();
        let (from, to) = (chat_key(msg.chat.id), chat_key(*to));
        off_runtime(move || hub.chat_moved(&from, &to)).await;
        return Ok(());
    }
    let Some(incoming) = incoming(msg, me) else {
        return Ok(());
    };
    let Route::Answer(text) = route(incoming, me.username()) else {
        return Ok(());
    };
    let who = sender(
        bot,
        ctx,
        &msg.chat,
        msg.from.as_ref(),
        msg.sender_chat.as_ref(),
        &text,
    )
    .await;
    let reply_to = msg
        .reply_to_message()
        .filter(|m| m.from.as_ref().is_some_and(|u| u.id == me.id))
        .map(|m| m.id);
    let reply = ctx
        .answer(msg.chat.id, &text, msg.from.as_ref(), who, reply_to)
        .await;
    let sent = if reply.image.is_some() {
        send_chart_reply(bot, &ctx.photos, msg.chat.id, Some(msg.id), &reply).await?
    } else {
        send_reply(bot, msg.chat.id, Some(msg.id), &reply).await?
    };
    ctx.note_sent(msg.chat.id, &sent, &reply);
    ops::question(ops::Transport::Telegram, &reply, started);
    Ok(())
}

pub async fn on_callback<B: TgRequester>(
    bot: B,
    q: CallbackQuery,
    update: Update,
    ctx: Arc<Ctx>,
) -> ResponseResult<()> {
    let result = answer_callback(&bot, &q, &ctx).await;
    // Always answer the query so the button stops spinning.
    let ack = bot.answer_callback_query(q.id.clone()).await;
    ctx.finish(&update);
    if let Err(e) = &ack {
        tracing::warn!(error = %e, "telegram: answerCallbackQuery failed");
    }
    result
}

async fn answer_callback<B: TgRequester>(
    bot: &B,
    q: &CallbackQuery,
    ctx: &Ctx,
) -> ResponseResult<()> {
    let started = std::time::Instant::now();
    let (Some(data), Some(message)) = (q.data.as_deref(), q.message.as_ref()) else {
        return Ok(());
    };
    let chat = message.chat().id;
    let who = sender(bot, ctx, message.chat(), Some(&q.from), None, data).await;
    let reply = ctx.answer(chat, data, Some(&q.from), who, None).await;
    // A text message cannot become a photo: a chart button sends the chart
    // as a new message under the one pressed.
    if reply.image.is_some() {
        let sent = send_chart_reply(bot, &ctx.photos, chat, None, &reply).await?;
        ctx.note_sent(chat, &sent, &reply);
        ops::question(ops::Transport::Telegram, &reply, started);
        return Ok(());
    }
    // A photo's caption is no page to edit (Telegram: "there is no text in
    // the message to edit"): a button under a chart answers below it.
    if message.regular_message().and_then(|m| m.photo()).is_some() {
        let sent = send_reply(bot, chat, None, &reply).await?;
        ctx.note_sent(chat, &sent, &reply);
        ops::question(ops::Transport::Telegram, &reply, started);
        return Ok(());
    }
    // A button edits its message in place: the first chunk is the page.
    let Some(html) = render_telegram_html(&reply, TELEGRAM_LIMIT)
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let markup = keyboard(&reply);
    let res = with_retry(chat, "editMessageText", |chat| {
        let mut req = bot
            .edit_message_text(chat, message.id(), html.clone())
            .parse_mode(ParseMode::Html);
        if let Some(m) = markup.clone() {
            req = req.reply_markup(m);
        }
        req.send()
    })
    .await;
    if res.is_ok() {
        // The message now carries this answer: a reply to it continues it.
        ctx.note_sent(chat, &[message.id()], &reply);
    }
    match res {
        Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => {
            ops::question(ops::Transport::Telegram, &reply, started);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

pub async fn on_inline<B: TgRequester>(
    bot: B,
    q: InlineQuery,
    update: Update,
    ctx: Arc<Ctx>,
) -> ResponseResult<()> {
    let result = answer_inline(&bot, &q, &ctx).await;
    ctx.finish(&update);
    result
}

async fn answer_inline<B: TgRequester>(bot: &B, q: &InlineQuery, ctx: &Ctx) -> ResponseResult<()> {
    let lang = detect_lang(&q.query)
        .or_else(|| user_lang(Some(&q.from)))
        .unwrap_or(Lang::En);
    let app = Arc::clone(&ctx.app);
    let query = q.query.clone();
    let kinds = inline_charts(&q.query);
    // The search, the charts' descriptions and up to 50 app calls: one
    // trip to a blocking thread.
    let (facts, charts) = off_runtime(move || {
        let charts = chart_replies(&app, &kinds, lang);
        let facts = inline_results(&app, &query, lang, INLINE_RESULTS - charts.len());
        (facts, charts)
    })
    .await;
    // Charts first, as pictures where Telegram holds them (or the cache chat
    // takes one now), else as their text.
    let mut offered = Vec::new();
    let mut pictures = Vec::new();
    for (kind, reply) in &charts {
        let Some(image) = reply.image.as_ref() else {
            continue;
        };
        let id = ctx.photos.inline_file_id(bot, image).await;
        if let Some(id) = &id {
            offered.push((image.key.to_string(), id.clone()));
        }
        pictures.push((*kind, reply, id));
    }
    let build = |with_ids: bool| -> Vec<InlineQueryResult> {
        let mut out: Vec<InlineQueryResult> = pictures
            .iter()
            .filter_map(|(kind, reply, id)| {
                chart_result(*kind, reply, lang, id.as_deref().filter(|_| with_ids))
            })
            .collect();
        out.extend(facts.iter().cloned());
        out
    };
    match bot
        .answer_inline_query(q.id.clone(), build(true))
        .cache_time(300)
        .await
    {
        Ok(_) => Ok(()),
        // A stored id Telegram refuses: forget those offered and answer with
        // the charts as text (the next chat that asks uploads afresh).
        Err(e) if stale_file_id(&e) && !offered.is_empty() => {
            tracing::warn!(error = %e, "telegram: inline photo refused; forgetting its stored file ids");
            for (key, id) in &offered {
                ctx.photos.forget(key, id).await;
            }
            bot.answer_inline_query(q.id.clone(), build(false))
                .cache_time(300)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// `/chart NAME` answered in `lang` for each chart an inline query asks for.
fn chart_replies(app: &App, kinds: &[ChartKind], lang: Lang) -> Vec<(ChartKind, Reply)> {
    kinds
        .iter()
        .map(|k| {
            let line = format!("/chart {}", k.name());
            let req = Request {
                force_lang: Some(lang),
                ..Request::new(&ChatKey::TelegramInline, &line)
            };
            (*k, app.handle(&req))
        })
        .filter(|(_, r)| r.image.is_some())
        .collect()
}

/// One chart as an inline result: the cached photo with its caption when
/// Telegram holds it (`file_id`), else an article with the caption and the
/// figures in words.
fn chart_result(
    kind: ChartKind,
    reply: &Reply,
    lang: Lang,
    file_id: Option<&str>,
) -> Option<InlineQueryResult> {
    let image = reply.image.as_ref()?;
    let id = format!("chart.{}.{}", kind.name(), lang.code());
    let title = Msg::ChartButton(kind.label(lang)).text(lang);
    let caption = render_caption_html(image);
    if let Some(file_id) = file_id {
        return Some(InlineQueryResult::CachedPhoto(
            InlineQueryResultCachedPhoto::new(id, FileId(file_id.to_string()))
                .title(title)
                .description(kind.blurb(lang))
                .caption(caption)
                .parse_mode(ParseMode::Html),
        ));
    }
    let mut text = reply.clone();
    text.blocks
        .insert(0, Block::Paragraph(image.caption.clone()));
    let html = render_telegram_html(&text, TELEGRAM_LIMIT)
        .into_iter()
        .next()?;
    let content =
        InputMessageContent::Text(InputMessageContentText::new(html).parse_mode(ParseMode::Html));
    Some(InlineQueryResult::Article(
        InlineQueryResultArticle::new(id, title, content).description(kind.blurb(lang)),
    ))
}

/// The facts an inline query finds, each as an article with its `/fact` page.
fn inline_results(app: &App, query: &str, lang: Lang, limit: usize) -> Vec<InlineQueryResult> {
    let cat = app.engine().catalog();
    let facts = if query.trim().is_empty() {
        cat.first(limit)
    } else {
        app.engine().hits(&cat, query, limit)
    };
    facts
        .iter()
        .filter_map(|f| {
            let line = format!("/fact {}", f.id);
            // Read-only: an inline page is no conversation of anyone's.
            let req = Request {
                force_lang: Some(lang),
                read_only: true,
                ..Request::new(&ChatKey::TelegramInline, &line)
            };
            let html = render_telegram_html(&app.handle(&req), TELEGRAM_LIMIT)
                .into_iter()
                .next()?;
            let content = InputMessageContent::Text(
                InputMessageContentText::new(html).parse_mode(ParseMode::Html),
            );
            Some(InlineQueryResult::Article(
                InlineQueryResultArticle::new(f.id.clone(), f.title.get(lang), content)
                    .description(f.text.get(lang)),
            ))
        })
        .collect()
}
