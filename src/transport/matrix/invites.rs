//! Joining rooms on invite.
//!
//! Synapse may send the invite before the room is ready to be joined (a
//! known race, see matrix-rust-sdk's `autojoin` example), so a failed join
//! is retried with a doubling pause, up to about an hour
//! ([`crate::retry::MATRIX_JOIN`]). Invites from
//! users outside `allowed_inviters` are declined (and logged).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use matrix_sdk::ruma::RoomId;
use matrix_sdk::Client;

use super::route::invite_allowed;

pub struct Joiner {
    client: Client,
    allowed: Vec<String>,
    /// Rooms with a join in progress: an invite shows up in every sync
    /// until the join completes, and must start one join only.
    busy: Arc<Mutex<HashSet<String>>>,
}

impl Joiner {
    pub fn new(client: Client, allowed: Vec<String>) -> Joiner {
        Joiner {
            client,
            allowed,
            busy: Arc::default(),
        }
    }

    pub fn on_invite(&self, room_id: &RoomId) {
        let key = room_id.to_string();
        match self.busy.lock() {
            Ok(mut b) => {
                if !b.insert(key.clone()) {
                    return;
                }
            }
            Err(_) => return,
        }
        let client = self.client.clone();
        let allowed = self.allowed.clone();
        let busy = Arc::clone(&self.busy);
        let room_id = room_id.to_owned();
        tokio::spawn(async move {
            accept_or_decline(&client, &room_id, &allowed).await;
            if let Ok(mut b) = busy.lock() {
                b.remove(&key);
            }
        });
    }
}

async fn accept_or_decline(client: &Client, room_id: &RoomId, allowed: &[String]) {
    let Some(room) = client.get_room(room_id) else {
        return;
    };
    let inviter = match room.invite_details().await {
        Ok(d) => d.inviter_id.to_string(),
        Err(e) => {
            tracing::warn!(room = %room_id, error = %e, "matrix: cannot read an invite");
            return;
        }
    };
    if !invite_allowed(&inviter, allowed) {
        tracing::info!(room = %room_id, inviter, "matrix: invite declined (not in allowed_inviters)");
        if let Err(e) = room.leave().await {
            tracing::warn!(room = %room_id, error = %e, "matrix: cannot decline an invite");
        }
        return;
    }
    let mut pauses = crate::retry::MATRIX_JOIN.pauses();
    for attempt in 1.. {
        let e = match room.join().await {
            Ok(()) => {
                tracing::info!(room = %room_id, inviter, "matrix: joined room on invite");
                return;
            }
            Err(e) => e,
        };
        let Some(pause) = pauses.next() else {
            tracing::warn!(room = %room_id, attempt, error = %e, "matrix: join failed");
            tracing::error!(room = %room_id, "matrix: gave up joining after {attempt} attempts");
            return;
        };
        tracing::warn!(room = %room_id, attempt, error = %e, retry_in = ?pause, "matrix: join failed");
        tokio::time::sleep(pause).await;
    }
}
