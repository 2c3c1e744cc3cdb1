//! End-to-end tests of the Matrix transport: the real `factbot run` against
//! a real Synapse homeserver on 127.0.0.1, with people as matrix-sdk clients.
//! Synapse comes from `tests/synapse` (installed from PyPI by the scripts);
//! if it cannot start, the tests fail — they never skip.

#![cfg(feature = "matrix")]

mod common;

use std::time::Duration;

use common::matrix::{unique, MatrixBot, Person, Synapse};
use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::ruma::events::room::message::{ImageMessageEventContent, RoomMessageEventContent};
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::OwnedUserId;
use matrix_sdk::RoomState;

/// Waits this long for any single reply.
const REPLY_SECS: u64 = 30;
/// The admin endpoint's token in the notification tests.
const NOTIFY_TOKEN: &str = "notify-TEST-token-never-logged";

/// `[notify]` with the admin endpoint on `port`.
fn notify_config(port: u16) -> String {
    format!("\n[notify]\nadmin_listen = \"127.0.0.1:{port}\"\nadmin_token = \"{NOTIFY_TOKEN}\"\n")
}

/// Announces through the running bot's admin endpoint: `{id, chats}`.
fn announce(port: u16, topic: Option<&str>, text: &str) -> serde_json::Value {
    ureq::post(&format!("http://127.0.0.1:{port}/announce"))
        .set("Authorization", &format!("Bearer {NOTIFY_TOKEN}"))
        .send_json(serde_json::json!({"topic": topic, "text": text}))
        .expect("the admin endpoint answers")
        .into_json()
        .expect("JSON")
}

/// A notification's progress from the admin endpoint.
fn progress(port: u16, id: &serde_json::Value) -> serde_json::Value {
    ureq::get(&format!("http://127.0.0.1:{port}/notifications/{id}"))
        .set("Authorization", &format!("Bearer {NOTIFY_TOKEN}"))
        .call()
        .expect("the admin endpoint answers")
        .into_json()
        .expect("JSON")
}

/// Messages from `sender` in `room` whose body contains `needle`.
fn count_in(p: &Person, room: &matrix_sdk::ruma::RoomId, sender: &str, needle: &str) -> usize {
    p.seen
        .iter()
        .filter(|(r, s)| r == room && s.sender == sender && s.body.contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_on_invite_and_answers_commands_and_questions_in_both_languages() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    // At trace level, where the SDK logs every request: the password must
    // still not appear (checked when `bot` drops).
    let mut bot = MatrixBot::prepare(hs, tmp.path(), &unique("bot"), "", "trace");
    bot.restart();
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot.user_id], false).await;
    ann.wait_joined(&room, &bot.user_id, REPLY_SECS).await;

    let q = ann.say(&room, "!trade").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(r.notice, "replies are m.notice: {r:?}");
    assert_eq!(r.sender.as_str(), bot.user_id);
    let html = r.html.clone().expect("an HTML formatted_body");
    assert!(
        html.contains("<b>") || html.contains("<strong>") || html.contains("<ul>"),
        "{html}"
    );
    assert!(r.body.contains("2011"), "{}", r.body);
    assert!(
        !r.body.contains('<'),
        "the plain body has no tags: {}",
        r.body
    );
    assert!(r.body.contains("!chart trade"), "{}", r.body);

    let q = ann.say(&room, "/help").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        r.body.contains("!trade"),
        "help names the ! commands: {}",
        r.body
    );

    let q = ann
        .say(
            &room,
            "How much was trade between Belarus and Kazakhstan in 2011?",
        )
        .await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        r.body.contains("2011") && r.body.contains("USD"),
        "{}",
        r.body
    );

    let q = ann.say(&room, "Когда был создан Таможенный союз?").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        r.body.contains("2007") || r.body.contains("2010"),
        "{}",
        r.body
    );
    assert!(
        r.body.chars().any(|c| ('а'..='я').contains(&c)),
        "answers in Russian: {}",
        r.body
    );

    // !lang is per room.
    let q = ann.say(&room, "!lang ru").await;
    ann.reply_to(&q, REPLY_SECS).await;
    let q = ann.say(&room, "!trade").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        r.body.contains("Товарооборот") || r.body.contains("товарооборот"),
        "{}",
        r.body
    );
    bot.wait_log("matrix: message answered", 6, REPLY_SECS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_group_room_only_mentions_commands_and_replies_are_answered() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), "");
    let mut ann = Person::new(hs, &unique("ann")).await;
    let mut bob = Person::new(hs, &unique("bob")).await;
    let (_room, bob_room) = ann.group_with(&mut bob, &bot.user_id).await;

    let unaddressed = bob.say(&bob_room, "How much was trade in 2011?").await;
    let bot_id: OwnedUserId = bot.user_id.parse().unwrap();
    let mut content = RoomMessageEventContent::text_plain("factbot, how much was trade in 2011?");
    content = content.add_mentions(Mentions::with_user_ids([bot_id]));
    let mentioned = bob.send(&bob_room, content).await;
    let r = ann.reply_to(&mentioned, REPLY_SECS).await;
    assert!(r.body.contains("2011"), "{}", r.body);

    // A reply to the bot's message is for the bot, without a mention.
    let follow = bob
        .send(
            &bob_room,
            RoomMessageEventContent::text_plain("and the Customs Union?").make_reply_to(
                matrix_sdk::ruma::events::room::message::ReplyMetadata::new(
                    &r.event_id,
                    &r.sender,
                    None,
                ),
                matrix_sdk::ruma::events::room::message::ForwardThread::Yes,
                matrix_sdk::ruma::events::room::message::AddMentions::No,
            ),
        )
        .await;
    ann.reply_to(&follow, REPLY_SECS).await;
    // Another bot's command and a notice are ignored; a command for us is not.
    bob.say(&bob_room, "!weather Minsk").await;
    bob.send(&bob_room, RoomMessageEventContent::notice_plain("!trade"))
        .await;
    let cmd = bob.say(&bob_room, "!milestones").await;
    ann.reply_to(&cmd, REPLY_SECS).await;
    // By now every earlier message has been considered: the bot answers in
    // order of arrival within a sync, and sync order is room order.
    let notices = ann
        .seen
        .iter()
        .filter(|(_, s)| s.notice && s.sender == bot.user_id.as_str())
        .count();
    assert_eq!(
        notices, 3,
        "exactly the three addressed messages were answered: {:#?}",
        ann.seen
    );
    assert!(ann.replies_to(&unaddressed).is_empty());
}

