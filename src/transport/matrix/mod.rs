//! The Matrix transport (matrix-sdk): the bot in rooms, encrypted or not.
//!
//! - `session`: log in once, then restore the same device (and its keys).
//! - [`route`](mod@route): the pure decision whether a message is for the bot.
//! - `inbox`: the bot's own sync token and the messages to answer, kept in
//!   sled so a kill -9 neither loses nor repeats an answer.
//! - `send`: replies as `m.notice` with HTML, threaded as a reply;
//!   `!leave`.
//! - [`image`]: charts as `m.image` (an encrypted attachment in encrypted
//!   rooms), each uploaded once per dataset version and kind of room.
//! - `invites`: joining on invite, with an allow-list and backoff.
//! - `deliver`: notifications to subscribed rooms (the notify worker's
//!   [`Deliver`](crate::notify::Deliver) for `mx:` chats).
//! - `failure`: what a failed request means (retry, wait, refused), one
//!   pure function for all of the above.
//! - `upgrades`: following a room upgrade to its successor, with the
//!   room's subscriptions and language.
//!
//! The loop is matrix-sdk's `sync_once` driven by hand rather than
//! `Client::sync`: each sync's messages go to the inbox before the token
//! moves, and a homeserver that is down or restarting only makes the loop
//! wait (1 s doubling to 30 s) — it never exits. Rate limits
//! (`M_LIMIT_EXCEEDED`) are obeyed by the SDK's HTTP layer, which waits the
//! `retry_after_ms` the server asks for.
//!
//! A sync returns at most `TIMELINE_LIMIT` messages per room; after a
//! longer absence the room's timeline is `limited` and the bot pages back
//! (`/messages`) to its previous sync position for the rest, so messages
//! sent while it was away are answered (by the usual rules: all of them in
//! one-to-one rooms, those addressed to the bot in groups) instead of lost.

mod deliver;
mod failure;
pub mod image;
mod inbox;
mod invites;
pub mod route;
mod send;
mod session;
mod upgrades;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::{TimelineEvent, TimelineEventKind};
use matrix_sdk::room::MessagesOptions;
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
use crate::app::App;
use crate::config::MatrixConfig;
use crate::ops::record as ops;
use crate::retry;

/// Messages a sync returns per room at most; more arriving while the bot is
/// away are paged back for (see the module docs). Synapse's default is 10.
const TIMELINE_LIMIT: u32 = 100;
/// Messages paged back per room after an absence, at most; older ones are
/// a gap (logged). Bounds the work one stale room can cause.
const BACKFILL_MAX: usize = 1_000;
/// Long-poll time of one sync.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Answers being worked on at once.
const CONCURRENT_ANSWERS: usize = 32;

/// What answering needs, shared by the tasks.
pub(crate) struct Ctx {
    pub app: Arc<App>,
    pub client: Client,
    pub inbox: Inbox,
    pub me: OwnedUserId,
    /// Config `admins`: may make the bot leave any room and announce.
    pub admins: Vec<String>,
    /// Charts: PNGs, stored content URIs / encrypted files, one upload per
    /// chart at a time.
    pub images: image::Images,
}

/// Runs the Matrix bot until `shutdown` resolves. Fails only at start (no
/// credentials, login refused); afterwards it rides out every outage.
pub async fn run(
    cfg: &MatrixConfig,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let paths = session::Paths::under(app.store().dir());
    let inbox = Inbox::open(app.store())?;
    tokio::spawn(inbox.clone().writer());
    tokio::pin!(shutdown);
    // A first login waits for an unreachable homeserver; SIGTERM must still
    // stop it.
    let client = tokio::select! {
        _ = &mut shutdown => return Ok(()),
        c = login(cfg, &paths, &inbox) => c?,
    };
    let me = client
        .user_id()
        .context("the Matrix client has no user id after login")?
        .to_owned();
    let display_name = client.account().get_display_name().await.ok().flatten();
    let names = Names::new(me.as_str(), display_name);
    inbox.prune();
    let images = image::Images::new(
        Arc::clone(&app),
        crate::transport::media::MediaIds::open(app.store(), image::TREE)?,
    );
    let ctx = Arc::new(Ctx {
        app,
        images,
        client: client.clone(),
        inbox: inbox.clone(),
        me,
        admins: cfg.admins.clone(),
    });
    let mut syncer = Syncer {
        token: inbox.sync_token()?,
        invites: invites::Joiner::new(client.clone(), cfg.allowed_inviters.clone()),
        upgrades: upgrades::Upgrades::default(),
        permits: Arc::new(Semaphore::new(CONCURRENT_ANSWERS)),
        tasks: JoinSet::new(),
        ready: false,
        ctx,
        names,
    };
    syncer.answer_left_over();
    syncer.run(&mut shutdown).await;
    syncer.stop().await;
    Ok(())
}

