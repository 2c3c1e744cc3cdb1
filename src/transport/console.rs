//! The console chat: the bot in a terminal, no token, no config.
//!
//! On a terminal it uses rustyline (line editing, history kept in the store
//! directory); with stdin from a pipe it reads plain lines and prints only
//! replies, which is what scripts and the integration tests drive.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use rustyline::error::ReadlineError;

use crate::answer::{Engine, Request};
use crate::reply::render_plain;

/// The chat key of the console's settings (`/lang`).
pub const CHAT: &str = "console";

fn is_exit(line: &str) -> bool {
    matches!(line.trim(), "/quit" | "/exit" | "/q")
}

fn reply_to(engine: &Engine, line: &str) -> String {
    // The operator's own terminal: a private chat they administer.
    let req = Request {
        private: true,
        chat_admin: true,
        ..Request::new(CHAT, line)
    };
    render_plain(&engine.handle(&req))
}

/// Runs the console until end of input (Ctrl-D) or `/quit`.
pub fn run(engine: &Engine, history: Option<PathBuf>) -> anyhow::Result<()> {
    if io::stdin().is_terminal() {
        interactive(engine, history)
    } else {
        piped(engine)
    }
}

fn piped(engine: &Engine) -> anyhow::Result<()> {
    let stdin = io::stdin();
    let mut out = io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            // Not UTF-8: answer that, keep reading.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                writeln!(out, "(input is not valid UTF-8)\n")?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if is_exit(&line) {
            break;
        }
        writeln!(out, "{}\n", reply_to(engine, &line))?;
        out.flush()?;
    }
    Ok(())
}

fn interactive(engine: &Engine, history: Option<PathBuf>) -> anyhow::Result<()> {
    let mut rl = rustyline::DefaultEditor::new()?;
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("{}\n", reply_to(engine, "/start"));
    println!("(Ctrl-D or /quit to leave)\n");
    loop {
        match rl.readline("you> ") {
            Ok(line) => {
                if is_exit(&line) {
                    break;
                }
                if !line.trim().is_empty() {
                    let _ = rl.add_history_entry(line.as_str());
                }
                println!("\n{}\n", reply_to(engine, &line));
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(())
}
