//! Answering one message: the app's reply as `m.notice` events with
//! `body` and HTML `formatted_body`, the first one a reply (`m.in_reply_to`)
//! to the question (a chart first as an `m.image`, see [`super::image`]);
//! and `!leave`.
//!
//! `m.notice` is the Matrix convention for bot output: clients show it
//! differently and well-behaved bots (this one included) never answer it,
//! so bots cannot loop. Rate limits are waited out by the SDK; a send that
//! fails for another transient reason (homeserver restarting, network) is
//! retried here with a doubling pause, so an answer survives a short outage.

use std::sync::Arc;

use matrix_sdk::ruma::events::room::message::{
    AddMentions, ForwardThread, ReplyMetadata, RoomMessageEventContent,
};
use matrix_sdk::ruma::events::room::power_levels::UserPowerLevel;
use matrix_sdk::ruma::{EventId, OwnedEventId, RoomId, UserId};
use matrix_sdk::Room;

use super::failure::{classify, Failure};
use super::inbox::{Action, Job};
use super::route::PREFIXES;
use super::Ctx;
use crate::answer::Request;
use crate::facts::ChatKey;
use crate::ops::record as ops;
use crate::reply::{render_matrix, Msg, Reply};
use crate::retry;

/// Characters per message: Matrix events are limited to 64 KiB of JSON,
/// which must hold `body` and `formatted_body` (Cyrillic is two bytes per
/// character, and encryption adds a third).
pub const MATRIX_LIMIT: usize = 8000;
/// Power level of a room admin: `!leave`, `!subscribe`, `!unsubscribe`
/// (Matrix's "moderator").
const ROOM_ADMIN_LEVEL: i64 = 50;

/// Answers one job; the reply's kind for the log, `None` when nothing was
/// sent.
pub(crate) async fn handle(ctx: &Ctx, job: &Job) -> Option<String> {
    let Ok(room_id) = <&RoomId>::try_from(job.room_id.as_str()) else {
        return None;
    };
    let Some(room) = ctx.client.get_room(room_id) else {
        tracing::info!(room = %job.room_id, "matrix: no longer in the room; message dropped");
        return None;
    };
    match &job.action {
        Action::Answer(text) => {
            let started = std::time::Instant::now();
            let chat = ChatKey::matrix(room_id);
            let reply = answer(ctx, &room, job, &chat, text).await?;
            send_reply(ctx, &room, job, &chat, &reply).await?;
            ops::question(ops::Transport::Matrix, &reply, started);
            Some(format!("{:?}", reply.kind))
        }
        Action::Leave => {
            leave(ctx, &room, job).await;
            Some("Leave".into())
        }
    }
}

/// The app's reply to `text`: at once when it is answered from memory
/// ([`crate::app::App::answer_in_memory`]), else off the runtime's threads
/// (answering may read facts from a large store, or write and flush it:
/// `!lang`, `!subscribe`, `!announce`).
async fn answer(ctx: &Ctx, room: &Room, job: &Job, chat: &ChatKey, text: &str) -> Option<Reply> {
    let input = crate::query::parse(text, PREFIXES);
    // Only admin-only commands cost a power-level lookup.
    let chat_admin =
        job.direct || (input.needs_chat_admin() && is_room_admin(room, &job.sender).await);
    let bot_admin = ctx.admins.iter().any(|a| a == &job.sender);
    let req = Request {
        prefixes: PREFIXES,
        chat_admin,
        bot_admin,
        private: job.direct,
        // In a group each member has a conversation of their own.
        person: Some(&job.sender),
        reply_to: job.reply_to.as_deref(),
        ..Request::new(chat, text)
    };
    // A panic is caught as the blocking thread's would be (logged, no reply).
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ctx.app.answer_in_memory(&req, input)
    }));
    let input = match first {
        Ok(Ok(reply)) => return Some(reply),
        Ok(Err(input)) => input,
        Err(_) => {
            tracing::error!(room = %job.room_id, "matrix: answering failed (a panic)");
            return None;
        }
    };
    let (app, req) = (Arc::clone(&ctx.app), req.owned());
    let answered =
        tokio::task::spawn_blocking(move || app.handle_input(&req.request(), input)).await;
    match answered {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(room = %job.room_id, error = %e, "matrix: answering failed");
            None
        }
    }
}