/// Logs in (or restores the session), moving the old device aside first on
/// `--reset-matrix-device`; a new device syncs from scratch.
async fn login(
    cfg: &MatrixConfig,
    paths: &session::Paths,
    inbox: &Inbox,
) -> anyhow::Result<Client> {
    if cfg.reset_device {
        match session::reset(paths)? {
            Some(to) => tracing::warn!(
                moved_to = %to.display(),
                "matrix: --reset-matrix-device: the old device's session and keys were moved aside; logging in as a new device"
            ),
            None => tracing::info!("matrix: --reset-matrix-device: no device to reset"),
        }
    }
    let (client, new_device) = session::connect(cfg, paths).await?;
    if new_device {
        // A new device store knows no room: sync from scratch, not from the
        // old device's position.
        inbox.forget_sync_token().await?;
    }
    Ok(client)
}

/// The sync loop's state: where the bot is in the room history, and the
/// answers in progress.
struct Syncer {
    ctx: Arc<Ctx>,
    names: Names,
    /// The bot's own sync position (`None`: the very first start).
    token: Option<String>,
    invites: invites::Joiner,
    upgrades: upgrades::Upgrades,
    /// Bounds the answers worked on at once.
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
    /// The first sync is done: rooms are known, the deliverer registered.
    ready: bool,
}

impl Syncer {
    /// Answers cut off by the previous run.
    fn answer_left_over(&mut self) {
        let left_over = self.ctx.inbox.pending();
        ops::inbox_depth(ops::Transport::Matrix, left_over.len());
        if !left_over.is_empty() {
            tracing::info!(
                count = left_over.len(),
                "matrix: answering messages taken in before the restart"
            );
        }
        for job in left_over {
            spawn_job(&mut self.tasks, &self.ctx, &self.permits, job);
        }
    }

