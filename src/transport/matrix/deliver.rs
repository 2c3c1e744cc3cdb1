//! Notifications to Matrix rooms: the [`Deliver`] the notification worker
//! sends through.
//!
//! A notification is an `m.notice` with HTML, like an answer but not a
//! reply. Matrix has no published per-room limits; the homeserver's
//! `M_LIMIT_EXCEEDED` is waited out by the SDK's HTTP layer, and one that
//! still comes back is handed to the worker as a retry-after. A room the bot
//! is no longer in (left, kicked, banned) drops its subscription.

use std::time::Duration;

use futures::future::BoxFuture;
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::RoomId;
use matrix_sdk::{Client, RoomState};

use super::send::MATRIX_LIMIT;
use crate::notify::{Deliver, Outcome};
use crate::reply::{render_matrix, Reply};

/// Sends notifications with the bot's logged-in client.
pub struct MxDeliver {
    client: Client,
}

impl MxDeliver {
    pub fn new(client: Client) -> MxDeliver {
        MxDeliver { client }
    }
}

impl Deliver for MxDeliver {
    fn platform(&self) -> &'static str {
        "mx"
    }

    /// One notice per room per second at most: rooms are read by people.
    fn chat_interval(&self, _chat: &str) -> Duration {
        Duration::from_secs(1)
    }

    fn deliver<'a>(&'a self, chat: &'a str, reply: &'a Reply) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some(room_id) = chat
                .strip_prefix("mx:")
                .and_then(|r| <&RoomId>::try_from(r).ok())
            else {
                return Outcome::Rejected(format!("not a Matrix room key: {chat}"));
            };
            let Some(room) = self.client.get_room(room_id) else {
                return Outcome::Gone("the bot is not in this room".into());
            };
            if room.state() != RoomState::Joined {
                return Outcome::Gone(format!("the bot's membership is {:?}", room.state()));
            }
            for (body, html) in render_matrix(reply, MATRIX_LIMIT) {
                if let Err(e) = room
                    .send(RoomMessageEventContent::notice_html(body, html))
                    .await
                {
                    return classify(&e);
                }
            }
            Outcome::Delivered
        })
    }
}

/// What a failed send means for the delivery.
fn classify(e: &matrix_sdk::Error) -> Outcome {
    let Some(api) = e.as_client_api_error() else {
        return Outcome::Transient(e.to_string());
    };
    match e.client_api_error_kind() {
        Some(ErrorKind::LimitExceeded(l)) => Outcome::RetryAfter(
            l.retry_after
                .as_ref()
                .and_then(|r| match r {
                    matrix_sdk::ruma::api::error::RetryAfter::Delay(d) => Some(*d),
                    _ => None,
                })
                .unwrap_or(Duration::from_secs(5)),
        ),
        Some(ErrorKind::Forbidden) => Outcome::Gone(e.to_string()),
        _ if api.status_code.is_server_error() => Outcome::Transient(e.to_string()),
        _ => Outcome::Rejected(e.to_string()),
    }
}
