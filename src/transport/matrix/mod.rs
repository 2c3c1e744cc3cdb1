//! The Matrix transport (matrix-sdk): the bot in rooms, encrypted or not.
//!
//! - [`session`]: log in once, then restore the same device (and its keys).
//! - [`route`]: the pure decision whether a message is for the bot.
//! - [`inbox`]: the bot's own sync token and the messages to answer, kept in
//!   sled so a kill -9 neither loses nor repeats an answer.
//! - [`send`]: replies as `m.notice` with HTML, threaded as a reply;
//!   `!leave`.
//! - [`invites`]: joining on invite, with an allow-list and backoff.
//! - [`deliver`]: notifications to subscribed rooms (the notify worker's
//!   [`Deliver`](crate::notify::Deliver) for `mx:` chats).
//!
//! The loop is matrix-sdk's `sync_once` driven by hand rather than
//! `Client::sync`: each sync's messages go to the inbox before the token
//! moves, and a homeserver that is down or restarting only makes the loop
//! wait (1 s doubling to 30 s) — it never exits. Rate limits
//! (`M_LIMIT_EXCEEDED`) are obeyed by the SDK's HTTP layer, which waits the
//! `retry_after_ms` the server asks for.

mod deliver;
mod inbox;
mod invites;
pub mod route;
mod send;
mod session;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::TimelineEventKind;
use matrix_sdk::ruma::api::client::filter::FilterDefinition;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::{MessageType, Relation};
use matrix_sdk::ruma::events::{
    AnySyncMessageLikeEvent, AnySyncTimelineEvent, SyncMessageLikeEvent,
};
use matrix_sdk::ruma::{OwnedUserId, UInt, UserId};
use matrix_sdk::{Client, Room};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use self::inbox::{Action, Inbox, Job};
use self::route::{route, Incoming, Names, Route};
use crate::answer::Engine;
use crate::config::MatrixConfig;

/// Messages a sync returns per room at most; more arriving while the bot is
/// away are a gap (logged). Synapse's default is 10.
const TIMELINE_LIMIT: u32 = 100;
/// Long-poll time of one sync.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Answers being worked on at once.
const CONCURRENT_ANSWERS: usize = 32;
/// The longest pause between sync attempts while the homeserver is away.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What answering needs, shared by the tasks.
pub(crate) struct Ctx {
    pub engine: Arc<Engine>,
    pub client: Client,
    pub inbox: Inbox,
    pub me: OwnedUserId,
    /// Config `admins`: may make the bot leave any room and announce.
    pub admins: Vec<String>,
}