/// `text` to the bot in a group room, with a mention (`localpart: text`,
/// as Element writes one).
fn to_bot(bot: &MatrixBot, text: &str) -> RoomMessageEventContent {
    let bot_id: OwnedUserId = bot.user_id.parse().unwrap();
    RoomMessageEventContent::text_plain(format!("{}: {text}", bot_id.localpart()))
        .add_mentions(Mentions::with_user_ids([bot_id]))
}

/// Follow-ups in a group room: each member's "and in 2011?" continues
/// their own last answer, and a reply to one of the bot's answers
/// continues that answer, whoever replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_continue_each_members_answer_and_replies_continue_theirs() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), "");
    let mut ann = Person::new(hs, &unique("ann")).await;
    let mut bob = Person::new(hs, &unique("bob")).await;
    let (room, bob_room) = ann.group_with(&mut bob, &bot.user_id).await;

    let q = ann
        .send(&room, to_bot(&bot, "What happened in 2010?"))
        .await;
    let milestones = ann.reply_to(&q, REPLY_SECS).await;
    assert!(milestones.body.contains("2010"), "{}", milestones.body);
    let q = bob
        .send(&bob_room, to_bot(&bot, "How much was trade in 2011?"))
        .await;
    let trade = ann.reply_to(&q, REPLY_SECS).await;
    assert!(trade.body.contains("USD 769 million"), "{}", trade.body);

    // Ann's follow-up continues Ann's answer, not Bob's later one.
    let q = ann.send(&room, to_bot(&bot, "and in 2011?")).await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("Internal borders"), "{}", r.body);
    assert!(!r.body.contains("769"), "{}", r.body);

    // Bob replies to Ann's first answer: it continues that one.
    let reply = RoomMessageEventContent::text_plain("and in 2015?").make_reply_to(
        matrix_sdk::ruma::events::room::message::ReplyMetadata::new(
            &milestones.event_id,
            &milestones.sender,
            None,
        ),
        matrix_sdk::ruma::events::room::message::ForwardThread::Yes,
        matrix_sdk::ruma::events::room::message::AddMentions::No,
    );
    let q = bob.send(&bob_room, reply).await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("Eurasian Economic Union"), "{}", r.body);

    // Small talk gets a friendly answer, not "no fact".
    let q = bob.send(&bob_room, to_bot(&bot, "thanks!")).await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("welcome"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_room_works_the_same() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), "");
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot.user_id], true).await;
    ann.wait_joined(&room, &bot.user_id, REPLY_SECS).await;
    assert!(room.latest_encryption_state().await.unwrap().is_encrypted());
    let q = ann.say(&room, "!investment").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        r.notice && r.body.to_lowercase().contains("invest"),
        "{r:?}"
    );
    let q = ann.say(&room, "Кто возглавлял делегацию Беларуси?").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("Мясникович"), "{}", r.body);
    drop(bot);
}

