//! Charts to Matrix: an `m.image` event (replying to the question) whose
//! `body` is the chart's alt text — the figures in sentences, for screen
//! readers and clients that show no pictures — with `info` (mimetype, size,
//! w, h), then an `m.notice` with the caption and the commands to type
//! (`!trade`, `!chart milestones`), since Matrix has no buttons.
//!
//! The failure this prevents: a chart uploaded to the media repository on
//! every request, and an encrypted room's picture readable by the server.
//! In an encrypted room the PNG is encrypted as an attachment (AES-CTR, the
//! key only inside the room's encrypted event) — what `Room::send_attachment`
//! does, done here step by step so the uploaded source can be kept: the
//! content URI (unencrypted rooms) or the encrypted-file descriptor
//! (encrypted rooms) is stored under the chart key in [`MediaIds`] (tree
//! `matrix_media`) and reused for every later send of that chart. Plain
//! URIs go only to unencrypted rooms and encrypted files only to encrypted
//! ones, so an encrypted room never gets a picture the server can read, and
//! a file's key never appears in an unencrypted room. One encrypted upload
//! serves every encrypted room: the picture is the same public chart in each,
//! so sharing its key between rooms reveals nothing. The descriptor holds
//! that key, so it lives in the store, which is readable by the bot's user
//! only.
//!
//! Pure decisions, tested below: which stored entry a room may use
//! ([`slot`]), the event's content ([`content`]) and the text after it
//! ([`follow_up`]).

use std::io::Cursor;
use std::sync::Arc;

use matrix_sdk::ruma::events::room::message::{ImageMessageEventContent, MessageType};
use matrix_sdk::ruma::events::room::{ImageInfo, MediaSource};
use matrix_sdk::ruma::UInt;
use matrix_sdk::{Client, Room};

use crate::app::App;
use crate::chart::{ChartKey, Png};
use crate::reply::{Block, ChartRef, Reply};
use crate::transport::media::{MediaIds, Uploads};

/// The sled tree of uploaded chart sources.
pub const TREE: crate::facts::Tree = crate::facts::Tree::MatrixMedia;

/// How a room takes a picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A plain content URI: unencrypted rooms.
    Plain,
    /// An encrypted attachment: encrypted rooms.
    Encrypted,
}

/// Which kind of upload a room may use, from whether it is encrypted.
pub fn slot(encrypted: bool) -> Slot {
    if encrypted {
        Slot::Encrypted
    } else {
        Slot::Plain
    }
}

/// The key of a chart's stored source for a kind of room:
/// `plain/trade/en/1f0c…`, `enc/trade/en/1f0c…`.
pub fn store_key(slot: Slot, chart: &ChartKey) -> String {
    match slot {
        Slot::Plain => format!("plain/{chart}"),
        Slot::Encrypted => format!("enc/{chart}"),
    }
}

/// A stored source, if it is readable and of the kind `slot` needs (a
/// hand-edited or corrupt entry is uploaded anew, never sent).
pub fn stored_source(json: &str, slot: Slot) -> Option<MediaSource> {
    let source: MediaSource = serde_json::from_str(json).ok()?;
    match (&source, slot) {
        (MediaSource::Plain(_), Slot::Plain) | (MediaSource::Encrypted(_), Slot::Encrypted) => {
            Some(source)
        }
        _ => None,
    }
}

/// The `m.image` content: `body` the alt text, `info` the PNG's mimetype,
/// size and pixel dimensions. No `filename`, so clients read `body` as the
/// picture's description, not as a caption.
pub fn content(alt: &str, source: MediaSource, png: &Png) -> ImageMessageEventContent {
    let mut info = ImageInfo::new();
    info.mimetype = Some("image/png".into());
    info.size = UInt::new(png.bytes.len() as u64);
    info.width = Some(UInt::from(png.width));
    info.height = Some(UInt::from(png.height));
    ImageMessageEventContent::new(alt.to_string(), source).info(Some(Box::new(info)))
}

