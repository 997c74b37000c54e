//! Time zones as `modules.pytz` and `datetime.timezone` give them: named
//! (with their daylight-saving rules) or fixed offsets.

use super::datetime::{datetime_arg, invalid, offset_text, DateTimeObj, TimeDeltaObj};
use super::no_method as unknown;
use chrono::{FixedOffset, NaiveDateTime, TimeDelta, TimeZone, Utc};
use minijinja::value::{from_args, Object, Value};
use minijinja::{Error, State};
use std::fmt;
use std::sync::Arc;
// ---- time zones ---------------------------------------------------------------

/// A zone: named (`pytz.timezone('Europe/Paris')`, with its daylight-saving
/// rules) or a fixed offset (`datetime.timezone(timedelta(hours=2))`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Zone {
    Named(chrono_tz::Tz),
    Fixed(FixedOffset),
}

impl Zone {
    /// The offset of `zone` at the instant `utc`.
    pub(super) fn offset_at(self, utc: NaiveDateTime) -> FixedOffset {
        match self {
            Zone::Named(tz) => tz.from_utc_datetime(&utc).fixed_offset().timezone(),
            Zone::Fixed(o) => o,
        }
    }
    /// The offset of `zone` for the wall-clock time `wall` (the earlier one
    /// when the clock goes back, as pytz's `localize` without `is_dst`).
    pub(super) fn offset_for_wall(self, wall: NaiveDateTime) -> Result<FixedOffset, Error> {
        match self {
            Zone::Named(tz) => tz
                .from_local_datetime(&wall)
                .earliest()
                .map(|d| d.fixed_offset().timezone())
                .ok_or_else(|| invalid(format!("{wall} does not exist in {}", tz.name()))),
            Zone::Fixed(o) => Ok(o),
        }
    }
}

/// A time zone value (`tzinfo`).
#[derive(Debug)]
pub(super) struct TimeZoneObj(pub(super) Zone);

impl Object for TimeZoneObj {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match (key.as_str()?, self.0) {
            ("zone", Zone::Named(tz)) => Some(Value::from(tz.name())),
            _ => None,
        }
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "localize" => {
                let (dt,): (Value,) = from_args(args)?;
                let d = datetime_arg(&dt, "localize()")?;
                if d.offset.is_some() {
                    return Err(invalid(
                        "localize() takes a naive datetime (its tzinfo is already set); use astimezone()",
                    ));
                }
                let offset = self.0.offset_for_wall(d.wall)?;
                Ok(DateTimeObj::aware(d.wall, offset))
            }
            "utcoffset" => {
                let offset = self.0.offset_at(Utc::now().naive_utc());
                Ok(TimeDeltaObj::value(TimeDelta::seconds(
                    offset.local_minus_utc() as i64,
                )))
            }
            _ => Err(unknown("a time zone", method)),
        }
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Zone::Named(tz) => f.write_str(tz.name()),
            Zone::Fixed(o) if o.local_minus_utc() == 0 => f.write_str("UTC"),
            Zone::Fixed(o) => write!(f, "UTC{}", offset_text(o)),
        }
    }
}

pub(super) fn zone_arg(v: &Value, what: &str) -> Result<Zone, Error> {
    v.downcast_object_ref::<TimeZoneObj>()
        .map(|z| z.0)
        .ok_or_else(|| {
            invalid(format!(
                "{what} takes a time zone: modules.pytz.timezone('Europe/Paris') or modules.datetime.timezone.utc"
            ))
        })
}

pub(super) fn utc() -> Value {
    Value::from_object(TimeZoneObj(Zone::Fixed(chrono::Offset::fix(&Utc))))
}

/// `modules.pytz`: `timezone(name)`, `utc`.
#[derive(Debug)]
pub(super) struct PytzModule;

impl Object for PytzModule {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "utc" | "UTC" => Some(Value::from_object(TimeZoneObj(Zone::Named(chrono_tz::UTC)))),
            _ => None,
        }
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "timezone" => {
                let (name,): (&str,) = from_args(args)?;
                let zone: chrono_tz::Tz = name.parse().map_err(|_| {
                    invalid(format!(
                        "modules.pytz.timezone: `{name}` is not a time zone name (e.g. Europe/Paris)"
                    ))
                })?;
                Ok(Value::from_object(TimeZoneObj(Zone::Named(zone))))
            }
            _ => Err(unknown("modules.pytz", method)),
        }
    }
}
