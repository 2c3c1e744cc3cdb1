//! End to end: operations — the real `factbot run` against the Telegram Bot
//! API emulator, its `/metrics` scraped during the run (the counters move,
//! and no chat id, user text or token is in them), `/healthz` and `factbot
//! status` healthy while it polls and unhealthy, with the reason, when the
//! Bot API cannot be reached. Every wait is bounded.

#![cfg(feature = "telegram")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::telegram::{BotProcess, Emulator, TOKEN};
use serde_json::{json, Value};

const ANN: i64 = 5001;
const ADMIN_TOKEN: &str = "ops-admin-token-0123456789";

fn text(e: &Value) -> String {
    e["text"].as_str().unwrap_or_default().to_string()
}

fn ask(emu: &Emulator, chat: i64, q: &str) -> Value {
    let after = emu.last_seq();
    emu.say(chat, q);
    emu.next(Some(chat), "sent", after, 20)
}

fn get(port: u16, path: &str) -> (u16, String) {
    match ureq::get(&format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(10))
        .call()
    {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

fn scrape(port: u16) -> String {
    let (code, body) = get(port, "/metrics");
    assert_eq!(code, 200, "{body}");
    body
}

/// The value of one series (`name{labels}` exactly as rendered), or `None`.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

fn series(metrics: &str, series: &str) -> f64 {
    value(metrics, series).unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
}

/// Scrapes until `series` reaches `at_least` (at most `secs`).
fn wait_series(port: u16, name: &str, at_least: f64, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let m = scrape(port);
        if value(&m, name).is_some_and(|v| v >= at_least) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not reach {at_least} in {secs} s:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for `/healthz` to answer `code` (at most `secs`); its body.
fn wait_health(port: u16, code: u16, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let answer = match ureq::get(&format!("http://127.0.0.1:{port}/healthz"))
            .timeout(Duration::from_secs(5))
            .call()
        {
            Ok(r) | Err(ureq::Error::Status(_, r)) => Some((r.status(), r.into_string().unwrap())),
            Err(_) => None,
        };
        match answer {
            Some((status, body)) if status == code => return body,
            other => assert!(
                Instant::now() < deadline,
                "/healthz not {code} after {secs} s: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(cfg: &Path) -> std::process::Output {
    Command::new(common::BIN)
        .args(["status", "--config"])
        .arg(cfg)
        .env_remove("FACTBOT_CONFIG")
        .output()
        .expect("run factbot status")
}

#[test]
fn metrics_move_during_a_run_and_show_no_chat_text_or_token() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let (mport, aport) = (common::free_port(), common::free_port());
    let mut bot = BotProcess::start_with(
        &emu,
        dir.path(),
        &format!(
            "[notify]\nadmin_listen = \"127.0.0.1:{aport}\"\nadmin_token = \"{ADMIN_TOKEN}\"\n\
             [metrics]\nlisten = \"127.0.0.1:{mport}\"\n"
        ),
    );
    // Healthy once the first long poll is through.
    let health = wait_health(mport, 200, 30);
    assert!(
        health.starts_with("ok\nstore: ok\ntelegram: ok, last poll "),
        "{health}"
    );
    let st = status(&dir.path().join("bot.toml"));
    assert_eq!(st.status.code(), Some(0), "{st:?}");
    assert!(
        common::stdout(&st).starts_with("ok\nstore: ok\ntelegram: ok"),
        "{st:?}"
    );

    let m = scrape(mport);
    // Every series is there from the start, at zero.
    let answered_en =
        r#"factbot_questions_total{transport="telegram",lang="en",outcome="answered"}"#;
    assert_eq!(series(&m, answered_en), 0.0);
    let polled = series(
        &m,
        r#"factbot_last_poll_timestamp_seconds{transport="telegram"}"#,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - 90.0..=now + 1.0).contains(&polled),
        "{polled} vs {now}"
    );

    // Flood control on the next long poll (the one after the first
    // question arrives).
    emu.fault(json!({"method": "getUpdates", "kind": "429", "retry_after": 1, "count": 1}));
    // Questions: answered in English and in Russian, declined, a command.
    assert!(text(&ask(&emu, ANN, "/trade")).contains("USD 769 million"));
    assert!(text(&ask(
        &emu,
        ANN,
        "Сколько составил товарооборот в 2011 году?"
    ))
    .contains("769 млн"));
    assert!(
        text(&ask(&emu, ANN, "What is the capital of France?")).contains("I have no fact on that")
    );
    // Flood control on a reply: waited out, sent, and counted.
    emu.fault(json!({"method": "sendMessage", "kind": "429", "retry_after": 1, "count": 1}));
    assert!(text(&ask(&emu, ANN, "/help")).contains("/milestones"));
    // A reply whose first send is cut off: retried.
    emu.fault(json!({"method": "sendMessage", "kind": "drop", "count": 1}));
    assert!(text(&ask(&emu, ANN, "/investment")).contains("73"));
    // Buttons count as questions too: "Chart" under a text answer sends
    // the chart below it, "As text" under the chart answers below that.
    let trade = ask(&emu, ANN, "/trade");
    let after = emu.last_seq();
    emu.press(ANN, trade["message_id"].as_i64().unwrap(), "/chart trade");
    let chart = emu.next(Some(ANN), "sent", after, 30);
    assert_eq!(chart["method"], "SendPhoto", "{chart}");
    let after = emu.last_seq();
    emu.press(ANN, chart["message_id"].as_i64().unwrap(), "/trade");
    let as_text = emu.next(Some(ANN), "sent", after, 30);
    assert!(text(&as_text).contains("USD 769 million"), "{as_text}");
    wait_series(
        mport,
        r#"factbot_rate_limited_total{transport="telegram",path="poll"}"#,
        1.0,
        60,
    );
    // A notification to a subscribed chat.
    assert!(text(&ask(&emu, ANN, "/subscribe")).contains("all topics"));
    let after = emu.last_seq();
    let a: Value = ureq::post(&format!("http://127.0.0.1:{aport}/announce"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send_json(json!({"text": "Maintenance tonight"}))
        .expect("the admin endpoint answers")
        .into_json()
        .unwrap();
    assert_eq!(a["chats"], 1, "{a}");
    emu.next(Some(ANN), "sent", after, 20);
    let m = wait_series(
        mport,
        r#"factbot_deliveries_total{platform="telegram",outcome="delivered"}"#,
        1.0,
        20,
    );

    assert_eq!(
        series(&m, answered_en),
        5.0,
        "/trade twice, /investment and two buttons:\n{m}"
    );
    let q = |lang: &str, outcome: &str| {
        series(
            &m,
            &format!(
                "factbot_questions_total{{transport=\"telegram\",lang=\"{lang}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(q("ru", "answered"), 1.0, "{m}");
    assert_eq!(q("en", "declined"), 1.0, "{m}");
    // /help and /subscribe.
    assert_eq!(q("en", "info"), 2.0, "{m}");
    // Each question's latency was observed once, in a true histogram.
    assert!(m.contains("# TYPE factbot_reply_seconds histogram"), "{m}");
    assert_eq!(
        series(&m, r#"factbot_reply_seconds_count{transport="telegram"}"#),
        9.0,
        "{m}"
    );
    assert!(
        series(
            &m,
            r#"factbot_reply_seconds_bucket{transport="telegram",le="+Inf"}"#
        ) == 9.0
    );
    // The 429 and the cut-off send.
    assert_eq!(
        series(
            &m,
            r#"factbot_rate_limited_total{transport="telegram",path="reply"}"#
        ),
        1.0,
        "{m}"
    );
    assert!(
        series(
            &m,
            r#"factbot_retries_total{transport="telegram",path="reply"}"#
        ) >= 2.0,
        "{m}"
    );
    assert!(
        series(
            &m,
            r#"factbot_retries_total{transport="telegram",path="poll"}"#
        ) >= 1.0,
        "{m}"
    );
    assert_eq!(
        series(
            &m,
            r#"factbot_deliveries_total{platform="telegram",outcome="failed"}"#
        ),
        0.0
    );
    // Everything asked was answered and delivered: nothing left waiting.
    let drained = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = scrape(mport);
            if series(&m, r#"factbot_inbox_depth{transport="telegram"}"#) == 0.0
                && series(&m, r#"factbot_outbox_pending{platform="telegram"}"#) == 0.0
            {
                break m;
            }
            assert!(
                Instant::now() < deadline,
                "inbox or outbox not drained:\n{m}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Nothing of a chat, a user's words or the token in the figures.
    for secret in [
        &ANN.to_string(),
        "France",
        "товарооборот",
        "Maintenance",
        TOKEN,
        ADMIN_TOKEN,
    ] {
        assert!(
            !drained.contains(secret),
            "{secret:?} in /metrics:\n{drained}"
        );
    }
    let st = bot.terminate(5);
    assert!(st.success(), "{st:?}");
}

#[test]
fn unreachable_bot_api_is_unhealthy_with_the_reason_and_status_says_so() {
    // An api_url nobody listens on: getMe is refused and retried.
    let dir = tempfile::tempdir().unwrap();
    let mport = common::free_port();
    let url = format!("http://127.0.0.1:{}/", common::free_port());
    let mut bot = BotProcess::start_api(
        &url,
        dir.path(),
        &format!("[metrics]\nlisten = \"127.0.0.1:{mport}\"\n"),
        &[],
    );
    bot.wait_log("getMe failed, retrying", 1, 30);
    let body = wait_health(mport, 503, 30);
    assert_eq!(
        body,
        "unhealthy\nstore: ok\ntelegram: no successful poll yet; last failure: getMe failed: Telegram API unreachable\n"
    );
    let st = status(&dir.path().join("bot.toml"));
    assert_eq!(st.status.code(), Some(1), "{st:?}");
    assert_eq!(common::stdout(&st), body);
    assert!(common::stderr(&st).contains("unhealthy"), "{st:?}");
    // Only GET, and no token anywhere in what the endpoint shows.
    let post = ureq::post(&format!("http://127.0.0.1:{mport}/healthz")).call();
    assert!(matches!(post, Err(ureq::Error::Status(405, _))), "{post:?}");
    assert!(!scrape(mport).contains(TOKEN));
    let st = bot.terminate(5);
    assert!(st.success(), "{st:?}");

    // The bot gone: status says nobody answers, exit 2.
    let st = status(&dir.path().join("bot.toml"));
    assert_eq!(st.status.code(), Some(2), "{st:?}");
    assert!(common::stderr(&st).contains("no bot answers"), "{st:?}");
}

/// Webhook mode has no long poll: a `getWebhookInfo` probe stands in for
/// it, so a quiet webhook bot is healthy and its poll time set.
#[test]
fn a_webhook_bot_is_healthy_through_its_probe() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let (port, mport) = (common::free_port(), common::free_port());
    let mut bot = BotProcess::start_with(
        &emu,
        dir.path(),
        &format!(
            "mode = \"webhook\"\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\npath = \"/hook\"\nsecret_token = \"ops-webhook-secret-0123456789\"\n\
             [metrics]\nlisten = \"127.0.0.1:{mport}\"\n"
        ),
    );
    let health = wait_health(mport, 200, 30);
    assert!(health.contains("\ntelegram: ok, last poll "), "{health}");
    assert!(emu.calls("GetWebhookInfo") >= 1);
    assert!(
        series(
            &scrape(mport),
            r#"factbot_last_poll_timestamp_seconds{transport="telegram"}"#
        ) > 0.0
    );
    // Questions through the webhook count as in polling mode.
    assert!(text(&ask(&emu, ANN, "/trade")).contains("USD 769 million"));
    wait_series(
        mport,
        r#"factbot_questions_total{transport="telegram",lang="en",outcome="answered"}"#,
        1.0,
        20,
    );
    let st = bot.terminate(5);
    assert!(st.success(), "{st:?}");
}