/// The text sent after the picture: the caption (title, figures, ¶) and the
/// reply's own text; its buttons become the command line `render_matrix`
/// appends.
pub fn follow_up(reply: &Reply, image: &ChartRef) -> Reply {
    let mut r = reply.clone();
    r.image = None;
    r.blocks.insert(0, Block::Paragraph(image.caption.clone()));
    r
}

/// Matrix's side of charts: the engine (for PNGs), the stored sources and
/// the per-chart upload lock.
pub struct Images {
    app: Arc<App>,
    ids: MediaIds,
    uploads: Uploads,
}

impl Images {
    pub fn new(app: Arc<App>, ids: MediaIds) -> Images {
        Images {
            app,
            ids,
            uploads: Uploads::default(),
        }
    }

    /// The chart's PNG, rendered on a blocking thread.
    pub async fn png(&self, image: &ChartRef) -> Option<Arc<Png>> {
        let app = Arc::clone(&self.app);
        let (kind, lang) = (image.key.kind, image.key.lang);
        match tokio::task::spawn_blocking(move || app.engine().chart_png(kind, lang)).await {
            Ok(Ok(png)) => Some(png),
            Ok(Err(e)) => {
                tracing::warn!(chart = %image.key, error = %e, "matrix: cannot render a chart; sending its text");
                None
            }
            Err(e) => {
                tracing::error!(chart = %image.key, error = %e, "matrix: chart rendering failed");
                None
            }
        }
    }

    /// The source to send `png` to `room` with: the stored one for the
    /// room's kind, else a fresh upload (encrypted in an encrypted room),
    /// then stored. `None` when the upload failed.
    pub async fn source(&self, client: &Client, room: &Room, png: &Png) -> Option<MediaSource> {
        let encrypted = match room.encryption_state() {
            s if s.is_unknown() => match room.latest_encryption_state().await {
                Ok(s) => s.is_encrypted(),
                Err(e) => {
                    // Unknown: treat it as encrypted, the safe side.
                    tracing::warn!(room = %room.room_id(), error = %e, "matrix: cannot tell whether the room is encrypted; encrypting the chart");
                    true
                }
            },
            s => s.is_encrypted(),
        };
        let slot = slot(encrypted);
        let key = store_key(slot, &png.key);
        // Two rooms asking for a new chart at once upload it once.
        let _one = self.uploads.lock(&key).await;
        if let Some(s) = self.ids.get(&key).and_then(|j| stored_source(&j, slot)) {
            tracing::debug!(room = %room.room_id(), chart = %key, "matrix: chart sent by its stored source");
            return Some(s);
        }
        let source = upload(client, slot, &png.bytes).await?;
        match serde_json::to_string(&source) {
            Ok(json) => self.ids.put(&key, &json).await,
            Err(e) => {
                tracing::warn!(chart = %key, error = %e, "matrix: cannot store an uploaded chart's source")
            }
        }
        tracing::info!(room = %room.room_id(), chart = %key, bytes = png.bytes.len(), "matrix: chart uploaded; source stored");
        Some(source)
    }
}

/// Uploads a PNG, encrypted for an encrypted room; retries transient
/// failures ([`crate::retry::MATRIX_UPLOAD`]).
async fn upload(client: &Client, slot: Slot, bytes: &[u8]) -> Option<MediaSource> {
    let mut pauses = crate::retry::MATRIX_UPLOAD.pauses();
    for attempt in 1.. {
        let res = match slot {
            Slot::Plain => client
                .media()
                .upload(&mime::IMAGE_PNG, bytes.to_vec(), None)
                .await
                .map(|r| MediaSource::Plain(r.content_uri)),
            Slot::Encrypted => {
                let mut reader = Cursor::new(bytes);
                client
                    .upload_encrypted_file(&mut reader)
                    .await
                    .map(|f| MediaSource::Encrypted(Box::new(f)))
            }
        };
        match res {
            Ok(s) => return Some(s),
            Err(e) => {
                let retryable = super::failure::classify(&e).retryable();
                let Some(pause) = pauses.next().filter(|_| retryable) else {
                    tracing::warn!(error = %e, "matrix: cannot upload a chart; sending its text");
                    return None;
                };
                tracing::warn!(attempt, error = %e, retry_in = ?pause, "matrix: chart upload failed");
                tokio::time::sleep(pause).await;
            }
        }
    }
    None
}

