//! The daily digest: anniversaries of dated facts and operator countdowns,
//! at a local time in an IANA time zone.
//!
//! Scheduling is a pure function ([`due`]) of the clock, the schedule and
//! the last digest date the bot dealt with (stored in `notify_meta` in the
//! same transaction as the digest it enqueued), so restarts are safe: a
//! digest due while the bot was down is sent once on start if it is at most
//! `catch_up` late, otherwise skipped with a log line; a day with nothing to
//! say sends nothing but is still marked as dealt with.
//!
//! The clock is the system clock, shifted when `FACTBOT_NOW` (RFC 3339, e.g.
//! `2026-11-09T08:59:58+03:00`) is set: time then starts at that instant and
//! runs normally — how the end-to-end tests make a digest fall due. Meant
//! for tests only.

use std::time::Duration;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::content::{Anniversary, CountdownLine};
use super::{Content, Hub};
use crate::catalog::Catalog;
use crate::config::DigestConfig;
use crate::facts::{StoreError, Topic};

const LAST: &str = "digest_last";

/// The bot's clock (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    offset_ms: i64,
}

impl Clock {
    /// The system clock, shifted by `FACTBOT_NOW` when set.
    pub fn from_env() -> anyhow::Result<Clock> {
        let Some(v) = std::env::var("FACTBOT_NOW").ok().filter(|v| !v.is_empty()) else {
            return Ok(Clock { offset_ms: 0 });
        };
        let at: Timestamp = v
            .parse()
            .map_err(|e| anyhow::anyhow!("FACTBOT_NOW={v:?} is not an RFC 3339 time: {e}"))?;
        Ok(Clock {
            offset_ms: at.as_millisecond() - Timestamp::now().as_millisecond(),
        })
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::from_millisecond(Timestamp::now().as_millisecond() + self.offset_ms)
            .unwrap_or_else(|_| Timestamp::now())
    }
}

/// A parsed `[notify.digest]`.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub time: Time,
    pub tz: TimeZone,
    pub catch_up: Duration,
    pub countdowns: Vec<(Date, String, String)>,
}

impl Schedule {
    pub fn from_config(c: &DigestConfig) -> anyhow::Result<Schedule> {
        let time: Time = c
            .time
            .parse()
            .map_err(|e| anyhow::anyhow!("[notify.digest] time {:?} is not HH:MM: {e}", c.time))?;
        let tz = TimeZone::get(&c.time_zone).map_err(|e| {
            anyhow::anyhow!(
                "[notify.digest] time_zone {:?} is not an IANA time zone: {e}",
                c.time_zone
            )
        })?;
        let mut countdowns = Vec::new();
        for cd in &c.countdowns {
            let d: Date = cd.date.parse().map_err(|e| {
                anyhow::anyhow!(
                    "[notify.digest] countdown date {:?} is not YYYY-MM-DD: {e}",
                    cd.date
                )
            })?;
            countdowns.push((d, cd.en.clone(), cd.ru.clone()));
        }
        Ok(Schedule {
            time,
            tz,
            catch_up: Duration::from_secs(c.catch_up_minutes * 60),
            countdowns,
        })
    }

