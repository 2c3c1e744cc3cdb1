//! The real `factbot` binary: one-shot questions, the console over stdin,
//! store locking, and the `run` subcommand's answers about transports.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{factbot, free_port, stderr, stdout, BIN};
use factbot::facts::{ChatKey, Store};

#[test]
fn ask_answers_in_the_language_of_the_question() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(
        dir.path(),
        &[
            "ask",
            "How much was trade between Belarus and Kazakhstan in 2011?",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("USD 769 million"), "{out}");
    assert!(out.contains("[¶4]"), "answers cite their paragraph: {out}");

    let o = factbot(dir.path(), &["ask", "Когда создан Таможенный союз?"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("2007") && out.contains("Таможенный союз"),
        "{out}"
    );
}

#[test]
fn ask_declines_plainly_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(dir.path(), &["ask", "What is the capital of France?"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("I have no fact on that."),
        "{}",
        stdout(&o)
    );
}

#[test]
fn ask_rejects_empty_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(dir.path(), &["ask", "   "]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the question is empty"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn ask_json_lists_facts_with_ids_and_sources() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(
        dir.path(),
        &["ask", "--format", "json", "first half 2012 trade"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["kind"], "answer");
    assert_eq!(v["lang"], "en");
    let facts = v["facts"].as_array().unwrap();
    let h1 = facts
        .iter()
        .find(|f| f["id"] == "trade.h1_2012")
        .expect("trade.h1_2012 in answer");
    assert_eq!(h1["source"]["paragraph"], 4);
    let article = std::fs::read_to_string(common::data_dir().join("article.txt")).unwrap();
    assert!(article.contains(h1["source"]["sentence"].as_str().unwrap()));
}

#[test]
fn ask_lang_overrides_the_question_language() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(dir.path(), &["ask", "--lang", "ru", "investment in 2011"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("73 млн"), "{}", stdout(&o));
    let o = factbot(dir.path(), &["ask", "--lang", "de", "trade"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `ask` is one-shot: `ask "/lang ru"` changes nothing, so the next
/// English question is still answered in English; subscribing is refused
/// too, and nothing is written to the chat settings.
#[test]
fn ask_is_one_shot_and_changes_no_settings() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(dir.path(), &["ask", "/lang ru"]);
    let out = stdout(&o);
    assert!(
        out.contains("changes no settings") && out.contains("--lang"),
        "{out}"
    );
    let o = factbot(dir.path(), &["ask", "How much was trade in 2011?"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("USD 769 million"), "{}", stdout(&o));
    let o = factbot(dir.path(), &["ask", "/subscribe trade"]);
    assert!(stdout(&o).contains("changes no settings"), "{}", stdout(&o));
    // Follow-ups need a conversation: a one-shot "and in 2012?" is
    // answered on its own, whatever was asked before.
    let o = factbot(dir.path(), &["ask", "and in 2012?"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.chat_settings(&ChatKey::Cli).unwrap().lang, None);
}

#[test]
fn derived_facts_show_their_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(dir.path(), &["ask", "/fact trade.h1_2011"]);
    let out = stdout(&o);
    assert!(out.contains("(derived)"), "{out}");
    assert!(
        out.contains("479 / 2.16") && out.contains("479 / 1.16"),
        "{out}"
    );
    assert!(out.contains("Caveat:"), "{out}");
}

fn console(db: &std::path::Path, input: &str) -> String {
    let mut child = Command::new(BIN)
        .arg("--db")
        .arg(db)
        .env_remove("FACTBOT_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn console_chats_over_stdin_and_keeps_lang_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let out = console(
        dir.path(),
        "/help\n/trade\nwhat does kazakhstan export?\n\n/nosuch\n/lang ru\n",
    );
    assert!(out.contains("/milestones"), "help lists commands: {out}");
    assert!(out.contains("USD 769 million"), "{out}");
    assert!(out.contains("crude aluminium"), "{out}");
    assert!(
        out.contains("Ask me a question"),
        "empty line gets a hint: {out}"
    );
    assert!(out.contains("I don't know the command /nosuch"), "{out}");
    assert!(out.contains("по-русски"), "{out}");
    // A new process, the same store: /lang ru still holds.
    let out = console(dir.path(), "/trade\n");
    assert!(out.contains("ТОРГОВЛЯ") && out.contains("769 млн"), "{out}");
}

/// A PNG's width and height, after checking its signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!(&bytes[12..16], b"IHDR");
    (be(16), be(20))
}

#[test]
fn console_writes_charts_under_the_store_and_prints_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = console(dir.path(), "/chart milestones\n/график торговля\n");
    let en = dir.path().join("charts").join("milestones-en.png");
    let ru = dir.path().join("charts").join("trade-ru.png");
    assert!(
        out.contains(&format!("Chart saved to {}", en.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("График сохранён: {}", ru.display())),
        "{out}"
    );
    assert!(
        out.contains("[¶1, ¶3]") && out.contains("9–10 November 2012"),
        "caption: {out}"
    );
    assert_eq!(png_size(&std::fs::read(&en).unwrap()), (1200, 750));
    assert_eq!(png_size(&std::fs::read(&ru).unwrap()), (1200, 750));
    // Nothing half-written is left beside them.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn chart_renders_a_png_from_the_shell_and_follows_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = dir.path().join("trade.png");
    let o = factbot(&db, &["chart", "trade", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png_size(&std::fs::read(&out).unwrap()), (1200, 750));
    let line = stdout(&o);
    assert!(
        line.starts_with(&format!("{}: 1200×750 PNG", out.display())),
        "{line}"
    );
    assert!(line.contains("chart trade/en/"), "{line}");

    // Russian, to standard output.
    let o = factbot(&db, &["chart", "инвестиции", "--lang", "ru", "--out", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png_size(&o.stdout), (1200, 750));

    // An edited dataset redraws the chart under a new key.
    let ds = common::copy_dataset(dir.path());
    let facts = ds.join("facts.toml");
    let text = std::fs::read_to_string(&facts).unwrap();
    std::fs::write(
        &facts,
        text.replace("amount = 769000000", "amount = 770000000"),
    )
    .unwrap();
    let o = factbot(&db, &["import", ds.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let edited = dir.path().join("edited.png");
    let o = factbot(&db, &["chart", "trade", "--out", edited.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = |l: &str| l.rsplit(' ').next().unwrap().trim().to_string();
    assert_ne!(key(&stdout(&o)), key(&line), "a new key for new figures");
    assert_ne!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&edited).unwrap()
    );
    let o = factbot(&db, &["ask", "--format", "json", "/chart trade"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert!(v["chart"]["alt"].as_str().unwrap().contains("770"), "{v}");
    assert_eq!(v["chart"]["key"]["kind"], "trade");
}

#[test]
fn chart_rejects_unknown_charts_and_languages_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let o = factbot(
        dir.path(),
        &["chart", "pie", "--out", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown chart \"pie\"; the charts are trade, milestones, investment"),
        "{}",
        stderr(&o)
    );
    let o = factbot(
        dir.path(),
        &[
            "chart",
            "trade",
            "--lang",
            "de",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown language \"de\""),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn facts_lists_ids_and_titles_even_on_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(dir.path(), &["facts"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 49, "{out}");
    assert!(
        out.contains("trade.h1_2011") && out.contains("(derived)"),
        "{out}"
    );
    let o = factbot(dir.path(), &["facts", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(49));
}

#[test]
fn a_locked_store_is_reported_with_its_path_and_pid() {
    let dir = tempfile::tempdir().unwrap();
    let _held = Store::open(dir.path()).unwrap();
    let o = factbot(dir.path(), &["ask", "trade"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("is in use by another process"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
}

#[test]
fn run_reports_configured_transports() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(dir.path(), &["run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("enables no transport"),
        "{}",
        stderr(&o)
    );

    let cfg = dir.path().join("bot.toml");
    std::fs::write(
        &cfg,
        "[store]\npath = \"state\"\n[matrix]\nuser_id = \"@bot:localhost\"\n",
    )
    .unwrap();
    let o = factbot(dir.path(), &["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    if cfg!(feature = "matrix") {
        assert!(
            stderr(&o).contains("homeserver_url") && stderr(&o).contains("MATRIX_PASSWORD"),
            "{}",
            stderr(&o)
        );
    } else {
        // A build without Matrix says so, naming the feature, before
        // looking at the section's keys.
        assert!(
            stderr(&o).contains("[matrix] section") && stderr(&o).contains("`matrix` feature"),
            "{}",
            stderr(&o)
        );
    }

    std::fs::write(&cfg, "[stor]\n").unwrap();
    let o = factbot(dir.path(), &["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown field"), "{}", stderr(&o));
}

/// A broken config names file, line and key on stderr — and never the
/// value of a secret, for each secret key.
#[test]
fn a_bad_config_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    let cases = [
        (
            "[telegram]\ntoken = 123456:AAsecretVALUE1\n",
            "[telegram] token",
        ),
        (
            "[telegram]\nmode = \"webhook\"\nsecret_token = hookSECRETvalue2\n",
            "[telegram] secret_token",
        ),
        (
            "[matrix]\npassword = hunter2SECRETvalue3\n",
            "[matrix] password",
        ),
        (
            "[matrix]\naccess_token = 998877665544\n",
            "[matrix] access_token",
        ),
        (
            "[notify]\nadmin_token = 112233445566\n",
            "[notify] admin_token",
        ),
        (
            "[telegram]\ntoken = \"123:AAnextSECRET4\"\ntokn = \"x\"\n",
            "[telegram] tokn",
        ),
    ];
    let secrets = [
        "AAsecretVALUE1",
        "hookSECRETvalue2",
        "hunter2SECRETvalue3",
        "998877665544",
        "112233445566",
        "AAnextSECRET4",
    ];
    for ((text, key), secret) in cases.iter().zip(secrets) {
        std::fs::write(&cfg, text).unwrap();
        let o = factbot(
            &dir.path().join("state"),
            &["run", "--config", cfg.to_str().unwrap()],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(!err.contains(secret), "{text:?}: {err}");
        assert!(
            err.contains(&format!("{}:", cfg.display())) && err.contains(key),
            "names the file, line and key: {err}"
        );
        assert!(!dir.path().join("state").exists(), "nothing was created");
    }
}

/// `run` checks every value before anything connects and lists every
/// problem at once, a secret's value never among them. (A build without
/// Telegram refuses the `[telegram]` section itself, before its keys.)
#[cfg(feature = "telegram")]
#[test]
fn run_refuses_a_webhook_without_a_secret_and_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bot.toml");
    std::fs::write(
        &cfg,
        "[telegram]\ntoken = \"123:AAvalidLookingSECRET\"\nmode = \"webhook\"\nlisten = \"127.0.0.1:1\"\npublic_url = \"https://bot.example.org\"\npath = \"hook\"\n[notify]\nadmin_listen = \"0.0.0.0:8790\"\nadmin_token = \"tinySECRET\"\n",
    )
    .unwrap();
    let o = factbot(
        &dir.path().join("state"),
        &["run", "--config", cfg.to_str().unwrap()],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for needle in [
        "needs secret_token",
        "path \"hook\" must start with '/'",
        "loopback",
        "admin_token",
    ] {
        assert!(err.contains(needle), "{needle:?} missing: {err}");
    }
    assert!(!err.contains("SECRET"), "{err}");
    assert!(
        !dir.path().join("state").exists(),
        "refused before the store"
    );
}

/// `factbot announce` refuses an announcement longer than one message
/// before it contacts the bot, and says why (without echoing it).
#[test]
fn announce_refuses_an_announcement_longer_than_three_messages() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bot.toml");
    let port = common::free_port();
    std::fs::write(
        &cfg,
        format!("[notify]\nadmin_listen = \"127.0.0.1:{port}\"\nadmin_token = \"a-long-enough-admin-token\"\n"),
    )
    .unwrap();
    let text = "x".repeat(12_001);
    let o = factbot(
        &dir.path().join("state"),
        &["announce", "--config", cfg.to_str().unwrap(), &text],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("12001 characters"), "{}", stderr(&o));
    assert!(stderr(&o).len() < 300, "the text is not echoed");
}

/// A Telegram-less build refuses a `[telegram]` section at start, naming the
/// feature, rather than running without the transport the operator asked for.
#[cfg(not(feature = "telegram"))]
#[test]
fn run_names_the_missing_telegram_feature() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bot.toml");
    std::fs::write(
        &cfg,
        "[store]\npath = \"state\"\n[telegram]\ntoken = \"1:SECRET\"\n",
    )
    .unwrap();
    let o = factbot(dir.path(), &["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("[telegram] section") && err.contains("`telegram` feature"),
        "{err}"
    );
    assert!(!err.contains("SECRET"), "{err}");
}

/// `--log-format json`: every log line on stderr is one JSON object with
/// the level, the message and the event's fields at the top level, for log
/// shippers; the answer on stdout is unchanged.
#[test]
fn json_logs_are_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["--log-format", "json", "ask", "/fact trade.2011", "--db"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .env_remove("FACTBOT_CONFIG")
        .env_remove("FACTBOT_LOG_FORMAT")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("USD 769 million"), "{}", stdout(&o));
    let lines: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let imported = lines
        .iter()
        .find(|l| l["message"] == "dataset imported")
        .unwrap_or_else(|| panic!("no import line in {lines:?}"));
    assert_eq!(imported["level"], "INFO");
    assert!(imported["added"].is_u64(), "{imported}");
    assert!(imported["timestamp"].is_string(), "{imported}");
}

/// `subscriptions --import` accepts only chat keys its platform can have:
/// a bad line is refused with its line number and nothing is imported.
#[test]
fn subscriptions_import_rejects_keys_malformed_for_their_platform() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state");
    let file = dir.path().join("subs.txt");
    let good =
        "# comment\ntg:-100123 trade\ntg:42\ntg:@news_channel all\nmx:!AbC123:example.org visit\n";
    for bad in [
        "tg:abc",
        "tg:@",
        "tg:-",
        "tg:12x",
        "tg:@bad name",
        "mx:room",
        "mx:!",
        "mx:!room:",
        "mx:#alias:example.org",
        "xx:1",
        "irc:#chan",
    ] {
        std::fs::write(&file, format!("{good}{bad} trade\n")).unwrap();
        let o = factbot(&db, &["subscriptions", "--import", file.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(":6:") && stderr(&o).contains(bad.split(' ').next().unwrap()),
            "{bad}: the line is named: {}",
            stderr(&o)
        );
        let listed = factbot(&db, &["subscriptions"]);
        assert!(
            stdout(&listed).is_empty(),
            "{bad}: nothing imported: {}",
            stdout(&listed)
        );
    }
    std::fs::write(&file, good).unwrap();
    let o = factbot(&db, &["subscriptions", "--import", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = stdout(&factbot(&db, &["subscriptions"]));
    assert_eq!(listed.lines().count(), 4, "{listed}");
}

/// `factbot ask "/help" | head -1`, `factbot facts | head`: a reader that
/// closed the pipe ends the command quietly with its usual exit status —
/// no panic, no "Broken pipe" — as Unix tools do. The pipe is closed before
/// the command writes, so the first write already fails.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let runs: [&[&str]; 5] = [
        &["ask", "/help"],
        &["ask", "--format", "json", "trade in 2011"],
        &["facts"],
        &["facts", "--format", "json"],
        &["check"],
    ];
    for args in runs {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(BIN)
            .args(args)
            .arg("--db")
            .arg(dir.path().join("state"))
            .env_remove("FACTBOT_CONFIG")
            .env_remove("RUST_LOG")
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} wrote to stderr: {err}");
    }
}

/// `factbot status` without a `[metrics]` section, or with nobody
/// listening there, or against something that is not factbot: exit 2 with
/// what to do, never a hang. (Healthy 0 and unhealthy 1 against the real
/// bot: tests/ops.rs.)
#[test]
fn status_without_a_running_bot_or_metrics_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = factbot(dir.path(), &["status"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("set [metrics] listen"), "{o:?}");

    let cfg = dir.path().join("bot.toml");
    let port = free_port();
    std::fs::write(&cfg, format!("[metrics]\nlisten = \"0.0.0.0:{port}\"\n")).unwrap();
    let o = factbot(dir.path(), &["status", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    // 0.0.0.0 is asked on loopback.
    assert!(
        stderr(&o).contains(&format!("no bot answers at 127.0.0.1:{port}")),
        "{o:?}"
    );
    assert!(stdout(&o).is_empty(), "{o:?}");

    // Something else on that port: an HTTP server that answers 404.
    let server = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let answer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = server.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    let o = factbot(dir.path(), &["status", "--config", cfg.to_str().unwrap()]);
    answer.join().unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("answered HTTP 404"), "{o:?}");
}