    /// Syncs until `shutdown`, riding out a homeserver that is away (with
    /// the pauses of [`crate::retry::MATRIX_SYNC`]).
    async fn run(&mut self, shutdown: &mut (impl Future<Output = ()> + Unpin)) {
        let mut filter = FilterDefinition::with_lazy_loading();
        filter.room.timeline.limit = Some(UInt::from(TIMELINE_LIMIT));
        let settings = SyncSettings::default()
            .filter(filter.into())
            .timeout(SYNC_TIMEOUT);
        let mut pauses = retry::MATRIX_SYNC.pauses();
        let mut was_down = false;
        loop {
            let mut s = settings.clone();
            if let Some(t) = &self.token {
                s = s.token(t.clone());
            } else {
                // The very first start: skip the history, answer from now on.
                s = s.timeout(Duration::ZERO);
            }
            let synced = tokio::select! {
                _ = &mut *shutdown => return,
                r = self.ctx.client.sync_once(s) => r,
            };
            let response = match synced {
                Ok(r) => r,
                Err(e) => {
                    ops::poll_failed(ops::Transport::Matrix, "sync", sync_reason(&e));
                    ops::retry(ops::Transport::Matrix, ops::Path::Poll);
                    let wait = pauses.next_or_last();
                    tracing::warn!(error = %e, retry_in = ?wait, "matrix: sync failed; the homeserver may be down");
                    was_down = true;
                    if retry::pause(wait, &mut *shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            ops::polled(ops::Transport::Matrix);
            if was_down {
                tracing::info!("matrix: homeserver reachable again; sync resumed");
                was_down = false;
            }
            pauses = retry::MATRIX_SYNC.pauses();
            self.on_sync(response).await;
        }
    }

    /// One sync's response: invites, the messages to answer (stored in the
    /// inbox with the new position before any is answered), room upgrades.
    async fn on_sync(&mut self, response: matrix_sdk::sync::SyncResponse) {
        for room_id in response.rooms.invited.keys() {
            self.invites.on_invite(room_id);
        }
        let jobs = match &self.token {
            None => {
                tracing::info!(
                    rooms = response.rooms.joined.len(),
                    "matrix: first start; earlier messages are not answered"
                );
                Vec::new()
            }
            Some(since) => collect_jobs(&self.ctx, &self.names, &response, since).await,
        };
        if let Err(e) = self.ctx.inbox.take_in(&jobs, &response.next_batch).await {
            // Without a durable inbox the answers could be lost or doubled
            // on a crash; answer anyway, and try to save again next sync.
            tracing::error!(error = %e, "matrix: cannot save the sync position");
        }
        self.token = Some(response.next_batch.clone());
        let client = &self.ctx.client;
        if !self.ready {
            self.ready = true;
            // Only now does the client know its rooms: a notification sent
            // earlier would find none and drop the room's subscription.
            self.ctx
                .app
                .hub()
                .register(Arc::new(deliver::MxDeliver::new(client.clone())));
            // Upgrades that happened while the bot was away.
            self.upgrades.follow(&self.ctx, client.joined_rooms()).await;
            tracing::info!(user = %self.ctx.me, "matrix: ready");
        } else {
            let rooms = response
                .rooms
                .joined
                .keys()
                .filter_map(|id| client.get_room(id))
                .collect();
            self.upgrades.follow(&self.ctx, rooms).await;
        }
        for job in jobs {
            spawn_job(&mut self.tasks, &self.ctx, &self.permits, job);
        }
        while self.tasks.try_join_next().is_some() {}
    }

    /// Gives the answers in progress up to 5 s, then cancels the rest (they
    /// stay in the inbox and are answered after the restart).
    async fn stop(mut self) {
        tracing::info!("matrix: stopping; waiting up to 5 s for answers in progress");
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        // The answers of the last moments, which the writer has not yet
        // recorded.
        self.ctx.inbox.write_answered_async().await;
    }
}

/// A failed sync in words from a fixed set, for `/healthz`.
fn sync_reason(e: &matrix_sdk::Error) -> &'static str {
    match e.as_client_api_error().map(|a| a.status_code.as_u16()) {
        Some(401) => "the access token was rejected",
        Some(429) => "rate limited (429)",
        Some(s) if s >= 500 => "homeserver error",
        Some(_) => "refused by the homeserver",
        None => "homeserver unreachable",
    }
}

fn spawn_job(tasks: &mut JoinSet<()>, ctx: &Arc<Ctx>, permits: &Arc<Semaphore>, job: Job) {
    let ctx = Arc::clone(ctx);
    let permits = Arc::clone(permits);
    tasks.spawn(async move {
        let Ok(_permit) = permits.acquire_owned().await else {
            return;
        };
        let kind = at_most_once(&job.event_id, send::handle(&ctx, &job)).await;
        ctx.inbox.done(&job.event_id);
        if let Some(kind) = kind {
            tracing::info!(room = %job.room_id, kind, "matrix: message answered");
        }
    });
}

/// Runs a job's handling; a panic in it is logged and the job counts as
/// handled (`None`: nothing sent), so its message is recorded as done and
/// cannot come back — and panic again — after every restart. Telegram's
/// dispatcher drops a panicking handler's update the same way.
async fn at_most_once<F>(event_id: &str, handling: F) -> Option<String>
where
    F: std::future::Future<Output = Option<String>>,
{
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(handling).catch_unwind().await {
        Ok(kind) => kind,
        Err(_) => {
            tracing::error!(
                event_id,
                "matrix: handling a message panicked; the message is dropped"
            );
            None
        }
    }
}

/// The messages of one sync that the bot must answer, in order — with,
/// for a room whose timeline was cut short (`limited`), the messages
/// between the previous sync position `since` and the timeline, paged back.
async fn collect_jobs(
    ctx: &Ctx,
    names: &Names,
    response: &matrix_sdk::sync::SyncResponse,
    since: &str,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut queued: HashSet<String> = HashSet::new();
    for (room_id, update) in &response.rooms.joined {
        let Some(room) = ctx.client.get_room(room_id) else {
            continue;
        };
        if update.timeline.limited {
            let missed = match &update.timeline.prev_batch {
                Some(from) => backfill(&room, from, since).await,
                None => Vec::new(),
            };
            tracing::info!(room = %room_id, messages = missed.len(), "matrix: more messages arrived while away than one sync returns; the rest were paged back");
            for ev in &missed {
                consider(ctx, names, &room, ev, &mut queued, &mut jobs).await;
            }
        }
        for ev in &update.timeline.events {
            consider(ctx, names, &room, ev, &mut queued, &mut jobs).await;
        }
    }
    jobs
}

/// One event of a room's timeline: a job if the bot must answer it and has
/// not yet.
async fn consider(
    ctx: &Ctx,
    names: &Names,
    room: &Room,
    ev: &TimelineEvent,
    queued: &mut HashSet<String>,
    jobs: &mut Vec<Job>,
) {
    if let TimelineEventKind::UnableToDecrypt { utd_info, .. } = &ev.kind {
        tracing::warn!(room = %room.room_id(), reason = ?utd_info.reason, "matrix: cannot decrypt a message");
        return;
    }
    let Ok(AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::RoomMessage(
        SyncMessageLikeEvent::Original(m),
    ))) = ev.raw().deserialize()
    else {
        return;
    };
    let event_id = m.event_id.to_string();
    match ctx.inbox.seen(&event_id) {
        Ok(false) => {}
        Ok(true) => return,
        Err(e) => {
            tracing::error!(error = %e, "matrix: cannot read the inbox");
            return;
        }
    }
    if !queued.insert(event_id.clone()) {
        return;
    }
    if let Some((action, direct, reply_to)) = decide(ctx, names, room, &m).await {
        jobs.push(Job {
            room_id: room.room_id().to_string(),
            event_id,
            sender: m.sender.to_string(),
            direct,
            action,
            reply_to,
        });
    }
}

/// The events of `room` from `from` (a timeline's `prev_batch`) back to
/// `to` (the previous sync position), oldest first; at most
/// [`BACKFILL_MAX`], the oldest beyond that being a gap (logged).
async fn backfill(room: &Room, from: &str, to: &str) -> Vec<TimelineEvent> {
    let mut out: Vec<TimelineEvent> = Vec::new();
    let mut from = from.to_string();
    loop {
        let mut opts = MessagesOptions::backward().from(from.as_str());
        opts.to = Some(to.to_string());
        opts.limit = UInt::from(100u32);
        let page = match room.messages(opts).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(room = %room.room_id(), error = %e, "matrix: cannot page back through missed messages; the oldest are not answered");
                break;
            }
        };
        let done = page.chunk.is_empty() || page.end.is_none();
        out.extend(page.chunk);
        if out.len() >= BACKFILL_MAX {
            out.truncate(BACKFILL_MAX);
            tracing::warn!(room = %room.room_id(), kept = BACKFILL_MAX, "matrix: more messages missed than are paged back; the oldest are not answered");
            break;
        }
        match page.end {
            Some(end) if !done => from = end,
            _ => break,
        }
    }
    out.reverse();
    out
}

