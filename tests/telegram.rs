//! End to end: the real `factbot run` against the Telegram Bot API emulator
//! on 127.0.0.1 — private chats, groups, buttons, inline mode, escaping,
//! charts as photos, 429/5xx bursts, kill -9 and restart, graceful shutdown, a wrong token.
//! Every bot process runs at RUST_LOG=trace and its log is checked for the
//! token when it ends.

#![cfg(feature = "telegram")]

mod common;

use common::telegram::{BotProcess, Emulator, BOT_USERNAME};
use serde_json::json;

/// Private chat ids are positive, group ids negative.
const ANN: i64 = 5001;
/// Seconds a reply the issue wants "within 2 s" may take here: 2 s is the
/// target (on an idle machine these replies take well under 100 ms), the
/// margin keeps a loaded 2-core CI machine from flaking. What these waits
/// catch took 17 to over 100 s before.
const PROMPT_SECS: u64 = 5;

fn text(e: &serde_json::Value) -> String {
    e["text"].as_str().unwrap_or_default().to_string()
}

/// Asks in `chat` and returns the bot's (first) reply event.
fn ask(emu: &Emulator, chat: i64, q: &str) -> serde_json::Value {
    let after = emu.last_seq();
    emu.say(chat, q);
    emu.next(Some(chat), "sent", after, 20)
}

#[test]
fn private_chat_commands_and_questions_in_both_languages() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let _bot = BotProcess::start(&emu, dir.path());

    let start = ask(&emu, ANN, "/start");
    assert!(text(&start).contains("factbot"), "{start}");
    let help = ask(&emu, ANN, "/help");
    assert!(text(&help).contains("/milestones"), "{help}");
    assert_eq!(help["parse_mode"], "HTML");

    let trade = ask(&emu, ANN, "/trade");
    assert!(text(&trade).contains("USD 769 million"), "{trade}");
    let q = emu.last_seq();
    let sent = emu.say(ANN, "When was the Single Economic Space launched?");
    let en = emu.next(Some(ANN), "sent", q, 20);
    assert!(text(&en).contains("January 2012"), "{en}");
    // It replies to the question it answers.
    assert_eq!(
        en["message"]["reply_to_message"]["message_id"],
        sent["message"]["message_id"]
    );

    let ru = ask(&emu, ANN, "Сколько составил товарооборот в 2011 году?");
    assert!(text(&ru).contains("769 млн"), "{ru}");

    let no = ask(&emu, ANN, "What is the capital of France?");
    assert!(text(&no).contains("I have no fact on that"), "{no}");

    // The command menu was registered in English and in Russian.
    let token = common::telegram::TOKEN;
    let en = emu.get(&format!("/bot{token}/getMyCommands"));
    let ru = emu.get(&format!("/bot{token}/getMyCommands?language_code=ru"));
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["command"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&en), names(&ru));
    assert!(names(&en).contains(&"milestones".to_string()), "{en}");
    assert_eq!(
        en["result"][2]["description"],
        "the official visit of 9–10 November"
    );
    assert_eq!(
        ru["result"][2]["description"],
        "официальный визит 9–10 ноября"
    );
}

#[test]
fn groups_answer_only_what_is_addressed_to_the_bot() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let _bot = BotProcess::start(&emu, dir.path());
    const GROUP: i64 = -4242;

    let r = ask(&emu, GROUP, "/trade");
    assert!(text(&r).contains("USD 769 million"));
    let r = ask(&emu, GROUP, &format!("/milestones@{BOT_USERNAME}"));
    assert!(text(&r).contains("2007"));
    let r = ask(
        &emu,
        GROUP,
        &format!("@{BOT_USERNAME} what does Kazakhstan export?"),
    );
    assert!(text(&r).contains("crude aluminium"), "{r}");
    let r = ask(
        &emu,
        GROUP,
        &format!("@{BOT_USERNAME} Что экспортирует Беларусь?"),
    );
    assert!(text(&r).contains("тракторы"), "{r}");

    // Not for this bot: another bot's command, plain chatter, an unknown
    // command. Updates of one chat are handled in order, so once the reply
    // to the marker arrives, those three have been handled — silently.
    let before = emu.last_seq();
    emu.say(GROUP, "/trade@OtherBot");
    emu.say(GROUP, "how about lunch?");
    emu.say(GROUP, "/kick");
    emu.say(GROUP, "/visit");
    let marker = emu.next(Some(GROUP), "sent", before, 20);
    assert!(
        text(&marker).contains("Myasnovich"),
        "the first reply must be to /visit: {marker}"
    );
    // A reply to the bot's message is addressed to it.
    let after = emu.last_seq();
    emu.reply(
        GROUP,
        marker["message_id"].as_i64().unwrap(),
        "and the trade in 2011?",
    );
    let r = emu.next(Some(GROUP), "sent", after, 20);
    assert!(text(&r).contains("USD 769 million"), "{r}");
}