/// Downloads a chart the way a client does (decrypting an encrypted
/// attachment) and checks it is a real 1200×750 PNG of the size `info`
/// states; returns the bytes.
async fn download_chart(p: &Person, img: &ImageMessageEventContent) -> Vec<u8> {
    let req = MediaRequestParameters {
        source: img.source.clone(),
        format: MediaFormat::File,
    };
    let png = p
        .client
        .media()
        .get_media_content(&req, false)
        .await
        .expect("the chart downloads (and decrypts)");
    common::check_png(&png, 1200, 750);
    let info = img.info.as_ref().expect("m.image info");
    assert_eq!(info.mimetype.as_deref(), Some("image/png"));
    assert_eq!(info.size.map(u64::from), Some(png.len() as u64));
    assert_eq!(
        (info.width.map(u64::from), info.height.map(u64::from)),
        (Some(1200), Some(750))
    );
    png
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_are_images_uploaded_once_and_encrypted_in_encrypted_rooms() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let mut bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), "");
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot.user_id], false).await;
    ann.wait_joined(&room, &bot.user_id, REPLY_SECS).await;

    // An m.image replying to the question: body = the alt text stating the
    // figures, a plain content URI, info; then the caption and commands.
    let q = ann.say(&room, "!chart trade").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    let img = r
        .image
        .clone()
        .unwrap_or_else(|| panic!("an m.image: {r:?}"));
    assert!(
        img.body.contains("769") && img.body.contains("479"),
        "the body states the figures: {}",
        img.body
    );
    let MediaSource::Plain(uri) = &img.source else {
        panic!("an unencrypted room gets a plain URI: {:?}", img.source)
    };
    let uri = uri.clone();
    download_chart(&ann, &img).await;
    let caption = ann.wait_for(&bot.user_id, "[¶4]", REPLY_SECS).await;
    assert!(caption.notice, "{caption:?}");
    assert!(
        caption.body.contains("!chart milestones"),
        "{}",
        caption.body
    );
    assert!(!caption.body.contains("Bar chart"), "{}", caption.body);

    // The second request reuses the URI.
    let q = ann.say(&room, "!chart trade").await;
    let again = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        matches!(&again.image, Some(i) if matches!(&i.source, MediaSource::Plain(u) if *u == uri)),
        "{again:?}"
    );

    // An encrypted room gets an encrypted attachment: the test client
    // decrypts it to the same chart, and the server holds only ciphertext.
    let secret = ann.create_room(&[&bot.user_id], true).await;
    ann.wait_joined(&secret, &bot.user_id, REPLY_SECS).await;
    let q = ann.say(&secret, "!chart trade").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    let img = r
        .image
        .clone()
        .unwrap_or_else(|| panic!("an m.image: {r:?}"));
    let MediaSource::Encrypted(file) = &img.source else {
        panic!("an encrypted room gets an encrypted file: {:?}", img.source)
    };
    let file_uri = file.url.clone();
    assert_ne!(file_uri, uri);
    let png = download_chart(&ann, &img).await;
    let raw = ann
        .client
        .media()
        .get_media_content(
            &MediaRequestParameters {
                source: MediaSource::Plain(file_uri.clone()),
                format: MediaFormat::File,
            },
            false,
        )
        .await
        .expect("the ciphertext downloads");
    assert_eq!(raw.len(), png.len());
    assert_ne!(
        &raw[..8],
        b"\x89PNG\r\n\x1a\n",
        "the server must not hold the PNG"
    );

    // ...and the encrypted file is reused too.
    let q = ann.say(&secret, "!chart trade").await;
    let again = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        matches!(&again.image, Some(i) if matches!(&i.source, MediaSource::Encrypted(f) if f.url == file_uri)),
        "{again:?}"
    );
    assert_eq!(bot.log().matches("matrix: chart uploaded").count(), 2);

    // The stored sources survive a restart: no upload after it.
    bot.terminate(20);
    bot.restart();
    let q = ann.say(&room, "!chart trade").await;
    let after = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        matches!(&after.image, Some(i) if matches!(&i.source, MediaSource::Plain(u) if *u == uri)),
        "{after:?}"
    );
    assert_eq!(bot.log().matches("matrix: chart uploaded").count(), 0);
    drop(bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_device_repeats_nothing_and_answers_what_came_meanwhile() {
    let hs = Synapse::shared();
    let (_, admin_token, _) = hs.register(&unique("admin"), "pw", true);
    let tmp = tempfile::tempdir().unwrap();
    let mut bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), "");
    let device = bot.saved_device_id().expect("a saved session");
    // Registration made a device too; the bot's login added its own.
    let devices_before = hs.devices(&admin_token, &bot.user_id);
    assert!(devices_before.contains(&device));
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot.user_id], true).await;
    ann.wait_joined(&room, &bot.user_id, REPLY_SECS).await;
    let q1 = ann.say(&room, "!visit").await;
    ann.reply_to(&q1, REPLY_SECS).await;
    bot.wait_log("matrix: message answered", 1, REPLY_SECS);

    // Killed without warning; two questions arrive while it is down.
    bot.kill9();
    let q2 = ann.say(&room, "!trade").await;
    let q3 = ann
        .say(&room, "When was the Eurasian Economic Union launched?")
        .await;
    bot.restart();
    ann.reply_to(&q2, REPLY_SECS).await;
    ann.reply_to(&q3, REPLY_SECS).await;
    // SIGTERM, restart, one more question: its answer comes after any replay.
    let st = bot.terminate(10);
    assert!(st.success(), "SIGTERM: {st}; log:\n{}", bot.log());
    bot.restart();
    let q4 = ann.say(&room, "!people").await;
    ann.reply_to(&q4, REPLY_SECS).await;
    for q in [&q1, &q2, &q3, &q4] {
        assert_eq!(
            ann.replies_to(q).len(),
            1,
            "one answer to {q}: {:#?}",
            ann.seen
        );
    }
    assert_eq!(bot.saved_device_id().as_deref(), Some(device.as_str()));
    assert_eq!(
        hs.devices(&admin_token, &bot.user_id),
        devices_before,
        "no new device per start"
    );
    assert!(!ann
        .seen
        .iter()
        .any(|(_, s)| s.body.contains("unable to decrypt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_rides_out_a_homeserver_restart() {
    let hs = Synapse::start_private();
    hs.stop_when_tests_exit();
    let tmp = tempfile::tempdir().unwrap();
    // The very first start finds the homeserver down: it waits, not exits.
    let mut bot = MatrixBot::prepare(&hs, tmp.path(), "bot", "", "debug");
    hs.stop();
    bot.launch();
    bot.wait_log("matrix: homeserver not reachable yet", 2, 60);
    hs.start();
    bot.wait_log("matrix: ready", 1, 60);
    let mut ann = Person::new(&hs, "ann").await;
    let room = ann.create_room(&[&bot.user_id], false).await;
    ann.wait_joined(&room, &bot.user_id, REPLY_SECS).await;

    hs.stop();
    bot.wait_log("matrix: sync failed", 2, 60);
    hs.start();
    bot.wait_log("matrix: homeserver reachable again", 1, 60);
    let q = ann.say(&room, "!trade").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("2011"));
    assert!(
        bot.child.try_wait().unwrap().is_none(),
        "the bot is still running"
    );
    hs.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_waited_out_and_every_question_answered_once() {
    let hs = Synapse::shared();
    let (_, admin_token, _) = hs.register(&unique("admin"), "pw", true);
    let tmp = tempfile::tempdir().unwrap();
    let name = unique("bot");
    let (bot_id, _, _) = hs.register(&name, common::matrix::BOT_PASSWORD, false);
    // One message per second, burst of one: five quick questions make the
    // bot hit M_LIMIT_EXCEEDED.
    hs.override_ratelimit(&admin_token, &bot_id, 1, 1);
    let bot = MatrixBot::start(hs, tmp.path(), &name, "");
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot.user_id], false).await;
    ann.wait_joined(&room, &bot.user_id, REPLY_SECS).await;
    let mut qs = Vec::new();
    for c in ["!trade", "!visit", "!people", "!exports", "!milestones"] {
        qs.push(ann.say(&room, c).await);
    }
    for q in &qs {
        ann.reply_to(q, 60).await;
    }
    for q in &qs {
        assert_eq!(ann.replies_to(q).len(), 1);
    }
    let log = bot.log();
    assert!(!log.contains("giving up"), "{log}");
    // The limit was really hit: the SDK's HTTP layer (debug log) re-sent
    // requests after M_LIMIT_EXCEEDED.
    assert!(
        log.contains("num_attempt=2"),
        "no request was retried: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_room_admins_make_the_bot_leave_and_invites_follow_the_allow_list() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let ann_name = unique("ann");
    let mut ann = Person::new(hs, &ann_name).await;
    let mut bob = Person::new(hs, &unique("bob")).await;
    let mut bot = MatrixBot::start(
        hs,
        tmp.path(),
        &unique("bot"),
        &format!("allowed_inviters = [\"{}\"]", ann.user_id),
    );
    // Bob is not allowed to invite the bot.
    let bobs = bob.create_room(&[&bot.user_id], false).await;
    bot.wait_log("invite declined", 1, REPLY_SECS);
    bob.wait_membership(&bobs, &bot.user_id, "leave", REPLY_SECS)
        .await;

    // Ann is; in her room Bob (power 0) cannot make the bot leave, Ann can.
    let (room, bob_room) = ann.group_with(&mut bob, &bot.user_id).await;
    let q = bob.say(&bob_room, "!leave").await;
    let r = bob.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("room admin"), "{}", r.body);
    let q = ann.say(&room, "!leave").await;
    ann.reply_to(&q, REPLY_SECS).await;
    bot.wait_log("left the room on request", 1, REPLY_SECS);
    ann.wait_membership(&room, &bot.user_id, "leave", REPLY_SECS)
        .await;
    assert_eq!(room.state(), RoomState::Joined);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_from_the_environment_logs_in_and_never_reaches_the_log() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let name = unique("bot");
    let (bot_id, token, device) = hs.register(&name, "unused-pw", false);
    let config = format!(
        "[store]\npath = \"state\"\n[matrix]\nhomeserver_url = \"{}\"\nuser_id = \"{bot_id}\"\n",
        hs.url
    );
    // The token comes from the environment only, and the bot logs at trace
    // level: the token must still not appear.
    let bot = MatrixBot::start_with_config(
        tmp.path(),
        &bot_id,
        &config,
        vec![("MATRIX_ACCESS_TOKEN".into(), token.clone())],
        "trace",
    );
    assert_eq!(bot.saved_device_id().as_deref(), Some(device.as_str()));
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot_id], false).await;
    ann.wait_joined(&room, &bot_id, REPLY_SECS).await;
    let q = ann.say(&room, "!source visit.dates").await;
    ann.reply_to(&q, REPLY_SECS).await;
}

