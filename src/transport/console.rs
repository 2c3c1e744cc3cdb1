//! The console chat: the bot in a terminal, no token, no config.
//!
//! On a terminal it uses rustyline (line editing, history kept in the store
//! directory); with stdin from a pipe it reads plain lines and prints only
//! replies, which is what scripts and the integration tests drive.
//!
//! A terminal shows no pictures: a chart (`/chart trade`) is written as a PNG
//! under the store directory (`charts/trade-en.png`, replaced atomically so
//! an open viewer never reads half a file) and its caption and path are
//! printed.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use rustyline::error::ReadlineError;

use crate::answer::Request;
use crate::app::App;
use crate::facts::ChatKey;
use crate::reply::{render_caption_plain, render_plain, ChartRef, Msg};

/// The chat key of the console's settings (`/lang`).
pub const CHAT: ChatKey = ChatKey::Console;

fn is_exit(line: &str) -> bool {
    matches!(line.trim(), "/quit" | "/exit" | "/q")
}

/// The reply to `line` as text; a chart is saved under `charts` (if given)
/// and named by its path.
pub fn reply_to(app: &App, line: &str, charts: Option<&Path>) -> String {
    // The operator's own terminal: a private chat they administer.
    let req = Request {
        private: true,
        chat_admin: true,
        ..Request::new(&CHAT, line)
    };
    let mut reply = app.handle(&req);
    let Some(dir) = charts else {
        return render_plain(&reply);
    };
    let Some(image) = reply.image.take() else {
        return render_plain(&reply);
    };
    let saved = match save_chart(app, &image, dir) {
        Ok(path) => Msg::ChartSaved(&path.display().to_string()).text(reply.lang),
        Err(e) => {
            tracing::warn!(error = %e, "cannot save the chart");
            // Without the picture, the text stand-in says it all.
            reply.image = Some(image);
            return render_plain(&reply);
        }
    };
    let rest = render_plain(&reply);
    let mut parts = vec![render_caption_plain(&image), saved];
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts.join("\n\n")
}

/// Renders the chart and writes it as `dir/<kind>-<lang>.png`.
fn save_chart(app: &App, image: &ChartRef, dir: &Path) -> anyhow::Result<PathBuf> {
    let png = app.engine().chart_png(image.key.kind, image.key.lang)?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(png.key.file_name());
    let tmp = dir.join(format!(".{}.tmp", png.key.file_name()));
    std::fs::write(&tmp, &png.bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(std::path::absolute(&path).unwrap_or(path))
}

/// Runs the console until end of input (Ctrl-D) or `/quit`; charts are
/// saved under `charts`.
pub fn run(app: &App, history: Option<PathBuf>, charts: Option<PathBuf>) -> anyhow::Result<()> {
    let charts = charts.as_deref();
    if io::stdin().is_terminal() {
        interactive(app, history, charts)
    } else {
        piped(app, charts)
    }
}

fn piped(app: &App, charts: Option<&Path>) -> anyhow::Result<()> {
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
        writeln!(out, "{}\n", reply_to(app, &line, charts))?;
        out.flush()?;
    }
    Ok(())
}

fn interactive(app: &App, history: Option<PathBuf>, charts: Option<&Path>) -> anyhow::Result<()> {
    let mut rl = rustyline::DefaultEditor::new()?;
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("{}\n", reply_to(app, "/start", charts));
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
                println!("\n{}\n", reply_to(app, &line, charts));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Dataset, Store};

    fn app() -> App {
        let store = Store::temporary().unwrap();
        store.import(&Dataset::embedded().unwrap()).unwrap();
        App::new(store).unwrap()
    }

    #[test]
    fn a_chart_is_saved_and_named_or_told_in_words_when_it_cannot_be() {
        let e = app();
        let dir = tempfile::tempdir().unwrap();
        let charts = dir.path().join("charts");
        let out = reply_to(&e, "/chart investment", Some(&charts));
        let path = charts.join("investment-en.png");
        assert!(
            out.starts_with("Belarusian investment in Kazakhstan. "),
            "{out}"
        );
        assert!(
            out.contains(&format!("Chart saved to {}", path.display())),
            "{out}"
        );
        assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
        assert!(out.contains("→ /investment"), "buttons stay: {out}");

        // Where the file cannot be written, the alt text stands in.
        let blocked = dir.path().join("a-file");
        std::fs::write(&blocked, "").unwrap();
        let out = reply_to(&e, "/chart investment", Some(&blocked.join("charts")));
        assert!(out.starts_with("📊 Belarusian investment"), "{out}");
        assert!(!out.contains("saved"), "{out}");
        // And without a directory at all (no store on disk).
        assert!(reply_to(&e, "/chart trade", None).starts_with("📊 Bar chart"));
    }
}
