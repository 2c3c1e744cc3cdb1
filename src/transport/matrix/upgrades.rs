//! Room upgrades: when a room the bot is in is replaced by a new one (an
//! `m.room.tombstone` naming its successor, what Element's "upgrade room"
//! and Synapse's `/upgrade` do), the bot joins the successor and moves the
//! old room's subscriptions and `!lang` there, so answers and notifications
//! follow the conversation instead of going to a room nobody reads (where
//! the bot, muted by the upgrade, could not post anyway).
//!
//! Who can trigger a move: only the *old* room's tombstone, which needs the
//! old room's highest power level by default, names the new room. A room
//! that merely claims a predecessor in its create event moves nothing unless
//! that predecessor's tombstone points back at it.
//!
//! A private room's successor needs an invite (Element sends it to every
//! member it upgrades with): the bot tries to join, and if refused it waits
//! (retrying with growing pauses, [`crate::retry::MATRIX_SUCCESSOR`]) for
//! the invite, which the invite handler accepts; the move happens in the
//! sync that brings the joined successor.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use matrix_sdk::ruma::{OwnedRoomId, OwnedServerName, RoomId, RoomOrAliasId};
use matrix_sdk::{Room, RoomState};

use super::Ctx;
use crate::facts::ChatKey;

use crate::retry::{Pauses, MATRIX_SUCCESSOR};

/// Join attempts by successor room: (next allowed, the pauses to come).
#[derive(Default)]
pub(crate) struct Upgrades {
    tries: Mutex<HashMap<OwnedRoomId, (Instant, Pauses)>>,
}

impl Upgrades {
    /// Looks at `rooms` (those of a sync, or every joined room at start):
    /// follows each upgrade found from them, as old room or as successor.
    pub(crate) async fn follow(&self, ctx: &Ctx, rooms: Vec<Room>) {
        for room in rooms {
            // The room as the old one of an upgrade…
            if room.successor_room().is_some() {
                self.follow_one(ctx, &room).await;
            }
            // …or as the new one, just joined (say on an invite).
            let Some(prev) = room.predecessor_room() else {
                continue;
            };
            let Some(old) = ctx.client.get_room(&prev.room_id) else {
                continue;
            };
            if old.successor_room().map(|s| s.room_id) == Some(room.room_id().to_owned()) {
                self.follow_one(ctx, &old).await;
            }
        }
    }

    /// `old` is tombstoned: join its successor if need be, then move.
    async fn follow_one(&self, ctx: &Ctx, old: &Room) {
        let Some(next) = old.successor_room() else {
            return;
        };
        let joined = ctx
            .client
            .get_room(&next.room_id)
            .is_some_and(|r| r.state() == RoomState::Joined);
        if !joined {
            if old.state() != RoomState::Joined || !self.may_try(&next.room_id) {
                return;
            }
            let via = via(ctx, old, &next.room_id);
            match ctx
                .client
                .join_room_by_id_or_alias(<&RoomOrAliasId>::from(&*next.room_id), &via)
                .await
            {
                Ok(_) => {
                    tracing::info!(from = %old.room_id(), to = %next.room_id, "matrix: room upgraded; joined its successor");
                    self.done(&next.room_id);
                }
                Err(e) => {
                    tracing::warn!(from = %old.room_id(), to = %next.room_id, error = %e, "matrix: room upgraded, but its successor cannot be joined yet (an invite to it is accepted as usual)");
                    return;
                }
            }
        }
        let (from, to) = (
            ChatKey::matrix(old.room_id()),
            ChatKey::matrix(&next.room_id),
        );
        let hub = ctx.app.hub().clone();
        let moved = tokio::task::spawn_blocking(move || hub.chat_moved(&from, &to)).await;
        if let Ok(true) = moved {
            tracing::info!(from = %old.room_id(), to = %next.room_id, "matrix: room upgraded; its subscriptions and language moved to the successor");
        }
    }

    /// Whether a join of `room` may be tried now (growing pauses between
    /// refused attempts).
    fn may_try(&self, room: &RoomId) -> bool {
        let Ok(mut tries) = self.tries.lock() else {
            return false;
        };
        let now = Instant::now();
        match tries.get_mut(room) {
            Some((next, _)) if *next > now => false,
            Some((next, pauses)) => {
                *next = now + pauses.next_or_last();
                true
            }
            None => {
                let mut pauses = MATRIX_SUCCESSOR.pauses();
                let next = now + pauses.next_or_last();
                tries.insert(room.to_owned(), (next, pauses));
                true
            }
        }
    }

    fn done(&self, room: &RoomId) {
        if let Ok(mut tries) = self.tries.lock() {
            tries.remove(room);
        }
    }
}

/// Servers to join `next` through: its own (room ids before version 12
/// name one), the old room's, and the bot's.
fn via(ctx: &Ctx, old: &Room, next: &RoomId) -> Vec<OwnedServerName> {
    let mut out: Vec<OwnedServerName> = Vec::new();
    for s in [
        next.server_name().map(ToOwned::to_owned),
        old.room_id().server_name().map(ToOwned::to_owned),
        Some(ctx.me.server_name().to_owned()),
    ]
    .into_iter()
    .flatten()
    {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}