#[cfg(feature = "telegram")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_serves_telegram_and_matrix_from_one_store() {
    use common::telegram::{Emulator, TOKEN};
    let hs = Synapse::shared();
    let emu = Emulator::start();
    let tmp = tempfile::tempdir().unwrap();
    let name = unique("bot");
    let (bot_id, _, _) = hs.register(&name, common::matrix::BOT_PASSWORD, false);
    let mport = common::free_port();
    let config = format!(
        "[store]\npath = \"state\"\n[telegram]\napi_url = \"{}/\"\n[matrix]\nhomeserver_url = \"{}\"\nuser_id = \"{bot_id}\"\n[metrics]\nlisten = \"127.0.0.1:{mport}\"\n",
        emu.url, hs.url
    );
    let bot = MatrixBot::start_with_config(
        tmp.path(),
        &bot_id,
        &config,
        vec![
            (
                "MATRIX_PASSWORD".into(),
                common::matrix::BOT_PASSWORD.into(),
            ),
            ("TELOXIDE_TOKEN".into(), TOKEN.into()),
        ],
        "debug",
    );
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot_id], false).await;
    ann.wait_joined(&room, &bot_id, REPLY_SECS).await;
    let q = ann.say(&room, "!trade").await;
    assert!(ann.reply_to(&q, REPLY_SECS).await.body.contains("769"));

    let after = emu.last_seq();
    emu.say(42, "/trade");
    let sent = emu.next(Some(42), "sent", after, REPLY_SECS);
    assert!(
        sent["message"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("769"),
        "{sent}"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("state/factbot.pid"))
            .unwrap()
            .trim(),
        bot.child.id().to_string(),
        "one process holds the one store"
    );

    // Both transports in the figures and in the health check.
    let get = |path: &str| match ureq::get(&format!("http://127.0.0.1:{mport}{path}")).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
        Err(e) => panic!("GET {path}: {e}"),
    };
    let (code, health) = get("/healthz");
    assert_eq!(code, 200, "{health}");
    assert!(
        health.contains("\ntelegram: ok, last poll ")
            && health.contains("\nmatrix: ok, last sync "),
        "{health}"
    );
    // A reply is counted just after it is sent: the scrape may come a
    // moment before that, so look again (bounded) until every series shows.
    let series = [
        r#"factbot_questions_total{transport="matrix",lang="en",outcome="answered"} 1"#,
        r#"factbot_questions_total{transport="telegram",lang="en",outcome="answered"} 1"#,
        r#"factbot_reply_seconds_count{transport="matrix"} 1"#,
        r#"factbot_inbox_depth{transport="matrix"} 0"#,
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let m = loop {
        let (_, m) = get("/metrics");
        let missing = series.iter().find(|s| !m.lines().any(|l| l == **s));
        match missing {
            None => break m,
            Some(s) if std::time::Instant::now() > deadline => {
                panic!("no {s:?} in:\n{m}")
            }
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    let synced: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix(r#"factbot_last_poll_timestamp_seconds{transport="matrix"} "#))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no matrix sync time in:\n{m}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - 90.0..=now + 1.0).contains(&synced),
        "{synced} vs {now}"
    );
    assert!(
        !m.contains(&bot_id) && !m.contains(room.room_id().as_str()),
        "{m}"
    );
}

/// Notifications in a Matrix room: only a room admin subscribes it; an
/// announcement from the shell, a fact change imported while the bot was
/// stopped and the daily digest (clock set by `FACTBOT_NOW`) each arrive
/// once, and an announcement for another topic does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_admin_subscribes_a_room_and_it_gets_each_notification_once() {
    const ADMIN_TOKEN: &str = "admin-TEST-token-never-logged";
    const COMPLETE: &str = "notify: notification complete";
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let notify = format!(
        "\n[notify]\nadmin_listen = \"127.0.0.1:{port}\"\nadmin_token = \"{ADMIN_TOKEN}\"\n\
         [notify.digest]\ntime = \"09:00\"\ntime_zone = \"Europe/Minsk\"\n"
    );
    let mut bot = MatrixBot::prepare(hs, tmp.path(), &unique("bot"), &notify, "debug");
    // An hour before the digest.
    bot.set_env("FACTBOT_NOW", "2026-11-09T08:00:00+03:00");
    bot.restart();
    let mut ann = Person::new(hs, &unique("ann")).await;
    let mut bob = Person::new(hs, &unique("bob")).await;
    let (room, bob_room) = ann.group_with(&mut bob, &bot.user_id).await;

    // Bob (power level 0) is refused; Ann (the creator) subscribes.
    let q = bob.say(&bob_room, "!subscribe all").await;
    let r = bob.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("Only an administrator"), "{}", r.body);
    let q = ann.say(&room, "!subscriptions").await;
    assert!(ann
        .reply_to(&q, REPLY_SECS)
        .await
        .body
        .contains("no subscriptions"));
    let q = ann.say(&room, "!subscribe trade milestones").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("trade"), "{}", r.body);

    // From the shell, through the running bot's admin endpoint.
    let config = bot.config_path().to_path_buf();
    let cli = |args: &[&str]| {
        std::process::Command::new(common::BIN)
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("FACTBOT_CONFIG")
            .env_remove("FACTBOT_ADMIN_TOKEN")
            .output()
            .unwrap()
    };
    let out = cli(&["announce", "--topic", "trade", "Matrix trade news"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && stdout.contains("delivered 1/1"),
        "{stdout}"
    );
    let out = cli(&["announce", "--topic", "visit", "Visit news"]);
    assert!(out.status.success());
    ann.wait_for(&bot.user_id, "Matrix trade news", REPLY_SECS)
        .await;

    // A change imported while the bot is stopped; the bot comes back a few
    // seconds before 09:00 Minsk time.
    let st = bot.terminate(20);
    assert!(st.success(), "SIGTERM: {st}; log:\n{}", bot.log());
    let data = common::copy_dataset(tmp.path());
    let facts = data.join("facts.toml");
    let edited = std::fs::read_to_string(&facts).unwrap().replacen(
        "amounted to USD 769 million in 2011.\"",
        "amounted to USD 770 million in 2011.\"",
        1,
    );
    std::fs::write(&facts, edited).unwrap();
    let out = common::factbot(
        &tmp.path().join("state"),
        &["import", data.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 updated"),
        "{out:?}"
    );
    bot.set_env("FACTBOT_NOW", "2026-11-09T08:59:57+03:00");
    bot.restart();
    ann.wait_for(&bot.user_id, "USD 770 million", 60).await;
    ann.wait_for(&bot.user_id, "On this day", 60).await;
    bot.wait_log(COMPLETE, 2, 30);
    // One more round trip: anything sent twice would be here by now.
    let q = ann.say(&room, "!subscriptions").await;
    ann.reply_to(&q, REPLY_SECS).await;
    let me = bot.user_id.clone();
    assert_eq!(ann.count(&me, "Matrix trade news"), 1);
    assert_eq!(ann.count(&me, "Visit news"), 0);
    assert_eq!(ann.count(&me, "UPDATED"), 1, "{:#?}", ann.seen);
    assert_eq!(ann.count(&me, "On this day"), 1, "{:#?}", ann.seen);

    // Kicked out of the room: the next notification drops the subscription.
    let bot_uid: OwnedUserId = me.parse().unwrap();
    room.kick_user(&bot_uid, Some("test")).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(REPLY_SECS);
    loop {
        let out = cli(&["announce", "--topic", "trade", "After the kick"]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if stdout.contains("no chat is subscribed") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stdout}");
    }
    bot.wait_log("its subscription is dropped", 1, 5);
    assert_eq!(ann.count(&me, "After the kick"), 0);
    assert!(!bot.all_logs().contains(ADMIN_TOKEN));
}

/// A room created as a direct chat that then has a third member is a group
/// room: a power-0 member's `!subscribe` and `!lang` are refused and their
/// chatter is ignored, while the room's creator (power 100) may set the
/// language. In the same room, a 60 KB event of `"` after `!fact` (180 KB
/// once escaped) gets one short reply while another room's question is
/// answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_room_that_grew_is_a_group_with_room_admin_settings_and_no_echo_floods() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), "");
    let mut ann = Person::new(hs, &unique("ann")).await;
    let mut bob = Person::new(hs, &unique("bob")).await;
    let mut carl = Person::new(hs, &unique("carl")).await;
    let room = ann
        .create_direct_room(&[&bot.user_id, bob.user_id.as_str()])
        .await;
    ann.wait_joined(&room, &bot.user_id, REPLY_SECS).await;
    let bob_room = bob.join_invited(&room).await;
    ann.wait_joined(&room, bob.user_id.as_str(), REPLY_SECS)
        .await;
    let carl_room = carl.create_room(&[&bot.user_id], false).await;
    carl.wait_joined(&carl_room, &bot.user_id, REPLY_SECS).await;

    let chatter = bob.say(&bob_room, "How much was trade in 2011?").await;
    let q = bob.say(&bob_room, "!subscribe all").await;
    let r = bob.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("Only an administrator"), "{}", r.body);
    let q = bob.say(&bob_room, "!lang ru").await;
    let r = bob.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("Only an administrator"), "{}", r.body);

    let huge = bob
        .say(&bob_room, &format!("!fact {}", "\"".repeat(30_000)))
        .await;
    let cq = carl.say(&carl_room, "How much was trade in 2011?").await;
    // Bounded waits, generous for a loaded machine: not timing claims.
    let r = carl.reply_to(&cq, REPLY_SECS).await;
    assert!(r.body.contains("769"), "{}", r.body);
    let r = bob.reply_to(&huge, REPLY_SECS).await;
    assert!(r.body.contains("There is no fact"), "{}", r.body);
    assert!(r.body.chars().count() < 1_000, "{} chars", r.body.len());

    let q = ann.say(&room, "!lang ru").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("по-русски"), "{}", r.body);
    let q = ann.say(&room, "!trade").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(r.body.contains("769 млн"), "{}", r.body);
    // By the last reply every earlier message has been considered: two
    // refusals, one reply to the huge message, the language, the trade.
    let notices = ann
        .seen
        .iter()
        .filter(|(id, s)| id == room.room_id() && s.sender == bot.user_id.as_str())
        .count();
    assert_eq!(notices, 5, "{:#?}", ann.seen);
    assert!(ann.replies_to(&chatter).is_empty());
    drop(bot);
}