    /// When the digest of local date `d` is due.
    fn at(&self, d: Date) -> Timestamp {
        d.to_datetime(self.time)
            .to_zoned(self.tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// What the scheduler should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Send the digest of this date.
    Send(Date),
    /// This date's digest is too late: skip it (and record that).
    Skip(Date, Duration),
    /// Nothing until then.
    Wait(Timestamp),
}

/// The decision, given the clock and the last date dealt with.
pub fn due(s: &Schedule, now: Timestamp, last: Option<Date>) -> Due {
    let today = now.to_zoned(s.tz.clone()).date();
    let mut day = today;
    if s.at(today) > now {
        day = today.yesterday().unwrap_or(today);
    }
    if last.is_some_and(|l| l >= day) || s.at(day) > now {
        let mut next = day.tomorrow().unwrap_or(day);
        while s.at(next) <= now {
            next = next.tomorrow().unwrap_or(next);
        }
        return Due::Wait(s.at(next));
    }
    let late = now.duration_since(s.at(day));
    let late = Duration::from_millis(late.as_millis().max(0) as u64);
    if late <= s.catch_up {
        Due::Send(day)
    } else {
        Due::Skip(day, late)
    }
}

/// The digest of local date `d`: `None` on a day with nothing to say.
pub fn compose(s: &Schedule, cat: &Catalog, d: Date) -> Option<Content> {
    let mut anniversaries: Vec<Anniversary> = cat
        .dated()
        .filter_map(|(id, fd)| {
            let on_this_day = fd.day? as i8 == d.day() && fd.month? as i8 == d.month();
            (on_this_day && i32::from(d.year()) > fd.year).then_some(Anniversary {
                fact_id: id.to_string(),
                year: fd.year,
            })
        })
        .collect();
    anniversaries.sort_by_key(|a| a.year);
    let countdowns: Vec<CountdownLine> = s
        .countdowns
        .iter()
        .filter(|(cd, _, _)| *cd > d)
        .map(|(cd, en, ru)| CountdownLine {
            en: en.clone(),
            ru: ru.clone(),
            date: cd.to_string(),
            days: i64::from(d.until(*cd).map(|sp| sp.get_days()).unwrap_or(0)),
        })
        .collect();
    if anniversaries.is_empty() && countdowns.is_empty() {
        return None;
    }
    Some(Content::Digest {
        date: d.to_string(),
        anniversaries,
        countdowns,
    })
}

fn last(hub: &Hub) -> Result<Option<Date>, StoreError> {
    Ok(hub
        .outbox
        .mark(LAST)?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse().ok()))
}

/// Acts on the schedule once; returns when to look again.
pub fn tick(
    hub: &Hub,
    s: &Schedule,
    cat: &Catalog,
    now: Timestamp,
) -> Result<Timestamp, StoreError> {
    match due(s, now, last(hub)?) {
        Due::Wait(at) => {
            tracing::debug!(at = %at, "notify: next digest");
            Ok(at)
        }
        Due::Skip(d, late) => {
            tracing::warn!(date = %d, late_minutes = late.as_secs() / 60, "notify: the digest was due while the bot was down and is older than catch_up_minutes; skipped");
            hub.outbox.set_mark(LAST, d.to_string().as_bytes())?;
            Ok(now)
        }
        Due::Send(d) => {
            let mark = (LAST, d.to_string().into_bytes());
            match compose(s, cat, d) {
                None => {
                    tracing::info!(date = %d, "notify: nothing to say today; no digest");
                    hub.outbox.set_mark(LAST, d.to_string().as_bytes())?;
                }
                // The digest is about the timeline: it goes to chats
                // subscribed to milestones (or all).
                Some(c) => match hub.notify(Some(Topic::Milestones), c, Some(mark))? {
                    Some(n) => {
                        tracing::info!(date = %d, id = n.id, chats = n.targets, "notify: digest enqueued")
                    }
                    None => {
                        tracing::info!(date = %d, "notify: digest: no chat subscribes to milestones")
                    }
                },
            }
            Ok(now)
        }
    }
}

/// How long to sleep until `at`: at least 200 ms (a tick that finds the
/// time not yet come does not spin), at most an hour (a clock change is
/// noticed within the hour).
pub fn sleep_for(now: Timestamp, at: Timestamp) -> Duration {
    let ms = at.as_millisecond() - now.as_millisecond();
    Duration::from_millis(ms.clamp(200, 3_600_000) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> Schedule {
        Schedule::from_config(&DigestConfig {
            time: "09:00".into(),
            time_zone: "Europe/Minsk".into(),
            catch_up_minutes: 60,
            countdowns: vec![crate::config::Countdown {
                date: "2026-12-31".into(),
                en: "the new year".into(),
                ru: "нового года".into(),
            }],
        })
        .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn due_at_local_time_once_a_day() {
        let s = sched();
        // Minsk is UTC+3: 09:00 local = 06:00 UTC.
        let before = ts("2026-11-09T05:59:00Z");
        assert_eq!(
            due(&s, before, Some(date("2026-11-08"))),
            Due::Wait(ts("2026-11-09T06:00:00Z"))
        );
        let at = ts("2026-11-09T06:00:01Z");
        assert_eq!(
            due(&s, at, Some(date("2026-11-08"))),
            Due::Send(date("2026-11-09"))
        );
        assert_eq!(
            due(&s, at, Some(date("2026-11-09"))),
            Due::Wait(ts("2026-11-10T06:00:00Z"))
        );
    }

    #[test]
    fn a_missed_digest_is_caught_up_or_skipped_by_age() {
        let s = sched();
        let soon = ts("2026-11-09T06:30:00Z");
        assert_eq!(
            due(&s, soon, Some(date("2026-11-07"))),
            Due::Send(date("2026-11-09"))
        );
        let late = ts("2026-11-09T08:00:00Z");
        assert!(
            matches!(due(&s, late, Some(date("2026-11-08"))), Due::Skip(d, _) if d == date("2026-11-09"))
        );
        // Before today's time, yesterday's digest is the one considered.
        let early = ts("2026-11-09T03:00:00Z");
        assert!(
            matches!(due(&s, early, Some(date("2026-11-07"))), Due::Skip(d, _) if d == date("2026-11-08"))
        );
    }

    #[test]
    fn the_digest_has_anniversaries_and_countdowns_or_is_not_sent() {
        let store = crate::facts::Store::temporary().unwrap();
        store
            .import(&crate::facts::Dataset::embedded().unwrap())
            .unwrap();
        let e = crate::answer::Engine::new(store).unwrap();
        let s = sched();
        let Some(Content::Digest {
            anniversaries,
            countdowns,
            ..
        }) = compose(&s, &e.catalog(), date("2026-11-09"))
        else {
            panic!("a digest on the visit's anniversary");
        };
        assert!(anniversaries
            .iter()
            .any(|a| a.fact_id == "visit.dates" && a.year == 2012));
        assert_eq!(countdowns[0].days, 52);
        let mut quiet = s.clone();
        quiet.countdowns.clear();
        assert!(compose(&quiet, &e.catalog(), date("2026-11-08")).is_none());
    }
}