/// Follow-ups: in a group each member's "and in 2011?" continues their
/// own last answer, and a reply to one of the bot's answers continues that
/// answer, whoever replies; in a private chat, small talk and deep links.
#[test]
fn follow_ups_continue_each_members_answer_and_replies_continue_theirs() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let _bot = BotProcess::start(&emu, dir.path());
    const GROUP: i64 = -4343;
    let alice = json!({"id": 71, "first_name": "Alice", "language_code": "en"});
    let bob = json!({"id": 72, "first_name": "Bob", "language_code": "en"});
    let ask_as = |from: &serde_json::Value, q: &str| {
        let after = emu.last_seq();
        emu.say_as(GROUP, &format!("@{BOT_USERNAME} {q}"), from.clone());
        emu.next(Some(GROUP), "sent", after, 20)
    };

    let milestones = ask_as(&alice, "What happened in 2010?");
    assert!(text(&milestones).contains("2010"), "{milestones}");
    let trade = ask_as(&bob, "How much was trade in 2011?");
    assert!(text(&trade).contains("USD 769 million"), "{trade}");
    // Alice's follow-up continues Alice's answer, not Bob's later one.
    let r = ask_as(&alice, "and in 2011?");
    assert!(text(&r).contains("Internal borders"), "{r}");
    assert!(!text(&r).contains("769"), "{r}");
    // Bob replies to Alice's first answer: it continues that one.
    let after = emu.last_seq();
    emu.reply_as(
        GROUP,
        milestones["message_id"].as_i64().unwrap(),
        "and in 2015?",
        bob.clone(),
    );
    let r = emu.next(Some(GROUP), "sent", after, 20);
    assert!(text(&r).contains("Eurasian Economic Union"), "{r}");
    // "why?" cites the sentence behind Bob's last answer.
    let r = ask_as(&bob, "why?");
    assert!(text(&r).contains("paragraph"), "{r}");

    // Small talk and a deep link in a private chat.
    let r = ask(&emu, ANN, "hi");
    assert!(text(&r).starts_with("Hello"), "{r}");
    assert!(!text(&r).contains("no fact"), "{r}");
    let r = ask(&emu, ANN, "/start trade");
    assert!(
        text(&r).starts_with("Hello") && text(&r).contains("USD 769 million"),
        "{r}"
    );
}

#[test]
fn buttons_edit_the_message_in_place_and_inline_mode_offers_facts() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let _bot = BotProcess::start(&emu, dir.path());

    let r = ask(&emu, ANN, "/trade");
    let kb = &r["message"]["reply_markup"]["inline_keyboard"];
    let data: Vec<String> = kb
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|b| b["callback_data"].as_str().unwrap().to_string())
        .collect();
    assert!(data.contains(&"/source trade.2011".to_string()), "{data:?}");
    assert!(data.contains(&"/chart trade".to_string()), "{data:?}");
    assert!(data.iter().all(|d| d.len() <= 64));

    let after = emu.last_seq();
    emu.press(ANN, r["message_id"].as_i64().unwrap(), "/source trade.2011");
    let edited = emu.next(Some(ANN), "edited", after, 20);
    assert_eq!(edited["message_id"], r["message_id"]);
    assert!(
        text(&edited).contains("<blockquote>Total trade turnover"),
        "{edited}"
    );
    emu.next(None, "callback_answer", after, 20);

    let after = emu.last_seq();
    emu.inline_query("customs union");
    let answer = emu.next(None, "inline_answer", after, 20);
    let results = answer["results"].as_array().unwrap();
    assert!(!results.is_empty() && results.len() <= 50);
    assert!(
        results
            .iter()
            .any(|r| r["id"] == "milestones.customs_union"),
        "{answer}"
    );
}

/// The results of the bot's answer to an inline `query`.
fn inline(emu: &Emulator, query: &str) -> Vec<serde_json::Value> {
    let after = emu.last_seq();
    emu.inline_query(query);
    let answer = emu.next(None, "inline_answer", after, 20);
    answer["results"].as_array().cloned().unwrap_or_default()
}

/// The inline result with `id`.
fn result<'a>(results: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no inline result {id}: {results:#?}"))
}