/// Every file and directory under `dir` that others could read or write.
fn loose_paths(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.permissions().mode() & 0o077 != 0 {
            out.push(format!("{} {:o}", p.display(), m.permissions().mode()));
        }
        if m.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

/// The bot's Matrix identity is never thrown away by accident: a trailing
/// slash added to `homeserver_url` keeps the device; an unreadable
/// `session.json` stops the start with an error naming
/// `--reset-matrix-device` and deletes nothing (restored, the same device
/// carries on); `--reset-matrix-device` makes a new device that answers,
/// the old session and keys moved aside. The store is private to the bot's
/// user (session, sled, the SDK's sqlite files, encrypted with a
/// passphrase kept in the session, which never reaches the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matrix_identity_is_kept_through_config_noise_and_reset_only_on_request() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let mut bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), "");
    let state = tmp.path().join("state");
    let device = bot.saved_device_id().expect("a saved session");
    let passphrase = bot.saved_passphrase().expect("the SDK stores' passphrase");
    assert_eq!(passphrase.len(), 64);
    assert!(state.join("matrix/sdk").read_dir().unwrap().count() > 0);
    assert_eq!(loose_paths(&state), Vec::<String>::new());
    // Encrypted: neither the device id nor the user id is in the clear in
    // any of the SDK's files (an unencrypted store holds both as JSON).
    for f in std::fs::read_dir(state.join("matrix/sdk")).unwrap() {
        let path = f.unwrap().path();
        let bytes = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(
            !bytes.contains(&device) && !bytes.contains(&bot.user_id),
            "{} is not encrypted",
            path.display()
        );
    }
    assert!(bot.terminate(20).success());

    // The same homeserver written with a trailing slash.
    let config = std::fs::read_to_string(bot.config_path()).unwrap();
    let slashed = config.replacen(&format!("{}\"", hs.url), &format!("{}/\"", hs.url), 1);
    assert_ne!(slashed, config);
    std::fs::write(bot.config_path(), &slashed).unwrap();
    bot.restart();
    assert!(
        bot.log().contains("matrix: session restored"),
        "{}",
        bot.log()
    );
    assert_eq!(bot.saved_device_id().as_deref(), Some(device.as_str()));
    assert!(bot.terminate(20).success());

    // An unreadable session.json: a clear stop, nothing deleted.
    let session = state.join("matrix/session.json");
    let saved = std::fs::read(&session).unwrap();
    std::fs::write(&session, &saved[..saved.len() / 2]).unwrap();
    let sdk_files = state.join("matrix/sdk").read_dir().unwrap().count();
    bot.launch();
    let st = bot.wait_exit(60);
    assert_eq!(st.code(), Some(1), "{}", bot.log());
    assert!(
        bot.log().contains("cannot be read") && bot.log().contains("--reset-matrix-device"),
        "{}",
        bot.log()
    );
    assert_eq!(
        state.join("matrix/sdk").read_dir().unwrap().count(),
        sdk_files
    );
    std::fs::write(&session, &saved).unwrap();
    bot.restart();
    assert_eq!(bot.saved_device_id().as_deref(), Some(device.as_str()));
    assert!(bot.terminate(20).success());

    // On request: a new device, the old one moved aside, answering.
    bot.args = vec!["--reset-matrix-device".into()];
    bot.restart();
    bot.args.clear();
    let new_device = bot.saved_device_id().expect("a new session");
    assert_ne!(new_device, device);
    let old = std::fs::read_dir(state.join("matrix"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("old-"))
        .expect("the old device moved aside");
    assert!(old.join("session.json").exists() && old.join("sdk").is_dir());
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot.user_id], false).await;
    ann.wait_joined(&room, &bot.user_id, REPLY_SECS).await;
    let q = ann.say(&room, "!trade").await;
    assert!(ann.reply_to(&q, REPLY_SECS).await.body.contains("769"));
    assert_eq!(loose_paths(&state), Vec::<String>::new());
    assert!(!bot.all_logs().contains(&passphrase));
}

