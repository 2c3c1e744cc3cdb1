//! Charts to Telegram: a reply with a chart goes out as `sendPhoto` (the
//! PNG uploaded as multipart the first time, its `file_id` every time after)
//! with an HTML caption and the reply's buttons.
//!
//! The failure this prevents: the same chart uploaded on every request.
//! The first upload's `file_id` (of the largest `PhotoSize`, the original)
//! is stored under the chart's key in [`MediaIds`] (tree `telegram_media`)
//! and reused in every chat and in inline mode; the key includes the digest
//! of the facts drawn, so a changed dataset uploads anew. A stored id that
//! Telegram refuses (another bot token, a purged file) is forgotten and the
//! chart uploaded once more in its place. Uploads go through the same
//! throttled bot as every reply, so they count against the chat's pacing.
//!
//! Pure decisions, tested below: how the caption and the rest of the reply
//! are laid out ([`plan`]), which size's id to keep ([`largest`]), and which
//! refusals mean a stale id ([`stale_file_id`]).

use std::sync::Arc;

use teloxide::payloads::SendPhotoSetters;
use teloxide::prelude::*;
use teloxide::types::{FileId, InputFile, MessageId, ParseMode, PhotoSize, ReplyParameters};
use teloxide::{ApiError, RequestError};

use super::send::{classify, keyboard, no_link_preview, with_retry, Failure};
use crate::app::App;
use crate::chart::{ChartKind, Png};
use crate::reply::{
    render_caption_html, render_telegram_html, utf16_len, ChartRef, Reply, TELEGRAM_LIMIT,
};
use crate::transport::media::{MediaIds, Uploads};
use teloxide::payloads::SendMessageSetters;

/// Telegram's caption limit (UTF-16 code units of the text after entity
/// parsing). [`plan`] measures the HTML with its tags, so what Telegram
/// counts is never more.
pub const CAPTION_LIMIT: usize = 1024;

/// The sled tree of Telegram file ids.
pub const TREE: crate::facts::Tree = crate::facts::Tree::TelegramMedia;

/// What goes with the picture: its caption, and text messages after it.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// HTML caption; empty when even the chart's own caption is too long
    /// (then it leads `rest`).
    pub caption: String,
    /// HTML messages sent after the photo; the buttons go under the last
    /// message sent, photo or text.
    pub rest: Vec<String>,
}

/// Lays out a chart reply: the chart's caption, and the reply's text in the
/// caption too when the whole fits [`CAPTION_LIMIT`]; otherwise the text
/// follows in messages of its own (split at [`TELEGRAM_LIMIT`]).
/// `text` is the reply without its image.
pub fn plan(image: &ChartRef, text: &Reply) -> Plan {
    let caption = render_caption_html(image);
    let mut rest: Vec<String> = render_telegram_html(text, TELEGRAM_LIMIT)
        .into_iter()
        .filter(|m| !m.trim().is_empty())
        .collect();
    if utf16_len(&caption) > CAPTION_LIMIT {
        // Only a dataset with absurd titles gets here: the picture goes
        // bare and the caption is the first message after it.
        rest.insert(0, caption);
        return Plan {
            caption: String::new(),
            rest,
        };
    }
    if let [only] = rest.as_slice() {
        let joined = format!("{caption}\n\n{only}");
        if utf16_len(&joined) <= CAPTION_LIMIT {
            return Plan {
                caption: joined,
                rest: Vec::new(),
            };
        }
    }
    Plan { caption, rest }
}

/// The size to remember of a sent photo: the largest (Telegram lists
/// thumbnails first, but order is not promised), by pixels, then bytes.
pub fn largest(sizes: &[PhotoSize]) -> Option<&PhotoSize> {
    sizes
        .iter()
        .max_by_key(|s| (u64::from(s.width) * u64::from(s.height), s.file.size))
}

/// Whether Telegram refused a stored file id as such (not the chat, not
/// the rate): then the chart is uploaded again and the id replaced.
pub fn stale_file_id(e: &RequestError) -> bool {
    match e {
        RequestError::Api(
            ApiError::WrongFileId
            | ApiError::WrongFileIdOrUrl
            | ApiError::FileIdInvalid
            | ApiError::FailedToGetUrlContent
            | ApiError::PhotoAsInputFileRequired,
        ) => true,
        RequestError::Api(ApiError::Unknown(msg)) => {
            let m = msg.to_ascii_lowercase();
            m.contains("bad request")
                && [
                    "file_id",
                    "file id",
                    "file identifier",
                    "file reference",
                    "file_reference",
                ]
                .iter()
                .any(|s| m.contains(s))
        }
        _ => false,
    }
}