/// The keyboard's callback data, row by row.
fn button_data(e: &serde_json::Value) -> Vec<String> {
    e["message"]["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .filter_map(|b| b["callback_data"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn charts_are_photos_uploaded_once_and_then_sent_by_file_id() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = BotProcess::start(&emu, dir.path());

    // Inline mode before any chat asked for a chart (and no cache chat):
    // the charts as text, stating the figures.
    let before = inline(&emu, "chart");
    for name in ["trade", "milestones", "investment"] {
        let r = result(&before, &format!("chart.{name}.en"));
        assert_eq!(r["type"], "article", "{r}");
    }
    let trade_text = &result(&before, "chart.trade.en")["input_message_content"]["message_text"];
    assert!(trade_text.as_str().unwrap().contains("769"), "{trade_text}");

    // The first request uploads the PNG (multipart) with an HTML caption
    // citing its paragraph, the buttons, and a reply to the question.
    let after = emu.last_seq();
    let q = emu.say(ANN, "/chart trade");
    let first = emu.next(Some(ANN), "sent", after, 20);
    assert_eq!(first["method"], "SendPhoto", "{first}");
    assert_eq!(first["uploaded"], true, "{first}");
    assert_eq!(first["parse_mode"], "HTML");
    let caption = first["caption"].as_str().unwrap();
    assert!(
        caption.starts_with("<b>") && caption.contains("769") && caption.contains("[¶4]"),
        "{caption}"
    );
    assert_eq!(
        first["message"]["reply_to_message"]["message_id"],
        q["message"]["message_id"]
    );
    let data = button_data(&first);
    assert!(
        data.contains(&"/trade".to_string()) && data.contains(&"/chart milestones".to_string()),
        "{data:?}"
    );
    let file_id = first["photo_file_id"].as_str().unwrap().to_string();
    let png = emu.file(&file_id);
    common::check_png(&png, 1200, 750);
    assert_eq!(emu.uploads("SendPhoto"), 1);

    // Inline mode now offers the uploaded chart as a cached photo.
    let now = inline(&emu, "trade");
    let photo = result(&now, "chart.trade.en");
    assert_eq!(photo["type"], "photo", "{photo}");
    assert_eq!(photo["photo_file_id"], file_id.as_str());
    assert_eq!(photo["parse_mode"], "HTML");
    assert!(
        photo["caption"].as_str().unwrap().contains("[¶4]"),
        "{photo}"
    );
    assert!(
        now.iter().any(|r| r["id"] == "trade.2011"),
        "the facts follow the chart"
    );

    // The same chart in another chat (a group): by the stored file id.
    let group = -4242;
    let after = emu.last_seq();
    emu.say(group, &format!("/chart@{BOT_USERNAME} trade"));
    let again = emu.next(Some(group), "sent", after, 20);
    assert_eq!(again["method"], "SendPhoto");
    assert_eq!(again["uploaded"], false, "{again}");
    assert_eq!(again["photo_file_id"], file_id.as_str());
    assert_eq!(emu.uploads("SendPhoto"), 1, "no second upload");

    // The Russian chart is another picture: uploaded once of its own.
    let ru = ask(&emu, ANN, "/chart торговля");
    assert_eq!(ru["uploaded"], true, "{ru}");
    assert!(ru["caption"].as_str().unwrap().contains("769"), "{ru}");
    assert_ne!(ru["photo_file_id"], file_id.as_str());
    common::check_png(&emu.file(ru["photo_file_id"].as_str().unwrap()), 1200, 750);

    // A "Chart" button under a text answer sends the chart below it, by id.
    let trade = ask(&emu, ANN, "/trade");
    let after = emu.last_seq();
    emu.press(ANN, trade["message_id"].as_i64().unwrap(), "/chart trade");
    let pressed = emu.next(Some(ANN), "sent", after, 20);
    assert_eq!(pressed["method"], "SendPhoto");
    assert_eq!(pressed["photo_file_id"], file_id.as_str());
    emu.next(None, "callback_answer", after, 20);
    // "As text" under the photo answers below it (a caption is no page to
    // edit), and the button stops spinning.
    let after = emu.last_seq();
    emu.press(ANN, first["message_id"].as_i64().unwrap(), "/trade");
    let as_text = emu.next(Some(ANN), "sent", after, 20);
    assert!(text(&as_text).contains("USD 769 million"), "{as_text}");
    emu.next(None, "callback_answer", after, 20);
    assert_eq!(emu.uploads("SendPhoto"), 2);

    // Telegram forgets the files (another token, purged): the stored id is
    // refused once, the chart uploaded again, and the new id reused.
    emu.forget_files();
    // Inline mode first: Telegram refuses the cached photo, the bot
    // forgets the id and answers with the chart as text.
    let refused = inline(&emu, "chart trade");
    assert_eq!(result(&refused, "chart.trade.en")["type"], "article");
    let renewed = ask(&emu, ANN, "/chart trade");
    assert_eq!(renewed["uploaded"], true, "{renewed}");
    let new_id = renewed["photo_file_id"].as_str().unwrap().to_string();
    assert_ne!(new_id, file_id);
    assert_eq!(emu.uploads("SendPhoto"), 3);

    // A photo Telegram refuses for good: the answer comes as text, the
    // figures in words.
    emu.fault(json!({"method": "sendPhoto", "kind": "400", "description": "Bad Request: PHOTO_INVALID_DIMENSIONS", "count": 1}));
    let refused = ask(&emu, ANN, "/chart milestones");
    assert_eq!(refused["method"], "SendMessage", "{refused}");
    assert!(text(&refused).starts_with("📊 "), "{refused}");

    // The id survives a restart.
    bot.terminate(10);
    let _bot = BotProcess::start(&emu, dir.path());
    let after_restart = ask(&emu, ANN, "/chart trade");
    assert_eq!(after_restart["uploaded"], false, "{after_restart}");
    assert_eq!(after_restart["photo_file_id"], new_id.as_str());
    assert_eq!(emu.uploads("SendPhoto"), 3);
}

#[test]
fn inline_mode_uploads_charts_to_the_cache_chat_once() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = -1_009_999_000_001_i64;
    let _bot = BotProcess::start_with(&emu, dir.path(), &format!("chart_cache_chat = {cache}\n"));
    // Nobody has asked for a chart: inline mode uploads the three Russian
    // charts to the cache chat and offers them as pictures.
    let after = emu.last_seq();
    let results = inline(&emu, "графики");
    let mut ids = Vec::new();
    for name in ["trade", "milestones", "investment"] {
        let r = result(&results, &format!("chart.{name}.ru"));
        assert_eq!(r["type"], "photo", "{r}");
        ids.push(r["photo_file_id"].as_str().unwrap().to_string());
    }
    let uploads: Vec<_> = emu
        .events(Some(cache), after, 1)
        .into_iter()
        .filter(|e| e["method"] == "SendPhoto")
        .collect();
    assert_eq!(uploads.len(), 3, "{uploads:#?}");
    assert!(uploads.iter().all(|e| e["uploaded"] == true));
    for id in &ids {
        common::check_png(&emu.file(id), 1200, 750);
    }
    // Asked again, and in a chat: no more uploads.
    let again = inline(&emu, "график торговля");
    assert_eq!(
        result(&again, "chart.trade.ru")["photo_file_id"],
        ids[0].as_str()
    );
    let sent = ask(&emu, ANN, "/chart торговля");
    assert_eq!(sent["uploaded"], false, "{sent}");
    assert_eq!(sent["photo_file_id"], ids[0].as_str());
    assert_eq!(emu.uploads("SendPhoto"), 3);
}

