//! The real `factbot` binary: one-shot questions, the console over stdin,
//! store locking, and the `run` subcommand's answers about transports.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{factbot, stderr, stdout, BIN};
use factbot::facts::Store;

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
    assert!(
        stderr(&o).contains("homeserver_url") && stderr(&o).contains("MATRIX_PASSWORD"),
        "{}",
        stderr(&o)
    );

    std::fs::write(&cfg, "[stor]\n").unwrap();
    let o = factbot(dir.path(), &["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown field"), "{}", stderr(&o));
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
            .arg(dir.path())
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
