//! End to end: notifications with the real `factbot run` and the Telegram
//! Bot API emulator — subscriptions and who may change them, fact changes,
//! the daily digest (with a controlled clock, `FACTBOT_NOW`), announcements
//! from a chat and from the shell, 500 chats with a kill -9 in the middle of
//! the broadcast, flood control and a blocked chat, a migrated group, and a
//! config-subscribed channel. Every count is taken on the emulator side.

#![cfg(feature = "telegram")]

mod common;

use common::free_port;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::telegram::{BotProcess, Emulator};
use serde_json::{json, Value};

/// The sender of `Emulator::say` in a group: the user whose id is the
/// chat id's absolute value.
fn sender(chat: i64) -> i64 {
    chat.abs()
}
const ADMIN: i64 = 9009;
const ADMIN_TOKEN: &str = "admin-TEST-token-never-logged";
const COMPLETE: &str = "notify: notification complete";

fn text(e: &Value) -> String {
    e["text"].as_str().unwrap_or_default().to_string()
}

/// Says `q` in `chat` and returns the bot's reply event.
fn ask(emu: &Emulator, chat: i64, q: &str) -> Value {
    let after = emu.last_seq();
    emu.say(chat, q);
    emu.next(Some(chat), "sent", after, 30)
}

fn config(admin_port: u16, extra_telegram: &str, extra: &str) -> String {
    format!(
        "admins = [{ADMIN}]\n{extra_telegram}\n[notify]\nadmin_listen = \"127.0.0.1:{admin_port}\"\nadmin_token = \"{ADMIN_TOKEN}\"\nmax_in_flight = 8\n{extra}"
    )
}