#[test]
fn html_special_characters_come_back_escaped() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let _bot = BotProcess::start(&emu, dir.path());
    let r = ask(&emu, ANN, "/search <b>tariffs</b> & \"quotas\"");
    let t = text(&r);
    assert!(
        t.contains("&lt;b&gt;tariffs&lt;/b&gt; &amp; &quot;quotas&quot;"),
        "{t}"
    );
    assert!(!t.contains("<b>tariffs"), "{t}");
}

/// `/lang xx` in a group changes what everyone there gets: only a group
/// administrator may; anyone may look at the setting.
#[test]
fn a_groups_language_is_changed_by_its_admins_only() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let _bot = BotProcess::start(&emu, dir.path());
    const GROUP: i64 = -4343;
    // `say` writes as the user whose id is the group id's absolute value.
    emu.member(GROUP, GROUP.abs(), "administrator");
    let bob = json!({"id": 1003, "first_name": "Bob", "language_code": "en"});

    let after = emu.last_seq();
    emu.say_as(GROUP, "/lang ru", bob.clone());
    let refused = emu.next(Some(GROUP), "sent", after, 20);
    assert!(
        text(&refused).contains("Only an administrator"),
        "{refused}"
    );
    let after = emu.last_seq();
    emu.say_as(GROUP, "/lang", bob);
    let shown = emu.next(Some(GROUP), "sent", after, 20);
    assert!(text(&shown).contains("follow the language"), "{shown}");
    assert!(text(&ask(&emu, GROUP, "/trade")).contains("USD 769 million"));

    assert!(text(&ask(&emu, GROUP, "/lang ru")).contains("по-русски"));
    let r = ask(&emu, GROUP, "/trade");
    assert!(text(&r).contains("769 млн"), "{r}");
}

/// One message in, one message out: 4,000 `"` after `/fact` (24,000
/// characters once escaped) get one short reply, and another chat's
/// question is answered meanwhile.
#[test]
fn a_huge_message_gets_one_short_reply() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let _bot = BotProcess::start(&emu, dir.path());
    const OTHER: i64 = 5002;
    let after = emu.last_seq();
    emu.say(ANN, &format!("/fact {}", "\"".repeat(4_000)));
    emu.say(OTHER, "How much was trade in 2011?");
    // A bounded wait, generous for a loaded machine: not a timing claim.
    let r = emu.next(Some(OTHER), "sent", after, 20);
    assert!(text(&r).contains("USD 769 million"), "{r}");
    let r = emu.next(Some(ANN), "sent", after, 20);
    assert!(text(&r).contains("There is no fact"), "{r}");
    assert!(text(&r).chars().count() < 1_000, "{}", text(&r).len());
    // A marker: by its reply every earlier one has been sent.
    ask(&emu, ANN, "/help");
    assert_eq!(emu.sends_to(ANN), 2, "one reply to the huge message");
}

#[test]
fn bursts_of_429_and_5xx_are_ridden_out_with_each_reply_sent_once() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let _bot = BotProcess::start(&emu, dir.path());
    ask(&emu, ANN, "/start");

    emu.fault(json!({"method": "sendMessage", "kind": "429", "retry_after": 1, "count": 3}));
    let r = ask(&emu, ANN, "/trade");
    assert!(text(&r).contains("USD 769 million"));

    // teloxide waits 10 s after any 5xx before reporting it; one is enough.
    emu.fault(json!({"method": "sendMessage", "kind": "500", "count": 1}));
    emu.fault(json!({"method": "sendMessage", "kind": "drop", "count": 1}));
    let r = ask(&emu, ANN, "/investment");
    assert!(text(&r).contains("73"), "{r}");

    // Each of the three replies was delivered exactly once.
    assert_eq!(emu.sends_to(ANN), 3);
    let faults = emu.get("/control/stats")["result"]["faults"]["SendMessage"].clone();
    assert_eq!(faults["429"], 3, "{faults}");
    assert_eq!(faults["500"], 1, "{faults}");
}