/// What to do about one message, if anything, whether the room is a
/// one-to-one chat, and the event it replies to if that is the bot's.
async fn decide(
    ctx: &Ctx,
    names: &Names,
    room: &Room,
    m: &matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent,
) -> Option<(Action, bool, Option<String>)> {
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
    // A reply to the bot is looked up (one fetch at most) when it decides
    // whether to answer, or which answer a question continues.
    let mut to_bot = None;
    if !incoming.from_self && !notice {
        if let Some(id) = reply_to {
            if decision != Route::Leave {
                incoming.reply_to_bot = replies_to_me(room, &id, &ctx.me).await;
                if incoming.reply_to_bot {
                    to_bot = Some(id.to_string());
                }
                if decision == Route::Ignore {
                    decision = route(incoming, names);
                }
            }
        }
    }
    match decision {
        Route::Answer(text) => Some((Action::Answer(text), direct, to_bot)),
        Route::Leave => Some((Action::Leave, direct, None)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_counts_as_handled_with_nothing_sent() {
        let sent = at_most_once("$ok", async { Some("answer".to_string()) }).await;
        assert_eq!(sent.as_deref(), Some("answer"));
        let panicked = at_most_once("$boom", async { panic!("a bug in handling") }).await;
        assert_eq!(panicked, None);
    }
}
