//! `pm generate`: PulseMetrics' synthetic subscription business (see
//! `sim`), deterministic for a seed, streamed into the `raw` schema that
//! `warehouse/*.sql` creates, or written as CSV files.

pub mod catalog;
pub mod encode;
pub mod output;
pub mod rng;
pub mod rows;
pub mod sim;

pub use rows::{Dataset, Sink, Table};
pub use sim::{simulate, Params, Window};

/// The PulseMetrics marts a newcomer looks at first, once the warehouse is
/// built (`project/models/marts/`).
pub const FIRST_MARTS: [&str; 3] = [
    "analytics.fct_daily_metrics",
    "analytics.mrr_monthly",
    "analytics.cohort_retention_monthly",
];

/// The raw warehouse's DDL (`warehouse/*.sql`), applied in this order. It is
/// built into pm because the generator writes exactly these tables.
pub const WAREHOUSE_SQL: [(&str, &str); 4] = [
    (
        "warehouse/01_schemas_and_roles.sql",
        include_str!("../../../warehouse/01_schemas_and_roles.sql"),
    ),
    (
        "warehouse/02_tables.sql",
        include_str!("../../../warehouse/02_tables.sql"),
    ),
    (
        "warehouse/03_partitions.sql",
        include_str!("../../../warehouse/03_partitions.sql"),
    ),
    (
        "warehouse/04_citus.sql",
        include_str!("../../../warehouse/04_citus.sql"),
    ),
];

use chrono::NaiveDate;
use pm_core::error::{Code, Problem};

pub const DEFAULT_SEED: u64 = 42;
pub const DEFAULT_DAYS: u32 = 365;

/// The dataset's size and span as asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub seed: Option<u64>,
    pub scale: Option<f64>,
    pub start: Option<NaiveDate>,
    pub days: Option<u32>,
    pub months: Option<u32>,
}

pub fn to_day(d: NaiveDate) -> rows::Day {
    (d - NaiveDate::default()).num_days() as rows::Day
}

pub fn to_date(day: rows::Day) -> NaiveDate {
    NaiveDate::default() + chrono::Days::new(day.max(0) as u64)
}

/// What to generate. Without `--start` the data ends yesterday (so that
/// freshness checks and a daily report see recent days); without a length it
/// spans 365 days.
pub fn params(req: &Request, yesterday: NaiveDate) -> Result<Params, Problem> {
    let scale = req.scale.unwrap_or(1.0);
    if !(scale > 0.0 && scale <= 1000.0) {
        return Err(Problem::new(
            Code::GenerateScale,
            format!("--scale {scale} is out of range"),
        )
        .help("give a scale above 0 and at most 1000 (1 = 10,000 users a year)"));
    }
    let months = |from: NaiveDate, n: u32| from.checked_add_months(chrono::Months::new(n));
    let (start, days) = match (req.start, req.days, req.months) {
        (Some(start), Some(days), _) => (start, days),
        (Some(start), None, Some(n)) => {
            let end = months(start, n).unwrap_or(start);
            (start, (end - start).num_days() as u32)
        }
        (Some(start), None, None) => (start, DEFAULT_DAYS),
        (None, days, months_back) => {
            let after = yesterday.succ_opt().unwrap_or(yesterday);
            let start = match (days, months_back) {
                (Some(d), _) => after - chrono::Days::new(d as u64),
                (None, Some(n)) => after
                    .checked_sub_months(chrono::Months::new(n))
                    .unwrap_or(after),
                (None, None) => after - chrono::Days::new(DEFAULT_DAYS as u64),
            };
            (start, (after - start).num_days() as u32)
        }
    };
    if days == 0 || days > 3660 {
        return Err(
            Problem::new(Code::GenerateDays, format!("{days} days is out of range"))
                .help("generate between 1 day and 10 years (--days 1..3660, or --months)"),
        );
    }
    // The raw tables hold timestamps partitioned by month from 1970 on, and
    // the business is a recent one: a start far from today is a typo.
    let earliest = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(start);
    let latest = NaiveDate::from_ymd_opt(2200, 1, 1).unwrap_or(start);
    if start < earliest || start > latest {
        return Err(Problem::new(
            Code::GenerateStart,
            format!("--start {start} is out of range"),
        )
        .help("give a day from 1970-01-01 to 2199-12-31 (YYYY-MM-DD), or leave --start out for data up to yesterday"));
    }
    Ok(Params {
        seed: req.seed.unwrap_or(DEFAULT_SEED),
        scale,
        start: to_day(start),
        days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_dataset_is_the_year_up_to_yesterday() {
        let p = params(&Request::default(), date("2026-11-28")).unwrap();
        assert_eq!(to_date(p.start), date("2025-11-29"));
        assert_eq!(to_date(p.end_day() - 1), date("2026-11-28"));
        assert_eq!((p.seed, p.scale), (DEFAULT_SEED, 1.0));
    }

    #[test]
    fn start_days_and_months() {
        let y = date("2026-11-28");
        let r = |start: Option<&str>, days, months| Request {
            start: start.map(date),
            days,
            months,
            ..Request::default()
        };
        let p = params(&r(Some("2024-01-01"), Some(90), None), y).unwrap();
        assert_eq!((to_date(p.start), p.days), (date("2024-01-01"), 90));
        let p = params(&r(Some("2024-01-01"), None, Some(2)), y).unwrap();
        assert_eq!(p.days, 60, "January and February 2024");
        let p = params(&r(None, None, Some(1)), y).unwrap();
        assert_eq!((to_date(p.start), p.days), (date("2026-10-29"), 31));
        assert!(params(&r(None, Some(0), None), y).is_err());
        let bad = Request {
            scale: Some(0.0),
            ..Request::default()
        };
        assert!(params(&bad, y).unwrap_err().message.contains("--scale"));
    }
}
