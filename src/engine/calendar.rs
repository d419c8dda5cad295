//! Business calendars (contract section 6): weekly hours in a timezone, holidays,
//! and the built-in `24x7`. Stateless: it measures business time between instants
//! and finds the instant at which an amount of business time is reached, by
//! walking the open intervals (correct across DST changes, never polling).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::config::{CalendarConfig, DayHours};
use crate::time::Millis;

/// How many days of closed calendar to skip before giving up (a calendar with
/// no hours at all never reaches a target).
const MAX_EMPTY_DAYS: i64 = 3_700;

/// A business calendar.
#[derive(Debug, Clone)]
pub enum Calendar {
    /// Always open (`24x7`).
    Always,
    /// Weekly hours in a timezone, minus holidays.
    Weekly {
        /// Timezone of hours and holidays.
        tz: Tz,
        /// Monday-first day hours, minutes from local midnight.
        week: Box<[DayHours; 7]>,
        /// Local dates without hours.
        holidays: HashSet<NaiveDate>,
        /// Days already converted to UTC.
        days: DayCache,
    },
}

/// Each local date's open intervals in UTC ms, as converted before. The
/// engine asks for the same few days over and over (every bucket close,
/// every walk step), and each conversion goes through the timezone's rules.
/// A pure function of the date, so a cached day is always right.
#[derive(Debug, Default)]
pub struct DayCache(Mutex<HashMap<NaiveDate, OpenDay, foldhash::fast::RandomState>>);

/// One local date's open intervals in UTC ms.
type OpenDay = Arc<[(Millis, Millis)]>;

/// Days kept before the cache starts afresh (about eleven years of dates).
const MAX_CACHED_DAYS: usize = 4_096;

impl Clone for DayCache {
    fn clone(&self) -> Self {
        DayCache::default()
    }
}

impl DayCache {
    /// The open intervals of `date`, `convert`ed on first use.
    fn get(&self, date: NaiveDate, convert: impl FnOnce() -> Vec<(Millis, Millis)>) -> OpenDay {
        // A panic while holding the lock cannot leave a wrong entry: an entry
        // is inserted whole.
        let mut days = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(day) = days.get(&date) {
            return Arc::clone(day);
        }
        if days.len() >= MAX_CACHED_DAYS {
            days.clear();
        }
        let day: OpenDay = convert().into();
        days.insert(date, Arc::clone(&day));
        day
    }
}

impl Calendar {
    /// Builds a calendar from its config.
    pub fn from_config(c: &CalendarConfig) -> Calendar {
        let week = Box::new(std::array::from_fn(|d| c.hours.day(d as u32).clone()));
        Calendar::Weekly {
            tz: c.timezone.0,
            week,
            holidays: c.holidays.iter().copied().collect(),
            days: DayCache::default(),
        }
    }

    /// The calendar named `id` in `config` (`24x7` is built in). Validation
    /// refuses configs naming a calendar they do not define; `None` here means
    /// such an unvalidated config.
    pub fn named(config: &crate::config::Config, id: &str) -> Option<Calendar> {
        if id == crate::config::BUILTIN_24X7 {
            return Some(Calendar::Always);
        }
        (config.calendars.iter())
            .find(|c| c.id == id)
            .map(Calendar::from_config)
    }

    /// Business milliseconds in `[a, b)`.
    pub fn business_between(&self, a: Millis, b: Millis) -> Millis {
        if b <= a {
            return 0;
        }
        match self {
            Calendar::Always => b - a,
            Calendar::Weekly { .. } => {
                let mut total = 0;
                for (s, e) in self.open_intervals(a) {
                    if s >= b {
                        break;
                    }
                    total += e.min(b) - s.max(a);
                }
                total
            }
        }
    }

    /// The first instant `t ≥ a` with `business_between(a, t) = amount`, or `None`
    /// if the calendar never accumulates that much.
    pub fn add_business(&self, a: Millis, amount: Millis) -> Option<Millis> {
        if amount <= 0 {
            return Some(a);
        }
        match self {
            Calendar::Always => a.checked_add(amount),
            Calendar::Weekly { .. } => {
                let mut left = amount;
                for (s, e) in self.open_intervals(a) {
                    let (s, e) = (s.max(a), e);
                    if e - s >= left {
                        return Some(s + left);
                    }
                    left -= e - s;
                }
                None
            }
        }
    }