/// A Telegram broadcast of 2,000 chats under Telegram's enforced limits
/// (about 70 s of sending at 30/s), paused on top by a 30 s flood-control
/// answer, does not delay a Matrix room's notification: the room has it
/// within 5 s (a bounded wait; delivery itself takes well under a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_broadcast_and_pause_never_hold_up_a_matrix_room() {
    use common::telegram::{Emulator, TOKEN};
    const CHATS: u64 = 2_000;
    let hs = Synapse::shared();
    let emu = Emulator::start();
    emu.enforce_limits();
    let tmp = tempfile::tempdir().unwrap();
    let list: String = (0..CHATS)
        .map(|i| format!("tg:{} trade\n", 900_000 + i))
        .collect();
    let file = tmp.path().join("chats.txt");
    std::fs::write(&file, list).unwrap();
    let out = common::factbot(
        &tmp.path().join("state"),
        &["subscriptions", "--import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let name = unique("bot");
    let (bot_id, _, _) = hs.register(&name, common::matrix::BOT_PASSWORD, false);
    let port = common::free_port();
    let config = format!(
        "[store]\npath = \"state\"\n[telegram]\napi_url = \"{}/\"\n[matrix]\nhomeserver_url = \"{}\"\nuser_id = \"{bot_id}\"\n{}",
        emu.url,
        hs.url,
        notify_config(port)
    );
    let _bot = MatrixBot::start_with_config(
        tmp.path(),
        &bot_id,
        &config,
        vec![
            (
                "MATRIX_PASSWORD".into(),
                common::matrix::BOT_PASSWORD.into(),
            ),
            ("TELOXIDE_TOKEN".into(), TOKEN.into()),
        ],
        "info",
    );
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot_id], false).await;
    ann.wait_joined(&room, &bot_id, REPLY_SECS).await;
    let q = ann.say(&room, "!subscribe visit").await;
    ann.reply_to(&q, REPLY_SECS).await;

    let a = announce(port, Some("trade"), "Telegram broadcast");
    assert_eq!(a["chats"], CHATS);
    let sent = || emu.sends_by_chat().values().sum::<u64>();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sent() < 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "the broadcast did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Telegram answers the next send with a 30 s pause for the whole bot.
    emu.fault(
        serde_json::json!({"method": "sendMessage", "kind": "429", "retry_after": 30, "count": 1}),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while emu.get("/control/faults")["result"][0]["served"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pause was not served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = std::time::Instant::now();
    announce(port, Some("visit"), "Matrix news during the broadcast");
    ann.wait_for(&bot_id, "Matrix news during the broadcast", 5)
        .await;
    let took = t.elapsed();
    let so_far = sent();
    assert!(so_far < CHATS, "the broadcast was over ({so_far} sent)");
    eprintln!("the room had it after {took:?}, with {so_far} of {CHATS} Telegram chats done");
}

/// Matrix sends are idempotent: a proxy in front of Synapse loses the
/// answer to the first attempt of every notification part after Synapse
/// has posted it, and Synapse rate-limits the bot hard (1 event/s, burst
/// 1). Each retry reuses the part's transaction id, so Synapse answers with
/// the event it already has: each part of a two-part notification appears
/// in the room exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_matrix_send_posts_nothing_twice() {
    let hs = Synapse::shared();
    let (_, admin_token, _) = hs.register(&unique("admin"), "pw", true);
    let name = unique("bot");
    let (bot_id, _, _) = hs.register(&name, common::matrix::BOT_PASSWORD, false);
    hs.override_ratelimit(&admin_token, &bot_id, 1, 1);
    let proxy = common::matrix::LossyProxy::start(&hs.url, "lossy0").await;
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let config = format!(
        "[store]\npath = \"state\"\n[matrix]\nhomeserver_url = \"{}\"\nuser_id = \"{bot_id}\"\n{}",
        proxy.url,
        notify_config(port)
    );
    let mut bot = MatrixBot::start_with_config(
        tmp.path(),
        &bot_id,
        &config,
        vec![(
            "MATRIX_PASSWORD".into(),
            common::matrix::BOT_PASSWORD.into(),
        )],
        "debug",
    );
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot_id], false).await;
    ann.wait_joined(&room, &bot_id, REPLY_SECS).await;
    let q = ann.say(&room, "!subscribe").await;
    ann.reply_to(&q, REPLY_SECS).await;

    // Over Matrix's 8,000 characters a message: two parts.
    let words: Vec<String> = (0..1_000).map(|i| format!("lossy{i:04}")).collect();
    let a = announce(port, None, &words.join(" "));
    assert_eq!(a["chats"], 1);
    bot.wait_log("notify: notification complete", 1, 180);
    let p = progress(port, &a["id"]);
    assert_eq!(
        (p["delivered"].as_u64(), p["failed"].as_u64()),
        (Some(1), Some(0)),
        "{p}"
    );
    ann.wait_for(&bot_id, "lossy0999", REPLY_SECS).await;
    // One more round trip: a duplicate would have arrived by now.
    let q = ann.say(&room, "!subscriptions").await;
    ann.reply_to(&q, REPLY_SECS).await;
    let cut = proxy.cut.load(std::sync::atomic::Ordering::SeqCst);
    assert!(cut >= 2, "each part's first answer was lost ({cut})");
    assert!(
        bot.log().contains("notify: send failed, retrying"),
        "{}",
        bot.log()
    );
    assert_eq!(
        count_in(&ann, room.room_id(), &bot_id, "lossy0000"),
        1,
        "{:#?}",
        ann.seen
    );
    assert_eq!(
        count_in(&ann, room.room_id(), &bot_id, "lossy0999"),
        1,
        "{:#?}",
        ann.seen
    );
    assert_eq!(
        count_in(&ann, room.room_id(), &bot_id, "lossy"),
        2,
        "two parts, once each"
    );
}