/// Words that ask inline mode for every chart.
const CHART_WORDS: &[&str] = &[
    "chart",
    "charts",
    "graph",
    "graphs",
    "plot",
    "picture",
    "график",
    "графики",
    "графика",
    "диаграмма",
    "диаграммы",
    "картинка",
];

/// The charts an inline query asks for: all of them for a word such as
/// "chart" or "график", else those it names (`trade`, `торговля`,
/// `timeline`), in the usual order; none for anything else.
pub fn inline_charts(query: &str) -> Vec<ChartKind> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.iter().any(|w| CHART_WORDS.contains(&w.as_str())) {
        return ChartKind::ALL.to_vec();
    }
    ChartKind::ALL
        .into_iter()
        .filter(|k| words.iter().any(|w| ChartKind::parse(w) == Some(*k)))
        .collect()
}

/// Telegram's side of charts: the engine (for PNGs), the stored ids, the
/// per-chart upload lock and where inline mode may upload.
pub struct Photos {
    app: Arc<App>,
    ids: MediaIds,
    uploads: Uploads,
    /// `[telegram] chart_cache_chat`: where inline mode uploads a chart
    /// that no chat has asked for yet (an inline result can only show a
    /// photo Telegram already holds).
    cache_chat: Option<ChatId>,
}

impl Photos {
    pub fn new(app: Arc<App>, ids: MediaIds, cache_chat: Option<ChatId>) -> Photos {
        Photos {
            app,
            ids,
            uploads: Uploads::default(),
            cache_chat,
        }
    }

    /// Inline mode: the file id to offer `image` by — the stored one, else
    /// one uploaded now to the cache chat if one is configured; `None`
    /// (offer the chart as text) otherwise or when that upload fails.
    pub async fn inline_file_id<B>(&self, bot: &B, image: &ChartRef) -> Option<String>
    where
        B: Requester<Err = RequestError>,
    {
        if let Some(id) = self.ids.get(&image.key.to_string()) {
            return Some(id);
        }
        let chat = self.cache_chat?;
        let png = self.png(image).await?;
        let plan = Plan {
            caption: render_caption_html(image),
            rest: Vec::new(),
        };
        if plan.caption.is_empty() || utf16_len(&plan.caption) > CAPTION_LIMIT {
            return None;
        }
        match self.send_photo(bot, chat, None, &png, &plan, None).await {
            Ok(_) => self.ids.get(&png.key.to_string()),
            Err(e) => {
                tracing::warn!(chat = chat.0, chart = %png.key, error = %e, "telegram: cannot upload a chart to [telegram] chart_cache_chat; inline mode offers it as text");
                None
            }
        }
    }

    /// The stored file id of a chart key, if it was uploaded.
    pub fn file_id(&self, key: &str) -> Option<String> {
        self.ids.get(key)
    }

    /// Forgets ids Telegram refused (inline answers).
    pub async fn forget(&self, key: &str, id: &str) {
        self.ids.forget(key, id).await;
    }

    /// The chart's PNG, rendered on a blocking thread (a few milliseconds
    /// when not cached).
    async fn png(&self, image: &ChartRef) -> Option<Arc<Png>> {
        let app = Arc::clone(&self.app);
        let (kind, lang) = (image.key.kind, image.key.lang);
        match tokio::task::spawn_blocking(move || app.engine().chart_png(kind, lang)).await {
            Ok(Ok(png)) => Some(png),
            Ok(Err(e)) => {
                tracing::warn!(chart = %image.key, error = %e, "telegram: cannot render a chart; sending its text");
                None
            }
            Err(e) => {
                tracing::error!(chart = %image.key, error = %e, "telegram: chart rendering failed");
                None
            }
        }
    }