/// Sends `reply` as the answer to `job`: a chart first (replying to the
/// question), then its text (with the chart: the caption and commands
/// below it), each event remembered as carrying this answer so a reply to
/// it continues it. `None` when a send finally failed.
async fn send_reply(ctx: &Ctx, room: &Room, job: &Job, key: &ChatKey, reply: &Reply) -> Option<()> {
    let mut first = true;
    let mut text = std::borrow::Cow::Borrowed(reply);
    if let Some(image) = &reply.image {
        if let Some(png) = ctx.images.png(image).await {
            if let Some(source) = ctx.images.source(&ctx.client, room, &png).await {
                let content =
                    RoomMessageEventContent::new(super::image::message(&image.alt, source, &png));
                let id = send(room, reply_to(content, job)).await?;
                // A reply to the picture continues this answer too.
                ctx.app.engine().note_sent(key, id.as_str(), reply);
                first = false;
                text = std::borrow::Cow::Owned(super::image::follow_up(reply, image));
            }
        }
    }
    for (body, html) in render_matrix(&text, MATRIX_LIMIT) {
        let content = RoomMessageEventContent::notice_html(body, html);
        let content = if first {
            reply_to(content, job)
        } else {
            content
        };
        first = false;
        let id = send(room, content).await?;
        // A reply to this event continues this answer.
        ctx.app.engine().note_sent(key, id.as_str(), reply);
    }
    Some(())
}

fn reply_to(content: RoomMessageEventContent, job: &Job) -> RoomMessageEventContent {
    match (
        <&EventId>::try_from(job.event_id.as_str()),
        <&UserId>::try_from(job.sender.as_str()),
    ) {
        (Ok(e), Ok(s)) => content.make_reply_to(
            ReplyMetadata::new(e, s, None),
            ForwardThread::Yes,
            AddMentions::No,
        ),
        _ => content,
    }
}

/// Sends with retries ([`retry::MATRIX_REPLY`]); the event's id, or `None`
/// when it finally failed.
async fn send(room: &Room, content: RoomMessageEventContent) -> Option<OwnedEventId> {
    let mut pauses = retry::MATRIX_REPLY.pauses();
    for attempt in 1.. {
        let e = match room.send(content.clone()).await {
            Ok(sent) => return Some(sent.response.event_id),
            Err(e) => e,
        };
        let failure = classify(&e);
        let Some(pause) = pauses.next().filter(|_| failure.retryable()) else {
            tracing::warn!(room = %room.room_id(), error = %e, "matrix: giving up on a reply");
            return None;
        };
        if let Failure::RetryAfter(_) = failure {
            ops::rate_limited(ops::Transport::Matrix, ops::Path::Reply);
        }
        ops::retry(ops::Transport::Matrix, ops::Path::Reply);
        tracing::warn!(room = %room.room_id(), attempt, error = %e, retry_in = ?pause, "matrix: send failed");
        tokio::time::sleep(pause).await;
    }
    None
}

/// Whether `user` administers `room`: power level ≥ 50 (Matrix's
/// "moderator"; a room creator's unlimited power in room version 12 counts).
pub(crate) async fn is_room_admin(room: &Room, user: &str) -> bool {
    let Ok(u) = <&UserId>::try_from(user) else {
        return false;
    };
    match room.get_user_power_level(u).await {
        Ok(UserPowerLevel::Infinite) => true,
        Ok(UserPowerLevel::Int(l)) => i64::from(l) >= ROOM_ADMIN_LEVEL,
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(error = %e, "matrix: cannot read power levels");
            false
        }
    }
}

/// `!leave`: room admins and the bot's configured admins may ask; anyone
/// else is told who can.
async fn leave(ctx: &Ctx, room: &Room, job: &Job) {
    let allowed =
        ctx.admins.iter().any(|a| a == &job.sender) || is_room_admin(room, &job.sender).await;
    if !allowed {
        let text = Msg::LeaveRefused.bilingual();
        send(
            room,
            reply_to(RoomMessageEventContent::notice_plain(text), job),
        )
        .await;
        return;
    }
    send(
        room,
        reply_to(
            RoomMessageEventContent::notice_plain(Msg::Leaving.bilingual()),
            job,
        ),
    )
    .await;
    match room.leave().await {
        Ok(()) => {
            tracing::info!(room = %job.room_id, by = %job.sender, "matrix: left the room on request")
        }
        Err(e) => tracing::warn!(room = %job.room_id, error = %e, "matrix: cannot leave the room"),
    }
}
