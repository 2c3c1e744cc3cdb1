//! Progress of long work — an import, an index build — for the operator: a
//! bar or a spinner when stderr is a terminal, a log line otherwise, and
//! nothing for work that takes under a second (most starts).
//!
//! The core reports progress through plain callbacks (`Engine::open`,
//! `Index::build_with_progress`); only this module knows how it is shown.

use std::io::IsTerminal;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Work shorter than this shows nothing.
const QUIET_FOR: Duration = Duration::from_secs(1);

fn terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Follows work counted in items (`update(done, total)`) with a bar on a
/// terminal. (The work it follows logs its own start and end: the index
/// build does, for a log that has no terminal.)
pub struct Steps {
    label: &'static str,
    start: Instant,
    bar: Option<ProgressBar>,
    /// Shown because it ran past [`QUIET_FOR`].
    shown: bool,
}

impl Steps {
    pub fn new(label: &'static str) -> Steps {
        Steps {
            label,
            start: Instant::now(),
            bar: None,
            shown: false,
        }
    }

    pub fn update(&mut self, done: usize, total: usize) {
        if !self.shown && self.start.elapsed() >= QUIET_FOR {
            self.shown = true;
            if terminal() {
                let bar = ProgressBar::new(total as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {human_pos}/{human_len} facts, {elapsed} (eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message(self.label);
                self.bar = Some(bar);
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    }

    /// Ends the display.
    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs `work`, showing a spinner with `label` (terminal) or a log line
/// (otherwise) once it has taken over a second.
pub fn spin<T>(label: &str, work: impl FnOnce() -> T) -> T {
    let (done, wait) = channel::<()>();
    let label = label.to_string();
    let watcher = std::thread::spawn(move || {
        let start = Instant::now();
        if wait.recv_timeout(QUIET_FOR) != Err(RecvTimeoutError::Timeout) {
            return;
        }
        let bar = if terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(label.clone());
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        } else {
            tracing::info!("{label}…");
            None
        };
        // Returns when the work is done (or its sender dropped on a panic).
        let _ = wait.recv();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        tracing::info!(
            seconds = format!("{:.1}", start.elapsed().as_secs_f64()),
            "{label}: done"
        );
    });
    let out = work();
    let _ = done.send(());
    let _ = watcher.join();
    out
}
