//! `modules.datetime` and `modules.pytz` as dbt projects use them: `date`,
//! `datetime`, `timedelta` and `timezone` with Python's constructors,
//! attributes, methods, comparisons and `str()`.
//!
//! `+` and `-` work as Python's: `date ± timedelta`, `datetime ±
//! timedelta`, `date - date`, `datetime - datetime`, `timedelta ±
//! timedelta`, through the `__add__`/`__sub__` methods that pm's patch of
//! minijinja asks objects for (vendor/minijinja/PM-PATCH.md).

use chrono::{
    DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta,
    TimeZone, Timelike, Utc,
};
use minijinja::value::{from_args, Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

use super::no_method as unknown;
use super::timezone::{utc, zone_arg, TimeZoneObj, Zone};

// ---- timedelta ------------------------------------------------------------------

/// `timedelta`: Python's normalised `days`, `seconds`, `microseconds`.
#[derive(Debug)]
pub(super) struct TimeDeltaObj(pub(super) TimeDelta);

impl TimeDeltaObj {
    pub(super) fn value(d: TimeDelta) -> Value {
        Value::from_object(TimeDeltaObj(d))
    }
    fn micros(&self) -> i64 {
        self.0.num_microseconds().unwrap_or(i64::MAX)
    }
    /// (days, seconds, microseconds) with 0 ≤ seconds < 86400, as Python keeps them.
    fn parts(&self) -> (i64, i64, i64) {
        let micros = self.micros();
        let day = 86_400_000_000;
        let days = micros.div_euclid(day);
        let rest = micros.rem_euclid(day);
        (days, rest / 1_000_000, rest % 1_000_000)
    }
}

impl Object for TimeDeltaObj {
    /// Python: a zero timedelta is false, any other true.
    fn is_true(self: &Arc<Self>) -> bool {
        self.0 != TimeDelta::zero()
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (days, seconds, micros) = self.parts();
        Some(Value::from(match key.as_str()? {
            "days" => days,
            "seconds" => seconds,
            "microseconds" => micros,
            _ => return None,
        }))
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => Ok(Value::from(self.micros() as f64 / 1e6)),
            "__add__" | "__radd__" => match delta_arg(args) {
                Some(d) => Ok(TimeDeltaObj::value(self.0 + d)),
                // `timedelta + date`: the date's own `__radd__` answers.
                None => Err(Error::from(ErrorKind::UnknownMethod)),
            },
            "__sub__" => match delta_arg(args) {
                Some(d) => Ok(TimeDeltaObj::value(self.0 - d)),
                None => Err(operand("timedelta", "-", args)),
            },
            "__rsub__" => match delta_arg(args) {
                Some(d) => Ok(TimeDeltaObj::value(d - self.0)),
                None => Err(Error::from(ErrorKind::UnknownMethod)),
            },
            _ => Err(unknown("timedelta", method)),
        }
    }
    fn custom_cmp(self: &Arc<Self>, other: &minijinja::value::DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<TimeDeltaObj>()?;
        Some(self.0.cmp(&other.0))
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, seconds, micros) = self.parts();
        if days != 0 {
            let plural = if days.abs() == 1 { "" } else { "s" };
            write!(f, "{days} day{plural}, ")?;
        }
        write!(
            f,
            "{}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

/// The one argument of an operator method, when it is a timedelta.
fn delta_arg(args: &[Value]) -> Option<TimeDelta> {
    args.first()?
        .downcast_object_ref::<TimeDeltaObj>()
        .map(|d| d.0)
}

/// `x OP y` where Python has no such operation.
fn operand(kind: &str, op: &str, args: &[Value]) -> Error {
    let other = args
        .first()
        .map_or("nothing".to_string(), |v| format!("{} `{v}`", v.kind()));
    invalid(format!(
        "unsupported operand: {kind} {op} {other} (a {kind} takes a timedelta, or the same kind to subtract)"
    ))
}

fn timedelta_from(args: &[Value]) -> Result<TimeDelta, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
    // Python's positional order: days, seconds, microseconds, milliseconds, minutes, hours, weeks.
    const UNITS: [(&str, f64); 7] = [
        ("days", 86_400e6),
        ("seconds", 1e6),
        ("microseconds", 1.0),
        ("milliseconds", 1e3),
        ("minutes", 60e6),
        ("hours", 3_600e6),
        ("weeks", 604_800e6),
    ];
    if pos.len() > UNITS.len() {
        return Err(invalid("timedelta() takes at most 7 arguments"));
    }
    let mut micros = 0f64;
    for (i, (unit, scale)) in UNITS.iter().enumerate() {
        let v = match pos.get(i) {
            Some(v) => Some(v.clone()),
            None => kwargs.get::<Option<Value>>(unit)?,
        };
        if let Some(v) = v {
            let n = f64::try_from(v.clone())
                .map_err(|_| invalid(format!("timedelta(): `{unit}` must be a number, not {v}")))?;
            micros += n * scale;
        }
    }
    kwargs.assert_all_used()?;
    Ok(TimeDelta::microseconds(micros.round() as i64))
}

// ---- date -----------------------------------------------------------------------

/// `date`.
#[derive(Debug)]
pub(super) struct DateObj(pub(super) NaiveDate);

impl DateObj {
    fn value(d: NaiveDate) -> Value {
        Value::from_object(DateObj(d))
    }
}

impl Object for DateObj {
    /// A date is true (`{% if start_date %}`), as in Python.
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        date_field(&self.0, key.as_str()?).map(Value::from)
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let d = self.0;
        match method {
            "strftime" => strftime(&d.and_time(NaiveTime::MIN), None, args),
            "isoformat" | "__str__" => Ok(Value::from(d.format("%Y-%m-%d").to_string())),
            "weekday" => Ok(Value::from(d.weekday().num_days_from_monday() as i64)),
            "isoweekday" => Ok(Value::from(d.weekday().number_from_monday() as i64)),
            "toordinal" => Ok(Value::from(d.num_days_from_ce() as i64)),
            "replace" => {
                let wall = replaced(d.and_time(NaiveTime::MIN), args, false)?.0;
                Ok(DateObj::value(wall.date()))
            }
            // Python's date arithmetic counts whole days of a timedelta.
            "__add__" | "__radd__" => match delta_arg(args) {
                Some(t) => shifted_date(d, TimeDelta::days(t.num_days())),
                None => Err(operand("date", "+", args)),
            },
            "__sub__" => {
                if let Some(t) = delta_arg(args) {
                    return shifted_date(d, -TimeDelta::days(t.num_days()));
                }
                match args
                    .first()
                    .and_then(|a| a.downcast_object_ref::<DateObj>())
                {
                    Some(other) => Ok(TimeDeltaObj::value(d - other.0)),
                    None => Err(operand("date", "-", args)),
                }
            }
            _ => Err(unknown("date", method)),
        }
    }
    fn custom_cmp(self: &Arc<Self>, other: &minijinja::value::DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<DateObj>()?;
        Some(self.0.cmp(&other.0))
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

fn shifted_date(d: NaiveDate, by: TimeDelta) -> Result<Value, Error> {
    d.checked_add_signed(by)
        .map(DateObj::value)
        .ok_or_else(|| invalid("date value out of range"))
}

fn date_field(d: &impl Datelike, key: &str) -> Option<i64> {
    Some(match key {
        "year" => d.year() as i64,
        "month" => d.month() as i64,
        "day" => d.day() as i64,
        _ => return None,
    })
}

// ---- datetime -------------------------------------------------------------------

/// `datetime`: a wall-clock time, naive or with its UTC offset (aware).
#[derive(Debug)]
pub(super) struct DateTimeObj {
    pub(super) wall: NaiveDateTime,
    pub(super) offset: Option<FixedOffset>,
}

impl DateTimeObj {
    pub(super) fn aware(wall: NaiveDateTime, offset: FixedOffset) -> Value {
        Value::from_object(DateTimeObj {
            wall,
            offset: Some(offset),
        })
    }
    pub(super) fn naive(wall: NaiveDateTime) -> Value {
        Value::from_object(DateTimeObj { wall, offset: None })
    }
    /// An instant as an aware datetime.
    pub(super) fn instant(at: DateTime<FixedOffset>) -> Value {
        DateTimeObj::aware(at.naive_local(), *at.offset())
    }
    /// Moved by `by` on the wall clock, its offset kept (Python's
    /// `datetime + timedelta`).
    fn shifted(&self, by: TimeDelta) -> Result<Value, Error> {
        let wall = self
            .wall
            .checked_add_signed(by)
            .ok_or_else(|| invalid("date value out of range"))?;
        Ok(Value::from_object(DateTimeObj {
            wall,
            offset: self.offset,
        }))
    }
    /// The instant; a naive datetime is taken as local time, as Python does.
    fn to_instant(&self) -> DateTime<FixedOffset> {
        match self.offset {
            Some(o) => o.from_local_datetime(&self.wall).earliest(),
            None => Local
                .from_local_datetime(&self.wall)
                .earliest()
                .map(|d| d.fixed_offset()),
        }
        .unwrap_or_else(|| Utc.from_utc_datetime(&self.wall).fixed_offset())
    }
    fn iso(&self, sep: &str) -> String {
        let mut s = format!(
            "{}{sep}{}",
            self.wall.format("%Y-%m-%d"),
            self.wall.format("%H:%M:%S")
        );
        let micros = self.wall.nanosecond() / 1000;
        if micros != 0 {
            s.push_str(&format!(".{micros:06}"));
        }
        if let Some(o) = self.offset {
            s.push_str(&offset_text(o));
        }
        s
    }
}

pub(super) fn offset_text(o: FixedOffset) -> String {
    let secs = o.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}:{:02}", secs / 3600, secs / 60 % 60)
}

impl Object for DateTimeObj {
    /// A datetime is true, as in Python.
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let d = &self.wall;
        let key = key.as_str()?;
        if let Some(v) = date_field(d, key) {
            return Some(Value::from(v));
        }
        Some(match key {
            "hour" => Value::from(d.hour() as i64),
            "minute" => Value::from(d.minute() as i64),
            "second" => Value::from(d.second() as i64),
            "microsecond" => Value::from((d.nanosecond() / 1000) as i64),
            "tzinfo" => match self.offset {
                Some(o) => Value::from_object(TimeZoneObj(Zone::Fixed(o))),
                None => Value::from(()),
            },
            _ => return None,
        })
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => strftime(&self.wall, self.offset, args),
            "isoformat" => {
                let (sep,): (Option<&str>,) = from_args(args)?;
                Ok(Value::from(self.iso(sep.unwrap_or("T"))))
            }
            "date" => Ok(DateObj::value(self.wall.date())),
            "time" => Ok(Value::from(self.wall.format("%H:%M:%S").to_string())),
            "timestamp" => Ok(Value::from(
                self.to_instant().timestamp_micros() as f64 / 1e6,
            )),
            "weekday" => Ok(Value::from(
                self.wall.weekday().num_days_from_monday() as i64
            )),
            "isoweekday" => Ok(Value::from(self.wall.weekday().number_from_monday() as i64)),
            "astimezone" => {
                let (zone,): (Option<Value>,) = from_args(args)?;
                let instant = self.to_instant();
                let offset = match zone {
                    Some(z) => zone_arg(&z, "astimezone()")?.offset_at(instant.naive_utc()),
                    None => *instant.with_timezone(&Local).offset(),
                };
                Ok(DateTimeObj::instant(instant.with_timezone(&offset)))
            }
            "utcoffset" => Ok(match self.offset {
                Some(o) => TimeDeltaObj::value(TimeDelta::seconds(o.local_minus_utc() as i64)),
                None => Value::from(()),
            }),
            "replace" => {
                let (wall, zone) = replaced(self.wall, args, true)?;
                let offset = match zone {
                    Some(Some(z)) => Some(z.offset_for_wall(wall)?),
                    Some(None) => None,
                    None => self.offset,
                };
                Ok(Value::from_object(DateTimeObj { wall, offset }))
            }
            "__add__" | "__radd__" => match delta_arg(args) {
                Some(t) => self.shifted(t),
                None => Err(operand("datetime", "+", args)),
            },
            "__sub__" => {
                if let Some(t) = delta_arg(args) {
                    return self.shifted(-t);
                }
                let other = args
                    .first()
                    .and_then(|a| a.downcast_object_ref::<DateTimeObj>())
                    .ok_or_else(|| operand("datetime", "-", args))?;
                match (self.offset, other.offset) {
                    (None, None) => Ok(TimeDeltaObj::value(self.wall - other.wall)),
                    (Some(_), Some(_)) => {
                        Ok(TimeDeltaObj::value(self.to_instant() - other.to_instant()))
                    }
                    _ => Err(invalid(
                        "can't subtract offset-naive and offset-aware datetimes",
                    )),
                }
            }
            _ => Err(unknown("datetime", method)),
        }
    }
    fn custom_cmp(self: &Arc<Self>, other: &minijinja::value::DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<DateTimeObj>()?;
        match (self.offset, other.offset) {
            (None, None) => Some(self.wall.cmp(&other.wall)),
            _ => Some(self.to_instant().cmp(&other.to_instant())),
        }
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso(" "))
    }
}