/// Runs the Matrix bot until `shutdown` resolves. Fails only at start (no
/// credentials, login refused); afterwards it rides out every outage.
pub async fn run(
    cfg: &MatrixConfig,
    engine: Arc<Engine>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let paths = session::Paths::under(engine.store().dir());
    let inbox = Inbox::open(engine.store())?;
    tokio::pin!(shutdown);
    // A first login waits for an unreachable homeserver; SIGTERM must still
    // stop it.
    if cfg.reset_device {
        match session::reset(&paths)? {
            Some(to) => tracing::warn!(
                moved_to = %to.display(),
                "matrix: --reset-matrix-device: the old device's session and keys were moved aside; logging in as a new device"
            ),
            None => tracing::info!("matrix: --reset-matrix-device: no device to reset"),
        }
    }
    let (client, new_device) = tokio::select! {
        _ = &mut shutdown => return Ok(()),
        c = session::connect(cfg, &paths) => c?,
    };
    if new_device {
        // A new device store knows no room: sync from scratch, not from the
        // old device's position.
        inbox.forget_sync_token().await?;
    }
    let me = client
        .user_id()
        .context("the Matrix client has no user id after login")?
        .to_owned();
    let display_name = client.account().get_display_name().await.ok().flatten();
    let names = Names::new(me.as_str(), display_name);
    inbox.prune();
    let ctx = Arc::new(Ctx {
        engine,
        client: client.clone(),
        inbox: inbox.clone(),
        me,
        admins: cfg.admins.clone(),
    });
    let invites = invites::Joiner::new(client.clone(), cfg.allowed_inviters.clone());
    let permits = Arc::new(Semaphore::new(CONCURRENT_ANSWERS));
    let mut tasks = JoinSet::new();

    // Answers cut off by the previous run.
    let left_over = inbox.pending();
    if !left_over.is_empty() {
        tracing::info!(
            count = left_over.len(),
            "matrix: answering messages taken in before the restart"
        );
    }
    for job in left_over {
        spawn_job(&mut tasks, &ctx, &permits, job);
    }

    let mut filter = FilterDefinition::with_lazy_loading();
    filter.room.timeline.limit = Some(UInt::from(TIMELINE_LIMIT));
    let settings = SyncSettings::default()
        .filter(filter.into())
        .timeout(SYNC_TIMEOUT);
    let mut token = inbox.sync_token()?;
    let mut backoff = Duration::from_secs(1);
    let mut was_down = false;
    let mut ready = false;

    loop {
        let mut s = settings.clone();
        if let Some(t) = &token {
            s = s.token(t.clone());
        } else {
            // The very first start: skip the history, answer from now on.
            s = s.timeout(Duration::ZERO);
        }
        let synced = tokio::select! {
            _ = &mut shutdown => break,
            r = client.sync_once(s) => r,
        };
        let response = match synced {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "matrix: sync failed; the homeserver may be down");
                was_down = true;
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if was_down {
            tracing::info!("matrix: homeserver reachable again; sync resumed");
            was_down = false;
        }
        backoff = Duration::from_secs(1);
        for room_id in response.rooms.invited.keys() {
            invites.on_invite(room_id);
        }
        let jobs = if token.is_none() {
            tracing::info!(
                rooms = response.rooms.joined.len(),
                "matrix: first start; earlier messages are not answered"
            );
            Vec::new()
        } else {
            collect_jobs(&ctx, &names, &response).await
        };
        if let Err(e) = inbox.take_in(&jobs, &response.next_batch).await {
            // Without a durable inbox the answers could be lost or doubled
            // on a crash; answer anyway, and try to save again next sync.
            tracing::error!(error = %e, "matrix: cannot save the sync position");
        }
        token = Some(response.next_batch);
        if !ready {
            ready = true;
            // Only now does the client know its rooms: a notification sent
            // earlier would find none and drop the room's subscription.
            ctx.engine
                .hub()
                .register(Arc::new(deliver::MxDeliver::new(client.clone())));
            tracing::info!(user = %ctx.me, "matrix: ready");
        }
        for job in jobs {
            spawn_job(&mut tasks, &ctx, &permits, job);
        }
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!("matrix: stopping; waiting up to 5 s for answers in progress");
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(())
}

fn spawn_job(tasks: &mut JoinSet<()>, ctx: &Arc<Ctx>, permits: &Arc<Semaphore>, job: Job) {
    let ctx = Arc::clone(ctx);
    let permits = Arc::clone(permits);
    tasks.spawn(async move {
        let Ok(_permit) = permits.acquire_owned().await else {
            return;
        };
        let kind = send::handle(&ctx, &job).await;
        ctx.inbox.done(&job.event_id).await;
        if let Some(kind) = kind {
            tracing::info!(room = %job.room_id, kind, "matrix: message answered");
        }
    });
}

/// The messages of one sync that the bot must answer, in order.
async fn collect_jobs(
    ctx: &Ctx,
    names: &Names,
    response: &matrix_sdk::sync::SyncResponse,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut queued: HashSet<String> = HashSet::new();
    for (room_id, update) in &response.rooms.joined {
        let Some(room) = ctx.client.get_room(room_id) else {
            continue;
        };
        if update.timeline.limited {
            tracing::warn!(room = %room_id, "matrix: more messages arrived than one sync returns; the oldest were not seen");
        }
        for ev in &update.timeline.events {
            if let TimelineEventKind::UnableToDecrypt { utd_info, .. } = &ev.kind {
                tracing::warn!(room = %room_id, reason = ?utd_info.reason, "matrix: cannot decrypt a message");
                continue;
            }
            let Ok(AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::RoomMessage(
                SyncMessageLikeEvent::Original(m),
            ))) = ev.raw().deserialize()
            else {
                continue;
            };
            let event_id = m.event_id.to_string();
            match ctx.inbox.seen(&event_id) {
                Ok(false) => {}
                Ok(true) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "matrix: cannot read the inbox");
                    continue;
                }
            }
            if !queued.insert(event_id.clone()) {
                continue;
            }
            if let Some((action, direct)) = decide(ctx, names, &room, &m).await {
                jobs.push(Job {
                    room_id: room_id.to_string(),
                    event_id,
                    sender: m.sender.to_string(),
                    direct,
                    action,
                });
            }
        }
    }
    jobs
}