#[test]
fn kill_9_and_restart_replays_nothing_and_loses_nothing() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = BotProcess::start(&emu, dir.path());
    ask(&emu, ANN, "/trade");
    ask(&emu, ANN, "/visit");
    // Both answered and recorded. (A kill between sending a reply and
    // recording it repeats that one reply: delivery is at least once.)
    bot.wait_answered(2, 10);
    bot.kill9();

    // Written while the bot is down.
    emu.say(ANN, "/milestones");
    emu.say(ANN, "What does Belarus export?");
    let after = emu.last_seq();
    let _bot = BotProcess::start(&emu, dir.path());
    let first = emu.next(Some(ANN), "sent", after, 30);
    assert!(
        text(&first).contains("2007"),
        "the first reply after restart answers /milestones: {first}"
    );
    let second = emu.next(Some(ANN), "sent", first["seq"].as_u64().unwrap(), 30);
    assert!(text(&second).contains("tractors"), "{second}");
    // A marker proves the queue is drained; nothing was answered twice.
    ask(&emu, ANN, "/help");
    assert_eq!(emu.sends_to(ANN), 5);
}

#[test]
fn sigterm_stops_the_bot_gracefully() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = BotProcess::start(&emu, dir.path());
    ask(&emu, ANN, "/start");
    let status = bot.terminate(10);
    assert!(status.success(), "{status:?}\n{}", bot.log());
    assert!(bot.log().contains("telegram: stopped"));
}

#[test]
fn a_wrong_token_is_a_clear_error_at_start() {
    let emu = Emulator::start();
    emu.fault(json!({"method": "getMe", "kind": "400", "description": "Unauthorized"}));
    let dir = tempfile::tempdir().unwrap();
    let mut bot = BotProcess::start(&emu, dir.path());
    let status = bot.wait_exit(30);
    assert_eq!(status.code(), Some(1));
    assert!(
        bot.log().contains("the bot token was rejected"),
        "{}",
        bot.log()
    );
}

fn webhook_config(port: u16, path: &str) -> String {
    format!(
        "mode = \"webhook\"\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\npath = \"{path}\"\nsecret_token = \"{WEBHOOK_SECRET}\"\n"
    )
}

const WEBHOOK_SECRET: &str = "webhook-secret-1_of-the-test";

/// A POST to the webhook with `secret` (if any) and `body`; the status.
fn post_hook(port: u16, secret: Option<&str>, body: &[u8]) -> u16 {
    let mut req = ureq::post(&format!("http://127.0.0.1:{port}/tg-hook"))
        .set("Content-Type", "application/json")
        .timeout(std::time::Duration::from_secs(20));
    if let Some(s) = secret {
        req = req.set("X-Telegram-Bot-Api-Secret-Token", s);
    }
    match req.send_bytes(body) {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("the webhook did not answer: {e}"),
    }
}

/// The status the webhook answers to a request that announces (in
/// `Content-Length`) a body of `len` bytes and sends none of it.
fn announced_body_status(port: u16, secret: Option<&str>, len: usize) -> u16 {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let secret = secret
        .map(|s| format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n"))
        .unwrap_or_default();
    write!(
        c,
        "POST /tg-hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{secret}Content-Length: {len}\r\n\r\n"
    )
    .unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut head = [0u8; 12];
    c.read_exact(&mut head).expect("a status line");
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[test]
fn webhook_mode_without_a_secret_refuses_to_start() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut bot = BotProcess::start_with(
        &emu,
        dir.path(),
        &format!(
            "mode = \"webhook\"\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\npath = \"/tg-hook\"\n"
        ),
    );
    let status = bot.wait_exit(30);
    assert_eq!(status.code(), Some(2), "{}", bot.log());
    assert!(bot.log().contains("needs secret_token"), "{}", bot.log());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );
}