fn strftime(
    wall: &NaiveDateTime,
    offset: Option<FixedOffset>,
    args: &[Value],
) -> Result<Value, Error> {
    let (fmt,): (&str,) = from_args(args)?;
    let items: Vec<chrono::format::Item> = chrono::format::StrftimeItems::new(fmt).collect();
    if items
        .iter()
        .any(|i| matches!(i, chrono::format::Item::Error))
    {
        return Err(invalid(format!("strftime: bad format `{fmt}`")));
    }
    use std::fmt::Write;
    let mut out = String::new();
    let written = match offset {
        Some(o) => {
            let at = o.from_local_datetime(wall).earliest();
            match at {
                Some(at) => write!(out, "{}", at.format_with_items(items.iter())),
                None => Err(fmt::Error),
            }
        }
        // A naive datetime has no zone: Python writes %z and %Z as empty.
        None => {
            let fmt = fmt.replace("%z", "").replace("%Z", "");
            write!(out, "{}", wall.format(&fmt))
        }
    };
    written.map_err(|_| invalid(format!("strftime: bad format `{fmt}`")))?;
    Ok(Value::from(out))
}

/// `replace(year=…, …, tzinfo=…)`: the new wall time, and the new zone when
/// `tzinfo` is given (`Some(None)` for `tzinfo=none`).
fn replaced(
    wall: NaiveDateTime,
    args: &[Value],
    with_time: bool,
) -> Result<(NaiveDateTime, Option<Option<Zone>>), Error> {
    let (kwargs,): (Kwargs,) = from_args(args)?;
    let field = |name: &str, current: u32| -> Result<u32, Error> {
        Ok(kwargs.get::<Option<u32>>(name)?.unwrap_or(current))
    };
    let year = kwargs.get::<Option<i32>>("year")?.unwrap_or(wall.year());
    let date = NaiveDate::from_ymd_opt(
        year,
        field("month", wall.month())?,
        field("day", wall.day())?,
    )
    .ok_or_else(|| invalid("replace(): the date is out of range"))?;
    let mut zone = None;
    let time = if with_time {
        if kwargs.has("tzinfo") {
            let z: Value = kwargs.get("tzinfo")?;
            zone = Some(if z.is_none() || z.is_undefined() {
                None
            } else {
                Some(zone_arg(&z, "replace(tzinfo=…)")?)
            });
        }
        NaiveTime::from_hms_micro_opt(
            field("hour", wall.hour())?,
            field("minute", wall.minute())?,
            field("second", wall.second())?,
            field("microsecond", wall.nanosecond() / 1000)?,
        )
        .ok_or_else(|| invalid("replace(): the time is out of range"))?
    } else {
        NaiveTime::MIN
    };
    kwargs.assert_all_used()?;
    Ok((date.and_time(time), zone))
}