/// A room upgrade is followed: the bot joins the successor of a public
/// room by itself, the room's subscription and `!lang` move with it, and
/// the next notification arrives there (in the room's language), not in
/// the old room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_room_keeps_its_subscription_and_language() {
    use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
    use matrix_sdk::ruma::api::client::room::upgrade_room;
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), &notify_config(port));
    let mut ann = Person::new(hs, &unique("ann")).await;
    let mut req = CreateRoom::new();
    req.invite = vec![bot.user_id.parse().unwrap()];
    req.preset = Some(RoomPreset::PublicChat);
    let old = ann.client.create_room(req).await.unwrap();
    ann.sync(Duration::ZERO).await;
    ann.wait_joined(&old, &bot.user_id, REPLY_SECS).await;
    let q = ann.say(&old, "!subscribe trade").await;
    ann.reply_to(&q, REPLY_SECS).await;
    let q = ann.say(&old, "!lang ru").await;
    ann.reply_to(&q, REPLY_SECS).await;

    let up = ann
        .client
        .send(upgrade_room::v3::Request::new(
            old.room_id().to_owned(),
            matrix_sdk::ruma::RoomVersionId::V11,
        ))
        .await
        .expect("upgrade the room");
    ann.sync(Duration::ZERO).await;
    let new = ann
        .client
        .get_room(&up.replacement_room)
        .expect("the new room");
    ann.wait_joined(&new, &bot.user_id, REPLY_SECS).await;
    bot.wait_log("subscriptions and language moved", 1, REPLY_SECS);

    let a = announce(port, Some("trade"), "After the upgrade");
    assert_eq!(a["chats"], 1);
    let got = ann
        .wait_for(&bot.user_id, "After the upgrade", REPLY_SECS)
        .await;
    assert!(
        got.body.to_lowercase().contains("объявление"),
        "in the room's language: {}",
        got.body
    );
    let q = ann.say(&new, "!subscriptions").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        r.body.contains("trade") || r.body.contains("торгов"),
        "{}",
        r.body
    );
    assert_eq!(
        count_in(&ann, new.room_id(), &bot.user_id, "After the upgrade"),
        1
    );
    assert_eq!(
        count_in(&ann, old.room_id(), &bot.user_id, "After the upgrade"),
        0
    );
}