/// The attacker's side of webhook mode: forged updates with no secret or a
/// wrong one (a private `/announce` "from" a bot admin, a group
/// `/subscribe` "from" the group itself) are refused with 401, an oversize
/// body with 413, a client that never finishes its headers is disconnected,
/// connections beyond the cap are closed at once — and meanwhile real
/// updates are still answered, and nothing was subscribed or broadcast.
#[test]
fn webhook_mode_refuses_forged_oversize_and_slow_requests() {
    use factbot::transport::telegram::webhook::{HEADER_TIMEOUT, MAX_BODY, MAX_CONNECTIONS};
    const ADMIN: i64 = 7007;
    const GROUP: i64 = -7070;
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut bot = BotProcess::start_with(
        &emu,
        dir.path(),
        &format!("admins = [{ADMIN}]\n{}", webhook_config(port, "/tg-hook")),
    );
    let r = ask(&emu, ANN, "/trade");
    assert!(text(&r).contains("USD 769 million"), "{r}");
    // (A subscriber, so that a forged announcement would have someone to reach.)
    assert!(text(&ask(&emu, ANN, "/subscribe")).contains("all topics"));
    let before = emu.sends_by_chat();

    let announce = json!({"update_id": 900001, "message": {"message_id": 1, "date": 0,
        "chat": {"id": ADMIN, "type": "private", "first_name": "Eve"},
        "from": {"id": ADMIN, "is_bot": false, "first_name": "Eve"},
        "text": "/announce Forged announcement"}})
    .to_string();
    let subscribe = json!({"update_id": 900002, "message": {"message_id": 2, "date": 0,
        "chat": {"id": GROUP, "type": "supergroup", "title": "G"},
        "sender_chat": {"id": GROUP, "type": "supergroup", "title": "G"},
        "text": "/subscribe all"}})
    .to_string();
    for body in [&announce, &subscribe] {
        assert_eq!(post_hook(port, None, body.as_bytes()), 401);
        assert_eq!(
            post_hook(port, Some("wrong-secret-of-the-same-len"), body.as_bytes()),
            401
        );
        assert_eq!(post_hook(port, Some(""), body.as_bytes()), 401);
    }
    // Oversize: refused unread without the secret, and with it too (a
    // body streamed without a length is cut at the limit: unit-tested).
    assert_eq!(announced_body_status(port, None, MAX_BODY + 1), 401);
    assert_eq!(
        announced_body_status(port, Some(WEBHOOK_SECRET), MAX_BODY + 1),
        413
    );

    // Slow clients: every slot taken by a connection that never finishes
    // its headers; one more is closed at once.
    let mut slow = common::hold_every_slot(
        port,
        MAX_CONNECTIONS,
        b"POST /tg-hook HTTP/1.1\r\nHost: x\r\n",
    );
    // A real update arrives meanwhile: the emulator's push is refused
    // until the slow clients are cut off, then retried (as Telegram does).
    let after = emu.last_seq();
    emu.say(ANN, "/visit");
    let limit = HEADER_TIMEOUT.as_secs() + 20;
    for c in &mut slow {
        assert!(
            common::closed_within(c, limit),
            "a slow client was not disconnected"
        );
    }
    let r = emu.next(Some(ANN), "sent", after, 30);
    assert!(text(&r).contains("Myasnovich"), "{r}");

    // Nothing forged got through: no announcement preview to the "admin",
    // no reply in the group, only the one real reply.
    assert_eq!(
        emu.sends_by_chat()
            .into_iter()
            .map(|(c, n)| (c, n - before.get(&c).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect::<std::collections::HashMap<_, _>>(),
        std::collections::HashMap::from([(ANN, 1)])
    );
    assert!(bot.log().contains("telegram: webhook: request refused"));
    let status = bot.terminate(20);
    assert!(status.success(), "{status:?}");
    let o = common::factbot(&dir.path().join("state"), &["subscriptions"]);
    let subs = common::stdout(&o);
    assert_eq!(subs.trim(), format!("tg:{ANN}\tall"), "{subs}");
    assert!(
        !bot.log().contains(WEBHOOK_SECRET),
        "the webhook secret reached the log"
    );
}

/// Kills the bot (started with `extra_config`) while the reply to a
/// question is held by "retry after 60 s", restarts it, and checks the
/// question is answered exactly once.
fn held_reply_survives_kill_9(extra_config: &str) {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = BotProcess::start_with(&emu, dir.path(), extra_config);
    ask(&emu, ANN, "/start");
    emu.fault(json!({"method": "sendMessage", "kind": "429", "retry_after": 60, "count": 1}));
    emu.say(ANN, "/milestones");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while emu.get("/control/stats")["result"]["faults"]["SendMessage"]["429"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the 429 was never served"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    bot.kill9();
    let after = emu.last_seq();
    let _bot = BotProcess::start_with(&emu, dir.path(), extra_config);
    let r = emu.next(Some(ANN), "sent", after, 30);
    assert!(text(&r).contains("2007"), "{r}");
    ask(&emu, ANN, "/help");
    assert_eq!(emu.sends_to(ANN), 3, "/start, /milestones once, /help");
}

/// Polling: Telegram forgot the update once the inbox took it in; only the
/// inbox brings it back after the restart.
#[test]
fn an_update_taken_in_but_not_answered_at_kill_9_is_answered_after_restart() {
    held_reply_survives_kill_9("");
}

/// Webhook: the update was stored before Telegram's call was answered; the
/// inbox brings it back after the restart.
#[test]
fn webhook_mode_answers_an_update_interrupted_by_kill_9_after_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    held_reply_survives_kill_9(&webhook_config(port, "/hook"));
}

/// Telegram chooses the next update id at random after a week without
/// updates, so ids can drop below the inbox's mark or jump far above it.
/// Either way every question is answered once, polling does not spin, and a
/// restart changes nothing.
#[test]
fn update_ids_that_start_over_are_answered_in_both_directions() {
    let emu = Emulator::start();
    emu.next_update_id(5_000);
    let dir = tempfile::tempdir().unwrap();
    let mut bot = BotProcess::start(&emu, dir.path());
    assert!(text(&ask(&emu, ANN, "/trade")).contains("USD 769 million"));

    // Down, far below everything taken in so far.
    emu.next_update_id(40);
    assert!(text(&ask(&emu, ANN, "/visit")).contains("Myasnovich"));
    // Idle, the bot holds one long poll at a time: a busy loop would make
    // hundreds of calls in this window (a window, not an event to await).
    let before = emu.calls("GetUpdates");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let polls = emu.calls("GetUpdates") - before;
    assert!(polls <= 2, "{polls} getUpdates calls in 2 s while idle");

    // The same after a restart.
    assert!(bot.terminate(10).success(), "{}", bot.log());
    let _bot = BotProcess::start(&emu, dir.path());
    assert!(text(&ask(&emu, ANN, "/milestones")).contains("2007"));
    // Up, far above, then down again.
    emu.next_update_id(3_000_000);
    assert!(text(&ask(&emu, ANN, "/investment")).contains("73"));
    emu.next_update_id(100);
    assert!(text(&ask(&emu, ANN, "/help")).contains("/milestones"));
    assert_eq!(emu.sends_to(ANN), 5, "each question answered once");
}

/// Idle for a minute against an emulator that holds every `getUpdates` for
/// its whole `timeout`, as Telegram does: no poll fails (the HTTP client
/// waits longer than the long poll), nothing is logged as a warning, and the
/// next question is answered at once — not after a backoff.
#[test]
fn an_idle_bot_polls_quietly_and_answers_at_once() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let bot = BotProcess::start(&emu, dir.path());
    ask(&emu, ANN, "/start");
    // The idle minute is the scenario itself, not a wait for an event.
    std::thread::sleep(std::time::Duration::from_secs(60));
    let log = bot.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        warnings.is_empty(),
        "warnings while idle:\n{}",
        warnings.join("\n")
    );
    let after = emu.last_seq();
    emu.say(ANN, "/trade");
    let r = emu.next(Some(ANN), "sent", after, PROMPT_SECS);
    assert!(text(&r).contains("USD 769 million"), "{r}");
}