// ---- the module -------------------------------------------------------------------

/// `modules.datetime` and its classes, each callable as a constructor and
/// with its class methods (`datetime.now()`, `date.today()`, …).
#[derive(Debug)]
pub(super) enum DatetimeModule {
    Module,
    DateTime,
    Date,
    TimeDelta,
    TimeZone,
}

impl Object for DatetimeModule {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let class = |c| Some(Value::from_object(c));
        match (self.as_ref(), key.as_str()?) {
            (DatetimeModule::Module, "datetime") => class(DatetimeModule::DateTime),
            (DatetimeModule::Module, "date") => class(DatetimeModule::Date),
            (DatetimeModule::Module, "timedelta") => class(DatetimeModule::TimeDelta),
            (DatetimeModule::Module, "timezone") => class(DatetimeModule::TimeZone),
            (DatetimeModule::TimeZone, "utc") => Some(utc()),
            _ => None,
        }
    }
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match self.as_ref() {
            DatetimeModule::DateTime => construct_datetime(args),
            DatetimeModule::Date => {
                let (y, m, d): (i32, u32, u32) = from_args(args)?;
                NaiveDate::from_ymd_opt(y, m, d)
                    .map(DateObj::value)
                    .ok_or_else(|| invalid(format!("date({y}, {m}, {d}) is not a date")))
            }
            DatetimeModule::TimeDelta => Ok(TimeDeltaObj::value(timedelta_from(args)?)),
            DatetimeModule::TimeZone => {
                let (delta,): (Value,) = from_args(args)?;
                let d = delta
                    .downcast_object_ref::<TimeDeltaObj>()
                    .ok_or_else(|| invalid("timezone() takes a timedelta"))?;
                let secs = d.0.num_seconds();
                i32::try_from(secs)
                    .ok()
                    .and_then(FixedOffset::east_opt)
                    .filter(|_| secs.abs() < 86_400)
                    .map(|o| Value::from_object(TimeZoneObj(Zone::Fixed(o))))
                    .ok_or_else(|| invalid("timezone(): the offset must be under 24 hours"))
            }
            DatetimeModule::Module => Err(invalid("modules.datetime is a module, not a function")),
        }
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match (self.as_ref(), method) {
            (DatetimeModule::DateTime, "now") => {
                let (zone,): (Option<Value>,) = from_args(args)?;
                match zone {
                    Some(z) => {
                        let now = Utc::now();
                        let offset = zone_arg(&z, "now()")?.offset_at(now.naive_utc());
                        Ok(DateTimeObj::instant(now.with_timezone(&offset)))
                    }
                    None => Ok(DateTimeObj::naive(Local::now().naive_local())),
                }
            }
            (DatetimeModule::DateTime, "utcnow") => Ok(DateTimeObj::naive(Utc::now().naive_utc())),
            (DatetimeModule::DateTime, "today") => {
                Ok(DateTimeObj::naive(Local::now().naive_local()))
            }
            (DatetimeModule::Date, "today") => Ok(DateObj::value(Local::now().date_naive())),
            (DatetimeModule::DateTime, "strptime") => {
                let (text, fmt): (&str, &str) = from_args(args)?;
                parse_with_format(text, fmt)
            }
            (DatetimeModule::DateTime, "fromisoformat") => {
                let (text,): (&str,) = from_args(args)?;
                parse_iso(text)
            }
            (DatetimeModule::Date, "fromisoformat") => {
                let (text,): (&str,) = from_args(args)?;
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(DateObj::value)
                    .map_err(|_| invalid(format!("date.fromisoformat: `{text}` is not YYYY-MM-DD")))
            }
            (DatetimeModule::DateTime, "fromtimestamp") => {
                let (secs, zone): (f64, Option<Value>) = from_args(args)?;
                let at = DateTime::from_timestamp_micros((secs * 1e6).round() as i64)
                    .ok_or_else(|| invalid("fromtimestamp(): out of range"))?;
                match zone {
                    Some(z) => {
                        let offset = zone_arg(&z, "fromtimestamp()")?.offset_at(at.naive_utc());
                        Ok(DateTimeObj::instant(at.with_timezone(&offset)))
                    }
                    None => Ok(DateTimeObj::naive(at.with_timezone(&Local).naive_local())),
                }
            }
            (DatetimeModule::DateTime, "combine") => {
                let (date,): (Value,) = from_args(args)?;
                let d = date
                    .downcast_object_ref::<DateObj>()
                    .ok_or_else(|| invalid("combine() takes a date"))?;
                Ok(DateTimeObj::naive(d.0.and_time(NaiveTime::MIN)))
            }
            _ => Err(unknown("modules.datetime", method)),
        }
    }
}