/// The `m.image` message content for a room.
pub fn message(alt: &str, source: MediaSource, png: &Png) -> MessageType {
    MessageType::Image(content(alt, source, png))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::ChartKind;
    use crate::facts::Lang;
    use crate::reply::{Button, Inline, ReplyKind};

    fn key() -> ChartKey {
        ChartKey {
            kind: ChartKind::Trade,
            lang: Lang::En,
            digest: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn rooms_use_the_kind_of_upload_they_allow() {
        assert_eq!(slot(true), Slot::Encrypted);
        assert_eq!(slot(false), Slot::Plain);
        assert_eq!(
            store_key(Slot::Plain, &key()),
            "plain/trade/en/0123456789abcdef"
        );
        assert_eq!(
            store_key(Slot::Encrypted, &key()),
            "enc/trade/en/0123456789abcdef"
        );
        let plain = r#"{"url":"mxc://example.org/abc"}"#;
        assert!(matches!(
            stored_source(plain, Slot::Plain),
            Some(MediaSource::Plain(_))
        ));
        // A plain URI is never sent to an encrypted room, nor garbage at all.
        assert!(stored_source(plain, Slot::Encrypted).is_none());
        assert!(stored_source("{not json", Slot::Plain).is_none());
    }

    #[test]
    fn the_event_states_the_figures_and_the_picture() {
        let png = Png {
            key: key(),
            bytes: vec![0; 77_088],
            width: 1200,
            height: 750,
        };
        let src = MediaSource::Plain("mxc://example.org/abc".into());
        let c = content("Bar chart: 2011: USD 769 m.", src, &png);
        let json = serde_json::to_value(MessageType::Image(c)).unwrap();
        assert_eq!(json["msgtype"], "m.image");
        assert_eq!(json["body"], "Bar chart: 2011: USD 769 m.");
        assert_eq!(json["url"], "mxc://example.org/abc");
        assert_eq!(json["info"]["mimetype"], "image/png");
        assert_eq!(json["info"]["size"], 77_088);
        assert_eq!(
            (json["info"]["w"].as_u64(), json["info"]["h"].as_u64()),
            (Some(1200), Some(750))
        );
        assert!(json.get("filename").is_none());
    }

    #[test]
    fn the_caption_and_commands_follow_the_picture() {
        let mut r = Reply::new(ReplyKind::Answer, Lang::En);
        let image = ChartRef {
            key: key(),
            caption: vec![
                Inline::Bold("Trade".into()),
                Inline::Text(". 769 [¶4]".into()),
            ],
            alt: "Bar chart.".into(),
            paragraphs: vec![4],
            width: 1200,
            height: 750,
        };
        r.image = Some(image.clone());
        r.buttons = vec![vec![Button {
            label: "Chart".into(),
            action: "/chart milestones".into(),
        }]];
        let f = follow_up(&r, &image);
        assert!(f.image.is_none());
        let (body, html) = crate::reply::render_matrix(&f, 8000).remove(0);
        assert!(body.starts_with("Trade. 769 [¶4]"), "{body}");
        assert!(html.contains("<b>Trade</b>"), "{html}");
        assert!(body.contains("!chart milestones"), "{body}");
        assert!(
            !body.contains("Bar chart"),
            "the alt text is the image's body: {body}"
        );
    }
}