/// The change since `before`, per chat, of successful sends.
fn delta(emu: &Emulator, before: &HashMap<i64, u64>) -> HashMap<i64, u64> {
    emu.sends_by_chat()
        .into_iter()
        .map(|(c, n)| (c, n - before.get(&c).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn only(pairs: &[(i64, u64)]) -> HashMap<i64, u64> {
    pairs.iter().copied().collect()
}

fn announce_http(port: u16, topic: Option<&str>, text: &str) -> Value {
    ureq::post(&format!("http://127.0.0.1:{port}/announce"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send_json(json!({"topic": topic, "text": text}))
        .expect("the admin endpoint answers")
        .into_json()
        .expect("JSON")
}

fn factbot_cli(cfg: &Path, args: &[&str]) -> std::process::Output {
    Command::new(common::BIN)
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env_remove("FACTBOT_CONFIG")
        .env_remove("FACTBOT_ADMIN_TOKEN")
        .output()
        .expect("run factbot")
}

#[test]
fn changes_and_announcements_reach_exactly_the_subscribed_chats_once() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    const TRADE: i64 = -7001;
    const VISIT: i64 = -7002;
    const OTHER: i64 = -7003;
    const ALL: i64 = 5005;
    const CHANNEL: i64 = -1009999;
    const NOT_ADMIN_CHANNEL: i64 = -1008888;
    let bot_id: i64 = 123456; // the number before ':' in the test token
    emu.member(NOT_ADMIN_CHANNEL, bot_id, "member");
    let cfg = config(
        port,
        &format!("channels = [{{ chat = {CHANNEL}, topics = [\"trade\"] }}, {{ chat = {NOT_ADMIN_CHANNEL} }}]"),
        "",
    );
    let mut bot = BotProcess::start_with(&emu, dir.path(), &cfg);
    for g in [TRADE, VISIT] {
        emu.member(g, sender(g), "administrator");
    }
    emu.member(OTHER, sender(OTHER), "creator");

    assert!(text(&ask(&emu, TRADE, "/subscribe trade")).contains("subscribed to: trade"));
    assert!(text(&ask(&emu, VISIT, "/subscribe visit")).contains("visit"));
    assert!(text(&ask(&emu, ALL, "/subscribe")).contains("all topics"));
    // Another group: a plain member is refused and nothing changes; after
    // the creator subscribes and unsubscribes it, nothing is left.
    emu.say_as(
        OTHER,
        "/subscribe all",
        json!({"id": 1002, "first_name": "Bob"}),
    );
    let refused = emu.next(Some(OTHER), "sent", 0, 30);
    assert!(
        text(&refused).contains("Only an administrator"),
        "{refused}"
    );
    assert!(text(&ask(&emu, OTHER, "/subscriptions")).contains("no subscriptions"));
    ask(&emu, OTHER, "/subscribe trade");
    assert!(text(&ask(&emu, OTHER, "/unsubscribe")).contains("no longer subscribed"));
    bot.wait_log(
        "telegram: the bot is NOT an administrator of this channel",
        1,
        10,
    );
    assert!(bot.log().contains(&NOT_ADMIN_CHANNEL.to_string()));

    // 1. An announcement from a bot admin's private chat: preview, confirm.
    let before = emu.sends_by_chat();
    let preview = ask(&emu, ADMIN, "/announce trade New trade figures are out");
    assert!(
        text(&preview).contains("Chats it will reach: 3"),
        "{preview}"
    );
    let data = preview["message"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .unwrap()
        .to_string();
    let after = emu.last_seq();
    emu.press(
        ADMIN,
        preview["message"]["message_id"].as_i64().unwrap(),
        &data,
    );
    let confirmed = emu.next(Some(ADMIN), "edited", after, 30);
    assert!(
        text(&confirmed).contains("sending to chats: 3"),
        "{confirmed}"
    );
    bot.wait_log(COMPLETE, 1, 60);
    assert_eq!(
        delta(&emu, &before),
        only(&[(TRADE, 1), (ALL, 1), (CHANNEL, 1), (ADMIN, 1)])
    );
    // A second press of the same button sends nothing more.
    let before = emu.sends_by_chat();
    let after = emu.last_seq();
    emu.press_forced(
        ADMIN,
        confirmed["message"]["message_id"].as_i64().unwrap(),
        &data,
    );
    let again = emu.next(Some(ADMIN), "edited", after, 30);
    assert!(
        text(&again).contains("already sent or cancelled"),
        "{again}"
    );
    // A non-admin cannot announce.
    let no = ask(&emu, 5006, "/announce hello");
    assert!(text(&no).contains("Only the bot's administrators"), "{no}");
    assert_eq!(delta(&emu, &before), only(&[(5006, 1)]));

    // 2. An announcement from the shell, to every subscriber, with progress.
    let before = emu.sends_by_chat();
    let seq = emu.last_seq();
    let out = factbot_cli(
        &dir.path().join("bot.toml"),
        &["announce", "Maintenance tonight"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("4 chats") && stdout.contains("delivered 4/4"),
        "{stdout}"
    );
    assert_eq!(
        delta(&emu, &before),
        only(&[(TRADE, 1), (VISIT, 1), (ALL, 1), (CHANNEL, 1)])
    );
    let msg = emu.next(Some(VISIT), "sent", seq, 5);
    assert!(text(&msg).contains("Announcement"), "{msg}");
    // A missing or wrong token is refused on every route, before the body
    // is read: a garbage body gets 401 too, not a parse error that would
    // tell the caller what the endpoint expects.
    let base = format!("http://127.0.0.1:{port}");
    for auth in [None, Some("Bearer wrong"), Some("bench-admin-token")] {
        for (method, path) in [
            ("POST", "/announce"),
            ("POST", "/import"),
            ("GET", "/notifications"),
            ("GET", "/notifications/1"),
        ] {
            let mut req = ureq::request(method, &format!("{base}{path}"));
            if let Some(a) = auth {
                req = req.set("Authorization", a);
            }
            let r = if method == "POST" {
                req.set("Content-Type", "application/json")
                    .send_string("{not json")
            } else {
                req.call()
            };
            assert!(
                matches!(r, Err(ureq::Error::Status(401, _))),
                "{method} {path} with {auth:?}: {r:?}"
            );
        }
    }

    // A local client that never finishes its headers holds no slot for
    // long, and connections beyond the cap are closed at once; the
    // endpoint then answers the operator as before.
    {
        use factbot::notify::admin::{HEADER_TIMEOUT, MAX_CONNECTIONS};
        let mut slow = common::hold_every_slot(
            port,
            MAX_CONNECTIONS,
            b"GET /notifications HTTP/1.1\r\nHost: x\r\n",
        );
        let limit = HEADER_TIMEOUT.as_secs() + 20;
        for c in &mut slow {
            assert!(
                common::closed_within(c, limit),
                "a slow admin client was not disconnected"
            );
        }
        let r = ureq::get(&format!("{base}/notifications"))
            .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .call();
        assert!(r.is_ok(), "{r:?}");
    }

    // 3. A dataset change imported while the bot is stopped goes out at
    //    start to subscribers of the fact's topic.
    let st = bot.terminate(20);
    assert!(st.success(), "SIGTERM: {st}; log:\n{}", bot.log());
    let data_dir = common::copy_dataset(dir.path());
    let facts = data_dir.join("facts.toml");
    let edited = std::fs::read_to_string(&facts).unwrap().replacen(
        "text_en = \"Total trade turnover between Belarus and Kazakhstan amounted to USD 769 million in 2011.\"",
        "text_en = \"Total trade turnover between Belarus and Kazakhstan amounted to USD 770 million in 2011.\"",
        1,
    );
    assert!(edited.contains("USD 770 million in 2011."));
    std::fs::write(&facts, edited).unwrap();
    let out = common::factbot(
        &dir.path().join("state"),
        &["import", data_dir.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 updated"),
        "{out:?}"
    );
    let before = emu.sends_by_chat();
    let seq = emu.last_seq();
    let bot = BotProcess::start_with(&emu, dir.path(), &cfg);
    bot.wait_log(COMPLETE, 1, 60);
    assert_eq!(
        delta(&emu, &before),
        only(&[(TRADE, 1), (ALL, 1), (CHANNEL, 1)])
    );
    let upd = emu.next(Some(TRADE), "sent", seq, 5);
    assert!(
        text(&upd).contains("Updated") && text(&upd).contains("770"),
        "{upd}"
    );

    // 4. A live import while the bot runs: `factbot import` finds the store
    //    locked and hands the import to the bot, whose change goes out now.
    let again = std::fs::read_to_string(&facts).unwrap().replacen(
        "USD 770 million in 2011.\"",
        "USD 771 million in 2011.\"",
        1,
    );
    std::fs::write(&facts, again).unwrap();
    let before = emu.sends_by_chat();
    let seq = emu.last_seq();
    let out = factbot_cli(
        &dir.path().join("bot.toml"),
        &["import", data_dir.to_str().unwrap()],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("running bot") && stdout.contains("1 updated"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bot.wait_log(COMPLETE, 2, 60);
    assert_eq!(
        delta(&emu, &before),
        only(&[(TRADE, 1), (ALL, 1), (CHANNEL, 1)])
    );
    let upd = emu.next(Some(ALL), "sent", seq, 5);
    assert!(text(&upd).contains("771"), "{upd}");
    // Answers use the new fact at once.
    assert!(text(&ask(&emu, ALL, "/fact trade.2011")).contains("USD 771 million"));

    // `factbot notifications` through the running bot.
    let out = factbot_cli(&dir.path().join("bot.toml"), &["notifications"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("announcement") && listing.contains("change"),
        "{listing}"
    );
    drop(bot);
    // With the bot stopped, straight from the store: every delivery done.
    let out = factbot_cli(
        &dir.path().join("bot.toml"),
        &["notifications", "--format", "json"],
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON from factbot notifications");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 4, "{list:?}");
    assert!(
        list.iter().all(|p| p["pending"] == 0 && p["failed"] == 0),
        "{list:?}"
    );
    assert_eq!(list[1]["delivered"], 4);
    assert!(!std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .any(|e| std::fs::read_to_string(e.path())
            .unwrap_or_default()
            .contains(ADMIN_TOKEN)));
}

/// Keeps the first `keep` facts of `facts.toml` (still valid TOML, as a
/// file cut off at a fact boundary would be).
fn truncate_facts(facts: &Path, keep: usize) {
    let text = std::fs::read_to_string(facts).unwrap();
    let cut = text
        .match_indices("[[fact]]")
        .nth(keep)
        .map(|(i, _)| i)
        .unwrap();
    std::fs::write(facts, &text[..cut]).unwrap();
}

/// Removes the facts with these ids from `facts.toml`.
fn remove_facts(facts: &Path, ids: &[&str]) {
    let mut text = std::fs::read_to_string(facts).unwrap();
    for id in ids {
        let start = text.find(&format!("[[fact]]\nid = \"{id}\"")).unwrap();
        let end = text[start + 1..]
            .find("[[fact]]")
            .map_or(text.len(), |i| start + 1 + i);
        text.replace_range(start..end, "");
    }
    std::fs::write(facts, text).unwrap();
}

/// A live import of a truncated `facts.toml` through the running bot is
/// refused: the facts, the answers and the subscribers are untouched and
/// nothing is sent. Removals that go through reach each chat as one
/// summary of its topics' removed facts — also with `--allow-removals`.
#[test]
fn a_broken_dataset_cannot_wipe_the_bot_and_removals_are_summarised() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    const TRADE: i64 = -7101;
    const ALL: i64 = 7102;
    let data_dir = common::copy_dataset(dir.path());
    let facts = data_dir.join("facts.toml");
    // The store is seeded from this directory before the bot starts.
    let out = common::factbot(
        &dir.path().join("state"),
        &["import", data_dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let bot = BotProcess::start_with(&emu, dir.path(), &config(port, "", ""));
    emu.member(TRADE, sender(TRADE), "administrator");
    ask(&emu, TRADE, "/subscribe trade");
    ask(&emu, ALL, "/subscribe");
    let cfg = dir.path().join("bot.toml");
    let import = |extra: &[&str]| {
        let mut args = vec!["import"];
        args.extend_from_slice(extra);
        args.push(data_dir.to_str().unwrap());
        factbot_cli(&cfg, &args)
    };

    truncate_facts(&facts, 7);
    let before = emu.sends_by_chat();
    let out = import(&[]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("would remove 42 of the 49 stored facts") && err.contains("--allow-removals"),
        "{err}"
    );
    bot.wait_log("notify: live import refused", 1, 10);
    assert!(text(&ask(&emu, ALL, "/fact trade.2011")).contains("USD 769 million"));
    assert!(text(&ask(&emu, TRADE, "/subscriptions")).contains("trade"));
    assert_eq!(
        delta(&emu, &before),
        only(&[(ALL, 1), (TRADE, 1)]),
        "only the two answers"
    );

    // Three facts removed on purpose: one summary per chat.
    common::copy_dataset(dir.path());
    remove_facts(
        &facts,
        &["trade.gateways", "trade.gateway_asia", "visit.year"],
    );
    let before = emu.sends_by_chat();
    let seq = emu.last_seq();
    let out = import(&[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 removed"),
        "{out:?}"
    );
    bot.wait_log(COMPLETE, 2, 60);
    assert_eq!(delta(&emu, &before), only(&[(ALL, 1), (TRADE, 1)]));
    let all = emu.next(Some(ALL), "sent", seq, 5);
    assert!(
        text(&all).contains("Facts removed from the dataset: 3")
            && text(&all).contains("visit.year"),
        "{all}"
    );
    let trade = emu.next(Some(TRADE), "sent", seq, 5);
    assert!(
        text(&trade).contains("Facts removed from the dataset: 2")
            && !text(&trade).contains("visit.year"),
        "{trade}"
    );

    // The operator insists on the cut-off file: one summary each again.
    truncate_facts(&facts, 7);
    let before = emu.sends_by_chat();
    let out = import(&["--allow-removals"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("39 removed"),
        "{out:?}"
    );
    bot.wait_log(COMPLETE, 4, 60);
    assert_eq!(delta(&emu, &before), only(&[(ALL, 1), (TRADE, 1)]));
}

#[test]
fn the_daily_digest_goes_out_once_at_local_time_and_is_caught_up_or_skipped() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    const MILESTONES: i64 = 6001;
    const TRADE: i64 = 6002;
    let digest = "[notify.digest]\ntime = \"09:00\"\ntime_zone = \"Europe/Minsk\"\ncatch_up_minutes = 60\ncountdowns = [{ date = \"2027-01-01\", en = \"the new year\", ru = \"нового года\" }]\n";
    let cfg = config(free_port(), "", digest);
    {
        // Subscribe, with the clock a minute before the digest.
        let mut bot = BotProcess::start_env(
            &emu,
            dir.path(),
            &cfg,
            &[("FACTBOT_NOW", "2026-11-09T08:59:00+03:00")],
        );
        ask(&emu, MILESTONES, "/subscribe milestones");
        ask(&emu, TRADE, "/subscribe trade");
        bot.wait_log("notify: daily digest scheduled", 1, 10);
        let st = bot.terminate(20);
        assert!(st.success(), "SIGTERM: {st}; log:\n{}", bot.log());
    }
    // Running through 09:00 Minsk time: the digest goes out once.
    let before = emu.sends_by_chat();
    let seq = emu.last_seq();
    let mut bot = BotProcess::start_env(
        &emu,
        dir.path(),
        &cfg,
        &[("FACTBOT_NOW", "2026-11-09T08:59:58+03:00")],
    );
    bot.wait_log(COMPLETE, 1, 30);
    assert_eq!(delta(&emu, &before), only(&[(MILESTONES, 1)]));
    let d = emu.next(Some(MILESTONES), "sent", seq, 5);
    assert!(text(&d).contains("On this day in 2012"), "{d}");
    assert!(text(&d).contains("days until the new year"), "{d}");
    // No update is in flight: a kill loses nothing.
    bot.kill9();

    // Restarted the same morning: the day's digest is not sent again.
    let before = emu.sends_by_chat();
    let mut bot = BotProcess::start_env(
        &emu,
        dir.path(),
        &cfg,
        &[("FACTBOT_NOW", "2026-11-09T09:20:00+03:00")],
    );
    bot.wait_log("notify: next digest", 1, 10);
    bot.kill9();
    // Down at 09:00 the next day, back 20 minutes later: caught up once.
    let mut bot = BotProcess::start_env(
        &emu,
        dir.path(),
        &cfg,
        &[("FACTBOT_NOW", "2026-11-10T09:20:00+03:00")],
    );
    bot.wait_log(COMPLETE, 1, 30);
    bot.wait_log("notify: next digest", 1, 10);
    bot.kill9();
    // Down for the whole morning of the 11th: too late, skipped and logged.
    let mut bot = BotProcess::start_env(
        &emu,
        dir.path(),
        &cfg,
        &[("FACTBOT_NOW", "2026-11-11T12:00:00+03:00")],
    );
    bot.wait_log("older than catch_up_minutes; skipped", 1, 10);
    bot.wait_log("notify: next digest", 1, 10);
    bot.kill9();
    assert_eq!(delta(&emu, &before), only(&[(MILESTONES, 1)]));
}

#[test]
fn five_hundred_chats_all_get_a_broadcast_despite_a_kill_9_in_the_middle() {
    const N: i64 = 500;
    const MAX_IN_FLIGHT: u64 = 8;
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(port, "", "");
    let mut bot = BotProcess::start_with(&emu, dir.path(), &cfg);
    let chats: Vec<i64> = (0..N).map(|i| 200_001 + i).collect();
    // Every chat subscribes the way a user would.
    for &c in &chats {
        emu.say(c, "/subscribe");
    }
    bot.wait_answered(N as usize, 120);
    let before = emu.sends_by_chat();
    assert_eq!(
        before.values().sum::<u64>(),
        N as u64,
        "one reply per /subscribe"
    );

    let a = announce_http(port, None, "Broadcast to all");
    assert_eq!(a["chats"], N);
    // Kill it once a fifth has gone out.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent: u64 = delta(&emu, &before).values().sum();
        if sent >= (N as u64) / 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the broadcast did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    bot.kill9();
    let at_kill: u64 = delta(&emu, &before).values().sum();
    assert!(
        at_kill < N as u64,
        "killed after the broadcast ended ({at_kill})"
    );

    let bot = BotProcess::start_with(&emu, dir.path(), &cfg);
    bot.wait_log(COMPLETE, 1, 120);
    let got = delta(&emu, &before);
    let missing: Vec<_> = chats.iter().filter(|c| !got.contains_key(c)).collect();
    assert!(
        missing.is_empty(),
        "chats without the broadcast: {missing:?}"
    );
    let duplicates: u64 = got.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= MAX_IN_FLIGHT,
        "{duplicates} duplicates, more than the {MAX_IN_FLIGHT} sends that can be in flight"
    );
    eprintln!(
        "500 chats: {at_kill} delivered before the kill, {duplicates} duplicates after the restart"
    );
}

#[test]
fn flood_control_and_a_blocked_chat_do_not_stop_the_others() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(port, "", "");
    let bot = BotProcess::start_with(&emu, dir.path(), &cfg);
    let chats: Vec<i64> = (0..6).map(|i| 300_001 + i).collect();
    const BLOCKED: i64 = 300_003;
    for &c in &chats {
        ask(&emu, c, "/subscribe");
    }
    let before = emu.sends_by_chat();
    emu.fault(json!({"kind": "403", "chat_id": BLOCKED}));
    emu.fault(json!({"kind": "429", "method": "sendMessage", "retry_after": 1, "count": 4}));
    let a = announce_http(port, None, "Despite everything");
    assert_eq!(a["chats"], 6);
    bot.wait_log(COMPLETE, 1, 60);
    let expected: HashMap<i64, u64> = chats
        .iter()
        .filter(|&&c| c != BLOCKED)
        .map(|&c| (c, 1))
        .collect();
    assert_eq!(delta(&emu, &before), expected);
    let stats = emu.get("/control/stats");
    assert!(
        stats["result"]["faults"]["SendMessage"]["429"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{stats}"
    );
    bot.wait_log("its subscription is dropped", 1, 5);
    // The blocked chat is unsubscribed: the next announcement skips it.
    let a = announce_http(port, None, "Again");
    assert_eq!(a["chats"], 5);
    bot.wait_log(COMPLETE, 2, 60);
    let p: Value = ureq::get(&format!(
        "http://127.0.0.1:{port}/notifications/{}",
        a["id"]
    ))
    .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
    .call()
    .unwrap()
    .into_json()
    .unwrap();
    assert_eq!(
        (p["delivered"].as_u64(), p["failed"].as_u64()),
        (Some(5), Some(0)),
        "{p}"
    );
}

/// A bot with the default config (admin endpoint on `port`) and `group`
/// subscribed to trade by one of its administrators. Bind the parts in
/// this order: they are dropped bot first, the emulator last.
fn bot_with_group_on_trade(group: i64) -> (Emulator, tempfile::TempDir, u16, BotProcess) {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bot = BotProcess::start_with(&emu, dir.path(), &config(port, "", ""));
    emu.member(group, sender(group), "administrator");
    assert!(text(&ask(&emu, group, "/subscribe trade")).contains("subscribed to: trade"));
    (emu, dir, port, bot)
}

/// A group that restricts the bot (Telegram: "not enough rights to send
/// text messages") pauses its deliveries instead of losing its
/// subscription: the notification arrives once the bot may post again (the
/// first retry comes after 10 s), and the next one still goes there.
#[test]
fn a_group_that_restricts_the_bot_gets_the_notification_once_it_may_post_again() {
    const GROUP: i64 = -4600;
    let (emu, _dir, port, bot) = bot_with_group_on_trade(GROUP);
    let before = emu.sends_by_chat();
    emu.fault(
        json!({"kind": "400", "method": "sendMessage", "chat_id": GROUP, "count": 1,
        "description": "Bad Request: not enough rights to send text messages to the chat"}),
    );
    announce_http(port, Some("trade"), "While restricted");
    bot.wait_log("the chat refuses the bot's messages for now", 1, 30);
    bot.wait_log(COMPLETE, 1, 60);
    assert_eq!(delta(&emu, &before), only(&[(GROUP, 1)]));
    assert!(!bot.log().contains("its subscription is dropped"));
    let a = announce_http(port, Some("trade"), "Allowed again");
    assert_eq!(a["chats"], 1, "still subscribed: {a}");
    bot.wait_log(COMPLETE, 2, 60);
    assert_eq!(delta(&emu, &before), only(&[(GROUP, 2)]));
}

#[test]
fn a_group_migrated_to_a_supergroup_keeps_receiving() {
    const OLD: i64 = -4500;
    const NEW: i64 = -1004500;
    let (emu, _dir, port, bot) = bot_with_group_on_trade(OLD);
    let before = emu.sends_by_chat();
    emu.fault(json!({"kind": "migrate", "chat_id": OLD, "to": NEW}));
    announce_http(port, Some("trade"), "First after the upgrade");
    bot.wait_log(COMPLETE, 1, 60);
    assert_eq!(delta(&emu, &before), only(&[(NEW, 1)]));
    bot.wait_log("notify: chat migrated; subscription moved", 1, 5);
    // The subscription itself moved: the next one goes straight there.
    let a = announce_http(port, Some("trade"), "Second");
    assert_eq!(a["chats"], 1);
    bot.wait_log(COMPLETE, 2, 60);
    assert_eq!(delta(&emu, &before), only(&[(NEW, 2)]));
}

/// Long notifications under Telegram's real limits (the emulator enforces
/// 30 messages/s overall and 1/s per chat): a 10,000-character announcement
/// (several messages) and one of 2,100 emoji (4,200 UTF-16 code units, so
/// more than one message although under 4,096 characters) reach 50 chats,
/// with a 429 answered to the second part in ten chats each time. Every
/// part arrives exactly once in every chat, in order, the text is whole,
/// and the bot's pacing never trips the emulator's own limits.
#[test]
fn long_notifications_arrive_whole_and_once_under_telegram_limits() {
    const N: usize = 50;
    let emu = Emulator::start();
    emu.enforce_limits();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let chats: Vec<i64> = (0..N as i64).map(|i| 400_001 + i).collect();
    let file = dir.path().join("chats.txt");
    let list: String = chats.iter().map(|c| format!("tg:{c} all\n")).collect();
    std::fs::write(&file, list).unwrap();
    let out = common::factbot(
        &dir.path().join("state"),
        &["subscriptions", "--import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let bot = BotProcess::start_with(&emu, dir.path(), &config(port, "", ""));
    bot.wait_log("notify: admin endpoint listening", 1, 30);

    let mut long = String::new();
    let mut i = 0;
    while long.chars().count() < 10_000 {
        long.push_str(&format!("w{i:05} "));
        i += 1;
    }
    let long = long.trim_end().to_string();
    let emoji = "🎉".repeat(2_100);
    let strip = |s: &str| -> String {
        let mut out = String::new();
        let mut tag = false;
        for c in s.chars() {
            match c {
                '<' => tag = true,
                '>' => tag = false,
                c if !tag && !c.is_whitespace() => out.push(c),
                _ => {}
            }
        }
        out
    };
    for (k, body) in [&long, &emoji].into_iter().enumerate() {
        let seq = emu.last_seq();
        emu.fault(json!({"method": "sendMessage", "kind": "429", "retry_after": 1, "nth": 2, "count": 10}));
        let a = announce_http(port, None, body);
        assert_eq!(a["chats"], N);
        bot.wait_log(COMPLETE, k + 1, 300);
        let events = emu.events(None, seq, 0);
        let whole = strip(&format!("Announcement{body}"));
        let mut counts = Vec::new();
        for c in &chats {
            let parts: Vec<String> = events
                .iter()
                .filter(|e| e["kind"] == "sent" && e["chat_id"].as_i64() == Some(*c))
                .map(text)
                .collect();
            let distinct: std::collections::HashSet<&String> = parts.iter().collect();
            assert_eq!(
                distinct.len(),
                parts.len(),
                "chat {c}: a part arrived twice"
            );
            assert!(parts.iter().all(|p| p.encode_utf16().count() <= 4096));
            assert_eq!(
                strip(&parts.concat()),
                whole,
                "chat {c}: the text is not whole, in order"
            );
            counts.push(parts.len());
        }
        assert!(counts[0] >= 2, "{counts:?}");
        assert!(counts.iter().all(|n| *n == counts[0]), "{counts:?}");
        let p: Value = ureq::get(&format!(
            "http://127.0.0.1:{port}/notifications/{}",
            a["id"]
        ))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
        assert_eq!(
            (p["delivered"].as_u64(), p["failed"].as_u64()),
            (Some(N as u64), Some(0)),
            "{p}"
        );
        eprintln!("announcement {k}: {} parts per chat", counts[0]);
    }
    let stats = emu.get("/control/stats");
    let faults = &stats["result"]["faults"]["SendMessage"];
    assert_eq!(
        faults["429"].as_u64(),
        Some(20),
        "the injected 429s: {stats}"
    );
    assert_eq!(
        faults["rate_limit"].as_u64(),
        None,
        "the bot tripped the limits: {stats}"
    );
}

/// A subscription no transport of this bot can serve (an `mx:` room while
/// `[matrix]` is not configured) fails at once with a log line naming the
/// room, so `factbot announce` finishes and says so; the Telegram chat gets
/// it.
#[test]
fn a_chat_no_transport_serves_fails_fast_and_announce_finishes() {
    const ROOM: &str = "mx:!nowhere:example.org";
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("chats.txt");
    std::fs::write(&file, format!("tg:7101 all\n{ROOM} all\n")).unwrap();
    let out = common::factbot(
        &dir.path().join("state"),
        &["subscriptions", "--import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let bot = BotProcess::start_with(&emu, dir.path(), &config(port, "", ""));
    bot.wait_log("notify: admin endpoint listening", 1, 30);
    let before = emu.sends_by_chat();
    let mut announce = Command::new(common::BIN)
        .args(["announce", "Hello everyone", "--config"])
        .arg(dir.path().join("bot.toml"))
        .env_remove("FACTBOT_CONFIG")
        .env_remove("FACTBOT_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = announce.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = announce.kill();
            panic!(
                "factbot announce did not finish within 60 s:\n{}",
                bot.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(announce.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(announce.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "one chat could not be reached: {stdout}");
    assert!(
        stderr.contains("1 of 2 chats could not be reached"),
        "{stderr}"
    );
    assert!(stdout.contains("delivered 1/2, failed 1"), "{stdout}");
    assert_eq!(delta(&emu, &before), only(&[(7101, 1)]));
    let log = bot.log();
    assert!(
        log.lines()
            .any(|l| l.contains("no transport") && l.contains(ROOM)),
        "the log names the room: {log}"
    );
}