/// 200 questions flood one chat, then someone asks in another chat: that
/// answer comes at once. The flooded chat gets its latest questions answered
/// and one note that earlier ones were skipped (not 200 answers trickling in
/// for minutes); every update is recorded as handled, nothing panics, and
/// memory stays flat.
fn a_flooded_chat_holds_up_no_other(extra_config: &str) {
    const FLOODER: i64 = 7001;
    const OTHER: i64 = 7002;
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let bot = BotProcess::start_with(&emu, dir.path(), extra_config);
    ask(&emu, ANN, "/start");
    let (_, peak_before) = bot.rss_kib();
    let flood_start = std::time::Instant::now();
    let flood: Vec<i64> = (0..200)
        .map(|i| {
            let q = if i % 2 == 0 {
                "/trade"
            } else {
                "When was the Customs Union formed?"
            };
            emu.say(FLOODER, q)["message"]["message_id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    // Rounded up: a flood sent in 1.9 s may see two replies paced at 1 a second.
    let flood_secs = flood_start.elapsed().as_secs_f64().ceil() as usize;
    let after = emu.last_seq();
    emu.say(OTHER, "/visit");
    let r = emu.next(Some(OTHER), "sent", after, PROMPT_SECS);
    assert!(text(&r).contains("Myasnovich"), "{r}");

    // Every update recorded as handled: /start, the flood, the other chat.
    bot.wait_answered(1 + 200 + 1, 60);
    emu.wait_confirmed(30);
    let sent: Vec<serde_json::Value> = emu
        .events(Some(FLOODER), 0, 0)
        .into_iter()
        .filter(|e| e["kind"] == "sent")
        .collect();
    let notes: Vec<String> = sent
        .iter()
        .map(text)
        .filter(|t| t.contains("skipped"))
        .collect();
    assert_eq!(notes.len(), 1, "one note per burst: {notes:?}");
    let answered: Vec<i64> = sent
        .iter()
        .filter_map(|e| e["message"]["reply_to_message"]["message_id"].as_i64())
        .collect();
    // While the flood comes in, the chat gets at most one answer a second
    // (Telegram's per-chat limit, kept by the Throttle); after it, the
    // latest MAX_WAITING (3) and the one in hand. On a loaded machine the
    // 200 questions take seconds to send, so the bound grows with that.
    assert!(
        answered.len() <= 3 + 3 + flood_secs,
        "a few answers, not the whole flood ({flood_secs} s to send it): {answered:?}"
    );
    for id in &flood[200 - 3..] {
        assert!(
            answered.contains(id),
            "the latest questions are answered: {answered:?}"
        );
    }
    let skipped: usize = notes[0]
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or(0);
    assert!(
        skipped > 0 && skipped + answered.len() <= 200,
        "{}",
        notes[0]
    );
    // The chat is quiet again and answers the next question.
    let marker = ask(&emu, FLOODER, "/help");
    assert!(text(&marker).contains("/milestones"), "{marker}");
    assert_eq!(emu.sends_to(FLOODER) as usize, sent.len() + 1);
    let log = bot.log();
    assert!(!log.contains("panicked"), "{log}");
    let (_, peak_after) = bot.rss_kib();
    assert!(
        peak_after < peak_before + 20 * 1024,
        "peak RSS grew from {peak_before} to {peak_after} KiB"
    );
}

#[test]
fn polling_a_flooded_chat_holds_up_no_other() {
    a_flooded_chat_holds_up_no_other("");
}

/// Webhook mode: Telegram sends one update of a chat at a time and waits for
/// the answer; an update is acknowledged once stored, so a flooded chat
/// does not hold one of Telegram's connections per question.
#[test]
fn webhook_a_flooded_chat_holds_up_no_other() {
    let port = common::free_port();
    a_flooded_chat_holds_up_no_other(&format!(
        "mode = \"webhook\"\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\npath = \"/hook\"\nsecret_token = \"flood-secret-0123456789\"\n"
    ));
}

/// SIGTERM while the Bot API cannot be reached at start (getMe retrying with
/// backoff, or hanging on a server that never answers): the bot exits 0
/// within 5 s.
#[test]
fn sigterm_stops_a_bot_that_cannot_reach_telegram() {
    // Refused connections: getMe fails at once and is retried with backoff.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", common::free_port());
    let mut bot = BotProcess::start_api(&url, dir.path(), "", &[]);
    bot.wait_log("getMe failed, retrying", 3, 30);
    let status = bot.terminate(5);
    assert!(status.success(), "{status:?}\n{}", bot.log());

    // A server that accepts connections and never answers: getMe hangs.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", hole.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut bot = BotProcess::start_api(&url, dir.path(), "", &[]);
    // The scenario: SIGTERM 3 s into the start-up.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let status = bot.terminate(5);
    assert!(status.success(), "{status:?}\n{}", bot.log());
    drop(hole);
}

/// SIGTERM while a reply is held by a 60 s `retry_after`: the bot exits 0
/// within 5 s, and the restart answers the question, once.
fn sigterm_during_a_held_retry_after(extra_config: &str) {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = BotProcess::start_with(&emu, dir.path(), extra_config);
    ask(&emu, ANN, "/start");
    emu.fault(json!({"method": "sendMessage", "kind": "429", "retry_after": 60, "count": 1}));
    emu.say(ANN, "/milestones");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while emu.get("/control/stats")["result"]["faults"]["SendMessage"]["429"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the 429 was never served"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = bot.terminate(5);
    assert!(status.success(), "{status:?}\n{}", bot.log());
    assert!(bot.log().contains("telegram: stopped"), "{}", bot.log());
    let after = emu.last_seq();
    let _bot = BotProcess::start_with(&emu, dir.path(), extra_config);
    let r = emu.next(Some(ANN), "sent", after, 30);
    assert!(text(&r).contains("2007"), "{r}");
    ask(&emu, ANN, "/help");
    assert_eq!(emu.sends_to(ANN), 3, "/start, /milestones once, /help");
}

#[test]
fn sigterm_during_a_held_retry_after_exits_at_once() {
    sigterm_during_a_held_retry_after("");
}

#[test]
fn webhook_sigterm_during_a_held_retry_after_exits_at_once() {
    let port = common::free_port();
    sigterm_during_a_held_retry_after(&format!(
        "mode = \"webhook\"\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\npath = \"/hook\"\nsecret_token = \"term-secret-0123456789\"\n"
    ));
}

/// Updates teloxide cannot read — a message missing a required field, a
/// kind of update newer than teloxide — are logged and dropped, as soon as
/// they arrive: acknowledged at once, nothing kept for them, not replayed at
/// the restart, and the chat's next question answered.
fn unreadable_updates_are_dropped(extra_config: &str) {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = BotProcess::start_with(&emu, dir.path(), extra_config);
    ask(&emu, ANN, "/start");
    emu.raw_update(json!({"message": {"message_id": 1, "date": 1, "chat": {"id": ANN}, "text": "no chat type"}}));
    emu.raw_update(json!({"some_future_update": {"id": "1", "chat": {"id": ANN}}}));
    let r = ask(&emu, ANN, "/trade");
    assert!(text(&r).contains("USD 769 million"), "{r}");
    bot.wait_log("cannot be read", 2, 10);
    emu.wait_confirmed(10);
    assert!(bot.terminate(10).success(), "{}", bot.log());
    let bot = BotProcess::start_with(&emu, dir.path(), extra_config);
    ask(&emu, ANN, "/help");
    assert!(
        !bot.log().contains("received before a restart"),
        "{}",
        bot.log()
    );
    assert_eq!(emu.sends_to(ANN), 3);
}

#[test]
fn polling_drops_unreadable_updates() {
    unreadable_updates_are_dropped("");
}

#[test]
fn webhook_drops_unreadable_updates() {
    let port = common::free_port();
    unreadable_updates_are_dropped(&format!(
        "mode = \"webhook\"\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\npath = \"/hook\"\nsecret_token = \"odd-secret-0123456789\"\n"
    ));
}
