//! Time arithmetic on the simulation's timestamps (seconds since the epoch, UTC).

use crate::catalog::HOURS;
use crate::rng::Rng;
use crate::rows::{start_of, Day, Ts, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_SECOND};

/// A time on `day`, at an hour drawn from the daily traffic curve.
pub(super) fn time_in_day(r: &mut Rng, day: Day) -> Ts {
    let hour = r.weighted(&HOURS) as i64;
    start_of(day) + hour * MICROS_PER_HOUR + r.range(0, MICROS_PER_HOUR - 1)
}

pub(super) fn seconds(r: &mut Rng, lo: i64, hi: i64) -> Ts {
    r.range(lo, hi) * MICROS_PER_SECOND
}

pub(super) fn to_datetime(ts: Ts) -> chrono::NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(ts)
        .unwrap_or_default()
        .naive_utc()
}

pub(super) fn from_datetime(t: chrono::NaiveDateTime) -> Ts {
    t.and_utc().timestamp_micros()
}

/// The same time `months` later (the 31st becomes the month's last day).
pub fn add_months(ts: Ts, months: u32) -> Ts {
    to_datetime(ts)
        .checked_add_months(chrono::Months::new(months))
        .map(from_datetime)
        .unwrap_or(ts + months as i64 * 30 * MICROS_PER_DAY)
}

/// Midnight at the start of the month after the one holding `ts`.
pub fn next_month_start(ts: Ts) -> Ts {
    use chrono::Datelike;
    let d = to_datetime(ts).date();
    let first = d.with_day(1).unwrap_or(d);
    first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|m| m.and_hms_opt(0, 0, 0))
        .map(from_datetime)
        .unwrap_or(ts + 31 * MICROS_PER_DAY)
}