    /// Sends `png` to `chat` as a photo: by stored file id when there is
    /// one, else (or when Telegram refuses the id) uploaded, and the new id
    /// stored. Returns the message sent.
    async fn send_photo<B>(
        &self,
        bot: &B,
        chat: ChatId,
        to: Option<MessageId>,
        png: &Png,
        plan: &Plan,
        markup: Option<teloxide::types::InlineKeyboardMarkup>,
    ) -> Result<Message, RequestError>
    where
        B: Requester<Err = RequestError>,
    {
        let key = png.key.to_string();
        let markup = markup.as_ref();
        // Two chats asking for a new chart at once upload it once.
        let _one = self.uploads.lock(&key).await;
        let send = |file: InputFile| {
            with_retry(chat, "sendPhoto", move |chat| {
                let mut req = bot.send_photo(chat, file.clone());
                if !plan.caption.is_empty() {
                    req = req
                        .caption(plan.caption.clone())
                        .parse_mode(ParseMode::Html);
                }
                if let Some(id) = to {
                    req = req
                        .reply_parameters(ReplyParameters::new(id).allow_sending_without_reply());
                }
                if let Some(m) = markup {
                    req = req.reply_markup(m.clone());
                }
                req.send()
            })
        };
        if let Some(id) = self.ids.get(&key) {
            match send(InputFile::file_id(FileId(id.clone()))).await {
                Ok(m) => {
                    tracing::debug!(chat = chat.0, chart = %key, "telegram: chart sent by file id");
                    return Ok(m);
                }
                Err(e) if stale_file_id(&e) => {
                    tracing::warn!(chart = %key, error = %e, "telegram: stored file id refused; uploading the chart again");
                    self.ids.forget(&key, &id).await;
                }
                Err(e) => return Err(e),
            }
        }
        let file = InputFile::memory(png.bytes.clone()).file_name(png.key.file_name());
        let sent = send(file).await?;
        match sent.photo().and_then(largest) {
            Some(size) => {
                tracing::info!(chat = chat.0, chart = %key, bytes = png.bytes.len(), "telegram: chart uploaded; file id stored");
                self.ids.put(&key, &size.file.id.0).await;
            }
            None => {
                tracing::warn!(chart = %key, "telegram: sendPhoto answered without a photo; nothing to reuse")
            }
        }
        Ok(sent)
    }
}

