//! Waiting after a failure: one doubling schedule for every loop that
//! retries — polling, sending, uploading, joining, notification deliveries.
//!
//! Failure this prevents: a dozen hand-rolled loops, each doubling its
//! pause its own way (one with a cap it never reached, one with none, one
//! shifting bits), drifting apart with every edit. The schedule is
//! backon's [`ExponentialBuilder`] (factor 2, no jitter: the pauses below
//! are tuned, and the tests here pin them); what happens between tries —
//! classifying the error, obeying a 429's `retry_after`, logging,
//! counting, giving up — stays at each loop, because that is the part that
//! differs.
//!
//! Every pause ends at once on shutdown: a loop either sleeps through
//! [`pause`] against its stop signal, or runs inside a future its owner
//! drops when the stop signal fires (a `select!` in `run`), which drops the
//! sleep with it.
//!
//! | schedule | the loop | first | doubling to | tries |
//! | --- | --- | --- | --- | --- |
//! | [`TELEGRAM_POLL`] | `getUpdates` failing (`telegram/listener.rs`); starts over after a batch is taken in | 0.5 s | 30 s | unbounded |
//! | [`TELEGRAM_START`] | `getMe` at start (`telegram/mod.rs`) | 0.5 s | 30 s | unbounded |
//! | [`TELEGRAM_REQUEST`] | a reply, edit or photo (`telegram/send.rs` `with_retry`); a 429 waits its `retry_after` instead, and 429s and migrations count towards the 5 attempts | 0.25 s | 2 s | 5 attempts |
//! | [`MATRIX_SYNC`] | `/sync` failing (`matrix/mod.rs`); starts over after a sync | 1 s | 30 s | unbounded |
//! | [`MATRIX_HOMESERVER`] | `/versions` before the first login (`matrix/session.rs`) | 1 s | 30 s | unbounded |
//! | [`MATRIX_REPLY`] | an answer's event (`matrix/send.rs`) | 1 s | 16 s | 6 attempts |
//! | [`MATRIX_UPLOAD`] | a chart's upload (`matrix/image.rs`); then the answer goes as text | 1 s | 2 s | 3 attempts |
//! | [`MATRIX_JOIN`] | joining on invite (`matrix/invites.rs`); Synapse may invite before the room can be joined | 2 s | 600 s | 12 attempts |
//! | [`MATRIX_SUCCESSOR`] | joining an upgraded room's successor, one schedule per room (`matrix/upgrades.rs`) | 30 s | 1 h | unbounded |
//! | [`NOTIFY_DELIVERY`] | a notification part that failed transiently (`notify/worker.rs`; kept on disk as the delivery's `next_at_ms`); the worker gives up after its `MAX_ATTEMPTS` (8) | 1 s | 256 s | unbounded |
//!
//! Not here, because they are not a doubling after failures: the webhook
//! probe's fixed 30 s, a chat refusing notifications
//! (`notify::worker::blocked_retry_at`, half the time it has refused), a
//! busy chat's 200 ms, the notify service's ticks.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// A doubling schedule of pauses: `first`, then twice the last, at most
/// `max`; unbounded unless [`Backoff::attempts`] says how many tries.
#[derive(Clone, Copy, Debug)]
pub struct Backoff(ExponentialBuilder);

impl Backoff {
    /// Pauses of `first` doubling to `max`, as many as asked for.
    pub const fn doubling(first: Duration, max: Duration) -> Backoff {
        Backoff(
            ExponentialBuilder::new()
                .with_factor(2.0)
                .with_min_delay(first)
                .with_max_delay(max)
                .without_max_times(),
        )
    }

    /// At most `n` tries in all: `n - 1` pauses, then the iterator of
    /// [`Backoff::pauses`] ends and the loop gives up.
    pub const fn attempts(self, n: usize) -> Backoff {
        Backoff(self.0.with_max_times(n.saturating_sub(1)))
    }

    /// The pauses, one per failure: take the next after each failure
    /// (`None`: give up). Build a new one to start over.
    pub fn pauses(self) -> Pauses {
        Pauses {
            left: self.0.build(),
            last: Duration::ZERO,
        }
    }

    /// The pause after `failures` failures in a row (1 = the first pause;
    /// 0 counts as 1), for a schedule kept on disk as a count rather than
    /// as a live iterator. Past the last pause of a bounded schedule, its
    /// last pause.
    pub fn after(self, failures: u32) -> Duration {
        // Doubling reaches any cap within 64 steps.
        let n = failures.clamp(1, 64) as usize;
        self.pauses().take(n).last().unwrap_or_default()
    }
}

/// The pauses of one run of a [`Backoff`].
#[derive(Debug)]
pub struct Pauses {
    left: ExponentialBackoff,
    /// The pause given last, given again by [`Pauses::next_or_last`] once
    /// a bounded schedule is spent.
    last: Duration,
}