/// Messages sent while the bot was down, more than one sync returns, are
/// paged back after the restart: in a one-to-one room all 105 questions
/// are answered once; in a group only the mention among 105 messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_missed_beyond_one_sync_are_answered_after_a_restart() {
    const MANY: usize = 105;
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let mut bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), "");
    let mut ann = Person::new(hs, &unique("ann")).await;
    let mut bob = Person::new(hs, &unique("bob")).await;
    let dm = ann.create_room(&[&bot.user_id], false).await;
    ann.wait_joined(&dm, &bot.user_id, REPLY_SECS).await;
    let (group, bob_group) = ann.group_with(&mut bob, &bot.user_id).await;
    let q = ann.say(&dm, "!visit").await;
    ann.reply_to(&q, REPLY_SECS).await;
    let q = ann.say(&group, "!visit").await;
    ann.reply_to(&q, REPLY_SECS).await;

    let st = bot.terminate(20);
    assert!(st.success(), "SIGTERM: {st}; log:\n{}", bot.log());
    let mut questions = Vec::new();
    for i in 0..MANY {
        questions.push(ann.say(&dm, &format!("!fact trade.2011 {i}")).await);
    }
    let bot_uid: OwnedUserId = bot.user_id.parse().unwrap();
    let mention = bob
        .send(
            &bob_group,
            RoomMessageEventContent::text_plain("factbot, how much was trade in 2011?")
                .add_mentions(Mentions::with_user_ids([bot_uid])),
        )
        .await;
    for i in 1..MANY {
        bob.say(&bob_group, &format!("chatter {i}")).await;
    }
    let before = ann
        .seen
        .iter()
        .filter(|(r, s)| r == group.room_id() && s.sender == bot.user_id.as_str())
        .count();
    bot.restart();
    bot.wait_log("the rest were paged back", 2, 60);
    for q in &questions {
        ann.reply_to(q, 60).await;
    }
    ann.reply_to(&mention, 60).await;
    let q = ann.say(&group, "!people").await;
    ann.reply_to(&q, REPLY_SECS).await;
    for q in &questions {
        assert_eq!(ann.replies_to(q).len(), 1, "one answer to {q}");
    }
    let after = ann
        .seen
        .iter()
        .filter(|(r, s)| r == group.room_id() && s.sender == bot.user_id.as_str())
        .count();
    assert_eq!(
        after - before,
        2,
        "in the group only the mention (and !people) were answered"
    );
}

/// A bot muted in a room (its power level below what sending needs) gets
/// `M_FORBIDDEN`: the room's notification waits, the subscription stays,
/// and once the bot may speak again the notification arrives, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_bot_keeps_the_subscription_and_delivers_once_unmuted() {
    let hs = Synapse::shared();
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut bot = MatrixBot::start(hs, tmp.path(), &unique("bot"), &notify_config(port));
    let mut ann = Person::new(hs, &unique("ann")).await;
    let room = ann.create_room(&[&bot.user_id], false).await;
    ann.wait_joined(&room, &bot.user_id, REPLY_SECS).await;
    let q = ann.say(&room, "!subscribe").await;
    ann.reply_to(&q, REPLY_SECS).await;

    let bot_uid: OwnedUserId = bot.user_id.parse().unwrap();
    room.update_power_levels(vec![(&bot_uid, (-1).into())])
        .await
        .expect("mute the bot");
    let a = announce(port, None, "Said while muted");
    assert_eq!(a["chats"], 1);
    bot.wait_log("refuses the bot's messages for now", 1, REPLY_SECS);
    let p = progress(port, &a["id"]);
    assert_eq!(p["pending"].as_u64(), Some(1), "{p}");

    room.update_power_levels(vec![(&bot_uid, 0.into())])
        .await
        .expect("unmute the bot");
    ann.wait_for(&bot.user_id, "Said while muted", 60).await;
    bot.wait_log("notify: notification complete", 1, REPLY_SECS);
    let q = ann.say(&room, "!subscriptions").await;
    let r = ann.reply_to(&q, REPLY_SECS).await;
    assert!(
        r.body.contains("all topics"),
        "still subscribed: {}",
        r.body
    );
    assert_eq!(ann.count(&bot.user_id, "Said while muted"), 1);
    assert!(
        !bot.log().contains("subscription is dropped"),
        "{}",
        bot.log()
    );
}
