//! Notifications to Matrix rooms: the [`Deliver`] the notification worker
//! sends through.
//!
//! A notification is an `m.notice` with HTML, like an answer but not a
//! reply, sent part by part as the worker asks. Matrix has no published
//! per-room limits; the homeserver's `M_LIMIT_EXCEEDED` is waited out by the
//! SDK's HTTP layer, and one that still comes back is handed to the worker
//! as a retry-after.
//!
//! Why each part carries a transaction id of its own making
//! ([`Part::idempotency_key`], the same on every attempt and after a
//! restart): the worker abandons a send after two minutes and the SDK gives
//! up on a dropped connection, both possibly after the homeserver took the
//! event; the retry then reuses the id and the homeserver answers with the
//! event it already has instead of posting the notice twice.
//!
//! What a refusal means: a room the bot is no longer in (left, kicked,
//! banned) drops its subscription; `M_FORBIDDEN` while the bot is still a
//! member (muted by the room's power levels) only pauses the room
//! ([`Outcome::Blocked`]); an upgraded room (tombstone) whose successor the
//! bot has joined sends the delivery there ([`Outcome::Migrated`]).

use std::time::Duration;

use futures::future::BoxFuture;
use matrix_sdk::ruma::api::client::state::get_state_event_for_key;
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::events::StateEventType;
use matrix_sdk::ruma::{OwnedTransactionId, RoomId};
use matrix_sdk::{Client, Room, RoomState};

use super::failure::{classify, Failure};
use super::send::MATRIX_LIMIT;
use crate::facts::{ChatKey, Platform};
use crate::notify::{Deliver, Outcome, Part};
use crate::reply::{render_matrix, Reply};

/// Sends notifications with the bot's logged-in client.
pub struct MxDeliver {
    client: Client,
}

impl MxDeliver {
    pub fn new(client: Client) -> MxDeliver {
        MxDeliver { client }
    }

    /// The upgraded room's successor, if the bot is in it.
    fn joined_successor(&self, room: &Room) -> Option<ChatKey> {
        let next = room.successor_room()?;
        let joined = self
            .client
            .get_room(&next.room_id)
            .is_some_and(|r| r.state() == RoomState::Joined);
        joined.then(|| ChatKey::matrix(&next.room_id))
    }

    /// Whether the homeserver says the bot is a member of `room` now (the
    /// client's own view may not have synced a kick yet). `None`: cannot
    /// tell.
    async fn member_now(&self, room: &Room) -> Option<bool> {
        let me = self.client.user_id()?;
        let req = get_state_event_for_key::v3::Request::new(
            room.room_id().to_owned(),
            StateEventType::RoomMember,
            me.to_string(),
        );
        match self.client.send(req).await {
            Ok(r) => {
                let v: serde_json::Value = serde_json::from_str(r.event_or_content.get()).ok()?;
                let m = v
                    .get("membership")
                    .or_else(|| v.pointer("/content/membership"));
                Some(m.and_then(|m| m.as_str()) == Some("join"))
            }
            // Not allowed to read the room's state: not in it.
            Err(e)
                if matches!(
                    e.client_api_error_kind(),
                    Some(ErrorKind::Forbidden) | Some(ErrorKind::NotFound)
                ) =>
            {
                Some(false)
            }
            Err(_) => None,
        }
    }

    /// What a refused send means (see the module docs).
    async fn refused(&self, room: &Room, e: &matrix_sdk::Error) -> Outcome {
        match self.member_now(room).await {
            Some(false) => return Outcome::Gone(format!("the bot is not in the room: {e}")),
            None => return Outcome::Transient(format!("refused, and membership unknown: {e}")),
            Some(true) => {}
        }
        if let Some(to) = self.joined_successor(room) {
            return Outcome::Migrated(to);
        }
        if room.is_tombstoned() {
            return Outcome::Blocked(format!(
                "the room was upgraded and the bot is not in its successor yet: {e}"
            ));
        }
        Outcome::Blocked(e.to_string())
    }
}

impl Deliver for MxDeliver {
    fn platform(&self) -> Platform {
        Platform::Matrix
    }

    /// One notice per room per second at most: rooms are read by people.
    fn chat_interval(&self, _chat: &ChatKey) -> Duration {
        Duration::from_secs(1)
    }

    fn parts(&self, _chat: &ChatKey, reply: &Reply) -> usize {
        render_matrix(reply, MATRIX_LIMIT).len()
    }

    fn deliver<'a>(&'a self, part: Part<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let chat = part.chat;
            let Some(room_id) = chat.matrix_room().and_then(|r| <&RoomId>::try_from(r).ok()) else {
                return Outcome::Rejected(format!("not a Matrix room key: {chat}"));
            };
            let Some(room) = self.client.get_room(room_id) else {
                return Outcome::Gone("the bot is not in this room".into());
            };
            if room.state() != RoomState::Joined {
                return Outcome::Gone(format!("the bot's membership is {:?}", room.state()));
            }
            if let Some(to) = self.joined_successor(&room) {
                return Outcome::Migrated(to);
            }
            let Some((body, html)) = render_matrix(part.reply, MATRIX_LIMIT)
                .into_iter()
                .nth(part.index)
            else {
                return Outcome::Delivered;
            };
            let txn = OwnedTransactionId::from(part.idempotency_key());
            let sent = room
                .send(RoomMessageEventContent::notice_html(body, html))
                .with_transaction_id(txn)
                .await;
            let Err(e) = sent else {
                return Outcome::Delivered;
            };
            match classify(&e) {
                Failure::Forbidden => self.refused(&room, &e).await,
                Failure::RetryAfter(d) => Outcome::RetryAfter(d),
                Failure::Transient => Outcome::Transient(e.to_string()),
                Failure::Rejected => Outcome::Rejected(e.to_string()),
            }
        })
    }
}