    /// The calendar's open time inside `[a, b)` as disjoint, merged intervals in
    /// time order (service hours, contract section 13).
    pub fn spans(&self, a: Millis, b: Millis) -> Vec<(Millis, Millis)> {
        let mut out: Vec<(Millis, Millis)> = Vec::new();
        if b <= a {
            return out;
        }
        if let Calendar::Always = self {
            out.push((a, b));
            return out;
        }
        for (s, e) in self.open_intervals(a) {
            if s >= b {
                break;
            }
            let (s, e) = (s.max(a), e.min(b));
            match out.last_mut() {
                Some(last) if last.1 >= s => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        out
    }

    /// Whether `x` is open, with the stretch around it of the same kind:
    /// `(open, start, end)`, `start ≤ x < end`. `end` is exact (`Millis::MAX`
    /// when nothing opens within `MAX_EMPTY_DAYS`); `start` is the true start
    /// or a later instant at most a day before `x` (callers use it only as "the
    /// same since", where later is safe).
    pub fn stretch_at(&self, x: Millis) -> (bool, Millis, Millis) {
        if let Calendar::Always = self {
            return (true, Millis::MIN, Millis::MAX);
        }
        // The open intervals ending after a day before `x`, merged: the one
        // holding `x`, or the gap before the first one starting after it.
        let origin = x.saturating_sub(86_400_000);
        let mut prev_end = origin;
        let mut open: Option<(Millis, Millis)> = None;
        for (s, e) in self.open_intervals(origin) {
            match open {
                Some((os, oe)) if s <= oe => open = Some((os, oe.max(e))),
                Some((os, oe)) => {
                    if os <= x && x < oe {
                        return (true, os.max(origin), oe);
                    }
                    if x < os {
                        return (false, prev_end, os);
                    }
                    prev_end = oe;
                    open = Some((s, e));
                }
                None => open = Some((s, e)),
            }
        }
        match open {
            Some((os, oe)) if os <= x && x < oe => (true, os.max(origin), oe),
            Some((os, _)) if x < os => (false, prev_end, os),
            Some((_, oe)) => (false, oe, Millis::MAX),
            None => (false, prev_end, Millis::MAX),
        }
    }

    /// Open intervals `[start, end)` in UTC ms that end after `a`, in time order
    /// (touching intervals are not merged: sums and walks do not need it). Ends
    /// once `MAX_EMPTY_DAYS` consecutive days have no hours.
    fn open_intervals(&self, a: Millis) -> impl Iterator<Item = (Millis, Millis)> + '_ {
        let weekly = match self {
            Calendar::Weekly {
                tz,
                week,
                holidays,
                days,
            } => Some((*tz, week, holidays, days)),
            Calendar::Always => None,
        };
        // Start a day early: a local day can begin before `a`'s UTC date.
        let first = weekly
            .and_then(|(tz, ..)| tz.timestamp_millis_opt(a).earliest())
            .map(|t| t.date_naive() - Duration::days(1));
        let mut empty = 0i64;
        std::iter::successors(first, |d| d.succ_opt())
            .map_while(move |d| {
                let (tz, week, holidays, days) = weekly?;
                let hours: &[(u32, u32)] = if holidays.contains(&d) {
                    &[]
                } else {
                    &week[d.weekday().num_days_from_monday() as usize]
                };
                empty = if hours.is_empty() { empty + 1 } else { 0 };
                (empty <= MAX_EMPTY_DAYS).then(|| {
                    let day = (!hours.is_empty()).then(|| {
                        days.get(d, || {
                            (hours.iter())
                                .map(|&(m1, m2)| (local_to_utc(tz, d, m1), local_to_utc(tz, d, m2)))
                                .collect()
                        })
                    });
                    day.into_iter()
                        .flat_map(|day| (0..day.len()).map(move |i| day[i]))
                })
            })
            .flatten()
            .filter(move |&(s, e)| e > s && e > a)
    }
}

/// The UTC instant of local `date` + `minutes` (up to 24:00). In a DST gap the
/// first valid local time after it (the jump instant) is used; in an overlap, the
/// earlier instant.
fn local_to_utc(tz: Tz, date: NaiveDate, minutes: u32) -> Millis {
    let base: NaiveDateTime =
        date.and_hms_opt(0, 0, 0).unwrap_or_default() + Duration::minutes(i64::from(minutes));
    (0..=180)
        .find_map(|step| {
            tz.from_local_datetime(&(base + Duration::minutes(step)))
                .earliest()
        })
        .map_or_else(
            || base.and_utc().timestamp_millis(),
            |t| t.timestamp_millis(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::time::parse_rfc3339;
    use std::path::Path;

    fn cal(hours: &str, holidays: &str, tz: &str) -> Calendar {
        let text = format!(
            "[[calendars]]\nid = \"c\"\ntimezone = \"{tz}\"\nholidays = [{holidays}]\n[calendars.hours]\n{hours}\n"
        );
        let c = Config::parse(&text, Path::new("t.toml")).expect("config");
        Calendar::from_config(&c.calendars[0])
    }

    fn t(s: &str) -> Millis {
        parse_rfc3339(s).expect("time")
    }

    const H: Millis = 3_600_000;

    #[test]
    fn office_hours_with_lunch_break() {
        let c = cal("wed = \"09:00-12:00,13:00-17:00\"", "", "UTC");
        // Wednesday 2026-11-04.
        assert_eq!(
            c.business_between(t("2026-11-04T08:00:00Z"), t("2026-11-04T18:00:00Z")),
            7 * H
        );
        assert_eq!(
            c.business_between(t("2026-11-04T11:30:00Z"), t("2026-11-04T13:30:00Z")),
            H
        );
        assert_eq!(
            c.add_business(t("2026-11-04T11:30:00Z"), H),
            Some(t("2026-11-04T13:30:00Z"))
        );
        // From Wednesday 16:00, 2h more lands on next Wednesday 10:00.
        assert_eq!(
            c.add_business(t("2026-11-04T16:00:00Z"), 2 * H),
            Some(t("2026-11-11T10:00:00Z"))
        );
        // Exactly at the end of a range: the instant is the range end, not the next opening.
        assert_eq!(
            c.add_business(t("2026-11-04T16:00:00Z"), H),
            Some(t("2026-11-04T17:00:00Z"))
        );
    }

    #[test]
    fn holidays_are_closed() {
        let c = cal(
            "fri = \"09:00-17:00\"\nmon = \"09:00-17:00\"",
            "\"2026-12-25\"",
            "Europe/Paris",
        );
        // Thu 24 Dec 18:00 Paris → Fri 25 is a holiday → Mon 28 09:00 Paris (08:00Z) + 1h.
        assert_eq!(
            c.add_business(t("2026-12-24T17:00:00Z"), H),
            Some(t("2026-12-28T09:00:00Z"))
        );
    }

    #[test]
    fn dst_changes_keep_local_hours() {
        // Paris leaves DST on Sunday 2026-10-25: Friday opens 07:00Z, Monday 08:00Z.
        let c = cal(
            "fri = \"09:00-17:00\"\nmon = \"09:00-17:00\"\nsun = \"01:00-04:00\"",
            "",
            "Europe/Paris",
        );
        assert_eq!(
            c.add_business(t("2026-10-23T06:00:00Z"), H),
            Some(t("2026-10-23T08:00:00Z"))
        );
        assert_eq!(
            c.add_business(t("2026-10-26T06:00:00Z"), H),
            Some(t("2026-10-26T09:00:00Z"))
        );
        // Sunday 01:00-04:00 local that night lasts 4 real hours (02:00-03:00 happens twice).
        assert_eq!(
            c.business_between(t("2026-10-24T12:00:00Z"), t("2026-10-25T12:00:00Z")),
            4 * H
        );
        // Spring forward (2026-03-29, 02:00→03:00): 01:00-04:00 lasts 2 real hours.
        assert_eq!(
            c.business_between(t("2026-03-28T12:00:00Z"), t("2026-03-29T12:00:00Z")),
            2 * H
        );
    }

    #[test]
    fn always_and_never() {
        assert_eq!(Calendar::Always.add_business(5, 10), Some(15));
        assert_eq!(Calendar::Always.business_between(5, 15), 10);
        let never = cal("", "", "UTC");
        assert_eq!(never.add_business(0, 1), None);
        assert_eq!(never.business_between(0, 1_000_000_000), 0);
    }

    #[test]
    fn overnight_ranges_merge_across_midnight() {
        let c = cal("mon = \"22:00-24:00\"\ntue = \"00:00-06:00\"", "", "UTC");
        assert_eq!(
            c.add_business(t("2026-11-02T23:00:00Z"), 2 * H),
            Some(t("2026-11-03T01:00:00Z"))
        );
        assert_eq!(
            c.business_between(t("2026-11-02T00:00:00Z"), t("2026-11-04T00:00:00Z")),
            8 * H
        );
    }
}

#[cfg(test)]
mod cache_props {
    use super::*;
    use crate::config::Config;
    use proptest::prelude::*;
    use std::path::Path;

    /// A Paris calendar crossing DST changes, with a holiday.
    fn paris() -> Calendar {
        let text = "[[calendars]]\nid = \"c\"\ntimezone = \"Europe/Paris\"\n\
                    holidays = [\"2026-10-26\"]\n[calendars.hours]\n\
                    mon = \"01:00-02:30,03:00-06:00\"\nsun = \"00:00-24:00\"\nwed = \"09:00-18:00\"\n";
        let c = Config::parse(text, Path::new("t.toml")).expect("config");
        Calendar::from_config(&c.calendars[0])
    }

    const T0: Millis = 1_792_000_000_000; // 2026-10-14

    proptest! {
        /// One calendar answering a run of queries (its days cached, and the
        /// cache started afresh on the way) answers each as a calendar that
        /// has never converted a day.
        #[test]
        fn a_cached_calendar_answers_as_a_fresh_one(
            queries in prop::collection::vec((0..60 * 86_400_000i64, 0..10 * 86_400_000i64), 1..40),
        ) {
            let cached = paris();
            for (i, (from, len)) in queries.into_iter().enumerate() {
                let (a, b) = (T0 + from, T0 + from + len);
                if i == 20 && let Calendar::Weekly { days, .. } = &cached {
                    days.0.lock().expect("unpoisoned").clear();
                }
                let fresh = paris();
                prop_assert_eq!(cached.spans(a, b), fresh.spans(a, b));
                prop_assert_eq!(cached.business_between(a, b), fresh.business_between(a, b));
                prop_assert_eq!(cached.add_business(a, len), fresh.add_business(a, len));
                prop_assert_eq!(cached.stretch_at(a), fresh.stretch_at(a));
            }
        }
    }
}