impl Pauses {
    /// The next pause of a schedule that never gives up (the last one
    /// again should a bounded schedule be spent).
    pub fn next_or_last(&mut self) -> Duration {
        self.next().unwrap_or(self.last)
    }
}

impl Iterator for Pauses {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let d = self.left.next()?;
        self.last = d;
        Some(d)
    }
}

/// Sleeps `pause`, or until `stop` completes if that is sooner; `true`
/// when stopped.
pub async fn pause(pause: Duration, stop: impl Future) -> bool {
    tokio::select! {
        _ = stop => true,
        _ = tokio::time::sleep(pause) => false,
    }
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Telegram `getUpdates` failing. Up to 30 s: a question asked meanwhile
/// waits at most that long once Telegram is back.
pub const TELEGRAM_POLL: Backoff = Backoff::doubling(ms(500), secs(30));
/// Telegram `getMe` at start while the API is unreachable.
pub const TELEGRAM_START: Backoff = Backoff::doubling(ms(500), secs(30));
/// A Telegram request answering a user (reply, edit, photo): short, the
/// user is waiting.
pub const TELEGRAM_REQUEST: Backoff = Backoff::doubling(ms(250), secs(2)).attempts(5);
/// Matrix `/sync` while the homeserver is away.
pub const MATRIX_SYNC: Backoff = Backoff::doubling(secs(1), secs(30));
/// The homeserver not answering `/versions` before the first login.
pub const MATRIX_HOMESERVER: Backoff = Backoff::doubling(secs(1), secs(30));
/// An answer's event: rides out a homeserver restart of about half a
/// minute (1 + 2 + 4 + 8 + 16 s).
pub const MATRIX_REPLY: Backoff = Backoff::doubling(secs(1), secs(16)).attempts(6);
/// A chart's upload; after that the answer is sent as text.
pub const MATRIX_UPLOAD: Backoff = Backoff::doubling(secs(1), secs(2)).attempts(3);
/// A join on invite: about an hour in all.
pub const MATRIX_JOIN: Backoff = Backoff::doubling(secs(2), secs(600)).attempts(12);
/// Joining an upgraded room's successor that refuses the bot (it waits
/// for an invite), per successor room.
pub const MATRIX_SUCCESSOR: Backoff = Backoff::doubling(secs(30), secs(3600));
/// A notification part that failed transiently.
pub const NOTIFY_DELIVERY: Backoff = Backoff::doubling(secs(1), secs(256));

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: Backoff, n: usize) -> Vec<u64> {
        b.pauses().take(n).map(|d| d.as_millis() as u64).collect()
    }

    #[test]
    fn the_schedules_are_the_tuned_ones() {
        let s = 1000;
        assert_eq!(
            all(TELEGRAM_POLL, 9),
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(all(TELEGRAM_START, 8), all(TELEGRAM_POLL, 8));
        assert_eq!(all(TELEGRAM_REQUEST, 99), [250, 500, 1000, 2000]);
        assert_eq!(
            all(MATRIX_SYNC, 7),
            [s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s]
        );
        assert_eq!(all(MATRIX_HOMESERVER, 7), all(MATRIX_SYNC, 7));
        assert_eq!(all(MATRIX_REPLY, 99), [s, 2 * s, 4 * s, 8 * s, 16 * s]);
        assert_eq!(all(MATRIX_UPLOAD, 99), [s, 2 * s]);
        assert_eq!(
            all(MATRIX_JOIN, 99),
            [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600].map(|n| n * s)
        );
        assert_eq!(
            all(MATRIX_SUCCESSOR, 9),
            [30, 60, 120, 240, 480, 960, 1920, 3600, 3600].map(|n| n * s)
        );
        assert_eq!(
            all(NOTIFY_DELIVERY, 11),
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256].map(|n| n * s)
        );
    }

    #[test]
    fn after_counts_failures_from_one_and_stays_at_the_cap() {
        assert_eq!(NOTIFY_DELIVERY.after(0), secs(1));
        assert_eq!(NOTIFY_DELIVERY.after(1), secs(1));
        assert_eq!(NOTIFY_DELIVERY.after(2), secs(2));
        assert_eq!(NOTIFY_DELIVERY.after(5), secs(16));
        assert_eq!(NOTIFY_DELIVERY.after(30), secs(256));
        assert_eq!(NOTIFY_DELIVERY.after(u32::MAX), secs(256));
        assert_eq!(MATRIX_UPLOAD.after(9), secs(2));
        let mut p = MATRIX_UPLOAD.pauses();
        assert_eq!([p.next_or_last(), p.next_or_last()], [secs(1), secs(2)]);
        assert_eq!((p.next(), p.next_or_last()), (None, secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_ends_at_once_when_stopped() {
        let started = tokio::time::Instant::now();
        assert!(pause(secs(3600), async {}).await);
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(!pause(secs(2), std::future::pending::<()>()).await);
        assert_eq!(started.elapsed(), secs(2));
    }
}