/// Sends a reply that has a chart: the photo with its caption (replying to
/// `to`), then any text that did not fit, the buttons under the last
/// message. Without a picture (rendering failed) the reply goes as text,
/// the chart's alt text in its place. The ids of the messages sent.
pub async fn send_chart_reply<B>(
    bot: &B,
    photos: &Photos,
    chat: ChatId,
    to: Option<MessageId>,
    reply: &Reply,
) -> Result<Vec<MessageId>, RequestError>
where
    B: Requester<Err = RequestError>,
{
    let Some(image) = reply.image.as_ref() else {
        return super::send::send_reply(bot, chat, to, reply).await;
    };
    let Some(png) = photos.png(image).await else {
        return super::send::send_reply(bot, chat, to, reply).await;
    };
    let mut text = reply.clone();
    text.image = None;
    let plan = plan(image, &text);
    let markup = keyboard(reply);
    let photo_markup = if plan.rest.is_empty() {
        markup.clone()
    } else {
        None
    };
    let mut sent = Vec::with_capacity(1 + plan.rest.len());
    match photos
        .send_photo(bot, chat, to, &png, &plan, photo_markup)
        .await
    {
        Ok(m) => sent.push(m.id),
        // Telegram refuses this photo for good (its dimensions, say): the
        // asker still gets the answer, as text with the figures.
        Err(e) if classify(&e) == Failure::Permanent => {
            tracing::warn!(chat = chat.0, chart = %image.key, error = %e, "telegram: the chart photo was refused; sending its text");
            return super::send::send_reply(bot, chat, to, reply).await;
        }
        Err(e) => return Err(e),
    }
    let last = plan.rest.len().saturating_sub(1);
    for (i, html) in plan.rest.iter().enumerate() {
        let m = if i == last { markup.clone() } else { None };
        let m = with_retry(chat, "sendMessage", |chat| {
            let mut req = bot
                .send_message(chat, html.clone())
                .parse_mode(ParseMode::Html)
                .link_preview_options(no_link_preview());
            if let Some(m) = m.clone() {
                req = req.reply_markup(m);
            }
            req.send()
        })
        .await?;
        sent.push(m.id);
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::{ChartKey, ChartKind};
    use crate::facts::Lang;
    use crate::reply::{Inline, ReplyKind};

    fn image(caption: &str) -> ChartRef {
        ChartRef {
            key: ChartKey {
                kind: ChartKind::Trade,
                lang: Lang::En,
                digest: "0123456789abcdef".into(),
            },
            caption: vec![Inline::Bold("Trade".into()), Inline::Text(caption.into())],
            alt: "Bar chart.".into(),
            paragraphs: vec![4],
            width: 1200,
            height: 750,
        }
    }

    fn text(paragraphs: &[&str]) -> Reply {
        let mut r = Reply::new(ReplyKind::Answer, Lang::En);
        for p in paragraphs {
            r = r.text(*p);
        }
        r
    }

    #[test]
    fn the_caption_alone_when_the_reply_has_no_text() {
        let p = plan(&image(". 2011: 769 [¶4]"), &text(&[]));
        assert_eq!(p.caption, "<b>Trade</b>. 2011: 769 [¶4]");
        assert!(p.rest.is_empty());
    }

    #[test]
    fn short_text_joins_the_caption_long_text_follows() {
        let p = plan(&image(". 769"), &text(&["A <short> note."]));
        assert_eq!(p.caption, "<b>Trade</b>. 769\n\nA &lt;short&gt; note.");
        assert!(p.rest.is_empty());
        // 1,010 characters do not fit beside the 17 of the caption: they
        // follow.
        let long = "x".repeat(1010);
        let p = plan(&image(". 769"), &text(&[&long]));
        assert_eq!(p.caption, "<b>Trade</b>. 769");
        assert_eq!(p.rest, vec![long.clone()]);
        // Text over one message's limit follows in several.
        let huge: Vec<String> = (0..3).map(|_| "y".repeat(3000)).collect();
        let refs: Vec<&str> = huge.iter().map(String::as_str).collect();
        let p = plan(&image(". 769"), &text(&refs));
        assert_eq!(p.rest.len(), 3);
        assert!(p.rest.iter().all(|m| utf16_len(m) <= TELEGRAM_LIMIT));
    }

    #[test]
    fn the_limit_is_counted_in_utf16_with_the_markup() {
        // 1,024 units exactly fit; one more does not.
        let head = utf16_len("<b>Trade</b>");
        let fits = "я".repeat(CAPTION_LIMIT - head);
        assert_eq!(
            plan(&image(&fits), &text(&[])).caption.len(),
            head + fits.len()
        );
        let emoji = "📊".repeat((CAPTION_LIMIT - head) / 2 + 1);
        let p = plan(&image(&emoji), &text(&["after"]));
        assert_eq!(p.caption, "", "an over-long caption leads the text instead");
        assert_eq!(p.rest.len(), 2);
        assert!(p.rest[0].starts_with("<b>Trade</b>📊"));
    }

    fn size(id: &str, w: u32, h: u32, bytes: u32) -> PhotoSize {
        serde_json::from_value(serde_json::json!({
            "file_id": id, "file_unique_id": format!("u{id}"), "width": w, "height": h, "file_size": bytes
        }))
        .unwrap()
    }

    #[test]
    fn the_largest_size_is_kept() {
        let sizes = [
            size("thumb", 90, 56, 1_000),
            size("full", 1200, 750, 90_000),
            size("mid", 320, 200, 9_000),
        ];
        assert_eq!(largest(&sizes).unwrap().file.id.0, "full");
        assert!(largest(&[]).is_none());
    }

    #[test]
    fn inline_queries_name_charts_in_either_language() {
        assert_eq!(inline_charts("chart"), ChartKind::ALL.to_vec());
        assert_eq!(inline_charts("Графики"), ChartKind::ALL.to_vec());
        assert_eq!(inline_charts("trade"), vec![ChartKind::Trade]);
        assert_eq!(
            inline_charts("торговля, хронология"),
            vec![ChartKind::Trade, ChartKind::Milestones]
        );
        assert!(inline_charts("customs union").is_empty());
        assert!(inline_charts("").is_empty());
        // A word that merely contains one is not it.
        assert!(inline_charts("charter").is_empty());
    }

    #[test]
    fn only_a_refused_file_id_is_stale() {
        assert!(stale_file_id(&RequestError::Api(
            ApiError::WrongFileIdOrUrl
        )));
        assert!(stale_file_id(&RequestError::Api(ApiError::WrongFileId)));
        assert!(stale_file_id(&RequestError::Api(ApiError::Unknown(
            "Bad Request: FILE_ID_INVALID file identifier".into()
        ))));
        assert!(!stale_file_id(&RequestError::Api(ApiError::BotBlocked)));
        assert!(!stale_file_id(&RequestError::Api(ApiError::Unknown(
            "Bad Request: message caption is too long".into()
        ))));
        assert!(!stale_file_id(&RequestError::Api(ApiError::Unknown(
            "Bad Request: PHOTO_INVALID_DIMENSIONS".into()
        ))));
        assert!(!stale_file_id(&RequestError::MigrateToChatId(ChatId(-100))));
    }
}