/// What to do about one message, if anything, and whether the room is a
/// one-to-one chat.
async fn decide(
    ctx: &Ctx,
    names: &Names,
    room: &Room,
    m: &matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent,
) -> Option<(Action, bool)> {
    let (body, notice) = match &m.content.msgtype {
        MessageType::Text(t) => (t.body.as_str(), false),
        MessageType::Notice(n) => (n.body.as_str(), true),
        _ => return None,
    };
    let reply_to = match &m.content.relates_to {
        // An edit is not a new question.
        Some(Relation::Replacement(_)) => return None,
        Some(Relation::Reply(r)) => Some(r.in_reply_to.event_id.clone()),
        _ => None,
    };
    let mentions_bot = m
        .content
        .mentions
        .as_ref()
        .is_some_and(|mn| mn.user_ids.contains(&ctx.me));
    let direct = is_one_to_one(room, &m.sender, &ctx.me).await;
    let mut incoming = Incoming {
        from_self: m.sender == ctx.me,
        notice,
        direct,
        text: route::strip_reply_fallback(body),
        mentions_bot,
        reply_to_bot: false,
    };
    let mut decision = route(incoming, names);
    if decision == Route::Ignore && !incoming.from_self && !notice {
        if let Some(id) = reply_to {
            incoming.reply_to_bot = replies_to_me(room, &id, &ctx.me).await;
            decision = route(incoming, names);
        }
    }
    match decision {
        Route::Answer(text) => Some((Action::Answer(text), direct)),
        Route::Leave => Some((Action::Leave, direct)),
        Route::Ignore => None,
    }
}

/// Whether `room` is a one-to-one chat between the bot and `sender`: its
/// only members (joined or invited) are the bot and `sender`, who has
/// joined.
///
/// Not the room's `is_direct` flag (`m.direct`): that is set when a room is
/// created as a direct chat and stays when more people join, and a
/// one-to-one room makes its member a room admin (`!subscribe`, `!lang`)
/// and every message a question. Counts unknown to the client (0) make
/// the room a group: the safe side.
async fn is_one_to_one(room: &Room, sender: &UserId, me: &UserId) -> bool {
    if sender == me || room.joined_members_count() != 2 || room.invited_members_count() != 0 {
        return false;
    }
    match room.get_member_no_sync(sender).await {
        Ok(Some(m)) => *m.membership() == MembershipState::Join,
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(room = %room.room_id(), error = %e, "matrix: cannot read a member");
            false
        }
    }
}

/// Whether event `id` in `room` was sent by the bot (one fetch at most,
/// and only for replies in group rooms that nothing else addressed).
async fn replies_to_me(
    room: &Room,
    id: &matrix_sdk::ruma::EventId,
    me: &matrix_sdk::ruma::UserId,
) -> bool {
    match room.load_or_fetch_event(id, None).await {
        Ok(ev) => ev
            .raw()
            .get_field::<OwnedUserId>("sender")
            .ok()
            .flatten()
            .is_some_and(|s| s == me),
        Err(e) => {
            tracing::debug!(error = %e, "matrix: cannot load the message replied to");
            false
        }
    }
}
