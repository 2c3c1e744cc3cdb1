//! The health verdict `/healthz` and `factbot status` give: a pure
//! function of what the process saw, tested here beside the I/O.
//!
//! Healthy means the store answers a read and every configured transport
//! has heard its platform within [`WINDOW`]. A transport that has not
//! polled yet — still starting, or its API unreachable from the start — is
//! unhealthy: an orchestrator should not route to (or consider ready) a bot
//! that has never reached Telegram or its homeserver.

use std::time::Duration;

use super::record::Transport;

/// How long a transport may go without a successful poll or sync before it
/// is reported. An idle Telegram long poll returns every 25 s
/// (`getUpdates` timeout) and an idle Matrix sync every 30 s (its
/// `timeout`), so in good health the last success is at most about 30 s
/// old; 90 s is three of the longer poll, so a transport must miss about
/// two polls in a row (or back off — 0.5 s / 1 s doubling to 30 s — through
/// a minute of failures) before the check fails, and one failed poll never
/// flips it.
pub const WINDOW: Duration = Duration::from_secs(90);

/// What one configured transport showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub transport: Transport,
    /// Unix ms of its last successful poll or sync.
    pub last_ok_ms: Option<u64>,
    /// Its last failure since: the request and why, fixed phrases.
    pub last_failure: Option<super::record::Failure>,
}

/// The verdict, and a line per part checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub healthy: bool,
    pub lines: Vec<String>,
}

impl Report {
    /// The text `/healthz` answers and `factbot status` prints: `ok` or
    /// `unhealthy`, then one line per part.
    pub fn text(&self) -> String {
        let mut s = String::from(if self.healthy { "ok\n" } else { "unhealthy\n" });
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// Judges health at `now_ms`: `store` is the outcome of a read (the error
/// in words), `seen` each configured transport.
pub fn judge(now_ms: u64, store: Result<(), String>, seen: &[Seen], window: Duration) -> Report {
    let mut healthy = true;
    let mut lines = Vec::new();
    match store {
        Ok(()) => lines.push("store: ok".to_string()),
        Err(e) => {
            healthy = false;
            lines.push(format!("store: cannot read: {e}"));
        }
    }
    let window_ms = window.as_millis() as u64;
    for s in seen {
        let name = s.transport.name();
        let what = match s.transport {
            Transport::Telegram => "poll",
            Transport::Matrix => "sync",
        };
        let why = s
            .last_failure
            .map(|(call, why)| format!("; last failure: {call} failed: {why}"))
            .unwrap_or_default();
        match s.last_ok_ms {
            None => {
                healthy = false;
                lines.push(format!("{name}: no successful {what} yet{why}"));
            }
            Some(at) => {
                let age = now_ms.saturating_sub(at);
                if age > window_ms {
                    healthy = false;
                    lines.push(format!(
                        "{name}: no successful {what} for {} s (allowed: {} s){why}",
                        age / 1000,
                        window.as_secs()
                    ));
                } else {
                    lines.push(format!("{name}: ok, last {what} {} s ago", age / 1000));
                }
            }
        }
    }
    Report { healthy, lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn tg(last_ok_ms: Option<u64>, last_failure: Option<(&'static str, &'static str)>) -> Seen {
        Seen {
            transport: Transport::Telegram,
            last_ok_ms,
            last_failure,
        }
    }

    #[test]
    fn healthy_when_the_store_reads_and_every_transport_polled_within_the_window() {
        let mx = Seen {
            transport: Transport::Matrix,
            last_ok_ms: Some(NOW - 29_000),
            last_failure: None,
        };
        let r = judge(NOW, Ok(()), &[tg(Some(NOW - 3_000), None), mx], WINDOW);
        assert!(r.healthy, "{r:?}");
        assert_eq!(
            r.text(),
            "ok\nstore: ok\ntelegram: ok, last poll 3 s ago\nmatrix: ok, last sync 29 s ago\n"
        );
        // The window's edge is still healthy; a moment past it is not.
        let edge = judge(NOW, Ok(()), &[tg(Some(NOW - 90_000), None)], WINDOW);
        assert!(edge.healthy);
        let past = judge(
            NOW,
            Ok(()),
            &[tg(
                Some(NOW - 90_001),
                Some(("getUpdates", "Telegram API unreachable")),
            )],
            WINDOW,
        );
        assert!(!past.healthy);
        assert_eq!(
            past.lines[1],
            "telegram: no successful poll for 90 s (allowed: 90 s); last failure: getUpdates failed: Telegram API unreachable"
        );
    }

    #[test]
    fn a_transport_that_never_polled_or_an_unreadable_store_is_unhealthy() {
        let r = judge(
            NOW,
            Ok(()),
            &[tg(None, Some(("getMe", "Telegram API unreachable")))],
            WINDOW,
        );
        assert!(!r.healthy);
        assert_eq!(
            r.text(),
            "unhealthy\nstore: ok\ntelegram: no successful poll yet; last failure: getMe failed: Telegram API unreachable\n"
        );
        let r = judge(NOW, Err("I/O error".into()), &[tg(Some(NOW), None)], WINDOW);
        assert!(!r.healthy);
        assert_eq!(r.lines[0], "store: cannot read: I/O error");
        // A clock that stepped back reads as just polled, not as a panic.
        assert!(judge(NOW, Ok(()), &[tg(Some(NOW + 5_000), None)], WINDOW).healthy);
    }
}