fn construct_datetime(args: &[Value]) -> Result<Value, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
    const FIELDS: [&str; 7] = [
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "microsecond",
    ];
    let mut n = [0i64; 7];
    for (i, name) in FIELDS.iter().enumerate() {
        let v = match pos.get(i) {
            Some(v) => Some(i64::try_from(v.clone()).map_err(|_| {
                invalid(format!("datetime(): `{name}` must be an integer, not {v}"))
            })?),
            None => kwargs.get::<Option<i64>>(name)?,
        };
        n[i] = match (v, i) {
            (Some(v), _) => v,
            (None, 0..=2) => return Err(invalid(format!("datetime() needs `{name}`"))),
            (None, _) => 0,
        };
    }
    let zone = match pos.get(7) {
        Some(z) => Some(z.clone()),
        None => kwargs.get::<Option<Value>>("tzinfo")?,
    };
    kwargs.assert_all_used()?;
    let u = |x: i64| u32::try_from(x).unwrap_or(u32::MAX);
    let wall = i32::try_from(n[0])
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, u(n[1]), u(n[2])))
        .and_then(|d| d.and_hms_micro_opt(u(n[3]), u(n[4]), u(n[5]), u(n[6])))
        .ok_or_else(|| invalid(format!("datetime{:?} is not a valid date and time", n)))?;
    match zone.filter(|z| !z.is_none()) {
        Some(z) => Ok(DateTimeObj::aware(
            wall,
            zone_arg(&z, "datetime(tzinfo=…)")?.offset_for_wall(wall)?,
        )),
        None => Ok(DateTimeObj::naive(wall)),
    }
}

