//! When a policy runs by itself: `every <duration>` (at least one minute) or `daily at HH:MM`
//! (UTC). Pure millisecond arithmetic: the caller passes the instant to count from.

use super::{DAY, Millis, format_exact, parse_millis};

/// The shortest period of `every`.
const MIN_PERIOD: Millis = 60_000;

/// A policy's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Every so many milliseconds, counted from when the policy was applied.
    Every(Millis),
    /// Once a day at this minute of the UTC day (0..1440).
    DailyAt { minute_of_day: u32 },
}

impl Schedule {
    /// Parses `every 6h`, `every 1h 30m`, `daily at 03:00` (or `daily at 3:00`).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let usage = "use e.g. \"every 6h\" or \"daily at 03:00\" (UTC)";
        if let Some(period) = text.strip_prefix("every ") {
            let period = period.trim();
            let ms = parse_millis(period)
                .map_err(|e| format!("invalid duration {period:?} ({usage}): {e}"))?;
            if ms < MIN_PERIOD {
                return Err(format!("every {period}: the shortest period is 1m"));
            }
            return Ok(Schedule::Every(ms));
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        if let ["daily", "at", time] = words[..] {
            let bad = || format!("invalid time {time:?}: use HH:MM from 00:00 to 23:59 (UTC)");
            let (h, m) = time.split_once(':').ok_or_else(bad)?;
            let digits = |s: &str, max_len| {
                (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| s.parse::<u32>().ok())
                    .flatten()
            };
            let (Some(h), Some(m)) = (digits(h, 2), digits(m, 2).filter(|_| m.len() == 2)) else {
                return Err(bad());
            };
            if h > 23 || m > 59 {
                return Err(bad());
            }
            return Ok(Schedule::DailyAt {
                minute_of_day: h * 60 + m,
            });
        }
        Err(format!("invalid schedule {text:?}: {usage}"))
    }

    /// The next run strictly after `from`: `from + period` for `every`; for `daily at`, the
    /// first instant after `from` at that time of the UTC day (the next day's when `from` is
    /// exactly at it).
    pub fn next_after(&self, from: Millis) -> Millis {
        match *self {
            Schedule::Every(period) => from.saturating_add(period),
            Schedule::DailyAt { minute_of_day } => {
                let at = from.div_euclid(DAY) * DAY + Millis::from(minute_of_day) * 60_000;
                if at > from { at } else { at + DAY }
            }
        }
    }
}

impl Schedule {
    /// The next run after a run that was due at `was_due` and starts at `now`: the schedule's
    /// own instants, never moved by a late start. `every` counts from the instant it was due,
    /// skipping those already past; `daily at` is the next such time after `now`.
    pub fn next_due(&self, was_due: Millis, now: Millis) -> Millis {
        match *self {
            Schedule::Every(period) => {
                let missed = (now - was_due).max(0) / period;
                was_due.saturating_add(period.saturating_mul(missed + 1))
            }
            Schedule::DailyAt { .. } => self.next_after(now.max(was_due)),
        }
    }
}

impl std::fmt::Display for Schedule {
    /// The canonical text, which [`Schedule::parse`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Schedule::Every(ms) => write!(f, "every {}", format_exact(ms)),
            Schedule::DailyAt { minute_of_day } => {
                write!(
                    f,
                    "daily at {:02}:{:02}",
                    minute_of_day / 60,
                    minute_of_day % 60
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_run_does_not_move_the_next_one() {
        let every = Schedule::Every(M);
        // Due at 10:00:00, started 30 s late by the poll interval: next at 10:01:00.
        assert_eq!(every.next_due(600 * M, 600 * M + 30_000), 601 * M);
        // Started exactly on time.
        assert_eq!(every.next_due(600 * M, 600 * M), 601 * M);
        // Missed several (the server was down): the next instant of the schedule after now.
        assert_eq!(every.next_due(600 * M, 603 * M + 5), 604 * M);
        let daily = Schedule::DailyAt { minute_of_day: 180 };
        let day = 24 * H;
        assert_eq!(daily.next_due(3 * H, 3 * H + 30_000), day + 3 * H);
        assert_eq!(daily.next_due(3 * H, 2 * day + 5 * H), 3 * day + 3 * H);
    }

    const H: Millis = 3_600_000;
    const M: Millis = 60_000;

    #[test]
    fn parses_and_displays_canonically() {
        let cases: &[(&str, Schedule, &str)] = &[
            ("every 6h", Schedule::Every(6 * H), "every 6h"),
            ("every 1m", Schedule::Every(M), "every 1m"),
            ("  every 1h 30m ", Schedule::Every(90 * M), "every 1h 30m"),
            ("every 2days", Schedule::Every(48 * H), "every 2d"),
            (
                "daily at 03:00",
                Schedule::DailyAt { minute_of_day: 180 },
                "daily at 03:00",
            ),
            (
                "daily at 3:05",
                Schedule::DailyAt { minute_of_day: 185 },
                "daily at 03:05",
            ),
            (
                "daily  at 23:59",
                Schedule::DailyAt {
                    minute_of_day: 1439,
                },
                "daily at 23:59",
            ),
            (
                "daily at 00:00",
                Schedule::DailyAt { minute_of_day: 0 },
                "daily at 00:00",
            ),
        ];
        for (text, want, shown) in cases {
            let s = Schedule::parse(text).unwrap();
            assert_eq!(s, *want, "{text}");
            assert_eq!(s.to_string(), *shown);
            assert_eq!(Schedule::parse(shown).unwrap(), s);
        }
    }

    #[test]
    fn refuses_bad_schedules() {
        let cases: &[(&str, &str)] = &[
            ("every 30s", "every 30s: the shortest period is 1m"),
            ("every 59s 999ms", "the shortest period is 1m"),
            ("every 6 hourz", "invalid duration \"6 hourz\""),
            ("daily at 25:00", "invalid time \"25:00\""),
            ("daily at 12:60", "invalid time \"12:60\""),
            ("daily at 12:5", "invalid time \"12:5\""),
            ("daily at noon", "invalid time \"noon\""),
            ("daily at -1:00", "invalid time \"-1:00\""),
            ("weekly", "invalid schedule \"weekly\""),
            ("", "invalid schedule \"\""),
            ("every", "invalid schedule \"every\""),
        ];
        for (text, want) in cases {
            let e = Schedule::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn next_after() {
        let day = |d: Millis| d * DAY;
        let three = Schedule::DailyAt { minute_of_day: 180 };
        let cases: &[(Schedule, Millis, Millis)] = &[
            (Schedule::Every(6 * H), day(10) + 5, day(10) + 5 + 6 * H),
            // Before the time on the same day.
            (three, day(10) + H, day(10) + 3 * H),
            // Exactly at the instant: the next day's.
            (three, day(10) + 3 * H, day(11) + 3 * H),
            (three, day(10) + 3 * H - 1, day(10) + 3 * H),
            // After it: across midnight to the next day.
            (three, day(10) + 23 * H + 59 * M, day(11) + 3 * H),
            (Schedule::DailyAt { minute_of_day: 0 }, day(10), day(11)),
            (Schedule::DailyAt { minute_of_day: 0 }, day(10) - 1, day(10)),
            (
                Schedule::DailyAt {
                    minute_of_day: 1439,
                },
                day(10) + 23 * H + 59 * M,
                day(11) + 23 * H + 59 * M,
            ),
            // Before the epoch, days still start at UTC midnight.
            (three, -DAY + H, -DAY + 3 * H),
        ];
        for (s, from, want) in cases {
            assert_eq!(s.next_after(*from), *want, "{s} after {from}");
        }
    }
}