/// `datetime.strptime(text, format)`: aware when the format has `%z`.
fn parse_with_format(text: &str, fmt: &str) -> Result<Value, Error> {
    let bad = || {
        invalid(format!(
            "strptime: `{text}` does not match the format `{fmt}`"
        ))
    };
    if fmt.contains("%z") {
        return DateTime::parse_from_str(text, fmt)
            .map(DateTimeObj::instant)
            .map_err(|_| bad());
    }
    if let Ok(wall) = NaiveDateTime::parse_from_str(text, fmt) {
        return Ok(DateTimeObj::naive(wall));
    }
    // A format with only a date (Python fills the time with midnight).
    NaiveDate::parse_from_str(text, fmt)
        .map(|d| DateTimeObj::naive(d.and_time(NaiveTime::MIN)))
        .map_err(|_| bad())
}

/// `datetime.fromisoformat(text)`: `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][±HH:MM|Z]`.
fn parse_iso(text: &str) -> Result<Value, Error> {
    if let Ok(at) = DateTime::parse_from_rfc3339(&text.replace(' ', "T")) {
        return Ok(DateTimeObj::instant(at));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(wall) = NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(DateTimeObj::naive(wall));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| DateTimeObj::naive(d.and_time(NaiveTime::MIN)))
        .map_err(|_| {
            invalid(format!(
                "datetime.fromisoformat: `{text}` is not an ISO date and time"
            ))
        })
}

/// The value of `v` as a datetime, for functions that take one.
pub(super) fn datetime_arg<'a>(v: &'a Value, what: &str) -> Result<&'a DateTimeObj, Error> {
    v.downcast_object_ref::<DateTimeObj>()
        .ok_or_else(|| invalid(format!("{what} takes a datetime")))
}
